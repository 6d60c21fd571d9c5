//! The in-memory backend: the same behaviour as SQLite, for tests and embedding.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use crate::chain::{self, AuditKey, GENESIS, LogHead, LogKey, LogVerifier, Seal};
use crate::checkpoint::{self as cp, CheckpointInfo, KEEP_CHECKPOINTS, RawCheckpoint};
use crate::{
    ApiKeyRecord, AuditEntry, AuditOrder, AuditQuery, AuditRecord, LogEntry, RawLogRow, Revision,
    Store, StoreError, StoredOperation, Transaction, Verification, check_org_name, expired,
};

/// A log's head as stored: revision, last MAC, seal.
type LogHeadState = (Revision, String, String);

#[derive(Debug)]
struct OrgState {
    log: Vec<RawLogRow>,
    log_head: LogHeadState,
    audit: Vec<AuditEntry>,
    head: (u64, String, String),
    anchor: (u64, String, String),
    checkpoints: BTreeMap<Revision, RawCheckpoint>,
}

impl OrgState {
    /// The MAC of the log row at `revision`, as stored.
    fn row_mac(&self, revision: Revision) -> Option<&str> {
        let at = usize::try_from(revision).ok()?.checked_sub(1)?;
        let row = match self.log.get(at) {
            Some(r) if r.revision == revision => Some(r),
            _ => self.log.iter().find(|r| r.revision == revision),
        };
        row.and_then(|r| r.mac.as_deref())
    }
}

#[derive(Debug, Default)]
struct State {
    orgs: BTreeMap<String, OrgState>,
    keys: Vec<ApiKeyRecord>,
}

