//! The scenario file format, version 1 (`shared/scenarios/FORMAT.md`), as plain data, and its
//! parser: unknown keys, wrong types and unknown names are load errors that name the line.

use std::collections::HashSet;

use strata_engine::{AccessMask, Depth, GrantKind, Privilege, Value};
use strata_ops::Operation;

use crate::yaml::{Node, NodeKind};

/// A load error: the line and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl LoadError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> Self {
        LoadError {
            line,
            message: message.into(),
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, LoadError>;

/// A principal as written: a user, `team:NAME` or `organization`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalRef {
    /// A user's name.
    User(String),
    /// A team's name.
    Team(String),
    /// The organisation.
    Organization,
}

impl std::fmt::Display for PrincipalRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrincipalRef::User(u) => f.write_str(u),
            PrincipalRef::Team(t) => write!(f, "team:{t}"),
            PrincipalRef::Organization => f.write_str("organization"),
        }
    }
}

/// `settings.hierarchy`.
#[derive(Clone, Debug)]
pub struct HierarchySpec {
    /// `manager` or `position`.
    pub position_model: bool,
    /// Levels reachable.
    pub depth: u8,
    /// Tables, or every user-or-team owned table.
    pub tables: Option<Vec<(String, usize)>>,
    /// Manager model unit constraint.
    pub managers_must_be_in_same_or_parent_business_unit: bool,
    /// Line.
    pub line: usize,
}

/// `settings`.
#[derive(Clone, Debug, Default)]
pub struct SettingsSpec {
    pub share_to_previous_owner_on_assign: bool,
    pub ownership_across_business_units: bool,
    pub do_not_remove_roles_on_change_business_unit: bool,
    pub always_move_record_to_owner_business_unit: bool,
    pub hierarchy: Option<HierarchySpec>,
}

/// A business unit.
#[derive(Clone, Debug)]
pub struct UnitSpec {
    pub name: String,
    pub parent: Option<String>,
    pub line: usize,
}

/// A column.
#[derive(Clone, Debug)]
pub struct ColumnSpec {
    pub name: String,
    pub secured: bool,
}

/// A table.
#[derive(Clone, Debug)]
pub struct TableSpec {
    pub name: String,
    /// `None` when omitted.
    pub organization_owned: Option<bool>,
    pub columns: Vec<ColumnSpec>,
    /// The Web API's entity set name (extension; default: the name and `s`).
    pub entity_set: Option<String>,
    pub line: usize,
}

/// Cascade of one action.
pub type CascadeName = String;

/// A relationship.
#[derive(Clone, Debug)]
pub struct RelationshipSpec {
    pub name: String,
    pub parent: String,
    pub child: String,
    pub lookup: String,
    pub cascade: strata_engine::Cascade,
    pub line: usize,
}

/// A role.
#[derive(Clone, Debug)]
pub struct RoleSpec {
    pub name: String,
    pub business_unit: Option<String>,
    pub team_only: bool,
    pub system_administrator: bool,
    /// (table, privilege, depth, line)
    pub privileges: Vec<(String, Privilege, Depth, usize)>,
    pub misc: Vec<String>,
    /// `deprecation: { message, successors }` (extension, D65): applied after the setup's
    /// role assignments, as `deprecate_role`.
    pub deprecation: Option<(String, Vec<(String, usize)>)>,
    /// `deleted: true` (extension, D65): a deleted role kept as a tombstone, added and deleted
    /// at once so that the roles after it keep their places.
    pub deleted: bool,
    pub line: usize,
}

/// A position.
#[derive(Clone, Debug)]
pub struct PositionSpec {
    pub name: String,
    pub parent: Option<String>,
    pub line: usize,
}

/// A role assignment as written.
#[derive(Clone, Debug)]
pub struct RoleRef {
    pub role: String,
    pub business_unit: Option<String>,
    pub line: usize,
}

/// A user.
#[derive(Clone, Debug)]
pub struct UserSpec {
    pub name: String,
    pub business_unit: Option<String>,
    pub roles: Vec<RoleRef>,
    pub manager: Option<String>,
    pub position: Option<String>,
    pub enabled: bool,
    pub fields: Vec<(String, Value)>,
    /// Columns set after the first ones, each list in turn (extension: `fields` as a list of
    /// mappings, D65): a record's columns in the order they were set.
    pub more_fields: Vec<Vec<(String, Value)>>,
    /// The user is created right after this record (extension: `after_record`, D65), as a
    /// user added to a live organisation is.
    pub after_record: Option<String>,
    pub line: usize,
}

/// A team.
#[derive(Clone, Debug)]
pub struct TeamSpec {
    pub name: String,
    pub kind: strata_engine::TeamType,
    pub business_unit: Option<String>,
    pub members: Vec<(String, usize)>,
    pub roles: Vec<(String, usize)>,
    pub line: usize,
}

/// An access team template.
#[derive(Clone, Debug)]
pub struct TemplateSpec {
    pub name: String,
    pub table: String,
    pub rights: AccessMask,
    pub line: usize,
}

/// A record.
#[derive(Clone, Debug)]
pub struct RecordSpec {
    pub id: String,
    pub table: String,
    pub owner: Option<PrincipalRef>,
    pub business_unit: Option<String>,
    pub active: bool,
    pub lookups: Vec<(String, String)>,
    pub fields: Vec<(String, Value)>,
    /// Columns set after the first ones (extension: `fields` as a list of mappings, D65).
    pub more_fields: Vec<Vec<(String, Value)>>,
    /// `deleted: true` (extension, D65): a deleted record, inserted and deleted at once so that
    /// the records after it keep their places; its id is free again.
    pub deleted: bool,
    pub line: usize,
}

/// A share.
#[derive(Clone, Debug)]
pub struct ShareSpec {
    pub record: String,
    pub principal: PrincipalRef,
    pub rights: AccessMask,
    /// Instead of a share, a record access team's members added in this place among the
    /// shares (extension: `{ record, template, users }`, D65); `principal` and `rights` are then
    /// unused.
    pub access_team: Option<(String, Vec<String>)>,
    pub line: usize,
}

/// Access team members.
#[derive(Clone, Debug)]
pub struct AccessTeamMembersSpec {
    pub record: String,
    pub template: String,
    pub users: Vec<String>,
    pub line: usize,
}

/// A column permission of a profile.
#[derive(Clone, Debug)]
pub struct PermissionSpec {
    pub table: String,
    pub column: String,
    pub read: bool,
    pub update: bool,
    pub create: bool,
    pub line: usize,
}

/// A field security profile.
#[derive(Clone, Debug)]
pub struct ProfileSpec {
    pub name: String,
    pub members: Vec<(PrincipalRef, usize)>,
    pub permissions: Vec<PermissionSpec>,
    pub line: usize,
}

/// A column share.
#[derive(Clone, Debug)]
pub struct FieldShareSpec {
    pub record: String,
    pub column: String,
    pub principal: PrincipalRef,
    pub read: bool,
    pub update: bool,
    pub line: usize,
}

/// An app.
#[derive(Clone, Debug)]
pub struct AppSpec {
    pub name: String,
    pub roles: Vec<(String, usize)>,
    /// The table privileges the app needs (a Strata extension, D51): (table, privilege, least
    /// depth, line).
    pub needs: Vec<(String, Privilege, Depth, usize)>,
    pub line: usize,
}

