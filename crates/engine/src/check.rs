//! The access decision: `check` (fast, allocation-free), `explain` (every grant path, or what
//! is missing) and effective rights — the Dataverse algorithm of reference section 0.
//!
//! A decision is a privilege check (does any role give the privilege at all?) followed by an
//! access check: ownership, role depth, explicit share, inherited share, hierarchy. All paths
//! are evaluated as a union; there is no deny rule.

use std::ops::ControlFlow;

use crate::derive::{AdminSource, Grant, Via};
use crate::ids::{
    BusinessUnitId, Owner, Principal, RecordId, RelationshipId, RoleId, TableId, TeamId, UserId,
};
use crate::limits::MAX_PARENT_CHAIN;
use crate::model::{CascadeType, RecordState};
use crate::organization::Organization;
use crate::privilege::{AccessMask, Depth, Privilege};

/// The kinds of grant path, with the names the scenario files use in `reason`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum GrantKind {
    /// The user owns the record.
    Ownership,
    /// A team the user belongs to owns the record.
    TeamOwnership,
    /// A role's depth covers the record's unit.
    RoleDepth,
    /// Shared with the user.
    Share,
    /// Shared with a team the user belongs to (record access teams included).
    TeamShare,
    /// Shared with the organisation.
    OrganizationShare,
    /// Inherited from a parent record (share cascade or reparent).
    Inherited,
    /// Hierarchy security.
    Hierarchy,
    /// System Administrator.
    SystemAdministrator,
}

impl GrantKind {
    /// Every kind.
    pub const ALL: [GrantKind; 9] = [
        GrantKind::Ownership,
        GrantKind::TeamOwnership,
        GrantKind::RoleDepth,
        GrantKind::Share,
        GrantKind::TeamShare,
        GrantKind::OrganizationShare,
        GrantKind::Inherited,
        GrantKind::Hierarchy,
        GrantKind::SystemAdministrator,
    ];

    /// The scenario-file name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            GrantKind::Ownership => "ownership",
            GrantKind::TeamOwnership => "team_ownership",
            GrantKind::RoleDepth => "role_depth",
            GrantKind::Share => "share",
            GrantKind::TeamShare => "team_share",
            GrantKind::OrganizationShare => "organization_share",
            GrantKind::Inherited => "inherited",
            GrantKind::Hierarchy => "hierarchy",
            GrantKind::SystemAdministrator => "system_administrator",
        }
    }

    /// Parses the scenario-file name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<GrantKind> {
        GrantKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What a hierarchy path goes through on the report's side.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HierarchyThrough {
    /// The report owns the record.
    Owner,
    /// A team of the report owns the record.
    TeamOwner(TeamId),
    /// The record is shared with the report or a team of the report.
    Share(Principal),
}

/// One reason a user has access.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum GrantPath {
    /// The user is a System Administrator (D10).
    SystemAdministrator(AdminSource),
    /// The user owns the record; `grant` is the role privilege that is used.
    Ownership {
        /// The privilege used.
        grant: Grant,
    },
    /// A team of the user owns the record.
    TeamOwnership {
        /// The owning team.
        team: TeamId,
        /// The privilege used.
        grant: Grant,
    },
    /// The grant's depth, measured from its unit, covers the record's unit.
    RoleDepth {
        /// The privilege used.
        grant: Grant,
    },
    /// An explicit share with the user.
    Share {
        /// The shared rights.
        mask: AccessMask,
    },
    /// An explicit share with a team of the user (a record access team when the team has a template).
    TeamShare {
        /// The team.
        team: TeamId,
        /// The shared rights.
        mask: AccessMask,
    },
    /// An explicit share with the organisation.
    OrganizationShare {
        /// The shared rights.
        mask: AccessMask,
    },
    /// Access inherited from a parent (or a parent's parent) record (D8, D14).
    Inherited {
        /// The record whose owner or share gives access.
        ancestor: RecordId,
        /// The relationship of the link to `ancestor`.
        relationship: RelationshipId,
        /// The principal (the user, a team of the user, or the organisation).
        principal: Principal,
        /// True when the principal owns `ancestor`; false when `ancestor` is shared with it.
        as_owner: bool,
        /// The inherited rights.
        mask: AccessMask,
    },
    /// Hierarchy security over a report (D3).
    Hierarchy {
        /// The report whose record it is.
        report: UserId,
        /// 1 for a direct report.
        level: u8,
        /// How the report holds the record.
        through: HierarchyThrough,
    },
}

