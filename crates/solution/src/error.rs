//! The one error of reading and planning solution roles: a stable code, the file, the line and
//! column (1-based; 0 when the error is about the file as a whole), the value at fault.

use std::fmt;

/// Why a solution input was refused. Nothing is imported when any input is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolutionError {
    /// Stable code (docs/errors.md): `solution_malformed_xml`, `solution_unknown_level`, …
    pub code: &'static str,
    /// The file (for a zip, `archive.zip!customizations.xml`).
    pub file: String,
    /// 1-based line, 0 when not about a place in the file.
    pub line: usize,
    /// 1-based column (characters), 0 when not about a place in the file.
    pub column: usize,
    /// The value at fault (a level, a privilege name, a size…), possibly empty.
    pub value: String,
    /// What is wrong, in words.
    pub message: String,
}

impl SolutionError {
    pub(crate) fn new(
        code: &'static str,
        file: &str,
        (line, column): (usize, usize),
        value: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let value: String = value.into();
        SolutionError {
            code,
            file: file.to_owned(),
            line,
            column,
            value: value.chars().take(200).collect(),
            message: message.into(),
        }
    }

    /// The stable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl fmt::Display for SolutionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        write!(f, ": {}", self.message)?;
        if !self.value.is_empty() {
            write!(f, " (`{}`)", self.value)?;
        }
        Ok(())
    }
}

impl std::error::Error for SolutionError {}

/// Line and column (1-based, column in characters) of a byte offset.
pub(crate) fn line_column(text: &[u8], offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[start..])
        .trim_end_matches('\r')
        .chars()
        .count()
        + 1;
    (line, column)
}
