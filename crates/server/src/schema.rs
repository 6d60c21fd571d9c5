//! The request and answer bodies of the native API as Rust types, from which the OpenAPI
//! document's schemas are generated (`utoipa::ToSchema`; the routes and their documentation are
//! in `routes.rs`).
//!
//! Two kinds of types live here:
//! - **answers the handlers build**: the handler fills the type and serializes it, so the schema
//!   is the shape that is sent. Their fields are declared in alphabetical order: the answers
//!   were `serde_json::json!` objects, whose keys serialize sorted, and the bytes sent stay the
//!   same.
//! - **mirrors** (marked so in their doc comment) of answers whose JSON `strata_ops` or
//!   `strata_app` builds, shared with the CLI: the handler sends that JSON, and
//!   `tests/openapi.rs` validates the real answers of every route against the document, so a
//!   mirror that drifts from the JSON fails the test. Every answer type denies unknown fields
//!   (`additionalProperties: false`): a field added to an answer and not to its type fails too.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

// ----- shared -----

/// Every error answer: `{"error": {"code", "message", "field"?}}`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorAnswer {
    pub(crate) error: ErrorDetail,
}

/// An error: its stable code (`docs/errors.md` gives each one's HTTP status and meaning), the
/// message, and the field at fault.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorDetail {
    /// The stable code.
    pub(crate) code: String,
    /// A JSON Pointer into the body (`/0/fields/name`), or the query parameter or header at
    /// fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) field: Option<String>,
    /// What is wrong, in words.
    pub(crate) message: String,
}

/// An answer holding only the revision it was made at (or that a write reached).
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RevisionAnswer {
    pub(crate) revision: u64,
}

/// A write: the revision it reached and, per operation, how many changes it made.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct WrittenAnswer {
    pub(crate) changes: Vec<usize>,
    pub(crate) revision: u64,
}

// ----- health -----

/// `GET /healthz`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthAnswer {
    /// `ok`.
    pub(crate) status: &'static str,
}

/// `GET /readyz`: 200 when ready, 503 otherwise (the same shape, with `code` and `error`).
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadyAnswer {
    /// Organisations whose revision in the database this node has not applied yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) behind: Option<u64>,
    /// Why not ready: `corrupt_log`, `behind`, or the database's error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Organisations not served: their operation log failed verification.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) isolated: Option<Vec<IsolatedOrg>>,
    /// Milliseconds since this node was last caught up with the database.
    pub(crate) lag_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) organizations: Option<usize>,
    /// `ready`, `degraded`, `behind` or `unavailable`.
    pub(crate) status: &'static str,
}

/// An organisation not served.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct IsolatedOrg {
    pub(crate) code: String,
    pub(crate) error: String,
    pub(crate) organization: String,
}

// ----- organisations -----

/// An organisation and its revision.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrgAnswer {
    pub(crate) name: String,
    pub(crate) revision: u64,
}

/// `GET /api/v1/orgs`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrgList {
    pub(crate) organizations: Vec<OrgAnswer>,
}

/// `GET …/digest`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct DigestAnswer {
    /// The derived indexes equal a rebuild (absent with `indexes=false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) indexes_current: Option<bool>,
    /// The record index equals a rebuild (absent with `indexes=false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) record_index_current: Option<bool>,
    pub(crate) records: usize,
    pub(crate) revision: u64,
    /// SHA-256 of the canonical dump (hex).
    pub(crate) sha256: String,
}

/// `POST …/api-keys` (201): the key's secret is shown once.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyAnswer {
    pub(crate) id: String,
    pub(crate) key: String,
    pub(crate) user: String,
}

/// One operation (`crates/ops`: tagged by `op`, unknown fields refused; `docs/operations.md`).
#[derive(Serialize, ToSchema, Debug)]
#[allow(
    dead_code,
    reason = "a schema only: the body is read as strata_ops::Operation"
)]
pub(crate) struct OperationBody {
    /// The operation's name (`add_user`, `assign_role`, `insert_record`, `share`…); its other
    /// fields depend on it.
    op: String,
}

/// The body of `POST …/operations`: one operation or a list, applied atomically.
#[derive(Serialize, ToSchema, Debug)]
#[serde(untagged)]
#[allow(
    dead_code,
    reason = "a schema only: the body is read as strata_ops::Operation"
)]
pub(crate) enum OperationsBody {
    One(OperationBody),
    Many(Vec<OperationBody>),
}