impl GrantPath {
    /// The kind of this path.
    #[must_use]
    pub fn kind(&self) -> GrantKind {
        match self {
            GrantPath::SystemAdministrator(_) => GrantKind::SystemAdministrator,
            GrantPath::Ownership { .. } => GrantKind::Ownership,
            GrantPath::TeamOwnership { .. } => GrantKind::TeamOwnership,
            GrantPath::RoleDepth { .. } => GrantKind::RoleDepth,
            GrantPath::Share { .. } => GrantKind::Share,
            GrantPath::TeamShare { .. } => GrantKind::TeamShare,
            GrantPath::OrganizationShare { .. } => GrantKind::OrganizationShare,
            GrantPath::Inherited { .. } => GrantKind::Inherited,
            GrantPath::Hierarchy { .. } => GrantKind::Hierarchy,
        }
    }
}

/// A role privilege that is held but does not reach the record, and the depth that would.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Shortfall {
    /// The held grant.
    pub grant: Grant,
    /// The smallest depth that would cover the record from the grant's unit.
    pub needed: Depth,
}

/// Why access is denied.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Denial {
    /// The user is disabled and is refused everything.
    UserDisabled,
    /// The record was deleted.
    RecordDeleted,
    /// No role (direct or through a team) gives the privilege on the table.
    NoPrivilege,
    /// The privilege is held, but no depth, share, inheritance or hierarchy reaches the record.
    NoAccessPath {
        /// Held grants whose depth is too small, with the depth that would be needed.
        shortfalls: Vec<Shortfall>,
    },
}

/// A full decision: allowed or not, every grant path, the privileges held, and what is missing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Decision {
    /// The answer.
    pub allowed: bool,
    /// Who asked.
    pub user: UserId,
    /// For which privilege.
    pub privilege: Privilege,
    /// On which table.
    pub table: TableId,
    /// On which record (`None` for a create check).
    pub record: Option<RecordId>,
    /// The record's (or the new record's) owner.
    pub owner: Owner,
    /// The record's (or the new record's) owning unit.
    pub business_unit: BusinessUnitId,
    /// Every path that grants access.
    pub paths: Vec<GrantPath>,
    /// Every grant of this privilege on this table the user holds.
    pub held: Vec<Grant>,
    /// For a deny, what is missing.
    pub denial: Option<Denial>,
    /// For a deny, the roles whose privilege the user's licences cap (D49).
    pub licence_caps: Vec<crate::licences::LicenceCap>,
    /// For a deny by privilege or access path, the roles that would grant it (D52).
    pub remedy: Option<RoleRemedy>,
}

/// The roles that would grant a denied privilege on the record if assigned to the user
/// directly (D52).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RoleRemedy {
    /// The depth the record needs, measured from the user's unit.
    pub needed: Depth,
    /// The roles usable in the user's unit that give the privilege at least at `needed` (not
    /// the System Administrator role, which always would).
    pub roles: Vec<RoleId>,
}

impl Decision {
    /// Whether some path of this kind grants access.
    #[must_use]
    pub fn has(&self, kind: GrantKind) -> bool {
        self.paths.iter().any(|p| p.kind() == kind)
    }
}

/// The security facts a decision needs: an existing record, or a record about to be created.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub(crate) table: TableId,
    pub(crate) owner: Owner,
    pub(crate) business_unit: BusinessUnitId,
    pub(crate) record: Option<RecordId>,
}

pub(crate) trait Sink {
    fn found(&mut self, path: impl FnOnce() -> GrantPath) -> ControlFlow<()>;
}

/// Stops at the first path and records nothing: the allocation-free check.
struct FirstPath;

impl Sink for FirstPath {
    fn found(&mut self, _path: impl FnOnce() -> GrantPath) -> ControlFlow<()> {
        ControlFlow::Break(())
    }
}

/// Collects every path: the explanation.
struct AllPaths(Vec<GrantPath>);

