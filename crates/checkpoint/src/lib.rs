//! Checkpoints: an organisation's state ([`strata_engine::State`]) as compact bytes and back.
//!
//! The encoding is hand-written and length-prefixed (no serde, no schema crate): unsigned
//! integers as LEB128 varints, signed ones zig-zagged, floats as 8 little-endian bytes, strings
//! as a length and UTF-8 bytes, options as a tag byte, sequences as a count and their items. The
//! column names of records are written once, in a dictionary, and referred to by number. The
//! bytes begin with [`MAGIC`] and [`FORMAT_VERSION`]; a decoder refuses any other version, any
//! truncation, any trailing byte, any count larger than the bytes left, any unknown tag and any
//! id out of range ([`Organization::from_state`] checks the ids), so corrupt bytes are an
//! error, never a panic. Authenticity (a MAC under the log's key) is the store's business: this
//! crate only turns a state into bytes.
//!
//! What is stored is the model as configured and every record with its stamps (D165: when
//! and by whom it was created and last changed), then (format 4, D120) the record index: each
//! table's security bitmaps in the portable roaring serialization, and each column index's
//! records in list order with its frequent values' bitmaps — so that a load does not rebuild
//! it. The derived indexes (grants, hierarchy reach) are rebuilt when the organisation is built
//! from the state, and so is the record index of a format 3 checkpoint (the state alone).
//! Formats 1 and 2 (the same without stamps) are no longer read: the log is replayed instead.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use roaring::RoaringBitmap;
use strata_engine::{
    AccessMask, App, AppId, AppNeed, AuditSettings, BusinessUnitId, Cascade, CascadeType, Column,
    ColumnIndexParts, ColumnName, ColumnPermission, DeleteBehavior, Deprecation, Depth, FieldShare,
    HierarchyModel, HierarchySettings, Inheritance, Licence, NameMap, Organization, Owner,
    Ownership, Position, PositionId, Principal, Privilege, Profile, Record, RecordId, RecordState,
    Relationship, RelationshipId, Role, RoleAssignment, RoleId, RoleRule, Settings, Share, Stamps,
    State, StateRef, Table, TableId, TableIndexParts, TableIndexRef, Team, TeamId, TeamType,
    Template, TemplateId, UnitNode, User, UserId, Value,
};

/// The first bytes of every checkpoint.
pub const MAGIC: &[u8; 4] = b"SCKP";
/// The version of the encoding this build writes (4: the state with each record's stamps, and
/// the record index).
pub const FORMAT_VERSION: u32 = 4;

/// The version of the state alone ([`encode_state`]; the record index rebuilt at load).
pub const STATE_FORMAT_VERSION: u32 = 3;

/// Every version this build reads: 3 (the state alone) and 4 (the state and the record
/// index). Formats 1 and 2, written before records kept when and by whom they were created
/// and changed (D165), are not read: a start-up skips them and replays the log, which has
/// every operation's time, and the next checkpoint is written in format 4.
pub const READABLE_FORMATS: [u32; 2] = [STATE_FORMAT_VERSION, FORMAT_VERSION];

/// Whether this build reads checkpoints of this format.
#[must_use]
pub fn reads(format: u32) -> bool {
    READABLE_FORMATS.contains(&format)
}

/// Why bytes are not a checkpoint this build can read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes do not start with [`MAGIC`].
    #[error("not a checkpoint")]
    NotACheckpoint,
    /// Another version of the format.
    #[error("checkpoint format {0}, this build reads formats 3 and 4")]
    Version(u32),
    /// The bytes end too early, hold a bad value or go on past the end.
    #[error("malformed checkpoint at byte {at}: {what}")]
    Malformed {
        /// Where.
        at: usize,
        /// What was expected.
        what: &'static str,
    },
    /// The state the bytes hold is inconsistent.
    #[error("checkpoint state: {0}")]
    State(#[from] strata_engine::ModelError),
}

impl DecodeError {
    /// A stable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::NotACheckpoint => "not_a_checkpoint",
            DecodeError::Version(_) => "checkpoint_version",
            DecodeError::Malformed { .. } => "malformed_checkpoint",
            DecodeError::State(_) => "checkpoint_state",
        }
    }
}

/// The organisation's state and record index as checkpoint bytes (format 4).
#[must_use]
pub fn encode(org: &Organization) -> Vec<u8> {
    let mut w = write_state(&org.state_ref(), FORMAT_VERSION);
    write_index(&mut w, &org.index_ref());
    w.out
}

/// An organisation from checkpoint bytes: its record index from the bytes (format 4) or
/// rebuilt (format 3), its derived indexes rebuilt.
pub fn decode(bytes: &[u8]) -> Result<Organization, DecodeError> {
    let (state, index) = decode_parts(bytes)?;
    Ok(Organization::from_state_with_index(state, index)?)
}

/// An organisation from checkpoint bytes it takes, dropped as soon as they are decoded (before
/// the organisation is built from its parts: the bytes and the whole organisation are never
/// held at once). A stored record index that does not fit the records is rebuilt from them
/// (D137); the problem it had is returned beside the organisation, for the caller to report.
pub fn decode_owned(
    bytes: Vec<u8>,
) -> Result<(Organization, Option<strata_engine::ModelError>), DecodeError> {
    let (state, index) = decode_parts(&bytes)?;
    drop(bytes);
    Ok(Organization::from_state_repairing_index(state, index)?)
}

