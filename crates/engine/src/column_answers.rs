//! Questions about one column (D9, D53): who can read or update it and through which field
//! security profile, column share or System Administrator; and a column check with its
//! explanation for one user on one record.

use crate::check::Decision;
use crate::derive::AdminSource;
use crate::error::ModelError;
use crate::ids::{Principal, ProfileId, RecordId, TableId, TeamId, UserId};
use crate::organization::Organization;
use crate::privilege::Privilege;
use crate::queries::ColumnAccess;

/// Where a user's permission on a secured column comes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ColumnSource {
    /// System Administrator: every secured column (D9).
    SystemAdministrator(AdminSource),
    /// A field security profile the user is in, directly or through a team.
    Profile {
        /// The profile.
        profile: ProfileId,
        /// The team, when the user is in the profile through it.
        team: Option<TeamId>,
    },
    /// A column share of the record, to the user or a team of the user.
    FieldShare {
        /// The team, when shared with one of the user's teams.
        team: Option<TeamId>,
    },
}

/// A user who may read or update a secured column, with every source.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ColumnHolder {
    /// The user.
    pub user: UserId,
    /// The union of the sources.
    pub access: ColumnAccess,
    /// Each source and what it gives.
    pub sources: Vec<(ColumnSource, ColumnAccess)>,
}

/// A column read or update decided for one user on one record.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ColumnVerdict {
    /// The answer: record access and column permission.
    pub allowed: bool,
    /// Whether column security applies to the column (else record access alone decides).
    pub secured: bool,
    /// The column, by name.
    pub column: String,
    /// `true` for an update, `false` for a read.
    pub update: bool,
    /// The record decision (Read for a read, Write for an update).
    pub record: Decision,
    /// The column permission (every permission for an unsecured column).
    pub access: ColumnAccess,
    /// Where the column permission comes from (empty for an unsecured column).
    pub sources: Vec<(ColumnSource, ColumnAccess)>,
}

const NONE: ColumnAccess = ColumnAccess {
    read: false,
    update: false,
    create: false,
};

fn union(a: ColumnAccess, b: ColumnAccess) -> ColumnAccess {
    ColumnAccess {
        read: a.read | b.read,
        update: a.update | b.update,
        create: a.create | b.create,
    }
}

impl Organization {
    /// Refuses a column the table does not know (a table that declares no columns takes any).
    ///
    /// # Errors
    /// `unknown_column`.
    pub fn known_column(&self, table: TableId, column: &str) -> Result<(), ModelError> {
        let t = &self.tables[table.index()];
        if t.columns.is_empty()
            || t.columns.iter().any(|c| c.name == column)
            || self.has_column(table, column)
        {
            Ok(())
        } else {
            Err(ModelError::UnknownColumn {
                table: t.name.clone(),
                column: column.to_owned(),
            })
        }
    }

    /// Every source of a user's permission on a secured column (`record` adds its column
    /// shares), in order: System Administrator, profiles, column shares. Disabled users have
    /// none.
    #[must_use]
    pub fn column_sources(
        &self,
        user: UserId,
        table: TableId,
        column: &str,
        record: Option<RecordId>,
    ) -> Vec<(ColumnSource, ColumnAccess)> {
        let mut out = Vec::new();
        if !self.users[user.index()].enabled {
            return out;
        }
        if let Some(admin) = self.derived.admin[user.index()] {
            out.push((
                ColumnSource::SystemAdministrator(admin),
                ColumnAccess {
                    read: true,
                    update: true,
                    create: true,
                },
            ));
        }
        // Directly first, then through each team (in the user's team order).
        let through = |members: &[Principal]| -> Vec<Option<TeamId>> {
            let mut via = Vec::new();
            if members.contains(&Principal::User(user)) {
                via.push(None);
            }
            for t in &self.users[user.index()].teams {
                if members.contains(&Principal::Team(*t)) {
                    via.push(Some(*t));
                }
            }
            via
        };
        for (i, profile) in self.profiles.iter().enumerate() {
            let mut access = NONE;
            for p in &profile.permissions {
                if p.table == table && p.column == column {
                    access = union(
                        access,
                        ColumnAccess {
                            read: p.read,
                            update: p.update,
                            create: p.create,
                        },
                    );
                }
            }
            if access == NONE {
                continue;
            }
            for team in through(&profile.members) {
                out.push((
                    ColumnSource::Profile {
                        profile: ProfileId::from_index(i),
                        team,
                    },
                    access,
                ));
            }
        }
        if let Some(r) = record {
            for share in &self.records[r.index()].field_shares {
                if share.column != column || !(share.read || share.update) {
                    continue;
                }
                for team in through(std::slice::from_ref(&share.principal)) {
                    out.push((
                        ColumnSource::FieldShare { team },
                        ColumnAccess {
                            read: share.read,
                            update: share.update,
                            create: false,
                        },
                    ));
                }
            }
        }
        out
    }

