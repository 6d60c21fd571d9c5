//! The keyed chains: the audit trail's and the operation log's.
//!
//! **Audit**: each entry's HMAC-SHA-256 covers the previous entry's HMAC and the entry's
//! canonical JSON, under a key kept outside the database, so that whoever can edit the
//! database file cannot recompute the chain. The organisation keeps a sealed head (and, once
//! entries expired, a sealed anchor), and the seals name the organisation: a chain cannot be
//! moved to another organisation, and a write refuses to extend a head whose seal does not
//! hold.
//!
//! **Operation log**: each row's HMAC-SHA-256 covers the organisation, the revision, the
//! previous row's MAC, the time and the operation's stored bytes, under a key derived from the
//! audit key ([`LogKey`]: domain-separated, so no log MAC can stand for an audit hash or seal,
//! nor the reverse). The organisation's row keeps a sealed head (revision, last MAC, and a MAC
//! over both), so that rows removed or added at the end are detected too.

use sha2::{Digest, Sha256};

use crate::{AuditRecord, LogDamage, LogEntry, Revision, StoreError, StoredOperation};

/// A string as JSON (quoted and escaped, as `serde_json` writes it).
fn json_text(out: &mut Vec<u8>, text: &str) -> Result<(), serde_json::Error> {
    serde_json::to_writer(out, text)
}

/// The chain's starting value.
pub(crate) const GENESIS: &str = "genesis";

/// The secret key of the audit chain, with its HMAC's inner and outer states computed once
/// (each MAC then hashes its message and one block less on each side).
#[derive(Clone)]
pub struct AuditKey {
    bytes: [u8; 32],
    inner: Sha256,
    outer: Sha256,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

impl AuditKey {
    /// A key from 32 bytes.
    #[must_use]
    pub fn new(bytes: [u8; 32]) -> Self {
        let mut inner = Sha256::new();
        inner.update(bytes.map(|b| b ^ 0x36));
        inner.update([0x36u8; 32]);
        let mut outer = Sha256::new();
        outer.update(bytes.map(|b| b ^ 0x5c));
        outer.update([0x5cu8; 32]);
        AuditKey {
            bytes,
            inner,
            outer,
        }
    }

    /// A fresh random key, from the operating system.
    pub fn random() -> Result<Self, StoreError> {
        let mut bytes = [0u8; 32];
        let mut f = std::fs::File::open("/dev/urandom")
            .map_err(|e| StoreError::Database(format!("random key: {e}")))?;
        std::io::Read::read_exact(&mut f, &mut bytes)
            .map_err(|e| StoreError::Database(format!("random key: {e}")))?;
        Ok(AuditKey::new(bytes))
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
        Ok(Some(AuditKey::new(bytes)))
    }

    /// Reads the key file, or creates it (mode 0600) with a random key.
    pub fn load_or_create(path: &std::path::Path) -> Result<Self, StoreError> {
        if let Some(key) = Self::load(path)? {
            return Ok(key);
        }
        let key = AuditKey::random()?;
        write_private(path, &hex::encode(key.bytes))
            .map_err(|e| StoreError::Database(format!("{}: {e}", path.display())))?;
        Ok(key)
    }

    fn hmac(&self, message: &[u8]) -> String {
        hex::encode(self.hmac_bytes(message))
    }

    fn hmac_bytes(&self, message: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(message);
        let inner = inner.finalize();
        let mut outer = self.outer.clone();
        outer.update(inner);
        outer.finalize().into()
    }

    /// The key of the operation-log chains, derived from this one.
    /// A key for another purpose, derived from this one (`HMAC(key, "strata derived key v1\n"
    /// ‖ purpose)`): every process holding the same key file derives the same key.
    #[must_use]
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        self.hmac_bytes(format!("strata derived key v1\n{purpose}").as_bytes())
    }

    pub(crate) fn log_key(&self) -> LogKey {
        LogKey::new(self.hmac_bytes(b"strata operation log key v1"))
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
        self.entry_hash_with(prev, seq, revision, at_ms, retention_days, record, None)
    }

