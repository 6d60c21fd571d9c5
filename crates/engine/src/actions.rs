//! Authorized actions. Each one validates, then authorizes against the current state, then
//! applies every change at once: a refused action changes nothing. Each returns the changes
//! it made, for the store's changelog and audit.

use crate::check::Target;
use crate::error::{ActionError, ModelError};
use crate::ids::{
    BusinessUnitId, Owner, Principal, RecordId, RelationshipId, RoleId, TableId, TeamId,
    TemplateId, UserId,
};
use crate::journal::NameKind;
use crate::model::{CascadeType, DeleteBehavior, Ownership, RecordState, RoleAssignment, Value};
use crate::organization::{NewRecord, Organization, ROLE, SYSTEMUSER, TEAM};
use crate::privilege::{AccessMask, Depth, Privilege};

/// Who performs an action.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Actor {
    /// The system itself: no authorization check (scenario `as: system`).
    System,
    /// A user, whose privileges are checked.
    User(UserId),
    /// `impersonator` acts on behalf of `user` (D7): it needs `prvActOnBehalfOfAnotherUser`,
    /// and every check must pass for both users (the intersection of their privileges).
    OnBehalf {
        /// The user the action runs as.
        user: UserId,
        /// The user who calls.
        impersonator: UserId,
    },
}

/// The miscellaneous privilege that impersonation needs (D7).
pub const ACT_ON_BEHALF: &str = "prvActOnBehalfOfAnotherUser";

/// The identity attributes of a user: the `systemuser` columns that map a token, a directory
/// entry or an application to a user (Dataverse's Entra object id, domain name, Windows Live
/// id and application id). D29: only System Administrators and the system (the root key) set
/// them, whatever column security says; anyone else is refused with `denied`.
pub const IDENTITY_COLUMNS: [&str; 4] = [
    "azureactivedirectoryobjectid",
    "domainname",
    "windowsliveid",
    "applicationid",
];

/// The user an action runs as, and the impersonator whose privileges also bound it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Acting {
    user: UserId,
    impersonator: Option<UserId>,
}

impl Acting {
    /// The users whose checks must all pass: the user, then the impersonator.
    fn each(self) -> impl Iterator<Item = UserId> {
        std::iter::once(self.user).chain(self.impersonator)
    }
}

/// One change an action made.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// A record was created.
    RecordCreated { record: RecordId },
    /// Columns changed: (column, old, new), changed values only.
    RecordUpdated {
        record: RecordId,
        columns: Vec<(String, Value, Value)>,
    },
    /// A record was deleted.
    RecordDeleted { record: RecordId },
    /// A record changed owner (and maybe unit).
    OwnerChanged {
        record: RecordId,
        old: Owner,
        new: Owner,
        old_unit: BusinessUnitId,
        new_unit: BusinessUnitId,
    },
    /// A record moved to another unit without changing owner.
    RecordMoved {
        record: RecordId,
        old_unit: BusinessUnitId,
        new_unit: BusinessUnitId,
    },
    /// An explicit share changed (`new` empty = revoked).
    ShareChanged {
        record: RecordId,
        principal: Principal,
        old: AccessMask,
        new: AccessMask,
    },
    /// A lookup changed (associate, disassociate, delete's remove-link).
    LookupChanged {
        record: RecordId,
        relationship: RelationshipId,
        old: Option<RecordId>,
        new: Option<RecordId>,
    },
    /// A role was assigned.
    RoleAssigned { principal: Principal, role: RoleId },
    /// A role was removed.
    RoleRemoved { principal: Principal, role: RoleId },
    /// A user joined a team.
    TeamMemberAdded { team: TeamId, user: UserId },
    /// A user left a team.
    TeamMemberRemoved { team: TeamId, user: UserId },
    /// A user moved to another unit (D13).
    UserMoved {
        user: UserId,
        old_unit: BusinessUnitId,
        new_unit: BusinessUnitId,
    },
    /// A user's manager changed.
    ManagerChanged {
        user: UserId,
        old: Option<UserId>,
        new: Option<UserId>,
    },
}

/// A record to create through [`Organization::create_record`].
#[derive(Clone, Debug)]
pub struct CreateRecord {
    /// External key.
    pub key: String,
    /// Table.
    pub table: TableId,
    /// Owner; `None` = the acting user (user-or-team tables).
    pub owner: Option<Owner>,
    /// Owning unit; only with ownership across units may it differ from the owner's.
    pub business_unit: Option<BusinessUnitId>,
    /// State.
    pub state: RecordState,
    /// Lookups set at creation (a reparent): lookup column → parent record.
    pub lookups: Vec<(String, RecordId)>,
    /// Column values.
    pub fields: Vec<(String, Value)>,
}

/// How a share request combines with the existing share.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ShareMode {
    /// `GrantAccess`: adds rights.
    Grant,
    /// `ModifyAccess`: replaces rights.
    Modify,
}

type Outcome = Result<Vec<Change>, ActionError>;

fn invalid(e: ModelError) -> ActionError {
    ActionError::Invalid(e)
}

impl Organization {
    fn live(&self, record: RecordId) -> Result<(), ActionError> {
        let r = &self.records[record.index()];
        if r.alive {
            Ok(())
        } else {
            Err(invalid(ModelError::unknown("record", r.key.to_string())))
        }
    }

