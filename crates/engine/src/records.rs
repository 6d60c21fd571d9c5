//! The records of an organisation, by id, in chunks of a fixed size.
//!
//! One vector of ten million records (104 bytes each) would be reallocated and copied as it
//! grows, under the organisation's write lock: half a second at nine million records with
//! mimalloc, a stall every reader feels. Chunks never move once full: a growth adds a chunk
//! (and moves the small vector of chunk pointers), so a create costs the same at any size.
//! The first chunk grows as a vector does, so that a small organisation takes no more than
//! its records need; every later chunk is allocated whole.

use std::ops::{Index, IndexMut};

use crate::model::Record;
use crate::organization::WriteFigures;

/// Records per chunk: 65,536 (6.8 MB of fixed parts per chunk).
const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;
const MASK: usize = CHUNK - 1;

/// Records by id (deleted ones stay, not alive), in chunks that never move once full.
#[derive(Clone, Debug, Default)]
pub struct Records {
    chunks: Vec<Vec<Record>>,
    len: usize,
}

impl Records {
    /// No records.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of records (deleted ones included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The record at `index`, if there is one.
    #[inline]
    pub fn get(&self, index: usize) -> Option<&Record> {
        (index < self.len).then(|| &self.chunks[index >> CHUNK_BITS][index & MASK])
    }

    /// Appends a record (its id is the length before).
    pub fn push(&mut self, record: Record) {
        let at = self.len >> CHUNK_BITS;
        if at == self.chunks.len() {
            // A second chunk and after: the organisation is large, allocate the chunk whole.
            let capacity = if at == 0 { 0 } else { CHUNK };
            self.chunks.push(Vec::with_capacity(capacity));
        }
        let chunk = &mut self.chunks[at];
        if chunk.len() == chunk.capacity() {
            // Only the first chunk grows: doubling, up to the chunk size exactly.
            let grown = (chunk.len() * 2).clamp(16, CHUNK);
            chunk.reserve_exact(grown - chunk.len());
        }
        chunk.push(record);
        self.len += 1;
    }

    /// Makes room for `more` records without a growth of the first chunk on the way (only the
    /// chunk vector is reserved beyond the first chunk: later chunks are allocated whole).
    pub fn reserve(&mut self, more: usize) {
        let wanted = self.len.saturating_add(more);
        self.chunks
            .reserve(wanted.div_ceil(CHUNK).saturating_sub(self.chunks.len()));
        if self.len < CHUNK {
            if self.chunks.is_empty() {
                self.chunks.push(Vec::new());
            }
            let first = &mut self.chunks[0];
            let room = wanted.min(CHUNK);
            first.reserve_exact(room.saturating_sub(first.len()));
        }
    }

    /// Keeps the first `len` records (the journal's rollback of creates).
    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let chunks = len.div_ceil(CHUNK);
        // Keep the emptied chunk that `len` ends in (it will fill again); free the others.
        let chunks = chunks.max(1);
        self.chunks.truncate(chunks);
        self.chunks[chunks - 1].truncate(len - (chunks - 1) * CHUNK);
        self.len = len;
    }

    /// The records in id order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Record> + '_ {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// Bytes held for the records' fixed parts (spare capacity included).
    pub fn allocated_bytes(&self) -> usize {
        self.chunks.capacity() * size_of::<Vec<Record>>()
            + self
                .chunks
                .iter()
                .map(|c| c.capacity() * size_of::<Record>())
                .sum::<usize>()
    }
}

impl Index<usize> for Records {
    type Output = Record;

    /// Past the end panics as a vector does: the chunks' own lengths add up to `len`, so
    /// their bounds checks are the check (none added on the path of every read).
    #[inline]
    fn index(&self, index: usize) -> &Record {
        &self.chunks[index >> CHUNK_BITS][index & MASK]
    }
}

impl IndexMut<usize> for Records {
    #[inline]
    fn index_mut(&mut self, index: usize) -> &mut Record {
        &mut self.chunks[index >> CHUNK_BITS][index & MASK]
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = &'a Record;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'a, Vec<Record>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.chunks.iter().flatten()
    }
}

impl FromIterator<Record> for Records {
    fn from_iter<I: IntoIterator<Item = Record>>(iter: I) -> Self {
        let mut records = Records::new();
        for r in iter {
            records.push(r);
        }
        records
    }
}