    /// Who can read or update a secured column of a table, and through what (D53): every
    /// enabled user with read or update from a profile (directly or through a team) or as
    /// System Administrator, in user order. Column shares are per record and not counted.
    /// `None` when the column is not secured (record access alone decides).
    ///
    /// # Errors
    /// `unknown_column`.
    pub fn column_holders(
        &self,
        table: TableId,
        column: &str,
    ) -> Result<Option<Vec<ColumnHolder>>, ModelError> {
        self.known_column(table, column)?;
        if !self.tables[table.index()].is_secured(column) {
            return Ok(None);
        }
        Ok(Some(
            self.user_ids()
                .filter_map(|user| {
                    let sources = self.column_sources(user, table, column, None);
                    let access = sources.iter().fold(NONE, |a, (_, b)| union(a, *b));
                    (access.read || access.update).then_some(ColumnHolder {
                        user,
                        access,
                        sources,
                    })
                })
                .collect(),
        ))
    }

    /// May the user read (`update` false) or update (`update` true) the column of the record,
    /// and why (D53): the record privilege (Read, or Write) and, for a secured column, the
    /// column permission from a profile, a column share or System Administrator.
    ///
    /// # Errors
    /// `unknown_column`.
    pub fn explain_column(
        &self,
        user: UserId,
        record: RecordId,
        column: &str,
        update: bool,
    ) -> Result<ColumnVerdict, ModelError> {
        let table = self.records[record.index()].table;
        self.known_column(table, column)?;
        let privilege = if update {
            Privilege::Write
        } else {
            Privilege::Read
        };
        let decision = self.explain(user, privilege, record);
        let secured = self.tables[table.index()].is_secured(column);
        let (access, sources) = if secured {
            let sources = self.column_sources(user, table, column, Some(record));
            (sources.iter().fold(NONE, |a, (_, b)| union(a, *b)), sources)
        } else {
            (
                ColumnAccess {
                    read: true,
                    update: true,
                    create: true,
                },
                Vec::new(),
            )
        };
        let column_ok = if update { access.update } else { access.read };
        Ok(ColumnVerdict {
            allowed: decision.allowed && column_ok,
            secured,
            column: column.to_owned(),
            update,
            record: decision,
            access,
            sources,
        })
    }

    /// One column source in words.
    #[must_use]
    pub fn describe_column_source(&self, source: ColumnSource) -> String {
        let via = |team: Option<TeamId>| match team {
            None => String::new(),
            Some(t) => format!(" through team `{}`", self.teams[t.index()].name),
        };
        match source {
            ColumnSource::SystemAdministrator(a) => format!(
                "holds role `{}`{} (System Administrator)",
                self.roles[a.role.index()].name,
                via(a.team)
            ),
            ColumnSource::Profile { profile, team } => format!(
                "field security profile `{}`{}",
                self.profiles[profile.index()].name,
                via(team)
            ),
            ColumnSource::FieldShare { team } => {
                format!("the column is shared on this record{}", via(team))
            }
        }
    }

    /// A column verdict as a readable tree.
    #[must_use]
    pub fn render_column_verdict(&self, v: &ColumnVerdict) -> String {
        let d = &v.record;
        let what = if v.update { "update" } else { "read" };
        let table = &self.tables[d.table.index()].name;
        let mut out = format!(
            "{}: user `{}` {} {what} column `{}` of record `{}` (`{table}`)",
            if v.allowed { "allow" } else { "deny" },
            self.users[d.user.index()].name,
            if v.allowed { "may" } else { "may not" },
            v.column,
            d.record.map_or("", |r| &*self.records[r.index()].key),
        );
        for line in self.render_decision(d).lines() {
            out.push_str("\n  ");
            out.push_str(line);
        }
        if !v.secured {
            out.push_str("\n  column: not secured; record access alone decides");
            return out;
        }
        let mut granted = false;
        for (source, access) in &v.sources {
            let gives = if v.update { access.update } else { access.read };
            granted |= gives;
            out.push_str(&format!(
                "\n  column {} {}: {}",
                if gives { "+" } else { "·" },
                if gives {
                    format!("gives {what}")
                } else {
                    format!("does not give {what}")
                },
                self.describe_column_source(*source)
            ));
        }
        if !granted {
            if self.users[d.user.index()].enabled {
                out.push_str(&format!(
                    "\n  column - no field security profile of the user or of the user's teams, no column share of this record and no System Administrator role gives {what} on `{table}.{}`",
                    v.column
                ));
            } else {
                out.push_str("\n  column - the user is disabled and is refused everything");
            }
        }
        out
    }
}
