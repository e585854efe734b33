//! Site host names: `<project>.<base>` serves a project's production deployment,
//! `<deployment>--<project>.<base>` one deployment, and `<label>--<project>.<base>` what a branch
//! (`git-<branch>`) or a pull request (`pr-<number>`) last deployed. The server builds these, the proxy parses them,
//! so both live here. Any other host is no site at all — never some default project.

use crate::{DeploymentId, ProjectName};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteHost {
    Project(ProjectName),
    /// A host outside the base domain: a project's custom domain, if one claimed it.
    Domain(String),
    Deployment {
        project: ProjectName,
        deployment: DeploymentId,
    },
    /// A branch's or a pull request's stable preview: `git-…` or `pr-<n>`.
    Label {
        project: ProjectName,
        label: String,
    },
}

/// Whether `label` names a branch or pull request preview: `git-` and letters, digits and
/// single inner hyphens, or `pr-` and a number. Never a deployment id, which has no `-`.
pub fn is_preview_label(label: &str) -> bool {
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-')
            && !s.contains("--")
    };
    match (label.strip_prefix("git-"), label.strip_prefix("pr-")) {
        (Some(rest), _) => label.len() <= 63 && word(rest),
        (_, Some(n)) => {
            (1..=10).contains(&n.len())
                && n.bytes().all(|b| b.is_ascii_digit())
                && !n.starts_with('0')
        }
        _ => false,
    }
}

/// How sites are addressed: `http://<label>.<base_domain>:<port>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteHosts {
    base_domain: String,
    scheme: String,
    /// Left out of URLs when `None` (the scheme's default port).
    port: Option<u16>,
}

impl SiteHosts {
    pub fn new(base_domain: &str, scheme: &str, port: Option<u16>) -> Self {
        let base_domain = base_domain.trim_end_matches('.').to_ascii_lowercase();
        let port = match (scheme, port) {
            ("http", Some(80)) | ("https", Some(443)) => None,
            (_, p) => p,
        };
        Self {
            base_domain,
            scheme: scheme.to_owned(),
            port,
        }
    }

    pub fn base_domain(&self) -> &str {
        &self.base_domain
    }

    pub fn project_url(&self, project: &ProjectName) -> String {
        self.url(project.as_str())
    }

    pub fn deployment_url(&self, project: &ProjectName, deployment: &DeploymentId) -> String {
        self.url(&format!("{deployment}--{project}"))
    }

    /// The stable URL of a branch's or pull request's previews.
    pub fn label_url(&self, project: &ProjectName, label: &str) -> String {
        self.url(&format!("{label}--{project}"))
    }

    /// A custom domain's URL: the same scheme and port as the base domain's sites, since the
    /// same proxy serves both.
    pub fn domain_url(&self, host: &str) -> String {
        match self.port {
            Some(port) => format!("{}://{host}:{port}", self.scheme),
            None => format!("{}://{host}", self.scheme),
        }
    }

    /// What a project's URL looks like, for people: `http://<project>.localhost:8080`.
    pub fn pattern(&self) -> String {
        self.url("<project>")
    }

    fn url(&self, label: &str) -> String {
        self.domain_url(&format!("{label}.{}", self.base_domain))
    }

    /// Which site a `Host` header (or HTTP/2 `:authority`) names, if any. Case, a port and one
    /// trailing dot are ignored.
    pub fn parse(&self, host: &str) -> Option<SiteHost> {
        let host = strip_port(host)?;
        let host = host.strip_suffix('.').unwrap_or(host);
        if host.len() > 253 {
            return None;
        }
        let host = host.to_ascii_lowercase();
        let Some(label) = host
            .strip_suffix(&self.base_domain)
            .and_then(|rest| rest.strip_suffix('.'))
        else {
            if host == self.base_domain {
                return None;
            }
            return is_domain(&host).then_some(SiteHost::Domain(host));
        };
        if label.contains('.') {
            return None;
        }
        match label.split_once("--") {
            None => ProjectName::parse(label).ok().map(SiteHost::Project),
            Some((named, project)) => {
                let project = ProjectName::parse(project).ok()?;
                if is_preview_label(named) {
                    return Some(SiteHost::Label {
                        project,
                        label: named.to_owned(),
                    });
                }
                Some(SiteHost::Deployment {
                    project,
                    deployment: DeploymentId::parse(named).ok()?,
                })
            }
        }
    }
}

