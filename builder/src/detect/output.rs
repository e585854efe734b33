//! After the build: which folder holds the site, and whether it looks like one.

use std::path::Path;

use super::plan::{Output, Plan};

/// Folders that commonly hold a built site, in the order they are tried.
pub const OUTPUT_CANDIDATES: [&str; 4] = ["dist", "build", "out", "public"];

/// Names looked at, at most, for an HTML page in the output.
const MAX_NAMES: usize = 200_000;

/// The folder to upload once the build is done, relative to `root`: the planned one (Angular:
/// its `browser` subfolder when there is one), else the first of [`OUTPUT_CANDIDATES`] that
/// exists, else the app's root when it has an `index.html`.
pub fn output_folder(root: &Path, plan: &Plan) -> Result<String, String> {
    let planned = match &plan.output {
        Output::Folder(dir) => dir.clone(),
        Output::BrowserIn(dir) => {
            let browser = format!("{dir}/browser");
            if root.join(&browser).is_dir() {
                browser
            } else {
                dir.clone()
            }
        }
        Output::Find => return find(root),
    };
    if root.join(&planned).is_dir() {
        Ok(planned)
    } else {
        Err(format!(
            "the output folder {planned:?} does not exist after the build; check the build's \
             log, or set outputDirectory in scalemesh.json"
        ))
    }
}

fn find(root: &Path) -> Result<String, String> {
    if let Some(found) = OUTPUT_CANDIDATES.iter().find(|d| root.join(d).is_dir()) {
        return Ok((*found).to_owned());
    }
    if root.join("index.html").is_file() {
        return Ok(".".to_owned());
    }
    Err(format!(
        "no output folder: looked for {} and for an index.html at the root; set outputDirectory in scalemesh.json",
        OUTPUT_CANDIDATES.join(", ")
    ))
}

/// Whether the output folder `output` of `root` holds a site: an error when it has no HTML page
/// at all, a warning when it has no `index.html` at its top. Reads names only, never follows a
/// link, and gives up looking after [`MAX_NAMES`] names.
pub fn check_output(root: &Path, output: &str) -> Result<Vec<String>, String> {
    let dir = root.join(output);
    let shown = if output == "." {
        "(the app's root)".to_owned()
    } else {
        format!("{output:?}")
    };
    if std::fs::symlink_metadata(dir.join("index.html")).is_ok_and(|m| m.is_file()) {
        return Ok(Vec::new());
    }
    match find_html(&dir) {
        Search::Found => Ok(vec![format!(
            "The output folder {shown} has no index.html at its top: its address `/` will answer 404"
        )]),
        Search::GaveUp => Ok(vec![format!(
            "The output folder {shown} has no index.html at its top, and no HTML page among its \
             first {MAX_NAMES} names"
        )]),
        Search::None => Err(format!(
            "the output folder {shown} holds no HTML page: this is not a site. If the framework \
             built a server, set it up for a static export; or set outputDirectory in \
             scalemesh.json to the folder that holds your pages"
        )),
    }
}

enum Search {
    Found,
    None,
    GaveUp,
}

fn find_html(dir: &Path) -> Search {
    let mut folders = vec![dir.to_path_buf()];
    let mut seen = 0usize;
    while let Some(folder) = folders.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > MAX_NAMES {
                return Search::GaveUp;
            }
            // The entry's own type: a link is neither a folder to enter nor a page.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                folders.push(entry.path());
            } else if kind.is_file() && is_html(&entry.file_name().to_string_lossy()) {
                return Search::Found;
            }
        }
    }
    Search::None
}

fn is_html(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".html") || lower.ends_with(".htm")
}