// ----- writing -----

struct W {
    out: Vec<u8>,
}

impl W {
    fn u(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.out.push(byte);
                return;
            }
            self.out.push(byte | 0x80);
        }
    }
    fn n(&mut self, v: usize) {
        self.u(v as u64);
    }
    fn i(&mut self, v: i64) {
        self.u(((v << 1) ^ (v >> 63)) as u64);
    }
    fn b(&mut self, v: bool) {
        self.out.push(u8::from(v));
    }
    fn byte(&mut self, v: u8) {
        self.out.push(v);
    }
    fn s(&mut self, v: &str) {
        self.n(v.len());
        self.out.extend_from_slice(v.as_bytes());
    }
    fn id(&mut self, v: u32) {
        self.u(u64::from(v));
    }
    fn opt_id(&mut self, v: Option<u32>) {
        match v {
            None => self.byte(0),
            Some(v) => {
                self.byte(1);
                self.id(v);
            }
        }
    }
    fn depths(&mut self, d: &[Depth; 8]) {
        for x in d {
            self.byte(depth_code(*x));
        }
    }
    fn principal(&mut self, p: Principal) {
        match p {
            Principal::User(u) => {
                self.byte(0);
                self.id(u.get());
            }
            Principal::Team(t) => {
                self.byte(1);
                self.id(t.get());
            }
            Principal::Organization => self.byte(2),
        }
    }
    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.byte(0),
            Value::Bool(b) => {
                self.byte(1);
                self.b(*b);
            }
            Value::Int(i) => {
                self.byte(2);
                self.i(*i);
            }
            Value::Float(x) => {
                self.byte(3);
                self.out.extend_from_slice(&x.to_bits().to_le_bytes());
            }
            Value::Text(t) => {
                self.byte(4);
                self.s(t);
            }
        }
    }
    /// A bitmap: its serialized size, then roaring's portable serialization.
    fn bitmap(&mut self, b: &RoaringBitmap) {
        self.n(b.serialized_size());
        // Writing into a vector cannot fail; were it to, the size written before would not
        // match and the checkpoint would not decode (never used, the log replayed instead).
        let _ = b.serialize_into(&mut self.out);
    }
    fn keyed<K: Copy>(&mut self, list: &[(K, &RoaringBitmap)], key: impl Fn(&mut Self, K)) {
        self.n(list.len());
        for (k, b) in list {
            key(self, *k);
            self.bitmap(b);
        }
    }
    fn strings<'a>(&mut self, items: impl ExactSizeIterator<Item = &'a String>) {
        self.n(items.len());
        for s in items {
            self.s(s);
        }
    }
}

fn depth_code(d: Depth) -> u8 {
    Depth::ALL.iter().position(|x| *x == d).unwrap_or(0) as u8
}

fn cascade_code(c: CascadeType) -> u8 {
    match c {
        CascadeType::Cascade => 0,
        CascadeType::Active => 1,
        CascadeType::UserOwned => 2,
        CascadeType::None => 3,
    }
}

/// The state's parts alone as checkpoint bytes of format 3 (a load rebuilds the record index).
#[must_use]
pub fn encode_state(s: &StateRef<'_>) -> Vec<u8> {
    write_state(s, STATE_FORMAT_VERSION).out
}