impl Sink for AllPaths {
    fn found(&mut self, path: impl FnOnce() -> GrantPath) -> ControlFlow<()> {
        let p = path();
        if !self.0.contains(&p) {
            self.0.push(p);
        }
        ControlFlow::Continue(())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Verdict {
    Allowed,
    Disabled,
    Deleted,
    NoPrivilege,
    NoPath,
}

macro_rules! report {
    ($sink:expr, $found:ident, $path:expr) => {
        $found = true;
        if $sink.found(|| $path).is_break() {
            return Verdict::Allowed;
        }
    };
}

/// Whether the grants let the user act for a principal that holds access to the record.
struct Acting<'a> {
    org: &'a Organization,
    user: UserId,
    grants: &'a [Grant],
    personal: bool,
}

impl Acting<'_> {
    fn for_principal(&self, principal: Principal) -> bool {
        match principal {
            Principal::User(u) => u == self.user && self.personal,
            Principal::Organization => self.personal,
            Principal::Team(t) => {
                self.org.is_member(self.user, t)
                    && (self.personal
                        || self.grants.iter().any(|g| {
                            g.via
                                == Via::Team {
                                    team: t,
                                    team_only: true,
                                }
                        }))
            }
        }
    }
}

impl Organization {
    pub(crate) fn target_of(&self, record: RecordId) -> Target {
        let r = &self.records[record.index()];
        Target {
            table: r.table,
            owner: r.owner,
            business_unit: r.business_unit,
            record: Some(record),
        }
    }

    /// Whether a grant's depth covers a record's unit, measured from the grant's unit.
    fn depth_covers(&self, grant: &Grant, unit: BusinessUnitId) -> bool {
        match grant.depth {
            Depth::None | Depth::User => false,
            Depth::BusinessUnit => grant.anchor == unit,
            Depth::ParentChild => self.units.contains(grant.anchor, unit),
            Depth::Organization => true,
        }
    }

    pub(crate) fn evaluate<S: Sink>(
        &self,
        user: UserId,
        privilege: Privilege,
        target: Target,
        sink: &mut S,
    ) -> Verdict {
        let u = &self.users[user.index()];
        if !u.enabled {
            return Verdict::Disabled;
        }
        if let Some(record) = target.record
            && !self.records[record.index()].alive
        {
            return Verdict::Deleted;
        }
        if let Some(admin) = self.derived.admin[user.index()] {
            let _ = sink.found(|| GrantPath::SystemAdministrator(admin));
            return Verdict::Allowed;
        }
        let grants = self.grants(user, target.table, privilege);
        if grants.is_empty() {
            return Verdict::NoPrivilege;
        }
        let mut found = false;
        // Ownership and role depth.
        for g in grants {
            match target.owner {
                Owner::User(o) if o == user && g.is_personal() => {
                    report!(sink, found, GrantPath::Ownership { grant: *g });
                }
                Owner::Team(t)
                    if self.is_member(user, t)
                        && (g.is_personal()
                            || g.via
                                == Via::Team {
                                    team: t,
                                    team_only: true,
                                }) =>
                {
                    report!(sink, found, GrantPath::TeamOwnership { team: t, grant: *g });
                }
                _ => {}
            }
            if self.depth_covers(g, target.business_unit) {
                report!(sink, found, GrantPath::RoleDepth { grant: *g });
            }
        }
        let Some(record) = target.record else {
            return if found {
                Verdict::Allowed
            } else {
                Verdict::NoPath
            };
        };
        let acting = Acting {
            org: self,
            user,
            grants,
            personal: grants.iter().any(Grant::is_personal),
        };
        let rec = &self.records[record.index()];
        // Explicit shares (record access teams are team shares).
        for s in &rec.shares {
            if s.mask.contains(privilege) && acting.for_principal(s.principal) {
                let mask = s.mask;
                match s.principal {
                    Principal::User(_) => {
                        report!(sink, found, GrantPath::Share { mask });
                    }
                    Principal::Team(team) => {
                        report!(sink, found, GrantPath::TeamShare { team, mask });
                    }
                    Principal::Organization => {
                        report!(sink, found, GrantPath::OrganizationShare { mask });
                    }
                }
            }
        }
        // Inherited access through parental lookups.
        if self
            .inherited(record, privilege, &acting, sink, &mut found)
            .is_break()
        {
            return Verdict::Allowed;
        }
        // Hierarchy security.
        if acting.personal
            && self.hierarchy_applies(target.table)
            && AccessMask::HIERARCHY_DIRECT.contains(privilege)
        {
            for (report_user, level) in &self.derived.reports[user.index()] {
                let rights = if *level == 1 {
                    AccessMask::HIERARCHY_DIRECT
                } else {
                    AccessMask::HIERARCHY_INDIRECT
                };
                if !rights.contains(privilege) {
                    continue;
                }
                let (report, level) = (*report_user, *level);
                match rec.owner {
                    Owner::User(o) if o == report => {
                        report!(
                            sink,
                            found,
                            GrantPath::Hierarchy {
                                report,
                                level,
                                through: HierarchyThrough::Owner
                            }
                        );
                    }
                    Owner::Team(t) if self.is_member(report, t) => {
                        report!(
                            sink,
                            found,
                            GrantPath::Hierarchy {
                                report,
                                level,
                                through: HierarchyThrough::TeamOwner(t)
                            }
                        );
                    }
                    _ => {}
                }
                for s in &rec.shares {
                    let holds = match s.principal {
                        Principal::User(x) => x == report,
                        Principal::Team(t) => self.is_member(report, t),
                        Principal::Organization => false,
                    };
                    if holds && s.mask.contains(privilege) {
                        let principal = s.principal;
                        report!(
                            sink,
                            found,
                            GrantPath::Hierarchy {
                                report,
                                level,
                                through: HierarchyThrough::Share(principal)
                            }
                        );
                    }
                }
            }
        }
        if found {
            Verdict::Allowed
        } else {
            Verdict::NoPath
        }
    }

