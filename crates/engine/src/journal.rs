//! The undo journal: while a checkpoint is open, every change to the organisation first records
//! the before-image of what it changes, so that a refused batch is undone exactly, in time
//! proportional to what the batch touched — never to the organisation's size.
//!
//! Invariants:
//! - Every in-place mutation of the organisation's state goes through an accessor of this
//!   module (`record_mut`, `user_mut`, `team_mut`, `role_mut`, `table_mut`, `app_mut`,
//!   `settings_mut`, `audit_mut`, `units_mut`, `set_name`, the `children_*`, the
//!   `table_records_*`, `note_columns`, `refresh*`, `rebuild_index`), which logs the location's
//!   before-image first. Entities added after the checkpoint are not logged: the vectors are
//!   truncated back to their lengths at the checkpoint, so the ids a later operation gets are
//!   the ids it gets on a node that never saw the batch.
//! - The log is undone in reverse order, so every location ends with its value at the
//!   checkpoint: logging a location once per epoch (since the last checkpoint or rollback) is an
//!   optimisation, a duplicate entry is harmless.
//! - The record index is not logged: it is a function of the records (and of the unit tree and
//!   the declared columns, whose changes rebuild it). A rollback takes the touched records'
//!   current facts out of it, restores the records, puts their restored facts back and
//!   re-derives inherited access for them and their descendants. An untouched record's chain of
//!   parents up to its first touched ancestor never changed, so its inherited access changed
//!   only if it is such a descendant.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::derive::{AdminSource, Derived, Grant};
use crate::ids::{
    AppId, BusinessUnitId, RecordId, RelationshipId, RoleId, TableId, TeamId, UserId,
};
use crate::model::{App, AuditSettings, Record, Role, Settings, Table, Team, User};
use crate::organization::Organization;
use crate::units::UnitTree;

/// Which map of names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum NameKind {
    Units,
    Users,
    Teams,
    Roles,
    Tables,
    Positions,
    Relationships,
    Records,
    Templates,
    Profiles,
    Apps,
}

/// One before-image.
#[derive(Clone, Debug)]
enum Undo {
    Record(RecordId, Box<Record>),
    User(UserId, Box<User>),
    Team(TeamId, Box<Team>),
    Role(RoleId, Box<Role>),
    Table(TableId, Box<Table>),
    App(AppId, Box<App>),
    Settings(Box<Settings>),
    Audit(Box<AuditSettings>),
    Units(Box<UnitTree>),
    Name(NameKind, String, Option<usize>),
    Children(RecordId, Option<Vec<(RelationshipId, RecordId)>>),
    /// A record id was pushed onto a table's live records.
    TableRecordPushed(TableId),
    /// A record id was removed from a table's live records at this position.
    TableRecordRemoved(TableId, usize, RecordId),
    /// A column name joined a table's seen columns.
    SeenColumn(usize, String),
    Derived(Box<Derived>),
    Grants(UserId, Vec<Grant>, Option<AdminSource>),
    Reports(Vec<Vec<(UserId, u8)>>),
    /// The record index was rebuilt from scratch (declared columns changed).
    IndexRebuilt,
    /// A unit's subtree moved in the record index (`RecordIndex::move_subtree`): undone by
    /// the opposite move.
    SubtreeMoved {
        unit: BusinessUnitId,
        from: Vec<BusinessUnitId>,
        to: Vec<BusinessUnitId>,
    },
    /// The role rules (`rules.rs`), whole: they are few.
    RoleRules(Box<crate::rules::RoleRules>),
    /// The licence catalogue and holders (small: logged whole, once per epoch).
    Licensing(Box<crate::licences::Licensing>),
}

/// The lengths of the organisation's vectors at a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lengths {
    users: usize,
    teams: usize,
    positions: usize,
    tables: usize,
    relationships: usize,
    roles: usize,
    records: usize,
    templates: usize,
    profiles: usize,
    apps: usize,
    table_records: usize,
    seen_columns: usize,
}

#[derive(Clone, Debug)]
struct Level {
    generation: u64,
    position: usize,
    lengths: Lengths,
}

