//! The entities of an organisation's security model, exactly as configured.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ids::{
    BusinessUnitId, PositionId, Principal, RecordId, RelationshipId, RoleId, TableId, TeamId,
    TemplateId, UserId,
};
use crate::privilege::{AccessMask, Depth, Privilege};

/// Who can own the records of a table.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ownership {
    /// Records are owned by a user or a team and belong to a business unit.
    UserOrTeam,
    /// Records belong to the organisation: privileges are on/off (`none` or `organization`).
    Organization,
    /// Records belong to a business unit without an owner (the built-in `team`, `businessunit`, `role`).
    BusinessUnit,
}

/// A column of a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Logical name.
    pub name: String,
    /// Whether column (field) security applies.
    pub secured: bool,
}

/// Dataverse's standard tables whose entity set is not the logical name and `s`.
pub const IRREGULAR_ENTITY_SETS: [(&str, &str); 6] = [
    ("opportunity", "opportunities"),
    ("territory", "territories"),
    ("transactioncurrency", "transactioncurrencies"),
    ("activityparty", "activityparties"),
    ("category", "categories"),
    ("systemuserroles", "systemuserrolescollection"),
];

/// A table (Dataverse entity).
#[derive(Clone, Debug)]
pub struct Table {
    /// Logical name.
    pub name: String,
    /// Who can own its records.
    pub ownership: Ownership,
    /// Declared columns; records may carry other, unsecured columns too.
    pub columns: Vec<Column>,
    /// One of `systemuser`, `team`, `businessunit`, `role`.
    pub built_in: bool,
    /// The Web API's entity set name when declared (else [`Table::entity_set`] derives it).
    pub entity_set: Option<String>,
}

impl Table {
    /// The Web API's entity set name: the declared one, Dataverse's own for its standard tables
    /// whose plural is irregular, else the logical name, lowercased, and `s`.
    #[must_use]
    pub fn entity_set(&self) -> String {
        if let Some(set) = &self.entity_set {
            return set.clone();
        }
        let irregular = IRREGULAR_ENTITY_SETS
            .iter()
            .find(|(table, _)| *table == self.name);
        match irregular {
            Some((_, set)) => (*set).to_owned(),
            // Dataverse's entity sets are lowercase (clients lowercase what they send).
            None => format!("{}s", self.name.to_lowercase()),
        }
    }

    /// Whether this is the table's entity set name (as [`Table::entity_set`] spells it),
    /// compared without building the name: every Web API request resolves one or two.
    #[must_use]
    pub fn has_entity_set(&self, name: &str) -> bool {
        if let Some(set) = &self.entity_set {
            return set == name;
        }
        if let Some((_, set)) = IRREGULAR_ENTITY_SETS
            .iter()
            .find(|(table, _)| *table == self.name)
        {
            return *set == name;
        }
        name.strip_suffix('s').is_some_and(|stem| {
            self.name
                .chars()
                .flat_map(char::to_lowercase)
                .eq(stem.chars())
        })
    }

    /// Whether the named column is secured.
    #[must_use]
    pub fn is_secured(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c.secured && c.name == column)
    }
}

/// How an action on a parent record flows to its children (assign, share, unshare, reparent).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CascadeType {
    /// Every related record ("Cascade All").
    Cascade,
    /// Only active related records ("Cascade Active").
    Active,
    /// Only related records owned by the parent's owner ("Cascade User-Owned").
    UserOwned,
    /// Nothing flows ("Cascade None").
    None,
}

/// What deleting a parent does to its children.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DeleteBehavior {
    /// Children are deleted too.
    Cascade,
    /// The children's lookup is cleared.
    RemoveLink,
    /// The delete is refused while children exist.
    Restrict,
}

/// A relationship's cascade configuration.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Cascade {
    /// Assign the parent → the children.
    pub assign: CascadeType,
    /// Share the parent → the children inherit the share.
    pub share: CascadeType,
    /// Revoke a parent share → the children lose it.
    pub unshare: CascadeType,
    /// Set the lookup → the parent's owner and sharees inherit access to the child.
    pub reparent: CascadeType,
    /// Delete the parent → see [`DeleteBehavior`].
    pub delete: DeleteBehavior,
}