    /// Inherited access through parental lookups: every principal the walk finds whose rights
    /// include `privilege` and for whom the user acts.
    fn inherited<S: Sink>(
        &self,
        child: RecordId,
        privilege: Privilege,
        acting: &Acting<'_>,
        sink: &mut S,
        found: &mut bool,
    ) -> ControlFlow<()> {
        if !AccessMask::INHERITED.contains(privilege) {
            return ControlFlow::Continue(());
        }
        self.walk_inherited(
            child,
            0,
            &mut |ancestor, relationship, principal, as_owner, mask| {
                if mask.contains(privilege) && acting.for_principal(principal) {
                    *found = true;
                    sink.found(|| GrantPath::Inherited {
                        ancestor,
                        relationship,
                        principal,
                        as_owner,
                        mask,
                    })
                } else {
                    ControlFlow::Continue(())
                }
            },
        )
    }

    /// Walks up the parental lookups of `child`: through a link whose reparent cascade applies,
    /// the parent's owner passes on every right but Create and the parent's sharees their
    /// rights; through a link whose share cascade applies, the parent's sharees do. Inherited
    /// rights never include Create (D8). Calls `visit(ancestor, relationship, principal,
    /// as_owner, rights)` for each principal found, up to `MAX_PARENT_CHAIN` links.
    pub(crate) fn walk_inherited(
        &self,
        child: RecordId,
        depth: usize,
        visit: &mut impl FnMut(RecordId, RelationshipId, Principal, bool, AccessMask) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        if depth >= MAX_PARENT_CHAIN {
            return ControlFlow::Continue(());
        }
        let child_rec = &self.records[child.index()];
        for (relationship, parent) in &child_rec.lookups {
            let cascade = self.relationships[relationship.index()].cascade;
            let parent_rec = &self.records[parent.index()];
            let applies = |c: CascadeType| match c {
                CascadeType::Cascade => true,
                CascadeType::Active => child_rec.state == RecordState::Active,
                CascadeType::UserOwned => child_rec.owner == parent_rec.owner,
                CascadeType::None => false,
            };
            let through_reparent = applies(cascade.reparent);
            let through_share = through_reparent || applies(cascade.share);
            if !through_share {
                continue;
            }
            if through_reparent && let Some(principal) = parent_rec.owner.principal() {
                visit(
                    *parent,
                    *relationship,
                    principal,
                    true,
                    AccessMask::INHERITED,
                )?;
            }
            for s in &parent_rec.shares {
                let mask = s.mask.intersection(AccessMask::INHERITED);
                if !mask.is_empty() {
                    visit(*parent, *relationship, s.principal, false, mask)?;
                }
            }
            self.walk_inherited(*parent, depth + 1, visit)?;
        }
        ControlFlow::Continue(())
    }

    /// Whether the user holds `privilege` on the record. Allocation-free.
    #[must_use]
    pub fn check(&self, user: UserId, privilege: Privilege, record: RecordId) -> bool {
        self.evaluate(user, privilege, self.target_of(record), &mut FirstPath) == Verdict::Allowed
    }

    /// Whether the user may create a record of `table` owned by `owner` in `business_unit`
    /// (default: the owner's unit) (D1).
    #[must_use]
    pub fn check_create(
        &self,
        user: UserId,
        table: TableId,
        owner: Owner,
        business_unit: Option<BusinessUnitId>,
    ) -> bool {
        let target = Target {
            table,
            owner,
            business_unit: business_unit.unwrap_or_else(|| self.owner_unit(owner)),
            record: None,
        };
        self.evaluate(user, Privilege::Create, target, &mut FirstPath) == Verdict::Allowed
    }