    /// The entry after `head` (seq and hash), for `record` at `revision`: its seq, its detail as
    /// stored (written once, and hashed as it is stored) and its hash; `head` moves to it.
    pub(crate) fn next_entry(
        &self,
        head: &mut (u64, String),
        revision: Revision,
        at_ms: i64,
        retention_days: i64,
        record: &AuditRecord,
    ) -> (u64, String, String) {
        let seq = head.0 + 1;
        let detail = record.detail_string();
        let hash = self.entry_hash_with(
            &head.1,
            seq,
            revision,
            at_ms,
            retention_days,
            record,
            Some(&detail),
        );
        *head = (seq, hash.clone());
        (seq, detail, hash)
    }

    /// [`AuditKey::entry_hash`] with the record's detail already written as JSON (`detail`:
    /// `record.detail` as `to_string` writes it, the text a writer stores), so that a writer
    /// serializes each detail once.
    #[allow(
        clippy::too_many_arguments,
        reason = "the fields of the canonical form, and the detail's text"
    )]
    pub(crate) fn entry_hash_with(
        &self,
        prev: &str,
        seq: u64,
        revision: u64,
        at_ms: i64,
        retention_days: i64,
        record: &AuditRecord,
        detail: Option<&str>,
    ) -> String {
        use std::io::Write as _;
        // Canonical form: `[seq, revision, at_ms, retention_days, record]` as `json!` prints it
        // (compact; the record an object with its keys sorted), written straight into one
        // buffer. `the_entry_hash_is_that_of_the_json_value_form` holds it to the `json!` form.
        let mut message = Vec::with_capacity(prev.len() + 256 + detail.map_or(0, str::len));
        message.extend_from_slice(prev.as_bytes());
        let _ = write!(
            message,
            "\n[{seq},{revision},{at_ms},{retention_days},{{\"action\":"
        );
        let written = json_text(&mut message, &record.action)
            .and_then(|()| {
                message.extend_from_slice(b",\"detail\":");
                match detail.or(record.detail_text.as_deref()) {
                    Some(text) => {
                        message.extend_from_slice(text.as_bytes());
                        Ok(())
                    }
                    None => serde_json::to_writer(&mut message, &record.detail),
                }
            })
            .and_then(|()| {
                for (name, value) in [
                    (&b",\"impersonator\":"[..], &record.impersonator),
                    (&b",\"record\":"[..], &record.record),
                    (&b",\"table\":"[..], &record.table),
                    (&b",\"user\":"[..], &record.user),
                ] {
                    message.extend_from_slice(name);
                    match value {
                        Some(text) => json_text(&mut message, text)?,
                        None => message.extend_from_slice(b"null"),
                    }
                }
                Ok(())
            });
        if written.is_err() {
            // Not reached (a Vec takes every byte): the slower form says the same.
            let body = serde_json::json!([seq, revision, at_ms, retention_days, record]);
            return self.hmac(format!("{prev}\n{body}").as_bytes());
        }
        message.extend_from_slice(b"}]");
        self.hmac(&message)
    }

    /// A value that identifies the key without revealing it: a database can keep it to refuse
    /// a different key, which would otherwise chain new entries under the wrong key.
    pub(crate) fn fingerprint(&self) -> String {
        self.hmac(b"strata audit key fingerprint")
    }

    /// The HMAC that seals an organisation's audit chain head or anchor (seq, hash) so it
    /// cannot be moved, nor moved to another organisation: `"audit {what}\n{org}\n{seq}\n{hash}"`.
    /// (The entries' hashes do not name the organisation; each is chained to the previous one
    /// and the last to this seal, so the seal binds the whole chain to its organisation.)
    pub(crate) fn seal(&self, what: Seal, org: &str, seq: u64, hash: &str) -> String {
        self.hmac(format!("audit {}\n{org}\n{seq}\n{hash}", what.as_str()).as_bytes())
    }

    /// The seal before it named the organisation (`"{what}\n{seq}\n{hash}"`): checked once,
    /// by the keyed step that re-seals heads and anchors ([`SEALED_AUDIT_PER_ORGANIZATION`]).
    fn legacy_seal(&self, what: Seal, seq: u64, hash: &str) -> String {
        self.hmac(format!("{}\n{seq}\n{hash}", what.as_str()).as_bytes())
    }

    /// Refuses to move an audit chain's head or anchor whose seal does not hold (a head moved
    /// back over removed entries, a chain brought from another organisation): a write or an
    /// expiry would otherwise seal it anew and launder the change. An organisation without
    /// expired entries has no anchor to check.
    pub(crate) fn check_seal(
        &self,
        what: Seal,
        org: &str,
        (seq, hash, seal): (u64, &str, &str),
    ) -> Result<(), StoreError> {
        if (what == Seal::Anchor && seq == 0) || self.seal(what, org, seq, hash) == seal {
            return Ok(());
        }
        Err(StoreError::Corrupt(format!(
            "organization `{org}`: the sealed {} of the audit chain (entry {seq}) was altered, or the key is not the one the chain was written with; the chain is not extended until it is restored (`strata audit verify` says where it breaks)",
            what.as_str()
        )))
    }

    /// The seals of a head and an anchor as stored before seals named the organisation, made
    /// to name it: `None` for a seal that does not hold under the old form (left as it is, so
    /// that verification still fails on it, and never laundered).
    pub(crate) fn reseal_legacy(
        &self,
        org: &str,
        head: (u64, &str, &str),
        anchor: (u64, &str, &str),
    ) -> (Option<String>, Option<String>) {
        let reseal = |what, (seq, hash, seal): (u64, &str, &str)| {
            (self.legacy_seal(what, seq, hash) == seal).then(|| self.seal(what, org, seq, hash))
        };
        // An organisation without expired entries has no anchor, and no seal to keep.
        let anchor = if anchor.0 == 0 {
            None
        } else {
            reseal(Seal::Anchor, anchor)
        };
        (reseal(Seal::Head, head), anchor)
    }
}

