//! Where an organisation's memory goes: `Organization::memory_usage`, a pure accounting of
//! every large structure from the lengths and capacities of its vectors, maps and strings.
//!
//! The figures are estimates of the heap the structures hold: each allocation is counted as
//! mimalloc (the `strata` binary's allocator) lays it out — no header, sizes rounded up to
//! 8 bytes up to 64, then to one of four classes per doubling —; hash maps by their buckets
//! and control bytes; roaring bitmaps by their containers. Nothing here allocates more than a
//! few words, reads a clock or does IO.

use std::collections::HashMap;
use std::mem::size_of;

use roaring::RoaringBitmap;

use crate::model::{Record, Value};
use crate::organization::Organization;

/// The bytes an allocation of `bytes` takes on the heap (mimalloc's size classes); nothing
/// for an empty allocation.
#[must_use]
pub(crate) fn heap(bytes: usize) -> usize {
    if bytes == 0 {
        0
    } else if bytes <= 64 {
        bytes.next_multiple_of(8)
    } else {
        // Four classes per doubling: 80, 96, 112, 128, 160, …
        let step = bytes.next_power_of_two() / 8;
        bytes.next_multiple_of(step.max(8))
    }
}

/// A vector's buffer on the heap.
pub(crate) fn vec_heap<T>(v: &Vec<T>) -> usize {
    heap(v.capacity() * size_of::<T>())
}

/// A boxed slice on the heap.
pub(crate) fn slice_heap<T>(v: &[T]) -> usize {
    heap(std::mem::size_of_val(v))
}

/// A rare list on the heap: the box and the slice.
pub(crate) fn rare_heap<T>(v: &crate::model::RareList<T>) -> usize {
    if v.is_empty() {
        0
    } else {
        heap(16) + slice_heap(v)
    }
}

/// A string's buffer on the heap.
pub(crate) fn str_heap(s: &str) -> usize {
    heap(s.len())
}

/// A hashbrown table of `capacity` entries of `entry` bytes: its buckets and control bytes.
pub(crate) fn table_heap(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    // hashbrown keeps at most 7/8 of its buckets full (all but one below 8 buckets).
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    heap(buckets * entry + buckets + 16)
}

/// A hash map's table (buckets and control bytes), not what its keys and values point to.
pub(crate) fn map_heap<K, V, S>(m: &HashMap<K, V, S>) -> usize {
    table_heap(m.capacity(), size_of::<(K, V)>())
}

/// A hash set's table.
pub(crate) fn set_heap<K, S>(m: &std::collections::HashSet<K, S>) -> usize {
    table_heap(m.capacity(), size_of::<K>())
}

/// A roaring bitmap's containers: array containers by their capacity, bitset containers
/// 8 KiB each, run containers by their runs, and the container list.
pub(crate) fn bitmap_heap(b: &RoaringBitmap) -> usize {
    let s = b.statistics();
    // The statistics count array containers' capacity in u32s; they hold u16s.
    let arrays = usize::try_from(s.n_bytes_array_containers / 2).unwrap_or(usize::MAX);
    let runs = usize::try_from(s.n_bytes_run_containers).unwrap_or(usize::MAX);
    let containers = s.n_containers as usize;
    let per_array = if s.n_array_containers == 0 {
        0
    } else {
        heap(arrays / s.n_array_containers as usize) * s.n_array_containers as usize
    };
    per_array
        + s.n_bitset_containers as usize * heap(8192)
        + runs
        + if containers == 0 {
            0
        } else {
            heap(containers * 32)
        }
}

/// A value's heap (its text).
pub(crate) fn value_heap(v: &Value) -> usize {
    match v {
        Value::Text(s) => heap(s.capacity()),
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => 0,
    }
}

/// The memory an organisation holds, by structure, in bytes (estimates; see the module).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// The records themselves (the record vector's slots).
    pub records: usize,
    /// The records' external keys (their text).
    pub record_keys: usize,
    /// The records' column values: the per-record lists, column names and text.
    pub column_values: usize,
    /// The records' lookups, shares, column shares and access teams.
    pub record_links: usize,
    /// The map from record key to record id (its table and its own copies of the keys).
    pub record_names: usize,
    /// Every table's live records, in creation order.
    pub table_records: usize,
    /// The children of each parent record.
    pub children: usize,
    /// The record index's security bitmaps (owner, unit, subtree, shares, inherited access)
    /// and their maps.
    pub index_bitmaps: usize,
    /// The record index's inherited-access memo (the principals each record inherits from).
    pub index_inherited: usize,
    /// The record index's column indexes.
    pub index_columns: usize,
    /// Derived grants, administrators and hierarchy reports.
    pub derived: usize,
    /// The model but records: units, users, teams, roles, tables, names, profiles, apps,
    /// seen columns, rules and licences (approximately).
    pub model: usize,
}

