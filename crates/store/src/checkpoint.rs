//! Checkpoints (snapshots of an organisation's state at a revision), as every backend keeps
//! them: a row naming the organisation, the revision, the format, the length, the MAC of the
//! log row at that revision and the checkpoint's own MAC, and the bytes in chunks. What the
//! bytes mean is not the store's business (`strata-checkpoint` encodes them); the store only
//! guarantees that the bytes it hands back are the ones written for this organisation at this
//! revision of this log, under the log's key — a missing chunk, a changed byte, a checkpoint
//! moved to another organisation or revision, or a log row at its revision that is not the
//! one it was taken after is [`StoreError::CorruptCheckpoint`], never bytes.

use crate::chain::LogKey;
use crate::{Revision, StoreError};

/// How many checkpoints each organisation keeps: writing one removes the older ones beyond.
pub const KEEP_CHECKPOINTS: usize = 2;

/// The largest chunk of a checkpoint's bytes in one row.
pub(crate) const CHUNK: usize = 4 << 20;

/// What is known of a stored checkpoint without reading its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The revision whose state it holds.
    pub revision: Revision,
    /// The format of its bytes (`strata_checkpoint::FORMAT_VERSION` when written).
    pub format: u32,
    /// Its length in bytes.
    pub length: u64,
    /// When it was written (ms).
    pub at_ms: i64,
}

/// A checkpoint as stored, read back for verification (and, in the memory store, to tamper
/// with in tests).
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawCheckpoint {
    /// Its revision.
    pub revision: Revision,
    /// Its format.
    pub format: u32,
    /// When (ms).
    pub at_ms: i64,
    /// The length the row declares.
    pub length: u64,
    /// The MAC of the log row at its revision when it was written (hex).
    pub log_mac: String,
    /// Its MAC (hex).
    pub mac: String,
    /// Its chunks as stored: (sequence number, bytes), in sequence order.
    pub chunks: Vec<(u32, Vec<u8>)>,
}

pub(crate) fn corrupt(org: &str, revision: Revision, detail: impl Into<String>) -> StoreError {
    StoreError::CorruptCheckpoint {
        organization: org.to_owned(),
        revision,
        detail: detail.into(),
    }
}

/// A new checkpoint's row: the bytes cut into chunks and sealed.
pub(crate) fn sealed(
    key: &LogKey,
    org: &str,
    revision: Revision,
    format: u32,
    at_ms: i64,
    log_mac: &str,
    bytes: &[u8],
) -> RawCheckpoint {
    let chunks: Vec<&[u8]> = if bytes.is_empty() {
        vec![bytes]
    } else {
        bytes.chunks(CHUNK).collect()
    };
    let mac = key.checkpoint_mac(org, revision, format, at_ms, log_mac, &chunks);
    RawCheckpoint {
        revision,
        format,
        at_ms,
        length: bytes.len() as u64,
        log_mac: log_mac.to_owned(),
        mac,
        chunks: chunks
            .into_iter()
            .enumerate()
            .map(|(i, c)| (i as u32, c.to_vec()))
            .collect(),
    }
}

/// The bytes of a stored checkpoint, once every check holds: the chunks are numbered 0, 1, 2…
/// with none missing, their length is the declared one, the log row at its revision (`row_mac`,
/// as the log holds it now) is the one it was taken after, and its MAC holds.
pub(crate) fn verified(
    key: &LogKey,
    org: &str,
    raw: RawCheckpoint,
    row_mac: Option<&str>,
) -> Result<Vec<u8>, StoreError> {
    let revision = raw.revision;
    for (i, (seq, _)) in raw.chunks.iter().enumerate() {
        if *seq as usize != i {
            return Err(corrupt(
                org,
                revision,
                format!("chunk {i} is missing (found {seq}): the checkpoint is torn"),
            ));
        }
    }
    let length: usize = raw.chunks.iter().map(|(_, c)| c.len()).sum();
    if raw.chunks.is_empty() || length as u64 != raw.length {
        return Err(corrupt(
            org,
            revision,
            format!(
                "{length} bytes stored, {} declared: the checkpoint is torn",
                raw.length
            ),
        ));
    }
    let Some(row_mac) = row_mac else {
        return Err(corrupt(
            org,
            revision,
            "the log has no row at the checkpoint's revision",
        ));
    };
    if row_mac != raw.log_mac {
        return Err(corrupt(
            org,
            revision,
            "the log row at the checkpoint's revision is not the one it was taken after",
        ));
    }
    let chunks: Vec<&[u8]> = raw.chunks.iter().map(|(_, c)| c.as_slice()).collect();
    let mac = key.checkpoint_mac(org, revision, raw.format, raw.at_ms, row_mac, &chunks);
    if mac != raw.mac {
        return Err(corrupt(
            org,
            revision,
            "the checkpoint does not match its MAC: its bytes or its row were edited, or it was moved from another organisation or revision",
        ));
    }
    let mut bytes = Vec::with_capacity(length);
    for (_, c) in raw.chunks {
        bytes.extend_from_slice(&c);
    }
    Ok(bytes)
}