fn write_state(s: &StateRef<'_>, version: u32) -> W {
    let mut w = W {
        out: Vec::with_capacity(64 + s.records.len() * 88),
    };
    w.out.extend_from_slice(MAGIC);
    w.out.extend_from_slice(&version.to_le_bytes());
    // Settings.
    let st = s.settings;
    w.b(st.share_to_previous_owner_on_assign);
    w.b(st.ownership_across_business_units);
    w.b(st.do_not_remove_roles_on_change_business_unit);
    w.b(st.always_move_record_to_owner_business_unit);
    match &st.hierarchy {
        None => w.byte(0),
        Some(h) => {
            w.byte(1);
            w.byte(match h.model {
                HierarchyModel::Manager => 0,
                HierarchyModel::Position => 1,
            });
            w.byte(h.depth);
            match &h.tables {
                None => w.byte(0),
                Some(t) => {
                    w.byte(1);
                    w.n(t.len());
                    for x in t {
                        w.id(x.get());
                    }
                }
            }
            w.b(h.managers_must_be_in_same_or_parent_business_unit);
        }
    }
    // Audit switches.
    let a = s.audit;
    w.b(a.enabled);
    w.i(a.retention_days);
    w.b(a.user_access);
    w.strings(a.tables.iter());
    w.strings(a.columns_off.iter());
    // Units.
    w.n(s.units.len());
    for u in &s.units {
        w.s(&u.name);
        w.opt_id(u.parent.map(BusinessUnitId::get));
        w.n(u.children.len());
        for c in &u.children {
            w.id(c.get());
        }
        w.id(u.enter);
        w.id(u.exit);
        w.id(u.level);
    }
    // Users.
    w.n(s.users.len());
    for u in s.users {
        w.s(&u.name);
        w.id(u.business_unit.get());
        w.n(u.roles.len());
        for r in &u.roles {
            w.id(r.role.get());
            w.opt_id(r.business_unit.map(BusinessUnitId::get));
        }
        w.opt_id(u.manager.map(UserId::get));
        w.opt_id(u.position.map(PositionId::get));
        w.b(u.enabled);
        w.n(u.teams.len());
        for t in &u.teams {
            w.id(t.get());
        }
        w.id(u.record.get());
    }
    // Teams.
    w.n(s.teams.len());
    for t in s.teams {
        w.s(&t.name);
        w.byte(t.kind.code());
        w.id(t.business_unit.get());
        w.n(t.members.len());
        for m in &t.members {
            w.id(m.get());
        }
        w.n(t.roles.len());
        for r in &t.roles {
            w.id(r.get());
        }
        match t.record_team {
            None => w.byte(0),
            Some((r, tp)) => {
                w.byte(1);
                w.id(r.get());
                w.id(tp.get());
            }
        }
    }
    // Positions.
    w.n(s.positions.len());
    for p in s.positions {
        w.s(&p.name);
        w.opt_id(p.parent.map(PositionId::get));
    }
    // Tables.
    w.n(s.tables.len());
    for t in s.tables {
        w.s(&t.name);
        w.byte(match t.ownership {
            Ownership::UserOrTeam => 0,
            Ownership::Organization => 1,
            Ownership::BusinessUnit => 2,
        });
        w.n(t.columns.len());
        for c in &t.columns {
            w.s(&c.name);
            w.b(c.secured);
        }
        w.b(t.built_in);
        match &t.entity_set {
            None => w.byte(0),
            Some(e) => {
                w.byte(1);
                w.s(e);
            }
        }
    }
    // Relationships.
    w.n(s.relationships.len());
    for r in s.relationships {
        w.s(&r.name);
        w.id(r.parent.get());
        w.id(r.child.get());
        w.s(&r.lookup);
        let c = r.cascade;
        for x in [c.assign, c.share, c.unshare, c.reparent] {
            w.byte(cascade_code(x));
        }
        w.byte(match c.delete {
            DeleteBehavior::Cascade => 0,
            DeleteBehavior::RemoveLink => 1,
            DeleteBehavior::Restrict => 2,
        });
    }
    // Roles.
    w.n(s.roles.len());
    for r in s.roles {
        w.s(&r.name);
        w.id(r.business_unit.get());
        w.byte(match r.inheritance {
            Inheritance::UserAndTeam => 0,
            Inheritance::TeamOnly => 1,
        });
        w.b(r.system_administrator);
        w.n(r.privileges.len());
        for (t, d) in &r.privileges {
            w.id(t.get());
            w.depths(d);
        }
        w.strings(r.misc.iter());
        match &r.deprecation {
            None => w.byte(0),
            Some(d) => {
                w.byte(1);
                w.s(&d.message);
                w.n(d.successors.len());
                for x in &d.successors {
                    w.id(x.get());
                }
            }
        }
        w.b(r.deleted);
    }
    // Records: first the dictionary of column names, then the records.
    let mut dictionary: HashMap<&str, usize> = HashMap::new();
    let mut words: Vec<&str> = Vec::new();
    for r in s.records {
        for (c, _) in &r.fields {
            dictionary.entry(&**c).or_insert_with(|| {
                words.push(&**c);
                words.len() - 1
            });
        }
        for f in &r.field_shares {
            dictionary.entry(f.column.as_str()).or_insert_with(|| {
                words.push(f.column.as_str());
                words.len() - 1
            });
        }
    }
    w.n(words.len());
    for x in &words {
        w.s(x);
    }
    let word = |c: &str| dictionary.get(c).copied().unwrap_or(0);
    w.n(s.records.len());
    for r in s.records {
        w.s(&r.key);
        w.id(r.table.get());
        match r.owner {
            Owner::User(u) => {
                w.byte(0);
                w.id(u.get());
            }
            Owner::Team(t) => {
                w.byte(1);
                w.id(t.get());
            }
            Owner::None => w.byte(2),
        }
        w.id(r.business_unit.get());
        // State and liveness in one byte.
        w.byte(u8::from(r.state == RecordState::Inactive) | (u8::from(r.alive) << 1));
        w.n(r.lookups.len());
        for (rel, rec) in &r.lookups {
            w.id(rel.get());
            w.id(rec.get());
        }
        w.n(r.fields.len());
        for (c, v) in &r.fields {
            w.n(word(c));
            w.value(v);
        }
        w.n(r.shares.len());
        for sh in &r.shares {
            w.principal(sh.principal);
            w.id(sh.mask.bits());
        }
        w.n(r.field_shares.len());
        for f in &r.field_shares {
            w.n(word(&f.column));
            w.principal(f.principal);
            w.b(f.read);
            w.b(f.update);
        }
        // Stamps (D165): the creation time, the change as a difference from it, and the
        // writers one up (0 = the system).
        w.u(u64::from(r.stamps.created_at));
        w.i(i64::from(r.stamps.modified_at) - i64::from(r.stamps.created_at));
        w.u(u64::from(r.stamps.created_by.wrapping_add(1)));
        w.u(u64::from(r.stamps.modified_by.wrapping_add(1)));
        w.n(r.access_teams.len());
        for (tp, t) in &r.access_teams {
            w.id(tp.get());
            w.id(t.get());
        }
    }
    // Templates.
    w.n(s.templates.len());
    for t in s.templates {
        w.s(&t.name);
        w.id(t.table.get());
        w.id(t.rights.bits());
    }
    // Profiles.
    w.n(s.profiles.len());
    for p in s.profiles {
        w.s(&p.name);
        w.n(p.members.len());
        for m in &p.members {
            w.principal(*m);
        }
        w.n(p.permissions.len());
        for c in &p.permissions {
            w.id(c.table.get());
            w.s(&c.column);
            w.b(c.read);
            w.b(c.update);
            w.b(c.create);
        }
    }
    // Apps.
    w.n(s.apps.len());
    for a in s.apps {
        w.s(&a.name);
        w.n(a.roles.len());
        for r in &a.roles {
            w.id(r.get());
        }
        w.n(a.needs.len());
        for n in &a.needs {
            w.id(n.table.get());
            w.byte(n.privilege.index() as u8);
            w.byte(depth_code(n.depth));
        }
    }
    // Names.
    w.n(s.names.len());
    for (map, name, id) in &s.names {
        w.byte(*map as u8);
        w.s(name);
        w.id(*id);
    }
    // Live records per table, as differences from the previous id (they grow, mostly by 1).
    w.n(s.table_records.len());
    for list in s.table_records {
        w.n(list.len());
        let mut previous = 0i64;
        for r in list {
            let v = i64::from(r.get());
            w.i(v - previous);
            previous = v;
        }
    }
    // Children.
    w.n(s.children.len());
    for (p, list) in &s.children {
        w.id(p.get());
        w.n(list.len());
        for (rel, c) in list.iter() {
            w.id(rel.get());
            w.id(c.get());
        }
    }
    // Columns seen.
    w.n(s.seen_columns.len());
    for set in s.seen_columns {
        w.strings(set.iter());
    }
    // Role rules.
    w.n(s.role_rules.len());
    for rule in s.role_rules {
        match rule {
            RoleRule::Requires { role, any_of } => {
                w.byte(0);
                w.id(role.get());
                w.n(any_of.len());
                for x in any_of {
                    w.id(x.get());
                }
            }
            RoleRule::Excludes { role, other } => {
                w.byte(1);
                w.id(role.get());
                w.id(other.get());
            }
            RoleRule::DirectOnly { role } => {
                w.byte(2);
                w.id(role.get());
            }
        }
    }
    // Licences.
    w.n(s.licences.len());
    for l in s.licences {
        w.s(&l.name);
        w.id(l.price);
        w.byte(depth_code(l.default_ceiling));
        w.n(l.ceilings.len());
        for (t, d) in &l.ceilings {
            w.id(t.get());
            w.depths(d);
        }
        w.b(l.all_misc);
        w.strings(l.misc.iter());
        w.b(l.all_apps);
        w.n(l.apps.len());
        for x in &l.apps {
            w.id(x.get());
        }
    }
    w.n(s.licence_holders.len());
    for (u, held) in &s.licence_holders {
        w.id(u.get());
        w.n(held.len());
        for x in held.iter() {
            w.n(*x);
        }
    }
    w
}

