//! Questions beyond a single check: column security, the record as a user sees it, the
//! readable records of a table, who has access to a record, and app access.

use crate::derive::AdminSource;
use crate::ids::{AppId, Principal, RecordId, RoleId, TableId, TeamId, UserId};
use crate::model::Value;
use crate::organization::Organization;
use crate::privilege::Privilege;

/// What a user may do with one column (on one record, when column shares are considered).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ColumnAccess {
    /// May read the value.
    pub read: bool,
    /// May change the value.
    pub update: bool,
    /// May set the value when creating a record.
    pub create: bool,
}

impl ColumnAccess {
    const ALL: ColumnAccess = ColumnAccess {
        read: true,
        update: true,
        create: true,
    };
}

/// Why a user may open an app (D6).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AppAccess {
    /// System Administrator.
    SystemAdministrator(AdminSource),
    /// A role associated with the app, held directly or through a team.
    Role {
        /// The role.
        role: RoleId,
        /// The team, when held through one.
        team: Option<TeamId>,
    },
    /// Create and Write on the `appmodule` table: a maker sees every app.
    Maker,
}

impl Organization {
    /// Column security for a user on a table's column (D9). `record` adds that record's
    /// column shares. Unsecured columns are fully open (record access still applies).
    #[must_use]
    pub fn column_access(
        &self,
        user: UserId,
        table: TableId,
        column: &str,
        record: Option<RecordId>,
    ) -> ColumnAccess {
        if !self.tables[table.index()].is_secured(column)
            || self.derived.admin[user.index()].is_some()
        {
            return ColumnAccess::ALL;
        }
        let holds = |p: &Principal| match p {
            Principal::User(u) => *u == user,
            Principal::Team(t) => self.is_member(user, *t),
            Principal::Organization => false,
        };
        let mut access = ColumnAccess {
            read: false,
            update: false,
            create: false,
        };
        for profile in &self.profiles {
            if !profile.members.iter().any(holds) {
                continue;
            }
            for p in &profile.permissions {
                if p.table == table && p.column == column {
                    access.read |= p.read;
                    access.update |= p.update;
                    access.create |= p.create;
                }
            }
        }
        if let Some(r) = record {
            for share in &self.records[r.index()].field_shares {
                if share.column == column && holds(&share.principal) {
                    access.read |= share.read;
                    access.update |= share.update;
                }
            }
        }
        access
    }

    /// The record as the user sees it: every declared column and every set column, secured
    /// columns without read permission as `Null`. `None` when the user cannot read the record.
    #[must_use]
    pub fn read_record(&self, user: UserId, record: RecordId) -> Option<Vec<(String, Value)>> {
        self.read_record_as(user, None, record)
    }

    /// A record as `user` reads it while `impersonator` acts on their behalf (D7): `None`
    /// unless both may read it; a secured column is null unless both may read it.
    #[must_use]
    pub fn read_record_as(
        &self,
        user: UserId,
        impersonator: Option<UserId>,
        record: RecordId,
    ) -> Option<Vec<(String, Value)>> {
        let readers = || std::iter::once(user).chain(impersonator);
        if !readers().all(|u| self.check(u, Privilege::Read, record)) {
            return None;
        }
        let rec = &self.records[record.index()];
        let table = &self.tables[rec.table.index()];
        let mut columns: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        for (name, _) in &rec.fields {
            if !columns.contains(&&**name) {
                columns.push(name);
            }
        }
        Some(
            columns
                .into_iter()
                .map(|c| {
                    let visible =
                        readers().all(|u| self.column_access(u, rec.table, c, Some(record)).read);
                    let value = if visible {
                        rec.field(c).clone()
                    } else {
                        Value::Null
                    };
                    (c.to_owned(), value)
                })
                .collect(),
        )
    }

    /// Every live record of `table` the user can read, in creation order, from the record
    /// index ([`Organization::readable_set`]).
    #[must_use]
    pub fn list_readable(&self, user: UserId, table: TableId) -> Vec<RecordId> {
        self.readable_set(user, table)
            .iter()
            .map(|id| RecordId::from_index(id as usize))
            .collect()
    }

    /// The reference list: one `check` per record of the table. The index must agree with it.
    #[must_use]
    pub fn list_readable_by_checks(&self, user: UserId, table: TableId) -> Vec<RecordId> {
        self.table_records[table.index()]
            .iter()
            .copied()
            .filter(|r| self.check(user, Privilege::Read, *r))
            .collect()
    }

    /// Every user who holds `privilege` on the record (hierarchy managers included).
    #[must_use]
    pub fn who_has_access(&self, record: RecordId, privilege: Privilege) -> Vec<UserId> {
        self.user_ids()
            .filter(|u| self.check(*u, privilege, record))
            .collect()
    }

    /// Why the user may open the app, or `None` (D6). Disabled users open nothing.
    #[must_use]
    pub fn app_access(&self, user: UserId, app: AppId) -> Option<AppAccess> {
        let u = &self.users[user.index()];
        if !u.enabled {
            return None;
        }
        if let Some(admin) = self.derived.admin[user.index()] {
            return Some(AppAccess::SystemAdministrator(admin));
        }
        let app_roles: &[crate::ids::RoleId] = if self.licence_allows_app(user, app) {
            &self.apps[app.index()].roles
        } else {
            // D49: an app the user's licences do not allow opens through no role.
            &[]
        };
        if let Some(a) = u.roles.iter().find(|a| app_roles.contains(&a.role)) {
            return Some(AppAccess::Role {
                role: a.role,
                team: None,
            });
        }
        for team in &u.teams {
            if let Some(role) = self.teams[team.index()]
                .roles
                .iter()
                .find(|r| app_roles.contains(r))
            {
                return Some(AppAccess::Role {
                    role: *role,
                    team: Some(*team),
                });
            }
        }
        let maker = self.table_id("appmodule").is_some_and(|t| {
            !self.grants(user, t, Privilege::Create).is_empty()
                && !self.grants(user, t, Privilege::Write).is_empty()
        });
        maker.then_some(AppAccess::Maker)
    }
}