impl Cascade {
    /// `parental`: everything cascades.
    pub const PARENTAL: Cascade = Cascade {
        assign: CascadeType::Cascade,
        share: CascadeType::Cascade,
        unshare: CascadeType::Cascade,
        reparent: CascadeType::Cascade,
        delete: DeleteBehavior::Cascade,
    };
    /// `referential`: nothing cascades; delete removes the link.
    pub const REFERENTIAL: Cascade = Cascade {
        assign: CascadeType::None,
        share: CascadeType::None,
        unshare: CascadeType::None,
        reparent: CascadeType::None,
        delete: DeleteBehavior::RemoveLink,
    };
    /// `referential_restrict_delete`: nothing cascades; delete is refused while children exist.
    pub const REFERENTIAL_RESTRICT_DELETE: Cascade = Cascade {
        assign: CascadeType::None,
        share: CascadeType::None,
        unshare: CascadeType::None,
        reparent: CascadeType::None,
        delete: DeleteBehavior::Restrict,
    };
}

/// A one-to-many relationship: `child.lookup` refers to a `parent` record.
#[derive(Clone, Debug)]
pub struct Relationship {
    /// Schema name.
    pub name: String,
    /// The referenced (one) side.
    pub parent: TableId,
    /// The referencing (many) side.
    pub child: TableId,
    /// The lookup column on the child.
    pub lookup: String,
    /// Cascade configuration.
    pub cascade: Cascade,
}

/// Member's privilege inheritance of a role held by a team (D4).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Inheritance {
    /// `isinherited="1"`: members also use the role's privileges on their own records, at User depth.
    UserAndTeam,
    /// `isinherited="0"`: members use the role's privileges only on behalf of the team.
    TeamOnly,
}

/// A security role: the privilege × depth grid per table plus miscellaneous privileges.
#[derive(Clone, Debug)]
pub struct Role {
    /// Name, unique in the organisation.
    pub name: String,
    /// The unit the role belongs to; it is usable there and in every unit below.
    pub business_unit: BusinessUnitId,
    /// Member's privilege inheritance when a team holds the role.
    pub inheritance: Inheritance,
    /// The all-powerful, non-editable role (D10).
    pub system_administrator: bool,
    /// Depth per privilege ([`Privilege::index`]) per table.
    pub privileges: BTreeMap<TableId, [Depth; 8]>,
    /// Miscellaneous privileges by `prv` name.
    pub misc: Vec<String>,
    /// Set when the role is deprecated: assigning it is refused, naming the successors.
    pub deprecation: Option<Deprecation>,
    /// A deleted role keeps its dense id (a tombstone): no name, no holders, no apps.
    pub deleted: bool,
}

/// Why a role is deprecated and which roles to assign instead (`deprecate_role`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deprecation {
    /// The administrator's message.
    pub message: String,
    /// The roles to use instead.
    pub successors: Vec<RoleId>,
}

impl Role {
    /// The depth this role gives for a privilege on a table.
    #[must_use]
    pub fn depth(&self, table: TableId, privilege: Privilege) -> Depth {
        self.privileges
            .get(&table)
            .map_or(Depth::None, |d| d[privilege.index()])
    }
}

/// A role held by a user.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RoleAssignment {
    /// The role.
    pub role: RoleId,
    /// In the ownership-across-units ("matrix") model, the unit the role was assigned in;
    /// otherwise `None` and the role applies from the user's own unit.
    pub business_unit: Option<BusinessUnitId>,
}

/// A user (Dataverse `systemuser`).
#[derive(Clone, Debug)]
pub struct User {
    /// Name (the scenario files' user id).
    pub name: String,
    /// The one unit the user belongs to.
    pub business_unit: BusinessUnitId,
    /// Roles assigned directly.
    pub roles: Vec<RoleAssignment>,
    /// Manager (manager hierarchy).
    pub manager: Option<UserId>,
    /// Position (position hierarchy).
    pub position: Option<PositionId>,
    /// A disabled user is refused everything.
    pub enabled: bool,
    /// Teams the user is a member of, sorted.
    pub teams: Vec<TeamId>,
    /// The user's own `systemuser` record.
    pub record: RecordId,
}

