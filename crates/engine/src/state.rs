//! The organisation as plain parts: what a checkpoint (a snapshot of the state at a revision)
//! stores, and the way back. Pure: no encoding here (the application layer writes the bytes);
//! the derived indexes and the record index are not parts, they are rebuilt in bulk by
//! [`Organization::from_state`], as a setup session's end rebuilds them.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::error::ModelError;
use crate::ids::{BusinessUnitId, Owner, Principal, RecordId, RelationshipId, UserId};
use crate::journal::NameKind;
use crate::licences::{Licence, Licensing};
use crate::model::{
    App, AuditSettings, Position, Profile, Relationship, Role, Settings, Table, Team, Template,
    User,
};
use crate::organization::{Names, Organization};
use crate::records::Records;
use crate::rules::{RoleRule, RoleRules};
use crate::units::UnitTree;

/// One business unit as the tree holds it (its Euler-tour numbers included, so that the
/// restored tree is the one that was saved, children in the same order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitNode {
    /// Name.
    pub name: String,
    /// Parent (`None` for the root).
    pub parent: Option<BusinessUnitId>,
    /// Children, in the tree's order.
    pub children: Vec<BusinessUnitId>,
    /// Euler-tour entry number.
    pub enter: u32,
    /// Euler-tour exit number.
    pub exit: u32,
    /// Depth below the root.
    pub level: u32,
}

/// The maps of names to ids that a state stores (records' keys are not stored: they are the
/// live records' keys). The code is the map's number in a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameMap {
    /// Business units.
    Units = 0,
    /// Users.
    Users = 1,
    /// Teams.
    Teams = 2,
    /// Roles.
    Roles = 3,
    /// Tables.
    Tables = 4,
    /// Positions.
    Positions = 5,
    /// Relationships.
    Relationships = 6,
    /// Access team templates.
    Templates = 7,
    /// Field security profiles.
    Profiles = 8,
    /// Apps.
    Apps = 9,
}

impl NameMap {
    /// Every map, in code order.
    pub const ALL: [NameMap; 10] = [
        NameMap::Units,
        NameMap::Users,
        NameMap::Teams,
        NameMap::Roles,
        NameMap::Tables,
        NameMap::Positions,
        NameMap::Relationships,
        NameMap::Templates,
        NameMap::Profiles,
        NameMap::Apps,
    ];

    /// The map of this code.
    #[must_use]
    pub fn from_code(code: u8) -> Option<NameMap> {
        NameMap::ALL.get(usize::from(code)).copied()
    }

    fn kind(self) -> NameKind {
        match self {
            NameMap::Units => NameKind::Units,
            NameMap::Users => NameKind::Users,
            NameMap::Teams => NameKind::Teams,
            NameMap::Roles => NameKind::Roles,
            NameMap::Tables => NameKind::Tables,
            NameMap::Positions => NameKind::Positions,
            NameMap::Relationships => NameKind::Relationships,
            NameMap::Templates => NameKind::Templates,
            NameMap::Profiles => NameKind::Profiles,
            NameMap::Apps => NameKind::Apps,
        }
    }
}

/// An organisation's state as owned parts: everything [`Organization::canonical_dump`] shows,
/// the names, and what records have held (`seen_columns`) — not the derived indexes.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Settings.
    pub settings: Settings,
    /// Audit switches.
    pub audit: AuditSettings,
    /// The business unit tree, by id.
    pub units: Vec<UnitNode>,
    /// Users, by id.
    pub users: Vec<User>,
    /// Teams, by id.
    pub teams: Vec<Team>,
    /// Positions, by id.
    pub positions: Vec<Position>,
    /// Tables, by id.
    pub tables: Vec<Table>,
    /// Relationships, by id.
    pub relationships: Vec<Relationship>,
    /// Roles, by id (deleted ones are tombstones).
    pub roles: Vec<Role>,
    /// Records, by id (deleted ones stay, not alive).
    pub records: Records,
    /// Access team templates, by id.
    pub templates: Vec<Template>,
    /// Field security profiles, by id.
    pub profiles: Vec<Profile>,
    /// Apps, by id.
    pub apps: Vec<App>,
    /// Names → ids, every map but records', sorted.
    pub names: Vec<(NameMap, String, u32)>,
    /// Live records of each table, in creation order.
    pub table_records: Vec<Vec<RecordId>>,
    /// Children of each parent record, by parent.
    pub children: Vec<(RecordId, Vec<(RelationshipId, RecordId)>)>,
    /// Per table, every column name a record has had.
    pub seen_columns: Vec<BTreeSet<String>>,
    /// Role rules, in the order they were added.
    pub role_rules: Vec<RoleRule>,
    /// The licence catalogue.
    pub licences: Vec<Licence>,
    /// Per user, the licences held (indices into `licences`).
    pub licence_holders: Vec<(UserId, Vec<usize>)>,
}

