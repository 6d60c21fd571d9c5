//! Decisions rendered for people: a short tree of every grant path, or of what is missing.

use crate::check::{Decision, Denial, GrantPath, HierarchyThrough};
use crate::derive::{Grant, Via};
use crate::organization::Organization;

impl Organization {
    fn describe_grant(&self, g: &Grant) -> String {
        let via = match g.via {
            Via::Direct => String::new(),
            Via::Team { team, team_only } => format!(
                " through team `{}`{}",
                self.teams[team.index()].name,
                if team_only {
                    " (team privileges only)"
                } else {
                    ""
                }
            ),
        };
        format!(
            "role `{}`{via} gives `{}` at `{}` from unit `{}`",
            self.roles[g.role.index()].name,
            g.privilege,
            g.depth,
            self.units.name(g.anchor)
        )
    }

    /// One line for a grant path.
    #[must_use]
    pub fn describe_path(&self, path: &GrantPath) -> String {
        let kind = path.kind().name();
        let text = match path {
            GrantPath::SystemAdministrator(a) => match a.team {
                None => format!("holds role `{}`", self.roles[a.role.index()].name),
                Some(t) => format!(
                    "holds role `{}` through team `{}`",
                    self.roles[a.role.index()].name,
                    self.teams[t.index()].name
                ),
            },
            GrantPath::Ownership { grant } => {
                format!("owns the record; {}", self.describe_grant(grant))
            }
            GrantPath::TeamOwnership { team, grant } => format!(
                "member of owning team `{}`; {}",
                self.teams[team.index()].name,
                self.describe_grant(grant)
            ),
            GrantPath::RoleDepth { grant } => self.describe_grant(grant),
            GrantPath::Share { mask } => {
                format!("shared with the user ({})", mask.dataverse_names())
            }
            GrantPath::TeamShare { team, mask } => {
                let t = &self.teams[team.index()];
                match t.record_team {
                    Some((_, template)) => format!(
                        "member of the record's access team from template `{}` ({})",
                        self.templates[template.index()].name,
                        mask.dataverse_names()
                    ),
                    None => format!("shared with team `{}` ({})", t.name, mask.dataverse_names()),
                }
            }
            GrantPath::OrganizationShare { mask } => {
                format!("shared with the organization ({})", mask.dataverse_names())
            }
            GrantPath::Inherited {
                ancestor,
                relationship,
                principal,
                as_owner,
                mask,
            } => format!(
                "{} {} parent record `{}` through relationship `{}` ({})",
                self.principal_name(*principal),
                if *as_owner { "owns" } else { "has a share of" },
                self.records[ancestor.index()].key,
                self.relationships[relationship.index()].name,
                mask.dataverse_names()
            ),
            GrantPath::Hierarchy {
                report,
                level,
                through,
            } => {
                let how = match through {
                    HierarchyThrough::Owner => "who owns the record".to_owned(),
                    HierarchyThrough::TeamOwner(t) => {
                        format!(
                            "whose team `{}` owns the record",
                            self.teams[t.index()].name
                        )
                    }
                    HierarchyThrough::Share(p) => {
                        format!(
                            "with whom the record is shared (as {})",
                            self.principal_name(*p)
                        )
                    }
                };
                format!(
                    "manages `{}` {how} ({} level{} down)",
                    self.users[report.index()].name,
                    level,
                    if *level == 1 { "" } else { "s" }
                )
            }
        };
        format!("{kind}: {text}")
    }