/// Team types, with Dataverse's `teamtype` values (D5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TeamType {
    /// 0: owns records, holds roles.
    Owner,
    /// 1: records are shared with it; no roles, no ownership.
    Access,
    /// 2: an Entra security group team; like an owner team, membership synced.
    SecurityGroup,
    /// 3: an Entra Office group team; like an owner team, membership synced.
    OfficeGroup,
}

impl TeamType {
    /// Dataverse's numeric `teamtype`.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            TeamType::Owner => 0,
            TeamType::Access => 1,
            TeamType::SecurityGroup => 2,
            TeamType::OfficeGroup => 3,
        }
    }

    /// Whether teams of this type may hold roles and own records.
    #[must_use]
    pub fn can_hold_roles(self) -> bool {
        self != TeamType::Access
    }
}

/// A team.
#[derive(Clone, Debug)]
pub struct Team {
    /// Name, unique in the organisation.
    pub name: String,
    /// Type.
    pub kind: TeamType,
    /// The one unit the team belongs to.
    pub business_unit: BusinessUnitId,
    /// Members, sorted.
    pub members: Vec<UserId>,
    /// Roles (owner and group teams only).
    pub roles: Vec<RoleId>,
    /// For a record access team: the record and the template it was created from.
    pub record_team: Option<(RecordId, TemplateId)>,
}

/// A position of the position hierarchy.
#[derive(Clone, Debug)]
pub struct Position {
    /// Name.
    pub name: String,
    /// Parent position.
    pub parent: Option<PositionId>,
}

/// Whether a record is active (statecode 0) or not.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RecordState {
    /// Active.
    Active,
    /// Inactive.
    Inactive,
}

/// A column value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// No value (also what a secured column reads as without permission).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Text(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(s) => f.write_str(s),
        }
    }
}

/// A column name as records hold it: one shared copy per name (D102), in one word (a thin
/// pointer), so that a record's column entry is 32 bytes, the value's 24 and this. Reads as
/// the name (`Deref<Target = str>`); compares, hashes, orders and prints as the name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ColumnName(Arc<Box<str>>);

impl ColumnName {
    /// A new copy of a name (records share copies through `Organization::intern_column`).
    #[must_use]
    pub fn new(name: &str) -> Self {
        ColumnName(Arc::new(Box::from(name)))
    }

    /// Whether two names are the same copy.
    #[must_use]
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// The shared copy's address: equal for two handles of one copy.
    pub(crate) fn address(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

impl std::ops::Deref for ColumnName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for ColumnName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ColumnName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ColumnName {
    fn from(name: &str) -> Self {
        ColumnName::new(name)
    }
}

impl std::fmt::Debug for ColumnName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self.0, f)
    }
}

impl std::fmt::Display for ColumnName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An explicit share (a PrincipalObjectAccess row's `accessrightsmask`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Share {
    /// Who the record is shared with.
    pub principal: Principal,
    /// The rights shared.
    pub mask: AccessMask,
}

/// A per-record column share (PrincipalObjectAttributeAccess).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldShare {
    /// The secured column.
    pub column: String,
    /// A user or a team.
    pub principal: Principal,
    /// May read the column on this record.
    pub read: bool,
    /// May update the column on this record.
    pub update: bool,
}

/// A list most records leave empty, in one word: nothing when empty, else a box holding the
/// boxed slice (a record pays 8 bytes for each such list, not 16 or 24). Reads as a slice.
#[derive(Clone, PartialEq, Eq)]
pub struct RareList<T>(Option<Box<Box<[T]>>>);

impl<T> Default for RareList<T> {
    fn default() -> Self {
        RareList(None)
    }
}

