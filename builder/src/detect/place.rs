//! Where a folder the plan names lives: in the app, or in the build's home folder. Caches and
//! folders put before `PATH` are named this way, so the plan never needs the build's paths.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// Relative to the app's folder: `.next/cache`, `node_modules`.
    App(String),
    /// Relative to the build's `HOME`: `.npm`, `.cache/pip`.
    Home(String),
}

impl Place {
    pub fn app(rel: impl Into<String>) -> Self {
        Self::App(rel.into())
    }

    pub fn home(rel: impl Into<String>) -> Self {
        Self::Home(rel.into())
    }

    pub fn resolve(&self, app: &Path, home: &Path) -> PathBuf {
        match self {
            Self::App(rel) => app.join(rel),
            Self::Home(rel) => home.join(rel),
        }
    }
}