/// `POST …/operations`: a write (`changes` per operation how many, `revision` reached) or,
/// with `?dry_run=true`, a dry run (`dry_run`, `changes` by names, `difference`, `revision`
/// tried on — mirror of `strata_app::DryRun::to_json`).
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct OperationsAnswer {
    pub(crate) changes: OperationsChanges,
    /// A dry run's access difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) difference: Option<AccessDifference>,
    /// `true` on a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dry_run: Option<bool>,
    pub(crate) revision: u64,
}

/// Per operation: how many changes a write made, or what a dry run would change.
#[derive(Serialize, ToSchema, Debug)]
#[serde(untagged)]
pub(crate) enum OperationsChanges {
    Counts(Vec<usize>),
    #[allow(
        dead_code,
        reason = "a dry run's answer is strata_app's JSON (a mirror)"
    )]
    Described(Vec<OperationChanges>),
}

// ----- questions -----

/// `POST …/check` and `POST …/columns/check`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AllowedAnswer {
    pub(crate) allowed: bool,
    pub(crate) revision: u64,
}

/// A grant path of a decision: its kind and its text.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantPathEntry {
    pub(crate) kind: String,
    pub(crate) text: String,
}

/// The roles that would grant a denied privilege at the depth needed (D52).
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct WouldGrant {
    pub(crate) depth: String,
    pub(crate) roles: Vec<String>,
}

/// Mirror of `strata_ops::decision_json`: a decision with every grant path or the denial.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Decision {
    pub(crate) allowed: bool,
    /// `user_disabled`, `record_deleted`, `no_privilege`, `no_access_path`.
    #[schema(required = true)]
    pub(crate) denial: Option<String>,
    pub(crate) explanation: String,
    pub(crate) paths: Vec<GrantPathEntry>,
    pub(crate) privilege: String,
    #[schema(required = true)]
    pub(crate) record: Option<String>,
    pub(crate) table: String,
    pub(crate) user: String,
    #[schema(required = true)]
    pub(crate) would_grant: Option<WouldGrant>,
}

/// Mirror of `POST …/explain`: `strata_ops::decision_json` and the revision.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExplainAnswer {
    pub(crate) allowed: bool,
    #[schema(required = true)]
    pub(crate) denial: Option<String>,
    pub(crate) explanation: String,
    pub(crate) paths: Vec<GrantPathEntry>,
    pub(crate) privilege: String,
    #[schema(required = true)]
    pub(crate) record: Option<String>,
    pub(crate) revision: u64,
    pub(crate) table: String,
    pub(crate) user: String,
    #[schema(required = true)]
    pub(crate) would_grant: Option<WouldGrant>,
}

/// `GET …/records/{id}`: the record as the user sees it (column security applied).
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordAnswer {
    pub(crate) business_unit: String,
    /// The user who created it; null for the system (D165).
    #[schema(required = true)]
    pub(crate) created_by: Option<String>,
    /// When it was created (RFC 3339, UTC, to the second; null when unknown).
    #[schema(required = true)]
    pub(crate) created_on: Option<String>,
    /// Column → value (`null` where column security hides it).
    pub(crate) fields: serde_json::Map<String, Value>,
    pub(crate) guid: String,
    pub(crate) id: String,
    /// The user who last changed it; null for the system.
    #[schema(required = true)]
    pub(crate) modified_by: Option<String>,
    /// When it was last changed (RFC 3339, UTC, to the second; null when unknown).
    #[schema(required = true)]
    pub(crate) modified_on: Option<String>,
    #[schema(required = true)]
    pub(crate) owner: Option<String>,
    pub(crate) revision: u64,
    /// `active` or `inactive`.
    pub(crate) state: &'static str,
    pub(crate) table: String,
}

/// `GET …/records/{id}/access`: effective rights (RetrievePrincipalAccess).
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordAccessAnswer {
    /// Dataverse's `AccessRights` names, comma-separated.
    #[serde(rename = "AccessRights")]
    pub(crate) dataverse_names: String,
    /// Dataverse's `AccessRights` bits.
    pub(crate) access_rights: u32,
    pub(crate) record: String,
    pub(crate) revision: u64,
    pub(crate) rights: Vec<&'static str>,
    pub(crate) user: String,
}

/// `GET …/records/{id}/who-has-access`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct WhoHasAccessAnswer {
    pub(crate) privilege: &'static str,
    pub(crate) record: String,
    pub(crate) revision: u64,
    pub(crate) users: Vec<String>,
}

/// One row of a list with `select`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListRow {
    pub(crate) fields: serde_json::Map<String, Value>,
    pub(crate) id: String,
}

/// `GET …/tables/{table}/records`: one page of the readable records.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListAnswer {
    /// With `count=true`: how many records match in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) count: Option<u64>,
    /// The next page's cursor, `null` on the last page.
    #[schema(required = true)]
    pub(crate) next_cursor: Option<String>,
    pub(crate) records: Vec<String>,
    pub(crate) revision: u64,
    /// With `select`: each record with the selected columns as the caller sees them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rows: Option<Vec<ListRow>>,
    pub(crate) table: String,
}

