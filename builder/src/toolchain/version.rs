//! Node.js versions and the version ranges apps ask for, as npm, nvm and Volta read them:
//! `22`, `v20.11.1`, `20.x`, `>=18 <23`, `^20.9`, `~18.17`, `1.2 - 2.3`, `18 || 20`, `*`,
//! `lts/*`, `lts/iron`, `node`, `latest`. Parsing and matching only: nothing here reads a file
//! or the network.

use std::fmt;

/// A released Node.js version. Releases have no pre-release part, so none is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl Version {
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// `22.3.0` or `v22.3.0` (what `node --version` prints), nothing less and nothing more.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let raw = raw.strip_prefix('v').unwrap_or(raw);
        let mut parts = raw.split('.').map(number);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Some(major)), Some(Some(minor)), Some(Some(patch)), None) => {
                Some(Self::new(major, minor, patch))
            }
            _ => None,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

fn number(part: &str) -> Option<u64> {
    if part.is_empty() || part.len() > 9 || !part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    part.parse().ok()
}

/// Long-term-support lines by codename, as `lts/<codename>` names them.
pub const LTS_CODENAMES: &[(&str, u64)] = &[
    ("argon", 4),
    ("boron", 6),
    ("carbon", 8),
    ("dubnium", 10),
    ("erbium", 12),
    ("fermium", 14),
    ("gallium", 16),
    ("hydrogen", 18),
    ("iron", 20),
    ("jod", 22),
    ("krypton", 24),
];

/// A version range: any of several sets, each a list of bounds a version must all meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    raw: String,
    any_of: Vec<Vec<Bound>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    AtLeast(Version),
    Above(Version),
    Below(Version),
    AtMost(Version),
    Exactly(Version),
}

impl Bound {
    fn admits(self, v: Version) -> bool {
        match self {
            Self::AtLeast(b) => v >= b,
            Self::Above(b) => v > b,
            Self::Below(b) => v < b,
            Self::AtMost(b) => v <= b,
            Self::Exactly(b) => v == b,
        }
    }
}

/// What a range could not be read as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{raw:?} is not a Node.js version or range ({why}); write e.g. \"22\", \"20.11.1\", \">=18 <23\" or \"lts/*\""
)]
pub struct RangeError {
    pub raw: String,
    pub why: String,
}

/// Nothing matches it: what `>*` and `<0` mean.
const NOTHING: Bound = Bound::Below(Version::new(0, 0, 0));

impl Range {
    /// Any version: what an app that asks for nothing gets.
    pub fn any() -> Self {
        Self {
            raw: "*".into(),
            any_of: vec![Vec::new()],
        }
    }

    pub fn parse(raw: &str) -> Result<Self, RangeError> {
        let text = raw.trim();
        let fail = |why: &str| RangeError {
            raw: raw.chars().take(100).collect(),
            why: why.to_owned(),
        };
        if text.is_empty() || text.len() > 256 {
            return Err(fail("it is empty or too long"));
        }
        let lower = text.to_ascii_lowercase();
        let any_of = match lower.as_str() {
            "node" | "latest" | "current" | "stable" => vec![Vec::new()],
            "lts/*" | "lts" => LTS_CODENAMES.iter().map(|(_, m)| line(*m)).collect(),
            _ => match lower.strip_prefix("lts/") {
                Some(name) => match LTS_CODENAMES.iter().find(|(n, _)| *n == name) {
                    Some((_, major)) => vec![line(*major)],
                    None => return Err(fail("unknown long-term-support codename")),
                },
                None => text
                    .split("||")
                    .map(|set| parse_set(set).map_err(|why| fail(&why)))
                    .collect::<Result<_, _>>()?,
            },
        };
        Ok(Self {
            raw: text.to_owned(),
            any_of,
        })
    }

    /// The versions every one of `ranges` admits (what a set of packages' `engines` allow
    /// together). Sets that cannot hold a version are dropped as they appear, and at most
    /// [`MAX_SETS`] are kept.
    pub fn all_of(ranges: &[Range]) -> Self {
        let mut any_of: Vec<Vec<Bound>> = vec![Vec::new()];
        for range in ranges {
            let mut next: Vec<Vec<Bound>> = Vec::new();
            for set in &any_of {
                for other in &range.any_of {
                    let mut joined = set.clone();
                    joined.extend(other.iter().copied().filter(|b| !set.contains(b)));
                    if could_hold(&joined) && !next.contains(&joined) {
                        next.push(joined);
                    }
                }
            }
            next.truncate(MAX_SETS);
            any_of = next;
        }
        let mut raws: Vec<&str> = Vec::new();
        for range in ranges {
            if !raws.contains(&range.raw.as_str()) {
                raws.push(&range.raw);
            }
        }
        Self {
            raw: raws.join(" and "),
            any_of,
        }
    }