/// Organisations in memory; gone when dropped.
#[derive(Debug)]
pub struct MemoryStore {
    key: AuditKey,
    log_key: LogKey,
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store with a random audit key.
    pub fn new() -> Result<Self, StoreError> {
        let key = AuditKey::random()?;
        Ok(MemoryStore {
            log_key: key.log_key(),
            key,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` as one transaction on `o` (the store's lock held): what it appends stays, or,
    /// when it fails, nothing does.
    fn write_to(
        &self,
        org: &str,
        o: &mut OrgState,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        let (log_len, audit_len, head) = (o.log.len(), o.audit.len(), o.head.clone());
        self.key
            .check_seal(Seal::Head, org, (head.0, &head.1, &head.2))?;
        let (revision, mac, seal) = o.log_head.clone();
        let log = LogHead::opened(&self.log_key, org, revision, Some(mac), Some(seal))?;
        let mut tx = MemoryTx {
            key: &self.key,
            log_key: &self.log_key,
            name: org,
            base: revision,
            log,
            org: o,
        };
        if let Err(e) = f(&mut tx) {
            o.log.truncate(log_len);
            o.audit.truncate(audit_len);
            o.head = head;
            return Err(e);
        }
        let log = tx.log;
        o.log_head = (log.revision, log.mac.clone(), log.seal(&self.log_key));
        Ok(log.revision)
    }

    /// Test support: lets a test change a stored audit entry, as an attacker with write access
    /// to the storage would.
    #[doc(hidden)]
    pub fn tamper_audit(&self, org: &str, f: &mut dyn FnMut(&mut Vec<AuditEntry>)) {
        if let Some(o) = self.lock().orgs.get_mut(org) {
            f(&mut o.audit);
        }
    }

    /// Test support: lets a test change the stored checkpoints, as an attacker with write
    /// access to the storage would (or a crash that tore one).
    #[doc(hidden)]
    pub fn tamper_checkpoints(
        &self,
        org: &str,
        f: &mut dyn FnMut(&mut BTreeMap<Revision, RawCheckpoint>),
    ) {
        if let Some(o) = self.lock().orgs.get_mut(org) {
            f(&mut o.checkpoints);
        }
    }

    /// Test support: lets a test change the stored operation log (rows, and the head as
    /// revision, last MAC, seal).
    #[doc(hidden)]
    pub fn tamper_log(&self, org: &str, f: &mut dyn FnMut(&mut Vec<RawLogRow>, &mut LogHeadState)) {
        if let Some(o) = self.lock().orgs.get_mut(org) {
            f(&mut o.log, &mut o.log_head);
        }
    }
}

/// The rows of `o`'s log after `after` (up to `upto`), verified.
fn read_log(
    key: &LogKey,
    name: &str,
    o: &OrgState,
    after: Revision,
    upto: Option<Revision>,
) -> Result<Vec<LogEntry>, StoreError> {
    let (revision, mac, seal) = o.log_head.clone();
    let mut verifier = LogVerifier::new(key, name, after, revision, Some(mac), Some(seal))?;
    let first = verifier.first();
    let mut out = Vec::new();
    for row in o
        .log
        .iter()
        .filter(|r| r.revision >= first && upto.is_none_or(|u| r.revision <= u))
    {
        if let Some(entry) =
            verifier.row(row.revision, row.at_ms, &row.operation, row.mac.as_deref())?
        {
            out.push(entry);
        }
    }
    verifier.finish()?;
    Ok(out)
}

struct MemoryTx<'a> {
    key: &'a AuditKey,
    log_key: &'a LogKey,
    name: &'a str,
    base: Revision,
    log: LogHead,
    org: &'a mut OrgState,
}

impl Transaction for MemoryTx<'_> {
    fn append_stored(
        &mut self,
        operation: StoredOperation,
        at_ms: i64,
    ) -> Result<Revision, StoreError> {
        let (text, mac) = self.log.append(self.log_key, at_ms, operation);
        self.org.log.push(RawLogRow {
            revision: self.log.revision,
            at_ms,
            operation: text,
            mac: Some(mac),
        });
        Ok(self.log.revision)
    }

    fn append_audit(
        &mut self,
        record: &AuditRecord,
        at_ms: i64,
        retention_days: i64,
    ) -> Result<u64, StoreError> {
        let revision = self.log.revision;
        let (prev_seq, prev_hash, _) = &self.org.head;
        let seq = prev_seq + 1;
        let hash = self
            .key
            .entry_hash(prev_hash, seq, revision, at_ms, retention_days, record);
        self.org.audit.push(AuditEntry {
            seq,
            revision,
            at_ms,
            retention_days,
            record: record.with_detail(),
            hash: hash.clone(),
        });
        let seal = self.key.seal(Seal::Head, self.name, seq, &hash);
        self.org.head = (seq, hash, seal);
        Ok(seq)
    }

    fn revision(&self) -> Revision {
        self.log.revision
    }

    fn operations_after(&mut self, after: Revision) -> Result<Vec<LogEntry>, StoreError> {
        read_log(self.log_key, self.name, self.org, after, Some(self.base))
    }
}

pub(crate) fn matches(e: &AuditEntry, q: &AuditQuery) -> bool {
    e.seq > q.after_seq
        && q.before_seq.is_none_or(|b| e.seq < b)
        && q.table
            .as_ref()
            .is_none_or(|t| e.record.table.as_ref() == Some(t))
        && q.action.as_ref().is_none_or(|a| &e.record.action == a)
        && q.record
            .as_ref()
            .is_none_or(|r| e.record.record.as_ref() == Some(r))
        && q.user
            .as_ref()
            .is_none_or(|u| e.record.user.as_ref() == Some(u))
        && q.from_ms.is_none_or(|t| e.at_ms >= t)
        && q.to_ms.is_none_or(|t| e.at_ms < t)
}

impl Store for MemoryStore {
    fn create_organization(
        &self,
        name: &str,
        _at_ms: i64,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        check_org_name(name)?;
        let mut state = self.lock();
        if state.orgs.contains_key(name) {
            return Err(StoreError::DuplicateOrganization(name.to_owned()));
        }
        let head_seal = self.key.seal(Seal::Head, name, 0, GENESIS);
        let log_seal = self.log_key.head_seal(name, 0, GENESIS);
        let o = state.orgs.entry(name.to_owned()).or_insert(OrgState {
            log: Vec::new(),
            log_head: (0, GENESIS.to_owned(), log_seal),
            audit: Vec::new(),
            head: (0, GENESIS.to_owned(), head_seal),
            anchor: (0, GENESIS.to_owned(), String::new()),
            checkpoints: BTreeMap::new(),
        });
        let written = self.write_to(name, o, f);
        if written.is_err() {
            state.orgs.remove(name);
        }
        written
    }

    fn delete_organization(&self, name: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        state
            .orgs
            .remove(name)
            .ok_or_else(|| StoreError::UnknownOrganization(name.to_owned()))?;
        state.keys.retain(|k| k.organization != name);
        Ok(())
    }

    fn organizations(&self) -> Result<Vec<(String, Revision)>, StoreError> {
        Ok(self
            .lock()
            .orgs
            .iter()
            .map(|(n, o)| (n.clone(), o.log_head.0))
            .collect())
    }

    fn write(
        &self,
        org: &str,
        f: &mut dyn FnMut(&mut dyn Transaction) -> Result<(), StoreError>,
    ) -> Result<Revision, StoreError> {
        let mut state = self.lock();
        let o = state
            .orgs
            .get_mut(org)
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        self.write_to(org, o, f)
    }

    fn revision(&self, org: &str) -> Result<Revision, StoreError> {
        let state = self.lock();
        let o = state
            .orgs
            .get(org)
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        Ok(o.log_head.0)
    }

    fn operations(&self, org: &str, after: Revision) -> Result<Vec<LogEntry>, StoreError> {
        let state = self.lock();
        let o = state
            .orgs
            .get(org)
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        read_log(&self.log_key, org, o, after, None)
    }

    fn put_checkpoint(
        &self,
        org: &str,
        revision: Revision,
        format: u32,
        bytes: &[u8],
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        let o = state
            .orgs
            .get_mut(org)
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        if o.checkpoints.contains_key(&revision) {
            return Ok(false);
        }
        let Some(log_mac) = o.row_mac(revision).map(str::to_owned) else {
            return Err(StoreError::Aborted(format!(
                "organization `{org}` has no log row at revision {revision} to take a checkpoint at"
            )));
        };
        let raw = cp::sealed(&self.log_key, org, revision, format, at_ms, &log_mac, bytes);
        o.checkpoints.insert(revision, raw);
        while o.checkpoints.len() > KEEP_CHECKPOINTS {
            o.checkpoints.pop_first();
        }
        Ok(true)
    }

    fn checkpoints(&self, org: &str) -> Result<Vec<CheckpointInfo>, StoreError> {
        let state = self.lock();
        let o = state
            .orgs
            .get(org)
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        Ok(o.checkpoints
            .values()
            .rev()
            .map(|c| CheckpointInfo {
                revision: c.revision,
                format: c.format,
                length: c.length,
                at_ms: c.at_ms,
            })
            .collect())
    }

    fn read_checkpoint(
        &self,
        org: &str,
        revision: Revision,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let state = self.lock();
        let o = state
            .orgs
            .get(org)
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        let Some(raw) = o.checkpoints.get(&revision) else {
            return Ok(None);
        };
        let mut raw = raw.clone();
        // The row's key is the revision it is filed under.
        raw.revision = revision;
        cp::verified(&self.log_key, org, raw, o.row_mac(revision)).map(Some)
    }

    fn audit(&self, org: &str, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let state = self.lock();
        let o = state
            .orgs
            .get(org)
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        let limit = query.limit.max(1);
        let wanted = |e: &&AuditEntry| matches(e, query);
        Ok(match query.order {
            AuditOrder::Ascending => o.audit.iter().filter(wanted).take(limit).cloned().collect(),
            AuditOrder::Descending => o
                .audit
                .iter()
                .rev()
                .filter(wanted)
                .take(limit)
                .cloned()
                .collect(),
        })
    }

    fn derived_key(&self, purpose: &str) -> [u8; 32] {
        self.key.derive(purpose)
    }

    fn verify_audit(&self, org: &str) -> Result<Verification, StoreError> {
        let state = self.lock();
        let o = state
            .orgs
            .get(org)
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        Ok(chain::verify(
            &self.key,
            org,
            (o.anchor.0, &o.anchor.1, &o.anchor.2),
            &o.audit,
            (o.head.0, &o.head.1, &o.head.2),
        ))
    }

    fn expire_audit(&self, org: &str, now_ms: i64) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let o = state
            .orgs
            .get_mut(org)
            .ok_or_else(|| StoreError::UnknownOrganization(org.to_owned()))?;
        let n = o
            .audit
            .iter()
            .take_while(|e| expired(e.at_ms, e.retention_days, now_ms))
            .count();
        if n > 0 {
            let last = &o.audit[n - 1];
            let seal = self.key.seal(Seal::Anchor, org, last.seq, &last.hash);
            o.anchor = (last.seq, last.hash.clone(), seal);
            o.audit.drain(..n);
        }
        Ok(n as u64)
    }

    fn put_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        if !state.orgs.contains_key(&key.organization) {
            return Err(StoreError::UnknownOrganization(key.organization.clone()));
        }
        state.keys.push(key.clone());
        Ok(())
    }

    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self
            .lock()
            .keys
            .iter()
            .find(|k| k.key_hash == key_hash)
            .cloned())
    }

    fn api_keys(&self, org: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        Ok(self
            .lock()
            .keys
            .iter()
            .filter(|k| k.organization == org)
            .cloned()
            .collect())
    }

    fn revoke_api_key(&self, org: &str, id: &str, at_ms: i64) -> Result<bool, StoreError> {
        let mut state = self.lock();
        match state
            .keys
            .iter_mut()
            .find(|k| k.organization == org && k.id == id)
        {
            Some(k) => {
                if k.revoked_ms.is_none() {
                    k.revoked_ms = Some(at_ms);
                }
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