// ----- the model and a user's privileges -----

/// Mirror of a unit in `strata_ops::model_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelUnit {
    pub(crate) name: String,
    #[schema(required = true)]
    pub(crate) parent: Option<String>,
}

/// A column of a table.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelColumn {
    pub(crate) name: String,
    pub(crate) secured: bool,
}

/// Mirror of a table in `strata_ops::model_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelTable {
    pub(crate) built_in: bool,
    pub(crate) columns: Vec<ModelColumn>,
    pub(crate) name: String,
    /// `user_or_team`, `organization`, `business_unit`.
    pub(crate) ownership: String,
}

/// Mirror of a relationship in `strata_ops::model_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelRelationship {
    pub(crate) cascade: String,
    pub(crate) child: String,
    pub(crate) lookup: String,
    pub(crate) name: String,
    pub(crate) parent: String,
}

/// A role's deprecation: the message and the roles to use instead.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Deprecation {
    pub(crate) message: String,
    pub(crate) successors: Vec<String>,
}

/// A grid: table → privilege → depth name (a role's granted cells; a licence's ceilings).
#[derive(Serialize, ToSchema, Debug)]
#[serde(transparent)]
pub(crate) struct Grid(pub(crate) BTreeMap<String, BTreeMap<String, String>>);

/// Mirror of a role in `strata_ops::model_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelRole {
    pub(crate) business_unit: String,
    #[schema(required = true)]
    pub(crate) deprecation: Option<Deprecation>,
    /// `user_and_team` or `team_only`.
    pub(crate) inheritance: String,
    pub(crate) misc: Vec<String>,
    pub(crate) name: String,
    pub(crate) privileges: Grid,
    pub(crate) system_administrator: bool,
}

/// A role held by a user, with the unit it is assigned in (when not the user's own).
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelAssignment {
    #[schema(required = true)]
    pub(crate) business_unit: Option<String>,
    pub(crate) role: String,
}

/// Mirror of a user in `strata_ops::model_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelUser {
    pub(crate) business_unit: String,
    pub(crate) enabled: bool,
    #[schema(required = true)]
    pub(crate) manager: Option<String>,
    pub(crate) name: String,
    #[schema(required = true)]
    pub(crate) position: Option<String>,
    pub(crate) roles: Vec<ModelAssignment>,
    pub(crate) teams: Vec<String>,
}

/// Mirror of a team in `strata_ops::model_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelTeam {
    pub(crate) business_unit: String,
    pub(crate) members: Vec<String>,
    pub(crate) name: String,
    /// A record team's record.
    #[schema(required = true)]
    pub(crate) record: Option<String>,
    pub(crate) roles: Vec<String>,
    /// A record team's template.
    #[schema(required = true)]
    pub(crate) template: Option<String>,
    /// `owner`, `access`, `security_group`, `office_group`.
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

/// A column permission of a field security profile.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelColumnPermission {
    pub(crate) column: String,
    pub(crate) create: bool,
    pub(crate) read: bool,
    pub(crate) table: String,
    pub(crate) update: bool,
}

/// Mirror of a field security profile in `strata_ops::model_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelProfile {
    pub(crate) members: Vec<String>,
    pub(crate) name: String,
    pub(crate) permissions: Vec<ModelColumnPermission>,
}

/// The hierarchy security setting.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelHierarchy {
    pub(crate) depth: u32,
    pub(crate) managers_must_be_in_same_or_parent_business_unit: bool,
    /// `manager` or `position`.
    pub(crate) model: String,
}

/// The organisation's settings.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelSettings {
    pub(crate) always_move_record_to_owner_business_unit: bool,
    pub(crate) do_not_remove_roles_on_change_business_unit: bool,
    #[schema(required = true)]
    pub(crate) hierarchy: Option<ModelHierarchy>,
    pub(crate) ownership_across_business_units: bool,
    pub(crate) share_to_previous_owner_on_assign: bool,
}

/// The audit switches.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelAudit {
    pub(crate) columns_off: Value,
    pub(crate) enabled: bool,
    pub(crate) retention_days: i64,
    pub(crate) tables: Vec<String>,
    pub(crate) user_access: bool,
}

