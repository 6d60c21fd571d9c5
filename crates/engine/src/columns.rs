//! The column index: per declared column of a table, its live records in list order (by value,
//! then id). A value that many records share (at least [`FREQUENT`]) keeps a bitmap of them;
//! the records of rarer values are kept as blocks of ids in list order.
//!
//! An ordered list walks the order from the cursor, merging the blocks with the frequent
//! values' bitmaps; an equality filter takes the value's bitmap (or its run of ids, short by
//! construction) before a single record is read. The index holds ids only: values are read
//! from the records, so a column costs about 4 bytes per record of a rare value and about 2 or
//! fewer per record of a frequent one. Every change to a record's values goes through a removal
//! (old values) and an insertion (new values), and a value moves between the blocks and the
//! bitmaps as its count crosses [`FREQUENT`], so the index is a function of the records alone.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::ops::ControlFlow;

use roaring::RoaringBitmap;

use crate::list::{compare_values, rank_of};
use crate::model::Value;

/// Ids per block after a split (blocks hold 1 to `2 × BLOCK` ids).
const BLOCK: usize = 2048;

/// A value shared by at least this many records keeps a bitmap of them.
pub(crate) const FREQUENT: usize = 1024;

/// A position in the blocks: block and offset (never the end of a block but the last).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    block: usize,
    offset: usize,
}

/// One column's records in list order.
#[derive(Clone, Debug, Default)]
pub(crate) struct ColumnIndex {
    /// Records of values fewer than [`FREQUENT`] records hold, by (value, id).
    blocks: Vec<Vec<u32>>,
    /// Values at least [`FREQUENT`] records hold, in list order, with their records.
    frequent: Vec<(Value, RoaringBitmap)>,
}

impl PartialEq for ColumnIndex {
    /// The same records in the same order (block boundaries depend on history, not content).
    fn eq(&self, other: &Self) -> bool {
        self.blocks
            .iter()
            .flatten()
            .eq(other.blocks.iter().flatten())
            && self.frequent.len() == other.frequent.len()
            && self
                .frequent
                .iter()
                .zip(&other.frequent)
                .all(|((a, x), (b, y))| {
                    // Equal values of other kinds (1 and 1.0) are the same value here.
                    compare_values(a, b) == Ordering::Equal && x == y
                })
    }
}

/// A value's place in list order as far as its kind and first 16 bytes tell: if two prefixes
/// differ, the values compare the same way (`compare_values`); equal prefixes decide nothing.
fn sort_prefix(value: &Value) -> (u8, u64, u64) {
    /// f64 bits whose unsigned order is `total_cmp`'s order.
    fn ordered(f: f64) -> u64 {
        let bits = f.to_bits();
        if bits >> 63 == 1 {
            !bits
        } else {
            bits | (1 << 63)
        }
    }
    let (hi, lo) = match value {
        Value::Null => (0, 0),
        Value::Bool(b) => (u64::from(*b), 0),
        // Integers compare with floats as floats; the conversion keeps their order.
        Value::Int(i) => (ordered(*i as f64), 0),
        Value::Float(f) => (ordered(*f), 0),
        Value::Text(t) => {
            let mut bytes = [0u8; 16];
            let n = t.len().min(16);
            bytes[..n].copy_from_slice(&t.as_bytes()[..n]);
            let half = |from: usize| {
                let mut out = [0u8; 8];
                out.copy_from_slice(&bytes[from..from + 8]);
                u64::from_be_bytes(out)
            };
            (half(0), half(8))
        }
    };
    (rank_of(value), hi, lo)
}