/// A question or an action.
#[derive(Clone, Debug)]
pub enum StepKind {
    /// Any operation (`strata_ops::Operation`, written as in the JSON operations API) done by
    /// `as` (a user, or `system`): a Strata extension of format 1, see
    /// `docs/scenario-extensions.md`.
    Operation {
        caller: Option<String>,
        op: Box<Operation>,
    },
    /// A batch of operations tried as a dry run by `as` (D54): its access difference, as lines
    /// (`crate::dry_run`), or the write's refusal. A Strata extension of format 1.
    DryRun {
        caller: Option<String>,
        ops: Vec<Operation>,
    },
    Check {
        user: String,
        privilege: Privilege,
        record: Option<String>,
        table: Option<String>,
        owner: Option<PrincipalRef>,
    },
    Access {
        user: String,
        record: String,
    },
    List {
        user: String,
        table: String,
    },
    Read {
        user: String,
        record: String,
    },
    WhoHasAccess {
        record: String,
        privilege: Privilege,
    },
    OpenApp {
        user: String,
        app: String,
    },
    /// Who holds a role: users directly and teams as `team:NAME` (a Strata extension,
    /// `docs/scenario-extensions.md`). The name is resolved when the step runs.
    RoleHolders {
        role: String,
    },
    Create {
        actor: Option<String>,
        table: String,
        id: String,
        owner: Option<PrincipalRef>,
        lookups: Vec<(String, String)>,
        fields: Vec<(String, Value)>,
    },
    Update {
        actor: Option<String>,
        record: String,
        fields: Vec<(String, Value)>,
    },
    Delete {
        actor: Option<String>,
        record: String,
    },
    Assign {
        actor: Option<String>,
        record: String,
        owner: PrincipalRef,
    },
    Share {
        actor: Option<String>,
        record: String,
        principal: PrincipalRef,
        rights: AccessMask,
        modify: bool,
    },
    Revoke {
        actor: Option<String>,
        record: String,
        principal: PrincipalRef,
    },
    Associate {
        actor: Option<String>,
        record: String,
        lookup: String,
        parent: String,
    },
    Disassociate {
        actor: Option<String>,
        record: String,
        lookup: String,
    },
    AddAccessTeamMember {
        actor: Option<String>,
        record: String,
        template: String,
        user: String,
    },
    AssignRole {
        actor: Option<String>,
        principal: PrincipalRef,
        role: String,
        business_unit: Option<String>,
    },
    RemoveRole {
        actor: Option<String>,
        principal: PrincipalRef,
        role: String,
    },
    AddTeamMember {
        actor: Option<String>,
        team: String,
        user: String,
    },
    RemoveTeamMember {
        actor: Option<String>,
        team: String,
        user: String,
    },
    MoveUser {
        actor: Option<String>,
        user: String,
        business_unit: String,
    },
    SetManager {
        actor: Option<String>,
        user: String,
        manager: Option<String>,
    },
    /// Why the user cannot open the app: the reason names (a Strata extension, D51).
    AppReasons {
        user: String,
        app: String,
    },
    /// The smallest role set that opens the app and meets its needs (D51).
    RolesNeeded {
        user: String,
        app: String,
    },
    /// Every user who can open the app.
    WhoCanOpen {
        app: String,
    },
    /// May the user read (or update) the column of the record (D53).
    ColumnCheck {
        user: String,
        record: String,
        column: String,
        update: bool,
    },
    /// Every user who may read (or update) a secured column (D53).
    ColumnHolders {
        table: String,
        column: String,
        update: bool,
    },
    /// The roles that would grant a denied privilege on the record (D52).
    GrantingRoles {
        user: String,
        privilege: Privilege,
        record: String,
    },
    /// The role rules' violations report (extension, `docs/scenario-extensions.md`): every
    /// `user: rule` line, or one user's.
    RuleViolations {
        user: Option<String>,
    },
    /// Operations applied as one batch, all or nothing, role rules checked when it ends
    /// (extension): by `as` (a user, or `system`).
    Batch {
        caller: Option<String>,
        ops: Vec<Operation>,
    },
    /// The cheapest licence set that covers the user's roles (extension, licences).
    CheapestLicence {
        user: String,
    },
    /// Whether the user's licences fit, over- or under-license them (extension, licences).
    LicenceFit {
        user: String,
    },
    /// Where a role exceeds a licence: `table.privilege`, `misc:NAME`, `app:NAME` (extension,
    /// licences).
    LicenceExceeds {
        role: String,
        licence: String,
    },
}

/// What a step expects.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// `allow` / `deny`.
    Decision(bool),
    /// Effective rights.
    Rights(Vec<Privilege>),
    /// Record ids or user names, order ignored.
    Names(Vec<String>),
    /// Column values (`read`); a subset of the record as seen.
    Fields(Vec<(String, Value)>),
    /// `ok`, `denied` or `invalid`.
    Outcome(Outcome),
}

/// The outcome of an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Denied,
    Invalid,
}

impl Outcome {
    /// The scenario-file word.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Invalid => "invalid",
        }
    }
}

/// A step.
#[derive(Clone, Debug)]
pub struct Step {
    /// 1-based step number.
    pub number: usize,
    /// Line.
    pub line: usize,
    /// The verb.
    pub verb: &'static str,
    /// The question or action.
    pub kind: StepKind,
    /// What is expected.
    pub expect: Expect,
    /// For an allowed check: the grant kind the explanation must contain.
    pub reason: Option<GrantKind>,
    /// For a refused action or operation: text the refusal's message must contain (a Strata
    /// extension, docs/scenario-extensions.md).
    pub says: Option<String>,
}

/// A whole scenario file.
#[derive(Clone, Debug, Default)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub settings: SettingsSpec,
    pub business_units: Vec<UnitSpec>,
    pub tables: Vec<TableSpec>,
    pub relationships: Vec<RelationshipSpec>,
    pub roles: Vec<RoleSpec>,
    pub positions: Vec<PositionSpec>,
    pub users: Vec<UserSpec>,
    pub teams: Vec<TeamSpec>,
    pub templates: Vec<TemplateSpec>,
    pub records: Vec<RecordSpec>,
    pub shares: Vec<ShareSpec>,
    pub access_team_members: Vec<AccessTeamMembersSpec>,
    pub profiles: Vec<ProfileSpec>,
    pub field_shares: Vec<FieldShareSpec>,
    pub apps: Vec<AppSpec>,
    /// `role_rules` (extension): `add_role_rule` operations with their lines, applied after
    /// the rest of the setup.
    pub role_rules: Vec<(usize, Operation)>,
    pub steps: Vec<Step>,
    /// The licence catalogue (extension: `licences:`), with lines.
    pub licences: Vec<(strata_ops::LicenceOp, usize)>,
    /// Users' licences (extension: a user's `licence:`): user, licence names, line.
    pub user_licences: Vec<(String, Vec<String>, usize)>,
    /// Lookups set after every record's own (extension: `lookups:`, D65): record, lookup,
    /// parent, line, in the order they are set.
    pub lookups: Vec<(String, String, String, usize)>,
    /// The audit switches (extension: `audit:`), a `set_audit` operation, with its line.
    pub audit: Option<(usize, Operation)>,
}

// ---------------------------------------------------------------------------------------------
// Reading nodes.

/// The keys of one mapping, each to be taken once; leftovers are unknown keys.
pub(crate) struct Keys<'a> {
    entries: Vec<(&'a str, &'a Node, usize)>,
    used: Vec<bool>,
    what: &'a str,
    line: usize,
}

