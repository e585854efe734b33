//! The lifecycle of a deployment: `queued → building → uploading → ready | failed | canceled`.
//! Only the server changes a deployment's status, and only along [`DeploymentStatus::can_become`].

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeploymentStatus {
    Queued,
    Building,
    Uploading,
    Ready,
    Failed,
    Canceled,
}

impl DeploymentStatus {
    pub const ALL: [Self; 6] = [
        Self::Queued,
        Self::Building,
        Self::Uploading,
        Self::Ready,
        Self::Failed,
        Self::Canceled,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Ready | Self::Failed | Self::Canceled)
    }

    /// Whether a deployment in `self` may move to `next`. A terminal status never changes; every
    /// unfinished one may fail or be canceled; otherwise a deployment only moves forward one step.
    pub fn can_become(self, next: Self) -> bool {
        use DeploymentStatus::*;
        match (self, next) {
            (Ready | Failed | Canceled, _) => false,
            (_, Failed | Canceled) => true,
            (Queued, Building) | (Building, Uploading) | (Uploading, Ready) => true,
            _ => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Building => "building",
            Self::Uploading => "uploading",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

impl fmt::Display for DeploymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a build is doing right now, finer than its status; shown by the CLI and the web page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Queued,
    Fetching,
    Installing,
    Building,
    Uploading,
    Done,
}

impl Phase {
    /// The status a deployment has while its builder reports this phase, if the builder may
    /// report it at all.
    pub fn status(self) -> Option<DeploymentStatus> {
        match self {
            Self::Fetching | Self::Installing | Self::Building => Some(DeploymentStatus::Building),
            Self::Uploading => Some(DeploymentStatus::Uploading),
            Self::Queued | Self::Done => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Fetching => "fetching source",
            Self::Installing => "installing",
            Self::Building => "building",
            Self::Uploading => "uploading",
            Self::Done => "done",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Fetching => "fetching",
            Self::Installing => "installing",
            Self::Building => "building",
            Self::Uploading => "uploading",
            Self::Done => "done",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Fetching,
            Self::Installing,
            Self::Building,
            Self::Uploading,
            Self::Done,
        ]
        .into_iter()
        .find(|p| p.as_str() == raw)
    }
}

#[cfg(test)]
mod tests {
    use super::DeploymentStatus::*;
    use super::*;

    #[test]
    fn transitions_follow_the_lifecycle() {
        let allowed = [
            (Queued, Building),
            (Queued, Failed),
            (Queued, Canceled),
            (Building, Uploading),
            (Building, Failed),
            (Building, Canceled),
            (Uploading, Ready),
            (Uploading, Failed),
            (Uploading, Canceled),
        ];
        for from in DeploymentStatus::ALL {
            for to in DeploymentStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn terminal_statuses_are_final() {
        for s in DeploymentStatus::ALL {
            assert_eq!(s.is_terminal(), matches!(s, Ready | Failed | Canceled));
            assert_eq!(DeploymentStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn builder_phases_map_to_statuses() {
        assert_eq!(Phase::Fetching.status(), Some(Building));
        assert_eq!(Phase::Uploading.status(), Some(Uploading));
        assert_eq!(Phase::Done.status(), None);
        assert_eq!(Phase::parse("installing"), Some(Phase::Installing));
    }
}