/// What an audit seal is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seal {
    /// The last entry: entries removed or added at the end are detected.
    Head,
    /// The last expired entry: the chain goes on from it.
    Anchor,
}

impl Seal {
    fn as_str(self) -> &'static str {
        match self {
            Seal::Head => "head",
            Seal::Anchor => "anchor",
        }
    }
}

/// The version recorded in `schema_migrations` once every audit head and anchor sealed before
/// seals named the organisation was re-sealed (a step that needs the key, run when a store
/// opens). After it, a seal of the old form is damage.
pub(crate) const SEALED_AUDIT_PER_ORGANIZATION: i64 = 1001;

/// The key of the operation-log chains: `HMAC(audit key, "strata operation log key v1")`, so
/// one key file protects both, and no MAC of one chain is valid in the other. The HMAC's inner
/// and outer states are computed once.
#[derive(Clone)]
pub(crate) struct LogKey {
    inner: Sha256,
    outer: Sha256,
}

impl std::fmt::Debug for LogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogKey(..)")
    }
}

/// Whether two byte strings are equal, in time that depends only on their lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// HMAC-SHA256 under `key` of `parts` one after another, hex.
pub(crate) fn keyed_mac(key: [u8; 32], parts: &[&[u8]]) -> String {
    LogKey::new(key).mac(parts)
}

impl LogKey {
    fn new(key: [u8; 32]) -> Self {
        let mut inner = Sha256::new();
        inner.update(key.map(|b| b ^ 0x36));
        inner.update([0x36u8; 32]);
        let mut outer = Sha256::new();
        outer.update(key.map(|b| b ^ 0x5c));
        outer.update([0x5cu8; 32]);
        LogKey { inner, outer }
    }

    fn mac(&self, parts: &[&[u8]]) -> String {
        hex::encode(self.mac_bytes(parts))
    }

    fn mac_bytes(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        for part in parts {
            inner.update(part);
        }
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }

    /// The MAC of one log row: the organisation, the revision, the time, the previous row's MAC
    /// (`genesis` before revision 1) and the operation as stored (its JSON text). Organisation
    /// names hold no newline and the operation comes last, so the encoding is unambiguous.
    pub(crate) fn entry_mac(
        &self,
        org: &str,
        revision: Revision,
        prev: &str,
        at_ms: i64,
        operation: &str,
    ) -> String {
        let mut hex = [0u8; 64];
        self.entry_mac_hex(
            &mut String::new(),
            org,
            revision,
            prev,
            at_ms,
            operation,
            &mut hex,
        );
        // Hex digits: always UTF-8 (checked by the plain conversion, cheaper than the lossy one).
        std::str::from_utf8(&hex).unwrap_or_default().to_owned()
    }