impl<'a> Keys<'a> {
    pub(crate) fn of(node: &'a Node, what: &'a str) -> Result<Keys<'a>> {
        let NodeKind::Map(entries) = &node.kind else {
            return Err(LoadError::new(
                node.line,
                format!("{what} must be a mapping, found {}", node.type_name()),
            ));
        };
        let mut list = Vec::with_capacity(entries.len());
        let mut seen = HashSet::new();
        for (k, v) in entries {
            let Some(key) = k.scalar() else {
                return Err(LoadError::new(
                    k.line,
                    format!("{what}: keys must be scalars"),
                ));
            };
            if !seen.insert(key) {
                return Err(LoadError::new(
                    k.line,
                    format!("{what}: key `{key}` appears twice"),
                ));
            }
            list.push((key, v, k.line));
        }
        Ok(Keys {
            used: vec![false; list.len()],
            entries: list,
            what,
            line: node.line,
        })
    }

    pub(crate) fn opt(&mut self, key: &str) -> Option<&'a Node> {
        let i = self.entries.iter().position(|(k, _, _)| *k == key)?;
        self.used[i] = true;
        Some(self.entries[i].1)
    }

    pub(crate) fn req(&mut self, key: &str) -> Result<&'a Node> {
        self.opt(key)
            .ok_or_else(|| LoadError::new(self.line, format!("{}: missing `{key}`", self.what)))
    }

    pub(crate) fn finish(self) -> Result<()> {
        for (i, (key, _, line)) in self.entries.iter().enumerate() {
            if !self.used[i] {
                return Err(LoadError::new(
                    *line,
                    format!("{}: unknown key `{key}`", self.what),
                ));
            }
        }
        Ok(())
    }
}

pub(crate) fn text(node: &Node, what: &str) -> Result<String> {
    match &node.kind {
        NodeKind::Scalar { text, .. } if !node.is_null() || !text.is_empty() => Ok(text.clone()),
        _ => Err(LoadError::new(
            node.line,
            format!("{what} must be a name, found {}", node.type_name()),
        )),
    }
}

fn opt_text(node: Option<&Node>, what: &str) -> Result<Option<String>> {
    node.map(|n| text(n, what)).transpose()
}

pub(crate) fn boolean(node: &Node, what: &str) -> Result<bool> {
    match node.scalar() {
        Some("true" | "True" | "TRUE") => Ok(true),
        Some("false" | "False" | "FALSE") => Ok(false),
        _ => Err(LoadError::new(
            node.line,
            format!("{what} must be true or false"),
        )),
    }
}

fn opt_bool(node: Option<&Node>, what: &str, default: bool) -> Result<bool> {
    node.map_or(Ok(default), |n| boolean(n, what))
}

fn seq<'a>(node: &'a Node, what: &str) -> Result<&'a [Node]> {
    match &node.kind {
        NodeKind::Seq(items) => Ok(items),
        _ if node.is_null() => Ok(&[]),
        _ => Err(LoadError::new(
            node.line,
            format!("{what} must be a list, found {}", node.type_name()),
        )),
    }
}

pub(crate) fn names(node: &Node, what: &str) -> Result<Vec<(String, usize)>> {
    seq(node, what)?
        .iter()
        .map(|n| Ok((text(n, what)?, n.line)))
        .collect()
}

pub(crate) fn map_entries<'a>(node: &'a Node, what: &str) -> Result<Vec<(String, &'a Node)>> {
    match &node.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .map(|(k, v)| Ok((text(k, what)?, v)))
            .collect(),
        _ if node.is_null() => Ok(Vec::new()),
        _ => Err(LoadError::new(
            node.line,
            format!("{what} must be a mapping, found {}", node.type_name()),
        )),
    }
}

fn value(node: &Node, what: &str) -> Result<Value> {
    let NodeKind::Scalar { text, quoted } = &node.kind else {
        return Err(LoadError::new(
            node.line,
            format!("{what} must be a scalar value, found {}", node.type_name()),
        ));
    };
    if *quoted {
        return Ok(Value::Text(text.clone()));
    }
    if node.is_null() {
        return Ok(Value::Null);
    }
    Ok(match text.as_str() {
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        t => {
            if let Ok(i) = t.parse::<i64>() {
                Value::Int(i)
            } else if let Some(f) = t
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && t.chars().any(|c| c.is_ascii_digit()))
            {
                Value::Float(f)
            } else {
                Value::Text(t.to_owned())
            }
        }
    })
}

/// A YAML node as JSON, scalars typed as in `fields` (quoted text stays text).
fn node_json(node: &Node) -> serde_json::Value {
    use serde_json::Value as J;
    match &node.kind {
        NodeKind::Seq(items) => J::Array(items.iter().map(node_json).collect()),
        NodeKind::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| (k.scalar().unwrap_or_default().to_owned(), node_json(v)))
                .collect(),
        ),
        NodeKind::Scalar { text, quoted } => match value(node, "value") {
            _ if *quoted => J::String(text.clone()),
            Ok(Value::Null) => J::Null,
            Ok(Value::Bool(b)) => J::Bool(b),
            Ok(Value::Int(i)) => J::from(i),
            Ok(Value::Float(f)) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
            _ => J::String(text.clone()),
        },
    }
}

fn fields(node: &Node, what: &str) -> Result<Vec<(String, Value)>> {
    map_entries(node, what)?
        .into_iter()
        .map(|(k, v)| Ok((k.clone(), value(v, &format!("{what}.{k}"))?)))
        .collect()
}

/// Columns, then the later runs of columns (`fields` as a list of mappings).
type FieldRuns = (Vec<(String, Value)>, Vec<Vec<(String, Value)>>);

/// `fields`: a mapping, or (extension) a list of mappings set one after the other.
fn field_runs(node: Option<&Node>, what: &str) -> Result<FieldRuns> {
    match node {
        None => Ok((Vec::new(), Vec::new())),
        Some(n) => match &n.kind {
            NodeKind::Seq(items) => {
                let mut runs = items
                    .iter()
                    .map(|i| fields(i, what))
                    .collect::<Result<Vec<_>>>()?
                    .into_iter();
                Ok((runs.next().unwrap_or_default(), runs.collect()))
            }
            _ => Ok((fields(n, what)?, Vec::new())),
        },
    }
}

fn principal(node: &Node, what: &str) -> Result<PrincipalRef> {
    let t = text(node, what)?;
    Ok(if t == "organization" {
        PrincipalRef::Organization
    } else if let Some(team) = t.strip_prefix("team:") {
        PrincipalRef::Team(team.trim_start().to_owned())
    } else {
        PrincipalRef::User(t)
    })
}

fn privilege(node: &Node, what: &str) -> Result<Privilege> {
    let t = text(node, what)?;
    Privilege::from_name(&t).ok_or_else(|| {
        LoadError::new(
            node.line,
            format!("{what}: unknown privilege `{t}` (create read write delete append append_to assign share)"),
        )
    })
}

fn rights(node: &Node, what: &str) -> Result<AccessMask> {
    let mut mask = AccessMask::NONE;
    for item in seq(node, what)? {
        mask = mask.with(privilege(item, what)?);
    }
    Ok(mask)
}

