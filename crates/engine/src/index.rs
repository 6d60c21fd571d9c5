//! The record index (DESIGN principle 2): per table, roaring bitmaps of record ids by owner, by
//! owning unit and by read-share principal, kept in step with every change to a record. "Which
//! records of this table may U read" is a union of a few bitmaps, not a loop of checks.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::ops::ControlFlow;

use roaring::{MultiOps, RoaringBitmap};

use crate::columns::ColumnIndex;
use crate::derive::Via;
use crate::ids::{BusinessUnitId, Owner, Principal, RecordId, TableId, TeamId, UserId};
use crate::organization::Organization;
use crate::privilege::{Depth, Privilege};

#[derive(Clone, Debug, Default, PartialEq)]
struct TableBitmaps {
    live: RoaringBitmap,
    by_user: HashMap<UserId, RoaringBitmap>,
    by_team: HashMap<TeamId, RoaringBitmap>,
    by_unit: HashMap<BusinessUnitId, RoaringBitmap>,
    /// Records of each unit's whole subtree (what a Parent:Child grant there reaches).
    by_subtree: HashMap<BusinessUnitId, RoaringBitmap>,
    /// Explicit shares whose rights include Read (record access teams included).
    shared_read: HashMap<Principal, RoaringBitmap>,
    /// Read access inherited through parental lookups, by principal (D8, D14, D17).
    inherited_read: HashMap<Principal, RoaringBitmap>,
    /// Per declared column, the records in list order and the frequent values' records.
    columns: HashMap<String, ColumnIndex>,
}

/// The index of every table's records.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RecordIndex {
    tables: Vec<TableBitmaps>,
    /// The principals each record inherits read access from, as last indexed (most records
    /// that inherit do so from one principal: inline).
    inherited_of: crate::listmap::ListMap<RecordId, Principal>,
}

/// What a user can read of a table: nothing, every live record, or the union of some bitmaps
/// (taken with the live records).
pub(crate) enum Readable<'a> {
    Nothing,
    All(&'a RoaringBitmap),
    Union {
        parts: Vec<&'a RoaringBitmap>,
        live: &'a RoaringBitmap,
    },
}

impl Readable<'_> {
    /// The records, as one bitmap.
    pub(crate) fn to_bitmap(&self) -> RoaringBitmap {
        match self {
            Readable::Nothing => RoaringBitmap::new(),
            Readable::All(live) => (*live).clone(),
            Readable::Union { parts, live } => {
                // A few bitmaps union fastest one by one; many (a manager's reports) at once.
                let mut set = if parts.len() <= 4 {
                    let mut set = RoaringBitmap::new();
                    for part in parts {
                        set |= *part;
                    }
                    set
                } else {
                    parts.iter().copied().union()
                };
                set &= *live;
                set
            }
        }
    }

    /// Visits the records from id `start` on, in id order, until `visit` breaks — merging the
    /// bitmaps as it goes, so that a first page costs about its own size, not the union's.
    pub(crate) fn walk(&self, start: u32, mut visit: impl FnMut(u32) -> ControlFlow<()>) {
        match self {
            Readable::Nothing => {}
            Readable::All(live) => {
                let _ = live.range(start..).try_for_each(visit);
            }
            Readable::Union { parts, live } => {
                let mut iters: Vec<_> = parts.iter().map(|p| p.range(start..)).collect();
                let mut heap: BinaryHeap<Reverse<(u32, usize)>> = iters
                    .iter_mut()
                    .enumerate()
                    .filter_map(|(i, it)| it.next().map(|id| Reverse((id, i))))
                    .collect();
                let mut last = None;
                while let Some(Reverse((id, i))) = heap.pop() {
                    if let Some(next) = iters[i].next() {
                        heap.push(Reverse((next, i)));
                    }
                    if last == Some(id) || !live.contains(id) {
                        continue;
                    }
                    last = Some(id);
                    if visit(id).is_break() {
                        return;
                    }
                }
            }
        }
    }
}

/// Each unit's subtree's records: the union of its units' records — a few unions per unit
/// instead of one insertion per record and ancestor.
fn subtrees(
    org: &Organization,
    by_unit: &HashMap<BusinessUnitId, RoaringBitmap>,
) -> HashMap<BusinessUnitId, RoaringBitmap> {
    let mut subtree: HashMap<BusinessUnitId, RoaringBitmap> = HashMap::new();
    for (unit, records) in by_unit {
        for a in org.units.ancestors(*unit) {
            *subtree.entry(a).or_default() |= records;
        }
    }
    subtree
}

/// A stored record index that does not fit the records (a checkpoint's, D120).
fn bad(what: impl std::fmt::Display) -> crate::error::ModelError {
    crate::error::ModelError::BadState(format!("record index: {what}"))
}