    /// [`LogKey::entry_mac`] into `out` (hex), with `scratch` for the header: no allocation
    /// once `scratch` has grown, for the verification of long logs.
    #[allow(
        clippy::too_many_arguments,
        reason = "the fields of the message, and the two buffers"
    )]
    fn entry_mac_hex(
        &self,
        scratch: &mut String,
        org: &str,
        revision: Revision,
        prev: &str,
        at_ms: i64,
        operation: &str,
        out: &mut [u8; 64],
    ) {
        use std::fmt::Write;
        scratch.clear();
        let _ = write!(scratch, "op\n{org}\n{revision}\n{at_ms}\n{prev}\n");
        let mac = self.mac_bytes(&[scratch.as_bytes(), operation.as_bytes()]);
        // 32 bytes always fit 64 hex digits.
        let _ = hex::encode_to_slice(mac, out);
    }

    /// The MAC of a checkpoint: the organisation, its revision, the format, the time, the
    /// length, the MAC of the log row at its revision (so that it belongs to this log and no
    /// other, and the tail's verification goes on from that row), then the bytes.
    pub(crate) fn checkpoint_mac(
        &self,
        org: &str,
        revision: Revision,
        format: u32,
        at_ms: i64,
        log_mac: &str,
        chunks: &[&[u8]],
    ) -> String {
        let length: usize = chunks.iter().map(|c| c.len()).sum();
        let header =
            format!("checkpoint\n{org}\n{revision}\n{format}\n{at_ms}\n{length}\n{log_mac}\n");
        let mut parts: Vec<&[u8]> = Vec::with_capacity(chunks.len() + 1);
        parts.push(header.as_bytes());
        parts.extend_from_slice(chunks);
        self.mac(&parts)
    }

    /// The seal of an organisation's log head: its revision and its last row's MAC.
    pub(crate) fn head_seal(&self, org: &str, revision: Revision, mac: &str) -> String {
        self.mac(&[format!("head\n{org}\n{revision}\n{mac}").as_bytes()])
    }
}

/// The MAC of a new row and the head it leaves, for writers.
#[derive(Debug, Clone)]
pub(crate) struct LogHead {
    /// The organisation.
    pub org: String,
    /// The revision of the last row.
    pub revision: Revision,
    /// The last row's MAC ([`GENESIS`] when the log is empty).
    pub mac: String,
}

impl LogHead {
    /// The head a write starts from, as read from the organisation's row: refused unless its
    /// seal holds (a write must not re-seal a head that was moved back, which would launder
    /// the removal of the last rows).
    pub(crate) fn opened(
        key: &LogKey,
        org: &str,
        revision: Revision,
        mac: Option<String>,
        seal: Option<String>,
    ) -> Result<Self, StoreError> {
        let mac = mac.unwrap_or_default();
        if seal.as_deref() != Some(key.head_seal(org, revision, &mac).as_str()) {
            return Err(corrupt_log(
                org,
                revision,
                LogDamage::Head,
                "the sealed head of the log (its revision and last MAC) was altered or removed, or the key is not the one the log was written with",
            ));
        }
        Ok(LogHead {
            org: org.to_owned(),
            revision,
            mac,
        })
    }

    /// Chains a new row after the head; returns its text and MAC.
    pub(crate) fn append(
        &mut self,
        key: &LogKey,
        at_ms: i64,
        operation: StoredOperation,
    ) -> (String, String) {
        let text = operation.into_string();
        self.revision += 1;
        self.mac = key.entry_mac(&self.org, self.revision, &self.mac, at_ms, &text);
        (text, self.mac.clone())
    }

    /// The seal of this head.
    pub(crate) fn seal(&self, key: &LogKey) -> String {
        key.head_seal(&self.org, self.revision, &self.mac)
    }
}

/// Chains an organisation's next log rows and audit entries ahead of the transaction that
/// stores them, on a thread of the caller's (D158): made by [`crate::Transaction::chainer`]
/// from the transaction's heads and keys, it hashes each operation's rows as the transaction
/// would, and the transaction takes them ([`crate::Transaction::append_chained`]) only where
/// they continue its heads. A writer that tries operations on one thread and appends their
/// rows on another so moves the hashing off the appending thread.
#[derive(Clone, Debug)]
pub struct Chainer {
    key: AuditKey,
    log_key: LogKey,
    log: LogHead,
    /// The audit chain's head: the last entry's seq and hash.
    audit: (u64, String),
}

impl Chainer {
    pub(crate) fn new(
        key: &AuditKey,
        log_key: &LogKey,
        log: &LogHead,
        audit: &(u64, String),
    ) -> Self {
        Chainer {
            key: key.clone(),
            log_key: log_key.clone(),
            log: log.clone(),
            audit: audit.clone(),
        }
    }