// ----- reading -----

struct R<'a> {
    bytes: &'a [u8],
    at: usize,
}

type Res<T> = Result<T, DecodeError>;

impl<'a> R<'a> {
    fn bad<T>(&self, what: &'static str) -> Res<T> {
        Err(DecodeError::Malformed { at: self.at, what })
    }
    fn byte(&mut self) -> Res<u8> {
        match self.bytes.get(self.at) {
            Some(b) => {
                self.at += 1;
                Ok(*b)
            }
            None => self.bad("a byte"),
        }
    }
    fn u(&mut self) -> Res<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return self.bad("a varint");
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.bad("a varint")
    }
    fn i(&mut self) -> Res<i64> {
        let v = self.u()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }
    fn id(&mut self) -> Res<u32> {
        let v = self.u()?;
        match u32::try_from(v) {
            Ok(v) => Ok(v),
            Err(_) => self.bad("an id"),
        }
    }
    /// A record's [`Stamps`] as [`write_state`] writes them.
    fn stamps(&mut self) -> Res<Stamps> {
        let created_at = self.id()?;
        let delta = self.i()?;
        let Ok(modified_at) = u32::try_from(i64::from(created_at).saturating_add(delta)) else {
            return self.bad("a change time");
        };
        let created_by = self.id()?.wrapping_sub(1);
        let modified_by = self.id()?.wrapping_sub(1);
        Ok(Stamps {
            created_at,
            modified_at,
            created_by,
            modified_by,
        })
    }
    fn usize(&mut self) -> Res<usize> {
        let v = self.u()?;
        match usize::try_from(v) {
            Ok(v) => Ok(v),
            Err(_) => self.bad("a number"),
        }
    }
    /// A count of items, each at least one byte long: never more than the bytes left.
    fn n(&mut self) -> Res<usize> {
        let n = self.usize()?;
        if n > self.bytes.len() - self.at {
            return self.bad("a count no larger than the bytes left");
        }
        Ok(n)
    }
    fn b(&mut self) -> Res<bool> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => self.bad("a boolean"),
        }
    }
    fn s(&mut self) -> Res<String> {
        let n = self.n()?;
        let slice = &self.bytes[self.at..self.at + n];
        match std::str::from_utf8(slice) {
            Ok(s) => {
                self.at += n;
                Ok(s.to_owned())
            }
            Err(_) => self.bad("UTF-8 text"),
        }
    }
    fn tag(&mut self, max: u8, what: &'static str) -> Res<u8> {
        let t = self.byte()?;
        if t > max {
            self.at -= 1;
            return self.bad(what);
        }
        Ok(t)
    }
    fn opt_id(&mut self) -> Res<Option<u32>> {
        Ok(match self.tag(1, "an option tag")? {
            0 => None,
            _ => Some(self.id()?),
        })
    }
    fn depth(&mut self) -> Res<Depth> {
        let t = self.tag(4, "a depth")?;
        Ok(Depth::ALL[usize::from(t)])
    }
    fn depths(&mut self) -> Res<[Depth; 8]> {
        let mut d = [Depth::None; 8];
        for x in &mut d {
            *x = self.depth()?;
        }
        Ok(d)
    }
    fn cascade(&mut self) -> Res<CascadeType> {
        Ok(match self.tag(3, "a cascade")? {
            0 => CascadeType::Cascade,
            1 => CascadeType::Active,
            2 => CascadeType::UserOwned,
            _ => CascadeType::None,
        })
    }
    fn principal(&mut self) -> Res<Principal> {
        Ok(match self.tag(2, "a principal")? {
            0 => Principal::User(UserId::from_raw(self.id()?)),
            1 => Principal::Team(TeamId::from_raw(self.id()?)),
            _ => Principal::Organization,
        })
    }
    fn mask(&mut self) -> Res<AccessMask> {
        let bits = self.id()?;
        match AccessMask::from_bits(bits) {
            Some(m) => Ok(m),
            None => self.bad("an access mask"),
        }
    }
    fn value(&mut self) -> Res<Value> {
        Ok(match self.tag(4, "a value tag")? {
            0 => Value::Null,
            1 => Value::Bool(self.b()?),
            2 => Value::Int(self.i()?),
            3 => {
                let mut b = [0u8; 8];
                for x in &mut b {
                    *x = self.byte()?;
                }
                Value::Float(f64::from_bits(u64::from_le_bytes(b)))
            }
            _ => Value::Text(self.s()?),
        })
    }
    /// A bitmap as [`W::bitmap`] writes it: every byte of its size read, no more.
    fn bitmap(&mut self) -> Res<RoaringBitmap> {
        let n = self.n()?;
        let mut part = &self.bytes[self.at..self.at + n];
        match RoaringBitmap::deserialize_from(&mut part) {
            Ok(b) if part.is_empty() => {
                self.at += n;
                Ok(b)
            }
            _ => self.bad("a bitmap"),
        }
    }
    fn keyed<K>(&mut self, key: impl Fn(&mut Self) -> Res<K>) -> Res<Vec<(K, RoaringBitmap)>> {
        let n = self.n()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let k = key(self)?;
            v.push((k, self.bitmap()?));
        }
        Ok(v)
    }
    /// Record ids as 4 little-endian bytes each, after their count.
    fn raw_ids(&mut self) -> Res<Vec<u32>> {
        let n = self.n()?;
        let Some(len) = n
            .checked_mul(4)
            .filter(|l| *l <= self.bytes.len() - self.at)
        else {
            return self.bad("a count of ids no larger than the bytes left");
        };
        let ids = self.bytes[self.at..self.at + len]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        self.at += len;
        Ok(ids)
    }
    fn strings(&mut self) -> Res<Vec<String>> {
        let n = self.n()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.s()?);
        }
        Ok(v)
    }
    fn ids<T>(&mut self, f: impl Fn(u32) -> T) -> Res<Vec<T>> {
        let n = self.n()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(f(self.id()?));
        }
        Ok(v)
    }
}