    /// When the user manages the record's owner within the hierarchy depth but the manager
    /// model's unit rule (D24) keeps the hierarchy from reaching the record, says so.
    fn hierarchy_blocked(&self, d: &Decision) -> Option<String> {
        let h = self.settings.hierarchy.as_ref()?;
        if h.model != crate::model::HierarchyModel::Manager
            || !h.managers_must_be_in_same_or_parent_business_unit
            || !self.hierarchy_applies(d.table)
        {
            return None;
        }
        let crate::ids::Owner::User(owner) = d.owner else {
            return None;
        };
        let mut cur = self.users[owner.index()].manager;
        let mut level = 1u8;
        while let Some(m) = cur {
            if level > h.depth {
                return None;
            }
            if m == d.user {
                let reached = self.derived.reports[d.user.index()]
                    .iter()
                    .any(|(r, _)| *r == owner);
                return (!reached).then(|| {
                    format!(
                        "\n  - hierarchy: `{}` manages `{}` ({level} level{} down), but in the manager model a manager reaches a report only from the report's unit (`{}`) or its parent unit",
                        self.users[d.user.index()].name,
                        self.users[owner.index()].name,
                        if level == 1 { "" } else { "s" },
                        self.units.name(self.users[owner.index()].business_unit)
                    )
                });
            }
            cur = self.users[m.index()].manager;
            level += 1;
        }
        None
    }

    /// A decision as a readable tree.
    #[must_use]
    pub fn render_decision(&self, d: &Decision) -> String {
        let subject = match d.record {
            Some(r) => format!("record `{}`", self.records[r.index()].key),
            None => format!("a new `{}` record", self.tables[d.table.index()].name),
        };
        let mut out = format!(
            "{}: user `{}` {} `{}` on {subject} (owner {}, unit `{}`)",
            if d.allowed { "allow" } else { "deny" },
            self.users[d.user.index()].name,
            if d.allowed { "has" } else { "lacks" },
            d.privilege,
            self.owner_name(d.owner),
            self.units.name(d.business_unit),
        );
        for p in &d.paths {
            out.push_str("\n  + ");
            out.push_str(&self.describe_path(p));
        }
        for cap in &d.licence_caps {
            out.push_str("\n  - ");
            out.push_str(&self.describe_licence_cap(d.user, d.table, d.privilege, cap));
        }
        match &d.denial {
            None => {}
            Some(Denial::UserDisabled) => {
                out.push_str("\n  - the user is disabled and is refused everything")
            }
            Some(Denial::RecordDeleted) => out.push_str("\n  - the record was deleted"),
            Some(Denial::NoPrivilege) => out.push_str(&format!(
                "\n  - no role of the user or of the user's teams gives `{}` on `{}`{}",
                d.privilege,
                self.tables[d.table.index()].name,
                if d.licence_caps.is_empty() {
                    ""
                } else {
                    " within the user's licences"
                }
            )),
            Some(Denial::NoAccessPath { shortfalls }) => {
                for s in shortfalls {
                    out.push_str(&format!(
                        "\n  - {}, but unit `{}` needs `{}`",
                        self.describe_grant(&s.grant),
                        self.units.name(d.business_unit),
                        s.needed
                    ));
                }
                if let Some(note) = self.hierarchy_blocked(d) {
                    out.push_str(&note);
                }
                out.push_str("\n  - no ownership, share, inherited share or hierarchy path reaches the record");
            }
        }
        if let Some(remedy) = &d.remedy {
            out.push_str(&self.describe_remedy(d, remedy));
        }
        out
    }

    /// The line naming the roles that would grant a denied privilege (D52).
    fn describe_remedy(&self, d: &Decision, remedy: &crate::check::RoleRemedy) -> String {
        let table = &self.tables[d.table.index()].name;
        if remedy.roles.is_empty() {
            return format!(
                "\n  - no role usable in unit `{}` gives `{}` on `{table}` at `{}` or deeper (only System Administrator would)",
                self.units.name(self.users[d.user.index()].business_unit),
                d.privilege,
                remedy.needed
            );
        }
        let names: Vec<String> = remedy
            .roles
            .iter()
            .map(|r| format!("`{}`", self.roles[r.index()].name))
            .collect();
        format!(
            "\n  - would be granted by role {} (`{}` on `{table}` at `{}` or deeper)",
            names.join(", "),
            d.privilege,
            remedy.needed
        )
    }
}