impl<T> RareList<T> {
    /// The entries as a vector (to change them; put back with `from`).
    #[must_use]
    pub fn into_vec(self) -> Vec<T> {
        self.0.map_or_else(Vec::new, |b| (*b).into_vec())
    }
}

impl<T> From<Vec<T>> for RareList<T> {
    fn from(v: Vec<T>) -> Self {
        if v.is_empty() {
            RareList(None)
        } else {
            RareList(Some(Box::new(v.into_boxed_slice())))
        }
    }
}

impl<T> std::ops::Deref for RareList<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.0.as_deref().map_or(&[], |b| b)
    }
}

impl<T> std::ops::DerefMut for RareList<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self.0.as_deref_mut() {
            Some(b) => b,
            None => &mut [],
        }
    }
}

impl<'a, T> IntoIterator for &'a RareList<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for RareList<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A record: its security facts and its column values.
///
/// Laid out for millions (`memory.rs`): the key is shared with the name map, lists are boxed
/// slices of their exact length (no spare capacity), column names are shared by every record
/// that has the column (`Organization::intern_column`), and lists most records leave empty
/// take one word ([`RareList`]).
#[derive(Clone)]
pub struct Record {
    /// The external key (the scenario files' record id).
    pub key: Box<str>,
    /// Table.
    pub table: TableId,
    /// Owner.
    pub owner: Owner,
    /// Owning business unit.
    pub business_unit: BusinessUnitId,
    /// State.
    pub state: RecordState,
    /// False once deleted.
    pub alive: bool,
    /// Parental lookups set on this record: relationship and parent record.
    pub lookups: Box<[(RelationshipId, RecordId)]>,
    /// Column values (secured or not), in insertion order.
    pub fields: Box<[(ColumnName, Value)]>,
    /// Explicit shares, at most one per principal (record access teams included).
    pub shares: RareList<Share>,
    /// Column shares.
    pub field_shares: RareList<FieldShare>,
    /// Record access teams, one per template.
    pub access_teams: RareList<(TemplateId, TeamId)>,
    /// When it was created and last changed, and by whom (D165).
    pub stamps: Stamps,
}

/// The record as the canonical dump shows it: everything but its [`Stamps`], which an export
/// does not carry (D165: a record created again is created at another time).
impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("key", &self.key)
            .field("table", &self.table)
            .field("owner", &self.owner)
            .field("business_unit", &self.business_unit)
            .field("state", &self.state)
            .field("alive", &self.alive)
            .field("lookups", &self.lookups)
            .field("fields", &self.fields)
            .field("shares", &self.shares)
            .field("field_shares", &self.field_shares)
            .field("access_teams", &self.access_teams)
            .finish()
    }
}

/// When a record was created and last changed, and who did it (D165): Dataverse's
/// `createdon`, `modifiedon`, `createdby` and `modifiedby`. Times are whole seconds since the
/// Unix epoch (Dataverse's precision; 0 = unknown, as for a record made outside a store), the
/// writers raw user ids or [`Stamps::SYSTEM`]. Set by the engine from the organisation's clock
/// ([`crate::Organization::set_clock`], the time the log gives each operation) and the acting
/// user, so a replay of the log stamps every record exactly as the write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamps {
    /// Seconds since the Unix epoch when created.
    pub created_at: u32,
    /// Seconds since the Unix epoch when last changed (created, updated, assigned, moved, a
    /// lookup set or cleared; sharing is not a change of the record).
    pub modified_at: u32,
    /// The user who created it (raw id), or [`Stamps::SYSTEM`].
    pub created_by: u32,
    /// The user who last changed it (raw id), or [`Stamps::SYSTEM`].
    pub modified_by: u32,
}

impl Default for Stamps {
    fn default() -> Self {
        Stamps {
            created_at: 0,
            modified_at: 0,
            created_by: Stamps::SYSTEM,
            modified_by: Stamps::SYSTEM,
        }
    }
}

impl Stamps {
    /// The writer of a system operation (setup, an import, `as: system`).
    pub const SYSTEM: u32 = u32::MAX;