    /// The full decision for `privilege` on a record.
    #[must_use]
    pub fn explain(&self, user: UserId, privilege: Privilege, record: RecordId) -> Decision {
        self.decide(user, privilege, self.target_of(record))
    }

    /// The full decision for creating a record of `table` owned by `owner` (D1).
    #[must_use]
    pub fn explain_create(
        &self,
        user: UserId,
        table: TableId,
        owner: Owner,
        business_unit: Option<BusinessUnitId>,
    ) -> Decision {
        let target = Target {
            table,
            owner,
            business_unit: business_unit.unwrap_or_else(|| self.owner_unit(owner)),
            record: None,
        };
        self.decide(user, Privilege::Create, target)
    }

    /// The full decision for `privilege` on an unowned record of `table` in `unit`: the
    /// business-owned system tables (`team`, `businessunit`, `role`), reached by depth only.
    #[must_use]
    pub fn explain_on_unit(
        &self,
        user: UserId,
        table: TableId,
        privilege: Privilege,
        unit: BusinessUnitId,
    ) -> Decision {
        let target = Target {
            table,
            owner: Owner::None,
            business_unit: unit,
            record: None,
        };
        self.decide(user, privilege, target)
    }

    pub(crate) fn decide(&self, user: UserId, privilege: Privilege, target: Target) -> Decision {
        let mut sink = AllPaths(Vec::new());
        let verdict = self.evaluate(user, privilege, target, &mut sink);
        let held = self.grants(user, target.table, privilege).to_vec();
        let denial = match verdict {
            Verdict::Allowed => None,
            Verdict::Disabled => Some(Denial::UserDisabled),
            Verdict::Deleted => Some(Denial::RecordDeleted),
            Verdict::NoPrivilege => Some(Denial::NoPrivilege),
            Verdict::NoPath => Some(Denial::NoAccessPath {
                shortfalls: held
                    .iter()
                    .filter(|g| g.depth < Depth::Organization)
                    .map(|g| Shortfall {
                        grant: *g,
                        needed: self.needed_depth(g, target.business_unit),
                    })
                    .collect(),
            }),
        };
        Decision {
            allowed: verdict == Verdict::Allowed,
            user,
            privilege,
            table: target.table,
            record: target.record,
            owner: target.owner,
            business_unit: target.business_unit,
            remedy: match verdict {
                Verdict::NoPrivilege | Verdict::NoPath => {
                    Some(self.remedy(user, privilege, target))
                }
                Verdict::Allowed | Verdict::Disabled | Verdict::Deleted => None,
            },
            paths: sink.0,
            held,
            licence_caps: if denial.is_some() {
                self.licence_caps(user, target.table, privilege)
            } else {
                Vec::new()
            },
            denial,
        }
    }

    /// The depth a role assigned to the user would need to reach the target, and the roles
    /// that give it (D52).
    fn remedy(&self, user: UserId, privilege: Privilege, target: Target) -> RoleRemedy {
        let unit = self.users[user.index()].business_unit;
        let own = match target.owner {
            Owner::User(u) => u == user,
            Owner::Team(t) => self.is_member(user, t),
            Owner::None => false,
        };
        let needed = if self.tables[target.table.index()].ownership
            == crate::model::Ownership::Organization
        {
            Depth::Organization
        } else if own {
            Depth::User
        } else if unit == target.business_unit {
            Depth::BusinessUnit
        } else if self.units.contains(unit, target.business_unit) {
            Depth::ParentChild
        } else {
            Depth::Organization
        };
        RoleRemedy {
            needed,
            roles: self.roles_granting(user, target.table, privilege, needed),
        }
    }

    fn needed_depth(&self, grant: &Grant, unit: BusinessUnitId) -> Depth {
        if grant.anchor == unit {
            Depth::BusinessUnit
        } else if self.units.contains(grant.anchor, unit) {
            Depth::ParentChild
        } else {
            Depth::Organization
        }
    }

    /// The user's effective rights on a record, as `RetrievePrincipalAccess` returns them
    /// (never Create).
    #[must_use]
    pub fn access(&self, user: UserId, record: RecordId) -> AccessMask {
        let target = self.target_of(record);
        Privilege::RECORD_RIGHTS
            .into_iter()
            .filter(|p| self.evaluate(user, *p, target, &mut FirstPath) == Verdict::Allowed)
            .fold(AccessMask::NONE, AccessMask::with)
    }
}
