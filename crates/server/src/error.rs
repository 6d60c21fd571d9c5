//! API errors: one table from error code to HTTP status; every error is JSON
//! `{"error": {"code", "message", "field"?}}`. An [`ApiError`] is the application layer's
//! [`AppError`] answered over HTTP: one error type, one set of constructors (`AppError`'s), and
//! here only what HTTP adds.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use strata_app::AppError;

/// An error answered to a client: an [`AppError`] — its stable code, its message, the offending
/// field (read through `Deref`) — answered with the status [`CODES`] gives the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError(AppError);

/// Every error code: its HTTP status and what it means. The one table: `status_of` reads it,
/// `docs/errors.md` is checked against it, and a test checks that every code the crates can
/// produce is in it.
pub const CODES: &[(&str, u16, &str)] = &[
    (
        "unauthenticated",
        401,
        "no credentials, an unknown or revoked API key, an invalid bearer token, or a key whose user no longer exists",
    ),
    (
        "forbidden",
        403,
        "the credentials belong to another organisation, or the route is the root key's",
    ),
    (
        "denied",
        403,
        "the acting user lacks a privilege or access (the message says which)",
    ),
    (
        "user_disabled",
        403,
        "the calling or impersonated user is disabled",
    ),
    (
        "not_found",
        404,
        "an unknown record, table, user, app or route parameter",
    ),
    ("unknown_organization", 404, "no organisation of that name"),
    ("unknown_route", 404, "no such route"),
    (
        "unknown_user",
        404,
        "an acting user (`as`, a key's user) that does not exist: never taken as the system",
    ),
    (
        "method_not_allowed",
        405,
        "the route does not take this method",
    ),
    (
        "duplicate_organization",
        409,
        "an organisation of that name exists",
    ),
    ("duplicate", 409, "an entity of that name exists"),
    ("payload_too_large", 413, "the body is larger than 4 MiB"),
    (
        "precondition_failed",
        412,
        "the Web API's If-Match / If-None-Match precondition does not hold",
    ),
    ("uri_too_long", 414, "the URI is longer than 16 KiB"),
    (
        "headers_too_large",
        431,
        "the headers are larger than 32 KiB or have more than 100 fields",
    ),
    (
        "unsupported_media_type",
        415,
        "the body is not declared `application/json`",
    ),
    (
        "odata_syntax",
        400,
        "a Web API path, query option, literal or $filter that does not parse (the message names the position)",
    ),
    (
        "odata_unknown",
        404,
        "a Web API entity set, segment, navigation property, function or query option that does not exist",
    ),
    (
        "odata_unsupported",
        400,
        "a Web API feature Strata does not answer (docs/webapi.md lists them)",
    ),
    (
        "odata_limit",
        400,
        "a Web API limit: page size, $select, $expand, $batch parts, path or query length",
    ),
    (
        "aggregate_limit",
        400,
        "an aggregate (`$apply`, FetchXML `aggregate=\"true\"`) would read more records than its limit (50,000, Dataverse's AggregateQueryRecordLimit)",
    ),
    (
        "bad_reference",
        400,
        "a Web API reference (`@odata.bind`, `@odata.id`, an entity in a message) that names the wrong kind of entity",
    ),
    (
        "query_too_expensive",
        422,
        "a list would evaluate more filter comparisons than its work budget",
    ),
    (
        "revision_not_reached",
        503,
        "this node has not applied `min_revision` within the wait",
    ),
    (
        "server_busy",
        503,
        "the server is handling as many requests as it allows, or the organisation has as many writes queued as it takes: retry after `Retry-After` seconds",
    ),
    (
        "rate_limited",
        429,
        "the credential made more requests than its per-second limit allows (`--key-rate`): retry after `Retry-After` seconds",
    ),
    (
        "database_unreachable",
        503,
        "the database does not answer, or the organisation is being rebuilt after a failed write",
    ),
    (
        "corrupt_log",
        500,
        "the organisation's operation log failed verification: it is isolated, not served",
    ),
    (
        "corrupt_checkpoint",
        500,
        "a checkpoint failed verification: it is not used (an older one or the whole log is)",
    ),
    ("database", 500, "the database failed"),
    (
        "storage_full",
        507,
        "the disk or the database is full: nothing was written; reads keep working and writes succeed again once space is freed",
    ),
    (
        "corrupt_store",
        500,
        "the store holds what cannot be applied",
    ),
    ("aborted", 500, "a store transaction was abandoned"),
    ("internal", 500, "a bug: please report it"),
    (
        "bad_database_url",
        500,
        "the configured database URL is not valid",
    ),
    (
        "audit_key",
        500,
        "the audit key file is missing, unreadable or does not match the database",
    ),
    ("bad_oidc", 500, "the OIDC configuration cannot be loaded"),
    (
        "bad_advertise_url",
        500,
        "`--advertise-url` is not an `http://` or `https://` URL of a host",
    ),
    (
        "bad_peer_ca",
        500,
        "`--peer-ca-file` cannot be read or holds no certificate",
    ),
    (
        "write_leader_failed",
        502,
        "this node sent the write to its organisation's write leader (another node), which took it but did not answer: the write may or may not have been made",
    ),
    (
        "invalid_body",
        400,
        "the body does not have the expected shape (too deep, a duplicate key, a wrong type, an unknown or missing field)",
    ),
    ("malformed_json", 400, "the body is not JSON"),
    (
        "invalid_request",
        400,
        "a request the HTTP layer cannot take (a head that is not valid HTTP/1.1, a malformed parameter)",
    ),
    (
        "bad_batch",
        400,
        "too few or too many operations or evaluations",
    ),
    (
        "bad_filter",
        400,
        "a filter that does not parse or passes a limit (length, depth, comparisons, `in` values)",
    ),
    (
        "bad_order",
        400,
        "an order that does not parse or has too many columns",
    ),
    (
        "bad_select",
        400,
        "a native list's `select` naming more columns than it may",
    ),
    (
        "bad_cursor",
        400,
        "a cursor this server did not give for this query",
    ),
    ("bad_page_size", 400, "a page size outside 1 to 5,000"),
    ("bad_query", 400, "an unknown or malformed query parameter"),
    ("bad_header", 400, "a header that is not text"),
    (
        "bad_actor",
        400,
        "an operation naming another actor, or administration on behalf of another user",
    ),
    (
        "bad_value",
        400,
        "a value of the wrong kind for a comparison or a column",
    ),
    (
        "unknown_privilege",
        400,
        "not one of create read write delete append append_to assign share",
    ),
    (
        "unknown_reference",
        400,
        "an operation names an entity that does not exist",
    ),
    ("unknown_column", 400, "a column the table does not have"),
    (
        "system_column",
        400,
        "a write or declaration naming createdon, modifiedon, createdby or modifiedby (D165)",
    ),
    (
        "unknown_depth",
        400,
        "not one of none user business_unit parent_child organization",
    ),
    (
        "invalid_record",
        400,
        "a record that cannot be created as given",
    ),
    (
        "bad_name",
        400,
        "an empty, too long or reserved name, or one with control or bidi characters",
    ),
    ("bad_owner", 400, "an owner that cannot own this record"),
    ("bad_ownership", 400, "an unknown table ownership"),
    ("bad_state", 400, "an unknown record state"),
    ("bad_team_type", 400, "an unknown team type"),
    ("bad_behavior", 400, "an unknown relationship behaviour"),
    ("bad_cascade", 400, "an unknown cascade"),
    ("bad_hierarchy", 400, "a hierarchy setting that cannot hold"),
    (
        "bad_inheritance",
        400,
        "an unknown member's privilege inheritance",
    ),
    (
        "cycle",
        400,
        "the change would make a cycle (units, positions, managers, lookups)",
    ),
    ("too_deep", 400, "a unit or position tree deeper than 64"),
    ("second_root", 400, "a second root business unit"),
    ("move_root", 400, "the root business unit cannot move"),
    ("no_root", 400, "no root business unit yet"),
    (
        "depth_not_allowed",
        400,
        "a depth the table's ownership does not allow",
    ),
    ("limit_exceeded", 400, "an explicit limit of the model"),
    (
        "role_not_usable",
        400,
        "a role of a unit that does not cover the assignee",
    ),
    ("role_on_access_team", 400, "access teams hold no roles"),
    (
        "system_administrator_not_editable",
        400,
        "the System Administrator role cannot be edited",
    ),
    ("assignee_disabled", 400, "a role for a disabled user"),
    ("not_an_action", 400, "the operation is not an action"),
    ("not_setup", 400, "the operation is not a setup operation"),
    (
        "bad_rule",
        400,
        "a role rule that is not exactly one of requires (roles), excludes (a role), direct_only",
    ),
    (
        "contradictory_rule",
        400,
        "a role rule that contradicts itself or the rules in force: some role could never be held",
    ),
    (
        "rule_cycle",
        400,
        "a role rule that closes a cycle of requirements",
    ),
    (
        "rule_on_system_administrator",
        400,
        "a role rule that would constrain the System Administrator role",
    ),
    ("unknown_rule", 404, "no such role rule is in force"),
    (
        "role_rule_violated",
        409,
        "the change would leave a user breaking a role rule (the message names the rule and what satisfies it)",
    ),
    (
        "invalid",
        400,
        "the action cannot be done, whoever asks (the message says why)",
    ),
    (
        "no_role_set",
        422,
        "no set of the roles the user may be given opens the app and meets its needs (D51)",
    ),
    (
        "role_deprecated",
        400,
        "a deprecated role is not assigned: the message names the roles to use instead",
    ),
    (
        "role_in_use",
        409,
        "a role still held by users or teams, or associated with apps, is deleted only with a replacement",
    ),
    (
        "solution_malformed_xml",
        400,
        "a solution file that is not well-formed XML (or not UTF-8): the message names the file, line and column",
    ),
    (
        "solution_not_roles",
        400,
        "a solution file whose root is neither `<Role>` (an unpacked `Roles/*.xml`) nor `<ImportExportXml>` (`customizations.xml`)",
    ),
    (
        "solution_unknown_level",
        400,
        "a `RolePrivilege` level other than Basic, Local, Deep or Global (file, line, value)",
    ),
    (
        "solution_unknown_privilege",
        400,
        "a privilege name that fits no pattern (`prv` + verb + table) and is no known miscellaneous privilege; the message suggests the closest one",
    ),
    (
        "solution_missing_attribute",
        400,
        "a `Role` without `name`, or a `RolePrivilege` without `name` or `level`",
    ),
    ("solution_bad_id", 400, "a `Role` id that is not a GUID"),
    (
        "solution_bad_inherited",
        400,
        "a `Role` `isinherited` other than 0 or 1",
    ),
    (
        "solution_duplicate_role",
        400,
        "the same role (by name) in two places of one import",
    ),
    (
        "solution_bad_zip",
        400,
        "a body or file that starts as a zip but cannot be read as one",
    ),
    (
        "solution_no_customizations",
        400,
        "a solution zip without `customizations.xml` at its root",
    ),
    (
        "solution_too_large",
        413,
        "a solution file, a zip's entry count or its uncompressed `customizations.xml` over the limits of docs/solutions.md",
    ),
    (
        "solution_too_deep",
        400,
        "solution XML nested deeper than 64 elements",
    ),
    (
        "solution_too_many_privileges",
        400,
        "a role listing more than 20,000 privileges",
    ),
    (
        "solution_too_many_roles",
        400,
        "more than 5,000 roles in one import",
    ),
];

