//! Errors the CLI explains: a message, what to do next (`hint:`), and the exit code.

use std::fmt;

pub const EXIT_ERROR: i32 = 1;
pub const EXIT_FAILED: i32 = 3;
pub const EXIT_CANCELED: i32 = 4;

#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub hint: Option<String>,
    pub code: i32,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            code: EXIT_ERROR,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn code(mut self, code: i32) -> Self {
        self.code = code;
        self
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}