/// Checkpoint bytes as the state's parts (ids not yet checked: [`Organization::from_state`]
/// does), of either format (a format 4 checkpoint's record index read and left out).
pub fn decode_state(bytes: &[u8]) -> Result<State, DecodeError> {
    decode_parts(bytes).map(|(state, _)| state)
}

/// Checkpoint bytes as the state's parts and, for format 4, the record index's parts (checked
/// by [`Organization::from_state_with_index`]).
pub fn decode_parts(bytes: &[u8]) -> Result<(State, Option<Vec<TableIndexParts>>), DecodeError> {
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err(DecodeError::NotACheckpoint);
    }
    let version = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if !reads(version) {
        return Err(DecodeError::Version(version));
    }
    let mut r = R { bytes, at: 8 };
    let r = &mut r;
    let s = read_state(r)?;
    let index = if version == FORMAT_VERSION {
        Some(read_index(r)?)
    } else {
        None
    };
    if r.at != bytes.len() {
        return r.bad("the end");
    }
    Ok((s, index))
}

fn read_state(r: &mut R<'_>) -> Res<State> {
    let mut s = State::default();
    // Settings.
    let share_to_previous_owner_on_assign = r.b()?;
    let ownership_across_business_units = r.b()?;
    let do_not_remove_roles_on_change_business_unit = r.b()?;
    let always_move_record_to_owner_business_unit = r.b()?;
    let hierarchy = match r.tag(1, "an option tag")? {
        0 => None,
        _ => {
            let model = match r.tag(1, "a hierarchy model")? {
                0 => HierarchyModel::Manager,
                _ => HierarchyModel::Position,
            };
            let depth = r.byte()?;
            let tables = match r.tag(1, "an option tag")? {
                0 => None,
                _ => Some(r.ids(TableId::from_raw)?),
            };
            Some(HierarchySettings {
                model,
                depth,
                tables,
                managers_must_be_in_same_or_parent_business_unit: r.b()?,
            })
        }
    };
    s.settings = Settings {
        share_to_previous_owner_on_assign,
        ownership_across_business_units,
        do_not_remove_roles_on_change_business_unit,
        always_move_record_to_owner_business_unit,
        hierarchy,
    };
    s.audit = AuditSettings {
        enabled: r.b()?,
        retention_days: r.i()?,
        user_access: r.b()?,
        tables: r.strings()?.into_iter().collect::<BTreeSet<_>>(),
        columns_off: r.strings()?.into_iter().collect::<BTreeSet<_>>(),
    };
    // Units.
    let n = r.n()?;
    s.units.reserve(n);
    for _ in 0..n {
        s.units.push(UnitNode {
            name: r.s()?,
            parent: r.opt_id()?.map(BusinessUnitId::from_raw),
            children: r.ids(BusinessUnitId::from_raw)?,
            enter: r.id()?,
            exit: r.id()?,
            level: r.id()?,
        });
    }
    // Users.
    let n = r.n()?;
    s.users.reserve(n);
    for _ in 0..n {
        let name = r.s()?;
        let business_unit = BusinessUnitId::from_raw(r.id()?);
        let k = r.n()?;
        let mut roles = Vec::with_capacity(k);
        for _ in 0..k {
            roles.push(RoleAssignment {
                role: RoleId::from_raw(r.id()?),
                business_unit: r.opt_id()?.map(BusinessUnitId::from_raw),
            });
        }
        s.users.push(User {
            name,
            business_unit,
            roles,
            manager: r.opt_id()?.map(UserId::from_raw),
            position: r.opt_id()?.map(PositionId::from_raw),
            enabled: r.b()?,
            teams: r.ids(TeamId::from_raw)?,
            record: RecordId::from_raw(r.id()?),
        });
    }
    // Teams.
    let n = r.n()?;
    s.teams.reserve(n);
    for _ in 0..n {
        let name = r.s()?;
        let code = r.byte()?;
        let Some(kind) = [
            TeamType::Owner,
            TeamType::Access,
            TeamType::SecurityGroup,
            TeamType::OfficeGroup,
        ]
        .into_iter()
        .find(|k| k.code() == code) else {
            return r.bad("a team type");
        };
        s.teams.push(Team {
            name,
            kind,
            business_unit: BusinessUnitId::from_raw(r.id()?),
            members: r.ids(UserId::from_raw)?,
            roles: r.ids(RoleId::from_raw)?,
            record_team: match r.tag(1, "an option tag")? {
                0 => None,
                _ => Some((RecordId::from_raw(r.id()?), TemplateId::from_raw(r.id()?))),
            },
        });
    }
    // Positions.
    let n = r.n()?;
    for _ in 0..n {
        s.positions.push(Position {
            name: r.s()?,
            parent: r.opt_id()?.map(PositionId::from_raw),
        });
    }
    // Tables.
    let n = r.n()?;
    for _ in 0..n {
        let name = r.s()?;
        let ownership = match r.tag(2, "an ownership")? {
            0 => Ownership::UserOrTeam,
            1 => Ownership::Organization,
            _ => Ownership::BusinessUnit,
        };
        let k = r.n()?;
        let mut columns = Vec::with_capacity(k);
        for _ in 0..k {
            columns.push(Column {
                name: r.s()?,
                secured: r.b()?,
            });
        }
        s.tables.push(Table {
            name,
            ownership,
            columns,
            built_in: r.b()?,
            entity_set: match r.tag(1, "an option tag")? {
                0 => None,
                _ => Some(r.s()?),
            },
        });
    }
    // Relationships.
    let n = r.n()?;
    for _ in 0..n {
        s.relationships.push(Relationship {
            name: r.s()?,
            parent: TableId::from_raw(r.id()?),
            child: TableId::from_raw(r.id()?),
            lookup: r.s()?,
            cascade: Cascade {
                assign: r.cascade()?,
                share: r.cascade()?,
                unshare: r.cascade()?,
                reparent: r.cascade()?,
                delete: match r.tag(2, "a delete behaviour")? {
                    0 => DeleteBehavior::Cascade,
                    1 => DeleteBehavior::RemoveLink,
                    _ => DeleteBehavior::Restrict,
                },
            },
        });
    }
    // Roles.
    let n = r.n()?;
    for _ in 0..n {
        let name = r.s()?;
        let business_unit = BusinessUnitId::from_raw(r.id()?);
        let inheritance = match r.tag(1, "an inheritance")? {
            0 => Inheritance::UserAndTeam,
            _ => Inheritance::TeamOnly,
        };
        let system_administrator = r.b()?;
        let k = r.n()?;
        let mut privileges = BTreeMap::new();
        for _ in 0..k {
            let t = TableId::from_raw(r.id()?);
            privileges.insert(t, r.depths()?);
        }
        s.roles.push(Role {
            name,
            business_unit,
            inheritance,
            system_administrator,
            privileges,
            misc: r.strings()?,
            deprecation: match r.tag(1, "an option tag")? {
                0 => None,
                _ => Some(Deprecation {
                    message: r.s()?,
                    successors: r.ids(RoleId::from_raw)?,
                }),
            },
            deleted: r.b()?,
        });
    }
    // Records.
    // Every record holding a column shares one copy of its name.
    let words: Vec<ColumnName> = r.strings()?.iter().map(|w| ColumnName::new(w)).collect();
    let word = |r: &mut R<'_>| -> Res<ColumnName> {
        let i = r.usize()?;
        match words.get(i) {
            Some(w) => Ok(w.clone()),
            None => r.bad("a column number"),
        }
    };
    let n = r.n()?;
    s.records.reserve(n);
    for _ in 0..n {
        let key = r.s()?;
        let table = TableId::from_raw(r.id()?);
        let owner = match r.tag(2, "an owner")? {
            0 => Owner::User(UserId::from_raw(r.id()?)),
            1 => Owner::Team(TeamId::from_raw(r.id()?)),
            _ => Owner::None,
        };
        let business_unit = BusinessUnitId::from_raw(r.id()?);
        let flags = r.tag(3, "record flags")?;
        let k = r.n()?;
        let mut lookups = Vec::with_capacity(k);
        for _ in 0..k {
            lookups.push((
                RelationshipId::from_raw(r.id()?),
                RecordId::from_raw(r.id()?),
            ));
        }
        let k = r.n()?;
        let mut fields = Vec::with_capacity(k);
        for _ in 0..k {
            let c = word(r)?;
            let v = r.value()?;
            fields.push((c, v));
        }
        let k = r.n()?;
        let mut shares = Vec::with_capacity(k);
        for _ in 0..k {
            shares.push(Share {
                principal: r.principal()?,
                mask: r.mask()?,
            });
        }
        let k = r.n()?;
        let mut field_shares = Vec::with_capacity(k);
        for _ in 0..k {
            field_shares.push(FieldShare {
                column: word(r)?.to_string(),
                principal: r.principal()?,
                read: r.b()?,
                update: r.b()?,
            });
        }
        let stamps = r.stamps()?;
        let k = r.n()?;
        let mut access_teams = Vec::with_capacity(k);
        for _ in 0..k {
            access_teams.push((TemplateId::from_raw(r.id()?), TeamId::from_raw(r.id()?)));
        }
        s.records.push(Record {
            key: key.into(),
            table,
            owner,
            business_unit,
            state: if flags & 1 == 1 {
                RecordState::Inactive
            } else {
                RecordState::Active
            },
            alive: flags & 2 == 2,
            lookups: lookups.into_boxed_slice(),
            fields: fields.into_boxed_slice(),
            shares: shares.into(),
            field_shares: field_shares.into(),
            access_teams: access_teams.into(),
            stamps,
        });
    }
    // Templates.
    let n = r.n()?;
    for _ in 0..n {
        s.templates.push(Template {
            name: r.s()?,
            table: TableId::from_raw(r.id()?),
            rights: r.mask()?,
        });
    }
    // Profiles.
    let n = r.n()?;
    for _ in 0..n {
        let name = r.s()?;
        let k = r.n()?;
        let mut members = Vec::with_capacity(k);
        for _ in 0..k {
            members.push(r.principal()?);
        }
        let k = r.n()?;
        let mut permissions = Vec::with_capacity(k);
        for _ in 0..k {
            permissions.push(ColumnPermission {
                table: TableId::from_raw(r.id()?),
                column: r.s()?,
                read: r.b()?,
                update: r.b()?,
                create: r.b()?,
            });
        }
        s.profiles.push(Profile {
            name,
            members,
            permissions,
        });
    }
    // Apps.
    let n = r.n()?;
    for _ in 0..n {
        let name = r.s()?;
        let roles = r.ids(RoleId::from_raw)?;
        let k = r.n()?;
        let mut needs = Vec::with_capacity(k);
        for _ in 0..k {
            let table = TableId::from_raw(r.id()?);
            let p = r.tag(7, "a privilege")?;
            needs.push(AppNeed {
                table,
                privilege: Privilege::ALL[usize::from(p)],
                depth: r.depth()?,
            });
        }
        s.apps.push(App { name, roles, needs });
    }
    // Names.
    let n = r.n()?;
    for _ in 0..n {
        let Some(map) = NameMap::from_code(r.byte()?) else {
            return r.bad("a name map");
        };
        s.names.push((map, r.s()?, r.id()?));
    }
    // Live records per table.
    let n = r.n()?;
    for _ in 0..n {
        let k = r.n()?;
        let mut list = Vec::with_capacity(k);
        let mut previous = 0i64;
        for _ in 0..k {
            let v = previous.saturating_add(r.i()?);
            let Ok(id) = u32::try_from(v) else {
                return r.bad("a record id");
            };
            list.push(RecordId::from_raw(id));
            previous = v;
        }
        s.table_records.push(list);
    }
    // Children.
    let n = r.n()?;
    for _ in 0..n {
        let p = RecordId::from_raw(r.id()?);
        let k = r.n()?;
        let mut list = Vec::with_capacity(k);
        for _ in 0..k {
            list.push((
                RelationshipId::from_raw(r.id()?),
                RecordId::from_raw(r.id()?),
            ));
        }
        s.children.push((p, list));
    }
    // Columns seen.
    let n = r.n()?;
    for _ in 0..n {
        s.seen_columns
            .push(r.strings()?.into_iter().collect::<BTreeSet<_>>());
    }
    // Role rules.
    let n = r.n()?;
    for _ in 0..n {
        let rule = match r.tag(2, "a role rule")? {
            0 => {
                let role = RoleId::from_raw(r.id()?);
                RoleRule::requires(role, r.ids(RoleId::from_raw)?)
            }
            1 => RoleRule::Excludes {
                role: RoleId::from_raw(r.id()?),
                other: RoleId::from_raw(r.id()?),
            },
            _ => RoleRule::DirectOnly {
                role: RoleId::from_raw(r.id()?),
            },
        };
        s.role_rules.push(rule);
    }
    // Licences.
    let n = r.n()?;
    for _ in 0..n {
        let name = r.s()?;
        let price = r.id()?;
        let default_ceiling = r.depth()?;
        let k = r.n()?;
        let mut ceilings = BTreeMap::new();
        for _ in 0..k {
            let t = TableId::from_raw(r.id()?);
            ceilings.insert(t, r.depths()?);
        }
        s.licences.push(Licence {
            name,
            price,
            default_ceiling,
            ceilings,
            all_misc: r.b()?,
            misc: r.strings()?,
            all_apps: r.b()?,
            apps: r.ids(AppId::from_raw)?,
        });
    }
    let n = r.n()?;
    for _ in 0..n {
        let u = UserId::from_raw(r.id()?);
        let k = r.n()?;
        let mut held = Vec::with_capacity(k);
        for _ in 0..k {
            held.push(r.usize()?);
        }
        s.licence_holders.push((u, held));
    }
    Ok(s)
}