/// Mirror of `GET …/model`: `strata_ops::model_json` and the revision.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelAnswer {
    pub(crate) audit: ModelAudit,
    pub(crate) business_units: Vec<ModelUnit>,
    pub(crate) field_security_profiles: Vec<ModelProfile>,
    pub(crate) relationships: Vec<ModelRelationship>,
    pub(crate) revision: u64,
    pub(crate) roles: Vec<ModelRole>,
    pub(crate) settings: ModelSettings,
    pub(crate) tables: Vec<ModelTable>,
    pub(crate) teams: Vec<ModelTeam>,
    pub(crate) users: Vec<ModelUser>,
}

/// A grant held through a team.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct TeamVia {
    pub(crate) team: String,
    /// The role's privileges act for the team only (D4).
    pub(crate) team_only: bool,
}

/// One grant of a privilege: depth, role, the unit its depth is measured from, and the team
/// it comes through (`null`: assigned directly).
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrivilegeGrant {
    pub(crate) depth: String,
    pub(crate) from_unit: String,
    pub(crate) role: String,
    #[schema(required = true)]
    pub(crate) via: Option<TeamVia>,
}

/// Mirror of `GET …/users/{user}/privileges`: `strata_ops::privileges_json` and the revision.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrivilegesAnswer {
    pub(crate) business_unit: String,
    pub(crate) enabled: bool,
    pub(crate) misc: Vec<String>,
    pub(crate) revision: u64,
    /// The System Administrator role the user holds, if any.
    #[schema(required = true)]
    pub(crate) system_administrator: Option<String>,
    /// Table → privilege → every grant.
    pub(crate) tables: BTreeMap<String, BTreeMap<String, Vec<PrivilegeGrant>>>,
    pub(crate) user: String,
}

// ----- audit -----

/// Mirror of a stored audit entry (`strata_store::AuditEntry`) as its reader may see it.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditEntry {
    /// The event: `create`, `update`, `delete`, `assign`, `share`, `assign_role`…
    pub(crate) action: String,
    /// Milliseconds since the Unix epoch.
    pub(crate) at_ms: i64,
    /// Old → new values, rights, the role… (secured values the reader may not read: `null`).
    pub(crate) detail: Value,
    /// The chained HMAC (hex).
    pub(crate) hash: String,
    #[schema(required = true)]
    pub(crate) impersonator: Option<String>,
    #[schema(required = true)]
    pub(crate) record: Option<String>,
    /// Retention in force when written, in days (-1 = forever).
    pub(crate) retention_days: i64,
    pub(crate) revision: u64,
    pub(crate) seq: u64,
    #[schema(required = true)]
    pub(crate) table: Option<String>,
    /// The acting user (`null`: the system).
    #[schema(required = true)]
    pub(crate) user: Option<String>,
}

/// `GET …/audit`: a page of entries in the order asked; `next_after` is the `after` that reads
/// the entries following the page (the next page oldest first), `next_before` the `before`
/// that reads those preceding it (the next page newest first); null when there are none.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditPage {
    #[schema(value_type = Vec<AuditEntry>)]
    pub(crate) entries: Vec<Value>,
    #[schema(required = true)]
    pub(crate) next_after: Option<u64>,
    #[schema(required = true)]
    pub(crate) next_before: Option<u64>,
}

/// `GET …/audit/verify`: the chain is intact, or the first entry that does not verify.
#[derive(Serialize, ToSchema, Debug)]
#[serde(untagged)]
pub(crate) enum AuditVerification {
    Intact(AuditIntact),
    Tampered(AuditTampered),
}

/// The audit chain verifies.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditIntact {
    /// Entries checked.
    pub(crate) entries: u64,
    /// `true`.
    pub(crate) intact: bool,
}

/// The audit chain does not verify.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditTampered {
    /// `false`.
    pub(crate) intact: bool,
    pub(crate) problem: String,
    pub(crate) seq: u64,
}

// ----- AuthZEN -----

/// An AuthZEN decision's context: the explanation and the kinds of the grant paths.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AzContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) grants: Option<Vec<&'static str>>,
    pub(crate) reason: String,
}

/// `POST /access/v1/evaluation`, and each of a batch's.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AzDecision {
    pub(crate) context: AzContext,
    pub(crate) decision: bool,
}

/// `POST /access/v1/evaluations`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AzDecisions {
    pub(crate) evaluations: Vec<AzDecision>,
}

/// A resource found by a search.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AzFound {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

/// The next page's token (empty on the last page).
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AzNextPage {
    pub(crate) next_token: String,
}

/// `POST /access/v1/search/resource`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AzSearchAnswer {
    pub(crate) page: AzNextPage,
    pub(crate) results: Vec<AzFound>,
}

// ----- apps and columns (mirrors of strata_ops::app_answers) -----

/// A table privilege an app needs, at least at a depth.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppNeed {
    pub(crate) depth: String,
    pub(crate) privilege: String,
    pub(crate) table: String,
}