    /// Chains operations one after another, each its stored text and its audit entries, all at
    /// `at_ms` (the rows [`crate::Transaction::append_stored`] of the text, then
    /// [`crate::Transaction::append_audit`] of each entry, would append).
    pub fn chain(
        &mut self,
        operations: impl IntoIterator<Item = (StoredOperation, Vec<AuditRecord>)>,
        at_ms: i64,
        retention_days: i64,
    ) -> ChainedRows {
        let after = (self.log.revision, self.log.mac.clone(), self.audit.clone());
        let mut log = Vec::new();
        let mut audit = Vec::new();
        for (operation, entries) in operations {
            let (text, mac) = self.log.append(&self.log_key, at_ms, operation);
            log.push(ChainedLog {
                revision: self.log.revision,
                at_ms,
                text,
                mac,
            });
            for record in entries {
                let (seq, detail, hash) = self.key.next_entry(
                    &mut self.audit,
                    self.log.revision,
                    at_ms,
                    retention_days,
                    &record,
                );
                audit.push(ChainedAudit {
                    seq,
                    revision: self.log.revision,
                    at_ms,
                    retention_days,
                    record,
                    detail,
                    hash,
                });
            }
        }
        ChainedRows {
            org: self.log.org.clone(),
            after,
            log,
            audit,
        }
    }
}

/// Rows a [`Chainer`] hashed, in order, for the transaction it was made from.
#[derive(Debug)]
pub struct ChainedRows {
    pub(crate) org: String,
    /// The heads they continue: the log's revision and last MAC, the audit's seq and hash.
    pub(crate) after: (Revision, String, (u64, String)),
    pub(crate) log: Vec<ChainedLog>,
    pub(crate) audit: Vec<ChainedAudit>,
}

impl ChainedRows {
    /// Refused unless the rows continue the heads of the transaction (`org`, its log's head,
    /// its audit's head): rows chained from other heads would break both chains.
    pub(crate) fn check(
        &self,
        org: &str,
        log: &LogHead,
        audit: &(u64, String),
    ) -> Result<(), StoreError> {
        let (revision, mac, head) = &self.after;
        if self.org == org && *revision == log.revision && *mac == log.mac && head == audit {
            return Ok(());
        }
        Err(StoreError::Aborted(format!(
            "organization `{org}`: rows chained after revision {revision} and audit entry {} do not continue this transaction's (revision {}, audit entry {}); nothing was written",
            head.0, log.revision, audit.0
        )))
    }

    /// The heads after the rows (the last row's, or those they continue when empty).
    pub(crate) fn heads(&self) -> (Revision, String, (u64, String)) {
        let (revision, mac) = self.log.last().map_or_else(
            || (self.after.0, self.after.1.clone()),
            |l| (l.revision, l.mac.clone()),
        );
        let audit = self
            .audit
            .last()
            .map_or_else(|| self.after.2.clone(), |a| (a.seq, a.hash.clone()));
        (revision, mac, audit)
    }
}

/// A log row a [`Chainer`] made.
#[derive(Debug)]
pub(crate) struct ChainedLog {
    pub revision: Revision,
    pub at_ms: i64,
    pub text: String,
    pub mac: String,
}

/// An audit entry a [`Chainer`] made: the record, its detail's text and its hash.
#[derive(Debug)]
pub(crate) struct ChainedAudit {
    pub seq: u64,
    pub revision: Revision,
    pub at_ms: i64,
    pub retention_days: i64,
    pub record: AuditRecord,
    pub detail: String,
    pub hash: String,
}

pub(crate) fn corrupt_log(
    org: &str,
    revision: Revision,
    damage: LogDamage,
    detail: impl Into<String>,
) -> StoreError {
    StoreError::CorruptLog {
        organization: org.to_owned(),
        revision,
        damage,
        detail: detail.into(),
    }
}

/// Checks the rows of one organisation's log as they are read, in revision order: each row
/// must follow the previous one with no hole and match its MAC, and the last one must be the
/// sealed head. Reading the log after revision `after` > 0 starts from the row at `after` (the
/// anchor: its MAC is the previous MAC of the first row returned; the anchor itself was checked
/// by whoever read up to it).
#[derive(Debug)]
pub(crate) struct LogVerifier<'a> {
    key: &'a LogKey,
    head: LogHead,
    after: Revision,
    /// The revision the next row must have.
    expected: Revision,
    /// The previous row's MAC; `None` until the anchor is read.
    prev: Option<String>,
    /// Room for each row's MAC header.
    scratch: String,
}

