//! What detection decides: the plan a provider makes, and why it could not make one.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What was recognised, for the log: `static site`, `Node.js (npm)`.
    pub provider: String,
    pub install: Option<String>,
    pub build: Option<String>,
    /// `None`: look for an output folder once the build is done.
    pub output: Option<String>,
    /// Why install was left out, for the log.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("package.json is not valid JSON: {0}")]
    PackageJson(String),
    #[error("{0}")]
    Read(String),
}