/// Mirror of `strata_ops::app_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct App {
    pub(crate) name: String,
    pub(crate) needs: Vec<AppNeed>,
    pub(crate) roles: Vec<String>,
}

/// Mirror of `GET …/apps`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppsAnswer {
    pub(crate) apps: Vec<App>,
    pub(crate) revision: u64,
}

/// Mirror of `strata_ops::app_access_json`: how a user opens an app.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppOpening {
    #[schema(required = true)]
    pub(crate) role: Option<String>,
    #[schema(required = true)]
    pub(crate) team: Option<String>,
    pub(crate) text: String,
    pub(crate) user: String,
    /// `direct`, `team`, `system_administrator`, `maker`.
    pub(crate) via: String,
}

/// Mirror of `GET …/apps/{app}`: the app and who can open it.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppAnswer {
    pub(crate) name: String,
    pub(crate) needs: Vec<AppNeed>,
    pub(crate) revision: u64,
    pub(crate) roles: Vec<String>,
    pub(crate) users: Vec<AppOpening>,
}

/// A reason a user cannot open an app.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppBlock {
    pub(crate) code: String,
    pub(crate) roles: Vec<String>,
    pub(crate) text: String,
}

/// An app's need the user's roles do not meet.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppMissing {
    pub(crate) depth: String,
    pub(crate) held: String,
    pub(crate) privilege: String,
    pub(crate) table: String,
}

/// Mirror of `GET …/apps/{app}/access`: `strata_ops::app_diagnosis_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppDiagnosis {
    #[schema(required = true)]
    pub(crate) access: Option<AppOpening>,
    pub(crate) allowed: bool,
    pub(crate) app: String,
    pub(crate) missing: Vec<AppMissing>,
    /// How the user opens it, or every reason not (never null).
    pub(crate) reason: String,
    pub(crate) reasons: Vec<AppBlock>,
    pub(crate) revision: u64,
    pub(crate) user: String,
}

/// Mirror of `GET …/apps/{app}/roles-needed`: `strata_ops::role_set_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleSetAnswer {
    pub(crate) app: String,
    /// Each role and the unit it is assigned in (D51).
    pub(crate) assignments: Vec<RoleSetAssignment>,
    pub(crate) candidates: usize,
    /// Proven smallest.
    pub(crate) exact: bool,
    pub(crate) revision: u64,
    pub(crate) roles: Vec<String>,
    pub(crate) searched: u64,
    pub(crate) user: String,
}

/// One role of a smallest role set and where to assign it.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleSetAssignment {
    pub(crate) role: String,
    /// `null`: in the user's own unit; else (ownership across units) the role's own unit.
    #[schema(required = true)]
    pub(crate) business_unit: Option<String>,
}

/// Mirror of `strata_ops::column_source_json`: one source of a column permission.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ColumnSource {
    pub(crate) create: bool,
    /// `system_administrator`, `profile`, `field_share`.
    pub(crate) kind: String,
    #[schema(required = true)]
    pub(crate) profile: Option<String>,
    pub(crate) read: bool,
    #[schema(required = true)]
    pub(crate) role: Option<String>,
    #[schema(required = true)]
    pub(crate) team: Option<String>,
    pub(crate) text: String,
    pub(crate) update: bool,
}

/// A user's access to a column and every source of it.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ColumnHolder {
    pub(crate) create: bool,
    pub(crate) read: bool,
    pub(crate) sources: Vec<ColumnSource>,
    pub(crate) update: bool,
    pub(crate) user: String,
}

/// Mirror of `GET …/tables/{table}/columns/{column}/access`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ColumnAccessAnswer {
    pub(crate) column: String,
    #[schema(required = true)]
    pub(crate) note: Option<String>,
    pub(crate) revision: u64,
    pub(crate) secured: bool,
    pub(crate) table: String,
    pub(crate) users: Vec<ColumnHolder>,
}

/// Read, update and create on a column.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ColumnPermission {
    pub(crate) create: bool,
    pub(crate) read: bool,
    pub(crate) update: bool,
}

/// Mirror of `POST …/columns/explain`: `strata_ops::column_verdict_json` and the revision.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ColumnVerdict {
    /// `read` or `update`.
    pub(crate) access: String,
    pub(crate) allowed: bool,
    pub(crate) column: String,
    pub(crate) column_permission: ColumnPermission,
    pub(crate) explanation: String,
    #[schema(required = true)]
    pub(crate) record: Option<String>,
    pub(crate) record_allowed: bool,
    pub(crate) record_decision: Decision,
    pub(crate) revision: u64,
    pub(crate) secured: bool,
    pub(crate) sources: Vec<ColumnSource>,
    pub(crate) table: String,
    pub(crate) user: String,
}