/// The same parts borrowed from an organisation, to encode without copying the records.
#[derive(Debug)]
pub struct StateRef<'a> {
    /// Settings.
    pub settings: &'a Settings,
    /// Audit switches.
    pub audit: &'a AuditSettings,
    /// The business unit tree, by id.
    pub units: Vec<UnitNode>,
    /// Users.
    pub users: &'a [User],
    /// Teams.
    pub teams: &'a [Team],
    /// Positions.
    pub positions: &'a [Position],
    /// Tables.
    pub tables: &'a [Table],
    /// Relationships.
    pub relationships: &'a [Relationship],
    /// Roles.
    pub roles: &'a [Role],
    /// Records.
    pub records: &'a Records,
    /// Templates.
    pub templates: &'a [Template],
    /// Profiles.
    pub profiles: &'a [Profile],
    /// Apps.
    pub apps: &'a [App],
    /// Names → ids, every map but records', sorted.
    pub names: Vec<(NameMap, &'a str, u32)>,
    /// Live records of each table.
    pub table_records: &'a [Vec<RecordId>],
    /// Children of each parent record, sorted by parent.
    pub children: Vec<(RecordId, &'a [(RelationshipId, RecordId)])>,
    /// Per table, every column name a record has had.
    pub seen_columns: &'a [BTreeSet<String>],
    /// Role rules.
    pub role_rules: &'a [RoleRule],
    /// The licence catalogue.
    pub licences: &'a [Licence],
    /// Per user, the licences held.
    pub licence_holders: Vec<(UserId, &'a [usize])>,
}

fn bad(detail: impl Into<String>) -> ModelError {
    ModelError::BadState(detail.into())
}

impl Organization {
    /// The state's parts, borrowed (for a checkpoint). Not during an open undo checkpoint:
    /// the caller holds the organisation between writes.
    #[must_use]
    pub fn state_ref(&self) -> StateRef<'_> {
        let n = &self.names;
        let mut names = Vec::new();
        fn push<'a, I: Copy>(
            out: &mut Vec<(NameMap, &'a str, u32)>,
            map: NameMap,
            names: &'a HashMap<String, I>,
            index: impl Fn(I) -> usize,
        ) {
            for (name, id) in names {
                out.push((map, name.as_str(), index(*id) as u32));
            }
        }
        push(&mut names, NameMap::Units, &n.units, |i| i.index());
        push(&mut names, NameMap::Users, &n.users, |i| i.index());
        push(&mut names, NameMap::Teams, &n.teams, |i| i.index());
        push(&mut names, NameMap::Roles, &n.roles, |i| i.index());
        push(&mut names, NameMap::Tables, &n.tables, |i| i.index());
        push(&mut names, NameMap::Positions, &n.positions, |i| i.index());
        push(&mut names, NameMap::Relationships, &n.relationships, |i| {
            i.index()
        });
        push(&mut names, NameMap::Templates, &n.templates, |i| i.index());
        push(&mut names, NameMap::Profiles, &n.profiles, |i| i.index());
        push(&mut names, NameMap::Apps, &n.apps, |i| i.index());
        names.sort_by(|a, b| (a.0 as u8, a.1).cmp(&(b.0 as u8, b.1)));
        let mut children: Vec<_> = self.children.iter().map(|(p, v)| (*p, v)).collect();
        children.sort_by_key(|(p, _)| *p);
        StateRef {
            settings: &self.settings,
            audit: &self.audit,
            units: self.units.nodes(),
            users: &self.users,
            teams: &self.teams,
            positions: &self.positions,
            tables: &self.tables,
            relationships: &self.relationships,
            roles: &self.roles,
            records: &self.records,
            templates: &self.templates,
            profiles: &self.profiles,
            apps: &self.apps,
            names,
            table_records: &self.table_records,
            children,
            seen_columns: &self.seen_columns,
            role_rules: self.role_rules.rules(),
            licences: &self.licensing.licences,
            licence_holders: self
                .licensing
                .holders
                .iter()
                .map(|(u, l)| (*u, l.as_slice()))
                .collect(),
        }
    }

    /// An organisation from its parts, the derived indexes and the record index rebuilt in bulk.
    /// Every id the parts hold is checked against the entities it names
    /// ([`ModelError::BadState`] otherwise), so that no later lookup can go out of range.
    pub fn from_state(state: State) -> Result<Organization, ModelError> {
        Self::from_state_with_index(state, None)
    }

    /// An organisation from its parts, the derived indexes rebuilt and the record index taken
    /// from its parts when they are given (a checkpoint that holds it, D120) — checked against
    /// the records as far as that is cheap, [`ModelError::BadState`] otherwise — or rebuilt in
    /// bulk when not.
    pub fn from_state_with_index(
        state: State,
        index: Option<Vec<crate::index::TableIndexParts>>,
    ) -> Result<Organization, ModelError> {
        let (mut org, index) = Self::assemble(state, index)?;
        org.index = index?;
        Ok(org)
    }

    /// As [`Organization::from_state_with_index`], except that a record index that does not fit
    /// the records is not a refusal: it is set aside and the index rebuilt from the records,
    /// which were checked and are what the index is derived from. The problem is returned
    /// beside the organisation, to be reported (D137: the state is the checkpoint's truth; a
    /// stored index is a shortcut, and a wrong shortcut costs a rebuild, not the checkpoint).
    pub fn from_state_repairing_index(
        state: State,
        index: Option<Vec<crate::index::TableIndexParts>>,
    ) -> Result<(Organization, Option<ModelError>), ModelError> {
        let (mut org, index) = Self::assemble(state, index)?;
        let mut problem = None;
        match index {
            Ok(index) => org.index = index,
            Err(e) => {
                problem = Some(e);
                org.rebuild_index();
            }
        }
        Ok((org, problem))
    }

    /// The organisation of `state` with its derived indexes, and its record index: from
    /// `index` when given (or why not), else rebuilt. The record-name table is built on a
    /// second core meanwhile (the two read the records only): at ten million records each
    /// takes about a second.
    fn assemble(
        state: State,
        index: Option<Vec<crate::index::TableIndexParts>>,
    ) -> Result<(Organization, Result<crate::index::RecordIndex, ModelError>), ModelError> {
        check_state(&state)?;
        let mut org = Organization::new();
        org.settings = state.settings;
        org.audit = state.audit;
        org.units = UnitTree::from_nodes(state.units);
        org.users = state.users;
        org.teams = state.teams;
        org.positions = state.positions;
        org.tables = state.tables;
        org.relationships = state.relationships;
        org.roles = state.roles;
        org.records = state.records;
        org.templates = state.templates;
        org.profiles = state.profiles;
        org.apps = state.apps;
        let mut names = Names::default();
        for (map, name, id) in state.names {
            names.set(map.kind(), &name, Some(id as usize));
        }
        org.names = names;
        // Share the records' column names from here on (a decoder hands out one shared copy
        // per name: the copies are told apart by address, the strings compared once each).
        // (Addresses kept sorted: a few comparisons a field, for any number of names.)
        let mut known: Vec<usize> = Vec::new();
        for r in &org.records {
            for (c, _) in &r.fields {
                if let Err(at) = known.binary_search(&c.address()) {
                    known.insert(at, c.address());
                    if !org.column_names.contains(&**c) {
                        org.column_names.insert(c.clone());
                    }
                }
            }
        }
        org.table_records = state.table_records;
        let mut children = crate::listmap::ListMap::default();
        children.reserve_one(state.children.len());
        // A checkpoint lists the parents in order, each once (`state_ref` sorts them): nothing
        // to replace. Parents out of order or twice (bytes not from our encoder) take the
        // replacing insert, so that a parent never has lists in both of the map's tables.
        let in_order = state.children.windows(2).all(|w| w[0].0 < w[1].0);
        for (parent, list) in state.children {
            if in_order {
                children.put_new(parent, list);
            } else {
                children.insert(parent, list);
            }
        }
        org.children = children;
        org.seen_columns = state.seen_columns;
        org.role_rules = RoleRules::from_rules(state.role_rules);
        org.licensing = Licensing {
            licences: state.licences,
            holders: state
                .licence_holders
                .into_iter()
                .collect::<BTreeMap<_, _>>(),
        };
        org.refresh();
        let (names, index) = std::thread::scope(|s| {
            let records = &org.records;
            let names = s.spawn(|| {
                let mut names = crate::organization::RecordNames::default();
                names.reserve(records.len());
                for (i, r) in records.iter().enumerate() {
                    if r.alive {
                        names.set(records, &r.key, Some(RecordId::from_index(i)));
                    }
                }
                names
            });
            let index = match index {
                Some(parts) => crate::index::RecordIndex::from_parts(&org, parts),
                None => Ok(crate::index::RecordIndex::build(&org)),
            };
            let names = names
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (names, index)
        });
        org.record_names = names;
        Ok((org, index))
    }
}

fn check_state(s: &State) -> Result<(), ModelError> {
    let (units, users, teams, tables, records) = (
        s.units.len(),
        s.users.len(),
        s.teams.len(),
        s.tables.len(),
        s.records.len(),
    );
    let (roles, rels, positions, templates) = (
        s.roles.len(),
        s.relationships.len(),
        s.positions.len(),
        s.templates.len(),
    );
    let within = |what: &str, i: usize, n: usize| {
        if i < n {
            Ok(())
        } else {
            Err(bad(format!("{what} {i} of {n}")))
        }
    };
    let principal = |p: Principal| match p {
        Principal::User(u) => within("user", u.index(), users),
        Principal::Team(t) => within("team", t.index(), teams),
        Principal::Organization => Ok(()),
    };
    if units == 0 {
        return Err(bad("no business unit"));
    }
    for u in &s.units {
        if let Some(p) = u.parent {
            within("unit", p.index(), units)?;
        }
        for c in &u.children {
            within("unit", c.index(), units)?;
        }
    }
    if s.table_records.len() != tables || s.seen_columns.len() > tables {
        return Err(bad("per-table lists do not match the tables"));
    }
    for u in &s.users {
        within("unit", u.business_unit.index(), units)?;
        within("record", u.record.index(), records)?;
        for a in &u.roles {
            within("role", a.role.index(), roles)?;
            if let Some(b) = a.business_unit {
                within("unit", b.index(), units)?;
            }
        }
        if let Some(m) = u.manager {
            within("user", m.index(), users)?;
        }
        if let Some(p) = u.position {
            within("position", p.index(), positions)?;
        }
        for t in &u.teams {
            within("team", t.index(), teams)?;
        }
    }
    for t in &s.teams {
        within("unit", t.business_unit.index(), units)?;
        for m in &t.members {
            within("user", m.index(), users)?;
        }
        for r in &t.roles {
            within("role", r.index(), roles)?;
        }
        if let Some((r, tp)) = t.record_team {
            within("record", r.index(), records)?;
            within("template", tp.index(), templates)?;
        }
    }
    for p in &s.positions {
        if let Some(q) = p.parent {
            within("position", q.index(), positions)?;
        }
    }
    for r in &s.relationships {
        within("table", r.parent.index(), tables)?;
        within("table", r.child.index(), tables)?;
    }
    for r in &s.roles {
        within("unit", r.business_unit.index(), units)?;
        for t in r.privileges.keys() {
            within("table", t.index(), tables)?;
        }
        if let Some(d) = &r.deprecation {
            for x in &d.successors {
                within("role", x.index(), roles)?;
            }
        }
    }
    for r in &s.records {
        within("table", r.table.index(), tables)?;
        within("unit", r.business_unit.index(), units)?;
        match r.owner {
            Owner::User(u) => within("user", u.index(), users)?,
            Owner::Team(t) => within("team", t.index(), teams)?,
            Owner::None => {}
        }
        for u in [r.stamps.creator(), r.stamps.modifier()]
            .into_iter()
            .flatten()
        {
            within("user", u.index(), users)?;
        }
        for (rel, rec) in &r.lookups {
            within("relationship", rel.index(), rels)?;
            within("record", rec.index(), records)?;
        }
        for sh in &r.shares {
            principal(sh.principal)?;
        }
        for fs in &r.field_shares {
            principal(fs.principal)?;
        }
        for (tp, t) in &r.access_teams {
            within("template", tp.index(), templates)?;
            within("team", t.index(), teams)?;
        }
    }
    for t in &s.templates {
        within("table", t.table.index(), tables)?;
    }
    for p in &s.profiles {
        for m in &p.members {
            principal(*m)?;
        }
        for c in &p.permissions {
            within("table", c.table.index(), tables)?;
        }
    }
    for a in &s.apps {
        for r in &a.roles {
            within("role", r.index(), roles)?;
        }
        for n in &a.needs {
            within("table", n.table.index(), tables)?;
        }
    }
    for (map, _, id) in &s.names {
        let n = match map {
            NameMap::Units => units,
            NameMap::Users => users,
            NameMap::Teams => teams,
            NameMap::Roles => roles,
            NameMap::Tables => tables,
            NameMap::Positions => positions,
            NameMap::Relationships => rels,
            NameMap::Templates => templates,
            NameMap::Profiles => s.profiles.len(),
            NameMap::Apps => s.apps.len(),
        };
        within("name", *id as usize, n)?;
    }
    for list in &s.table_records {
        for r in list {
            within("record", r.index(), records)?;
        }
    }
    for (p, list) in &s.children {
        within("record", p.index(), records)?;
        for (rel, c) in list {
            within("relationship", rel.index(), rels)?;
            within("record", c.index(), records)?;
        }
    }
    for rule in &s.role_rules {
        for r in rule.roles() {
            within("role", r.index(), roles)?;
        }
    }
    // Parent links never loop (the engine walks them up).
    acyclic("business unit", units, |i| {
        s.units[i].parent.map(|p| p.index()).into_iter().collect()
    })?;
    acyclic("position", positions, |i| {
        s.positions[i]
            .parent
            .map(|p| p.index())
            .into_iter()
            .collect()
    })?;
    acyclic("manager", users, |i| {
        s.users[i].manager.map(|p| p.index()).into_iter().collect()
    })?;
    if s.records.iter().any(|r| !r.lookups.is_empty()) {
        acyclic("record lookup", records, |i| {
            s.records[i]
                .lookups
                .iter()
                .map(|(_, p)| p.index())
                .collect()
        })?;
    }
    for (u, held) in &s.licence_holders {
        within("user", u.index(), users)?;
        for l in held {
            within("licence", *l, s.licences.len())?;
        }
    }
    for l in &s.licences {
        for t in l.ceilings.keys() {
            within("table", t.index(), tables)?;
        }
        for a in &l.apps {
            within("app", a.index(), s.apps.len())?;
        }
    }
    Ok(())
}

/// Whether following `edges` from any of `n` nodes (all in range) never comes back: an
/// iterative depth-first search with three colours.
fn acyclic(what: &str, n: usize, edges: impl Fn(usize) -> Vec<usize>) -> Result<(), ModelError> {
    // 0 = not seen, 1 = on the current path, 2 = done.
    let mut colour = vec![0u8; n];
    for start in 0..n {
        if colour[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, edges(start), 0usize)];
        colour[start] = 1;
        while let Some((node, next, at)) = stack.last_mut() {
            if let Some(&e) = next.get(*at) {
                *at += 1;
                match colour[e] {
                    0 => {
                        colour[e] = 1;
                        let more = edges(e);
                        stack.push((e, more, 0));
                    }
                    1 => return Err(bad(format!("a cycle of {what} links at {e}"))),
                    _ => {}
                }
            } else {
                colour[*node] = 2;
                stack.pop();
            }
        }
    }
    Ok(())
}