    /// The stamps of a record created at `at` by `by`.
    #[must_use]
    pub fn new(at: u32, by: u32) -> Self {
        Stamps {
            created_at: at,
            modified_at: at,
            created_by: by,
            modified_by: by,
        }
    }

    /// The user who created the record (`None`: the system).
    #[must_use]
    pub fn creator(&self) -> Option<UserId> {
        (self.created_by != Self::SYSTEM).then(|| UserId::from_raw(self.created_by))
    }

    /// The user who last changed the record (`None`: the system).
    #[must_use]
    pub fn modifier(&self) -> Option<UserId> {
        (self.modified_by != Self::SYSTEM).then(|| UserId::from_raw(self.modified_by))
    }

    /// A stamp's time as RFC 3339 text to the second (`2026-12-07T22:30:00Z`); `None` when
    /// unknown (0). Every place that shows a stamp writes it through this.
    #[must_use]
    pub fn text(seconds: u32) -> Option<String> {
        (seconds > 0).then(|| crate::rfc3339(i64::from(seconds) * 1000))
    }

    /// Seconds since the Unix epoch of a time in milliseconds, clamped to what a stamp holds.
    #[must_use]
    pub fn seconds(at_ms: i64) -> u32 {
        u32::try_from(at_ms.div_euclid(1000).max(0)).unwrap_or(u32::MAX)
    }
}

impl Record {
    /// The key's heap (`memory.rs`).
    pub(crate) fn key_heap(&self) -> usize {
        // Counted here; the name map finds it through the record's id.
        crate::memory::heap(self.key.len())
    }

    /// The column values' heap (`memory.rs`): the list, the column names and the text.
    pub(crate) fn fields_heap(&self) -> usize {
        use crate::memory::{heap, value_heap};
        // Column names are shared (interned): counted once, in the model.
        heap(std::mem::size_of_val::<[(ColumnName, Value)]>(&self.fields))
            + self
                .fields
                .iter()
                .map(|(_, v)| value_heap(v))
                .sum::<usize>()
    }

    /// The value of a column (`Null` when unset).
    #[must_use]
    pub fn field(&self, column: &str) -> &Value {
        self.fields
            .iter()
            .find(|(c, _)| &**c == column)
            .map_or(&Value::Null, |(_, v)| v)
    }

    /// [`Record::field`], looking first at place `hint` among the record's fields (where the
    /// records of a table written alike hold the column): one comparison instead of a walk.
    #[must_use]
    pub(crate) fn field_near(&self, column: &str, hint: Option<usize>) -> &Value {
        if let Some((c, v)) = hint.and_then(|i| self.fields.get(i))
            && &**c == column
        {
            return v;
        }
        self.field(column)
    }

    /// The parent record set through a relationship.
    #[must_use]
    pub fn lookup(&self, relationship: RelationshipId) -> Option<RecordId> {
        self.lookups
            .iter()
            .find(|(r, _)| *r == relationship)
            .map(|(_, p)| *p)
    }

    /// The explicit share of a principal.
    #[must_use]
    pub fn share_of(&self, principal: Principal) -> AccessMask {
        self.shares
            .iter()
            .find(|s| s.principal == principal)
            .map_or(AccessMask::NONE, |s| s.mask)
    }
}

pub use crate::ids::Owner;

/// An access team template.
#[derive(Clone, Debug)]
pub struct Template {
    /// Name.
    pub name: String,
    /// The table whose records get access teams from this template.
    pub table: TableId,
    /// Rights the access team gets on its record.
    pub rights: AccessMask,
}

/// One column permission of a field security profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnPermission {
    /// Table.
    pub table: TableId,
    /// Column.
    pub column: String,
    /// May read.
    pub read: bool,
    /// May update.
    pub update: bool,
    /// May set on create.
    pub create: bool,
}

/// A field (column) security profile.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Name.
    pub name: String,
    /// Member users and teams.
    pub members: Vec<Principal>,
    /// Column permissions.
    pub permissions: Vec<ColumnPermission>,
}