    /// The acting user of an action: refuses a disabled acting user (or impersonator) before
    /// anything else, and an impersonator without `prvActOnBehalfOfAnotherUser`. Also the
    /// writer the records the action creates or changes are stamped with (D165: the user acted
    /// for, not the impersonator).
    fn acting_user(&mut self, actor: Actor) -> Result<Option<Acting>, ActionError> {
        self.clock.by = match actor {
            Actor::System => crate::model::Stamps::SYSTEM,
            Actor::User(u) | Actor::OnBehalf { user: u, .. } => u.get(),
        };
        let enabled = |u: UserId| {
            if self.users[u.index()].enabled {
                Ok(())
            } else {
                Err(ActionError::Denied(format!(
                    "user `{}` is disabled",
                    self.users[u.index()].name
                )))
            }
        };
        match actor {
            Actor::System => Ok(None),
            Actor::User(u) => {
                enabled(u)?;
                Ok(Some(Acting {
                    user: u,
                    impersonator: None,
                }))
            }
            Actor::OnBehalf { user, impersonator } => {
                enabled(impersonator)?;
                enabled(user)?;
                if !self.holds_misc(impersonator, ACT_ON_BEHALF) {
                    return Err(ActionError::Denied(format!(
                        "principal user `{}` is missing {ACT_ON_BEHALF} privilege",
                        self.users[impersonator.index()].name
                    )));
                }
                Ok(Some(Acting {
                    user,
                    impersonator: Some(impersonator),
                }))
            }
        }
    }

    /// Requires `privilege` on an existing record, with the explanation in the refusal.
    fn require(
        &self,
        user: Option<Acting>,
        privilege: Privilege,
        record: RecordId,
    ) -> Result<(), ActionError> {
        for u in user.iter().flat_map(|a| a.each()) {
            if !self.check(u, privilege, record) {
                let decision = self.explain(u, privilege, record);
                return Err(ActionError::Denied(self.render_decision(&decision)));
            }
        }
        Ok(())
    }

    /// Requires `privilege` on a target that is not a stored record (a new record, a team,
    /// a role, a unit), with the explanation in the refusal.
    fn require_target(
        &self,
        user: Option<Acting>,
        privilege: Privilege,
        target: Target,
    ) -> Result<(), ActionError> {
        for u in user.iter().flat_map(|a| a.each()) {
            let decision = self.decide(u, privilege, target);
            if !decision.allowed {
                return Err(ActionError::Denied(self.render_decision(&decision)));
            }
        }
        Ok(())
    }

    fn unit_target(&self, table: TableId, unit: BusinessUnitId) -> Target {
        Target {
            table,
            owner: Owner::None,
            business_unit: unit,
            record: None,
        }
    }

    fn holds_privilege(&self, principal: Principal, table: TableId, privilege: Privilege) -> bool {
        match principal {
            Principal::User(u) => {
                self.derived.admin[u.index()].is_some()
                    || !self.grants(u, table, privilege).is_empty()
            }
            Principal::Team(t) => self.teams[t.index()].roles.iter().any(|r| {
                self.roles[r.index()].system_administrator
                    || self.roles[r.index()].depth(table, privilege) > Depth::None
            }),
            Principal::Organization => false,
        }
    }

    /// D29: whether `user` may administer `target` — disable it, move it, set its manager or
    /// position. Only System Administrators do this to themselves; another user may be
    /// administered only by a caller who holds every privilege the target holds (each of the
    /// target's roles, direct or through an owner/group team, passes D11 for the target at the
    /// unit it applies from), and a System Administrator only by a System Administrator.
    /// `what` names the change (`move`, `disable`…) for the refusal.
    pub fn check_user_administration(
        &self,
        user: UserId,
        target: UserId,
        what: &str,
    ) -> Result<(), ActionError> {
        if self.derived.admin[user.index()].is_some() {
            return Ok(());
        }
        let name = &self.users[user.index()].name;
        let target_name = &self.users[target.index()].name;
        if user == target {
            return Err(ActionError::Denied(format!(
                "user `{name}` may not {what} itself: only System Administrators do"
            )));
        }
        if self.derived.admin[target.index()].is_some() {
            return Err(ActionError::Denied(format!(
                "user `{target_name}` is a System Administrator: only System Administrators {what} it"
            )));
        }
        let t = &self.users[target.index()];
        let direct = t
            .roles
            .iter()
            .map(|a| (a.role, self.assignment_unit(target, *a)));
        let through_teams = t.teams.iter().flat_map(|team| {
            let team = &self.teams[team.index()];
            team.roles.iter().map(|r| (*r, team.business_unit))
        });
        for (role, unit) in direct.chain(through_teams) {
            self.require_no_escalation(user, Principal::User(target), unit, role)
                .map_err(|e| match e {
                    ActionError::Denied(m) => ActionError::Denied(format!(
                        "user `{name}` may not {what} user `{target_name}`, who holds privileges the caller does not: {m}"
                    )),
                    other => other,
                })?;
        }
        Ok(())
    }

    /// Refuses a column that `table` does not know (`unknown_column`). A table that declares
    /// columns is closed: it knows its declared columns and those its records received at
    /// setup or import; a table that declares none takes any column (schema-less, as scenario
    /// format 1 allows). Columns are added with `add_columns` (System Administrators).
    pub fn check_known_columns<'a>(
        &self,
        table: TableId,
        columns: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ActionError> {
        let t = &self.tables[table.index()];
        let seen = self.seen_columns.get(table.index());
        for column in columns {
            crate::organization::check_not_stamp(column).map_err(invalid)?;
            if t.columns.is_empty() {
                continue;
            }
            if !t.columns.iter().any(|c| c.name == column)
                && !seen.is_some_and(|s| s.contains(column))
            {
                return Err(invalid(ModelError::UnknownColumn {
                    table: t.name.clone(),
                    column: column.to_owned(),
                }));
            }
        }
        Ok(())
    }