impl<'a> LogVerifier<'a> {
    /// Starts from the head as stored: refused unless its seal holds.
    pub(crate) fn new(
        key: &'a LogKey,
        org: &str,
        after: Revision,
        head_revision: Revision,
        head_mac: Option<String>,
        head_seal: Option<String>,
    ) -> Result<Self, StoreError> {
        let head = LogHead::opened(key, org, head_revision, head_mac, head_seal)?;
        Ok(LogVerifier {
            key,
            head,
            after,
            expected: after + 1,
            prev: (after == 0).then(|| GENESIS.to_owned()),
            scratch: String::new(),
        })
    }

    /// The first revision to read: the anchor, or 1.
    pub(crate) fn first(&self) -> Revision {
        self.after.max(1)
    }

    /// Checks the next row; returns its entry (`None` for the anchor).
    pub(crate) fn row(
        &mut self,
        revision: Revision,
        at_ms: i64,
        operation: &str,
        mac: Option<&str>,
    ) -> Result<Option<LogEntry>, StoreError> {
        let org = self.head.org.as_str();
        if revision > self.head.revision {
            return Err(corrupt_log(
                org,
                revision,
                LogDamage::Appended,
                format!(
                    "a row after the sealed head (revision {}): added at the end",
                    self.head.revision
                ),
            ));
        }
        if self.prev.is_none() {
            if revision != self.after {
                return Err(gap(org, self.after, revision));
            }
            let mac = mac.ok_or_else(|| unsealed(org, revision))?;
            self.prev = Some(mac.to_owned());
            return Ok(None);
        }
        if revision != self.expected {
            return Err(gap(org, self.expected, revision));
        }
        let mac = mac.ok_or_else(|| unsealed(org, revision))?;
        let prev = self.prev.as_deref().unwrap_or_default();
        let mut expected = [0u8; 64];
        self.key.entry_mac_hex(
            &mut self.scratch,
            org,
            revision,
            prev,
            at_ms,
            operation,
            &mut expected,
        );
        if expected.as_slice() != mac.as_bytes() {
            return Err(corrupt_log(
                org,
                revision,
                LogDamage::Edited,
                "the row does not match its MAC: its operation, time or MAC was edited, or rows were inserted, moved or reordered here",
            ));
        }
        let operation = serde_json::from_str(operation).map_err(|e| {
            StoreError::Corrupt(format!("organization `{org}` revision {revision}: {e}"))
        })?;
        if let Some(prev) = &mut self.prev {
            prev.clear();
            prev.push_str(mac);
        }
        self.expected += 1;
        Ok(Some(LogEntry {
            revision,
            at_ms,
            operation,
        }))
    }

    /// After the last row: the log must end at its sealed head.
    pub(crate) fn finish(self) -> Result<(), StoreError> {
        let org = self.head.org.as_str();
        let Some(prev) = self.prev else {
            // Not even the anchor was read.
            if self.after > self.head.revision {
                // The caller is past the head (the organisation was created again elsewhere).
                return Ok(());
            }
            return Err(corrupt_log(
                org,
                self.after,
                LogDamage::Truncated,
                format!(
                    "the log ends before revision {} but its sealed head is at {}: rows were removed at the end",
                    self.after, self.head.revision
                ),
            ));
        };
        let last = self.expected - 1;
        if last < self.head.revision {
            return Err(corrupt_log(
                org,
                last + 1,
                LogDamage::Truncated,
                format!(
                    "the log ends at revision {last} but its sealed head is at {}: rows were removed at the end",
                    self.head.revision
                ),
            ));
        }
        if prev != self.head.mac {
            return Err(corrupt_log(
                org,
                last,
                LogDamage::Head,
                "the last row is not the one the sealed head names",
            ));
        }
        Ok(())
    }
}

fn gap(org: &str, expected: Revision, found: Revision) -> StoreError {
    corrupt_log(
        org,
        expected,
        LogDamage::Gap,
        format!("revision {expected} is missing (found {found} next): a row was deleted"),
    )
}