impl MemoryUsage {
    /// Every structure by name, in a fixed order.
    #[must_use]
    pub fn rows(&self) -> [(&'static str, usize); 12] {
        [
            ("records (fixed part)", self.records),
            ("record keys", self.record_keys),
            ("column values", self.column_values),
            ("record links (lookups, shares)", self.record_links),
            ("record names (key to id)", self.record_names),
            ("table record lists", self.table_records),
            ("children of parent records", self.children),
            ("record index: security bitmaps", self.index_bitmaps),
            ("record index: inherited memo", self.index_inherited),
            ("record index: column indexes", self.index_columns),
            ("derived grants and reports", self.derived),
            ("model (units, users, roles, ...)", self.model),
        ]
    }

    /// The sum of every structure.
    #[must_use]
    pub fn total(&self) -> usize {
        self.rows().iter().map(|(_, b)| b).sum()
    }
}

fn record_links(r: &Record) -> usize {
    slice_heap(&r.lookups)
        + rare_heap(&r.shares)
        + rare_heap(&r.field_shares)
        + r.field_shares
            .iter()
            .map(|f| str_heap(&f.column))
            .sum::<usize>()
        + rare_heap(&r.access_teams)
}

impl Organization {
    /// Where this organisation's memory goes, by structure (an estimate from lengths and
    /// capacities; nothing is measured by the allocator).
    #[must_use]
    pub fn memory_usage(&self) -> MemoryUsage {
        let mut usage = MemoryUsage {
            records: self.records.allocated_bytes(),
            ..MemoryUsage::default()
        };
        for r in &self.records {
            usage.record_keys += r.key_heap();
            usage.column_values += r.fields_heap();
            usage.record_links += record_links(r);
        }
        usage.record_names = self.record_names.heap();
        usage.table_records =
            vec_heap(&self.table_records) + self.table_records.iter().map(vec_heap).sum::<usize>();
        usage.children = self.children.heap();
        let (bitmaps, inherited, columns) = self.index.heap();
        usage.index_bitmaps = bitmaps;
        usage.index_inherited = inherited;
        usage.index_columns = columns;
        usage.derived = vec_heap(&self.derived.grants)
            + self.derived.grants.iter().map(vec_heap).sum::<usize>()
            + vec_heap(&self.derived.admin)
            + vec_heap(&self.derived.reports)
            + self.derived.reports.iter().map(vec_heap).sum::<usize>()
            + vec_heap(&self.derived.hierarchy_tables);
        usage.model = self.model_heap();
        usage
    }

    fn model_heap(&self) -> usize {
        let users: usize = self
            .users
            .iter()
            .map(|u| str_heap(&u.name) + vec_heap(&u.roles) + vec_heap(&u.teams))
            .sum();
        let teams: usize = self
            .teams
            .iter()
            .map(|t| str_heap(&t.name) + vec_heap(&t.members) + vec_heap(&t.roles))
            .sum();
        let roles: usize = self
            .roles
            .iter()
            .map(|r| {
                // A B-tree node holds 11 entries; count each entry with a share of its node.
                str_heap(&r.name)
                    + r.privileges.len() * (size_of::<(crate::ids::TableId, [u8; 8])>() + 8)
                    + vec_heap(&r.misc)
                    + r.misc.iter().map(|m| str_heap(m)).sum::<usize>()
            })
            .sum();
        let tables: usize = self
            .tables
            .iter()
            .map(|t| {
                str_heap(&t.name)
                    + vec_heap(&t.columns)
                    + t.columns.iter().map(|c| str_heap(&c.name)).sum::<usize>()
            })
            .sum();
        let seen: usize = self
            .seen_columns
            .iter()
            .map(|s| s.iter().map(|c| str_heap(c) + 32).sum::<usize>())
            .sum();
        vec_heap(&self.users)
            + users
            + vec_heap(&self.teams)
            + teams
            + vec_heap(&self.roles)
            + roles
            + vec_heap(&self.tables)
            + tables
            + vec_heap(&self.positions)
            + vec_heap(&self.relationships)
            + vec_heap(&self.templates)
            + vec_heap(&self.profiles)
            + vec_heap(&self.apps)
            + self.units.heap()
            + self.names.model_heap()
            + set_heap(&self.column_names)
            + self
                .column_names
                .iter()
                .map(|c| heap(16 + 16) + heap(c.len()))
                .sum::<usize>()
            + seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heap_rounds_like_mimalloc() {
        assert_eq!(heap(0), 0);
        assert_eq!(heap(1), 8);
        assert_eq!(heap(24), 24);
        assert_eq!(heap(25), 32);
        assert_eq!(heap(65), 80);
        assert_eq!(heap(129), 160);
        assert_eq!(heap(1000), 1024);
    }

    #[test]
    fn an_organisation_with_records_counts_them() -> Result<(), crate::error::ModelError> {
        let mut org = Organization::new();
        let empty = org.memory_usage();
        assert_eq!(empty.records, 0);
        {
            let mut s = org.setup();
            let root = s.add_business_unit("Root", None)?;
            let column = crate::model::Column {
                name: "name".to_owned(),
                secured: false,
            };
            let table = s.add_table("account", None, vec![column])?;
            let admin = s.add_user("admin", root, true)?;
            for i in 0..100 {
                s.add_record(crate::organization::NewRecord {
                    key: format!("record-{i}"),
                    table,
                    owner: crate::ids::Owner::User(admin),
                    business_unit: None,
                    state: crate::model::RecordState::Active,
                    fields: vec![("name".to_owned(), Value::Text(format!("Record number {i}")))],
                })?;
            }
        }
        let usage = org.memory_usage();
        // The record row: 96 bytes, and the 16 of its stamps (D165).
        assert_eq!(size_of::<Record>(), 112);
        assert!(usage.records >= 100 * size_of::<Record>());
        assert!(usage.record_keys >= 100 * 8);
        assert!(usage.column_values >= 100 * 40);
        assert!(usage.record_names >= 100 * 4);
        assert!(usage.index_bitmaps > 0);
        assert!(usage.index_columns >= 100 * 4);
        assert!(usage.total() > empty.total());
        assert_eq!(usage.total(), usage.rows().iter().map(|(_, b)| b).sum());
        Ok(())
    }
}
