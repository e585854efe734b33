//! The stable host of a branch or a pull request: `git-<branch>--<project>.<base domain>` and
//! `pr-<number>--<project>.<base domain>`. A deployment's own host is `<id>--<project>` with an
//! id of letters and digits only, so a label with a `-` before its `--` is never one; a project
//! name never holds `--`, so the split is unambiguous. The label is chosen once, when the branch
//! is first deployed, and stored: the proxy never works it out again.

use sha2::{Digest, Sha256};

/// A DNS label holds 63 bytes: `<label>--<project>`.
const DNS_LABEL: usize = 63;

/// The label of `branch` in `project`, as readable as fits: lower-case, every run of other
/// characters than letters and digits made one `-`. `distinct` (asked for when the readable
/// form is taken by another branch that reads the same, `feature/x` and `feature-x`) or a form
/// too long for the host adds six hex digits of the branch's SHA-256.
pub fn branch(branch: &str, project: &str, distinct: bool) -> String {
    let room = DNS_LABEL.saturating_sub(project.len() + 2);
    let readable = format!("git-{}", slug(branch));
    if !distinct && readable.len() <= room && readable != "git-" {
        return readable;
    }
    let tag = &hex::encode(Sha256::digest(branch.as_bytes()))[..6];
    let keep = room.saturating_sub(tag.len() + 1).min(readable.len());
    let cut = readable[..keep].trim_end_matches('-');
    format!("{cut}-{tag}")
}

/// The label of pull (merge) request `number`.
pub fn pull_request(number: u64) -> String {
    format!("pr-{number}")
}

fn slug(branch: &str) -> String {
    let mut out = String::with_capacity(branch.len());
    for c in branch.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_get_labels_that_fit_and_never_look_like_deployments() {
        let long_project = "p".repeat(48);
        let tag = |b: &str| hex::encode(Sha256::digest(b.as_bytes()))[..6].to_owned();
        // (branch, project, distinct, label)
        let table = [
            ("main", "blog", false, "git-main".to_owned()),
            (
                "feature/Dark_Mode",
                "blog",
                false,
                "git-feature-dark-mode".to_owned(),
            ),
            ("--weird--/", "blog", false, "git-weird".to_owned()),
            (
                "feature/x",
                "blog",
                true,
                format!("git-feature-x-{}", tag("feature/x")),
            ),
            ("日本", "blog", false, format!("git-{}", tag("日本"))),
            (
                "feature/pricing",
                &long_project,
                false,
                format!("git-fe-{}", tag("feature/pricing")),
            ),
            ("ab", &long_project, false, "git-ab".to_owned()),
        ];
        for (branch_name, project, distinct, label) in table {
            let got = branch(branch_name, project, distinct);
            assert_eq!(got, label, "{branch_name} in {project}");
            assert!(got.len() + 2 + project.len() <= DNS_LABEL, "{got} fits");
            assert!(got.contains('-'), "{got} is not a deployment id");
            assert!(!got.contains("--") && !got.ends_with('-'), "{got}");
            assert!(
                got.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            );
        }
        let long_branch = "x".repeat(200);
        let got = branch(&long_branch, "blog", false);
        assert_eq!(got.len(), DNS_LABEL - 6);
        assert!(got.ends_with(&tag(&long_branch)));
        assert_eq!(pull_request(42), "pr-42");
    }
}