    /// D9 and D29 for `user` writing `columns` of `table`: each secured column needs create
    /// permission (`record: None`, a new record) or update permission (`record: Some`, with
    /// that record's column shares); identity attributes of `systemuser`
    /// ([`IDENTITY_COLUMNS`]) need System Administrator. Every write of a column by a user —
    /// create, update, `set_user_fields` — goes through this check.
    pub fn check_column_writes<'a>(
        &self,
        user: UserId,
        table: TableId,
        record: Option<RecordId>,
        columns: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), ActionError> {
        if self.derived.admin[user.index()].is_some() {
            return Ok(());
        }
        let name = &self.users[user.index()].name;
        let table_name = &self.tables[table.index()].name;
        for column in columns {
            if table == SYSTEMUSER && IDENTITY_COLUMNS.contains(&column) {
                return Err(ActionError::Denied(format!(
                    "user `{name}` may not set identity column `{table_name}.{column}`: only System Administrators set a user's identity"
                )));
            }
            let access = self.column_access(user, table, column, record);
            match record {
                None if !access.create => {
                    return Err(ActionError::Denied(format!(
                        "user `{name}` may not set secured column `{table_name}.{column}` on create"
                    )));
                }
                Some(_) if !access.update => {
                    return Err(ActionError::Denied(format!(
                        "user `{name}` may not update secured column `{table_name}.{column}`"
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Creates a record (D1: Create is checked against the new owner and unit; secured
    /// columns need create permission; lookups need Append on the new record and AppendTo
    /// on the parent, and are a reparent, D14).
    pub fn create_record(&mut self, actor: Actor, new: CreateRecord) -> Outcome {
        let user = self.acting_user(actor)?;
        let table = &self.tables[new.table.index()];
        let owner = match (table.ownership, new.owner, user) {
            (Ownership::UserOrTeam, Some(o), _) => o,
            (Ownership::UserOrTeam, None, Some(u)) => Owner::User(u.user),
            (Ownership::UserOrTeam, None, None) => {
                return Err(invalid(ModelError::record(
                    &new.key,
                    format!("table `{}` needs an owner", table.name),
                )));
            }
            (_, Some(Owner::User(_) | Owner::Team(_)), _) => {
                return Err(invalid(ModelError::record(
                    &new.key,
                    format!(
                        "table `{}` is not user-or-team owned; its records take no owner",
                        table.name
                    ),
                )));
            }
            (_, _, _) => Owner::None,
        };
        if new.table == SYSTEMUSER {
            return Err(invalid(ModelError::record(
                &new.key,
                "users are added through administration, not as records",
            )));
        }
        if self.record_names.get(&self.records, &new.key).is_some() {
            return Err(invalid(ModelError::Duplicate {
                kind: "record",
                name: new.key,
            }));
        }
        let owner_unit = self.owner_unit(owner);
        let unit = new.business_unit.unwrap_or(owner_unit);
        if unit != owner_unit && !self.settings.ownership_across_business_units {
            return Err(invalid(ModelError::record(
                &new.key,
                "a record belongs to its owner's business unit unless ownership across business units is on",
            )));
        }
        if let Owner::Team(t) = owner
            && !self.teams[t.index()].kind.can_hold_roles()
        {
            return Err(invalid(ModelError::record(
                &new.key,
                format!(
                    "access team `{}` cannot own records",
                    self.teams[t.index()].name
                ),
            )));
        }
        let mut links = Vec::with_capacity(new.lookups.len());
        for (lookup, parent) in &new.lookups {
            let rel = self
                .relationship_by_lookup(new.table, lookup)
                .ok_or_else(|| {
                    invalid(ModelError::unknown(
                        "lookup",
                        format!("{}.{lookup}", self.tables[new.table.index()].name),
                    ))
                })?;
            self.live(*parent)?;
            let expected = self.relationships[rel.index()].parent;
            if self.records[parent.index()].table != expected {
                return Err(invalid(ModelError::record(
                    &new.key,
                    format!(
                        "lookup `{lookup}` refers to table `{}`, not to record `{}`",
                        self.tables[expected.index()].name,
                        self.records[parent.index()].key
                    ),
                )));
            }
            links.push((rel, *parent));
        }
        self.check_known_columns(new.table, new.fields.iter().map(|(c, _)| c.as_str()))?;
        let target = Target {
            table: new.table,
            owner,
            business_unit: unit,
            record: None,
        };
        self.require_target(user, Privilege::Create, target)?;
        for u in user.iter().flat_map(|a| a.each()) {
            self.check_column_writes(
                u,
                new.table,
                None,
                new.fields
                    .iter()
                    .filter(|(_, v)| *v != Value::Null)
                    .map(|(c, _)| c.as_str()),
            )?;
            if !links.is_empty() {
                self.require_target(user, Privilege::Append, target)?;
            }
            for (_, parent) in &links {
                self.require(user, Privilege::AppendTo, *parent)?;
            }
        }
        let record = self
            .insert_record(NewRecord {
                key: new.key,
                table: new.table,
                owner,
                business_unit: Some(unit),
                state: new.state,
                fields: new.fields,
            })
            .map_err(invalid)?;
        let mut changes = vec![Change::RecordCreated { record }];
        for (rel, parent) in links {
            self.set_lookup(record, rel, Some(parent))
                .map_err(invalid)?;
            changes.push(Change::LookupChanged {
                record,
                relationship: rel,
                old: None,
                new: Some(parent),
            });
        }
        Ok(changes)
    }

    /// Updates columns: Write on the record; secured columns need update permission (D9).
    /// Only changed values are written and reported.
    pub fn update_record(
        &mut self,
        actor: Actor,
        record: RecordId,
        fields: Vec<(String, Value)>,
    ) -> Outcome {
        let user = self.acting_user(actor)?;
        self.live(record)?;
        let table = self.records[record.index()].table;
        for (column, _) in &fields {
            if self.relationship_by_lookup(table, column).is_some() {
                return Err(invalid(ModelError::record(
                    &self.records[record.index()].key,
                    format!("`{column}` is a lookup: set it with associate or disassociate"),
                )));
            }
        }
        self.check_known_columns(table, fields.iter().map(|(c, _)| c.as_str()))?;
        self.require(user, Privilege::Write, record)?;
        let rec = &self.records[record.index()];
        let changed: Vec<(String, Value, Value)> = fields
            .into_iter()
            .filter(|(c, v)| rec.field(c) != v)
            .map(|(c, v)| {
                let old = rec.field(&c).clone();
                (c, old, v)
            })
            .collect();
        for u in user.iter().flat_map(|a| a.each()) {
            self.check_column_writes(
                u,
                table,
                Some(record),
                changed.iter().map(|(c, _, _)| c.as_str()),
            )?;
        }
        if changed.is_empty() {
            return Ok(Vec::new());
        }
        self.set_fields(
            record,
            changed.iter().map(|(c, _, new)| (c.clone(), new.clone())),
        );
        Ok(vec![Change::RecordUpdated {
            record,
            columns: changed,
        }])
    }

    /// Deletes a record and follows each relationship's delete behaviour (D15): `cascade`
    /// deletes children, `remove_link` clears their lookup, `restrict` refuses while children
    /// exist. Cascaded deletes run as part of the authorized delete of the parent.
    pub fn delete_record(&mut self, actor: Actor, record: RecordId) -> Outcome {
        let user = self.acting_user(actor)?;
        self.live(record)?;
        if self.records[record.index()].table == SYSTEMUSER {
            return Err(invalid(ModelError::record(
                &self.records[record.index()].key,
                "users are disabled, not deleted",
            )));
        }
        self.require(user, Privilege::Delete, record)?;
        let mut doomed = vec![record];
        let mut unlink = Vec::new();
        let mut i = 0;
        while i < doomed.len() {
            let current = doomed[i];
            for (rel, child) in self.children(current) {
                match self.relationships[rel.index()].cascade.delete {
                    DeleteBehavior::Cascade => {
                        if !doomed.contains(child) {
                            doomed.push(*child);
                        }
                    }
                    DeleteBehavior::RemoveLink => unlink.push((*child, *rel, current)),
                    DeleteBehavior::Restrict => {
                        return Err(invalid(ModelError::record(
                            &self.records[current.index()].key,
                            format!(
                                "relationship `{}` restricts delete while child `{}` exists",
                                self.relationships[rel.index()].name,
                                self.records[child.index()].key
                            ),
                        )));
                    }
                }
            }
            i += 1;
        }
        let mut changes = Vec::new();
        for (child, rel, parent) in unlink {
            if doomed.contains(&child) {
                continue;
            }
            self.set_lookup(child, rel, None).map_err(invalid)?;
            changes.push(Change::LookupChanged {
                record: child,
                relationship: rel,
                old: Some(parent),
                new: None,
            });
        }
        for r in doomed {
            self.remove_record(r);
            changes.push(Change::RecordDeleted { record: r });
        }
        Ok(changes)
    }

    fn remove_record(&mut self, record: RecordId) {
        self.reindexing(record, |org| org.remove_record_unindexed(record));
    }

    fn remove_record_unindexed(&mut self, record: RecordId) {
        let lookups = std::mem::take(&mut self.record_mut(record).lookups);
        for (rel, parent) in lookups {
            self.children_retain(parent, |(r, c)| !(*r == rel && *c == record));
        }
        self.children_remove(record);
        let access_teams = std::mem::take(&mut self.record_mut(record).access_teams).into_vec();
        for (_, team) in access_teams {
            for member in std::mem::take(&mut self.team_mut(team).members) {
                self.user_mut(member).teams.retain(|t| *t != team);
            }
        }
        let rec = self.record_mut(record);
        rec.alive = false;
        rec.shares = crate::model::RareList::default();
        rec.field_shares = crate::model::RareList::default();
        let (table, key) = (rec.table, rec.key.clone());
        self.set_name(NameKind::Records, &key, None);
        self.table_records_remove(table, record);
    }

    /// Assigns a record to a new owner: Assign on the record; the new owner must hold Read
    /// on the table; children follow the assign cascade; with `share_to_previous_owner_on_assign`
    /// the previous owner keeps a share with every right.
    pub fn assign_record(&mut self, actor: Actor, record: RecordId, new_owner: Owner) -> Outcome {
        let user = self.acting_user(actor)?;
        self.live(record)?;
        let rec = &self.records[record.index()];
        let table = rec.table;
        if self.tables[table.index()].ownership != Ownership::UserOrTeam || rec.table == SYSTEMUSER
        {
            return Err(invalid(ModelError::record(
                &rec.key,
                "only records of user-or-team owned tables can be assigned",
            )));
        }
        let Some(new_principal) = new_owner.principal() else {
            return Err(invalid(ModelError::record(
                &rec.key,
                "a record of this table needs an owner",
            )));
        };
        match new_owner {
            Owner::User(u) if !self.users[u.index()].enabled => {
                return Err(invalid(ModelError::record(
                    &rec.key,
                    format!(
                        "user `{}` is disabled and cannot own records",
                        self.users[u.index()].name
                    ),
                )));
            }
            Owner::Team(t) if !self.teams[t.index()].kind.can_hold_roles() => {
                return Err(invalid(ModelError::record(
                    &rec.key,
                    format!(
                        "access team `{}` cannot own records",
                        self.teams[t.index()].name
                    ),
                )));
            }
            _ => {}
        }
        self.require(user, Privilege::Assign, record)?;
        if rec.owner == new_owner {
            return Ok(Vec::new());
        }
        if user.is_some() && !self.holds_privilege(new_principal, table, Privilege::Read) {
            return Err(ActionError::Denied(format!(
                "new owner `{}` holds no read privilege on table `{}`",
                self.principal_name(new_principal),
                self.tables[table.index()].name
            )));
        }
        let old_owner = rec.owner;
        let new_unit_of = |org: &Organization, current: BusinessUnitId| {
            if org.settings.ownership_across_business_units
                && !org.settings.always_move_record_to_owner_business_unit
            {
                current
            } else {
                org.owner_unit(new_owner)
            }
        };
        // Plan the cascade first.
        let mut plan = vec![record];
        let mut i = 0;
        while i < plan.len() {
            let parent = plan[i];
            let parent_old_owner = self.records[parent.index()].owner;
            for (rel, child) in self.children(parent) {
                let child_rec = &self.records[child.index()];
                if self.tables[child_rec.table.index()].ownership != Ownership::UserOrTeam
                    || plan.contains(child)
                {
                    continue;
                }
                let follows = match self.relationships[rel.index()].cascade.assign {
                    CascadeType::Cascade => true,
                    CascadeType::Active => child_rec.state == RecordState::Active,
                    CascadeType::UserOwned => child_rec.owner == parent_old_owner,
                    CascadeType::None => false,
                };
                if follows {
                    plan.push(*child);
                }
            }
            i += 1;
        }
        let mut changes = Vec::new();
        for r in plan {
            let old = self.records[r.index()].owner;
            let old_unit = self.records[r.index()].business_unit;
            let new_unit = new_unit_of(self, old_unit);
            self.reindexing_facts(r, |org| {
                let rec = org.record_mut(r);
                rec.owner = new_owner;
                rec.business_unit = new_unit;
            });
            self.touch(r);
            changes.push(Change::OwnerChanged {
                record: r,
                old,
                new: new_owner,
                old_unit,
                new_unit,
            });
        }
        if self.settings.share_to_previous_owner_on_assign
            && let Some(previous) = old_owner.principal()
        {
            let old = self.records[record.index()].share_of(previous);
            let new = old.union(AccessMask::INHERITED);
            self.set_share(record, previous, new);
            changes.push(Change::ShareChanged {
                record,
                principal: previous,
                old,
                new,
            });
        }
        Ok(changes)
    }

    /// Shares a record (D2): the sharer needs Share access on the record and cannot grant
    /// rights it does not hold on it. `Grant` adds rights, `Modify` replaces them.
    pub fn share_record(
        &mut self,
        actor: Actor,
        record: RecordId,
        principal: Principal,
        rights: AccessMask,
        mode: ShareMode,
    ) -> Outcome {
        let user = self.acting_user(actor)?;
        self.live(record)?;
        let key = &self.records[record.index()].key;
        if let Principal::Team(t) = principal
            && self.teams[t.index()].record_team.is_some()
        {
            return Err(invalid(ModelError::record(
                key,
                format!(
                    "team `{}` is a record access team; add members through its template",
                    self.teams[t.index()].name
                ),
            )));
        }
        if mode == ShareMode::Grant && rights.is_empty() {
            return Err(invalid(ModelError::record(
                key,
                "a share needs at least one right",
            )));
        }
        if self.tables[self.records[record.index()].table.index()].ownership
            != Ownership::UserOrTeam
        {
            return Err(invalid(ModelError::record(
                key,
                "only records of user-or-team owned tables can be shared",
            )));
        }
        self.require(user, Privilege::Share, record)?;
        for u in user.iter().flat_map(|a| a.each()) {
            self.require_rights(u, record, rights)?;
        }
        let old = self.records[record.index()].share_of(principal);
        let new = match mode {
            ShareMode::Grant => old.union(rights),
            ShareMode::Modify => rights,
        };
        if old == new {
            return Ok(Vec::new());
        }
        self.set_share(record, principal, new);
        Ok(vec![Change::ShareChanged {
            record,
            principal,
            old,
            new,
        }])
    }

    /// The acting user must hold every right in `rights` on the record (Create: the privilege).
    fn require_rights(
        &self,
        user: UserId,
        record: RecordId,
        rights: AccessMask,
    ) -> Result<(), ActionError> {
        let table = self.records[record.index()].table;
        for p in rights.privileges() {
            let held = if p == Privilege::Create {
                self.derived.admin[user.index()].is_some()
                    || !self.grants(user, table, p).is_empty()
            } else {
                self.check(user, p, record)
            };
            if !held {
                return Err(ActionError::Denied(format!(
                    "user `{}` cannot grant `{p}` on record `{}`: it does not hold that right itself",
                    self.users[user.index()].name,
                    self.records[record.index()].key
                )));
            }
        }
        Ok(())
    }

    /// Removes a principal's explicit share (`RevokeAccess`).
    pub fn revoke_share(
        &mut self,
        actor: Actor,
        record: RecordId,
        principal: Principal,
    ) -> Outcome {
        let user = self.acting_user(actor)?;
        self.live(record)?;
        self.require(user, Privilege::Share, record)?;
        let old = self.records[record.index()].share_of(principal);
        if old.is_empty() {
            return Ok(Vec::new());
        }
        self.set_share(record, principal, AccessMask::NONE);
        Ok(vec![Change::ShareChanged {
            record,
            principal,
            old,
            new: AccessMask::NONE,
        }])
    }

    /// Sets a lookup (a reparent, D14): Append on the child, AppendTo on the parent.
    pub fn associate(
        &mut self,
        actor: Actor,
        child: RecordId,
        lookup: &str,
        parent: RecordId,
    ) -> Outcome {
        let user = self.acting_user(actor)?;
        self.live(child)?;
        self.live(parent)?;
        let rel = self.lookup_of(child, lookup)?;
        self.validate_lookup(child, rel, parent).map_err(invalid)?;
        self.require(user, Privilege::Append, child)?;
        self.require(user, Privilege::AppendTo, parent)?;
        let old = self.records[child.index()].lookup(rel);
        if old == Some(parent) {
            return Ok(Vec::new());
        }
        self.set_lookup(child, rel, Some(parent)).map_err(invalid)?;
        Ok(vec![Change::LookupChanged {
            record: child,
            relationship: rel,
            old,
            new: Some(parent),
        }])
    }

    /// Clears a lookup: Append on the child, AppendTo on the current parent.
    pub fn disassociate(&mut self, actor: Actor, child: RecordId, lookup: &str) -> Outcome {
        let user = self.acting_user(actor)?;
        self.live(child)?;
        let rel = self.lookup_of(child, lookup)?;
        let Some(old) = self.records[child.index()].lookup(rel) else {
            return Ok(Vec::new());
        };
        self.require(user, Privilege::Append, child)?;
        self.require(user, Privilege::AppendTo, old)?;
        self.set_lookup(child, rel, None).map_err(invalid)?;
        Ok(vec![Change::LookupChanged {
            record: child,
            relationship: rel,
            old: Some(old),
            new: None,
        }])
    }

    fn lookup_of(&self, record: RecordId, lookup: &str) -> Result<RelationshipId, ActionError> {
        let table = self.records[record.index()].table;
        self.relationship_by_lookup(table, lookup).ok_or_else(|| {
            invalid(ModelError::unknown(
                "lookup",
                format!("{}.{lookup}", self.tables[table.index()].name),
            ))
        })
    }

    /// Adds a user to the record access team of a template: the caller needs Share on the
    /// record and every right of the template; the member needs Read and the privilege of
    /// every right of the template.
    pub fn add_access_team_member(
        &mut self,
        actor: Actor,
        record: RecordId,
        template: TemplateId,
        member: UserId,
    ) -> Outcome {
        let user = self.acting_user(actor)?;
        self.live(record)?;
        let rec = &self.records[record.index()];
        let tpl = &self.templates[template.index()];
        if rec.table != tpl.table {
            return Err(invalid(ModelError::record(
                &rec.key,
                format!(
                    "access team template `{}` is for table `{}`",
                    tpl.name,
                    self.tables[tpl.table.index()].name
                ),
            )));
        }
        if !self.users[member.index()].enabled {
            return Err(invalid(ModelError::record(
                &rec.key,
                format!("user `{}` is disabled", self.users[member.index()].name),
            )));
        }
        let (table, rights) = (rec.table, tpl.rights);
        self.require(user, Privilege::Share, record)?;
        let member_record = self.users[member.index()].record;
        for u in user.iter().flat_map(|a| a.each()) {
            // AddUserToRecordTeam: the Share privilege on the table, privileges on `systemuser`
            // (Read on the added user's record: a depth covering that user's unit), and every
            // right of the template on the record (D28: the template's rights are capped by
            // the caller's).
            if self.derived.admin[u.index()].is_none()
                && self.grants(u, table, Privilege::Share).is_empty()
            {
                return Err(ActionError::Denied(format!(
                    "user `{}` holds no `share` privilege on table `{}`",
                    self.users[u.index()].name,
                    self.tables[table.index()].name
                )));
            }
            self.require(
                Some(Acting {
                    user: u,
                    impersonator: None,
                }),
                Privilege::Read,
                member_record,
            )?;
            self.require_rights(u, record, rights)?;
            for p in rights.with(Privilege::Read).privileges() {
                if !self.holds_privilege(Principal::User(member), table, p) {
                    return Err(ActionError::Denied(format!(
                        "user `{}` cannot join the access team: no `{p}` privilege on table `{}`",
                        self.users[member.index()].name,
                        self.tables[table.index()].name
                    )));
                }
            }
        }
        let team = self.record_access_team(record, template).map_err(invalid)?;
        if self.is_member(member, team) {
            return Ok(Vec::new());
        }
        self.add_member(team, member);
        Ok(vec![Change::TeamMemberAdded { team, user: member }])
    }

    /// Removes a user from the record access team of a template (Share on the record).
    pub fn remove_access_team_member(
        &mut self,
        actor: Actor,
        record: RecordId,
        template: TemplateId,
        member: UserId,
    ) -> Outcome {
        let user = self.acting_user(actor)?;
        self.live(record)?;
        self.require(user, Privilege::Share, record)?;
        let Some((_, team)) = self.records[record.index()]
            .access_teams
            .iter()
            .find(|(t, _)| *t == template)
            .copied()
        else {
            return Ok(Vec::new());
        };
        if !self.is_member(member, team) {
            return Ok(Vec::new());
        }
        self.remove_member(team, member);
        Ok(vec![Change::TeamMemberRemoved { team, user: member }])
    }

    fn refresh_principal(&mut self, principal: Principal) {
        match principal {
            Principal::User(u) => self.refresh_users(&[u]),
            Principal::Team(t) => {
                let members = self.teams[t.index()].members.clone();
                self.refresh_users(&members);
            }
            Principal::Organization => {}
        }
    }

    fn principal_unit(&self, principal: Principal) -> Result<BusinessUnitId, ActionError> {
        match principal {
            Principal::User(u) => Ok(self.users[u.index()].business_unit),
            Principal::Team(t) => Ok(self.teams[t.index()].business_unit),
            Principal::Organization => Err(invalid(ModelError::Other(
                "roles are held by users and teams".to_owned(),
            ))),
        }
    }

    /// Assigns a role to a user or an owner/group team (D11): the caller needs the Assign
    /// privilege on `role` covering the principal's unit, and every privilege of the role at
    /// least at the role's depth with that depth covering the principal's unit; only System
    /// Administrators assign System Administrator.
    pub fn assign_role(
        &mut self,
        actor: Actor,
        principal: Principal,
        role: RoleId,
        business_unit: Option<BusinessUnitId>,
    ) -> Outcome {
        let user = self.acting_user(actor)?;
        let unit = self.principal_unit(principal)?;
        let applies_in = business_unit.unwrap_or(unit);
        match principal {
            Principal::Team(t) => {
                let team = &self.teams[t.index()];
                if !team.kind.can_hold_roles() {
                    return Err(invalid(ModelError::RoleOnAccessTeam {
                        team: team.name.clone(),
                        role: self.roles[role.index()].name.clone(),
                    }));
                }
                if business_unit.is_some() {
                    return Err(invalid(ModelError::Other(
                        "a team's roles apply in the team's unit".to_owned(),
                    )));
                }
            }
            Principal::User(_)
                if business_unit.is_some() && !self.settings.ownership_across_business_units =>
            {
                return Err(invalid(ModelError::Other(
                    "assigning a role in a business unit needs `ownership_across_business_units`"
                        .to_owned(),
                )));
            }
            _ => {}
        }
        // Reference §2.3: roles go to enabled users. The system (setup, import, the root key)
        // is exempt, as Dataverse's `allowRoleAssignmentOnDisabledUsers` exempts.
        if let Principal::User(target) = principal
            && user.is_some()
            && !self.users[target.index()].enabled
        {
            return Err(invalid(ModelError::AssigneeDisabled {
                user: self.users[target.index()].name.clone(),
            }));
        }
        // A deprecated role is assigned by nobody, the system included (D43).
        self.check_not_deprecated(role).map_err(invalid)?;
        self.check_role_usable(role, applies_in).map_err(invalid)?;
        for u in user.iter().flat_map(|a| a.each()) {
            self.require_role_authority(u, principal, unit, role)?;
            self.require_no_escalation(u, principal, applies_in, role)?;
        }
        let already = match principal {
            Principal::User(u) => self.users[u.index()].roles.contains(&RoleAssignment {
                role,
                business_unit,
            }),
            Principal::Team(t) => self.teams[t.index()].roles.contains(&role),
            Principal::Organization => false,
        };
        if already {
            return Ok(Vec::new());
        }
        match principal {
            Principal::User(u) => self.user_mut(u).roles.push(RoleAssignment {
                role,
                business_unit,
            }),
            Principal::Team(t) => self.team_mut(t).roles.push(role),
            Principal::Organization => {}
        }
        self.refresh_principal(principal);
        Ok(vec![Change::RoleAssigned { principal, role }])
    }

    /// Removes a role from a user or team: the Assign privilege on `role` covering the
    /// principal's unit; only System Administrators remove System Administrator.
    pub fn remove_role(&mut self, actor: Actor, principal: Principal, role: RoleId) -> Outcome {
        let user = self.acting_user(actor)?;
        let unit = self.principal_unit(principal)?;
        for u in user.iter().flat_map(|a| a.each()) {
            self.require_role_authority(u, principal, unit, role)?;
        }
        let removed = match principal {
            Principal::User(u) => {
                let held = self.users[u.index()].roles.iter().any(|a| a.role == role);
                if held {
                    self.user_mut(u).roles.retain(|a| a.role != role);
                }
                held
            }
            Principal::Team(t) => {
                let held = self.teams[t.index()].roles.contains(&role);
                if held {
                    self.team_mut(t).roles.retain(|r| *r != role);
                }
                held
            }
            Principal::Organization => false,
        };
        if !removed {
            return Ok(Vec::new());
        }
        self.refresh_principal(principal);
        Ok(vec![Change::RoleRemoved { principal, role }])
    }

    pub(crate) fn require_role_authority(
        &self,
        user: UserId,
        principal: Principal,
        unit: BusinessUnitId,
        role: RoleId,
    ) -> Result<(), ActionError> {
        if self.derived.admin[user.index()].is_some() {
            return Ok(());
        }
        if self.roles[role.index()].system_administrator {
            return Err(ActionError::Denied(format!(
                "only System Administrators assign or remove role `{}`",
                self.roles[role.index()].name
            )));
        }
        // D29: only System Administrators change their own roles.
        if principal == Principal::User(user) {
            return Err(ActionError::Denied(format!(
                "user `{}` may not change its own roles: only System Administrators do",
                self.users[user.index()].name
            )));
        }
        self.require_target(
            Some(Acting {
                user,
                impersonator: None,
            }),
            Privilege::Assign,
            self.unit_target(ROLE, unit),
        )
    }

    /// D11: for every privilege of the role, the caller holds it at least at the role's depth,
    /// with that depth covering the unit the role will apply in.
    pub(crate) fn require_no_escalation(
        &self,
        user: UserId,
        principal: Principal,
        unit: BusinessUnitId,
        role: RoleId,
    ) -> Result<(), ActionError> {
        let r = &self.roles[role.index()];
        let grid = r.privileges.iter().flat_map(|(table, depths)| {
            Privilege::ALL
                .into_iter()
                .map(move |p| (*table, p, depths[p.index()]))
        });
        self.check_no_escalation(
            user,
            principal,
            unit,
            &r.name,
            r.system_administrator,
            grid,
            &r.misc,
        )
        .map_err(ActionError::Denied)
    }

    /// D11: whether `user` may hand out (or define) the privileges of role `role_name`, for a
    /// principal in `unit`: every privilege at least at the role's depth with that depth
    /// covering the unit, every miscellaneous privilege, and System Administrator only by a
    /// System Administrator. `Err` says what is missing.
    #[allow(
        clippy::too_many_arguments,
        reason = "the role's parts, borrowed from a role or from a definition"
    )]
    pub fn check_no_escalation(
        &self,
        user: UserId,
        principal: Principal,
        unit: BusinessUnitId,
        role_name: &str,
        system_administrator: bool,
        privileges: impl IntoIterator<Item = (TableId, Privilege, Depth)>,
        misc: &[String],
    ) -> Result<(), String> {
        if self.derived.admin[user.index()].is_some() {
            return Ok(());
        }
        let name = &self.users[user.index()].name;
        if system_administrator {
            return Err(format!(
                "only System Administrators hand out role `{role_name}`"
            ));
        }
        for (table, privilege, needed) in privileges {
            if needed == Depth::None {
                continue;
            }
            let ok = self.grants(user, table, privilege).iter().any(|g| {
                g.is_personal()
                    && g.depth >= needed
                    && match g.depth {
                        Depth::None => false,
                        Depth::User => principal == Principal::User(user),
                        Depth::BusinessUnit => g.anchor == unit,
                        Depth::ParentChild => self.units.contains(g.anchor, unit),
                        Depth::Organization => true,
                    }
            });
            if !ok {
                return Err(format!(
                    "user `{name}` cannot hand out role `{role_name}`: it gives `{privilege}` on `{}` at `{needed}`, which the user does not hold at that depth over business unit `{}`",
                    self.tables[table.index()].name,
                    self.units.name(unit)
                ));
            }
        }
        for m in misc {
            if !self.holds_misc(user, m) {
                return Err(format!(
                    "user `{name}` cannot hand out role `{role_name}`: it gives `{m}`, which the user does not hold"
                ));
            }
        }
        Ok(())
    }

    fn require_team_write(&self, user: Option<Acting>, team: TeamId) -> Result<(), ActionError> {
        let t = &self.teams[team.index()];
        if t.record_team.is_some() {
            return Err(invalid(ModelError::Other(format!(
                "team `{}` is a record access team; change it through its record and template",
                t.name
            ))));
        }
        self.require_target(
            user,
            Privilege::Write,
            self.unit_target(TEAM, t.business_unit),
        )
    }

    /// Adds a member to a team: Write on the team, and (D28: membership of an owner or group
    /// team is role assignment) D11 for each of the team's roles, for the new member at the
    /// team's unit; only System Administrators add themselves to a team that holds roles (D29).
    pub fn add_team_member(&mut self, actor: Actor, team: TeamId, member: UserId) -> Outcome {
        let user = self.acting_user(actor)?;
        self.require_team_write(user, team)?;
        let t = &self.teams[team.index()];
        for u in user.iter().flat_map(|a| a.each()) {
            if t.roles.is_empty() || self.derived.admin[u.index()].is_some() {
                continue;
            }
            if u == member {
                return Err(ActionError::Denied(format!(
                    "user `{}` may not add itself to team `{}`, which holds roles: only System Administrators change their own roles",
                    self.users[u.index()].name,
                    t.name
                )));
            }
            for role in &t.roles {
                self.require_no_escalation(u, Principal::User(member), t.business_unit, *role)
                    .map_err(|e| match e {
                        ActionError::Denied(m) => ActionError::Denied(format!(
                            "joining team `{}` gives its roles: {m}",
                            t.name
                        )),
                        other => other,
                    })?;
            }
        }
        if self.is_member(member, team) {
            return Ok(Vec::new());
        }
        self.add_member(team, member);
        self.refresh_users(&[member]);
        Ok(vec![Change::TeamMemberAdded { team, user: member }])
    }

    /// Removes a member from a team: Write on the team.
    pub fn remove_team_member(&mut self, actor: Actor, team: TeamId, member: UserId) -> Outcome {
        let user = self.acting_user(actor)?;
        self.require_team_write(user, team)?;
        if !self.is_member(member, team) {
            return Ok(Vec::new());
        }
        self.remove_member(team, member);
        self.refresh_users(&[member]);
        Ok(vec![Change::TeamMemberRemoved { team, user: member }])
    }

    /// Moves a user to another unit (D13): Write on the user's record. The user's direct roles
    /// are removed unless `do_not_remove_roles_on_change_business_unit`; the user's records move
    /// to the new unit unless `always_move_record_to_owner_business_unit` is off.
    pub fn move_user(&mut self, actor: Actor, target: UserId, unit: BusinessUnitId) -> Outcome {
        let user = self.acting_user(actor)?;
        self.require(user, Privilege::Write, self.users[target.index()].record)?;
        for u in user.iter().flat_map(|a| a.each()) {
            self.check_user_administration(u, target, "move")?;
        }
        let old_unit = self.users[target.index()].business_unit;
        if old_unit == unit {
            return Ok(Vec::new());
        }
        let mut changes = vec![Change::UserMoved {
            user: target,
            old_unit,
            new_unit: unit,
        }];
        if !self.settings.do_not_remove_roles_on_change_business_unit {
            for a in std::mem::take(&mut self.user_mut(target).roles) {
                changes.push(Change::RoleRemoved {
                    principal: Principal::User(target),
                    role: a.role,
                });
            }
        } else {
            // Kept roles go on measuring depth from the unit they were assigned in (reference
            // §1.2, §2.3): an assignment that named no unit is pinned to the unit it applied
            // from, the old one. They were usable there, so every role is kept.
            for a in &mut self.user_mut(target).roles {
                a.business_unit.get_or_insert(old_unit);
            }
        }
        self.user_mut(target).business_unit = unit;
        let own_record = self.users[target.index()].record;
        let moves_records = self.settings.always_move_record_to_owner_business_unit;
        for index in 0..self.records.len() {
            let rec = &self.records[index];
            let is_own = RecordId::from_index(index) == own_record;
            if rec.alive
                && rec.owner == Owner::User(target)
                && (is_own || moves_records)
                && rec.business_unit != unit
            {
                let old = rec.business_unit;
                self.reindexing_facts(RecordId::from_index(index), |org| {
                    org.record_mut(RecordId::from_index(index)).business_unit = unit;
                });
                self.touch(RecordId::from_index(index));
                changes.push(Change::RecordMoved {
                    record: RecordId::from_index(index),
                    old_unit: old,
                    new_unit: unit,
                });
            }
        }
        self.refresh_users(&[target]);
        self.refresh_hierarchy();
        Ok(changes)
    }

    /// Sets or clears a user's manager: Write on the user's record; cycles are refused.
    pub fn set_manager(
        &mut self,
        actor: Actor,
        target: UserId,
        manager: Option<UserId>,
    ) -> Outcome {
        let user = self.acting_user(actor)?;
        self.check_manager(target, manager).map_err(invalid)?;
        self.require(user, Privilege::Write, self.users[target.index()].record)?;
        for u in user.iter().flat_map(|a| a.each()) {
            self.check_user_administration(u, target, "change the manager of")?;
        }
        let old = self.users[target.index()].manager;
        if old == manager {
            return Ok(Vec::new());
        }
        self.user_mut(target).manager = manager;
        self.refresh_hierarchy();
        Ok(vec![Change::ManagerChanged {
            user: target,
            old,
            new: manager,
        }])
    }
}