/// How records were kept, for [`record_growth_figures`].
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordsDesign {
    /// One vector grown by an eighth when full (the design before chunks).
    Vector,
    /// [`Records`]: chunks of 65,536.
    Chunks,
}

/// Benchmark support (`strata bench records`): `records` records appended one by one, as
/// creates append them, kept as `design` says; then read back by id in a scattered order.
/// The records are made before the clock starts (a create's other work is not measured).
#[doc(hidden)]
#[must_use]
pub fn record_growth_figures(records: usize, design: RecordsDesign) -> WriteFigures {
    use std::time::{Duration, Instant};
    let made: Vec<Record> = (0..records)
        .map(|i| crate::organization::keyed_record(format!("{i:x}")))
        .collect();
    let (mut slowest, mut slowest_at) = (Duration::ZERO, 0);
    let mut vector: Vec<Record> = Vec::new();
    let mut chunks = Records::new();
    let started = Instant::now();
    for (i, r) in made.into_iter().enumerate() {
        let one = Instant::now();
        match design {
            RecordsDesign::Vector => {
                if vector.len() == vector.capacity() {
                    vector.reserve_exact(vector.len() / 8 + 16);
                }
                vector.push(r);
            }
            RecordsDesign::Chunks => chunks.push(r),
        }
        if one.elapsed() > slowest {
            (slowest, slowest_at) = (one.elapsed(), i);
        }
    }
    let pushed = started.elapsed();
    // Scattered ids: a multiplicative walk over the ids (every id once when `records` is odd).
    let n = records.max(1) as u64;
    let started = Instant::now();
    let mut keys = 0usize;
    for i in 0..n {
        let id = (i.wrapping_mul(2_654_435_761) % n) as usize;
        keys += match design {
            RecordsDesign::Vector => vector.get(id).map_or(0, |r| r.key.len()),
            RecordsDesign::Chunks => chunks.get(id).map_or(0, |r| r.key.len()),
        };
    }
    let read = started.elapsed();
    std::hint::black_box(keys);
    WriteFigures::of(records, pushed, (slowest, slowest_at), records, read)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> Record {
        crate::organization::keyed_record(format!("r{i}"))
    }

    #[test]
    fn records_keep_their_ids_across_chunks_and_truncation() {
        let mut records = Records::new();
        let n = CHUNK * 2 + 17;
        for i in 0..n {
            records.push(record(i));
        }
        assert_eq!(records.len(), n);
        assert!((0..n).all(|i| *records[i].key == format!("r{i}")));
        assert!(
            records
                .iter()
                .map(|r| &r.key)
                .eq((0..n).map(|i| &records[i].key))
        );
        assert!(records.get(n).is_none());
        // The first chunk grew to the chunk size exactly; later chunks were allocated whole.
        assert!(records.chunks.iter().all(|c| c.capacity() == CHUNK));

        for cut in [n - 1, CHUNK * 2, CHUNK * 2 - 1, CHUNK + 3, CHUNK, 5, 0] {
            records.truncate(cut);
            assert_eq!(records.len(), cut);
            assert_eq!(records.iter().count(), cut);
            assert!(records.get(cut).is_none());
            if cut > 0 {
                assert_eq!(&*records[cut - 1].key, format!("r{}", cut - 1));
            }
        }
        // Pushing after truncation gives the next ids again.
        for i in 0..CHUNK + 2 {
            records.push(record(i));
        }
        assert!((0..CHUNK + 2).all(|i| *records[i].key == format!("r{i}")));
        assert_eq!(records.iter().count(), CHUNK + 2);
    }

    #[test]
    fn reserve_sizes_the_first_chunk_only() {
        let mut records = Records::new();
        records.reserve(100);
        assert_eq!(records.chunks[0].capacity(), 100);
        records.reserve(10 * CHUNK);
        assert_eq!(records.chunks[0].capacity(), CHUNK);
        assert_eq!(records.chunks.len(), 1);
        for i in 0..CHUNK + 1 {
            records.push(record(i));
        }
        assert_eq!(records.len(), CHUNK + 1);
    }

    #[test]
    #[should_panic(expected = "index out of bounds")]
    fn an_index_past_the_end_panics() {
        let mut records: Records = (0..5).map(record).collect();
        records.truncate(3);
        let _ = &records[3];
    }
}
