//! One organisation (a Dataverse environment): its security model, its records, and the
//! system-level (unauthorized) setup used to load it.

use std::collections::{BTreeMap, HashMap};

use crate::derive::Derived;
use crate::error::ModelError;
use crate::ids::{
    AppId, BusinessUnitId, Owner, PositionId, Principal, ProfileId, RecordId, RelationshipId,
    RoleId, TableId, TeamId, TemplateId, UserId,
};
use crate::journal::{Journal, NameKind};
use crate::limits::{MAX_ENTITIES, MAX_NAME_LEN, MAX_POSITION_DEPTH};
use crate::model::{
    App, Cascade, Column, ColumnPermission, FieldShare, Inheritance, Ownership, Position, Profile,
    RareList, Record, RecordState, Relationship, Role, RoleAssignment, Settings, Share, Stamps,
    Table, Team, TeamType, Template, User, Value,
};
use crate::privilege::{AccessMask, Depth, Privilege};
use crate::records::Records;
use crate::units::UnitTree;

/// The built-in tables every organisation has, and their ownership.
pub const BUILT_IN_TABLES: [(&str, Ownership); 4] = [
    ("systemuser", Ownership::UserOrTeam),
    ("team", Ownership::BusinessUnit),
    ("businessunit", Ownership::BusinessUnit),
    ("role", Ownership::BusinessUnit),
];

/// The table of users' own records (built-in tables come first, in `BUILT_IN_TABLES` order).
pub(crate) const SYSTEMUSER: TableId = TableId::const_new(0);
/// The table of teams.
pub(crate) const TEAM: TableId = TableId::const_new(1);
/// The table of security roles.
pub(crate) const ROLE: TableId = TableId::const_new(3);

#[derive(Clone, Debug, Default)]
pub(crate) struct Names {
    pub(crate) units: HashMap<String, BusinessUnitId>,
    pub(crate) users: HashMap<String, UserId>,
    pub(crate) teams: HashMap<String, TeamId>,
    pub(crate) roles: HashMap<String, RoleId>,
    pub(crate) tables: HashMap<String, TableId>,
    pub(crate) positions: HashMap<String, PositionId>,
    pub(crate) relationships: HashMap<String, RelationshipId>,
    pub(crate) templates: HashMap<String, TemplateId>,
    pub(crate) profiles: HashMap<String, ProfileId>,
    pub(crate) apps: HashMap<String, AppId>,
}

impl Names {
    /// Every other name map's heap (`memory.rs`).
    pub(crate) fn model_heap(&self) -> usize {
        use crate::memory::{map_heap, str_heap};
        fn one<V>(m: &HashMap<String, V>) -> usize {
            map_heap(m) + m.keys().map(|k| str_heap(k)).sum::<usize>()
        }
        one(&self.units)
            + one(&self.users)
            + one(&self.teams)
            + one(&self.roles)
            + one(&self.tables)
            + one(&self.positions)
            + one(&self.relationships)
            + one(&self.templates)
            + one(&self.profiles)
            + one(&self.apps)
    }

    /// The id a name maps to in one map, as an index.
    pub(crate) fn get(&self, kind: NameKind, name: &str) -> Option<usize> {
        match kind {
            NameKind::Units => self.units.get(name).map(|i| i.index()),
            NameKind::Users => self.users.get(name).map(|i| i.index()),
            NameKind::Teams => self.teams.get(name).map(|i| i.index()),
            NameKind::Roles => self.roles.get(name).map(|i| i.index()),
            NameKind::Tables => self.tables.get(name).map(|i| i.index()),
            NameKind::Positions => self.positions.get(name).map(|i| i.index()),
            NameKind::Relationships => self.relationships.get(name).map(|i| i.index()),
            // Records' names are `Organization::record_names`, which needs the records.
            NameKind::Records => None,
            NameKind::Templates => self.templates.get(name).map(|i| i.index()),
            NameKind::Profiles => self.profiles.get(name).map(|i| i.index()),
            NameKind::Apps => self.apps.get(name).map(|i| i.index()),
        }
    }

    /// Maps a name to an id (`Some`, as an index) or removes it (`None`), in one map. Only
    /// [`Organization::set_name`] and the journal's undo call this.
    pub(crate) fn set(&mut self, kind: NameKind, name: &str, id: Option<usize>) {
        fn put<K, I>(map: &mut HashMap<K, I>, name: &str, id: Option<I>)
        where
            K: for<'a> From<&'a str> + std::borrow::Borrow<str> + std::hash::Hash + Eq,
        {
            match id {
                Some(id) => {
                    map.insert(K::from(name), id);
                }
                None => {
                    map.remove(name);
                }
            }
        }
        match kind {
            NameKind::Units => put(&mut self.units, name, id.map(BusinessUnitId::from_index)),
            NameKind::Users => put(&mut self.users, name, id.map(UserId::from_index)),
            NameKind::Teams => put(&mut self.teams, name, id.map(TeamId::from_index)),
            NameKind::Roles => put(&mut self.roles, name, id.map(RoleId::from_index)),
            NameKind::Tables => put(&mut self.tables, name, id.map(TableId::from_index)),
            NameKind::Positions => {
                put(&mut self.positions, name, id.map(PositionId::from_index));
            }
            NameKind::Relationships => put(
                &mut self.relationships,
                name,
                id.map(RelationshipId::from_index),
            ),
            NameKind::Records => {}
            NameKind::Templates => {
                put(&mut self.templates, name, id.map(TemplateId::from_index));
            }
            NameKind::Profiles => put(&mut self.profiles, name, id.map(ProfileId::from_index)),
            NameKind::Apps => put(&mut self.apps, name, id.map(AppId::from_index)),
        }
    }
}

/// An organisation: the whole security model and the records' security facts, in memory.
///
/// Queries take `&self` and never allocate on the check path; changes go through
/// [`Organization::setup`] (system, unauthorized) or the authorized actions.
#[derive(Clone, Debug)]
pub struct Organization {
    pub(crate) settings: Settings,
    pub(crate) audit: crate::model::AuditSettings,
    pub(crate) units: UnitTree,
    pub(crate) users: Vec<User>,
    pub(crate) teams: Vec<Team>,
    pub(crate) positions: Vec<Position>,
    pub(crate) tables: Vec<Table>,
    pub(crate) relationships: Vec<Relationship>,
    pub(crate) roles: Vec<Role>,
    pub(crate) records: Records,
    pub(crate) templates: Vec<Template>,
    pub(crate) profiles: Vec<Profile>,
    pub(crate) apps: Vec<App>,
    pub(crate) names: Names,
    /// Live records of each table, in creation order.
    pub(crate) table_records: Vec<Vec<RecordId>>,
    /// Children of each parent record: (relationship, child); a parent's one child inline.
    pub(crate) children: crate::listmap::ListMap<RecordId, (RelationshipId, RecordId)>,
    pub(crate) derived: Derived,
    /// Bitmaps of records by owner, unit and share, kept in step with every record change.
    pub(crate) index: crate::index::RecordIndex,
    /// An empty index, put in `index`'s place while a change reindexes a record (taken, not
    /// made anew: a new one costs two hash maps' random state).
    pub(crate) spare_index: Option<crate::index::RecordIndex>,
    /// Per table, every column name a record has had (lists accept declared or seen columns).
    pub(crate) seen_columns: Vec<std::collections::BTreeSet<String>>,
    /// Before-images of what changed since the open checkpoints (empty when none is open).
    pub(crate) journal: Journal,
    /// The role rules in force (`rules.rs`).
    pub(crate) role_rules: crate::rules::RoleRules,
    /// The licence catalogue and the licences users hold (`licences.rs`).
    pub(crate) licensing: crate::licences::Licensing,
    /// Every column name a record has held, once: records share these (`intern_column`).
    /// Only grows; not part of the state (a load interns again).
    pub(crate) column_names: std::collections::HashSet<crate::model::ColumnName>,
    /// The live records by key.
    pub(crate) record_names: RecordNames,
    /// The time and writer the operation being applied stamps the records it changes with
    /// (D165): not state, set before each operation (the log's time, the acting user).
    pub(crate) clock: Clock,
}

/// What [`Organization::clock`] holds: seconds since the Unix epoch and the writer's raw id
/// ([`Stamps::SYSTEM`] for the system).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub(crate) at: u32,
    pub(crate) by: u32,
}