fn add(map_entry: &mut RoaringBitmap, id: u32, present: bool) {
    if present {
        map_entry.insert(id);
    } else {
        map_entry.remove(id);
    }
}

impl RecordIndex {
    /// The index's heap (`memory.rs`): the security bitmaps with their maps, the inherited
    /// memo, the column indexes.
    pub(crate) fn heap(&self) -> (usize, usize, usize) {
        use crate::memory::{bitmap_heap, map_heap, str_heap, vec_heap};
        fn maps<K>(m: &HashMap<K, RoaringBitmap>) -> usize {
            map_heap(m) + m.values().map(bitmap_heap).sum::<usize>()
        }
        let bitmaps = vec_heap(&self.tables)
            + self
                .tables
                .iter()
                .map(|t| {
                    bitmap_heap(&t.live)
                        + maps(&t.by_user)
                        + maps(&t.by_team)
                        + maps(&t.by_unit)
                        + maps(&t.by_subtree)
                        + maps(&t.shared_read)
                        + maps(&t.inherited_read)
                })
                .sum::<usize>();
        let inherited = self.inherited_of.heap();
        let columns = self
            .tables
            .iter()
            .map(|t| {
                map_heap(&t.columns)
                    + t.columns
                        .iter()
                        .map(|(name, c)| str_heap(name) + c.heap())
                        .sum::<usize>()
            })
            .sum();
        (bitmaps, inherited, columns)
    }

    /// Builds the index of an organisation from scratch.
    pub(crate) fn build(org: &Organization) -> RecordIndex {
        let mut index = RecordIndex::default();
        // Records in id order: every bitmap grows at its end (`push`, no search).
        for id in org.record_ids() {
            index.push_facts(org, id);
        }
        for t in &mut index.tables {
            t.by_subtree = subtrees(org, &t.by_unit);
        }
        let inheriting = org.records.iter().filter(|r| !r.lookups.is_empty()).count();
        index.inherited_of.reserve_one(inheriting);
        for id in org.record_ids() {
            if !org.record(id).lookups.is_empty() {
                index.refresh_inherited(org, id);
            }
        }
        if !org.indexing_columns() {
            // A try is open: its column indexes stay as before it ([`RecordIndex::rebuilt`]).
            return index;
        }
        // The column indexes in bulk: one sort per column.
        for (t, table) in org.tables.iter().enumerate() {
            for column in &table.columns {
                let value_of = |id: u32| org.records[id as usize].field(&column.name);
                let ids = org.table_records[t].iter().map(|r| r.get());
                index
                    .table(TableId::from_index(t))
                    .columns
                    .insert(column.name.clone(), ColumnIndex::build(ids, &value_of));
            }
        }
        index
    }

    /// The index rebuilt from the records, in place of `old`. While a try is open
    /// ([`Organization::checkpoint_for_try`]) the column indexes are `old`'s — as they were
    /// before the try, which they stay until it closes (D149).
    pub(crate) fn rebuilt(org: &Organization, old: RecordIndex) -> RecordIndex {
        let mut index = RecordIndex::build(org);
        if !org.indexing_columns() {
            for (t, old) in old.tables.into_iter().enumerate() {
                if !old.columns.is_empty() {
                    index.table(TableId::from_index(t)).columns = old.columns;
                }
            }
        }
        index
    }

    /// A unit's subtree moved: its records leave the subtree bitmaps of the units in `from`
    /// (ancestors it no longer has) and join those of the units in `to` (its new ancestors).
    /// Costs a few bitmap operations per table, whatever the number of records.
    pub(crate) fn move_subtree(
        &mut self,
        unit: BusinessUnitId,
        from: &[BusinessUnitId],
        to: &[BusinessUnitId],
    ) {
        for t in &mut self.tables {
            let Some(moved) = t.by_subtree.get(&unit).filter(|b| !b.is_empty()).cloned() else {
                continue;
            };
            for a in from {
                if let Some(b) = t.by_subtree.get_mut(a) {
                    *b -= &moved;
                }
            }
            for a in to {
                *t.by_subtree.entry(*a).or_default() |= &moved;
            }
        }
    }

    fn table(&mut self, table: TableId) -> &mut TableBitmaps {
        if self.tables.len() <= table.index() {
            self.tables
                .resize_with(table.index() + 1, TableBitmaps::default);
        }
        &mut self.tables[table.index()]
    }

    /// Adds a record's facts (but its units' subtrees and its columns) to a fresh index, records
    /// coming in id order.
    fn push_facts(&mut self, org: &Organization, record: RecordId) {
        fn push(bitmap: &mut RoaringBitmap, id: u32) {
            if bitmap.try_push(id).is_err() {
                bitmap.insert(id);
            }
        }
        let r = org.record(record);
        if !r.alive {
            return;
        }
        let id = record.get();
        let t = self.table(r.table);
        push(&mut t.live, id);
        match r.owner {
            Owner::User(u) => push(t.by_user.entry(u).or_default(), id),
            Owner::Team(team) => push(t.by_team.entry(team).or_default(), id),
            Owner::None => {}
        }
        push(t.by_unit.entry(r.business_unit).or_default(), id);
        for s in &r.shares {
            if s.mask.contains(Privilege::Read) {
                push(t.shared_read.entry(s.principal).or_default(), id);
            }
        }
    }

