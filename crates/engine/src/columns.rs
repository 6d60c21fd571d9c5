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
//!
//! A search (where an insertion goes, where a value's run starts) first finds the block among
//! the blocks' **fences** — each block's last id with its value's sort prefix, in one array —
//! and reads a record only where two prefixes tie; then it reads records within the block.
//! Every record read is a cache miss or more on a large table, and a search over blocks read
//! one per step: the fences take about half of a search's reads away.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::ops::ControlFlow;

use roaring::RoaringBitmap;

use crate::list::{compare_values, rank_of};
use crate::model::Value;

/// Ids per block after a split (blocks hold 1 to `2 × BLOCK` ids).
const BLOCK: usize = 256;

/// A value shared by at least this many records keeps a bitmap of them.
pub(crate) const FREQUENT: usize = 1024;

/// A position in the blocks: block and offset (never the end of a block but the last).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    block: usize,
    offset: usize,
}

/// A block's last id and its value's [`sort_prefix`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fence {
    prefix: (u8, u64, u64),
    last: u32,
}

impl Fence {
    /// The fence of a block, which is never empty (an emptied block is removed at once).
    fn of<'v>(block: &[u32], value_of: &impl Fn(u32) -> &'v Value) -> Fence {
        debug_assert!(!block.is_empty(), "a block holds at least one id");
        let last = block.last().copied().unwrap_or_default();
        Fence {
            prefix: sort_prefix(value_of(last)),
            last,
        }
    }
}

/// A place in list order: the ids of a value below `id` come before it, the rest after.
struct Key<'a> {
    value: &'a Value,
    prefix: (u8, u64, u64),
    /// 0: before every id of the value; `1 << 32`: after every one.
    id: u64,
}

impl<'a> Key<'a> {
    fn new(value: &'a Value, id: u64) -> Self {
        Key {
            value,
            prefix: sort_prefix(value),
            id,
        }
    }

    /// Before the value's first id.
    fn start(value: &'a Value) -> Self {
        Key::new(value, 0)
    }

    /// After the value's last id.
    fn end(value: &'a Value) -> Self {
        Key::new(value, 1 << 32)
    }
}

