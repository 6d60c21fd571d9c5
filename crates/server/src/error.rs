//! API errors: one table from error code to HTTP status; every error is JSON
//! `{"error": {"code", "message", "field"?}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// What is wrong, naming the entity.
    pub message: String,
    /// The path of the offending field in the request body, when there is one.
    pub field: Option<String>,
}

/// The HTTP status of each error code.
#[must_use]
pub fn status_of(code: &str) -> StatusCode {
    match code {
        "unauthenticated" => StatusCode::UNAUTHORIZED,
        "denied" | "forbidden" | "user_disabled" => StatusCode::FORBIDDEN,
        "not_found" | "unknown_organization" | "unknown_route" => StatusCode::NOT_FOUND,
        "method_not_allowed" => StatusCode::METHOD_NOT_ALLOWED,
        "payload_too_large" => StatusCode::PAYLOAD_TOO_LARGE,
        "unsupported_media_type" => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "duplicate_organization" | "duplicate" => StatusCode::CONFLICT,
        "revision_not_reached" | "database_unreachable" => StatusCode::SERVICE_UNAVAILABLE,
        "database" | "corrupt_store" | "corrupt_log" | "internal" | "bad_database_url"
        | "audit_key" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Names the offending field.
    #[must_use]
    pub fn at(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
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

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new("internal", message)
    }
}

impl From<strata_ops::OpError> for ApiError {
    fn from(e: strata_ops::OpError) -> Self {
        let code = match e.kind {
            strata_ops::OpErrorKind::Denied => "denied",
            strata_ops::OpErrorKind::Invalid => e.code,
        };
        ApiError::new(code, e.message)
    }
}

impl From<strata_store::StoreError> for ApiError {
    fn from(e: strata_store::StoreError) -> Self {
        ApiError::new(e.code(), e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(f) = self.field {
            error["field"] = serde_json::Value::String(f);
        }
        (
            status_of(self.code),
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response()
    }
}