/// The HTTP status of an error code; a code missing from [`CODES`] is a bug, answered 500.
#[must_use]
pub fn status_of(code: &str) -> StatusCode {
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .and_then(|(_, status, _)| StatusCode::from_u16(*status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ApiError {
    /// An error with a code and a message ([`AppError::new`]).
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        AppError::new(code, message).into()
    }

    /// Names the offending field ([`AppError::at`]).
    #[must_use]
    pub fn at(self, field: impl Into<String>) -> Self {
        self.0.at(field).into()
    }

    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new("unauthenticated", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new("forbidden", message)
    }

    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new("not_found", message)
    }
}

impl std::ops::Deref for ApiError {
    type Target = AppError;

    fn deref(&self) -> &AppError {
        &self.0
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ApiError {}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        e.0
    }
}

impl From<strata_ops::OpError> for ApiError {
    fn from(e: strata_ops::OpError) -> Self {
        AppError::from(e).into()
    }
}

impl From<strata_store::StoreError> for ApiError {
    fn from(e: strata_store::StoreError) -> Self {
        AppError::from(e).into()
    }
}

/// The JSON body of an error: `{"error": {"code", "message", "field"?}}`.
pub(crate) fn error_json(code: &str, message: &str, field: Option<&str>) -> serde_json::Value {
    let answer = crate::schema::ErrorAnswer {
        error: crate::schema::ErrorDetail {
            code: code.to_owned(),
            field: field.map(str::to_owned),
            message: message.to_owned(),
        },
    };
    serde_json::to_value(answer).unwrap_or_default()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = error_json(self.code, &self.message, self.field.as_deref());
        let mut response = (status_of(self.code), axum::Json(body)).into_response();
        if matches!(
            self.code,
            "server_busy" | "rate_limited" | "database_unreachable" | "revision_not_reached"
        ) {
            // Passing conditions: when to come back.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
