//! The application layer's error: a stable code (the server's `CODES` table gives its HTTP
//! status), a message naming the entity, and the offending field when there is one.

/// An error of the application layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    /// Stable machine-readable code (one of the server's `CODES`).
    pub code: &'static str,
    /// What is wrong, naming the entity.
    pub message: String,
    /// The path of the offending field (an operation's index in a batch, `/3`), when there is
    /// one.
    pub field: Option<String>,
}

impl AppError {
    /// An error with a code and a message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        AppError {
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

    /// A bug: please report it.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("internal", message)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)?;
        if let Some(field) = &self.field {
            write!(f, " at {field}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

impl From<strata_ops::OpError> for AppError {
    fn from(e: strata_ops::OpError) -> Self {
        let code = match e.kind {
            strata_ops::OpErrorKind::Denied => "denied",
            strata_ops::OpErrorKind::Invalid => e.code,
        };
        AppError::new(code, e.message)
    }
}

impl From<strata_store::StoreError> for AppError {
    fn from(e: strata_store::StoreError) -> Self {
        AppError::new(e.code(), e.to_string())
    }
}