fn unsealed(org: &str, revision: Revision) -> StoreError {
    corrupt_log(org, revision, LogDamage::Edited, "the row has no MAC")
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
    org: &str,
    anchor: (u64, &str, &str),
    entries: &[crate::AuditEntry],
    head: (u64, &str, &str),
) -> crate::Verification {
    use crate::Verification::{Intact, Tampered};
    let (anchor_seq, anchor_hash, anchor_seal) = anchor;
    if anchor_seq > 0 && key.seal(Seal::Anchor, org, anchor_seq, anchor_hash) != anchor_seal {
        return Tampered {
            seq: anchor_seq,
            problem:
                "the anchor of expired entries was altered, or belongs to another organisation"
                    .to_owned(),
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
    if key.seal(Seal::Head, org, head_seq, head_hash) != head_seal {
        return Tampered {
            seq: head_seq,
            problem: "the chain head was altered, or belongs to another organisation".to_owned(),
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

/// The version recorded in `schema_migrations` once the logs written before rows carried MACs
/// were chained (a step that needs the key, so it runs when a store opens, after the schema
/// migrations). After it, a row or head without a MAC is damage, never chained again: whoever
/// clears the MACs cannot have their edits sealed by the next start-up.
pub(crate) const CHAINED_LEGACY_LOGS: i64 = 1000;

/// Chains a log written before rows carried MACs, trusting its rows as they are: the MAC of
/// each row (in revision order), and the organisation's head MAC and seal (the head's MAC is
/// the MAC of the row at `head_revision`, so a log that does not end there fails verification
/// afterwards, as it should).
pub(crate) fn chain_legacy(
    key: &LogKey,
    org: &str,
    head_revision: Revision,
    rows: &[(Revision, i64, String)],
) -> (Vec<String>, String, String) {
    let mut prev = GENESIS.to_owned();
    let mut head_mac = if head_revision == 0 {
        GENESIS.to_owned()
    } else {
        String::new()
    };
    let mut macs = Vec::with_capacity(rows.len());
    for (revision, at_ms, operation) in rows {
        prev = key.entry_mac(org, *revision, &prev, *at_ms, operation);
        if *revision == head_revision {
            head_mac.clone_from(&prev);
        }
        macs.push(prev.clone());
    }
    let seal = key.head_seal(org, head_revision, &head_mac);
    (macs, head_mac, seal)
}

#[cfg(test)]
mod canonical_tests {
    use super::*;

    /// The HMAC with its key's states computed once is HMAC-SHA-256 (RFC 4231, test case 2: a
    /// short key is zero-padded, as a 32-byte key with trailing zeros is).
    #[test]
    fn the_hmac_is_hmac_sha256() {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(b"Jefe");
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let key = AuditKey::new(bytes);
        assert_eq!(key.hmac(b"what do ya want for nothing?"), expected);
        // Twice: the states are cloned, never consumed.
        assert_eq!(key.hmac(b"what do ya want for nothing?"), expected);
        assert_eq!(
            LogKey::new(bytes).mac(&[b"what do ya ", b"want for nothing?"]),
            expected
        );
    }

    /// The hash written straight into a buffer is the hash of the `json!` form every stored
    /// chain was made with (so old chains still verify).
    #[test]
    fn the_entry_hash_is_that_of_the_json_value_form() {
        let key = AuditKey::new([7; 32]);
        let records = [
            AuditRecord {
                action: "update".to_owned(),
                table: Some("account".to_owned()),
                record: Some("acc \"1\" \u{e9}".to_owned()),
                user: Some("rep".to_owned()),
                impersonator: None,
                detail: serde_json::json!({"name": {"old": "a", "new": "b\n"}, "amount": {"old": 1.5, "new": null}, "z": [1, "2", {"b": 1, "a": 2}]}),
                detail_text: None,
            },
            AuditRecord {
                action: "create_organization".to_owned(),
                table: None,
                record: None,
                user: None,
                impersonator: Some("boss".to_owned()),
                detail: serde_json::Value::Null,
                detail_text: None,
            },
        ];
        for record in &records {
            let body = serde_json::json!([3u64, 9u64, -5i64, 30i64, record]);
            let expected = key.hmac(format!("prev\n{body}").as_bytes());
            assert_eq!(key.entry_hash("prev", 3, 9, -5, 30, record), expected);
            let detail = record.detail.to_string();
            assert_eq!(
                key.entry_hash_with("prev", 3, 9, -5, 30, record, Some(&detail)),
                expected
            );
        }
    }
}