    pub fn matches(&self, v: Version) -> bool {
        self.any_of
            .iter()
            .any(|set| set.iter().all(|bound| bound.admits(v)))
    }

    /// The highest of `versions` in the range.
    pub fn best<'a>(&self, versions: impl IntoIterator<Item = &'a Version>) -> Option<Version> {
        versions
            .into_iter()
            .copied()
            .filter(|v| self.matches(*v))
            .max()
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Most alternatives a range built by [`Range::all_of`] keeps.
const MAX_SETS: usize = 256;

/// Whether some version could meet every bound of `set`: its highest lower bound is not above
/// its lowest upper bound.
fn could_hold(set: &[Bound]) -> bool {
    let low = set
        .iter()
        .filter_map(|b| match b {
            Bound::AtLeast(v) | Bound::Above(v) | Bound::Exactly(v) => Some(*v),
            _ => None,
        })
        .max();
    let high = set
        .iter()
        .filter_map(|b| match b {
            Bound::Below(v) | Bound::AtMost(v) | Bound::Exactly(v) => Some(*v),
            _ => None,
        })
        .min();
    match (low, high) {
        (Some(low), Some(high)) => low <= high,
        _ => true,
    }
}

/// Every release of one major line.
fn line(major: u64) -> Vec<Bound> {
    vec![
        Bound::AtLeast(Version::new(major, 0, 0)),
        Bound::Below(Version::new(major + 1, 0, 0)),
    ]
}

/// One set: bounds separated by spaces (`>=18 <23`), or a hyphen range (`18 - 20.1`).
fn parse_set(set: &str) -> Result<Vec<Bound>, String> {
    let words: Vec<&str> = set.split_whitespace().collect();
    if words.is_empty() {
        return Err("an empty alternative".into());
    }
    if let [from, "-", to] = words[..] {
        let mut bounds = comparator(">=", partial(from)?)?;
        bounds.extend(comparator("<=", partial(to)?)?);
        return Ok(bounds);
    }
    let mut bounds = Vec::new();
    let mut words = words.into_iter();
    while let Some(word) = words.next() {
        let split = word
            .find(|c: char| !matches!(c, '<' | '>' | '=' | '^' | '~'))
            .unwrap_or(word.len());
        let (op, rest) = word.split_at(split);
        // `>= 18`: npm allows a space after the operator.
        let rest = match rest {
            "" => words.next().ok_or("an operator without a version")?,
            rest => rest,
        };
        bounds.extend(comparator(op, partial(rest)?)?);
    }
    Ok(bounds)
}

/// A version with parts left out or written as `x`: `20`, `20.x`, `v20.11`, `*`.
#[derive(Debug, Clone, Copy)]
struct Partial {
    major: Option<u64>,
    minor: Option<u64>,
    patch: Option<u64>,
}

fn partial(raw: &str) -> Result<Partial, String> {
    let raw = raw.strip_prefix(['v', 'V', '=']).unwrap_or(raw);
    // Build metadata means nothing for matching; pre-releases are not published as binaries.
    let raw = raw.split('+').next().unwrap_or(raw);
    if raw.contains('-') {
        return Err(format!("{raw:?} is a pre-release"));
    }
    let mut parts = raw.split('.');
    let mut next = || -> Result<Option<u64>, String> {
        match parts.next() {
            None | Some("x" | "X" | "*") => Ok(None),
            Some(n) => number(n)
                .map(Some)
                .ok_or_else(|| format!("{raw:?} is not a version")),
        }
    };
    let (major, minor, patch) = (next()?, next()?, next()?);
    if parts.next().is_some() {
        return Err(format!("{raw:?} has more than three parts"));
    }
    // After a wildcard, nothing more is precise: `20.x.3` is `20.x`.
    let minor = minor.filter(|_| major.is_some());
    let patch = patch.filter(|_| minor.is_some());
    Ok(Partial {
        major,
        minor,
        patch,
    })
}

/// The bounds `op` with partial `p` stands for.
fn comparator(op: &str, p: Partial) -> Result<Vec<Bound>, String> {
    use Bound::{Above, AtLeast, AtMost, Below, Exactly};
    let floor = Version::new(
        p.major.unwrap_or(0),
        p.minor.unwrap_or(0),
        p.patch.unwrap_or(0),
    );
    // The first version past everything `p` covers (`20.1` → `20.2.0`), when `p` is partial.
    let past = match (p.major, p.minor, p.patch) {
        (None, _, _) => None,
        (Some(m), None, _) => Some(Version::new(m + 1, 0, 0)),
        (Some(m), Some(n), None) => Some(Version::new(m, n + 1, 0)),
        (Some(_), Some(_), Some(_)) => None,
    };
    let wildcard = p.major.is_none();
    let exact = p.patch.is_some();
    Ok(match op {
        "" | "=" if wildcard => vec![],
        "" | "=" if exact => vec![Exactly(floor)],
        "" | "=" => vec![AtLeast(floor), Below(past.unwrap_or(floor))],
        ">=" => vec![AtLeast(floor)],
        ">" if wildcard => vec![NOTHING],
        ">" => vec![past.map_or(Above(floor), AtLeast)],
        "<" if wildcard => vec![NOTHING],
        "<" => vec![Below(floor)],
        "<=" if wildcard => vec![],
        "<=" => vec![past.map_or(AtMost(floor), Below)],
        "~" | "~>" if wildcard => vec![],
        "~" | "~>" => vec![
            AtLeast(floor),
            Below(match p.minor {
                Some(n) => Version::new(floor.major, n + 1, 0),
                None => Version::new(floor.major + 1, 0, 0),
            }),
        ],
        "^" if wildcard => vec![],
        "^" => vec![AtLeast(floor), Below(caret_ceiling(p, floor))],
        other => return Err(format!("{other:?} is not an operator")),
    })
}

/// `^`: the first version that changes the leftmost part that is not zero.
fn caret_ceiling(p: Partial, floor: Version) -> Version {
    match (floor.major, p.minor, floor.minor, p.patch) {
        (m, _, _, _) if m > 0 => Version::new(m + 1, 0, 0),
        (0, None, _, _) => Version::new(1, 0, 0),
        (0, Some(_), n, _) if n > 0 => Version::new(0, n + 1, 0),
        (0, Some(_), 0, None) => Version::new(0, 1, 0),
        (0, Some(_), 0, Some(patch)) => Version::new(0, 0, patch + 1),
        _ => Version::new(1, 0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(raw: &str) -> Version {
        Version::parse(raw).expect("a version")
    }

    /// Each range, versions it takes and versions it refuses, as npm's `semver.satisfies` and
    /// nvm read them.
    #[test]
    fn ranges_match_as_npm_reads_them() {
        let table: &[(&str, &[&str], &[&str])] = &[
            ("22", &["22.0.0", "22.12.0"], &["21.9.9", "23.0.0"]),
            ("v20.11.1", &["20.11.1"], &["20.11.0", "20.11.2"]),
            ("20.11.1", &["20.11.1"], &["20.12.0"]),
            ("=20.11.1", &["20.11.1"], &["20.11.2"]),
            ("20.x", &["20.0.0", "20.99.1"], &["19.9.0", "21.0.0"]),
            ("20.X.x", &["20.5.5"], &["21.0.0"]),
            ("20.11", &["20.11.0", "20.11.9"], &["20.12.0", "20.10.9"]),
            (">=18 <23", &["18.0.0", "22.99.0"], &["17.9.9", "23.0.0"]),
            (">= 18 < 23", &["18.0.0"], &["23.1.0"]),
            (">18", &["19.0.0"], &["18.99.0"]),
            (">18.2", &["18.3.0"], &["18.2.9"]),
            (">18.2.1", &["18.2.2"], &["18.2.1"]),
            ("<=20", &["20.99.0"], &["21.0.0"]),
            ("<=20.1", &["20.1.9"], &["20.2.0"]),
            ("<20", &["19.99.0"], &["20.0.0"]),
            ("^20.9", &["20.9.0", "20.20.2"], &["20.8.9", "21.0.0"]),
            ("^20", &["20.0.0"], &["21.0.0"]),
            ("^0.12.3", &["0.12.9"], &["0.13.0"]),
            ("^0.0.3", &["0.0.3"], &["0.0.4"]),
            ("~18.17", &["18.17.0", "18.17.1"], &["18.18.0", "18.16.9"]),
            ("~18.17.1", &["18.17.5"], &["18.17.0", "18.18.0"]),
            ("~18", &["18.20.0"], &["19.0.0"]),
            ("18 || 20", &["18.1.0", "20.2.0"], &["19.0.0", "22.0.0"]),
            (
                "^18.17 || >=20.3",
                &["18.17.0", "24.0.0"],
                &["19.0.0", "20.2.0"],
            ),
            ("18 - 20.1", &["18.0.0", "20.1.9"], &["20.2.0", "17.0.0"]),
            ("*", &["0.10.0", "25.0.0"], &[]),
            ("x", &["4.0.0"], &[]),
            (">=*", &["4.0.0"], &[]),
            (">*", &[], &["4.0.0"]),
            ("node", &["25.2.1"], &[]),
            ("latest", &["4.0.0"], &[]),
            (
                "lts/*",
                &["20.1.0", "24.0.0", "4.0.0"],
                &["21.0.0", "23.1.0", "0.12.0"],
            ),
            ("lts/iron", &["20.20.2"], &["22.0.0", "18.0.0"]),
            ("LTS/Jod", &["22.12.0"], &["20.0.0"]),
            ("lts/hydrogen", &["18.20.0"], &["20.0.0"]),
            ("lts/krypton", &["24.1.0"], &["22.0.0"]),
            ("lts/argon", &["4.9.1"], &["6.0.0"]),
            ("20.0.0+build", &["20.0.0"], &["20.0.1"]),
        ];
        for (raw, yes, no) in table {
            let range = Range::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            for y in *yes {
                assert!(range.matches(v(y)), "{raw} should take {y}");
            }
            for n in *no {
                assert!(!range.matches(v(n)), "{raw} should refuse {n}");
            }
        }
    }

    #[test]
    fn garbage_is_refused_with_the_reason() {
        for raw in [
            "",
            "   ",
            "abc",
            "20.1.2.3",
            "lts/nope",
            "=>18",
            ">=",
            "20.0.0-rc.1",
            "18 ||",
            "1e3",
            "<>20",
        ] {
            let err = Range::parse(raw).expect_err(raw);
            assert!(err.to_string().contains("not a Node.js version"), "{err}");
        }
    }

    #[test]
    fn the_best_is_the_highest_that_matches() {
        let versions = ["18.20.4", "20.11.1", "20.18.0", "22.12.0"].map(v);
        let best = |raw: &str| Range::parse(raw).expect("range").best(&versions);
        assert_eq!(best("20"), Some(v("20.18.0")));
        assert_eq!(best(">=18 <21"), Some(v("20.18.0")));
        assert_eq!(best("lts/*"), Some(v("22.12.0")));
        assert_eq!(best("99"), None);
        assert_eq!(Version::parse("v20.20.2\n"), Some(v("20.20.2")));
        assert_eq!(Version::parse("20.1"), None);
        assert_eq!(v("22.3.0").to_string(), "22.3.0");
    }

    #[test]
    fn ranges_together_admit_what_each_admits() {
        let parse = |raw: &str| Range::parse(raw).expect(raw);
        let v = |raw: &str| Version::parse(raw).expect(raw);
        let both = Range::all_of(&[
            parse(">=18"),
            parse("^18.18.0 || ^20.9.0 || >=21.1.0"),
            parse(">=22.12.0"),
        ]);
        for (version, admitted) in [
            ("20.20.2", false),
            ("22.11.0", false),
            ("22.12.0", true),
            ("24.1.0", true),
        ] {
            assert_eq!(both.matches(v(version)), admitted, "{version}");
        }
        assert_eq!(
            both.to_string(),
            ">=18 and ^18.18.0 || ^20.9.0 || >=21.1.0 and >=22.12.0"
        );
        let none = Range::all_of(&[parse("^18"), parse(">=20")]);
        assert!(!none.matches(v("18.20.0")) && !none.matches(v("20.1.0")));
        assert!(
            Range::all_of(&[]).matches(v("20.1.0")),
            "nothing asked admits all"
        );
    }
}
