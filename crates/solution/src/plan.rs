//! Solution roles against an organisation: the one batch of operations and its report.

use std::collections::{BTreeMap, BTreeSet};

use strata_engine::privilege_names::{PrivilegeName, TableNameKind};
use strata_engine::{Depth, GuidKind, Inheritance, Organization, Privilege, RoleId};
use strata_ops::Operation;

use crate::read::{Level, SolutionRole};

/// How to import.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportOptions {
    /// Create the tables the roles name that the organisation lacks (user-owned), when they are
    /// standard Dataverse tables or custom tables (`prefix_name`).
    pub create_tables: bool,
}

/// What happens to one role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoleAction {
    /// A new role.
    Create,
    /// An existing role is updated in place (its grid and miscellaneous privileges replaced);
    /// `from` is its current name when the import renames it (matched by GUID).
    Update {
        /// How it was matched: `guid` or `name`.
        matched_by: &'static str,
        /// The current name, when the import renames the role.
        renamed_from: Option<String>,
    },
    /// The existing role already has exactly these privileges.
    Unchanged {
        /// How it was matched: `guid` or `name`.
        matched_by: &'static str,
    },
    /// Not imported: the reason.
    Skip(String),
}

impl RoleAction {
    /// `create`, `update`, `unchanged` or `skip`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            RoleAction::Create => "create",
            RoleAction::Update { .. } => "update",
            RoleAction::Unchanged { .. } => "unchanged",
            RoleAction::Skip(_) => "skip",
        }
    }
}

/// A privilege left out of the import.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The privilege name as written.
    pub privilege: String,
    /// The level as written.
    pub level: Level,
    /// Why.
    pub reason: String,
}

/// One role's part of the import.
#[derive(Clone, Debug)]
pub struct RolePlan {
    /// The role's name in the file.
    pub name: String,
    /// The file it came from.
    pub file: String,
    /// What happens to it.
    pub action: RoleAction,
    /// The existing role it was matched with.
    pub existing: Option<RoleId>,
    /// Privileges in the file by level ([`Level::ALL`] order).
    pub by_level: [usize; 4],
    /// Table privileges imported.
    pub table_privileges: usize,
    /// Miscellaneous privileges imported.
    pub misc_privileges: usize,
    /// Privileges left out.
    pub skipped: Vec<Skipped>,
    /// Notes (`isinherited` that an update does not change, a miscellaneous privilege's level).
    pub notes: Vec<String>,
}

/// The import: the operations of one batch, and its report.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Per role, in file order.
    pub roles: Vec<RolePlan>,
    /// Tables the batch creates.
    pub tables_created: Vec<String>,
    /// Tables the roles name that the organisation lacks and the batch does not create.
    pub tables_unknown: Vec<String>,
    /// The batch.
    pub operations: Vec<Operation>,
}

type Grid = BTreeMap<String, BTreeMap<String, String>>;

/// The table of this logical name in the organisation (exact, else case-insensitive).
fn find_table(org: &Organization, name: &str) -> Option<String> {
    if org.table_id(name).is_some() {
        return Some(name.to_owned());
    }
    org.table_ids()
        .map(|t| &org.table(t).name)
        .find(|n| n.eq_ignore_ascii_case(name))
        .cloned()
}

/// The organisation's table a table privilege names: the catalogue's logical name (`prvReadNote`
/// → `annotation`), else the name as written (`prvReadnote` → a Strata table `note`).
fn resolve_table(
    org: &Organization,
    name: &str,
    privilege: Privilege,
    table: &str,
) -> Option<String> {
    find_table(org, table).or_else(|| {
        let written = name.get(3 + privilege.verb().len()..)?;
        find_table(org, written)
    })
}

/// The role an imported role updates: by GUID (Strata's derived role GUIDs, which `export`
/// writes), then by name.
fn match_role(org: &Organization, role: &SolutionRole) -> Option<(RoleId, &'static str)> {
    if let Some((GuidKind::Role, index)) = role.guid.and_then(|g| g.decode())
        && let Some(id) = org.role_ids().find(|r| r.index() == index)
        && !org.role(id).deleted
    {
        return Some((id, "guid"));
    }
    org.role_id(&role.name).map(|id| (id, "name"))
}