/// What the current epoch already logged.
#[derive(Clone, Debug, Default)]
struct Seen {
    records: HashSet<RecordId>,
    users: HashSet<UserId>,
    teams: HashSet<TeamId>,
    roles: HashSet<RoleId>,
    tables: HashSet<TableId>,
    apps: HashSet<AppId>,
    children: HashSet<RecordId>,
    grants: HashSet<UserId>,
    settings: bool,
    audit: bool,
    units: bool,
    derived: bool,
    reports: bool,
    index_rebuilt: bool,
    role_rules: bool,
    licensing: bool,
}

/// The journal of an organisation: empty (and costing nothing) while no checkpoint is open.
#[derive(Clone, Debug, Default)]
pub(crate) struct Journal {
    levels: Vec<Level>,
    log: Vec<Undo>,
    seen: Seen,
    /// The checkpoint of a try ([`Organization::checkpoint_for_try`]), while it is open: the
    /// column indexes are then left as they are.
    trying: Option<u64>,
}

impl Journal {
    /// The lengths of the innermost open checkpoint, when one is open.
    fn lengths(&self) -> Option<&Lengths> {
        self.levels.last().map(|l| &l.lengths)
    }
}

/// An open checkpoint of an organisation: give it back to [`Organization::rollback`] or
/// [`Organization::commit`].
#[derive(Debug)]
#[must_use = "an open checkpoint journals every change until it is committed or rolled back"]
pub struct Checkpoint {
    generation: u64,
}

/// Tokens are unique in the process, so a token of another organisation is recognised.
static GENERATION: AtomicU64 = AtomicU64::new(1);

