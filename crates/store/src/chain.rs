//! The audit hash chain: each entry's HMAC-SHA-256 covers the previous entry's HMAC and the
//! entry's canonical JSON, under a key kept outside the database, so that whoever can edit the
//! database file cannot recompute the chain.

use sha2::{Digest, Sha256};

use crate::{AuditRecord, StoreError};

/// The chain's starting value.
pub(crate) const GENESIS: &str = "genesis";

/// The secret key of the audit chain.
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

impl AuditKey {
    /// A key from 32 bytes.
    #[must_use]
    pub fn new(bytes: [u8; 32]) -> Self {
        AuditKey(bytes)
    }

    /// A fresh random key, from the operating system.
    pub fn random() -> Result<Self, StoreError> {
        let mut bytes = [0u8; 32];
        let mut f = std::fs::File::open("/dev/urandom")
            .map_err(|e| StoreError::Database(format!("random key: {e}")))?;
        std::io::Read::read_exact(&mut f, &mut bytes)
            .map_err(|e| StoreError::Database(format!("random key: {e}")))?;
        Ok(AuditKey(bytes))
    }

    /// Reads the key file; `None` when there is no such file.
    pub fn load(path: &std::path::Path) -> Result<Option<Self>, StoreError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StoreError::AuditKey(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        let bytes = hex::decode(text.trim())
            .map_err(|e| StoreError::Corrupt(format!("{}: {e}", path.display())))?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
            StoreError::Corrupt(format!("{}: the key must be 32 bytes", path.display()))
        })?;
        Ok(Some(AuditKey(bytes)))
    }

    /// Reads the key file, or creates it (mode 0600) with a random key.
    pub fn load_or_create(path: &std::path::Path) -> Result<Self, StoreError> {
        if let Some(key) = Self::load(path)? {
            return Ok(key);
        }
        let key = AuditKey::random()?;
        write_private(path, &hex::encode(key.0))
            .map_err(|e| StoreError::Database(format!("{}: {e}", path.display())))?;
        Ok(key)
    }

    fn hmac(&self, message: &[u8]) -> String {
        let mut inner = Sha256::new();
        inner.update(self.0.map(|b| b ^ 0x36));
        inner.update([0x36u8; 32]);
        inner.update(message);
        let inner = inner.finalize();
        let mut outer = Sha256::new();
        outer.update(self.0.map(|b| b ^ 0x5c));
        outer.update([0x5cu8; 32]);
        outer.update(inner);
        hex::encode(outer.finalize())
    }

    /// The HMAC of one entry, chained to the previous entry's.
    pub(crate) fn entry_hash(
        &self,
        prev: &str,
        seq: u64,
        revision: u64,
        at_ms: i64,
        retention_days: i64,
        record: &AuditRecord,
    ) -> String {
        // Canonical form: a JSON array in fixed order (serde_json keeps struct field order).
        let body = serde_json::json!([seq, revision, at_ms, retention_days, record]);
        self.hmac(format!("{prev}\n{body}").as_bytes())
    }

    /// A value that identifies the key without revealing it: a database can keep it to refuse
    /// a different key, which would otherwise chain new entries under the wrong key.
    pub(crate) fn fingerprint(&self) -> String {
        self.hmac(b"strata audit key fingerprint")
    }

    /// The HMAC that seals a chain head or anchor (seq, hash) so it cannot be moved.
    pub(crate) fn seal(&self, what: &str, seq: u64, hash: &str) -> String {
        self.hmac(format!("{what}\n{seq}\n{hash}").as_bytes())
    }
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    }
}

/// Verifies a chain given its anchor (the last expired entry), its entries in order and its
/// sealed head.
pub(crate) fn verify(
    key: &AuditKey,
    anchor: (u64, &str, &str),
    entries: &[crate::AuditEntry],
    head: (u64, &str, &str),
) -> crate::Verification {
    use crate::Verification::{Intact, Tampered};
    let (anchor_seq, anchor_hash, anchor_seal) = anchor;
    if anchor_seq > 0 && key.seal("anchor", anchor_seq, anchor_hash) != anchor_seal {
        return Tampered {
            seq: anchor_seq,
            problem: "the anchor of expired entries was altered".to_owned(),
        };
    }
    let (mut seq, mut prev) = (
        anchor_seq,
        if anchor_seq == 0 {
            GENESIS.to_owned()
        } else {
            anchor_hash.to_owned()
        },
    );
    for e in entries {
        if e.seq != seq + 1 {
            return Tampered {
                seq: seq + 1,
                problem: format!("entry {} is missing (found {} next)", seq + 1, e.seq),
            };
        }
        let expected = key.entry_hash(
            &prev,
            e.seq,
            e.revision,
            e.at_ms,
            e.retention_days,
            &e.record,
        );
        if expected != e.hash {
            return Tampered {
                seq: e.seq,
                problem: "the entry does not match its hash: edited, or inserted".to_owned(),
            };
        }
        seq = e.seq;
        prev = e.hash.clone();
    }
    let (head_seq, head_hash, head_seal) = head;
    if key.seal("head", head_seq, head_hash) != head_seal {
        return Tampered {
            seq: head_seq,
            problem: "the chain head was altered".to_owned(),
        };
    }
    if head_seq != seq || head_hash != prev {
        return Tampered {
            seq: seq + 1,
            problem: format!(
                "the chain ends at entry {seq} but its head says {head_seq}: entries were removed or added at the end"
            ),
        };
    }
    Intact {
        entries: entries.len() as u64,
    }
}