fn current_grid(org: &Organization, id: RoleId) -> (Grid, Vec<String>) {
    let role = org.role(id);
    let mut grid = Grid::new();
    for (t, depths) in &role.privileges {
        for p in Privilege::ALL {
            let d = depths[p.index()];
            if d != Depth::None {
                grid.entry(org.table(*t).name.clone())
                    .or_default()
                    .insert(p.name().to_owned(), d.name().to_owned());
            }
        }
    }
    let mut misc = role.misc.clone();
    misc.sort();
    misc.dedup();
    (grid, misc)
}

/// Plans the import of `roles` into `org`: which roles are created, updated in place or left
/// unchanged, which tables are created, which privileges are skipped, and the operations of one
/// batch that does it. Pure: the organisation is only read.
#[must_use]
pub fn plan(org: &Organization, roles: &[SolutionRole], options: ImportOptions) -> Plan {
    // Tables named by the roles that the organisation lacks, in first-seen order.
    // Miscellaneous privileges the organisation's roles already hold that the catalogue does
    // not list (`prvCreateQuickCampaign`): a name that would read as an uncatalogued table is
    // one of them when it matches (D60), so that what `export` writes comes back.
    let known_misc: Vec<&String> = org
        .role_ids()
        .flat_map(|r| org.role(r).misc.iter())
        .collect();
    let mut missing: BTreeMap<String, TableNameKind> = BTreeMap::new();
    for role in roles {
        for p in &role.privileges {
            if let PrivilegeName::Table {
                privilege,
                table,
                kind,
            } = &p.meaning
                && resolve_table(org, &p.name, *privilege, table).is_none()
                && !(*kind == TableNameKind::Uncatalogued
                    && known_misc.iter().any(|m| m.eq_ignore_ascii_case(&p.name)))
            {
                missing.entry(table.clone()).or_insert(*kind);
            }
        }
    }
    let mut operations = Vec::new();
    let mut tables_created = Vec::new();
    let mut tables_unknown = Vec::new();
    let mut created: BTreeSet<String> = BTreeSet::new();
    for (table, kind) in &missing {
        if options.create_tables && *kind != TableNameKind::Uncatalogued {
            operations.push(Operation::AddTable {
                name: table.clone(),
                ownership: Some("user_or_team".to_owned()),
                columns: Vec::new(),
                entity_set: None,
            });
            tables_created.push(table.clone());
            created.insert(table.clone());
        } else {
            tables_unknown.push(table.clone());
        }
    }
    let mut plans = Vec::new();
    let mut role_ops = Vec::new();
    for role in roles {
        let mut grid = Grid::new();
        let mut misc = BTreeSet::new();
        let mut skipped = Vec::new();
        let mut notes = Vec::new();
        let (mut table_privileges, mut misc_privileges) = (0, 0);
        for p in &role.privileges {
            match &p.meaning {
                PrivilegeName::Misc(m) => {
                    misc.insert((*m).to_owned());
                    misc_privileges += 1;
                    if p.level != Level::Global {
                        notes.push(format!(
                            "{} at {}: miscellaneous privileges are on or off (D62)",
                            p.name,
                            p.level.name()
                        ));
                    }
                }
                PrivilegeName::Table {
                    privilege,
                    table,
                    kind,
                } => {
                    let name = match resolve_table(org, &p.name, *privilege, table) {
                        Some(t) => t,
                        None if created.contains(table) => table.clone(),
                        None if *kind == TableNameKind::Uncatalogued
                            && let Some(m) =
                                known_misc.iter().find(|m| m.eq_ignore_ascii_case(&p.name)) =>
                        {
                            misc.insert((*m).clone());
                            misc_privileges += 1;
                            continue;
                        }
                        None => {
                            let reason = if *kind == TableNameKind::Uncatalogued {
                                format!(
                                    "no table `{table}` in the organisation, and not a standard or custom (prefix_name) table: never created (D60)"
                                )
                            } else {
                                format!(
                                    "no table `{table}` in the organisation (--create-tables creates it)"
                                )
                            };
                            skipped.push(Skipped {
                                privilege: p.name.clone(),
                                level: p.level,
                                reason,
                            });
                            continue;
                        }
                    };
                    let cell = grid.entry(name).or_default();
                    let depth = p.level.depth();
                    let slot = cell
                        .entry(privilege.name().to_owned())
                        .or_insert_with(|| depth.name().to_owned());
                    if Depth::from_name(slot).is_some_and(|d| d < depth) {
                        depth.name().clone_into(slot);
                    }
                    table_privileges += 1;
                }
            }
        }
        let misc: Vec<String> = misc.into_iter().collect();
        let inheritance = role.inherited.map(|i| {
            if i {
                Inheritance::UserAndTeam
            } else {
                Inheritance::TeamOnly
            }
        });
        let matched = match_role(org, role);
        let action = match matched {
            None => {
                role_ops.push(Operation::AddRole {
                    name: role.name.clone(),
                    business_unit: None,
                    inheritance: inheritance.map(|i| inheritance_name(i).to_owned()),
                    system_administrator: false,
                    privileges: grid,
                    misc,
                });
                RoleAction::Create
            }
            Some((id, matched_by)) => {
                let existing = org.role(id);
                if existing.system_administrator {
                    RoleAction::Skip(format!(
                        "`{}` is the System Administrator role: it cannot be edited (D10)",
                        existing.name
                    ))
                } else {
                    if let Some(i) = inheritance
                        && i != existing.inheritance
                    {
                        notes.push(format!(
                            "isinherited differs ({}); an update keeps the role's member privilege inheritance (D61)",
                            inheritance_name(i)
                        ));
                    }
                    let renamed_from = (existing.name != role.name).then(|| existing.name.clone());
                    let (current, current_misc) = current_grid(org, id);
                    if renamed_from.is_none() && current == grid && current_misc == misc {
                        RoleAction::Unchanged { matched_by }
                    } else {
                        if let Some(old) = &renamed_from {
                            role_ops.push(Operation::RenameRole {
                                role: old.clone(),
                                name: role.name.clone(),
                            });
                        }
                        role_ops.push(Operation::SetRolePrivileges {
                            role: role.name.clone(),
                            privileges: grid,
                            misc,
                        });
                        RoleAction::Update {
                            matched_by,
                            renamed_from,
                        }
                    }
                }
            }
        };
        plans.push(RolePlan {
            name: role.name.clone(),
            file: role.file.clone(),
            action,
            existing: matched.map(|(id, _)| id),
            by_level: role.count_by_level(),
            table_privileges,
            misc_privileges,
            skipped,
            notes,
        });
    }
    operations.extend(role_ops);
    Plan {
        roles: plans,
        tables_created,
        tables_unknown,
        operations,
    }
}