    /// Adds (`present`) or removes a record's current facts.
    /// The column indexes are left as they are while a try is open
    /// ([`Organization::checkpoint_for_try`]).
    pub(crate) fn set(&mut self, org: &Organization, record: RecordId, present: bool) {
        self.set_facts(org, record, present, org.indexing_columns());
    }

    pub(crate) fn set_facts(
        &mut self,
        org: &Organization,
        record: RecordId,
        present: bool,
        columns: bool,
    ) {
        let r = org.record(record);
        let present = present && r.alive;
        let id = record.get();
        let t = self.table(r.table);
        if !present && !t.live.contains(id) {
            return; // not indexed: nothing to take out
        }
        add(&mut t.live, id, present);
        match r.owner {
            Owner::User(u) => add(t.by_user.entry(u).or_default(), id, present),
            Owner::Team(team) => add(t.by_team.entry(team).or_default(), id, present),
            Owner::None => {}
        }
        add(t.by_unit.entry(r.business_unit).or_default(), id, present);
        for unit in org.units.ancestors(r.business_unit) {
            add(t.by_subtree.entry(unit).or_default(), id, present);
        }
        for s in &r.shares {
            if s.mask.contains(Privilege::Read) {
                add(t.shared_read.entry(s.principal).or_default(), id, present);
            }
        }
        if !columns {
            return;
        }
        for column in &org.tables[r.table.index()].columns {
            // The records compared with this one mostly hold the column where it does.
            let hint = r.fields.iter().position(|(c, _)| **c == *column.name);
            let value_of = |id: u32| org.records[id as usize].field_near(&column.name, hint);
            let index = match t.columns.get_mut(&column.name) {
                Some(index) => index,
                None => t.columns.entry(column.name.clone()).or_default(),
            };
            if present {
                index.insert(id, &value_of);
            } else {
                index.remove(id, &value_of);
            }
        }
    }

    /// Takes a record out of the inherited-access bitmaps.
    pub(crate) fn forget_inherited(&mut self, org: &Organization, record: RecordId) {
        if let Some(old) = self.inherited_of.remove(&record) {
            let t = self.table(org.record(record).table);
            for p in old {
                if let Some(b) = t.inherited_read.get_mut(&p) {
                    b.remove(record.get());
                }
            }
        }
    }

    /// Re-derives the principals a record inherits read access from.
    pub(crate) fn refresh_inherited(&mut self, org: &Organization, record: RecordId) {
        let r = org.record(record);
        let table = r.table;
        let id = record.get();
        if let Some(old) = self.inherited_of.remove(&record) {
            let t = self.table(table);
            for p in old {
                if let Some(b) = t.inherited_read.get_mut(&p) {
                    b.remove(id);
                }
            }
        }
        if !r.alive || r.lookups.is_empty() {
            return;
        }
        let mut principals = Vec::new();
        let _ = org.walk_inherited(record, 0, &mut |_, _, principal, _, mask| {
            if mask.contains(Privilege::Read) {
                principals.push(principal);
            }
            std::ops::ControlFlow::Continue(())
        });
        principals.sort();
        principals.dedup();
        if principals.is_empty() {
            return;
        }
        let t = self.table(table);
        for p in &principals {
            t.inherited_read.entry(*p).or_default().insert(id);
        }
        self.inherited_of.insert(record, principals);
    }

    /// The records of a table owned by a user or a team, or in a business unit (what
    /// [`crate::list::Filter::Refers`] asks of owners and units); `None` for other referents.
    pub(crate) fn fact_bitmap(
        &self,
        table: TableId,
        target: crate::list::Referent,
    ) -> Option<RoaringBitmap> {
        use crate::list::Referent;
        let t = self.tables.get(table.index());
        let found = match target {
            Referent::User(u) => t.and_then(|t| t.by_user.get(&u)),
            Referent::Team(team) => t.and_then(|t| t.by_team.get(&team)),
            Referent::Unit(unit) => t.and_then(|t| t.by_unit.get(&unit)),
            Referent::Record(_) => return None,
        };
        Some(found.map_or_else(RoaringBitmap::new, Clone::clone))
    }
}

impl Organization {
    /// Applies a change to a record, keeping the index in step: the record's facts are taken
    /// out before `change` and put back after it. What the record's descendants inherit may
    /// change with it (its owner, its shares, its own parent), so their inherited access is
    /// re-derived too.
    pub(crate) fn reindexing<T>(
        &mut self,
        record: RecordId,
        change: impl FnOnce(&mut Self) -> T,
    ) -> T {
        self.reindex_with(record, true, change)
    }

