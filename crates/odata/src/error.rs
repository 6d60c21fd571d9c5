//! The errors of the path and query parsers, each with a stable machine-readable code.

/// A resource path or query string that cannot be accepted.
///
/// `part` names where the problem is: `path`, `query`, a query option such as `$filter` or
/// `$expand`, or a parameter alias such as `@p1`. Positions are 0-based character positions in
/// that part's decoded text (for `path`, the decoded path with its segments joined by `/`; for
/// `query`, the raw query string).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ODataError {
    /// Malformed text.
    #[error("`{part}` at character {position}: {message}")]
    Syntax {
        /// Where: `path`, `query`, `$filter`, `@p1`, ….
        part: String,
        /// 0-based character position in the part.
        position: usize,
        /// What is wrong.
        message: String,
    },
    /// A system query option (`$…`) that the Web API does not know.
    #[error("unknown query option `{name}`")]
    UnknownOption {
        /// The option as given.
        name: String,
    },
    /// A system query option of OData that this service does not support (`$skip`, `$apply`,
    /// `$search`, …).
    #[error("the query option `{name}` is not supported")]
    UnsupportedOption {
        /// The option as given.
        name: String,
    },
    /// A query option or parameter alias given twice.
    #[error("the query option `{name}` is given more than once")]
    DuplicateOption {
        /// The option as given the second time.
        name: String,
    },
    /// A function in `$filter` that is not supported (`substringof`, `tolower`,
    /// `Microsoft.Dynamics.CRM.Today`, …).
    #[error("`{part}` at character {position}: unknown function `{name}`")]
    UnknownFunction {
        /// Where: `$filter`, `$expand`.
        part: String,
        /// 0-based character position of the function's name.
        position: usize,
        /// The function as given.
        name: String,
    },
    /// An explicit limit exceeded (the `MAX_…` constants of this crate).
    #[error("`{part}` at character {position}: {message}")]
    Limit {
        /// Where: `path`, `query`, `$filter`, `$select`, ….
        part: String,
        /// 0-based character position where the limit was passed.
        position: usize,
        /// Which limit.
        message: String,
    },
}

impl ODataError {
    /// The stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            ODataError::Syntax { .. } => "odata_syntax",
            ODataError::UnknownOption { .. } => "odata_unknown_option",
            ODataError::UnsupportedOption { .. } => "odata_unsupported_option",
            ODataError::DuplicateOption { .. } => "odata_duplicate_option",
            ODataError::UnknownFunction { .. } => "odata_unknown_function",
            ODataError::Limit { .. } => "odata_limit",
        }
    }

    pub(crate) fn syntax(part: &str, position: usize, message: impl Into<String>) -> Self {
        ODataError::Syntax {
            part: part.to_owned(),
            position,
            message: message.into(),
        }
    }

    pub(crate) fn limit(part: &str, position: usize, message: impl Into<String>) -> Self {
        ODataError::Limit {
            part: part.to_owned(),
            position,
            message: message.into(),
        }
    }

    /// The same error about text that starts `offset` characters into `part`.
    pub(crate) fn shifted(self, part: &str, offset: usize) -> Self {
        match self {
            ODataError::Syntax {
                position, message, ..
            } => ODataError::Syntax {
                part: part.to_owned(),
                position: position + offset,
                message,
            },
            ODataError::UnknownFunction { position, name, .. } => ODataError::UnknownFunction {
                part: part.to_owned(),
                position: position + offset,
                name,
            },
            ODataError::Limit {
                position, message, ..
            } => ODataError::Limit {
                part: part.to_owned(),
                position: position + offset,
                message,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_messages_name_the_input() {
        let e = ODataError::syntax("$filter", 7, "expected a value");
        assert_eq!(e.code(), "odata_syntax");
        assert_eq!(e.to_string(), "`$filter` at character 7: expected a value");
        let e = ODataError::UnknownOption {
            name: "$frobnicate".into(),
        };
        assert_eq!(e.code(), "odata_unknown_option");
        assert_eq!(e.to_string(), "unknown query option `$frobnicate`");
        assert_eq!(
            ODataError::UnsupportedOption {
                name: "$skip".into()
            }
            .code(),
            "odata_unsupported_option"
        );
        assert_eq!(
            ODataError::DuplicateOption {
                name: "$top".into()
            }
            .code(),
            "odata_duplicate_option"
        );
        let e = ODataError::limit("$select", 0, "more than 500 columns").shifted("$expand", 4);
        assert_eq!(e.code(), "odata_limit");
        assert_eq!(
            e.to_string(),
            "`$expand` at character 4: more than 500 columns"
        );
        let e = ODataError::UnknownFunction {
            part: "$filter".into(),
            position: 0,
            name: "tolower".into(),
        };
        assert_eq!(e.code(), "odata_unknown_function");
    }
}