impl ColumnIndex {
    /// The index of these records, built in one sort.
    ///
    /// Each record's value is read once into a sort entry that carries its kind and a 16-byte
    /// prefix in list order (numbers as ordered bits, text as its first bytes), so most
    /// comparisons touch no record; equal prefixes fall back to the values themselves.
    pub(crate) fn build<'v>(
        ids: impl Iterator<Item = u32>,
        value_of: &impl Fn(u32) -> &'v Value,
    ) -> Self {
        struct Entry<'v> {
            prefix: (u8, u64, u64),
            value: &'v Value,
            id: u32,
        }
        let mut entries: Vec<Entry> = ids
            .map(|id| {
                let value = value_of(id);
                Entry {
                    prefix: sort_prefix(value),
                    value,
                    id,
                }
            })
            .collect();
        entries.sort_unstable_by(|a, b| {
            a.prefix
                .cmp(&b.prefix)
                .then_with(|| compare_values(a.value, b.value))
                .then(a.id.cmp(&b.id))
        });
        let mut rare = Vec::new();
        let mut frequent = Vec::new();
        let mut start = 0;
        while start < entries.len() {
            let first = &entries[start];
            let len = entries[start..]
                .iter()
                .take_while(|e| {
                    e.prefix == first.prefix
                        && compare_values(e.value, first.value) == Ordering::Equal
                })
                .count();
            let run = entries[start..start + len].iter().map(|e| e.id);
            if len >= FREQUENT {
                frequent.push((first.value.clone(), run.collect()));
            } else {
                rare.extend(run);
            }
            start += len;
        }
        let blocks = rare.chunks(BLOCK).map(<[u32]>::to_vec).collect();
        ColumnIndex { blocks, frequent }
    }

    /// The first position in the blocks whose id is not `before` (the ids before it all are).
    fn partition(&self, before: impl Fn(u32) -> bool) -> Pos {
        let block = self
            .blocks
            .partition_point(|b| b.last().is_some_and(|id| before(*id)));
        let offset = self
            .blocks
            .get(block)
            .map_or(0, |b| b.partition_point(|id| before(*id)));
        Pos { block, offset }
    }

    /// The position after the last id.
    fn end(&self) -> Pos {
        Pos {
            block: self.blocks.len(),
            offset: 0,
        }
    }

    /// The ids from `pos` on, in list order.
    fn from(&self, pos: Pos) -> impl Iterator<Item = u32> + '_ {
        self.range(pos, self.end())
    }

    /// The ids before `pos`, in reverse list order.
    fn before(&self, pos: Pos) -> impl Iterator<Item = u32> + '_ {
        let first = self
            .blocks
            .get(pos.block)
            .map_or(&[][..], |b| &b[..pos.offset]);
        let rest = &self.blocks[..pos.block.min(self.blocks.len())];
        first
            .iter()
            .rev()
            .chain(rest.iter().rev().flat_map(|b| b.iter().rev()))
            .copied()
    }

    /// The ids from `a` up to `b` (excluded), in list order.
    fn range(&self, a: Pos, b: Pos) -> impl Iterator<Item = u32> + '_ {
        let last = b.block.min(self.blocks.len().saturating_sub(1));
        (a.block..=last)
            .filter(|i| *i < self.blocks.len())
            .flat_map(move |i| {
                let block = &self.blocks[i];
                let from = if i == a.block { a.offset } else { 0 };
                let to = if i == b.block { b.offset } else { block.len() };
                &block[from.min(to)..to]
            })
            .copied()
    }

    /// Where a frequent value is (or would be) among the frequent values.
    fn frequent_slot(&self, value: &Value) -> Result<usize, usize> {
        self.frequent
            .binary_search_by(|(v, _)| compare_values(v, value))
    }

    /// Visits the records in list order — by value, ascending or descending, and by id
    /// ascending among equal values — from just after the cursor `after` (a value and an id),
    /// until `visit` breaks.
    pub(crate) fn walk<'v>(
        &self,
        descending: bool,
        after: Option<(&Value, u32)>,
        value_of: &impl Fn(u32) -> &'v Value,
        mut visit: impl FnMut(u32) -> ControlFlow<()>,
    ) {
        let cmp = |x: u32, v: &Value| compare_values(value_of(x), v);
        // In the blocks: the first id past (v, r), and the first of value v or above.
        let past = |(v, r): (&Value, u32)| {
            self.partition(|x| cmp(x, v).then(x.cmp(&r)) != Ordering::Greater)
        };
        let run_start = |v: &Value| self.partition(|x| cmp(x, v) == Ordering::Less);
        // Where the walk starts: in the blocks, and among the frequent values.
        let (mut pos, mut slot) = match after {
            None if descending => (self.end(), self.frequent.len()),
            None => (
                Pos {
                    block: 0,
                    offset: 0,
                },
                0,
            ),
            Some((v, r)) => match self.frequent_slot(v) {
                // The rest of the cursor's value first.
                Ok(k) => {
                    if self.frequent[k]
                        .1
                        .range(r.saturating_add(1)..)
                        .try_for_each(&mut visit)
                        .is_break()
                    {
                        return;
                    }
                    (run_start(v), if descending { k } else { k + 1 })
                }
                Err(k) if descending => {
                    let run_end = self.partition(|x| cmp(x, v) != Ordering::Greater);
                    if self
                        .range(past((v, r)), run_end)
                        .try_for_each(&mut visit)
                        .is_break()
                    {
                        return;
                    }
                    (run_start(v), k)
                }
                Err(k) => (past((v, r)), k),
            },
        };
        if !descending {
            // Rare values up to each frequent value, then its records.
            for (v, ids) in &self.frequent[slot..] {
                let to = run_start(v);
                if self.range(pos, to).try_for_each(&mut visit).is_break()
                    || ids.iter().try_for_each(&mut visit).is_break()
                {
                    return;
                }
                pos = to;
            }
            let _ = self.from(pos).try_for_each(visit);
            return;
        }
        // Descending: the rare values' runs down to each frequent value (each run in
        // ascending id order), then its records.
        loop {
            let floor = match slot.checked_sub(1) {
                Some(k) => run_start(&self.frequent[k].0),
                None => Pos {
                    block: 0,
                    offset: 0,
                },
            };
            while pos != floor {
                let Some(last) = self.before(pos).next() else {
                    break;
                };
                let start = run_start(value_of(last));
                if self.range(start, pos).try_for_each(&mut visit).is_break() {
                    return;
                }
                pos = start;
            }
            let Some(k) = slot.checked_sub(1) else { return };
            if self.frequent[k]
                .1
                .range(0..)
                .try_for_each(&mut visit)
                .is_break()
            {
                return;
            }
            slot = k;
        }
    }

    /// The records whose value equals `value` (as a filter's `eq` compares).
    pub(crate) fn equal<'v>(
        &self,
        value: &Value,
        value_of: &impl Fn(u32) -> &'v Value,
    ) -> Cow<'_, RoaringBitmap> {
        if let Ok(slot) = self.frequent_slot(value) {
            return Cow::Borrowed(&self.frequent[slot].1);
        }
        // Fewer than FREQUENT records: their run in the blocks.
        let pos = self.partition(|id| compare_values(value_of(id), value) == Ordering::Less);
        Cow::Owned(
            self.from(pos)
                .take_while(|id| compare_values(value_of(*id), value) == Ordering::Equal)
                .collect(),
        )
    }

    /// Puts an id of a rare value into the blocks at its place; returns how many ids hold that
    /// value now, counted up to [`FREQUENT`].
    fn insert_rare<'v>(&mut self, id: u32, value_of: &impl Fn(u32) -> &'v Value) -> usize {
        let value = value_of(id);
        let pos = self
            .partition(|x| compare_values(value_of(x), value).then(x.cmp(&id)) == Ordering::Less);
        if self.blocks.is_empty() {
            self.blocks.push(Vec::new());
        }
        // Past the last block: the end of the last block.
        let block = pos.block.min(self.blocks.len() - 1);
        let offset = if block == pos.block {
            pos.offset
        } else {
            self.blocks[block].len()
        };
        self.blocks[block].insert(offset, id);
        // Its neighbours of equal value (usually none): the run it belongs to.
        let at = Pos { block, offset };
        let equal = |x: &u32| compare_values(value_of(*x), value) == Ordering::Equal;
        let run = self.before(at).take(FREQUENT).take_while(equal).count()
            + self.from(at).take(FREQUENT).take_while(equal).count();
        let b = &mut self.blocks[block];
        if b.len() > 2 * BLOCK {
            let tail = b.split_off(BLOCK);
            b.shrink_to_fit();
            self.blocks.insert(block + 1, tail);
        }
        run.min(FREQUENT)
    }

    /// Takes the ids from `a` up to `b` out of the blocks.
    fn take_range(&mut self, a: Pos, b: Pos) -> Vec<u32> {
        let out: Vec<u32> = self.range(a, b).collect();
        let last = b.block.min(self.blocks.len().saturating_sub(1));
        let count = self.blocks.len();
        for i in (a.block..=last).rev().filter(|i| *i < count) {
            let block = &mut self.blocks[i];
            let from = if i == a.block { a.offset } else { 0 };
            let to = if i == b.block { b.offset } else { block.len() };
            block.drain(from.min(to)..to);
            if block.is_empty() {
                self.blocks.remove(i);
            }
        }
        out
    }

    /// Adds a record with its current value.
    pub(crate) fn insert<'v>(&mut self, id: u32, value_of: &impl Fn(u32) -> &'v Value) {
        let value = value_of(id);
        let slot = match self.frequent_slot(value) {
            Ok(slot) => {
                self.frequent[slot].1.insert(id);
                return;
            }
            Err(slot) => slot,
        };
        // The value's run in the blocks: to a bitmap when it reaches FREQUENT records.
        if self.insert_rare(id, value_of) == FREQUENT {
            let start = self.partition(|x| compare_values(value_of(x), value) == Ordering::Less);
            let end = self.partition(|x| compare_values(value_of(x), value) != Ordering::Greater);
            let ids = self.take_range(start, end);
            self.frequent
                .insert(slot, (value.clone(), ids.into_iter().collect()));
        }
    }

    /// Removes a record, which must still hold the value it was added with.
    pub(crate) fn remove<'v>(&mut self, id: u32, value_of: &impl Fn(u32) -> &'v Value) {
        let value = value_of(id);
        if let Ok(slot) = self.frequent_slot(value) {
            let ids = &mut self.frequent[slot].1;
            ids.remove(id);
            if (ids.len() as usize) < FREQUENT {
                // Rare again: back to the blocks.
                let (_, ids) = self.frequent.remove(slot);
                for x in &ids {
                    let _ = self.insert_rare(x, value_of);
                }
            }
            return;
        }
        let pos = self
            .partition(|x| compare_values(value_of(x), value).then(x.cmp(&id)) == Ordering::Less);
        let Some(b) = self.blocks.get_mut(pos.block) else {
            return;
        };
        if b.get(pos.offset) != Some(&id) {
            return;
        }
        b.remove(pos.offset);
        if b.is_empty() {
            self.blocks.remove(pos.block);
        }
    }

    /// Bytes held (ids at their capacity, bitmaps serialized).
    /// The index's heap (`memory.rs`).
    pub(crate) fn heap(&self) -> usize {
        use crate::memory::{bitmap_heap, value_heap, vec_heap};
        vec_heap(&self.blocks)
            + self.blocks.iter().map(vec_heap).sum::<usize>()
            + vec_heap(&self.frequent)
            + self
                .frequent
                .iter()
                .map(|(v, b)| value_heap(v) + bitmap_heap(b))
                .sum::<usize>()
    }

    /// The rare values' records in list order, as the blocks hold them (for a checkpoint).
    pub(crate) fn rare_blocks(&self) -> impl Iterator<Item = &[u32]> {
        self.blocks.iter().map(Vec::as_slice)
    }

    /// The frequent values and their records (for a checkpoint).
    pub(crate) fn frequent(&self) -> &[(Value, RoaringBitmap)] {
        &self.frequent
    }

    /// An index from its parts (a checkpoint's): the rare values' records in list order, cut
    /// into blocks as a build cuts them, and the frequent values in list order.
    pub(crate) fn from_parts(rare: &[u32], frequent: Vec<(Value, RoaringBitmap)>) -> Self {
        ColumnIndex {
            blocks: rare.chunks(BLOCK).map(<[u32]>::to_vec).collect(),
            frequent,
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| 24 + 4 * b.capacity())
            .sum::<usize>()
            + self
                .frequent
                .iter()
                .map(|(_, b)| 32 + b.serialized_size())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values with ties, of every kind, some held by more than FREQUENT records.
    fn values(n: u32) -> Vec<Value> {
        (0..n)
            .map(|i| match i % 7 {
                0 => Value::Null,
                1 | 2 => Value::Int(i64::from(i % 3)),
                3 => Value::Float(f64::from(i % 5) / 2.0),
                _ => Value::Text(format!("t{}", i % 11)),
            })
            .collect()
    }

    fn sorted(vals: &[Value], ids: impl Iterator<Item = u32>) -> Vec<u32> {
        let mut ids: Vec<u32> = ids.collect();
        ids.sort_by(|a, b| compare_values(&vals[*a as usize], &vals[*b as usize]).then(a.cmp(b)));
        ids
    }

    /// The index equals a build of the same records, answers `equal` and walks in list order
    /// from any cursor, both ways.
    fn check(index: &ColumnIndex, vals: &[Value], kept: &[u32]) {
        let value_of = |id: u32| &vals[id as usize];
        assert_eq!(
            *index,
            ColumnIndex::build(kept.iter().rev().copied(), &value_of)
        );
        for v in [
            Value::Null,
            Value::Int(1),
            Value::Float(1.0),
            Value::Text("t3".into()),
            Value::Text("none".into()),
        ] {
            let expected: RoaringBitmap = kept
                .iter()
                .copied()
                .filter(|id| compare_values(&vals[*id as usize], &v) == Ordering::Equal)
                .collect();
            assert_eq!(*index.equal(&v, &value_of), expected, "{v:?}");
        }
        for descending in [false, true] {
            let mut order = kept.to_vec();
            order.sort_by(|a, b| {
                let c = compare_values(&vals[*a as usize], &vals[*b as usize]);
                let c = if descending { c.reverse() } else { c };
                c.then(a.cmp(b))
            });
            for start in (0..=order.len()).step_by(97).chain([order.len()]) {
                let after = start
                    .checked_sub(1)
                    .map(|i| (&vals[order[i] as usize], order[i]));
                let mut seen = Vec::new();
                index.walk(descending, after, &value_of, |id| {
                    seen.push(id);
                    ControlFlow::Continue(())
                });
                assert_eq!(
                    seen,
                    order[start..],
                    "descending {descending}, from {start}"
                );
            }
        }
    }

    #[test]
    fn incremental_changes_equal_a_build() {
        let n = 12_000;
        let vals = values(n);
        let value_of = |id: u32| &vals[id as usize];
        let mut index = ColumnIndex::default();
        // Insert in a scrambled order: values become frequent on the way.
        for i in 0..n {
            index.insert((i * 7919) % n, &value_of);
        }
        check(&index, &vals, &sorted(&vals, 0..n));
        assert!(index.blocks.len() > 2, "blocks split");
        let frequent = index.frequent.len();
        assert!(frequent >= 2, "frequent values");
        // Remove every third record: some values turn rare again.
        for i in (0..n).step_by(3) {
            index.remove(i, &value_of);
        }
        assert!(index.frequent.len() < frequent, "values turned rare");
        assert!(!index.frequent.is_empty());
        check(&index, &vals, &sorted(&vals, (0..n).filter(|i| i % 3 != 0)));
    }
}