    /// [`Organization::reindexing`] for a change that leaves the record's columns and its
    /// being alive as they are (its owner, unit, shares or lookups): its places in the column
    /// indexes stay, rather than being taken out and put back (a sorted search per declared
    /// column each way).
    pub(crate) fn reindexing_facts<T>(
        &mut self,
        record: RecordId,
        change: impl FnOnce(&mut Self) -> T,
    ) -> T {
        self.reindex_with(record, false, change)
    }

    fn reindex_with<T>(
        &mut self,
        record: RecordId,
        columns: bool,
        change: impl FnOnce(&mut Self) -> T,
    ) -> T {
        // Out of the organisation while it reads the organisation; the empty index swapped in
        // is kept for the next change (a fresh one costs two hash maps' random state).
        let spare = self.spare_index.take().unwrap_or_default();
        let mut index = std::mem::replace(&mut self.index, spare);
        let columns = columns && self.indexing_columns();
        index.set_facts(self, record, false, columns);
        let out = change(self);
        index.set_facts(self, record, true, columns);
        index.refresh_inherited(self, record);
        // Most records have no children: no list and no set made for them.
        let children = self.children(record);
        if !children.is_empty() {
            let mut pending: Vec<RecordId> = children.iter().map(|(_, child)| *child).collect();
            let mut seen = std::collections::HashSet::from([record]);
            while let Some(r) = pending.pop() {
                if seen.insert(r) {
                    index.refresh_inherited(self, r);
                    pending.extend(self.children(r).iter().map(|(_, child)| *child));
                }
            }
        }
        let placeholder = std::mem::replace(&mut self.index, index);
        // Kept only as it was made (nothing may write to it while it stands in: if anything
        // did, it is dropped, as before).
        if placeholder.tables.is_empty() && placeholder.inherited_of.is_empty() {
            self.spare_index = Some(placeholder);
        }
        out
    }

    /// The index of a declared column of `table`.
    pub(crate) fn column_index(&self, table: TableId, column: &str) -> Option<&ColumnIndex> {
        self.index.tables.get(table.index())?.columns.get(column)
    }

    /// Every live record of `table` the user can read, as a bitmap of record ids.
    ///
    /// A union of bitmaps for ownership, unit depths, shares, inherited access and hierarchy;
    /// no record is visited one by one.
    #[must_use]
    pub fn readable_set(&self, user: UserId, table: TableId) -> RoaringBitmap {
        self.readable(user, table).to_bitmap()
    }

    /// What the user can read of `table`, as the bitmaps whose union it is (not yet unioned).
    pub(crate) fn readable(&self, user: UserId, table: TableId) -> Readable<'_> {
        let Some(t) = self.index.tables.get(table.index()) else {
            return Readable::Nothing;
        };
        let u = &self.users[user.index()];
        if !u.enabled {
            return Readable::Nothing;
        }
        if self.derived.admin[user.index()].is_some() {
            return Readable::All(&t.live);
        }
        let grants = self.grants(user, table, Privilege::Read);
        if grants.is_empty() {
            return Readable::Nothing;
        }
        if grants.iter().any(|g| g.depth == Depth::Organization) {
            return Readable::All(&t.live);
        }
        // Every bitmap the grants reach, unioned at once.
        let mut parts: Vec<&RoaringBitmap> = Vec::new();
        let personal = grants.iter().any(|g| g.is_personal());
        let team_only = |team: TeamId| {
            grants.iter().any(|g| {
                g.via
                    == Via::Team {
                        team,
                        team_only: true,
                    }
            })
        };
        // Ownership.
        if personal {
            parts.extend(t.by_user.get(&user));
        }
        for team in &u.teams {
            if personal || team_only(*team) {
                parts.extend(t.by_team.get(team));
            }
        }
        // Role depth.
        for g in grants {
            match g.depth {
                Depth::BusinessUnit => parts.extend(t.by_unit.get(&g.anchor)),
                Depth::ParentChild => parts.extend(t.by_subtree.get(&g.anchor)),
                Depth::None | Depth::User | Depth::Organization => {}
            }
        }
        // Hierarchy: Read reaches every level.
        if personal && self.hierarchy_applies(table) {
            for (report, _) in &self.derived.reports[user.index()] {
                parts.extend(t.by_user.get(report));
                parts.extend(t.shared_read.get(&Principal::User(*report)));
                for team in &self.users[report.index()].teams {
                    parts.extend(t.by_team.get(team));
                    parts.extend(t.shared_read.get(&Principal::Team(*team)));
                }
            }
        }
        // Explicit shares and inherited access, to the user, the organisation and the teams.
        for by_principal in [&t.shared_read, &t.inherited_read] {
            if personal {
                parts.extend(by_principal.get(&Principal::User(user)));
                parts.extend(by_principal.get(&Principal::Organization));
            }
            for team in &u.teams {
                if personal || team_only(*team) {
                    parts.extend(by_principal.get(&Principal::Team(*team)));
                }
            }
        }
        Readable::Union {
            parts,
            live: &t.live,
        }
    }

    /// Rebuilds the record index from the records (for measuring the rebuild).
    #[doc(hidden)]
    pub fn rebuild_record_index(&mut self) {
        self.rebuild_index();
    }

    /// The record index's size in bytes: the security bitmaps (serialized; their size in memory
    /// is close) and the column indexes.
    #[doc(hidden)]
    #[must_use]
    pub fn record_index_bytes(&self) -> (usize, usize) {
        fn sum<K>(m: &HashMap<K, RoaringBitmap>) -> usize {
            m.values().map(RoaringBitmap::serialized_size).sum()
        }
        let maps = |t: &TableBitmaps| {
            t.live.serialized_size()
                + sum(&t.by_user)
                + sum(&t.by_team)
                + sum(&t.by_unit)
                + sum(&t.by_subtree)
                + sum(&t.shared_read)
                + sum(&t.inherited_read)
        };
        let columns = |t: &TableBitmaps| t.columns.values().map(ColumnIndex::bytes).sum::<usize>();
        let bitmaps = self.index.tables.iter().map(maps).sum::<usize>()
            + self
                .index
                .inherited_of
                .iter()
                .map(|(_, v)| 16 + std::mem::size_of_val(v))
                .sum::<usize>();
        (bitmaps, self.index.tables.iter().map(columns).sum())
    }

    /// Whether the index equals a rebuild from the records (for tests of its maintenance).
    #[doc(hidden)]
    #[must_use]
    pub fn record_index_is_current(&self) -> bool {
        RecordIndex::build(self).same_as(&self.index)
    }
}