fn inheritance_name(i: Inheritance) -> &'static str {
    match i {
        Inheritance::UserAndTeam => "user_and_team",
        Inheritance::TeamOnly => "team_only",
    }
}

impl Plan {
    /// The report as JSON, shared by the CLI and the server: per role its file, action,
    /// privileges by level (`basic`, `local`, `deep`, `global`), table and miscellaneous
    /// privileges imported, skipped privileges and notes; the tables created and unknown; the
    /// number of operations.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let roles: Vec<serde_json::Value> = self
            .roles
            .iter()
            .map(|r| {
                let mut v = json!({
                    "name": r.name,
                    "file": r.file,
                    "action": r.action.name(),
                    "levels": {
                        "basic": r.by_level[0],
                        "local": r.by_level[1],
                        "deep": r.by_level[2],
                        "global": r.by_level[3],
                    },
                    "table_privileges": r.table_privileges,
                    "misc_privileges": r.misc_privileges,
                    "skipped": r.skipped.iter().map(|s| json!({
                        "privilege": s.privilege,
                        "level": s.level.name(),
                        "reason": s.reason,
                    })).collect::<Vec<_>>(),
                    "notes": r.notes,
                });
                match &r.action {
                    RoleAction::Update {
                        matched_by,
                        renamed_from,
                    } => {
                        v["matched_by"] = json!(matched_by);
                        if let Some(from) = renamed_from {
                            v["renamed_from"] = json!(from);
                        }
                    }
                    RoleAction::Unchanged { matched_by } => v["matched_by"] = json!(matched_by),
                    RoleAction::Skip(reason) => v["reason"] = json!(reason),
                    RoleAction::Create => {}
                }
                v
            })
            .collect();
        json!({
            "roles": roles,
            "tables_created": self.tables_created,
            "tables_unknown": self.tables_unknown,
            "operations": self.operations.len(),
        })
    }
}