impl Default for Clock {
    fn default() -> Self {
        Clock {
            at: 0,
            by: Stamps::SYSTEM,
        }
    }
}

/// The live records by key: their ids in a hash table hashed by the records' own keys, so
/// that no key is held twice (8 bytes a slot: the id and 32 bits of its key's hash, not a
/// string and an id). Every id in it names a record of the organisation
/// (`Organization::records`), whose key never changes.
///
/// The hash fragment kept beside each id lets the table grow without reading a record or
/// hashing a key again (the slots move by their fragments), and a probe compare a record's key
/// only where the fragments match (D153).
#[derive(Clone, Default)]
pub(crate) struct RecordNames {
    table: hashbrown::HashTable<(RecordId, u32)>,
    /// Keyed (SipHash, a random key per process): record keys come from clients.
    hasher: std::hash::RandomState,
}

impl std::fmt::Debug for RecordNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecordNames({} records)", self.table.len())
    }
}

impl RecordNames {
    /// The 32 bits of `key`'s keyed hash that its slot keeps.
    fn fragment_of(hasher: &std::hash::RandomState, key: &str) -> u32 {
        use std::hash::BuildHasher;
        (hasher.hash_one(key) >> 32) as u32
    }

    /// The table's hash of a slot, from its fragment alone: the fragment in both halves,
    /// so that both the bucket (low bits) and the tag (top bits) come from it.
    fn spread(fragment: u32) -> u64 {
        (u64::from(fragment) << 32) | u64::from(fragment)
    }

    fn key_of(records: &Records, id: RecordId) -> &str {
        records.get(id.index()).map_or("", |r| &r.key)
    }

    /// The live record of this key.
    pub(crate) fn get(&self, records: &Records, key: &str) -> Option<RecordId> {
        let fragment = Self::fragment_of(&self.hasher, key);
        self.table
            .find(Self::spread(fragment), |(id, f)| {
                *f == fragment && Self::key_of(records, *id) == key
            })
            .map(|(id, _)| *id)
    }

    /// Names `id` by `key` (the key of `records[id]`), or forgets `key` (`None`).
    pub(crate) fn set(&mut self, records: &Records, key: &str, id: Option<RecordId>) {
        let fragment = Self::fragment_of(&self.hasher, key);
        let entry = self.table.entry(
            Self::spread(fragment),
            |(i, f)| *f == fragment && Self::key_of(records, *i) == key,
            |(_, f)| Self::spread(*f),
        );
        match (entry, id) {
            (hashbrown::hash_table::Entry::Occupied(mut o), Some(id)) => o.get_mut().0 = id,
            (hashbrown::hash_table::Entry::Occupied(o), None) => {
                o.remove();
            }
            (hashbrown::hash_table::Entry::Vacant(v), Some(id)) => {
                v.insert((id, fragment));
            }
            (hashbrown::hash_table::Entry::Vacant(_), None) => {}
        }
    }

    /// Room for `more` names.
    pub(crate) fn reserve(&mut self, more: usize) {
        self.table.reserve(more, |(_, f)| Self::spread(*f));
    }

    /// Every (key, id), in no order.
    pub(crate) fn iter<'a>(
        &'a self,
        records: &'a Records,
    ) -> impl Iterator<Item = (&'a str, RecordId)> + 'a {
        self.table
            .iter()
            .map(|(id, _)| (Self::key_of(records, *id), *id))
    }

    /// The table's heap (`memory.rs`): its slots and control bytes.
    pub(crate) fn heap(&self) -> usize {
        crate::memory::table_heap(
            self.table.capacity(),
            std::mem::size_of::<(RecordId, u32)>(),
        )
    }
}

/// A record of table 0 holding only its key (for measuring and testing [`RecordNames`]).
pub(crate) fn keyed_record(key: String) -> Record {
    Record {
        key: key.into_boxed_str(),
        table: TableId::from_index(0),
        owner: Owner::None,
        business_unit: BusinessUnitId::from_index(0),
        state: RecordState::Active,
        alive: true,
        lookups: Box::new([]),
        fields: Box::new([]),
        shares: RareList::default(),
        field_shares: RareList::default(),
        access_teams: RareList::default(),
        stamps: Stamps::default(),
    }
}

/// What a benchmark of one structure measured ([`record_names_figures`],
/// [`crate::record_growth_figures`]): items written one by one, then read back.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct WriteFigures {
    /// Items written.
    pub count: usize,
    /// The time per write, on average.
    pub per_write: std::time::Duration,
    /// The slowest single write (a growth), and which it was (from 0).
    pub slowest: std::time::Duration,
    pub slowest_at: usize,
    /// The time per read, on average.
    pub per_read: std::time::Duration,
}

impl WriteFigures {
    /// The figures of `count` writes that took `written` (the slowest `slowest`, the write
    /// numbered `slowest_at`) and `reads` reads that took `read`.
    pub(crate) fn of(
        count: usize,
        written: std::time::Duration,
        (slowest, slowest_at): (std::time::Duration, usize),
        reads: usize,
        read: std::time::Duration,
    ) -> Self {
        WriteFigures {
            count,
            per_write: written / count.max(1) as u32,
            slowest,
            slowest_at,
            per_read: read / reads.max(1) as u32,
        }
    }
}

/// Benchmark support (`strata bench names`, D153): `names` GUID-like keys named one by one in
/// the map from record keys to records, as creates name them, and looked up again.
#[doc(hidden)]
#[must_use]
pub fn record_names_figures(names: usize) -> WriteFigures {
    let records: Records = (0..names)
        .map(|i| {
            let spread = (i as u32).wrapping_mul(2_654_435_761);
            keyed_record(format!("{spread:08x}-0000-4000-8000-{i:012x}"))
        })
        .collect();
    let mut map = RecordNames::default();
    let (mut slowest, mut slowest_at) = (std::time::Duration::ZERO, 0);
    let started = std::time::Instant::now();
    for (i, r) in records.iter().enumerate() {
        let one = std::time::Instant::now();
        map.set(&records, &r.key, Some(RecordId::from_index(i)));
        if one.elapsed() > slowest {
            (slowest, slowest_at) = (one.elapsed(), i);
        }
    }
    let named = started.elapsed();
    let started = std::time::Instant::now();
    let looked = records
        .iter()
        .step_by(7)
        .filter(|r| map.get(&records, &r.key).is_some())
        .count();
    let lookups = started.elapsed();
    WriteFigures::of(names, named, (slowest, slowest_at), looked, lookups)
}

impl Default for Organization {
    fn default() -> Self {
        Self::new()
    }
}

/// A new role's definition.
#[derive(Clone, Debug)]
pub struct RoleDefinition {
    /// Name.
    pub name: String,
    /// Owning unit; `None` = the root unit.
    pub business_unit: Option<BusinessUnitId>,
    /// Member's privilege inheritance.
    pub inheritance: Inheritance,
    /// The System Administrator role.
    pub system_administrator: bool,
    /// (table, privilege, depth) grants.
    pub privileges: Vec<(TableId, Privilege, Depth)>,
    /// Miscellaneous privileges.
    pub misc: Vec<String>,
}

/// A new record.
#[derive(Clone, Debug)]
pub struct NewRecord {
    /// External key, unique in the organisation.
    pub key: String,
    /// Table.
    pub table: TableId,
    /// Owner (must be `Owner::None` for organization-owned tables).
    pub owner: Owner,
    /// Owning unit; `None` = the owner's unit (the root for unowned records).
    pub business_unit: Option<BusinessUnitId>,
    /// State.
    pub state: RecordState,
    /// Column values.
    pub fields: Vec<(String, Value)>,
}

pub(crate) fn check_name(kind: &'static str, name: &str) -> Result<(), ModelError> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(ModelError::BadName {
            kind,
            name: name.chars().take(64).collect(),
            limit: MAX_NAME_LEN,
        });
    }
    Ok(())
}

/// Words that name a principal or an actor, not a user: `organization` (the organization
/// principal), `system` (the scenario actor of the root).
pub const RESERVED_NAMES: [&str; 2] = ["organization", "system"];

