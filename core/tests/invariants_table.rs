//! ARCHITECTURE.md's table of invariants names the tests that guard them: each name must be a
//! test that exists, in the file the row says, so a renamed or deleted test cannot leave an
//! invariant guarded on paper only.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

/// Every `.rs` file under `dir`, skipping build output.
fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target"
                && name != "node_modules"
                && !name.to_string_lossy().starts_with('.')
            {
                sources(&path, found);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// Whether `text` defines a function `name` (a test, or the helper a test runs by that name).
fn defines(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start();
        ["fn ", "async fn ", "pub fn ", "pub async fn "]
            .iter()
            .any(|p| {
                line.strip_prefix(p)
                    .and_then(|rest| rest.strip_prefix(name))
                    .is_some_and(|rest| rest.starts_with('(') || rest.starts_with('<'))
            })
    })
}

/// The backticked words of `cell`: test names, `path::name` or `path` alone.
fn names(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

#[test]
fn every_test_the_table_names_exists_where_it_says() {
    let root = workspace();
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let (_, table) = architecture
        .split_once("### The test that guards each invariant")
        .expect("the table's heading");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let texts: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("read");
            (f, text)
        })
        .collect();
    let mut rows = 0;
    let mut checked = 0;
    let mut missing = Vec::new();
    for row in table.lines().filter(|l| l.starts_with("| ")).skip(1) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let Some(tests) = cells.last() else { continue };
        rows += 1;
        // Names after a file (`dir/file.rs`) are in that file, until a word that is neither
        // a file nor a test (`proxy` units…): names after it are anywhere.
        let mut file: Option<PathBuf> = None;
        for word in names(tests) {
            let (path, name) = match word.rsplit_once("::") {
                Some((path, name)) if path.ends_with(".rs") => (Some(path), name),
                _ if word.ends_with(".rs") => (Some(word), ""),
                _ => (None, word),
            };
            let is_test_name = name.contains('_')
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            match path {
                Some(path) => {
                    let full = root.join(path);
                    assert!(full.is_file(), "{path}, named in the table, does not exist");
                    file = Some(full);
                }
                None if !is_test_name => file = None,
                None => {}
            }
            if !is_test_name {
                continue;
            }
            checked += 1;
            let found = texts
                .iter()
                .any(|(f, t)| file.as_ref().is_none_or(|file| f == file) && defines(t, name));
            if !found {
                let invariant = cells.first().unwrap_or(&"").trim_start_matches("| ");
                missing.push(format!("{name} (in {file:?}; {invariant})"));
            }
        }
    }
    assert!(rows >= 15, "only {rows} rows in the table");
    assert!(checked >= 40, "only {checked} test names in the table");
    assert!(
        missing.is_empty(),
        "named in ARCHITECTURE.md but no such test: {missing:#?}"
    );
}