/// One column's records in list order.
#[derive(Clone, Debug, Default)]
pub(crate) struct ColumnIndex {
    /// Records of values fewer than [`FREQUENT`] records hold, by (value, id).
    blocks: Vec<Vec<u32>>,
    /// Each block's fence, in block order.
    fences: Vec<Fence>,
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
        Self::cut(&rare, frequent, value_of)
    }

    /// The rare values' ids in list order cut into blocks, with their fences.
    fn cut<'v>(
        rare: &[u32],
        frequent: Vec<(Value, RoaringBitmap)>,
        value_of: &impl Fn(u32) -> &'v Value,
    ) -> Self {
        let blocks: Vec<Vec<u32>> = rare.chunks(BLOCK).map(<[u32]>::to_vec).collect();
        let fences = blocks.iter().map(|b| Fence::of(b, value_of)).collect();
        ColumnIndex {
            blocks,
            fences,
            frequent,
        }
    }

    /// The first position in the blocks whose (value, id) is not below `key`.
    fn seek<'v>(&self, key: &Key<'_>, value_of: &impl Fn(u32) -> &'v Value) -> Pos {
        let below = |x: u32| match compare_values(value_of(x), key.value) {
            Ordering::Less => true,
            Ordering::Equal => u64::from(x) < key.id,
            Ordering::Greater => false,
        };
        // Over the fences: a record is read only where the prefixes tie.
        let block = self
            .fences
            .partition_point(|f| match f.prefix.cmp(&key.prefix) {
                Ordering::Less => true,
                Ordering::Greater => false,
                Ordering::Equal => below(f.last),
            });
        let offset = self
            .blocks
            .get(block)
            .map_or(0, |b| b.partition_point(|id| below(*id)));
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
        // In the blocks: the first id past (v, r), and the first of value v or above.
        let past = |(v, r): (&Value, u32)| self.seek(&Key::new(v, u64::from(r) + 1), value_of);
        let run_start = |v: &Value| self.seek(&Key::start(v), value_of);
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
                    let run_end = self.seek(&Key::end(v), value_of);
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
        let pos = self.seek(&Key::start(value), value_of);
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
        let key = Key::new(value, u64::from(id));
        let pos = self.seek(&key, value_of);
        if self.blocks.is_empty() {
            self.blocks.push(Vec::new());
            self.fences.push(Fence {
                prefix: key.prefix,
                last: id,
            });
        }
        // Past the last block: the end of the last block.
        let block = pos.block.min(self.blocks.len() - 1);
        let offset = if block == pos.block {
            pos.offset
        } else {
            self.blocks[block].len()
        };
        if offset == self.blocks[block].len() {
            // The block's new last id.
            self.fences[block] = Fence {
                prefix: key.prefix,
                last: id,
            };
        }
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
            // The tail keeps the block's last id; the block ends earlier now.
            let tail_fence = self.fences[block];
            self.fences[block] = Fence::of(b, value_of);
            self.blocks.insert(block + 1, tail);
            self.fences.insert(block + 1, tail_fence);
        }
        run.min(FREQUENT)
    }

    /// Takes the ids from `a` up to `b` out of the blocks.
    fn take_range<'v>(&mut self, a: Pos, b: Pos, value_of: &impl Fn(u32) -> &'v Value) -> Vec<u32> {
        let out: Vec<u32> = self.range(a, b).collect();
        let last = b.block.min(self.blocks.len().saturating_sub(1));
        let count = self.blocks.len();
        for i in (a.block..=last).rev().filter(|i| *i < count) {
            let block = &mut self.blocks[i];
            let from = if i == a.block { a.offset } else { 0 };
            let to = if i == b.block { b.offset } else { block.len() };
            let ended = to == block.len();
            block.drain(from.min(to)..to);
            if block.is_empty() {
                self.blocks.remove(i);
                self.fences.remove(i);
            } else if ended {
                self.fences[i] = Fence::of(block, value_of);
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
            let start = self.seek(&Key::start(value), value_of);
            let end = self.seek(&Key::end(value), value_of);
            let ids = self.take_range(start, end, value_of);
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
        let pos = self.seek(&Key::new(value, u64::from(id)), value_of);
        let Some(b) = self.blocks.get_mut(pos.block) else {
            return;
        };
        if b.get(pos.offset) != Some(&id) {
            return;
        }
        b.remove(pos.offset);
        if b.is_empty() {
            self.blocks.remove(pos.block);
            self.fences.remove(pos.block);
        } else if pos.offset == b.len() {
            self.fences[pos.block] = Fence::of(b, value_of);
        }
    }

    /// Bytes held (ids at their capacity, bitmaps serialized).
    /// The index's heap (`memory.rs`).
    pub(crate) fn heap(&self) -> usize {
        use crate::memory::{bitmap_heap, value_heap, vec_heap};
        vec_heap(&self.blocks)
            + vec_heap(&self.fences)
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
    pub(crate) fn from_parts<'v>(
        rare: &[u32],
        frequent: Vec<(Value, RoaringBitmap)>,
        value_of: &impl Fn(u32) -> &'v Value,
    ) -> Self {
        Self::cut(rare, frequent, value_of)
    }

    pub(crate) fn bytes(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| 24 + std::mem::size_of::<Fence>() + 4 * b.capacity())
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
        // Each block's fence is its last id and that value's prefix.
        assert_eq!(index.fences.len(), index.blocks.len());
        for (fence, block) in index.fences.iter().zip(&index.blocks) {
            assert_eq!(*fence, Fence::of(block, &value_of));
        }
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

    /// Inserts every record of `vals` in the scrambled order `i * stride mod n` and checks the
    /// index against a build; then removes every `skip`th record (`i % skip == 0`) and checks again.
    fn insert_scrambled_then_remove(vals: &[Value], stride: u32, skip: u32) -> ColumnIndex {
        let n = vals.len() as u32;
        let value_of = |id: u32| &vals[id as usize];
        let mut index = ColumnIndex::default();
        for i in 0..n {
            index.insert((i * stride) % n, &value_of);
        }
        check(&index, vals, &sorted(vals, 0..n));
        for i in (0..n).step_by(skip as usize) {
            index.remove(i, &value_of);
        }
        check(
            &index,
            vals,
            &sorted(vals, (0..n).filter(|i| i % skip != 0)),
        );
        index
    }

    /// Integers and floats mixed, signed zeros among them: the search over the fences (by
    /// prefix) and within the blocks (by value) agree, and the index equals a build.
    #[test]
    fn numbers_of_both_kinds_keep_their_order() {
        let vals: Vec<Value> = (0..6_000)
            .map(|i| match i % 6 {
                0 => Value::Int(0),
                1 => Value::Float(-0.0),
                2 => Value::Float(0.0),
                3 => Value::Int(i64::from(i % 300) - 150),
                4 => Value::Float(f64::from(i % 301) / 2.0 - 75.0),
                _ => Value::Float(-f64::from(i % 7)),
            })
            .collect();
        insert_scrambled_then_remove(&vals, 2_003, 4);
    }

    /// Values whose sort prefixes tie (text longer than 16 bytes with a common start) and that
    /// differ after it, inserted and removed in a scrambled order: the fences read the records
    /// where prefixes tie, and stay each block's last id through splits and removals.
    #[test]
    fn tied_prefixes_keep_their_order() {
        let vals: Vec<Value> = (0..20_000)
            .map(|i| match i % 4 {
                0 => Value::Text(format!("the same sixteen bytes {:04}", (i * 31) % 2_000)),
                1 => Value::Text("the same sixteen".to_owned()),
                2 => Value::Int(i64::from(i % 50)),
                _ => Value::Text(format!("the same sixteen bytes {:04} and more", i % 97)),
            })
            .collect();
        let index = insert_scrambled_then_remove(&vals, 4_099, 3);
        assert!(index.blocks.len() > 2, "blocks split");
    }
}