/// Users, teams, business units and roles are named in principals (`alice`, `team:Sales`,
/// `organization`) and shown to administrators: a name that collides with that syntax, or that
/// hides characters (surrounding whitespace, control characters, Unicode bidi controls), is
/// refused, so that two different principals never read the same.
pub(crate) fn check_principal_name(kind: &'static str, name: &str) -> Result<(), ModelError> {
    check_name(kind, name)?;
    let refuse = |problem| {
        Err(ModelError::ReservedName {
            kind,
            name: name.chars().take(64).flat_map(char::escape_debug).collect(),
            problem,
        })
    };
    let lower = name.to_lowercase();
    if RESERVED_NAMES.contains(&lower.as_str()) {
        return refuse("`organization` and `system` name principals, not entities");
    }
    if name.starts_with('#') {
        return refuse("`#` begins the names of system actors in the audit (`#root`, `#system`)");
    }
    if lower.starts_with("team:") || lower.starts_with("user:") {
        return refuse("`team:` and `user:` begin a principal");
    }
    if name.trim() != name {
        return refuse("it begins or ends with whitespace");
    }
    if name.chars().any(char::is_control) {
        return refuse("it holds a control character");
    }
    if name.chars().any(|c| {
        matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }) {
        return refuse("it holds a Unicode bidirectional control character");
    }
    Ok(())
}

/// Refuses a column the system keeps for every record ([`crate::STAMP_COLUMNS`], D165).
pub(crate) fn check_not_stamp(column: &str) -> Result<(), ModelError> {
    if crate::list::STAMP_COLUMNS.contains(&column) {
        return Err(ModelError::SystemColumn {
            column: column.to_owned(),
        });
    }
    Ok(())
}

fn check_count(kind: &'static str, len: usize) -> Result<(), ModelError> {
    if len >= MAX_ENTITIES {
        return Err(ModelError::TooMany {
            kind,
            limit: MAX_ENTITIES,
        });
    }
    Ok(())
}

impl Organization {
    /// An empty organisation with the built-in tables and default settings.
    #[must_use]
    pub fn new() -> Organization {
        let mut org = Organization {
            settings: Settings::default(),
            audit: crate::model::AuditSettings::default(),
            units: UnitTree::default(),
            users: Vec::new(),
            teams: Vec::new(),
            positions: Vec::new(),
            tables: Vec::new(),
            relationships: Vec::new(),
            roles: Vec::new(),
            records: Records::new(),
            templates: Vec::new(),
            profiles: Vec::new(),
            apps: Vec::new(),
            names: Names::default(),
            table_records: Vec::new(),
            children: crate::listmap::ListMap::default(),
            derived: Derived::default(),
            index: crate::index::RecordIndex::default(),
            spare_index: None,
            seen_columns: Vec::new(),
            journal: Journal::default(),
            role_rules: crate::rules::RoleRules::default(),
            licensing: crate::licences::Licensing::default(),
            column_names: std::collections::HashSet::new(),
            record_names: RecordNames::default(),
            clock: Clock::default(),
        };
        for (name, ownership) in BUILT_IN_TABLES {
            let id = TableId::from_index(org.tables.len());
            org.tables.push(Table {
                name: name.to_owned(),
                ownership,
                columns: Vec::new(),
                built_in: true,
                entity_set: None,
            });
            org.table_records.push(Vec::new());
            org.names.tables.insert(name.to_owned(), id);
        }
        org.refresh();
        org
    }

    /// Sets the time the next operations are applied at (D165), in milliseconds since the Unix
    /// epoch: the time the log gives them (the group's commit time, a log entry's `at_ms` on
    /// replay), so that a replay stamps records as the write did. Records keep whole seconds.
    pub fn set_clock(&mut self, at_ms: i64) {
        self.clock.at = Stamps::seconds(at_ms);
    }

    /// The stamps of a record created now by the current writer.
    pub(crate) fn new_stamps(&self) -> Stamps {
        Stamps::new(self.clock.at, self.clock.by)
    }

    /// Marks a record changed now by the current writer (through the journal).
    pub(crate) fn touch(&mut self, record: RecordId) {
        let Clock { at, by } = self.clock;
        let stamps = &mut self.record_mut(record).stamps;
        stamps.modified_at = at;
        stamps.modified_by = by;
    }

    /// Every live record's [`Stamps`] as text, in record order: what the canonical dump leaves
    /// out (D165), for the proofs that a replay or a checkpoint gives the write's stamps.
    #[must_use]
    pub fn stamps_dump(&self) -> String {
        let mut out = String::new();
        for r in self.records.iter().filter(|r| r.alive) {
            let s = r.stamps;
            out.push_str(&format!(
                "{} {} {} {} {}\n",
                r.key, s.created_at, s.created_by, s.modified_at, s.modified_by
            ));
        }
        out
    }