// ----- licences (mirrors of strata_ops::licences) -----

/// Mirror of a licence in the catalogue (`strata_ops::LicenceOp`).
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct LicenceEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) all_apps: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) all_misc: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) apps: Option<Vec<String>>,
    /// The ceiling of every privilege on a table not listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) default: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) misc: Option<Vec<String>>,
    pub(crate) name: String,
    pub(crate) price: u32,
    /// Table → privilege → ceiling depth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tables: Option<Grid>,
}

/// Mirror of `GET …/licences`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct CatalogueAnswer {
    /// Whether licences cap what roles give (D48).
    pub(crate) enforced: bool,
    pub(crate) licences: Vec<LicenceEntry>,
    pub(crate) revision: u64,
}

/// The cheapest set of licences covering a user.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheapestLicences {
    pub(crate) licences: Vec<String>,
    pub(crate) price: u64,
}

/// What a user's licences do not cover: a privilege cell (`privilege`), a misc privilege
/// (`misc`), or an app (`app`).
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Uncovered {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ceiling: Option<String>,
    pub(crate) kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) needed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) privilege: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) table: Option<String>,
}

/// Mirror of `strata_ops::user_report_json`: one user's licences against their roles.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserLicences {
    #[schema(required = true)]
    pub(crate) cheapest: Option<CheapestLicences>,
    /// `fits`, `over_licensed`, `under_licensed`…
    pub(crate) fit: String,
    pub(crate) held: Vec<String>,
    pub(crate) held_price: u64,
    pub(crate) system_administrator: bool,
    pub(crate) uncovered: Vec<Uncovered>,
    pub(crate) user: String,
}

/// Mirror of `GET …/licences/users/{user}`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserLicencesAnswer {
    #[schema(required = true)]
    pub(crate) cheapest: Option<CheapestLicences>,
    pub(crate) fit: String,
    pub(crate) held: Vec<String>,
    pub(crate) held_price: u64,
    pub(crate) revision: u64,
    pub(crate) system_administrator: bool,
    pub(crate) uncovered: Vec<Uncovered>,
    pub(crate) user: String,
}

/// Mirror of `GET …/licences/report`: `strata_ops::report_json` and the revision.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct LicenceReport {
    pub(crate) enforced: bool,
    pub(crate) over_licensed: usize,
    pub(crate) revision: u64,
    pub(crate) savings: u64,
    pub(crate) total_cheapest: u64,
    pub(crate) total_held: u64,
    pub(crate) under_licensed: usize,
    pub(crate) users: Vec<UserLicences>,
}

/// Where a role exceeds a licence: a privilege cell, a misc privilege, or an app.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Excess {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) app: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ceiling: Option<String>,
    /// `privilege`, `misc`, `app`.
    pub(crate) kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) privilege: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) role_depth: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) table: Option<String>,
}

/// One role against a licence.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleExcess {
    pub(crate) exceeds: Vec<Excess>,
    pub(crate) role: String,
    pub(crate) within: bool,
}

/// Mirror of `GET …/licences/{licence}/exceeds`: `strata_ops::exceeds_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExceedsAnswer {
    pub(crate) licence: String,
    pub(crate) revision: u64,
    pub(crate) roles: Vec<RoleExcess>,
}

// ----- roles (mirrors of strata_ops::roles) -----

/// Mirror of `GET …/roles/{role}`: `strata_ops::role_json` and the revision.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleAnswer {
    pub(crate) apps: Vec<String>,
    pub(crate) business_unit: String,
    pub(crate) deprecated: bool,
    #[schema(required = true)]
    pub(crate) deprecation: Option<Deprecation>,
    pub(crate) inheritance: String,
    pub(crate) misc: Vec<String>,
    pub(crate) name: String,
    pub(crate) privileges: Grid,
    pub(crate) revision: u64,
    pub(crate) system_administrator: bool,
}

/// A user holding a role directly.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct DirectHolder {
    #[schema(required = true)]
    pub(crate) business_unit: Option<String>,
    pub(crate) user: String,
}

/// A team holding a role.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct TeamHolder {
    pub(crate) business_unit: String,
    /// How many members.
    pub(crate) members: usize,
    pub(crate) team: String,
}

/// A user holding a role through a team.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct TeamMemberHolder {
    pub(crate) team: String,
    pub(crate) user: String,
}

/// Mirror of `GET …/roles/{role}/holders`: `strata_ops::role_holders_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct HoldersAnswer {
    pub(crate) apps: Vec<String>,
    pub(crate) revision: u64,
    pub(crate) role: String,
    pub(crate) teams: Vec<TeamHolder>,
    pub(crate) through_teams: Vec<TeamMemberHolder>,
    pub(crate) users: Vec<DirectHolder>,
}