/// A custom domain as stored and looked up: lower case, no port, no trailing dot, DNS labels
/// of letters, digits and inner hyphens, at least two of them. `None` for anything else (IP
/// addresses included).
pub fn normalize_domain(raw: &str) -> Option<String> {
    let host = strip_port(raw.trim())?;
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    is_domain(&host).then_some(host)
}

/// A lower-case host name of DNS labels, at least two, not an IP address.
fn is_domain(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let numeric = labels
        .last()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    host.len() <= 253 && labels.len() >= 2 && labels.iter().all(label_ok) && !numeric
}

/// `name:port` → `name`. IPv6 literals and malformed ports are no site host.
fn strip_port(host: &str) -> Option<&str> {
    if host.starts_with('[') {
        return None;
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(name)
        }
        Some(_) => None,
        None => Some(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> SiteHosts {
        SiteHosts::new("localhost", "http", Some(8080))
    }

    fn project(name: &str) -> Option<SiteHost> {
        Some(SiteHost::Project(ProjectName::parse(name).expect("valid")))
    }

    #[test]
    fn builds_urls() {
        let h = hosts();
        let p = ProjectName::parse("site").expect("valid");
        let d = DeploymentId::parse("abcdefghijkl").expect("valid");
        assert_eq!(h.project_url(&p), "http://site.localhost:8080");
        assert_eq!(
            h.deployment_url(&p, &d),
            "http://abcdefghijkl--site.localhost:8080"
        );
        assert_eq!(
            h.domain_url("www.example.com"),
            "http://www.example.com:8080"
        );
        assert_eq!(h.pattern(), "http://<project>.localhost:8080");
        assert_eq!(
            h.label_url(&p, "git-main"),
            "http://git-main--site.localhost:8080"
        );
        let https = SiteHosts::new("Example.COM.", "https", Some(443));
        assert_eq!(https.project_url(&p), "https://site.example.com");
        assert_eq!(
            https.domain_url("www.example.com"),
            "https://www.example.com"
        );
    }

    #[test]
    fn parses_site_hosts() {
        let h = hosts();
        let cases: &[(&str, Option<SiteHost>)] = &[
            ("site.localhost:8080", project("site")),
            ("site.localhost", project("site")),
            ("SITE.LocalHost:8080", project("site")),
            ("site.localhost.:8080", project("site")),
            ("site.localhost.", project("site")),
            (
                "abcdefghijkl--site.localhost:8080",
                Some(SiteHost::Deployment {
                    project: ProjectName::parse("site").expect("valid"),
                    deployment: DeploymentId::parse("abcdefghijkl").expect("valid"),
                }),
            ),
            ("localhost:8080", None),
            ("", None),
            (".localhost", None),
            ("a.b.localhost", None),
            ("evil.com", Some(SiteHost::Domain("evil.com".into()))),
            (
                "WWW.Example.COM.:8080",
                Some(SiteHost::Domain("www.example.com".into())),
            ),
            ("127.0.0.1:8080", None),
            ("exa_mple.com", None),
            ("-x.com", None),
            ("sitelocalhost", None),
            ("com", None),
            ("site.localhost:", None),
            ("site.localhost:80:80", None),
            ("site.localhost..", None),
            ("[::1]:8080", None),
            ("bad_name.localhost", None),
            ("short--site.localhost", None),
            ("abcdefghijkl--.localhost", None),
            ("abcdefghijkl--a--b.localhost", None),
            ("-site.localhost", None),
            (
                "git-feature-x--site.localhost:8080",
                Some(SiteHost::Label {
                    project: ProjectName::parse("site").expect("valid"),
                    label: "git-feature-x".into(),
                }),
            ),
            (
                "PR-12--site.localhost",
                Some(SiteHost::Label {
                    project: ProjectName::parse("site").expect("valid"),
                    label: "pr-12".into(),
                }),
            ),
            ("git---site.localhost", None),
            ("git-a--b--site.localhost", None),
            ("git-x---site.localhost", None),
            ("pr-012--site.localhost", None),
            ("pr-1a--site.localhost", None),
            ("pr---site.localhost", None),
            ("feature-x--site.localhost", None),
        ];
        for (raw, want) in cases {
            assert_eq!(&h.parse(raw), want, "{raw:?}");
        }
    }
}
