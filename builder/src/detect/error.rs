//! Why detection could not make a plan.

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("package.json is not valid JSON: {0}")]
    PackageJson(String),
    #[error(
        "package.json's packageManager {0:?} is not a package manager and its exact version \
         (such as \"pnpm@9.12.0\"); fix it or remove it"
    )]
    PackageManagerField(String),
    #[error("unknown framework {given:?} in the settings; use one of: {known}, or \"none\"")]
    UnknownFramework { given: String, known: String },
    /// The app would build a server, not a site: the message says how to make it static.
    #[error("{0}")]
    NotStatic(String),
    #[error("{0}")]
    Read(String),
}