/// A user who may assign a role, and to principals of which units.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Assigner {
    pub(crate) business_units: Vec<String>,
    pub(crate) user: String,
}

/// Mirror of `GET …/roles/{role}/assigners`: `strata_ops::assigners_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignersAnswer {
    pub(crate) assigners: Vec<Assigner>,
    pub(crate) deprecated: bool,
    pub(crate) revision: u64,
    pub(crate) role: String,
}

/// One cell of two roles' grids.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleCell {
    pub(crate) differs: bool,
    pub(crate) left: String,
    pub(crate) privilege: String,
    pub(crate) right: String,
    pub(crate) table: String,
}

/// A miscellaneous privilege in two roles.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleMisc {
    pub(crate) differs: bool,
    pub(crate) left: bool,
    pub(crate) name: String,
    pub(crate) right: bool,
}

/// Mirror of `GET …/roles/{role}/compare/{other}`: `strata_ops::compare_roles_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompareRolesAnswer {
    pub(crate) cells: Vec<RoleCell>,
    pub(crate) differences: usize,
    pub(crate) left: String,
    pub(crate) misc: Vec<RoleMisc>,
    pub(crate) revision: u64,
    pub(crate) right: String,
}

/// How a source role is held: `"direct"`, or through a team.
#[derive(Serialize, ToSchema, Debug)]
#[serde(untagged)]
#[allow(dead_code, reason = "a mirror: the answer is strata_ops's JSON")]
pub(crate) enum HeldVia {
    /// `direct`.
    Direct(String),
    Team(TeamVia),
}

/// A role a cell's depth comes from.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct CellSource {
    pub(crate) role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) system_administrator: Option<bool>,
    pub(crate) via: HeldVia,
}

/// A user's depth in one cell and where it comes from.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Effective {
    pub(crate) depth: String,
    pub(crate) sources: Vec<CellSource>,
}

/// One cell of two users' effective permissions.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserCell {
    pub(crate) differs: bool,
    pub(crate) left: Effective,
    pub(crate) privilege: String,
    pub(crate) right: Effective,
    pub(crate) table: String,
}

/// A miscellaneous privilege of two users, with its sources on each side.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserMisc {
    pub(crate) differs: bool,
    pub(crate) left: Vec<CellSource>,
    pub(crate) name: String,
    pub(crate) right: Vec<CellSource>,
}

/// One of two users compared.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ComparedUser {
    pub(crate) business_unit: String,
    pub(crate) enabled: bool,
    pub(crate) name: String,
    pub(crate) system_administrator: bool,
}

/// Mirror of `GET …/users/{user}/compare/{other}`: `strata_ops::compare_users_json`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompareUsersAnswer {
    pub(crate) cells: Vec<UserCell>,
    pub(crate) differences: usize,
    pub(crate) left: ComparedUser,
    pub(crate) misc: Vec<UserMisc>,
    pub(crate) revision: u64,
    pub(crate) right: ComparedUser,
}

/// A column to add to a table (`strata_ops::ColumnOp`).
#[derive(ToSchema, Debug)]
#[allow(
    dead_code,
    reason = "a schema only: the body is read as strata_ops::ColumnOp"
)]
pub(crate) struct ColumnSpec {
    name: String,
    /// Column security applies (default false).
    #[schema(default = false)]
    secured: Option<bool>,
}

// ----- role rules -----

/// Mirror of `strata_ops::rule_json`: a rule in force, with its kind and text.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleInForce {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) direct_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) excludes: Option<String>,
    /// `requires`, `excludes`, `direct_only`.
    pub(crate) kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) requires: Option<Vec<String>>,
    pub(crate) role: String,
    pub(crate) text: String,
}

/// Mirror of `GET …/rules`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesAnswer {
    pub(crate) revision: u64,
    pub(crate) rules: Vec<RuleInForce>,
}

/// How a user holds a role: directly, and through which teams.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct Holding {
    pub(crate) direct: bool,
    pub(crate) teams: Vec<String>,
}

/// Mirror of `strata_ops::violation_json`: one user breaking one rule.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleViolation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) conflicting: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) conflicting_held: Option<Holding>,
    pub(crate) held: Holding,
    /// `missing`, `conflict`, `not_direct`.
    pub(crate) kind: String,
    /// `user: rule`.
    pub(crate) line: String,
    /// What is wrong and what would satisfy the rule.
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) missing: Option<Vec<String>>,
    pub(crate) rule: RuleInForce,
    pub(crate) user: String,
}