macro_rules! entity_mut {
    ($(#[$doc:meta])* $name:ident, $field:ident, $id:ty, $ty:ty, $variant:ident) => {
        $(#[$doc])*
        pub(crate) fn $name(&mut self, id: $id) -> &mut $ty {
            let i = id.index();
            if let Some(lengths) = self.journal.lengths()
                && i < lengths.$field
                && self.journal.seen.$field.insert(id)
            {
                let image = Box::new(self.$field[i].clone());
                self.journal.log.push(Undo::$variant(id, image));
            }
            &mut self.$field[i]
        }
    };
}

impl Organization {
    entity_mut!(
        /// A record, to change in place (its before-image journaled).
        record_mut, records, RecordId, Record, Record
    );
    entity_mut!(
        /// A user, to change in place (its before-image journaled).
        user_mut, users, UserId, User, User
    );
    entity_mut!(
        /// A team, to change in place (its before-image journaled).
        team_mut, teams, TeamId, Team, Team
    );
    entity_mut!(
        /// A role, to change in place (its before-image journaled).
        role_mut, roles, RoleId, Role, Role
    );
    entity_mut!(
        /// A table, to change in place (its before-image journaled).
        table_mut, tables, TableId, Table, Table
    );
    entity_mut!(
        /// An app, to change in place (its before-image journaled).
        app_mut, apps, AppId, App, App
    );

    fn journaling(&self) -> bool {
        !self.journal.levels.is_empty()
    }

    /// The settings, to change (their before-image journaled).
    pub(crate) fn settings_mut(&mut self) -> &mut Settings {
        if self.journaling() && !std::mem::replace(&mut self.journal.seen.settings, true) {
            let image = Box::new(self.settings.clone());
            self.journal.log.push(Undo::Settings(image));
        }
        &mut self.settings
    }

    /// The audit settings, to change (their before-image journaled).
    pub(crate) fn audit_mut(&mut self) -> &mut AuditSettings {
        if self.journaling() && !std::mem::replace(&mut self.journal.seen.audit, true) {
            let image = Box::new(self.audit.clone());
            self.journal.log.push(Undo::Audit(image));
        }
        &mut self.audit
    }

    /// The licence catalogue and holders, to change (their before-image journaled).
    pub(crate) fn licensing_mut(&mut self) -> &mut crate::licences::Licensing {
        if self.journaling() && !std::mem::replace(&mut self.journal.seen.licensing, true) {
            let image = Box::new(self.licensing.clone());
            self.journal.log.push(Undo::Licensing(image));
        }
        &mut self.licensing
    }

    /// The unit tree, to change (its before-image journaled; it is small, and every change
    /// renumbers it whole anyway).
    pub(crate) fn units_mut(&mut self) -> &mut UnitTree {
        if self.journaling() && !std::mem::replace(&mut self.journal.seen.units, true) {
            let image = Box::new(self.units.clone());
            self.journal.log.push(Undo::Units(image));
        }
        &mut self.units
    }

    /// The role rules, to change (their before-image journaled).
    pub(crate) fn role_rules_mut(&mut self) -> &mut crate::rules::RoleRules {
        if self.journaling() && !std::mem::replace(&mut self.journal.seen.role_rules, true) {
            let image = Box::new(self.role_rules.clone());
            self.journal.log.push(Undo::RoleRules(image));
        }
        &mut self.role_rules
    }

    /// Sets (`Some`) or removes (`None`) a name, journaling its before-image.
    pub(crate) fn set_name(&mut self, kind: NameKind, name: &str, id: Option<usize>) {
        if self.journaling() {
            let before = match kind {
                NameKind::Records => self
                    .record_names
                    .get(&self.records, name)
                    .map(|i| i.index()),
                _ => self.names.get(kind, name),
            };
            self.journal
                .log
                .push(Undo::Name(kind, name.to_owned(), before));
        }
        self.set_name_unlogged(kind, name, id);
    }

    fn set_name_unlogged(&mut self, kind: NameKind, name: &str, id: Option<usize>) {
        match kind {
            NameKind::Records => {
                self.record_names
                    .set(&self.records, name, id.map(RecordId::from_index));
            }
            _ => self.names.set(kind, name, id),
        }
    }

    /// A new record's name: its own key.
    pub(crate) fn set_record_name(&mut self, id: RecordId) {
        let key = &self.records[id.index()].key;
        if self.journaling() {
            let before = self.record_names.get(&self.records, key).map(|i| i.index());
            self.journal
                .log
                .push(Undo::Name(NameKind::Records, key.to_string(), before));
        }
        self.record_names.set(&self.records, key, Some(id));
    }

    fn note_children(&mut self, parent: RecordId) {
        if self.journaling() && self.journal.seen.children.insert(parent) {
            let image = self.children.get(&parent).map(<[_]>::to_vec);
            self.journal.log.push(Undo::Children(parent, image));
        }
    }

    /// Adds a child to a parent's list, created when missing.
    pub(crate) fn children_push(&mut self, parent: RecordId, child: (RelationshipId, RecordId)) {
        self.note_children(parent);
        self.children.update(parent, |list| list.push(child));
    }

    /// Keeps the children of a parent's list (when it has one) that `keep` keeps.
    pub(crate) fn children_retain(
        &mut self,
        parent: RecordId,
        keep: impl FnMut(&(RelationshipId, RecordId)) -> bool,
    ) {
        if self.children.contains_key(&parent) {
            self.note_children(parent);
            self.children.update(parent, |list| list.retain(keep));
        }
    }

    /// Forgets a parent's children list.
    pub(crate) fn children_remove(&mut self, parent: RecordId) {
        if self.children.contains_key(&parent) {
            self.note_children(parent);
            self.children.remove(&parent);
        }
    }

    /// Appends a record to its table's live records.
    pub(crate) fn table_records_push(&mut self, table: TableId, record: RecordId) {
        if let Some(lengths) = self.journal.lengths()
            && table.index() < lengths.table_records
        {
            self.journal.log.push(Undo::TableRecordPushed(table));
        }
        self.table_records[table.index()].push(record);
    }

    /// Takes a record out of its table's live records (ids only grow, so they are in order).
    pub(crate) fn table_records_remove(&mut self, table: TableId, record: RecordId) {
        let records = &mut self.table_records[table.index()];
        if let Ok(i) = records.binary_search(&record) {
            records.remove(i);
            if let Some(lengths) = self.journal.lengths()
                && table.index() < lengths.table_records
            {
                self.journal
                    .log
                    .push(Undo::TableRecordRemoved(table, i, record));
            }
        }
    }

    /// Adds a column name to a table's seen columns.
    pub(crate) fn seen_columns_insert(&mut self, table: usize, column: &str) {
        if self.seen_columns.len() <= table {
            self.seen_columns.resize_with(table + 1, Default::default);
        }
        if self.seen_columns[table].insert(column.to_owned())
            && let Some(lengths) = self.journal.lengths()
            && table < lengths.seen_columns
        {
            self.journal
                .log
                .push(Undo::SeenColumn(table, column.to_owned()));
        }
    }

    /// Rebuilds every derived index (grants, hierarchy) from the configured model.
    pub(crate) fn refresh(&mut self) {
        let fresh = Derived::build(self);
        let old = std::mem::replace(&mut self.derived, fresh);
        if self.journaling() && !std::mem::replace(&mut self.journal.seen.derived, true) {
            self.journal.log.push(Undo::Derived(Box::new(old)));
        }
    }

    /// Replaces one user's derived grants.
    pub(crate) fn replace_grants(
        &mut self,
        user: UserId,
        grants: Vec<Grant>,
        admin: Option<AdminSource>,
    ) {
        let i = user.index();
        let old_grants = std::mem::replace(&mut self.derived.grants[i], grants);
        let old_admin = std::mem::replace(&mut self.derived.admin[i], admin);
        if self.journaling() && !self.journal.seen.derived && self.journal.seen.grants.insert(user)
        {
            self.journal
                .log
                .push(Undo::Grants(user, old_grants, old_admin));
        }
    }

    /// Replaces the hierarchy reach.
    pub(crate) fn replace_reports(&mut self, reports: Vec<Vec<(UserId, u8)>>) {
        let old = std::mem::replace(&mut self.derived.reports, reports);
        if self.journaling()
            && !self.journal.seen.derived
            && !std::mem::replace(&mut self.journal.seen.reports, true)
        {
            self.journal.log.push(Undo::Reports(old));
        }
    }

    /// Moves a unit's subtree in the record index (after the unit moved in the tree).
    pub(crate) fn move_index_subtree(
        &mut self,
        unit: BusinessUnitId,
        from: Vec<BusinessUnitId>,
        to: Vec<BusinessUnitId>,
    ) {
        self.index.move_subtree(unit, &from, &to);
        if self.journaling() {
            self.journal.log.push(Undo::SubtreeMoved { unit, from, to });
        }
    }

    /// Rebuilds the record index from the records (after declared columns changed).
    pub(crate) fn rebuild_index(&mut self) {
        let old = std::mem::take(&mut self.index);
        self.index = crate::index::RecordIndex::rebuilt(self, old);
        if self.journaling() && !std::mem::replace(&mut self.journal.seen.index_rebuilt, true) {
            self.journal.log.push(Undo::IndexRebuilt);
        }
    }

    fn lengths(&self) -> Lengths {
        Lengths {
            users: self.users.len(),
            teams: self.teams.len(),
            positions: self.positions.len(),
            tables: self.tables.len(),
            relationships: self.relationships.len(),
            roles: self.roles.len(),
            records: self.records.len(),
            templates: self.templates.len(),
            profiles: self.profiles.len(),
            apps: self.apps.len(),
            table_records: self.table_records.len(),
            seen_columns: self.seen_columns.len(),
        }
    }

    /// Opens a checkpoint: from now on every change journals what it overwrites, until the
    /// checkpoint is committed or rolled back. Checkpoints nest: a rollback or commit closes
    /// its checkpoint and every checkpoint opened after it.
    pub fn checkpoint(&mut self) -> Checkpoint {
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
        let level = Level {
            generation,
            position: self.journal.log.len(),
            lengths: self.lengths(),
        };
        self.journal.levels.push(level);
        self.journal.seen = Seen::default();
        Checkpoint { generation }
    }

    /// Opens a checkpoint for a try that is to be rolled back (the group commit's try of a
    /// group, D149): until it is closed, changes leave the lists' column indexes (the records
    /// in each declared column's order) as they are — no change reads them, and the rollback
    /// would only take out again what the try put in. Rolled back, the organisation is exactly
    /// as before; committed instead, the column indexes are rebuilt (correct, and slow).
    pub fn checkpoint_for_try(&mut self) -> Checkpoint {
        let checkpoint = self.checkpoint();
        if self.journal.trying.is_none() {
            self.journal.trying = Some(checkpoint.generation);
        }
        checkpoint
    }

    /// Whether changes keep the column indexes in step (no try is open).
    pub(crate) fn indexing_columns(&self) -> bool {
        self.journal.trying.is_none()
    }

    /// Whether closing `checkpoint` (an open one) closes the try: checkpoints close with every
    /// one opened after them, and generations grow with each checkpoint opened.
    fn closes_try(&self, checkpoint: &Checkpoint) -> bool {
        self.journal
            .trying
            .is_some_and(|trying| trying >= checkpoint.generation)
    }

    /// Whether a checkpoint is open.
    #[must_use]
    pub fn checkpoint_open(&self) -> bool {
        self.journaling()
    }

    /// Entries in the journal (for tests and measurements).
    #[doc(hidden)]
    #[must_use]
    pub fn journal_len(&self) -> usize {
        self.journal.log.len()
    }

    fn close(&mut self, checkpoint: &Checkpoint) -> Result<Level, crate::ModelError> {
        let k = self
            .journal
            .levels
            .iter()
            .position(|l| l.generation == checkpoint.generation)
            .ok_or_else(|| {
                crate::ModelError::Other(
                    "this checkpoint is not open in this organisation".to_owned(),
                )
            })?;
        let level = self.journal.levels[k].clone();
        self.journal.levels.truncate(k);
        Ok(level)
    }

    /// Keeps every change since the checkpoint and closes it (and any checkpoint opened after
    /// it). With no checkpoint left open, the journal is emptied.
    pub fn commit(&mut self, checkpoint: Checkpoint) -> Result<(), crate::ModelError> {
        let closes_try = self.closes_try(&checkpoint);
        self.close(&checkpoint)?;
        if self.journal.levels.is_empty() {
            self.journal = Journal::default();
        }
        if closes_try {
            // A try kept: its column indexes were left behind.
            self.journal.trying = None;
            self.index = crate::index::RecordIndex::build(self);
        }
        Ok(())
    }

    /// Restores the organisation exactly to its state at the checkpoint and closes it (and
    /// any checkpoint opened after it). Costs about what the changes since the checkpoint
    /// cost, whatever the organisation's size.
    pub fn rollback(&mut self, checkpoint: Checkpoint) -> Result<(), crate::ModelError> {
        let closes_try = self.closes_try(&checkpoint);
        let level = self.close(&checkpoint)?;
        let entries = self.journal.log.split_off(level.position);
        self.journal.seen = Seen::default();
        // The try stays open through its own rollback: its column indexes stay untouched.
        let result = self.roll_back(level, entries);
        if closes_try {
            self.journal.trying = None;
        }
        if self.journal.levels.is_empty() {
            self.journal = Journal::default();
        }
        result
    }

    fn roll_back(&mut self, level: Level, entries: Vec<Undo>) -> Result<(), crate::ModelError> {
        let lengths = level.lengths;
        let rebuilt = entries.iter().any(|e| matches!(e, Undo::IndexRebuilt));
        // The records whose index entries change: those changed in place, and the new ones.
        let mut touched: Vec<RecordId> = entries
            .iter()
            .filter_map(|e| match e {
                Undo::Record(id, _) => Some(*id),
                _ => None,
            })
            .chain((lengths.records..self.records.len()).map(RecordId::from_index))
            .collect();
        touched.sort_unstable();
        touched.dedup();
        let mut index = std::mem::take(&mut self.index);
        if !rebuilt {
            for r in &touched {
                index.set(self, *r, false);
                index.forget_inherited(self, *r);
            }
        }
        for entry in entries.into_iter().rev() {
            match entry {
                // The index is out of `self` meanwhile: the opposite move, on it.
                Undo::SubtreeMoved { unit, from, to } => {
                    if !rebuilt {
                        index.move_subtree(unit, &to, &from);
                    }
                }
                entry => self.undo(entry),
            }
        }
        self.users.truncate(lengths.users);
        self.teams.truncate(lengths.teams);
        self.positions.truncate(lengths.positions);
        self.tables.truncate(lengths.tables);
        self.relationships.truncate(lengths.relationships);
        self.roles.truncate(lengths.roles);
        self.records.truncate(lengths.records);
        self.templates.truncate(lengths.templates);
        self.profiles.truncate(lengths.profiles);
        self.apps.truncate(lengths.apps);
        self.table_records.truncate(lengths.table_records);
        self.seen_columns.truncate(lengths.seen_columns);
        if rebuilt {
            self.index = crate::index::RecordIndex::rebuilt(self, index);
            return Ok(());
        }
        touched.retain(|r| r.index() < lengths.records);
        for r in &touched {
            index.set(self, *r, true);
        }
        let mut pending = touched;
        let mut done = HashSet::new();
        while let Some(r) = pending.pop() {
            if done.insert(r) {
                index.refresh_inherited(self, r);
                pending.extend(self.children(r).iter().map(|(_, child)| *child));
            }
        }
        self.index = index;
        Ok(())
    }

    /// The parts of the state in which two organisations differ (for tests of the journal):
    /// the canonical dump, the names, the seen columns, the derived indexes and the record
    /// index (compared as [`Organization::record_index_is_current`] compares).
    #[doc(hidden)]
    #[must_use]
    pub fn differences(&self, other: &Organization) -> Vec<&'static str> {
        fn sorted<K: std::borrow::Borrow<str>, I: Ord + Copy>(
            map: &std::collections::HashMap<K, I>,
        ) -> Vec<(&str, I)> {
            let mut v: Vec<_> = map.iter().map(|(k, i)| (k.borrow(), *i)).collect();
            v.sort_unstable();
            v
        }
        fn record_names(o: &Organization) -> Vec<(&str, RecordId)> {
            let mut v: Vec<_> = o.record_names.iter(&o.records).collect();
            v.sort_unstable();
            v
        }
        let (a, b) = (&self.names, &other.names);
        let mut out = Vec::new();
        if self.canonical_dump() != other.canonical_dump() {
            out.push("canonical dump");
        }
        let names_equal = sorted(&a.units) == sorted(&b.units)
            && sorted(&a.users) == sorted(&b.users)
            && sorted(&a.teams) == sorted(&b.teams)
            && sorted(&a.roles) == sorted(&b.roles)
            && sorted(&a.tables) == sorted(&b.tables)
            && sorted(&a.positions) == sorted(&b.positions)
            && sorted(&a.relationships) == sorted(&b.relationships)
            && record_names(self) == record_names(other)
            && sorted(&a.templates) == sorted(&b.templates)
            && sorted(&a.profiles) == sorted(&b.profiles)
            && sorted(&a.apps) == sorted(&b.apps);
        if !names_equal {
            out.push("names");
        }
        if self.seen_columns != other.seen_columns {
            out.push("seen columns");
        }
        if self.derived != other.derived {
            out.push("derived indexes");
        }
        if !self.index.same_as(&other.index) {
            out.push("record index");
        }
        out
    }

    fn undo(&mut self, entry: Undo) {
        match entry {
            Undo::Record(id, image) => self.records[id.index()] = *image,
            Undo::User(id, image) => self.users[id.index()] = *image,
            Undo::Team(id, image) => self.teams[id.index()] = *image,
            Undo::Role(id, image) => self.roles[id.index()] = *image,
            Undo::Table(id, image) => self.tables[id.index()] = *image,
            Undo::App(id, image) => self.apps[id.index()] = *image,
            Undo::Settings(image) => self.settings = *image,
            Undo::Audit(image) => self.audit = *image,
            Undo::Licensing(image) => self.licensing = *image,
            Undo::Units(image) => self.units = *image,
            Undo::Name(kind, name, id) => self.set_name_unlogged(kind, &name, id),
            Undo::Children(parent, image) => match image {
                Some(list) => {
                    self.children.insert(parent, list);
                }
                None => {
                    self.children.remove(&parent);
                }
            },
            Undo::TableRecordPushed(table) => {
                self.table_records[table.index()].pop();
            }
            Undo::TableRecordRemoved(table, i, record) => {
                self.table_records[table.index()].insert(i, record);
            }
            Undo::SeenColumn(table, column) => {
                self.seen_columns[table].remove(&column);
            }
            Undo::Derived(image) => self.derived = *image,
            Undo::Grants(user, grants, admin) => {
                self.derived.grants[user.index()] = grants;
                self.derived.admin[user.index()] = admin;
            }
            Undo::Reports(image) => self.derived.reports = image,
            Undo::IndexRebuilt | Undo::SubtreeMoved { .. } => {}
            Undo::RoleRules(image) => self.role_rules = *image,
        }
    }
}

/// What a batch changed since a checkpoint, as the journal's before-images tell it (for the
/// access difference of a dry run, `difference.rs`): for each location, its value at the
/// checkpoint (the first image logged after it).
#[derive(Debug, Default)]
pub(crate) struct SinceCheckpoint {
    /// Users at the checkpoint.
    pub(crate) users: usize,
    /// Records at the checkpoint.
    pub(crate) records: usize,
    /// Per user whose grants may have changed: grants and System Administrator status then.
    pub(crate) grants: std::collections::HashMap<UserId, (Vec<Grant>, Option<AdminSource>)>,
    /// Per user changed in place: enabled and teams then.
    pub(crate) users_then: std::collections::HashMap<UserId, (bool, Vec<crate::ids::TeamId>)>,
    /// Hierarchy reach then, when it may have changed.
    pub(crate) reports: Option<Vec<Vec<(UserId, u8)>>>,
    /// The tables hierarchy security applied to then, when they may have changed.
    pub(crate) hierarchy_tables: Option<Vec<bool>>,
    /// Records changed in place.
    pub(crate) records_touched: Vec<RecordId>,
    /// The record index was rebuilt (declared columns changed).
    pub(crate) index_rebuilt: bool,
    /// A business unit moved: Parent:Child reach changed for anyone.
    pub(crate) unit_moved: bool,
}

impl Organization {
    /// What changed since `checkpoint` (still open), from the journal's before-images.
    pub(crate) fn since_checkpoint(&self, checkpoint: &Checkpoint) -> Option<SinceCheckpoint> {
        let level = self
            .journal
            .levels
            .iter()
            .find(|l| l.generation == checkpoint.generation)?;
        let mut out = SinceCheckpoint {
            users: level.lengths.users,
            records: level.lengths.records,
            ..SinceCheckpoint::default()
        };
        let users = level.lengths.users;
        // Nested checkpoints may log a location again: the first image is the checkpoint's.
        for entry in self.journal.log.iter().skip(level.position) {
            match entry {
                Undo::Record(id, _) => out.records_touched.push(*id),
                Undo::User(id, image) => {
                    out.users_then
                        .entry(*id)
                        .or_insert_with(|| (image.enabled, image.teams.clone()));
                }
                Undo::Grants(id, grants, admin) => {
                    out.grants
                        .entry(*id)
                        .or_insert_with(|| (grants.clone(), *admin));
                }
                Undo::Reports(image) => {
                    out.reports.get_or_insert_with(|| image.clone());
                }
                Undo::Derived(image) => {
                    for (i, (grants, admin)) in image
                        .grants
                        .iter()
                        .zip(&image.admin)
                        .enumerate()
                        .take(users)
                    {
                        out.grants
                            .entry(UserId::from_index(i))
                            .or_insert_with(|| (grants.clone(), *admin));
                    }
                    out.reports.get_or_insert_with(|| image.reports.clone());
                    out.hierarchy_tables
                        .get_or_insert_with(|| image.hierarchy_tables.clone());
                }
                Undo::IndexRebuilt => out.index_rebuilt = true,
                Undo::SubtreeMoved { .. } => out.unit_moved = true,
                _ => {}
            }
        }
        out.records_touched.sort_unstable();
        out.records_touched.dedup();
        Some(out)
    }
}