impl RecordIndex {
    /// Whether two indexes hold the same records: empty bitmaps left behind by removals, and
    /// column blocks cut at other places, are not differences.
    pub(crate) fn same_as(&self, other: &RecordIndex) -> bool {
        let mut fresh = self.clone();
        let mut current = other.clone();
        for index in [&mut fresh, &mut current] {
            for t in &mut index.tables {
                t.by_user.retain(|_, b| !b.is_empty());
                t.by_team.retain(|_, b| !b.is_empty());
                t.by_unit.retain(|_, b| !b.is_empty());
                t.by_subtree.retain(|_, b| !b.is_empty());
                t.shared_read.retain(|_, b| !b.is_empty());
                t.inherited_read.retain(|_, b| !b.is_empty());
                t.columns.retain(|_, c| *c != ColumnIndex::default());
            }
            while index
                .tables
                .last()
                .is_some_and(|t| *t == TableBitmaps::default())
            {
                index.tables.pop();
            }
        }
        fresh == current
    }
}

/// One table's record index as plain parts, borrowed (for a checkpoint, D120): every map's
/// non-empty bitmaps sorted by key; the column indexes sorted by column, each its rare values'
/// records in list order and its frequent values with their records. The units' subtrees are
/// left out: they are unions of the units' bitmaps, made again at load in a few unions a unit.
#[derive(Debug)]
pub struct TableIndexRef<'a> {
    /// The live records.
    pub live: &'a RoaringBitmap,
    /// By owning user.
    pub by_user: Vec<(UserId, &'a RoaringBitmap)>,
    /// By owning team.
    pub by_team: Vec<(TeamId, &'a RoaringBitmap)>,
    /// By owning unit.
    pub by_unit: Vec<(BusinessUnitId, &'a RoaringBitmap)>,
    /// Shared with Read, by principal.
    pub shared_read: Vec<(Principal, &'a RoaringBitmap)>,
    /// Read inherited through parental lookups, by principal.
    pub inherited_read: Vec<(Principal, &'a RoaringBitmap)>,
    /// The declared columns' indexes.
    pub columns: Vec<ColumnIndexRef<'a>>,
}

/// One column's index, borrowed.
#[derive(Debug)]
pub struct ColumnIndexRef<'a> {
    /// The column.
    pub column: &'a str,
    /// The records of values fewer than 1,024 records hold, in list order (value, then id),
    /// as runs to be read one after the other.
    pub rare: Vec<&'a [u32]>,
    /// The values at least 1,024 records hold, in list order, with their records.
    pub frequent: &'a [(crate::model::Value, RoaringBitmap)],
}

/// One table's record index as plain parts, owned (a decoded checkpoint's): what
/// [`TableIndexRef`] lends.
#[derive(Clone, Debug, Default)]
pub struct TableIndexParts {
    /// The live records.
    pub live: RoaringBitmap,
    /// By owning user.
    pub by_user: Vec<(UserId, RoaringBitmap)>,
    /// By owning team.
    pub by_team: Vec<(TeamId, RoaringBitmap)>,
    /// By owning unit.
    pub by_unit: Vec<(BusinessUnitId, RoaringBitmap)>,
    /// Shared with Read, by principal.
    pub shared_read: Vec<(Principal, RoaringBitmap)>,
    /// Read inherited through parental lookups, by principal.
    pub inherited_read: Vec<(Principal, RoaringBitmap)>,
    /// The declared columns' indexes.
    pub columns: Vec<ColumnIndexParts>,
}

/// One column's index, owned.
#[derive(Clone, Debug, Default)]
pub struct ColumnIndexParts {
    /// The column.
    pub column: String,
    /// The records of rare values, in list order.
    pub rare: Vec<u32>,
    /// The frequent values, in list order, with their records.
    pub frequent: Vec<(crate::model::Value, RoaringBitmap)>,
}

impl RecordIndex {
    /// The index as plain parts, borrowed, in an order that depends only on its content.
    pub(crate) fn parts(&self) -> Vec<TableIndexRef<'_>> {
        fn sorted<K: Ord + Copy>(m: &HashMap<K, RoaringBitmap>) -> Vec<(K, &RoaringBitmap)> {
            let mut out: Vec<_> = m
                .iter()
                .filter(|(_, b)| !b.is_empty())
                .map(|(k, b)| (*k, b))
                .collect();
            out.sort_unstable_by_key(|(k, _)| *k);
            out
        }
        self.tables
            .iter()
            .map(|t| {
                let mut columns: Vec<ColumnIndexRef<'_>> = t
                    .columns
                    .iter()
                    .filter(|(_, c)| **c != ColumnIndex::default())
                    .map(|(name, c)| ColumnIndexRef {
                        column: name,
                        rare: c.rare_blocks().collect(),
                        frequent: c.frequent(),
                    })
                    .collect();
                columns.sort_unstable_by(|a, b| a.column.cmp(b.column));
                TableIndexRef {
                    live: &t.live,
                    by_user: sorted(&t.by_user),
                    by_team: sorted(&t.by_team),
                    by_unit: sorted(&t.by_unit),
                    shared_read: sorted(&t.shared_read),
                    inherited_read: sorted(&t.inherited_read),
                    columns,
                }
            })
            .collect()
    }

    /// The index from its parts (a checkpoint's, D120), checked against the organisation it
    /// indexes as far as that is cheap: each table's live records are exactly its live
    /// records, every other bitmap and every column's records are among them, every key names
    /// an entity, every declared column of a table with records has its index holding as many
    /// records as the table. The units' subtrees are made from the units' bitmaps, and the
    /// inherited-access memo is the inherited bitmaps read by record.
    pub(crate) fn from_parts(
        org: &Organization,
        parts: Vec<TableIndexParts>,
    ) -> Result<RecordIndex, crate::error::ModelError> {
        use std::hash::Hash;
        fn map<K: Hash + Eq + Copy>(
            live: &RoaringBitmap,
            list: Vec<(K, RoaringBitmap)>,
            known: impl Fn(K) -> bool,
            what: &str,
        ) -> Result<HashMap<K, RoaringBitmap>, crate::error::ModelError> {
            let mut out = HashMap::with_capacity(list.len());
            for (k, b) in list {
                if !known(k) || !b.is_subset(live) || out.insert(k, b).is_some() {
                    return Err(bad(format!(
                        "{what}: an unknown or repeated key, or records not live"
                    )));
                }
            }
            Ok(out)
        }
        if parts.len() > org.tables.len() {
            return Err(bad("more tables than the organisation has"));
        }
        if org
            .table_records
            .iter()
            .skip(parts.len())
            .any(|l| !l.is_empty())
        {
            return Err(bad("a table with records is missing"));
        }
        let users = org.users.len();
        let teams = org.teams.len();
        let units = org.units.len();
        let user = |u: UserId| u.index() < users;
        let team = |t: TeamId| t.index() < teams;
        let unit = |u: BusinessUnitId| u.index() < units;
        let principal = |p: Principal| match p {
            Principal::User(u) => user(u),
            Principal::Team(t) => team(t),
            Principal::Organization => true,
        };
        let mut index = RecordIndex::default();
        let mut column_parts = Vec::with_capacity(parts.len());
        for (t, p) in parts.into_iter().enumerate() {
            let records = org.table_records.get(t).map_or(&[][..], Vec::as_slice);
            let ids = records.iter().map(|r| r.get());
            let listed = RoaringBitmap::from_sorted_iter(ids.clone())
                .unwrap_or_else(|_| ids.collect::<RoaringBitmap>());
            if p.live != listed {
                return Err(bad(format!("table {t}: the live records differ")));
            }
            let live = &p.live;
            let mut table = TableBitmaps {
                by_user: map(live, p.by_user, user, "by user")?,
                by_team: map(live, p.by_team, team, "by team")?,
                by_unit: map(live, p.by_unit, unit, "by unit")?,
                shared_read: map(live, p.shared_read, principal, "shared")?,
                inherited_read: map(live, p.inherited_read, principal, "inherited")?,
                ..TableBitmaps::default()
            };
            table.by_subtree = subtrees(org, &table.by_unit);
            table.live = p.live;
            index.tables.push(table);
            column_parts.push(p.columns);
        }
        // The records' placement and the column indexes are checked on two cores (the first
        // reads the tables' bitmaps, the second makes the column indexes beside them).
        let tables = &index.tables;
        let (placed, columns) = std::thread::scope(|s| {
            let placed = s.spawn(|| check_placement(org, tables));
            let columns = column_indexes(org, tables, column_parts);
            (
                placed
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                columns,
            )
        });
        placed?;
        for (table, columns) in index.tables.iter_mut().zip(columns?) {
            table.columns = columns;
        }
        index.inherited_of = inherited_memo(&index.tables);
        Ok(index)
    }
}

/// The column indexes of a checkpoint's tables, each checked to list each live record once and
/// every declared column to have one.
fn column_indexes(
    org: &Organization,
    tables: &[TableBitmaps],
    parts: Vec<Vec<ColumnIndexParts>>,
) -> Result<Vec<HashMap<String, ColumnIndex>>, crate::error::ModelError> {
    // One bit per record, reused column after column (a record listed twice is a bit set
    // twice): an eighth of a byte per record, in cache where a bitmap lookup is not.
    let mut seen = vec![0u64; org.records.len().div_ceil(64)];
    let mut out = Vec::with_capacity(parts.len());
    for (t, (table, parts)) in tables.iter().zip(parts).enumerate() {
        let live = &table.live;
        let declared = &org.tables[t].columns;
        let mut columns = HashMap::with_capacity(parts.len());
        for c in parts {
            if !declared.iter().any(|d| d.name == c.column)
                || columns.contains_key(&c.column)
                || !c.frequent.iter().all(|(_, b)| b.is_subset(live))
                || !each_once(&mut seen, live, &c.rare, &c.frequent)
            {
                return Err(bad(format!(
                    "table {t}: column `{}` does not list each live record once",
                    c.column
                )));
            }
            let value_of = |id: u32| org.records[id as usize].field(&c.column);
            let column = ColumnIndex::from_parts(&c.rare, c.frequent, &value_of);
            columns.insert(c.column, column);
        }
        if !live.is_empty() && declared.iter().any(|d| !columns.contains_key(&d.name)) {
            return Err(bad(format!("table {t}: a declared column has no index")));
        }
        out.push(columns);
    }
    Ok(out)
}

/// Whether a column's index lists each live record exactly once, `rare` and `frequent` together
/// (each frequent bitmap already among the live records): `seen` (a bit per record, all clear)
/// marks the records as they come, and is left clear.
fn each_once(
    seen: &mut [u64],
    live: &RoaringBitmap,
    rare: &[u32],
    frequent: &[(crate::model::Value, RoaringBitmap)],
) -> bool {
    let mut mark = |id: u32| {
        let (word, bit) = (id as usize / 64, 1u64 << (id % 64));
        match seen.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            _ => false,
        }
    };
    let mut fine =
        rare.iter().all(|id| mark(*id)) && frequent.iter().all(|(_, b)| b.iter().all(&mut mark));
    let count = rare.len() as u64 + frequent.iter().map(|(_, b)| b.len()).sum::<u64>();
    // As many as the live records, each once, and every live record among them: the same.
    fine = fine
        && count == live.len()
        && live.iter().all(|id| {
            seen.get(id as usize / 64)
                .is_some_and(|w| w & (1 << (id % 64)) != 0)
        });
    seen.fill(0);
    fine
}

/// Checks that a checkpoint's record index places each live record under exactly its table,
/// unit, owner and read-share principals: the bitmaps are written into a slot per record (a
/// record placed twice is a slot written twice), then the slots are compared with the records
/// in one pass in id order. No bitmap lookup per record: at ten million records those miss the
/// cache and took seconds. (The inherited bitmaps need the walk: they are taken under the MAC.)
fn check_placement(
    org: &Organization,
    tables: &[TableBitmaps],
) -> Result<(), crate::error::ModelError> {
    const TEAM: u32 = 1 << 31;
    fn owner_slot(owner: Owner) -> u32 {
        match owner {
            Owner::User(u) => u.get() + 1,
            Owner::Team(t) => TEAM | (t.get() + 1),
            Owner::None => 0,
        }
    }
    if org.users.len() >= TEAM as usize || org.teams.len() >= TEAM as usize {
        return Err(bad("more users or teams than the index can check"));
    }
    let n = org.records.len();
    // Per record: (table + 1) << 32 | (unit + 1), and its owner's slot; 0 where not placed.
    let mut placed = vec![0u64; n];
    let mut owned = vec![0u32; n];
    let mut read_shares = 0u64;
    for (t, table) in tables.iter().enumerate() {
        let table_bits = (t as u64 + 1) << 32;
        if table.by_unit.values().map(RoaringBitmap::len).sum::<u64>() != table.live.len() {
            return Err(bad(format!("table {t}: a live record is under no unit")));
        }
        for (unit, records) in &table.by_unit {
            let value = table_bits | (u64::from(unit.get()) + 1);
            for id in records {
                match placed.get_mut(id as usize) {
                    Some(slot @ 0) => *slot = value,
                    _ => return Err(bad(format!("table {t}: record {id} placed twice"))),
                }
            }
        }
        let owners = (table.by_user.iter())
            .map(|(u, b)| (Owner::User(*u), b))
            .chain(table.by_team.iter().map(|(t, b)| (Owner::Team(*t), b)));
        for (owner, records) in owners {
            let value = owner_slot(owner);
            for id in records {
                match owned.get_mut(id as usize) {
                    Some(slot @ 0) => *slot = value,
                    _ => return Err(bad(format!("table {t}: record {id} owned twice"))),
                }
            }
        }
        // Each (record, principal) at most once (one bitmap a principal, a record in one table):
        // each a read share of the record's, and as many as the records have (counted below).
        for (p, records) in &table.shared_read {
            for id in records {
                let shares = org
                    .records
                    .get(id as usize)
                    .map_or(&[][..], |r| &r.shares[..]);
                if !shares
                    .iter()
                    .any(|s| s.principal == *p && s.mask.contains(Privilege::Read))
                {
                    return Err(bad(format!(
                        "table {t}: record {id} is not shared with {p:?}"
                    )));
                }
            }
            read_shares += records.len();
        }
    }
    let mut principals: Vec<Principal> = Vec::new();
    let mut shared = 0u64;
    for (i, r) in org.records.iter().enumerate() {
        let (place, owner) = (placed[i], owned[i]);
        if !r.alive {
            if place != 0 || owner != 0 {
                return Err(bad(format!("record {i} is not live, and indexed")));
            }
            continue;
        }
        let table_bits = (r.table.index() as u64 + 1) << 32;
        if place != table_bits | (u64::from(r.business_unit.get()) + 1)
            || owner != owner_slot(r.owner)
        {
            return Err(bad(format!(
                "table {}: record {i} is not where it belongs",
                r.table.index()
            )));
        }
        if !r.shares.is_empty() {
            principals.clear();
            principals.extend(
                r.shares
                    .iter()
                    .filter(|s| s.mask.contains(Privilege::Read))
                    .map(|s| s.principal),
            );
            principals.sort_unstable();
            principals.dedup();
            shared += principals.len() as u64;
        }
    }
    if shared != read_shares {
        return Err(bad("the read shares differ from the records'"));
    }
    Ok(())
}

/// The inherited memo of a checkpoint's index: each record's principals, sorted (as
/// `refresh_inherited` leaves them), from the tables' inherited bitmaps — a table at a time,
/// so that the pairs being sorted are one table's, not every table's at once.
fn inherited_memo(tables: &[TableBitmaps]) -> crate::listmap::ListMap<RecordId, Principal> {
    let same_record = |a: &(u32, Principal), b: &(u32, Principal)| a.0 == b.0;
    let mut memo = crate::listmap::ListMap::default();
    // Room for the records that inherit, reserved once: as many as the pairs (most records
    // inherit from one principal, and a reserve made table by table would grow the map).
    let ones: u64 = (tables.iter())
        .flat_map(|table| table.inherited_read.values().map(RoaringBitmap::len))
        .sum();
    memo.reserve_one(usize::try_from(ones).unwrap_or(usize::MAX));
    let mut inherited: Vec<(u32, Principal)> = Vec::new();
    for table in tables {
        inherited.clear();
        for (who, b) in &table.inherited_read {
            inherited.extend(b.iter().map(|id| (id, *who)));
        }
        inherited.sort_unstable();
        for g in inherited.chunk_by(same_record) {
            // A record is in one table: each key once, nothing to replace.
            memo.put_new(
                RecordId::from_raw(g[0].0),
                g.iter().map(|(_, p)| *p).collect(),
            );
        }
    }
    memo
}

impl Organization {
    /// The record index as plain parts, borrowed (for a checkpoint, D120).
    #[must_use]
    pub fn index_ref(&self) -> Vec<TableIndexRef<'_>> {
        self.index.parts()
    }
}