    /// The whole state as text, independent of hash-map order: two organisations with the same
    /// dump are the same. Used to prove that a rebuilt organisation equals the one acknowledged.
    #[must_use]
    pub fn canonical_dump(&self) -> String {
        // A parent whose children were all unlinked keeps an empty list: the same state as none.
        let mut children: Vec<_> = self
            .children
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        children.sort();
        let mut dump = format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{children:?}",
            self.settings,
            self.audit,
            self.units,
            self.users,
            self.teams,
            self.positions,
            self.tables,
            self.relationships,
            self.roles,
            self.records,
            self.templates,
            self.profiles,
            self.apps,
            self.table_records,
        );
        // Only when rules exist, so that the dumps of organisations without any stay as they were.
        if !self.role_rules.is_empty() {
            dump.push_str(&format!("\n{:?}", self.role_rules));
        }
        // Licensing joins the dump only when used, so that dumps of organisations without
        // licences are what they were before licences existed.
        if !self.licensing.is_empty() {
            dump.push_str(&format!("\n{:?}", self.licensing));
        }
        dump
    }

    /// Opens a setup session: system-level changes with no authorization check. The derived
    /// indexes are rebuilt when the returned guard is dropped.
    pub fn setup(&mut self) -> Setup<'_> {
        // Setup is the system's work: what it creates or changes is stamped as the system's.
        self.clock.by = Stamps::SYSTEM;
        Setup {
            org: self,
            stale: false,
        }
    }

    /// Maps a new name to `id`, refusing a bad or taken name.
    pub(crate) fn insert_name(
        &mut self,
        map: NameKind,
        kind: &'static str,
        name: &str,
        id: usize,
    ) -> Result<(), ModelError> {
        check_name(kind, name)?;
        if self.names.get(map, name).is_some() {
            return Err(ModelError::Duplicate {
                kind,
                name: name.to_owned(),
            });
        }
        self.set_name(map, name, Some(id));
        Ok(())
    }

    // ----- lookups by name -----

    /// The business unit of this name.
    #[must_use]
    pub fn business_unit_id(&self, name: &str) -> Option<BusinessUnitId> {
        self.names.units.get(name).copied()
    }
    /// The user of this name.
    #[must_use]
    pub fn user_id(&self, name: &str) -> Option<UserId> {
        self.names.users.get(name).copied()
    }
    /// The team of this name.
    #[must_use]
    pub fn team_id(&self, name: &str) -> Option<TeamId> {
        self.names.teams.get(name).copied()
    }
    /// The role of this name.
    #[must_use]
    pub fn role_id(&self, name: &str) -> Option<RoleId> {
        self.names.roles.get(name).copied()
    }
    /// The table of this logical name.
    #[must_use]
    pub fn table_id(&self, name: &str) -> Option<TableId> {
        self.names.tables.get(name).copied()
    }
    /// The position of this name.
    #[must_use]
    pub fn position_id(&self, name: &str) -> Option<PositionId> {
        self.names.positions.get(name).copied()
    }
    /// The live record of this key.
    #[must_use]
    pub fn record_id(&self, key: &str) -> Option<RecordId> {
        self.record_names.get(&self.records, key)
    }
    /// The access team template of this name.
    #[must_use]
    pub fn template_id(&self, name: &str) -> Option<TemplateId> {
        self.names.templates.get(name).copied()
    }
    /// The field security profile of this name.
    #[must_use]
    pub fn profile_id(&self, name: &str) -> Option<ProfileId> {
        self.names.profiles.get(name).copied()
    }
    /// The app of this name.
    #[must_use]
    pub fn app_id(&self, name: &str) -> Option<AppId> {
        self.names.apps.get(name).copied()
    }
    /// The relationship whose lookup column on `child` has this name.
    #[must_use]
    pub fn relationship_by_lookup(&self, child: TableId, lookup: &str) -> Option<RelationshipId> {
        self.relationships
            .iter()
            .position(|r| r.child == child && r.lookup == lookup)
            .map(RelationshipId::from_index)
    }

    // ----- read access to the model -----

    /// The table whose Web API entity set this is (declared names first, then derived ones).
    pub fn table_by_entity_set(&self, entity_set: &str) -> Option<TableId> {
        let declared = self
            .tables
            .iter()
            .position(|t| t.entity_set.as_deref() == Some(entity_set));
        declared
            .or_else(|| {
                self.tables
                    .iter()
                    .position(|t| t.entity_set.is_none() && t.has_entity_set(entity_set))
            })
            .map(TableId::from_index)
    }

    /// Settings.
    #[must_use]
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    /// Audit switches and retention.
    #[must_use]
    pub fn audit_settings(&self) -> &crate::model::AuditSettings {
        &self.audit
    }
    /// The business unit tree.
    #[must_use]
    pub fn units(&self) -> &UnitTree {
        &self.units
    }
    /// A user.
    #[must_use]
    pub fn user(&self, id: UserId) -> &User {
        &self.users[id.index()]
    }
    /// Every user id.
    pub fn user_ids(&self) -> impl Iterator<Item = UserId> + use<> {
        (0..self.users.len()).map(UserId::from_index)
    }
    /// A team.
    #[must_use]
    pub fn team(&self, id: TeamId) -> &Team {
        &self.teams[id.index()]
    }
    /// Every team id, record access teams included.
    pub fn team_ids(&self) -> impl Iterator<Item = TeamId> + use<> {
        (0..self.teams.len()).map(TeamId::from_index)
    }
    /// A role.
    #[must_use]
    pub fn role(&self, id: RoleId) -> &Role {
        &self.roles[id.index()]
    }
    /// Every role id (deleted roles left out).
    pub fn role_ids(&self) -> impl Iterator<Item = RoleId> + use<> {
        let live: Vec<RoleId> = (0..self.roles.len())
            .filter(|i| !self.roles[*i].deleted)
            .map(RoleId::from_index)
            .collect();
        live.into_iter()
    }
    /// Every role id, deleted roles (tombstones) included, in creation order (an export keeps
    /// their places).
    pub fn role_ids_with_deleted(&self) -> impl Iterator<Item = RoleId> + use<> {
        (0..self.roles.len()).map(RoleId::from_index)
    }
    /// Every position id.
    pub fn position_ids(&self) -> impl Iterator<Item = PositionId> + use<> {
        (0..self.positions.len()).map(PositionId::from_index)
    }
    /// Every access team template's id.
    pub fn template_ids(&self) -> impl Iterator<Item = TemplateId> + use<> {
        (0..self.templates.len()).map(TemplateId::from_index)
    }
    /// A table.
    #[must_use]
    pub fn table(&self, id: TableId) -> &Table {
        &self.tables[id.index()]
    }
    /// Every table id.
    pub fn table_ids(&self) -> impl Iterator<Item = TableId> + use<> {
        (0..self.tables.len()).map(TableId::from_index)
    }
    /// A position.
    #[must_use]
    pub fn position(&self, id: PositionId) -> &Position {
        &self.positions[id.index()]
    }
    /// A relationship.
    #[must_use]
    pub fn relationship(&self, id: RelationshipId) -> &Relationship {
        &self.relationships[id.index()]
    }
    /// Every relationship id.
    pub fn relationship_ids(&self) -> impl Iterator<Item = RelationshipId> + use<> {
        (0..self.relationships.len()).map(RelationshipId::from_index)
    }
    /// A record (possibly deleted: see [`Record::alive`]).
    #[must_use]
    pub fn record(&self, id: RecordId) -> &Record {
        &self.records[id.index()]
    }
    /// The live records of a table, in creation order.
    #[must_use]
    pub fn table_records(&self, table: TableId) -> &[RecordId] {
        &self.table_records[table.index()]
    }
    /// Every record id ever given, deleted records included (see [`Record::alive`]).
    pub fn record_ids(&self) -> impl Iterator<Item = RecordId> + use<> {
        (0..self.records.len()).map(RecordId::from_index)
    }
    /// Number of records ever created (deleted ones included).
    #[must_use]
    pub fn record_count(&self) -> usize {
        self.records.len()
    }
    /// An access team template.
    #[must_use]
    pub fn template(&self, id: TemplateId) -> &Template {
        &self.templates[id.index()]
    }
    /// A field security profile.
    #[must_use]
    pub fn profile(&self, id: ProfileId) -> &Profile {
        &self.profiles[id.index()]
    }
    /// Every profile id.
    pub fn profile_ids(&self) -> impl Iterator<Item = ProfileId> + use<> {
        (0..self.profiles.len()).map(ProfileId::from_index)
    }
    /// An app.
    #[must_use]
    pub fn app(&self, id: AppId) -> &App {
        &self.apps[id.index()]
    }
    /// The children of a record: (relationship, child).
    #[must_use]
    pub fn children(&self, record: RecordId) -> &[(RelationshipId, RecordId)] {
        self.children.get(&record).unwrap_or(&[])
    }
    /// Whether a user is a member of a team.
    #[must_use]
    pub fn is_member(&self, user: UserId, team: TeamId) -> bool {
        self.users[user.index()].teams.binary_search(&team).is_ok()
    }
    /// A readable name for a principal.
    #[must_use]
    pub fn principal_name(&self, principal: Principal) -> String {
        match principal {
            Principal::User(u) => self.user(u).name.clone(),
            Principal::Team(t) => format!("team:{}", self.team(t).name),
            Principal::Organization => "organization".to_owned(),
        }
    }
    /// A readable name for an owner.
    #[must_use]
    pub fn owner_name(&self, owner: Owner) -> String {
        owner
            .principal()
            .map_or_else(|| "(no owner)".to_owned(), |p| self.principal_name(p))
    }

    /// The unit a new record of this owner belongs to by default.
    pub(crate) fn owner_unit(&self, owner: Owner) -> BusinessUnitId {
        match owner {
            Owner::User(u) => self.users[u.index()].business_unit,
            Owner::Team(t) => self.teams[t.index()].business_unit,
            Owner::None => self.units.root().unwrap_or(BusinessUnitId::from_index(0)),
        }
    }

    /// The unit a role assignment applies from.
    pub(crate) fn assignment_unit(
        &self,
        user: UserId,
        assignment: RoleAssignment,
    ) -> BusinessUnitId {
        assignment
            .business_unit
            .unwrap_or(self.users[user.index()].business_unit)
    }

    pub(crate) fn root_unit(&self) -> Result<BusinessUnitId, ModelError> {
        self.units.root().ok_or_else(|| {
            ModelError::Other("the organisation has no root business unit".to_owned())
        })
    }

    /// Builds a privilege grid, refusing depths an organization-owned table cannot take.
    pub(crate) fn privilege_grid(
        &self,
        role: &str,
        privileges: Vec<(TableId, Privilege, Depth)>,
    ) -> Result<BTreeMap<TableId, [Depth; 8]>, ModelError> {
        let mut grid: BTreeMap<TableId, [Depth; 8]> = BTreeMap::new();
        for (table, privilege, depth) in privileges {
            let t = &self.tables[table.index()];
            if t.ownership == Ownership::Organization
                && !matches!(depth, Depth::None | Depth::Organization)
            {
                return Err(ModelError::DepthNotAllowed {
                    role: role.to_owned(),
                    table: t.name.clone(),
                    privilege: privilege.name(),
                    depth: depth.name(),
                });
            }
            let entry = grid.entry(table).or_default();
            entry[privilege.index()] = entry[privilege.index()].max(depth);
        }
        Ok(grid)
    }

    /// Checks that a role can be held in `unit` (its own unit or a unit below).
    pub(crate) fn check_role_usable(
        &self,
        role: RoleId,
        unit: BusinessUnitId,
    ) -> Result<(), ModelError> {
        let r = &self.roles[role.index()];
        if self.units.contains(r.business_unit, unit) {
            Ok(())
        } else {
            Err(ModelError::RoleNotUsable {
                role: r.name.clone(),
                role_unit: self.units.name(r.business_unit).to_owned(),
                unit: self.units.name(unit).to_owned(),
            })
        }
    }

    // ----- low-level mutations shared by setup and the actions (no authorization) -----

    pub(crate) fn insert_record(&mut self, new: NewRecord) -> Result<RecordId, ModelError> {
        check_count("records", self.records.len())?;
        let table = &self.tables[new.table.index()];
        match (table.ownership, new.owner) {
            (Ownership::UserOrTeam, Owner::None) => {
                return Err(ModelError::record(
                    &new.key,
                    format!("table `{}` needs an owner", table.name),
                ));
            }
            (
                Ownership::Organization | Ownership::BusinessUnit,
                Owner::User(_) | Owner::Team(_),
            ) => {
                return Err(ModelError::record(
                    &new.key,
                    format!(
                        "table `{}` is not user-or-team owned; its records take no owner",
                        table.name
                    ),
                ));
            }
            _ => {}
        }
        if let Owner::Team(t) = new.owner {
            let team = &self.teams[t.index()];
            if !team.kind.can_hold_roles() {
                return Err(ModelError::record(
                    &new.key,
                    format!("access team `{}` cannot own records", team.name),
                ));
            }
        }
        if crate::guid::Guid::parse_canonical(&new.key).is_some_and(|g| g.is_derived_form()) {
            return Err(ModelError::record(
                &new.key,
                "a record key may not be a GUID of the form Strata derives (53545241-…-8000-8000-…)",
            ));
        }
        let id = RecordId::from_index(self.records.len());
        check_name("record", &new.key)?;
        for (c, _) in &new.fields {
            check_not_stamp(c)?;
        }
        if self.record_names.get(&self.records, &new.key).is_some() {
            return Err(ModelError::Duplicate {
                kind: "record",
                name: new.key,
            });
        }
        let key = new.key.into_boxed_str();
        let business_unit = new
            .business_unit
            .unwrap_or_else(|| self.owner_unit(new.owner));
        let fields = new
            .fields
            .into_iter()
            .filter(|(_, v)| *v != Value::Null)
            .map(|(c, v)| (self.intern_column(&c), v))
            .collect();
        let stamps = self.new_stamps();
        self.records.push(Record {
            stamps,
            key,
            table: new.table,
            owner: new.owner,
            business_unit,
            state: new.state,
            lookups: Box::default(),
            fields,
            shares: RareList::default(),
            field_shares: RareList::default(),
            access_teams: RareList::default(),
            alive: true,
        });
        self.set_record_name(id);
        self.table_records_push(new.table, id);
        self.note_columns(id);
        self.reindexing(id, |_| ());
        Ok(id)
    }

    /// Checks that `parent` may become the parent of `child` through `relationship`.
    pub(crate) fn validate_lookup(
        &self,
        child: RecordId,
        relationship: RelationshipId,
        parent: RecordId,
    ) -> Result<(), ModelError> {
        let rel = &self.relationships[relationship.index()];
        let child_rec = &self.records[child.index()];
        if child_rec.table != rel.child {
            return Err(ModelError::record(
                &child_rec.key,
                format!(
                    "lookup `{}` belongs to table `{}`",
                    rel.lookup,
                    self.tables[rel.child.index()].name
                ),
            ));
        }
        let parent_rec = &self.records[parent.index()];
        if !parent_rec.alive {
            return Err(ModelError::unknown("record", parent_rec.key.to_string()));
        }
        if parent_rec.table != rel.parent {
            return Err(ModelError::record(
                &child_rec.key,
                format!(
                    "lookup `{}` refers to table `{}`, not to `{}` (record `{}`)",
                    rel.lookup,
                    self.tables[rel.parent.index()].name,
                    self.tables[parent_rec.table.index()].name,
                    parent_rec.key
                ),
            ));
        }
        if self.is_ancestor_or_self(child, parent) {
            return Err(ModelError::Cycle {
                what: "record",
                name: child_rec.key.to_string(),
            });
        }
        Ok(())
    }

    /// Sets (or clears, with `None`) a lookup, refusing cycles.
    pub(crate) fn set_lookup(
        &mut self,
        child: RecordId,
        relationship: RelationshipId,
        parent: Option<RecordId>,
    ) -> Result<(), ModelError> {
        if let Some(p) = parent {
            self.validate_lookup(child, relationship, p)?;
        }
        if let Some(old) = self.records[child.index()].lookup(relationship) {
            self.children_retain(old, |(r, c)| !(*r == relationship && *c == child));
        }
        let rec = self.record_mut(child);
        let mut lookups = std::mem::take(&mut rec.lookups).into_vec();
        lookups.retain(|(r, _)| *r != relationship);
        if let Some(p) = parent {
            lookups.push((relationship, p));
        }
        rec.lookups = lookups.into_boxed_slice();
        if let Some(p) = parent {
            self.children_push(p, (relationship, child));
        }
        self.reindexing_facts(child, |_| ());
        self.touch(child);
        Ok(())
    }

    /// Whether `ancestor` is `record` or reachable from it by following lookups upwards.
    fn is_ancestor_or_self(&self, ancestor: RecordId, record: RecordId) -> bool {
        let mut stack = vec![record];
        let mut seen = std::collections::HashSet::new();
        while let Some(r) = stack.pop() {
            if r == ancestor {
                return true;
            }
            if seen.insert(r) {
                stack.extend(self.records[r.index()].lookups.iter().map(|(_, p)| *p));
            }
        }
        false
    }

    /// The shared copy of a column name (records hold this, not their own).
    pub(crate) fn intern_column(&mut self, column: &str) -> crate::model::ColumnName {
        if let Some(c) = self.column_names.get(column) {
            return c.clone();
        }
        let c = crate::model::ColumnName::new(column);
        self.column_names.insert(c.clone());
        c
    }

    /// Remembers the column names a record has, for lists.
    pub(crate) fn note_columns(&mut self, record: RecordId) {
        let rec = &self.records[record.index()];
        let table = rec.table.index();
        if self.seen_columns.len() <= table {
            self.seen_columns.resize_with(table + 1, Default::default);
        }
        let new: Vec<String> = rec
            .fields
            .iter()
            .filter(|(column, _)| !self.seen_columns[table].contains(&**column))
            .map(|(column, _)| column.to_string())
            .collect();
        for column in new {
            self.seen_columns_insert(table, &column);
        }
    }

    /// Writes columns of a record (a `Null` clears one) and keeps the record's index entries in
    /// step. Only the record's own facts change: what descendants inherit depends on owners,
    /// shares and lookups, and lookups change through `set_lookup`, never here.
    pub(crate) fn set_fields(
        &mut self,
        record: RecordId,
        fields: impl IntoIterator<Item = (String, Value)>,
    ) {
        let mut index = std::mem::take(&mut self.index);
        index.set(self, record, false);
        let fields: Vec<(crate::model::ColumnName, Value)> = fields
            .into_iter()
            .map(|(c, v)| (self.intern_column(&c), v))
            .collect();
        let rec = self.record_mut(record);
        let mut all = std::mem::take(&mut rec.fields).into_vec();
        for (column, value) in fields {
            all.retain(|(c, _)| *c != column);
            if value != Value::Null {
                all.push((column, value));
            }
        }
        rec.fields = all.into_boxed_slice();
        index.set(self, record, true);
        self.index = index;
        self.note_columns(record);
        self.touch(record);
    }

    pub(crate) fn set_share(&mut self, record: RecordId, principal: Principal, mask: AccessMask) {
        self.reindexing_facts(record, |org| {
            let rec = org.record_mut(record);
            if mask.is_empty() {
                let mut shares = std::mem::take(&mut rec.shares).into_vec();
                shares.retain(|s| s.principal != principal);
                rec.shares = shares.into();
            } else if let Some(s) = rec.shares.iter_mut().find(|s| s.principal == principal) {
                s.mask = mask;
            } else {
                let mut shares = std::mem::take(&mut rec.shares).into_vec();
                shares.push(Share { principal, mask });
                rec.shares = shares.into();
            }
        });
    }

    pub(crate) fn add_member(&mut self, team: TeamId, user: UserId) {
        if let Err(pos) = self.teams[team.index()].members.binary_search(&user) {
            self.team_mut(team).members.insert(pos, user);
        }
        if let Err(pos) = self.users[user.index()].teams.binary_search(&team) {
            self.user_mut(user).teams.insert(pos, team);
        }
    }

    pub(crate) fn remove_member(&mut self, team: TeamId, user: UserId) {
        self.team_mut(team).members.retain(|m| *m != user);
        self.user_mut(user).teams.retain(|t| *t != team);
    }

    /// The record access team of (record, template), created when missing.
    pub(crate) fn record_access_team(
        &mut self,
        record: RecordId,
        template: TemplateId,
    ) -> Result<TeamId, ModelError> {
        if let Some((_, team)) = self.records[record.index()]
            .access_teams
            .iter()
            .find(|(t, _)| *t == template)
        {
            return Ok(*team);
        }
        check_count("teams", self.teams.len())?;
        let rec = &self.records[record.index()];
        let tpl = &self.templates[template.index()];
        let id = TeamId::from_index(self.teams.len());
        self.teams.push(Team {
            name: format!("{} for {}", tpl.name, rec.key),
            kind: TeamType::Access,
            business_unit: rec.business_unit,
            members: Vec::new(),
            roles: Vec::new(),
            record_team: Some((record, template)),
        });
        let rights = tpl.rights;
        let rec = self.record_mut(record);
        let mut teams = std::mem::take(&mut rec.access_teams).into_vec();
        teams.push((template, id));
        rec.access_teams = teams.into();
        self.set_share(record, Principal::Team(id), rights);
        Ok(id)
    }

    /// Checks that making `manager` the manager of `user` creates no cycle.
    pub(crate) fn check_manager(
        &self,
        user: UserId,
        manager: Option<UserId>,
    ) -> Result<(), ModelError> {
        let Some(m) = manager else { return Ok(()) };
        let mut cur = Some(m);
        let mut steps = 0usize;
        while let Some(c) = cur {
            if c == user {
                return Err(ModelError::Cycle {
                    what: "manager chain of user",
                    name: self.users[user.index()].name.clone(),
                });
            }
            steps += 1;
            if steps > self.users.len() {
                break;
            }
            cur = self.users[c.index()].manager;
        }
        Ok(())
    }
}