/// The record index (format 4): per table, the live records, the bitmaps by owner, unit,
/// share and inherited access (keys sorted), then the column indexes. The units' subtrees are
/// made again at load from the units' bitmaps.
fn write_index(w: &mut W, tables: &[TableIndexRef<'_>]) {
    w.n(tables.len());
    for t in tables {
        w.bitmap(t.live);
        w.keyed(&t.by_user, |w, k| w.id(k.get()));
        w.keyed(&t.by_team, |w, k| w.id(k.get()));
        w.keyed(&t.by_unit, |w, k| w.id(k.get()));
        w.keyed(&t.shared_read, W::principal);
        w.keyed(&t.inherited_read, W::principal);
        w.n(t.columns.len());
        for c in &t.columns {
            w.s(c.column);
            w.n(c.rare.iter().map(|b| b.len()).sum());
            for id in c.rare.iter().flat_map(|b| b.iter()) {
                w.out.extend_from_slice(&id.to_le_bytes());
            }
            w.n(c.frequent.len());
            for (v, b) in c.frequent {
                w.value(v);
                w.bitmap(b);
            }
        }
    }
}

fn read_index(r: &mut R<'_>) -> Res<Vec<TableIndexParts>> {
    let n = r.n()?;
    let mut tables = Vec::with_capacity(n);
    for _ in 0..n {
        let live = r.bitmap()?;
        let by_user = r.keyed(|r| Ok(UserId::from_raw(r.id()?)))?;
        let by_team = r.keyed(|r| Ok(TeamId::from_raw(r.id()?)))?;
        let by_unit = r.keyed(|r| Ok(BusinessUnitId::from_raw(r.id()?)))?;
        let shared_read = r.keyed(R::principal)?;
        let inherited_read = r.keyed(R::principal)?;
        let k = r.n()?;
        let mut columns = Vec::with_capacity(k);
        for _ in 0..k {
            let column = r.s()?;
            let rare = r.raw_ids()?;
            let f = r.n()?;
            let mut frequent = Vec::with_capacity(f);
            for _ in 0..f {
                let v = r.value()?;
                frequent.push((v, r.bitmap()?));
            }
            columns.push(ColumnIndexParts {
                column,
                rare,
                frequent,
            });
        }
        tables.push(TableIndexParts {
            live,
            by_user,
            by_team,
            by_unit,
            shared_read,
            inherited_read,
            columns,
        });
    }
    Ok(tables)
}