fn cascade_type(node: &Node, what: &str) -> Result<strata_engine::CascadeType> {
    use strata_engine::CascadeType as C;
    match text(node, what)?.as_str() {
        "cascade" => Ok(C::Cascade),
        "active" => Ok(C::Active),
        "user_owned" => Ok(C::UserOwned),
        "none" => Ok(C::None),
        other => Err(LoadError::new(
            node.line,
            format!("{what}: unknown cascade `{other}` (cascade active user_owned none)"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The file.

/// Parses a scenario file's text.
pub fn parse(source: &str) -> Result<Scenario> {
    parse_with(source, false)
}

/// Parses a role pack (`packs/`, docs/export.md): a scenario file whose `business_units`,
/// `tables`, `roles`, `users` and `steps` may be left out (the caller refuses what a pack may
/// not hold).
pub fn parse_fragment(source: &str) -> Result<Scenario> {
    parse_with(source, true)
}

/// The list under `key`: required in a scenario, optional (empty) in a fragment.
fn part<'a>(keys: &mut Keys<'a>, key: &str, fragment: bool) -> Result<&'a [Node]> {
    match keys.opt(key) {
        Some(n) => seq(n, key),
        None if fragment => Ok(&[]),
        None => seq(keys.req(key)?, key),
    }
}

fn parse_with(source: &str, fragment: bool) -> Result<Scenario> {
    let root = crate::yaml::parse(source)
        .map_err(|(line, message)| LoadError::new(line, format!("YAML syntax: {message}")))?;
    let mut keys = Keys::of(&root, "the file")?;
    let format = keys.req("format")?;
    if format.scalar() != Some("1") {
        return Err(LoadError::new(format.line, "only `format: 1` is supported"));
    }
    let mut s = Scenario {
        name: text(keys.req("name")?, "name")?,
        description: opt_text(keys.opt("description"), "description")?,
        ..Scenario::default()
    };
    s.settings = match keys.opt("settings") {
        Some(n) => parse_settings(n)?,
        None => SettingsSpec {
            always_move_record_to_owner_business_unit: true,
            ..SettingsSpec::default()
        },
    };
    for n in part(&mut keys, "business_units", fragment)? {
        let mut k = Keys::of(n, "business unit")?;
        s.business_units.push(UnitSpec {
            name: text(k.req("name")?, "business unit name")?,
            parent: opt_text(k.opt("parent"), "parent")?,
            line: n.line,
        });
        k.finish()?;
    }
    for n in part(&mut keys, "tables", fragment)? {
        s.tables.push(parse_table(n)?);
    }
    if let Some(list) = keys.opt("relationships") {
        for n in seq(list, "relationships")? {
            s.relationships.push(parse_relationship(n)?);
        }
    }
    for n in part(&mut keys, "roles", fragment)? {
        s.roles.push(parse_role(n)?);
    }
    if let Some(list) = keys.opt("positions") {
        for n in seq(list, "positions")? {
            let mut k = Keys::of(n, "position")?;
            s.positions.push(PositionSpec {
                name: text(k.req("name")?, "position name")?,
                parent: opt_text(k.opt("parent"), "parent")?,
                line: n.line,
            });
            k.finish()?;
        }
    }
    for n in part(&mut keys, "users", fragment)? {
        s.users.push(parse_user(n, &mut s.user_licences)?);
    }
    if let Some(list) = keys.opt("teams") {
        for n in seq(list, "teams")? {
            s.teams.push(parse_team(n)?);
        }
    }
    if let Some(list) = keys.opt("access_team_templates") {
        for n in seq(list, "access_team_templates")? {
            let mut k = Keys::of(n, "access team template")?;
            s.templates.push(TemplateSpec {
                name: text(k.req("name")?, "template name")?,
                table: text(k.req("table")?, "table")?,
                rights: rights(k.req("rights")?, "rights")?,
                line: n.line,
            });
            k.finish()?;
        }
    }
    if let Some(list) = keys.opt("records") {
        for n in seq(list, "records")? {
            s.records.push(parse_record(n)?);
        }
    }
    if let Some(list) = keys.opt("lookups") {
        for n in seq(list, "lookups")? {
            let mut k = Keys::of(n, "lookup")?;
            s.lookups.push((
                text(k.req("record")?, "record")?,
                text(k.req("lookup")?, "lookup")?,
                text(k.req("parent")?, "parent")?,
                n.line,
            ));
            k.finish()?;
        }
    }
    if let Some(list) = keys.opt("shares") {
        for n in seq(list, "shares")? {
            let mut k = Keys::of(n, "share")?;
            let record = text(k.req("record")?, "record")?;
            let spec = match k.opt("template") {
                Some(template) => ShareSpec {
                    record,
                    principal: PrincipalRef::Organization,
                    rights: AccessMask::NONE,
                    access_team: Some((
                        text(template, "template")?,
                        names(k.req("users")?, "users")?
                            .into_iter()
                            .map(|(n, _)| n)
                            .collect(),
                    )),
                    line: n.line,
                },
                None => ShareSpec {
                    record,
                    principal: principal(k.req("principal")?, "principal")?,
                    rights: rights(k.req("rights")?, "rights")?,
                    access_team: None,
                    line: n.line,
                },
            };
            s.shares.push(spec);
            k.finish()?;
        }
    }
    if let Some(list) = keys.opt("access_team_members") {
        for n in seq(list, "access_team_members")? {
            let mut k = Keys::of(n, "access team members")?;
            s.access_team_members.push(AccessTeamMembersSpec {
                record: text(k.req("record")?, "record")?,
                template: text(k.req("template")?, "template")?,
                users: names(k.req("users")?, "users")?
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect(),
                line: n.line,
            });
            k.finish()?;
        }
    }
    if let Some(fs) = keys.opt("field_security") {
        parse_field_security(fs, &mut s)?;
    }
    if let Some(list) = keys.opt("apps") {
        for n in seq(list, "apps")? {
            let mut k = Keys::of(n, "app")?;
            let name = text(k.req("name")?, "app name")?;
            let roles = names(k.req("roles")?, "roles")?;
            let needs = match k.opt("needs") {
                Some(grid) => app_needs(&name, grid)?,
                None => Vec::new(),
            };
            s.apps.push(AppSpec {
                name,
                roles,
                needs,
                line: n.line,
            });
            k.finish()?;
        }
    }
    if let Some(a) = keys.opt("audit") {
        s.audit = Some((a.line, parse_audit(a)?));
    }
    if let Some(list) = keys.opt("role_rules") {
        for n in seq(list, "role_rules")? {
            s.role_rules.push((n.line, parse_role_rule(n)?));
        }
    }
    if let Some(list) = keys.opt("licences") {
        for n in seq(list, "licences")? {
            s.licences
                .push((crate::licences::parse_licence(n)?, n.line));
        }
    }
    for (i, n) in part(&mut keys, "steps", fragment)?.iter().enumerate() {
        s.steps.push(parse_step(n, i + 1)?);
    }
    keys.finish()?;
    Ok(s)
}

fn parse_settings(node: &Node) -> Result<SettingsSpec> {
    let mut k = Keys::of(node, "settings")?;
    let mut s = SettingsSpec {
        share_to_previous_owner_on_assign: opt_bool(
            k.opt("share_to_previous_owner_on_assign"),
            "share_to_previous_owner_on_assign",
            false,
        )?,
        ownership_across_business_units: opt_bool(
            k.opt("ownership_across_business_units"),
            "ownership_across_business_units",
            false,
        )?,
        do_not_remove_roles_on_change_business_unit: opt_bool(
            k.opt("do_not_remove_roles_on_change_business_unit"),
            "do_not_remove_roles_on_change_business_unit",
            false,
        )?,
        always_move_record_to_owner_business_unit: opt_bool(
            k.opt("always_move_record_to_owner_business_unit"),
            "always_move_record_to_owner_business_unit",
            true,
        )?,
        hierarchy: None,
    };
    if let Some(h) = k.opt("hierarchy")
        && !h.is_null()
    {
        let mut hk = Keys::of(h, "settings.hierarchy")?;
        let model = hk.req("model")?;
        let position_model = match model.scalar() {
            Some("manager") => false,
            Some("position") => true,
            _ => {
                return Err(LoadError::new(
                    model.line,
                    "settings.hierarchy.model must be `manager` or `position`",
                ));
            }
        };
        let depth = match hk.opt("depth") {
            None => 3,
            Some(d) => d
                .scalar()
                .and_then(|t| t.parse::<u8>().ok())
                .filter(|d| (1..=strata_engine::limits::MAX_HIERARCHY_DEPTH).contains(d))
                .ok_or_else(|| {
                    LoadError::new(
                        d.line,
                        format!(
                            "settings.hierarchy.depth must be a whole number from 1 to {}",
                            strata_engine::limits::MAX_HIERARCHY_DEPTH
                        ),
                    )
                })?,
        };
        let tables = hk
            .opt("tables")
            .map(|t| names(t, "settings.hierarchy.tables"))
            .transpose()?;
        let managers = opt_bool(
            hk.opt("managers_must_be_in_same_or_parent_business_unit"),
            "managers_must_be_in_same_or_parent_business_unit",
            true,
        )?;
        hk.finish()?;
        s.hierarchy = Some(HierarchySpec {
            position_model,
            depth,
            tables,
            managers_must_be_in_same_or_parent_business_unit: managers,
            line: h.line,
        });
    }
    k.finish()?;
    Ok(s)
}

fn parse_table(n: &Node) -> Result<TableSpec> {
    let mut k = Keys::of(n, "table")?;
    let name = text(k.req("name")?, "table name")?;
    let organization_owned = match k.opt("ownership") {
        None => None,
        Some(o) => match o.scalar() {
            Some("user_or_team") => Some(false),
            Some("organization") => Some(true),
            _ => {
                return Err(LoadError::new(
                    o.line,
                    format!("table `{name}`: ownership must be `user_or_team` or `organization`"),
                ));
            }
        },
    };
    let mut columns = Vec::new();
    if let Some(cols) = k.opt("columns") {
        for c in seq(cols, "columns")? {
            let mut ck = Keys::of(c, "column")?;
            columns.push(ColumnSpec {
                name: text(ck.req("name")?, "column name")?,
                secured: opt_bool(ck.opt("secured"), "secured", false)?,
            });
            ck.finish()?;
        }
    }
    let entity_set = k
        .opt("entity_set")
        .map(|e| text(e, "entity_set"))
        .transpose()?;
    k.finish()?;
    Ok(TableSpec {
        name,
        organization_owned,
        columns,
        entity_set,
        line: n.line,
    })
}

fn parse_relationship(n: &Node) -> Result<RelationshipSpec> {
    use strata_engine::{Cascade, DeleteBehavior};
    let mut k = Keys::of(n, "relationship")?;
    let name = text(k.req("name")?, "relationship name")?;
    let behavior_node = k.req("behavior")?;
    let behavior = text(behavior_node, "behavior")?;
    let mut cascade = match behavior.as_str() {
        "parental" => Cascade::PARENTAL,
        "referential" => Cascade::REFERENTIAL,
        "referential_restrict_delete" => Cascade::REFERENTIAL_RESTRICT_DELETE,
        "custom" => Cascade::REFERENTIAL,
        other => {
            return Err(LoadError::new(
                behavior_node.line,
                format!(
                    "relationship `{name}`: unknown behavior `{other}` (parental referential referential_restrict_delete custom)"
                ),
            ));
        }
    };
    match (k.opt("cascade"), behavior.as_str()) {
        (Some(c), "custom") => {
            let mut ck = Keys::of(c, "cascade")?;
            if let Some(v) = ck.opt("assign") {
                cascade.assign = cascade_type(v, "cascade.assign")?;
            }
            if let Some(v) = ck.opt("share") {
                cascade.share = cascade_type(v, "cascade.share")?;
            }
            if let Some(v) = ck.opt("unshare") {
                cascade.unshare = cascade_type(v, "cascade.unshare")?;
            }
            if let Some(v) = ck.opt("reparent") {
                cascade.reparent = cascade_type(v, "cascade.reparent")?;
            }
            if let Some(v) = ck.opt("delete") {
                cascade.delete = match text(v, "cascade.delete")?.as_str() {
                    "cascade" => DeleteBehavior::Cascade,
                    "remove_link" => DeleteBehavior::RemoveLink,
                    "restrict" => DeleteBehavior::Restrict,
                    other => {
                        return Err(LoadError::new(
                            v.line,
                            format!(
                                "cascade.delete: unknown value `{other}` (cascade remove_link restrict)"
                            ),
                        ));
                    }
                };
            }
            ck.finish()?;
        }
        (Some(c), _) => {
            return Err(LoadError::new(
                c.line,
                format!("relationship `{name}`: `cascade` is only for `behavior: custom`"),
            ));
        }
        (None, _) => {}
    }
    let spec = RelationshipSpec {
        name,
        parent: text(k.req("parent")?, "parent")?,
        child: text(k.req("child")?, "child")?,
        lookup: text(k.req("lookup")?, "lookup")?,
        cascade,
        line: n.line,
    };
    k.finish()?;
    Ok(spec)
}

fn parse_role(n: &Node) -> Result<RoleSpec> {
    let mut k = Keys::of(n, "role")?;
    let name = text(k.req("name")?, "role name")?;
    let team_only = match k.opt("inheritance") {
        None => false,
        Some(i) => match i.scalar() {
            Some("user_and_team") => false,
            Some("team_only") => true,
            _ => {
                return Err(LoadError::new(
                    i.line,
                    format!("role `{name}`: inheritance must be `user_and_team` or `team_only`"),
                ));
            }
        },
    };
    let mut privileges = Vec::new();
    if let Some(p) = k.opt("privileges") {
        for (table, grid) in map_entries(p, "privileges")? {
            for (priv_name, depth_node) in map_entries(grid, &format!("privileges.{table}"))? {
                let privilege = Privilege::from_name(&priv_name).ok_or_else(|| {
                    LoadError::new(
                        depth_node.line,
                        format!("role `{name}`: unknown privilege `{priv_name}` on `{table}`"),
                    )
                })?;
                let depth_text = text(depth_node, "depth")?;
                let depth = Depth::from_name(&depth_text).ok_or_else(|| {
                    LoadError::new(
                        depth_node.line,
                        format!("role `{name}`: unknown depth `{depth_text}` (none user business_unit parent_child organization)"),
                    )
                })?;
                privileges.push((table.clone(), privilege, depth, depth_node.line));
            }
        }
    }
    let spec = RoleSpec {
        name,
        business_unit: opt_text(k.opt("business_unit"), "business_unit")?,
        team_only,
        system_administrator: opt_bool(
            k.opt("system_administrator"),
            "system_administrator",
            false,
        )?,
        privileges,
        misc: k
            .opt("misc")
            .map(|m| names(m, "misc"))
            .transpose()?
            .unwrap_or_default()
            .into_iter()
            .map(|(n, _)| n)
            .collect(),
        deprecation: k.opt("deprecation").map(parse_deprecation).transpose()?,
        deleted: opt_bool(k.opt("deleted"), "deleted", false)?,
        line: n.line,
    };
    k.finish()?;
    Ok(spec)
}

/// A role's `deprecation`: `message` (optional) and `successors` (optional).
fn parse_deprecation(n: &Node) -> Result<(String, Vec<(String, usize)>)> {
    let mut k = Keys::of(n, "deprecation")?;
    let message = opt_text(k.opt("message"), "deprecation.message")?.unwrap_or_default();
    let successors = k
        .opt("successors")
        .map(|s| names(s, "deprecation.successors"))
        .transpose()?
        .unwrap_or_default();
    k.finish()?;
    Ok((message, successors))
}

/// `audit:` (extension): the `set_audit` operation's fields.
fn parse_audit(n: &Node) -> Result<Operation> {
    let mut object = match node_json(n) {
        serde_json::Value::Object(o) if !o.contains_key("op") => o,
        _ => {
            return Err(LoadError::new(
                n.line,
                "audit is a mapping: enabled, retention_days, user_access, tables, columns_off",
            ));
        }
    };
    object.insert("op".to_owned(), "set_audit".into());
    serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| LoadError::new(n.line, format!("audit: {e}")))
}

fn parse_user(n: &Node, licences: &mut Vec<(String, Vec<String>, usize)>) -> Result<UserSpec> {
    let mut k = Keys::of(n, "user")?;
    let name = text(k.req("name")?, "user name")?;
    if let Some(l) = k.opt("licence") {
        let held = match &l.kind {
            NodeKind::Seq(_) => names(l, "licence")?.into_iter().map(|(n, _)| n).collect(),
            _ => vec![text(l, "licence")?],
        };
        licences.push((name.clone(), held, l.line));
    }
    let mut roles = Vec::new();
    if let Some(list) = k.opt("roles") {
        for r in seq(list, "roles")? {
            match &r.kind {
                NodeKind::Map(_) => {
                    let mut rk = Keys::of(r, "role assignment")?;
                    roles.push(RoleRef {
                        role: text(rk.req("role")?, "role")?,
                        business_unit: opt_text(rk.opt("business_unit"), "business_unit")?,
                        line: r.line,
                    });
                    rk.finish()?;
                }
                _ => roles.push(RoleRef {
                    role: text(r, "role")?,
                    business_unit: None,
                    line: r.line,
                }),
            }
        }
    }
    let manager = match k.opt("manager") {
        Some(m) if !m.is_null() => Some(text(m, "manager")?),
        _ => None,
    };
    let (first, more_fields) = field_runs(k.opt("fields"), "fields")?;
    let spec = UserSpec {
        business_unit: opt_text(k.opt("business_unit"), "business_unit")?,
        roles,
        manager,
        position: opt_text(k.opt("position"), "position")?,
        enabled: opt_bool(k.opt("enabled"), "enabled", true)?,
        fields: first,
        more_fields,
        after_record: opt_text(k.opt("after_record"), "after_record")?,
        line: n.line,
        name,
    };
    k.finish()?;
    Ok(spec)
}

fn parse_team(n: &Node) -> Result<TeamSpec> {
    use strata_engine::TeamType;
    let mut k = Keys::of(n, "team")?;
    let name = text(k.req("name")?, "team name")?;
    let kind = match k.opt("type") {
        None => TeamType::Owner,
        Some(t) => match t.scalar() {
            Some("owner") => TeamType::Owner,
            Some("access") => TeamType::Access,
            Some("security_group") => TeamType::SecurityGroup,
            Some("office_group") => TeamType::OfficeGroup,
            _ => {
                return Err(LoadError::new(
                    t.line,
                    format!(
                        "team `{name}`: type must be owner, access, security_group or office_group"
                    ),
                ));
            }
        },
    };
    let spec = TeamSpec {
        kind,
        business_unit: opt_text(k.opt("business_unit"), "business_unit")?,
        members: k
            .opt("members")
            .map(|m| names(m, "members"))
            .transpose()?
            .unwrap_or_default(),
        roles: k
            .opt("roles")
            .map(|m| names(m, "roles"))
            .transpose()?
            .unwrap_or_default(),
        line: n.line,
        name,
    };
    k.finish()?;
    Ok(spec)
}

fn parse_record(n: &Node) -> Result<RecordSpec> {
    let mut k = Keys::of(n, "record")?;
    let id = text(k.req("id")?, "record id")?;
    let active = match k.opt("state") {
        None => true,
        Some(s) => match s.scalar() {
            Some("active") => true,
            Some("inactive") => false,
            _ => {
                return Err(LoadError::new(
                    s.line,
                    format!("record `{id}`: state must be `active` or `inactive`"),
                ));
            }
        },
    };
    let lookups = match k.opt("lookups") {
        None => Vec::new(),
        Some(l) => map_entries(l, "lookups")?
            .into_iter()
            .map(|(name, v)| Ok((name, text(v, "lookup value")?)))
            .collect::<Result<_>>()?,
    };
    let (first, more_fields) = field_runs(k.opt("fields"), "fields")?;
    let spec = RecordSpec {
        table: text(k.req("table")?, "table")?,
        owner: k.opt("owner").map(|o| principal(o, "owner")).transpose()?,
        business_unit: opt_text(k.opt("business_unit"), "business_unit")?,
        active,
        lookups,
        fields: first,
        more_fields,
        deleted: opt_bool(k.opt("deleted"), "deleted", false)?,
        line: n.line,
        id,
    };
    k.finish()?;
    Ok(spec)
}

fn parse_field_security(node: &Node, s: &mut Scenario) -> Result<()> {
    let mut k = Keys::of(node, "field_security")?;
    if let Some(list) = k.opt("profiles") {
        for p in seq(list, "profiles")? {
            let mut pk = Keys::of(p, "field security profile")?;
            let name = text(pk.req("name")?, "profile name")?;
            let members = match pk.opt("members") {
                None => Vec::new(),
                Some(m) => seq(m, "members")?
                    .iter()
                    .map(|n| Ok((principal(n, "member")?, n.line)))
                    .collect::<Result<_>>()?,
            };
            let mut permissions = Vec::new();
            if let Some(perms) = pk.opt("permissions") {
                for perm in seq(perms, "permissions")? {
                    let mut qk = Keys::of(perm, "column permission")?;
                    permissions.push(PermissionSpec {
                        table: text(qk.req("table")?, "table")?,
                        column: text(qk.req("column")?, "column")?,
                        read: opt_bool(qk.opt("read"), "read", false)?,
                        update: opt_bool(qk.opt("update"), "update", false)?,
                        create: opt_bool(qk.opt("create"), "create", false)?,
                        line: perm.line,
                    });
                    qk.finish()?;
                }
            }
            pk.finish()?;
            s.profiles.push(ProfileSpec {
                name,
                members,
                permissions,
                line: p.line,
            });
        }
    }
    if let Some(list) = k.opt("field_shares") {
        for f in seq(list, "field_shares")? {
            let mut fk = Keys::of(f, "field share")?;
            s.field_shares.push(FieldShareSpec {
                record: text(fk.req("record")?, "record")?,
                column: text(fk.req("column")?, "column")?,
                principal: principal(fk.req("principal")?, "principal")?,
                read: opt_bool(fk.opt("read"), "read", false)?,
                update: opt_bool(fk.opt("update"), "update", false)?,
                line: f.line,
            });
            fk.finish()?;
        }
    }
    k.finish()
}

/// An app's `needs`: table → privilege → least depth (not `none`), or table → a list of
/// privileges, each at `user` (Basic) depth.
fn app_needs(app: &str, node: &Node) -> Result<Vec<(String, Privilege, Depth, usize)>> {
    let mut needs = Vec::new();
    for (table, grid) in map_entries(node, "needs")? {
        if let NodeKind::Seq(items) = &grid.kind {
            for item in items {
                let name = text(item, "privilege")?;
                let privilege = Privilege::from_name(&name).ok_or_else(|| {
                    LoadError::new(
                        item.line,
                        format!("app `{app}`: unknown privilege `{name}` on `{table}`"),
                    )
                })?;
                needs.push((table.clone(), privilege, Depth::User, item.line));
            }
            continue;
        }
        for (priv_name, depth_node) in map_entries(grid, &format!("needs.{table}"))? {
            let privilege = Privilege::from_name(&priv_name).ok_or_else(|| {
                LoadError::new(
                    depth_node.line,
                    format!("app `{app}`: unknown privilege `{priv_name}` on `{table}`"),
                )
            })?;
            let depth_text = text(depth_node, "depth")?;
            let depth = Depth::from_name(&depth_text)
                .filter(|d| *d != Depth::None)
                .ok_or_else(|| {
                    LoadError::new(
                        depth_node.line,
                        format!("app `{app}`: need depth `{depth_text}` is not one of user business_unit parent_child organization"),
                    )
                })?;
            needs.push((table.clone(), privilege, depth, depth_node.line));
        }
    }
    Ok(needs)
}

const VERBS: [&str; 36] = [
    "check",
    "access",
    "list",
    "read",
    "who_has_access",
    "open_app",
    "create",
    "update",
    "delete",
    "assign",
    "share",
    "modify_share",
    "revoke",
    "associate",
    "disassociate",
    "add_access_team_member",
    "assign_role",
    "remove_role",
    "add_team_member",
    "remove_team_member",
    "move_user",
    "set_manager",
    "operation",
    "app_reasons",
    "roles_needed",
    "who_can_open",
    "column_check",
    "column_holders",
    "granting_roles",
    "role_holders",
    "rule_violations",
    "batch",
    "dry_run",
    "cheapest_licence",
    "licence_fit",
    "licence_exceeds",
];

/// An operation written as a mapping (`op` and its fields), as the JSON operations API takes it.
fn operation_node(n: &Node, what: &str) -> Result<Operation> {
    if !matches!(n.kind, NodeKind::Map(_)) {
        return Err(LoadError::new(n.line, format!("{what} must be a mapping")));
    }
    serde_json::from_value(node_json(n)).map_err(|e| LoadError::new(n.line, format!("{what}: {e}")))
}

/// A `role_rules` entry: `role` and one of `requires` (roles), `excludes` (a role) and
/// `direct_only: true`, an `add_role_rule` operation.
fn parse_role_rule(n: &Node) -> Result<Operation> {
    let mut object = match node_json(n) {
        serde_json::Value::Object(o) if !o.contains_key("op") => o,
        _ => {
            return Err(LoadError::new(
                n.line,
                "a role rule is a mapping: role, and requires, excludes or direct_only",
            ));
        }
    };
    if let Some(serde_json::Value::String(one)) = object.get("requires").cloned() {
        object.insert("requires".to_owned(), serde_json::json!([one]));
    }
    object.insert("op".to_owned(), "add_role_rule".into());
    serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| LoadError::new(n.line, format!("role rule: {e}")))
}

fn actor(k: &mut Keys<'_>) -> Result<Option<String>> {
    let a = text(k.req("as")?, "as")?;
    Ok(if a == "system" { None } else { Some(a) })
}

fn parse_step(n: &Node, number: usize) -> Result<Step> {
    let NodeKind::Map(entries) = &n.kind else {
        return Err(LoadError::new(
            n.line,
            format!("step {number} must be a mapping"),
        ));
    };
    let verbs: Vec<&str> = entries
        .iter()
        .filter_map(|(k, _)| k.scalar())
        .filter(|k| VERBS.contains(k))
        .collect();
    let verb = match verbs.as_slice() {
        [v] => VERBS.iter().copied().find(|x| x == v).unwrap_or("check"),
        [] => {
            let keys: Vec<&str> = entries
                .iter()
                .filter_map(|(k, _)| k.scalar())
                .filter(|k| !matches!(*k, "expect" | "reason" | "says"))
                .collect();
            return Err(LoadError::new(
                n.line,
                match keys.first() {
                    Some(k) => format!("step {number}: unknown verb `{k}`"),
                    None => format!("step {number}: no verb"),
                },
            ));
        }
        _ => {
            return Err(LoadError::new(
                n.line,
                format!("step {number}: more than one verb ({})", verbs.join(", ")),
            ));
        }
    };
    let mut sk = Keys::of(n, "step")?;
    let body = sk.req(verb)?;
    let expect_node = sk.req("expect")?;
    let reason = match sk.opt("reason") {
        None => None,
        Some(r) => {
            let t = text(r, "reason")?;
            Some(GrantKind::from_name(&t).ok_or_else(|| {
                LoadError::new(r.line, format!("step {number}: unknown reason `{t}`"))
            })?)
        }
    };
    let says_node = sk.opt("says");
    let says = opt_text(says_node, "says")?;
    sk.finish()?;
    let what = format!("step {number} ({verb})");
    let mut k = Keys::of(body, &what)?;
    let kind = match verb {
        "check" => {
            let privilege = privilege(k.req("privilege")?, "privilege")?;
            let record = opt_text(k.opt("record"), "record")?;
            let table = opt_text(k.opt("table"), "table")?;
            let owner = k.opt("owner").map(|o| principal(o, "owner")).transpose()?;
            match (&record, &table) {
                (Some(_), None) if owner.is_none() => {}
                (None, Some(_)) if privilege == Privilege::Create => {}
                (None, Some(_)) => {
                    return Err(LoadError::new(
                        body.line,
                        format!(
                            "{what}: `table` (with `owner`) is for privilege create; name a `record`"
                        ),
                    ));
                }
                _ => {
                    return Err(LoadError::new(
                        body.line,
                        format!("{what}: give either `record`, or `table` and `owner` for create"),
                    ));
                }
            }
            StepKind::Check {
                user: text(k.req("user")?, "user")?,
                privilege,
                record,
                table,
                owner,
            }
        }
        "access" => StepKind::Access {
            user: text(k.req("user")?, "user")?,
            record: text(k.req("record")?, "record")?,
        },
        "list" => StepKind::List {
            user: text(k.req("user")?, "user")?,
            table: text(k.req("table")?, "table")?,
        },
        "read" => StepKind::Read {
            user: text(k.req("user")?, "user")?,
            record: text(k.req("record")?, "record")?,
        },
        "who_has_access" => StepKind::WhoHasAccess {
            record: text(k.req("record")?, "record")?,
            privilege: privilege(k.req("privilege")?, "privilege")?,
        },
        "role_holders" => StepKind::RoleHolders {
            role: text(k.req("role")?, "role")?,
        },
        "open_app" => StepKind::OpenApp {
            user: text(k.req("user")?, "user")?,
            app: text(k.req("app")?, "app")?,
        },
        "app_reasons" => StepKind::AppReasons {
            user: text(k.req("user")?, "user")?,
            app: text(k.req("app")?, "app")?,
        },
        "roles_needed" => StepKind::RolesNeeded {
            user: text(k.req("user")?, "user")?,
            app: text(k.req("app")?, "app")?,
        },
        "who_can_open" => StepKind::WhoCanOpen {
            app: text(k.req("app")?, "app")?,
        },
        "column_check" => StepKind::ColumnCheck {
            user: text(k.req("user")?, "user")?,
            record: text(k.req("record")?, "record")?,
            column: text(k.req("column")?, "column")?,
            update: column_update(k.opt("access"))?,
        },
        "column_holders" => StepKind::ColumnHolders {
            table: text(k.req("table")?, "table")?,
            column: text(k.req("column")?, "column")?,
            update: column_update(k.opt("access"))?,
        },
        "granting_roles" => StepKind::GrantingRoles {
            user: text(k.req("user")?, "user")?,
            privilege: privilege(k.req("privilege")?, "privilege")?,
            record: text(k.req("record")?, "record")?,
        },
        "create" => StepKind::Create {
            actor: actor(&mut k)?,
            table: text(k.req("table")?, "table")?,
            id: text(k.req("id")?, "id")?,
            owner: k.opt("owner").map(|o| principal(o, "owner")).transpose()?,
            lookups: match k.opt("lookups") {
                None => Vec::new(),
                Some(l) => map_entries(l, "lookups")?
                    .into_iter()
                    .map(|(name, v)| Ok((name, text(v, "lookup value")?)))
                    .collect::<Result<_>>()?,
            },
            fields: k
                .opt("fields")
                .map(|f| fields(f, "fields"))
                .transpose()?
                .unwrap_or_default(),
        },
        "update" => StepKind::Update {
            actor: actor(&mut k)?,
            record: text(k.req("record")?, "record")?,
            fields: fields(k.req("fields")?, "fields")?,
        },
        "delete" => StepKind::Delete {
            actor: actor(&mut k)?,
            record: text(k.req("record")?, "record")?,
        },
        "assign" => StepKind::Assign {
            actor: actor(&mut k)?,
            record: text(k.req("record")?, "record")?,
            owner: principal(k.req("owner")?, "owner")?,
        },
        "share" | "modify_share" => StepKind::Share {
            actor: actor(&mut k)?,
            record: text(k.req("record")?, "record")?,
            principal: principal(k.req("principal")?, "principal")?,
            rights: rights(k.req("rights")?, "rights")?,
            modify: verb == "modify_share",
        },
        "revoke" => StepKind::Revoke {
            actor: actor(&mut k)?,
            record: text(k.req("record")?, "record")?,
            principal: principal(k.req("principal")?, "principal")?,
        },
        "associate" => StepKind::Associate {
            actor: actor(&mut k)?,
            record: text(k.req("record")?, "record")?,
            lookup: text(k.req("lookup")?, "lookup")?,
            parent: text(k.req("parent")?, "parent")?,
        },
        "disassociate" => StepKind::Disassociate {
            actor: actor(&mut k)?,
            record: text(k.req("record")?, "record")?,
            lookup: text(k.req("lookup")?, "lookup")?,
        },
        "add_access_team_member" => StepKind::AddAccessTeamMember {
            actor: actor(&mut k)?,
            record: text(k.req("record")?, "record")?,
            template: text(k.req("template")?, "template")?,
            user: text(k.req("user")?, "user")?,
        },
        "assign_role" => StepKind::AssignRole {
            actor: actor(&mut k)?,
            principal: principal(k.req("principal")?, "principal")?,
            role: text(k.req("role")?, "role")?,
            business_unit: opt_text(k.opt("business_unit"), "business_unit")?,
        },
        "remove_role" => StepKind::RemoveRole {
            actor: actor(&mut k)?,
            principal: principal(k.req("principal")?, "principal")?,
            role: text(k.req("role")?, "role")?,
        },
        "add_team_member" | "remove_team_member" => {
            let actor = actor(&mut k)?;
            let team = text(k.req("team")?, "team")?;
            let user = text(k.req("user")?, "user")?;
            if verb == "add_team_member" {
                StepKind::AddTeamMember { actor, team, user }
            } else {
                StepKind::RemoveTeamMember { actor, team, user }
            }
        }
        "operation" => {
            let caller = actor(&mut k)?;
            let keys: Vec<&str> = k
                .entries
                .iter()
                .map(|(key, _, _)| *key)
                .filter(|key| *key != "as")
                .collect();
            let mut object = serde_json::Map::new();
            for key in keys {
                if let Some(v) = k.opt(key) {
                    object.insert(key.to_owned(), node_json(v));
                }
            }
            let op: Operation = serde_json::from_value(serde_json::Value::Object(object))
                .map_err(|e| LoadError::new(body.line, format!("{what}: {e}")))?;
            StepKind::Operation {
                caller,
                op: Box::new(op),
            }
        }
        "dry_run" => {
            let caller = actor(&mut k)?;
            let list = k.req("operations")?;
            let mut ops = Vec::new();
            for (i, item) in seq(list, "operations")?.iter().enumerate() {
                let op: Operation = serde_json::from_value(node_json(item)).map_err(|e| {
                    LoadError::new(item.line, format!("{what}: operation {i}: {e}"))
                })?;
                ops.push(op);
            }
            if ops.is_empty() {
                return Err(LoadError::new(
                    list.line,
                    format!("{what}: `operations` lists at least one operation"),
                ));
            }
            StepKind::DryRun { caller, ops }
        }
        "cheapest_licence" => StepKind::CheapestLicence {
            user: text(k.req("user")?, "user")?,
        },
        "licence_fit" => StepKind::LicenceFit {
            user: text(k.req("user")?, "user")?,
        },
        "licence_exceeds" => StepKind::LicenceExceeds {
            role: text(k.req("role")?, "role")?,
            licence: text(k.req("licence")?, "licence")?,
        },
        "move_user" => StepKind::MoveUser {
            actor: actor(&mut k)?,
            user: text(k.req("user")?, "user")?,
            business_unit: text(k.req("business_unit")?, "business_unit")?,
        },
        "rule_violations" => StepKind::RuleViolations {
            user: opt_text(k.opt("user"), "user")?,
        },
        "batch" => {
            let caller = actor(&mut k)?;
            let ops = seq(k.req("operations")?, "operations")?
                .iter()
                .enumerate()
                .map(|(i, o)| operation_node(o, &format!("{what}: operation {i}")))
                .collect::<Result<Vec<_>>>()?;
            if ops.is_empty() {
                return Err(LoadError::new(body.line, format!("{what}: no operations")));
            }
            StepKind::Batch { caller, ops }
        }
        _ => StepKind::SetManager {
            actor: actor(&mut k)?,
            user: text(k.req("user")?, "user")?,
            manager: match k.req("manager")? {
                m if m.is_null() => None,
                m => Some(text(m, "manager")?),
            },
        },
    };
    k.finish()?;
    let expect = parse_expect(verb, expect_node, &what)?;
    if reason.is_some() && verb != "check" {
        return Err(LoadError::new(
            n.line,
            format!("{what}: `reason` is for `check` steps"),
        ));
    }
    if let Some(node) = says_node
        && !matches!(expect, Expect::Outcome(Outcome::Denied | Outcome::Invalid))
    {
        return Err(LoadError::new(
            node.line,
            format!("{what}: `says` is for actions expected `denied` or `invalid`"),
        ));
    }
    Ok(Step {
        number,
        line: n.line,
        verb,
        kind,
        expect,
        reason,
        says,
    })
}

/// A column step's `access`: `read` (the default) or `update`.
fn column_update(node: Option<&Node>) -> Result<bool> {
    match node {
        None => Ok(false),
        Some(n) => match n.scalar() {
            Some("read") => Ok(false),
            Some("update") => Ok(true),
            _ => Err(LoadError::new(n.line, "access must be `read` or `update`")),
        },
    }
}

fn parse_expect(verb: &str, node: &Node, what: &str) -> Result<Expect> {
    let word = |allowed: &[&str]| -> Result<String> {
        match node.scalar() {
            Some(t) if allowed.contains(&t) => Ok(t.to_owned()),
            _ => Err(LoadError::new(
                node.line,
                format!("{what}: expect must be one of {}", allowed.join(", ")),
            )),
        }
    };
    Ok(match verb {
        "check" | "open_app" | "column_check" => {
            Expect::Decision(word(&["allow", "deny"])? == "allow")
        }
        "roles_needed" if node.scalar().is_some() => {
            word(&["invalid"])?;
            Expect::Outcome(Outcome::Invalid)
        }
        "app_reasons" | "roles_needed" | "who_can_open" | "column_holders" | "granting_roles" => {
            Expect::Names(names(node, "expect")?.into_iter().map(|(n, _)| n).collect())
        }
        "access" => {
            let mut list = Vec::new();
            for item in seq(node, "expect")? {
                let p = privilege(item, "expect")?;
                if p == Privilege::Create {
                    return Err(LoadError::new(
                        item.line,
                        format!("{what}: `create` is not a right on an existing record"),
                    ));
                }
                list.push(p);
            }
            Expect::Rights(list)
        }
        "licence_fit" => Expect::Names(vec![word(&["fits", "over_licensed", "under_licensed"])?]),
        "list" | "who_has_access" | "role_holders" | "rule_violations" | "cheapest_licence"
        | "licence_exceeds" => {
            Expect::Names(names(node, "expect")?.into_iter().map(|(n, _)| n).collect())
        }
        "read" => match node.scalar() {
            Some("deny") => Expect::Decision(false),
            _ => Expect::Fields(fields(node, "expect")?),
        },
        "dry_run" => match node.scalar() {
            Some("denied") => Expect::Outcome(Outcome::Denied),
            Some("invalid") => Expect::Outcome(Outcome::Invalid),
            _ => Expect::Names(
                seq(node, "expect")?
                    .iter()
                    .map(|line| text(line, "expect"))
                    .collect::<Result<_>>()?,
            ),
        },
        _ => Expect::Outcome(match word(&["ok", "denied", "invalid"])?.as_str() {
            "ok" => Outcome::Ok,
            "denied" => Outcome::Denied,
            _ => Outcome::Invalid,
        }),
    })
}
