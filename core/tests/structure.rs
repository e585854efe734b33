//! The house rules a reader relies on, checked over the workspace's own sources: no two files
//! import each other (directly or round a circle), and no function in `proxy/`, `net/` or
//! `server/` runs past 80 lines. Each finding names the files or the function, so a change that
//! breaks a rule says where.
//!
//! Imports are read from the code as written (`use` items and inline paths starting with `crate`,
//! `super`, `self` or a child module's name); `mod` declarations are not imports, and a file's
//! `#[cfg(test)]` modules may reach anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// What the tokenizer keeps of a file: code with comments, strings and character literals
/// blanked (so their braces and paths count for nothing), lines kept where they were.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[u8]| {
        for &b in s {
            out.push(if b == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            let mut j = 0;
            while j < rest.len() {
                if rest[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if rest[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, &rest[..j]);
            i += j;
        } else if let Some(len) = raw_string(rest) {
            blank(&mut out, &rest[..len]);
            i += len;
        } else if rest[0] == b'"' || rest.starts_with(b"b\"") {
            let mut j = if rest[0] == b'"' { 1 } else { 2 };
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'\'' {
            // A character literal (`'{'`, `'\n'`, `'\u{7f}'`), not a lifetime (`'a`).
            let len = match rest.get(1) {
                Some(b'\\') => rest
                    .get(3..)
                    .and_then(|r| r.iter().position(|&b| b == b'\''))
                    .map(|p| p + 4),
                Some(_) => {
                    let c = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (rest.get(1 + c) == Some(&b'\'')).then_some(c + 2)
                }
                None => None,
            };
            let len = len.unwrap_or(1);
            if len == 1 {
                out.push('\'');
            } else {
                blank(&mut out, &rest[..len]);
            }
            i += len;
        } else {
            let c = text[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&text[i..i + c]);
            i += c;
        }
    }
    out
}

/// The length of a raw string literal at the start of `s` (`r"…"`, `r#"…"#`, `br"…"`).
fn raw_string(s: &[u8]) -> Option<usize> {
    let start = if s.starts_with(b"br") {
        2
    } else if s.starts_with(b"r") {
        1
    } else {
        return None;
    };
    let hashes = s[start..].iter().take_while(|&&b| b == b'#').count();
    if s.get(start + hashes) != Some(&b'"') {
        return None;
    }
    let close: Vec<u8> = std::iter::once(b'"')
        .chain(std::iter::repeat_n(b'#', hashes))
        .collect();
    let body = start + hashes + 1;
    s[body..]
        .windows(close.len())
        .position(|w| w == close.as_slice())
        .map(|p| body + p + close.len())
}

/// A crate's source files by module path (`["routes", "jobs"]` for `src/routes/jobs.rs`), from
/// the folder holding its root (`src/`). Binaries under `src/bin/` are crates of their own and
/// left out.
fn modules(src: &Path) -> BTreeMap<Vec<String>, PathBuf> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != "bin" {
                    let mut inner = prefix.to_vec();
                    inner.push(name);
                    walk(&path, &inner, out);
                }
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let root = prefix.is_empty() && matches!(stem, "lib" | "main");
                if root && stem == "main" && dir.join("lib.rs").exists() {
                    // The binary beside a library is a crate of its own.
                    continue;
                }
                let mut module = prefix.to_vec();
                if !root && stem != "mod" {
                    module.push(stem.to_owned());
                }
                out.insert(module, path);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(src, &[], &mut out);
    out
}

/// The paths a piece of code names, each as its segments: `use` trees expanded, and inline
/// paths of two segments or more.
fn paths_named(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let words = tokens(code);
    let mut i = 0;
    while i < words.len() {
        if words[i] == "use" {
            let end = words[i..]
                .iter()
                .position(|w| w == ";")
                .map_or(words.len(), |p| i + p);
            // A re-export (`pub use child::Thing`) says where a name lives; it is no dependence.
            let exported = words[..i].last().is_some_and(|w| w == "pub")
                || words[..i].last().is_some_and(|w| w == ")")
                    && words[i.saturating_sub(6)..i].iter().any(|w| w == "pub");
            if !exported {
                expand(&words[i + 1..end], &mut Vec::new(), &mut out);
            }
            i = end;
        } else if is_ident(&words[i])
            && words.get(i + 1).is_some_and(|w| w == "::")
            && (i == 0 || words[i - 1] != "::")
        {
            let mut path = vec![words[i].clone()];
            let mut j = i + 1;
            while words.get(j).is_some_and(|w| w == "::")
                && words.get(j + 1).is_some_and(|w| is_ident(w))
            {
                path.push(words[j + 1].clone());
                j += 2;
            }
            out.push(path);
            i = j;
        }
        i += 1;
    }
    out
}

fn is_ident(w: &str) -> bool {
    w.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

fn tokens(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut end = at + c.len_utf8();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_alphanumeric() || d == '_' {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            out.push(code[at..end].to_owned());
        } else if c == ':' && chars.peek().is_some_and(|&(_, d)| d == ':') {
            chars.next();
            out.push("::".to_owned());
        } else if !c.is_whitespace() {
            out.push(c.to_string());
        }
    }
    out
}

/// A `use` tree (`crate::{a, b::{c, d}}`) as the paths it imports.
fn expand(tree: &[String], prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut i = 0;
    let depth = prefix.len();
    while i < tree.len() {
        match tree[i].as_str() {
            "{" => {
                let mut level = 0;
                let mut start = i + 1;
                let mut j = i;
                while j < tree.len() {
                    match tree[j].as_str() {
                        "{" => level += 1,
                        "}" => {
                            level -= 1;
                            if level == 0 {
                                expand(&tree[start..j], prefix, out);
                                break;
                            }
                        }
                        "," if level == 1 => {
                            expand(&tree[start..j], prefix, out);
                            start = j + 1;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                prefix.truncate(depth);
                return;
            }
            "::" | "pub" | "(" | ")" | "in" => {}
            "as" => break,
            w if is_ident(w) => prefix.push(w.to_owned()),
            _ => {}
        }
        i += 1;
    }
    if prefix.len() > depth {
        out.push(prefix.clone());
    }
    prefix.truncate(depth);
}

/// `code` with its `#[cfg(test)]` items blanked.
fn without_tests(code: &str) -> String {
    let mut out = code.to_owned();
    let mut from = 0;
    while let Some(at) = out[from..].find("#[cfg(test)]").map(|p| p + from) {
        let Some(open) = out[at..].find(['{', ';']).map(|p| p + at) else {
            break;
        };
        let end = if out.as_bytes()[open] == b';' {
            open + 1
        } else {
            matching(&out, open).map_or(out.len(), |e| e + 1)
        };
        let blanked: String = out[at..end]
            .chars()
            .map(|c| if c == '\n' { '\n' } else { ' ' })
            .collect();
        out.replace_range(at..end, &blanked);
        from = at + blanked.len();
    }
    out
}

/// The index of the brace closing the one at `open`.
fn matching(code: &str, open: usize) -> Option<usize> {
    let mut level = 0usize;
    for (i, b) in code.bytes().enumerate().skip(open) {
        match b {
            b'{' => level += 1,
            b'}' => {
                level -= 1;
                if level == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The file a path names from `module`, if it is another file of the same crate.
fn target<'m>(
    files: &'m BTreeMap<Vec<String>, PathBuf>,
    module: &[String],
    children: &BTreeSet<String>,
    path: &[String],
) -> Option<&'m Vec<String>> {
    let (base, rest): (Vec<String>, &[String]) = match path.first()?.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (module.to_vec(), &path[1..]),
        "super" => {
            let mut base = module.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            (base, rest)
        }
        first if children.contains(first) => (module.to_vec(), path),
        _ => return None,
    };
    let mut full = base;
    full.extend(rest.iter().cloned());
    (0..=full.len())
        .rev()
        .find_map(|n| files.get_key_value(&full[..n]).map(|(k, _)| k))
        .filter(|found| found.as_slice() != module)
}

/// Groups of files that import each other, in `crate_dir/src`.
fn circles(crate_dir: &Path) -> Vec<Vec<String>> {
    let files = modules(&crate_dir.join("src"));
    let mut edges: BTreeMap<&Vec<String>, BTreeSet<&Vec<String>>> = BTreeMap::new();
    for (module, file) in &files {
        let code = without_tests(&code_only(
            &std::fs::read_to_string(file).expect("read source"),
        ));
        let words = tokens(&code);
        let children: BTreeSet<String> = words
            .windows(3)
            .filter(|w| w[0] == "mod" && is_ident(&w[1]) && w[2] == ";")
            .map(|w| w[1].clone())
            .collect();
        let out = edges.entry(module).or_default();
        for path in paths_named(&code) {
            if let Some(to) = target(&files, module, &children, &path) {
                out.insert(to);
            }
        }
    }
    // What each file reaches through its imports; files that reach each other form a circle.
    let names: Vec<&Vec<String>> = files.keys().collect();
    let index_of: BTreeMap<&Vec<String>, usize> =
        names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let next: Vec<Vec<usize>> = names
        .iter()
        .map(|name| {
            edges
                .get(name)
                .map(|tos| tos.iter().map(|to| index_of[to]).collect())
                .unwrap_or_default()
        })
        .collect();
    let reach: Vec<BTreeSet<usize>> = (0..names.len())
        .map(|start| {
            let mut seen = BTreeSet::new();
            let mut stack = vec![start];
            while let Some(at) = stack.pop() {
                for &to in &next[at] {
                    if seen.insert(to) {
                        stack.push(to);
                    }
                }
            }
            seen
        })
        .collect();
    let mut grouped = BTreeSet::new();
    let mut found = Vec::new();
    for (i, reached) in reach.iter().enumerate() {
        if grouped.contains(&i) || !reached.contains(&i) {
            continue;
        }
        let group: Vec<usize> = reached
            .iter()
            .copied()
            .filter(|&j| reach[j].contains(&i))
            .collect();
        grouped.extend(group.iter().copied());
        found.push(
            group
                .iter()
                .map(|&j| files[names[j]].display().to_string())
                .collect(),
        );
    }
    found
}

#[test]
fn no_two_files_import_each_other() {
    let root = workspace();
    let mut found = Vec::new();
    for krate in ["core", "net", "proxy", "server", "builder", "cli"] {
        if root.join(krate).join("src").is_dir() {
            found.extend(circles(&root.join(krate)));
        }
    }
    let listed: Vec<String> = found.iter().map(|group| group.join(" ↔ ")).collect();
    assert!(
        listed.is_empty(),
        "files that import each other:\n{}",
        listed.join("\n")
    );
}

/// Every function in `file` longer than `most` lines, as `file:line name (lines)`.
fn long_functions(file: &Path, most: usize) -> Vec<String> {
    let code = code_only(&std::fs::read_to_string(file).expect("read source"));
    let line_of = |at: usize| code[..at].bytes().filter(|&b| b == b'\n').count() + 1;
    let words: Vec<(usize, &str)> = code
        .match_indices(|c: char| !(c.is_alphanumeric() || c == '_'))
        .scan(0, |start, (at, sep)| {
            let word = (*start, &code[*start..at]);
            *start = at + sep.len();
            Some([word, (at, sep)])
        })
        .flatten()
        .filter(|(_, w)| !w.trim().is_empty())
        .collect();
    let mut out = Vec::new();
    for (i, &(at, word)) in words.iter().enumerate() {
        if word != "fn" {
            continue;
        }
        let Some(&(_, name)) = words.get(i + 1) else {
            continue;
        };
        let mut level = 0i32;
        let body = words[i + 2..].iter().find_map(|&(pos, w)| match w {
            "(" | "[" | "<" => {
                level += 1;
                None
            }
            ")" | "]" | ">" => {
                level -= 1;
                None
            }
            "{" if level <= 0 => Some(Some(pos)),
            ";" if level <= 0 => Some(None),
            _ => None,
        });
        let Some(Some(open)) = body else { continue };
        let Some(close) = matching(&code, open) else {
            continue;
        };
        let lines = line_of(close) - line_of(at) + 1;
        if lines > most {
            out.push(format!(
                "{}:{} {name} ({lines} lines)",
                file.display(),
                line_of(at)
            ));
        }
    }
    out
}

#[test]
fn no_function_in_proxy_net_or_server_runs_past_80_lines() {
    let root = workspace();
    let mut files = Vec::new();
    for krate in ["proxy", "net", "server"] {
        for dir in ["src", "tests"] {
            let dir = root.join(krate).join(dir);
            if dir.is_dir() {
                rust_files(&dir, &mut files);
            }
        }
    }
    let long: Vec<String> = files.iter().flat_map(|f| long_functions(f, 80)).collect();
    assert!(
        long.is_empty(),
        "functions over 80 lines:\n{}",
        long.join("\n")
    );
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The checks themselves, on code written to break them.
#[test]
fn the_checks_see_what_they_look_for() {
    let code = code_only("let s = \"{ fn x() {\"; let c = '{'; // fn y() {\nfn z<'a>() {}");
    assert_eq!(tokens(&code).iter().filter(|t| *t == "{").count(), 1);
    let mut paths = paths_named(&code_only(
        "use crate::{a, b::{c, d as e}}; use super::f; fn g() { crate::h::i(); x::y(); }",
    ));
    paths.sort();
    let paths: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        paths,
        [
            "crate::a",
            "crate::b::c",
            "crate::b::d",
            "crate::h::i",
            "super::f",
            "x::y"
        ]
    );
    let d = tempfile::tempdir().expect("tempdir");
    let src = d.path().join("src");
    std::fs::create_dir_all(src.join("a")).expect("mkdir");
    std::fs::write(src.join("lib.rs"), "mod a; mod b; use a::X;").expect("write");
    std::fs::write(
        src.join("a/mod.rs"),
        "mod c; pub struct X; use c::Z; pub use c::W;",
    )
    .expect("write");
    std::fs::write(
        src.join("a/c.rs"),
        "use crate::b::Y; pub struct Z; pub struct W;",
    )
    .expect("write");
    std::fs::write(
        src.join("b.rs"),
        "pub struct Y; fn f() { super::a::X; }\n#[cfg(test)]\nmod tests { use crate::a::c; }",
    )
    .expect("write");
    let found = circles(d.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].len(), 3, "a, a/c and b: {found:?}");
    std::fs::write(src.join("a/mod.rs"), "mod c; pub struct X; pub use c::W;").expect("write");
    assert!(circles(d.path()).is_empty(), "a re-export is no import");
    let long = format!("fn long() {{\n{}}}\nfn short() {{}}\n", "x;\n".repeat(80));
    std::fs::write(src.join("b.rs"), &long).expect("write");
    assert!(circles(d.path()).is_empty());
    let found = long_functions(&src.join("b.rs"), 80);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("long (82 lines)"), "{found:?}");
}

/// The identifiers in the code of `files` outside tests, with the file each is in.
fn words_outside_tests(files: &[PathBuf]) -> Vec<(PathBuf, Vec<String>)> {
    files
        .iter()
        .map(|file| {
            let code = without_tests(&code_only(
                &std::fs::read_to_string(file).expect("read source"),
            ));
            (file.clone(), tokens(&code))
        })
        .collect()
}

fn sources_under(root: &Path, dirs: &[&str]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&root.join(dir), &mut files);
    }
    files
}

/// ARCHITECTURE.md's rules of what never happens in a layer, each as the code it would take.
#[test]
fn the_layers_keep_their_rules() {
    let root = workspace();
    // (rule, folders, identifiers their code outside tests never uses)
    let rules: &[(&str, &[&str], &[&str])] = &[
        (
            "respond/ keeps no caches, thread-locals or statics",
            &["proxy/src/respond"],
            &[
                "thread_local",
                "Mutex",
                "RwLock",
                "RefCell",
                "Cell",
                "HashMap",
                "BTreeMap",
                "AtomicU64",
                "AtomicUsize",
                "AtomicBool",
                "LazyLock",
                "OnceLock",
            ],
        ),
        (
            "net/ knows nothing of sites, nor of any framework above hyper",
            &["net/src"],
            &[
                "scalemesh_proxy",
                "Manifest",
                "layout",
                "SiteHost",
                "SiteHosts",
                "Site",
                "axum",
            ],
        ),
        (
            "no crate below the server uses axum's Router",
            &["core/src", "net/src", "proxy/src", "builder/src"],
            &["Router"],
        ),
    ];
    let mut broken = Vec::new();
    for (rule, dirs, banned) in rules {
        for (file, words) in words_outside_tests(&sources_under(&root, dirs)) {
            for word in words.iter().filter(|w| banned.contains(&w.as_str())) {
                broken.push(format!("{rule}: {} uses {word}", file.display()));
            }
            if rule.starts_with("respond/") {
                let statics = words
                    .windows(3)
                    .filter(|w| w[0] == "static" && is_ident(&w[1]) && w[2] == ":");
                for w in statics {
                    broken.push(format!("{rule}: {} has static {}", file.display(), w[1]));
                }
            }
        }
    }
    // Only the memory-file module reads the address of memory.
    let all = sources_under(
        &root,
        &[
            "core/src",
            "net/src",
            "proxy/src",
            "server/src",
            "builder/src",
            "cli/src",
        ],
    );
    for (file, words) in words_outside_tests(&all) {
        if !file.ends_with("net/src/memfile.rs") && words.iter().any(|w| w == "as_ptr") {
            broken.push(format!(
                "only net/src/memfile.rs reads pointer addresses: {} does",
                file.display()
            ));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// Which crate may depend on which (`[dependencies]`; tests may use more).
#[test]
fn crates_depend_only_on_the_crates_below_them() {
    // (crate folder, the workspace crates it may depend on)
    let allowed: &[(&str, &[&str])] = &[
        ("core", &[]),
        ("net", &["scalemesh-core"]),
        ("proxy", &["scalemesh-core", "scalemesh-net"]),
        ("builder", &["scalemesh-core"]),
        (
            "server",
            &["scalemesh-core", "scalemesh-net", "scalemesh-proxy"],
        ),
        ("cli", &["scalemesh-core"]),
    ];
    let root = workspace();
    let mut broken = Vec::new();
    for (krate, may) in allowed {
        let manifest =
            std::fs::read_to_string(root.join(krate).join("Cargo.toml")).expect("Cargo.toml");
        let mut section = "";
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line;
                continue;
            }
            let name = line.split(['=', '.', ' ']).next().unwrap_or("");
            if section == "[dependencies]" && name.starts_with("scalemesh-") && !may.contains(&name)
            {
                broken.push(format!("{krate} depends on {name}"));
            }
        }
    }
    let listed: Vec<&str> = allowed.iter().map(|(k, _)| *k).collect();
    let members = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    for member in members
        .lines()
        .find(|l| l.starts_with("members"))
        .expect("members")
        .split('"')
        .skip(1)
        .step_by(2)
    {
        if !listed.contains(&member) {
            broken.push(format!(
                "{member} is not in the table of who may depend on whom"
            ));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