/// Mirror of `GET …/rules/violations`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ViolationsAnswer {
    pub(crate) revision: u64,
    pub(crate) violations: Vec<RuleViolation>,
}

// ----- dry runs (mirror of strata_app::DryRun::to_json) -----

/// A flag before and after the batch.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct BeforeAfter {
    pub(crate) after: bool,
    pub(crate) before: bool,
}

/// A grant gained or lost.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct GrantSource {
    pub(crate) business_unit: String,
    pub(crate) depth: String,
    pub(crate) role: String,
    #[schema(required = true)]
    pub(crate) team: Option<String>,
    pub(crate) team_only: bool,
}

/// A privilege whose depth or sources change.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct PrivilegeDifference {
    pub(crate) after: String,
    pub(crate) before: String,
    pub(crate) gained: Vec<GrantSource>,
    pub(crate) lost: Vec<GrantSource>,
    pub(crate) privilege: String,
    pub(crate) table: String,
}

/// Records of a table a user gains or loses Read on.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordsDifference {
    pub(crate) gained: u64,
    pub(crate) lost: u64,
    pub(crate) table: String,
}

/// One user's access difference.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserDifference {
    pub(crate) enabled: BeforeAfter,
    /// The batch creates the user.
    pub(crate) new: bool,
    pub(crate) privileges: Vec<PrivilegeDifference>,
    pub(crate) records: Vec<RecordsDifference>,
    pub(crate) system_administrator: BeforeAfter,
    pub(crate) user: String,
}

/// The access difference.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessDifference {
    pub(crate) users: Vec<UserDifference>,
    /// Users whose access changes whom the caller may not ask about (D56).
    pub(crate) withheld: usize,
}

/// One change by names: `change` says which (`record_created`, `owner_changed`,
/// `role_assigned`…), the other fields depend on it.
#[derive(Serialize, ToSchema, Debug)]
pub(crate) struct ChangeEntry {
    pub(crate) change: String,
}

/// What one operation of the batch would change.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct OperationChanges {
    pub(crate) changes: Vec<ChangeEntry>,
    pub(crate) op: String,
}

// ----- Dataverse solution roles (admin_import.rs) -----

/// Mirror of `POST …/roles/import`: `strata_solution::Plan::to_json`, with what the batch did
/// or (a dry run) would do.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolesImportAnswer {
    /// A dry run's access difference (when the batch has operations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) difference: Option<AccessDifference>,
    pub(crate) dry_run: bool,
    /// The operations of the one batch.
    pub(crate) operations: usize,
    pub(crate) revision: u64,
    /// Per role, in file order.
    pub(crate) roles: Vec<ImportedRole>,
    /// Tables the batch creates (`create_tables`).
    pub(crate) tables_created: Vec<String>,
    /// Tables the roles name that the organisation lacks and the batch does not create.
    pub(crate) tables_unknown: Vec<String>,
}

/// One role of an import.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportedRole {
    /// `create`, `update`, `unchanged`, `skip`.
    pub(crate) action: String,
    pub(crate) file: String,
    /// Privileges in the file by level.
    pub(crate) levels: ImportLevels,
    /// `guid` or `name` (update, unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) matched_by: Option<String>,
    pub(crate) misc_privileges: usize,
    pub(crate) name: String,
    pub(crate) notes: Vec<String>,
    /// Why the role is skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// The role's former name (matched by GUID under another name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) renamed_from: Option<String>,
    pub(crate) skipped: Vec<SkippedPrivilege>,
    pub(crate) table_privileges: usize,
}

/// Privileges of a role file by Dataverse level.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct ImportLevels {
    pub(crate) basic: usize,
    pub(crate) deep: usize,
    pub(crate) global: usize,
    pub(crate) local: usize,
}

/// A privilege left out of an import, and why.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct SkippedPrivilege {
    pub(crate) level: String,
    pub(crate) privilege: String,
    pub(crate) reason: String,
}

/// Mirror of `GET …/roles/export`: the solution files, byte-stable.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct RolesExportAnswer {
    pub(crate) files: Vec<SolutionFile>,
    pub(crate) revision: u64,
    /// Roles the caller may not read, left out.
    pub(crate) withheld: usize,
}

/// One file of a solution export: `Roles/<name>.xml` or `customizations.xml`.
#[derive(Serialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub(crate) struct SolutionFile {
    pub(crate) path: String,
    pub(crate) text: String,
}

/// A role file's text as a JSON string (for JSON clients; the file itself may be sent as
/// `application/xml` or `application/zip`).
#[derive(Serialize, ToSchema, Debug)]
pub(crate) struct RoleFileText(pub(crate) String);