/// A model-driven app and the roles associated with it (D6).
#[derive(Clone, Debug)]
pub struct App {
    /// Name.
    pub name: String,
    /// Roles that open it.
    pub roles: Vec<RoleId>,
    /// Table privileges the app's work needs (D51), sorted by table and privilege.
    pub needs: Vec<crate::apps::AppNeed>,
}

/// Which hierarchy the hierarchy security follows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HierarchyModel {
    /// Users' managers.
    Manager,
    /// The position tree.
    Position,
}

/// Hierarchy security settings (D3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HierarchySettings {
    /// Manager or position model.
    pub model: HierarchyModel,
    /// Levels below the manager that are reachable.
    pub depth: u8,
    /// Tables it applies to; `None` means every user-or-team owned table.
    pub tables: Option<Vec<TableId>>,
    /// Manager model only: a manager reaches a report only from the same or the parent unit.
    pub managers_must_be_in_same_or_parent_business_unit: bool,
}

/// Audit switches (D12): the environment, then each table, then each column must be on for a
/// data change to be audited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditSettings {
    /// The environment switch.
    pub enabled: bool,
    /// Retention of new entries, in days (-1 = forever).
    pub retention_days: i64,
    /// Record user access (sign-ins) too.
    pub user_access: bool,
    /// Tables whose data changes are audited (by logical name).
    pub tables: std::collections::BTreeSet<String>,
    /// Columns excluded from auditing, as `table.column`.
    pub columns_off: std::collections::BTreeSet<String>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            enabled: false,
            retention_days: 30,
            user_access: false,
            tables: std::collections::BTreeSet::new(),
            columns_off: std::collections::BTreeSet::new(),
        }
    }
}

impl AuditSettings {
    /// Whether changes to records of `table` are audited.
    #[must_use]
    pub fn table_on(&self, table: &str) -> bool {
        self.enabled && self.tables.contains(table)
    }

    /// Whether changes to `table.column` are audited.
    #[must_use]
    pub fn column_on(&self, table: &str, column: &str) -> bool {
        self.table_on(table) && !self.columns_off.contains(&format!("{table}.{column}"))
    }
}

/// Organisation settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// On assign, the previous owner keeps a share with every right.
    pub share_to_previous_owner_on_assign: bool,
    /// The "matrix" model: roles are assigned in a unit, records may belong to any unit.
    pub ownership_across_business_units: bool,
    /// Moving a user keeps their roles.
    pub do_not_remove_roles_on_change_business_unit: bool,
    /// Moving a user (or assigning a record) moves their records to the owner's new unit.
    pub always_move_record_to_owner_business_unit: bool,
    /// Hierarchy security; `None` = off.
    pub hierarchy: Option<HierarchySettings>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            share_to_previous_owner_on_assign: false,
            ownership_across_business_units: false,
            do_not_remove_roles_on_change_business_unit: false,
            always_move_record_to_owner_business_unit: true,
            hierarchy: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, entity_set: Option<&str>) -> Table {
        Table {
            name: name.to_owned(),
            ownership: Ownership::UserOrTeam,
            columns: Vec::new(),
            built_in: false,
            entity_set: entity_set.map(str::to_owned),
        }
    }

    #[test]
    fn an_entity_set_is_matched_as_it_is_spelt() {
        let cases = [
            table("account", None),
            table("opportunity", None),
            table("systemuserroles", None),
            table("cr123_Project", None),
            table("cr123_widget", Some("cr123_gadgets")),
        ];
        for t in &cases {
            let set = t.entity_set();
            assert!(t.has_entity_set(&set), "{} / {set}", t.name);
            for other in [
                format!("{set}x"),
                set[..set.len() - 1].to_owned(),
                set.to_uppercase(),
                t.name.clone(),
                String::new(),
                "s".to_owned(),
            ] {
                assert!(!t.has_entity_set(&other), "{} / {other}", t.name);
            }
        }
        assert!(!table("opportunity", None).has_entity_set("opportunitys"));
        assert!(!table("cr123_widget", Some("cr123_gadgets")).has_entity_set("cr123_widgets"));
    }
}
