//! The commit a deployment was built from, as its repository tells it: full name, branch, the
//! first line of its message and its author. All of it comes from a repository nobody vetted,
//! so it is kept only in a shape that cannot hurt a terminal, a log or a page: a name of hex
//! digits, and text without control characters, cut to a length.

use serde::{Deserialize, Serialize};

const MESSAGE_CHARS: usize = 200;
const AUTHOR_CHARS: usize = 100;
const BRANCH_CHARS: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// The full name: 40 hex digits (SHA-1) or 64 (SHA-256), lower-case.
    pub sha: String,
    /// The branch it was on, when it was built from one.
    #[serde(default)]
    pub branch: Option<String>,
    /// The first line of its message.
    pub message: String,
    pub author: String,
}

/// Whether `sha` names a commit in full: 40 (SHA-1) or 64 (SHA-256) lower-case hex digits.
pub fn is_full_sha(sha: &str) -> bool {
    matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl CommitInfo {
    /// The commit as it may be kept and shown, or `None` when its name is not a commit's.
    pub fn cleaned(self) -> Option<Self> {
        let sha = self.sha.trim().to_ascii_lowercase();
        let named = matches!(sha.len(), 40 | 64) && sha.bytes().all(|b| b.is_ascii_hexdigit());
        if !named {
            return None;
        }
        let branch = self
            .branch
            .map(|b| plain(&b, BRANCH_CHARS))
            .filter(|b| !b.is_empty());
        Some(Self {
            sha,
            branch,
            message: plain(self.message.lines().next().unwrap_or(""), MESSAGE_CHARS),
            author: plain(&self.author, AUTHOR_CHARS),
        })
    }

    /// The first 7 digits of its name, as people quote a commit.
    pub fn short(&self) -> &str {
        &self.sha[..self.sha.len().min(7)]
    }
}

/// `text` without control characters (escape sequences, bidi overrides and line breaks
/// included), trimmed and cut to `chars` characters.
fn plain(text: &str, chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .collect::<String>()
        .trim()
        .chars()
        .take(chars)
        .collect()
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_commit_s_name_and_plain_text_are_kept() {
        let sha = "6113728F27AE82C7B1A177C8D03F9E96E0ADF246";
        let commit = |sha: &str, message: &str, author: &str, branch: Option<&str>| CommitInfo {
            sha: sha.into(),
            branch: branch.map(str::to_owned),
            message: message.into(),
            author: author.into(),
        };
        let lower = sha.to_ascii_lowercase();
        // (as reported, as kept)
        let table = [
            (
                commit(sha, "Fix the header\n\nmore", "Mona", Some("main")),
                Some(commit(&lower, "Fix the header", "Mona", Some("main"))),
            ),
            (
                commit(
                    &lower,
                    "\u{1b}[31mred\u{1b}[0m \u{202e}txt",
                    " Eve\u{7} ",
                    Some(""),
                ),
                Some(commit(&lower, "[31mred[0m txt", "Eve", None)),
            ),
            (
                commit(&"a".repeat(64), &"m".repeat(500), "A", None),
                Some(commit(&"a".repeat(64), &"m".repeat(200), "A", None)),
            ),
            (commit("6113728", "short", "A", None), None),
            (
                commit(&format!("{}g", &lower[..39]), "not hex", "A", None),
                None,
            ),
            (commit("", "", "", None), None),
        ];
        for (reported, kept) in table {
            assert_eq!(reported.clone().cleaned(), kept, "{reported:?}");
        }
        assert_eq!(commit(&lower, "", "", None).short(), "6113728");
    }
}