/// A setup session: system-level changes, no authorization. Dropping it rebuilds the derived
/// indexes, so queries always see a consistent organisation.
#[derive(Debug)]
pub struct Setup<'a> {
    pub(crate) org: &'a mut Organization,
    /// Something the derived indexes depend on changed (records do not count).
    pub(crate) stale: bool,
}

impl Drop for Setup<'_> {
    fn drop(&mut self) {
        if self.stale {
            self.org.refresh();
        }
    }
}

impl Setup<'_> {
    /// The organisation being set up (read-only).
    #[must_use]
    pub fn org(&self) -> &Organization {
        self.org
    }

    /// The organisation being set up, to change through its journaled accessors.
    pub(crate) fn org_mut(&mut self) -> &mut Organization {
        self.org
    }

    /// Replaces the settings.
    pub fn set_settings(&mut self, settings: Settings) -> Result<(), ModelError> {
        self.stale = true;
        if let Some(h) = &settings.hierarchy
            && (h.depth == 0 || h.depth > crate::limits::MAX_HIERARCHY_DEPTH)
        {
            return Err(ModelError::Other(format!(
                "hierarchy depth {} is outside 1..={}",
                h.depth,
                crate::limits::MAX_HIERARCHY_DEPTH
            )));
        }
        *self.org.settings_mut() = settings;
        Ok(())
    }

    /// Replaces the audit switches and retention.
    pub fn set_audit(&mut self, audit: crate::model::AuditSettings) -> Result<(), ModelError> {
        if audit.retention_days < -1 || audit.retention_days == 0 || audit.retention_days > 365_000
        {
            return Err(ModelError::Other(format!(
                "audit retention {} days is outside 1..=365000 (or -1 for forever)",
                audit.retention_days
            )));
        }
        *self.org.audit_mut() = audit;
        Ok(())
    }

    /// Adds a business unit (`parent: None` adds the root).
    pub fn add_business_unit(
        &mut self,
        name: &str,
        parent: Option<BusinessUnitId>,
    ) -> Result<BusinessUnitId, ModelError> {
        self.stale = true;
        check_principal_name("business unit", name)?;
        check_count("business units", self.org.units.len())?;
        if self.org.names.units.contains_key(name) {
            return Err(ModelError::Duplicate {
                kind: "business unit",
                name: name.to_owned(),
            });
        }
        let id = self.org.units_mut().add(name, parent)?;
        self.org.set_name(NameKind::Units, name, Some(id.index()));
        Ok(id)
    }

    /// Declares a table's Web API entity set name (lowercase letters, digits and `_`), unique
    /// among the organisation's tables.
    pub fn set_entity_set(&mut self, table: TableId, entity_set: &str) -> Result<(), ModelError> {
        self.stale = true;
        check_name("entity set", entity_set)?;
        if !entity_set
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(ModelError::Other(format!(
                "entity set `{entity_set}`: lowercase letters, digits and `_` only (Dataverse's entity sets are lowercase)"
            )));
        }
        if let Some(other) = self.org.table_by_entity_set(entity_set)
            && other != table
        {
            return Err(ModelError::Duplicate {
                kind: "entity set",
                name: entity_set.to_owned(),
            });
        }
        self.org.table_mut(table).entity_set = Some(entity_set.to_owned());
        Ok(())
    }

    /// Renames a business unit. The new name follows the rules of a new unit's (a principal's
    /// name, unique among units); renaming a unit to its own name changes nothing. Everything
    /// refers to units by id, so nothing else moves.
    pub fn rename_business_unit(
        &mut self,
        unit: BusinessUnitId,
        name: &str,
    ) -> Result<(), ModelError> {
        check_principal_name("business unit", name)?;
        let old = self.org.units().name(unit).to_owned();
        if old == name {
            return Ok(());
        }
        if self.org.names.units.contains_key(name) {
            return Err(ModelError::Duplicate {
                kind: "business unit",
                name: name.to_owned(),
            });
        }
        self.org.units_mut().rename(unit, name);
        self.org.set_name(NameKind::Units, &old, None);
        self.org.set_name(NameKind::Units, name, Some(unit.index()));
        Ok(())
    }

    /// Moves a business unit and its subtree under another unit.
    pub fn move_business_unit(
        &mut self,
        unit: BusinessUnitId,
        new_parent: BusinessUnitId,
    ) -> Result<(), ModelError> {
        self.stale = true;
        let before: Vec<BusinessUnitId> = match self.org.units().parent(unit) {
            Some(parent) => self.org.units().ancestors(parent).collect(),
            None => Vec::new(),
        };
        self.org.units_mut().move_unit(unit, new_parent)?;
        // Subtree bitmaps follow the tree: the units above it that it leaves, and those it joins.
        let after: Vec<BusinessUnitId> = self.org.units().ancestors(new_parent).collect();
        let from = before
            .iter()
            .copied()
            .filter(|u| !after.contains(u))
            .collect();
        let to = after
            .iter()
            .copied()
            .filter(|u| !before.contains(u))
            .collect();
        self.org.move_index_subtree(unit, from, to);
        Ok(())
    }

    /// Adds a table, or declares columns of a built-in table.
    pub fn add_table(
        &mut self,
        name: &str,
        ownership: Option<Ownership>,
        columns: Vec<Column>,
    ) -> Result<TableId, ModelError> {
        self.stale = true;
        check_name("table", name)?;
        for c in &columns {
            check_not_stamp(&c.name)?;
        }
        if let Some(id) = self.org.table_id(name) {
            let table = &self.org.tables[id.index()];
            if !table.built_in {
                return Err(ModelError::Duplicate {
                    kind: "table",
                    name: name.to_owned(),
                });
            }
            if ownership.is_some_and(|o| o != table.ownership) {
                return Err(ModelError::Other(format!(
                    "built-in table `{name}` keeps its own ownership"
                )));
            }
            let table = self.org.table_mut(id);
            for c in columns {
                table.columns.retain(|old| old.name != c.name);
                table.columns.push(c);
            }
            // Existing records (users' own) join the new columns' sorted index.
            self.org.rebuild_index();
            return Ok(id);
        }
        check_count("tables", self.org.tables.len())?;
        let mut seen = std::collections::HashSet::new();
        for c in &columns {
            check_name("column", &c.name)?;
            if !seen.insert(c.name.as_str()) {
                return Err(ModelError::Duplicate {
                    kind: "column",
                    name: format!("{name}.{}", c.name),
                });
            }
        }
        let id = TableId::from_index(self.org.tables.len());
        self.org.tables.push(Table {
            name: name.to_owned(),
            ownership: ownership.unwrap_or(Ownership::UserOrTeam),
            columns,
            built_in: false,
            entity_set: None,
        });
        self.org.table_records.push(Vec::new());
        self.org.set_name(NameKind::Tables, name, Some(id.index()));
        Ok(id)
    }

    /// Adds columns to an existing table (`add_columns`): a column it already declares is
    /// refused as a duplicate.
    pub fn add_columns(&mut self, table: TableId, columns: Vec<Column>) -> Result<(), ModelError> {
        self.stale = true;
        let t = &self.org.tables[table.index()];
        let mut seen = std::collections::HashSet::new();
        for c in &columns {
            check_name("column", &c.name)?;
            check_not_stamp(&c.name)?;
            if !seen.insert(c.name.as_str()) || t.columns.iter().any(|old| old.name == c.name) {
                return Err(ModelError::Duplicate {
                    kind: "column",
                    name: format!("{}.{}", t.name, c.name),
                });
            }
        }
        if t.columns.len() + columns.len() > MAX_ENTITIES {
            return Err(ModelError::TooMany {
                kind: "columns",
                limit: MAX_ENTITIES,
            });
        }
        // Through the journal's accessors: a refused batch undoes this too.
        self.org.table_mut(table).columns.extend(columns);
        // Existing records join the new columns' sorted index.
        self.org.rebuild_index();
        Ok(())
    }

    /// Adds a relationship.
    pub fn add_relationship(
        &mut self,
        name: &str,
        parent: TableId,
        child: TableId,
        lookup: &str,
        cascade: Cascade,
    ) -> Result<RelationshipId, ModelError> {
        check_name("lookup", lookup)?;
        if self.org.relationship_by_lookup(child, lookup).is_some() {
            return Err(ModelError::Duplicate {
                kind: "lookup",
                name: format!("{}.{lookup}", self.org.tables[child.index()].name),
            });
        }
        let id = RelationshipId::from_index(self.org.relationships.len());
        self.org
            .insert_name(NameKind::Relationships, "relationship", name, id.index())?;
        self.org.relationships.push(Relationship {
            name: name.to_owned(),
            parent,
            child,
            lookup: lookup.to_owned(),
            cascade,
        });
        Ok(id)
    }

    /// Adds a role.
    pub fn add_role(&mut self, def: RoleDefinition) -> Result<RoleId, ModelError> {
        self.stale = true;
        check_count("roles", self.org.roles.len())?;
        let business_unit = match def.business_unit {
            Some(u) => u,
            None => self.org.root_unit()?,
        };
        check_principal_name("role", &def.name)?;
        let privileges = self.org.privilege_grid(&def.name, def.privileges)?;
        let id = RoleId::from_index(self.org.roles.len());
        self.org
            .insert_name(NameKind::Roles, "role", &def.name, id.index())?;
        self.org.roles.push(Role {
            name: def.name,
            business_unit,
            inheritance: def.inheritance,
            system_administrator: def.system_administrator,
            privileges,
            misc: def.misc,
            deprecation: None,
            deleted: false,
        });
        Ok(id)
    }

    /// Replaces a role's privilege grid and miscellaneous privileges (the System Administrator
    /// role cannot be edited, D10). Users' grants are rebuilt when the session ends.
    pub fn set_role_privileges(
        &mut self,
        role: RoleId,
        privileges: Vec<(TableId, Privilege, Depth)>,
        misc: Vec<String>,
    ) -> Result<(), ModelError> {
        self.stale = true;
        let name = self.org.roles[role.index()].name.clone();
        if self.org.roles[role.index()].system_administrator {
            return Err(ModelError::SystemAdministratorNotEditable { role: name });
        }
        let grid = self.org.privilege_grid(&name, privileges)?;
        let r = self.org.role_mut(role);
        r.privileges = grid;
        r.misc = misc;
        Ok(())
    }

    /// Enables or disables a user (a disabled user is refused everything).
    pub fn set_user_enabled(&mut self, user: UserId, enabled: bool) {
        self.org.user_mut(user).enabled = enabled;
    }

    /// Replaces the roles associated with an app.
    pub fn set_app_roles(&mut self, app: AppId, roles: Vec<RoleId>) {
        self.org.app_mut(app).roles = roles;
    }

    /// Adds a position.
    pub fn add_position(
        &mut self,
        name: &str,
        parent: Option<PositionId>,
    ) -> Result<PositionId, ModelError> {
        self.stale = true;
        check_count("positions", self.org.positions.len())?;
        let mut level = 0usize;
        let mut cur = parent;
        while let Some(p) = cur {
            level += 1;
            cur = self.org.positions[p.index()].parent;
        }
        if level > MAX_POSITION_DEPTH {
            return Err(ModelError::TooDeep {
                what: "position tree",
                name: name.to_owned(),
                limit: MAX_POSITION_DEPTH,
            });
        }
        let id = PositionId::from_index(self.org.positions.len());
        self.org
            .insert_name(NameKind::Positions, "position", name, id.index())?;
        self.org.positions.push(Position {
            name: name.to_owned(),
            parent,
        });
        Ok(id)
    }

    /// Adds a user (and the user's own `systemuser` record).
    pub fn add_user(
        &mut self,
        name: &str,
        business_unit: BusinessUnitId,
        enabled: bool,
    ) -> Result<UserId, ModelError> {
        self.stale = true;
        check_principal_name("user", name)?;
        check_count("users", self.org.users.len())?;
        let id = UserId::from_index(self.org.users.len());
        self.org
            .insert_name(NameKind::Users, "user", name, id.index())?;
        let record = match self.org.insert_record(NewRecord {
            key: name.to_owned(),
            table: SYSTEMUSER,
            owner: Owner::User(id),
            business_unit: Some(business_unit),
            state: RecordState::Active,
            fields: Vec::new(),
        }) {
            Ok(r) => r,
            Err(e) => {
                self.org.set_name(NameKind::Users, name, None);
                return Err(e);
            }
        };
        self.org.users.push(User {
            name: name.to_owned(),
            business_unit,
            roles: Vec::new(),
            manager: None,
            position: None,
            enabled,
            teams: Vec::new(),
            record,
        });
        Ok(id)
    }

    /// Assigns a role to a user. `business_unit` is the unit of the assignment in the
    /// ownership-across-units model, and must be `None` otherwise.
    pub fn assign_user_role(
        &mut self,
        user: UserId,
        role: RoleId,
        business_unit: Option<BusinessUnitId>,
    ) -> Result<(), ModelError> {
        self.stale = true;
        let unit = business_unit.unwrap_or(self.org.users[user.index()].business_unit);
        if business_unit.is_some() && !self.org.settings.ownership_across_business_units {
            return Err(ModelError::Other(format!(
                "role `{}` is assigned to `{}` in a business unit, which needs `ownership_across_business_units`",
                self.org.roles[role.index()].name,
                self.org.users[user.index()].name
            )));
        }
        self.org.check_not_deprecated(role)?;
        self.org.check_role_usable(role, unit)?;
        let assignment = RoleAssignment {
            role,
            business_unit,
        };
        if !self.org.users[user.index()].roles.contains(&assignment) {
            self.org.user_mut(user).roles.push(assignment);
        }
        Ok(())
    }

    /// Sets a user's manager, refusing cycles.
    pub fn set_manager(&mut self, user: UserId, manager: Option<UserId>) -> Result<(), ModelError> {
        self.stale = true;
        self.org.check_manager(user, manager)?;
        self.org.user_mut(user).manager = manager;
        Ok(())
    }

    /// Sets a user's position.
    pub fn set_position(&mut self, user: UserId, position: Option<PositionId>) {
        self.stale = true;
        self.org.user_mut(user).position = position;
    }

    /// [`Organization::set_clock`] inside a setup session.
    pub fn set_clock(&mut self, at_ms: i64) {
        self.org.set_clock(at_ms);
    }

    /// Sets columns of a user's own `systemuser` record.
    ///
    /// # Errors
    ///
    /// [`ModelError::SystemColumn`] for a column the system keeps (D165); nothing is set.
    pub fn set_user_fields(
        &mut self,
        user: UserId,
        fields: Vec<(String, Value)>,
    ) -> Result<(), ModelError> {
        for (c, _) in &fields {
            check_not_stamp(c)?;
        }
        let record = self.org.users[user.index()].record;
        self.org.set_fields(record, fields);
        Ok(())
    }

    /// Adds a team.
    pub fn add_team(
        &mut self,
        name: &str,
        kind: TeamType,
        business_unit: BusinessUnitId,
    ) -> Result<TeamId, ModelError> {
        self.stale = true;
        check_principal_name("team", name)?;
        check_count("teams", self.org.teams.len())?;
        let id = TeamId::from_index(self.org.teams.len());
        self.org
            .insert_name(NameKind::Teams, "team", name, id.index())?;
        self.org.teams.push(Team {
            name: name.to_owned(),
            kind,
            business_unit,
            members: Vec::new(),
            roles: Vec::new(),
            record_team: None,
        });
        Ok(id)
    }

    /// Adds a member to a team.
    pub fn add_team_member(&mut self, team: TeamId, user: UserId) {
        self.stale = true;
        self.org.add_member(team, user);
    }

    /// Gives a role to an owner or group team.
    pub fn assign_team_role(&mut self, team: TeamId, role: RoleId) -> Result<(), ModelError> {
        self.stale = true;
        let t = &self.org.teams[team.index()];
        if !t.kind.can_hold_roles() {
            return Err(ModelError::RoleOnAccessTeam {
                team: t.name.clone(),
                role: self.org.roles[role.index()].name.clone(),
            });
        }
        self.org.check_not_deprecated(role)?;
        self.org.check_role_usable(role, t.business_unit)?;
        if !self.org.teams[team.index()].roles.contains(&role) {
            self.org.team_mut(team).roles.push(role);
        }
        Ok(())
    }

    /// Adds an access team template.
    pub fn add_template(
        &mut self,
        name: &str,
        table: TableId,
        rights: AccessMask,
    ) -> Result<TemplateId, ModelError> {
        if self.org.tables[table.index()].ownership != Ownership::UserOrTeam {
            return Err(ModelError::Other(format!(
                "access team template `{name}`: table `{}` is not user-or-team owned",
                self.org.tables[table.index()].name
            )));
        }
        let id = TemplateId::from_index(self.org.templates.len());
        self.org.insert_name(
            NameKind::Templates,
            "access team template",
            name,
            id.index(),
        )?;
        self.org.templates.push(Template {
            name: name.to_owned(),
            table,
            rights: rights.intersection(AccessMask::INHERITED),
        });
        Ok(id)
    }

    /// Adds a record.
    pub fn add_record(&mut self, new: NewRecord) -> Result<RecordId, ModelError> {
        self.org.insert_record(new)
    }

    /// Sets a lookup of a record (a reparent), refusing cycles.
    pub fn set_lookup(
        &mut self,
        child: RecordId,
        relationship: RelationshipId,
        parent: RecordId,
    ) -> Result<(), ModelError> {
        self.org.set_lookup(child, relationship, Some(parent))
    }

    /// Shares a record: adds rights to the principal's explicit share.
    pub fn share(
        &mut self,
        record: RecordId,
        principal: Principal,
        rights: AccessMask,
    ) -> Result<(), ModelError> {
        if let Principal::Team(t) = principal
            && self.org.teams[t.index()].record_team.is_some()
        {
            return Err(ModelError::Other(format!(
                "team `{}` is a record access team; add members through its template",
                self.org.teams[t.index()].name
            )));
        }
        let old = self.org.records[record.index()].share_of(principal);
        self.org.set_share(record, principal, old.union(rights));
        Ok(())
    }

    /// Adds a user to the access team of (record, template).
    pub fn add_access_team_member(
        &mut self,
        record: RecordId,
        template: TemplateId,
        user: UserId,
    ) -> Result<(), ModelError> {
        let rec = &self.org.records[record.index()];
        let tpl = &self.org.templates[template.index()];
        if rec.table != tpl.table {
            return Err(ModelError::record(
                &rec.key,
                format!(
                    "access team template `{}` is for table `{}`",
                    tpl.name,
                    self.org.tables[tpl.table.index()].name
                ),
            ));
        }
        let team = self.org.record_access_team(record, template)?;
        self.org.add_member(team, user);
        Ok(())
    }

    /// Adds a field security profile.
    pub fn add_profile(
        &mut self,
        name: &str,
        members: Vec<Principal>,
        permissions: Vec<ColumnPermission>,
    ) -> Result<ProfileId, ModelError> {
        if members.contains(&Principal::Organization) {
            return Err(ModelError::Other(format!(
                "field security profile `{name}`: members are users and teams"
            )));
        }
        for p in &permissions {
            let table = &self.org.tables[p.table.index()];
            if !table.is_secured(&p.column) {
                return Err(ModelError::Other(format!(
                    "field security profile `{name}`: column `{}.{}` is not secured",
                    table.name, p.column
                )));
            }
        }
        let id = ProfileId::from_index(self.org.profiles.len());
        self.org.insert_name(
            NameKind::Profiles,
            "field security profile",
            name,
            id.index(),
        )?;
        self.org.profiles.push(Profile {
            name: name.to_owned(),
            members,
            permissions,
        });
        Ok(id)
    }

    /// Shares one secured column of one record.
    pub fn add_field_share(
        &mut self,
        record: RecordId,
        share: FieldShare,
    ) -> Result<(), ModelError> {
        let rec = &self.org.records[record.index()];
        let table = &self.org.tables[rec.table.index()];
        if !table.is_secured(&share.column) {
            return Err(ModelError::record(
                &rec.key,
                format!("column `{}.{}` is not secured", table.name, share.column),
            ));
        }
        if share.principal == Principal::Organization {
            return Err(ModelError::record(
                &rec.key,
                "column shares go to users and teams",
            ));
        }
        let rec = self.org.record_mut(record);
        let mut shares = std::mem::take(&mut rec.field_shares).into_vec();
        shares.retain(|f| !(f.column == share.column && f.principal == share.principal));
        shares.push(share);
        rec.field_shares = shares.into();
        Ok(())
    }

    /// Adds an app associated with roles.
    pub fn add_app(&mut self, name: &str, roles: Vec<RoleId>) -> Result<AppId, ModelError> {
        let id = AppId::from_index(self.org.apps.len());
        self.org
            .insert_name(NameKind::Apps, "app", name, id.index())?;
        self.org.apps.push(App {
            name: name.to_owned(),
            roles,
            needs: Vec::new(),
        });
        Ok(id)
    }

    /// Replaces the table privileges an app needs (D51): one entry per table and privilege
    /// (the deepest kept), at most [`crate::limits::MAX_APP_NEEDS`].
    pub fn set_app_needs(
        &mut self,
        app: AppId,
        needs: Vec<crate::apps::AppNeed>,
    ) -> Result<(), ModelError> {
        let needs = crate::apps::normalize_needs(self.org, app, needs)?;
        self.org.app_mut(app).needs = needs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key finds its record through growth after growth (the slots move by their hash
    /// fragments, no key read again), among 300,000 keys — enough that some pairs share a
    /// fragment (about ten expected), which the key comparison tells apart; a forgotten key
    /// is gone and the others stay.
    #[test]
    fn record_names_find_every_key_through_growth() {
        let records: Records = (0..300_000)
            .map(|i| keyed_record(format!("{i:08x}-key")))
            .collect();
        let mut names = RecordNames::default();
        for (i, r) in records.iter().enumerate() {
            names.set(&records, &r.key, Some(RecordId::from_index(i)));
        }
        let found = |names: &RecordNames, i: usize| names.get(&records, &records[i].key);
        assert!((0..records.len()).all(|i| found(&names, i) == Some(RecordId::from_index(i))));
        assert_eq!(names.get(&records, "no-such-key"), None);
        for i in (0..records.len()).step_by(3) {
            names.set(&records, &records[i].key, None);
        }
        assert!((0..records.len()).all(|i| {
            let expected = (i % 3 != 0).then(|| RecordId::from_index(i));
            found(&names, i) == expected
        }));
        assert_eq!(names.iter(&records).count(), 200_000);
        // Room made ahead moves the slots by their fragments too.
        names.reserve(1_000_000);
        assert!(
            (1..records.len())
                .step_by(3)
                .all(|i| found(&names, i).is_some())
        );
    }
}
