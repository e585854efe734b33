//! Which built files carry a content hash in their name, so that their content can never
//! change under that name and they may be cached for good (`Cache-Control: immutable`). The
//! names are the ones the frameworks' bundlers write: Rollup and Vite (`index-CAoPt-vL.js`,
//! whose hash may hold `-` and `_`), webpack (`main.8c8b27cf.js`), esbuild as Angular runs it
//! (`chunk-ZXQHFSSA.js`), and the folders some frameworks keep for hashed files alone
//! (`_next/static/`, `_astro/`, `_app/immutable/`, `_nuxt/`). HTML never counts: its name is
//! its address.

/// Folders whose every file is named by its content.
const HASHED_FOLDERS: [&str; 4] = ["_next/static/", "_astro/", "_app/immutable/", "_nuxt/"];

/// Folders inside those that are not: Nuxt's build manifests change under the same name.
const NAMED_FOLDERS: [&str; 1] = ["_nuxt/builds/"];

/// Whether the file at `path` (relative to the site's root) carries a content hash.
pub fn is_fingerprinted(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    if ext.eq_ignore_ascii_case("html") || ext.eq_ignore_ascii_case("htm") {
        return false;
    }
    if HASHED_FOLDERS.iter().any(|f| path.starts_with(f))
        && !NAMED_FOLDERS.iter().any(|f| path.starts_with(f))
    {
        return true;
    }
    // `bundle.83f73b43.min.js`, VitePress's `app.Ds-Y_QbK.lean.js`: the hash comes before the
    // variant's mark.
    let stem = [".min", ".lean"]
        .iter()
        .find_map(|mark| stem.strip_suffix(mark))
        .unwrap_or(stem);
    last_word_is_hash(stem) || ends_in_rollup_hash(stem)
}

/// `app.3f9a1c2b`, `main.8c8b27cf`, `index-BQk3h7xK`, `chunk-ZXQHFSSA`: the last word (after
/// `.`, `-` or `_`) is 8 to 64 letters and digits that do not read as a word or a version:
/// hexadecimal with a digit, mixed case, or esbuild's upper-case base 32.
fn last_word_is_hash(stem: &str) -> bool {
    let mut words = stem.rsplit(['.', '-', '_']);
    let Some(word) = words.next() else {
        return false;
    };
    let after_dash =
        stem.len() > word.len() && stem.as_bytes()[stem.len() - word.len() - 1] == b'-';
    let letters = word.chars().filter(char::is_ascii_alphabetic).count();
    let digits = word.chars().filter(char::is_ascii_digit).count();
    let upper = word.chars().any(|c| c.is_ascii_uppercase());
    let lower = word.chars().any(|c| c.is_ascii_lowercase());
    (8..=64).contains(&word.len())
        && letters + digits == word.len()
        && ((digits > 0 && (word.chars().all(|c| c.is_ascii_hexdigit()) || (upper && !lower)))
            || (upper && lower)
            // esbuild's base-32 hashes, upper case, may hold no digit (`chunk-ZXQHFSSA`).
            || (after_dash && word.len() == 8 && !lower))
}

/// Rollup's `[name]-[hash]` and `[name].[hash]`: 8 characters of base64url (which holds `-`
/// and `_`), after a `-` or a `.`.
fn ends_in_rollup_hash(stem: &str) -> bool {
    const LEN: usize = 8;
    let bytes = stem.as_bytes();
    if bytes.len() <= LEN || !matches!(bytes[bytes.len() - LEN - 1], b'-' | b'.') {
        return false;
    }
    let hash = &bytes[bytes.len() - LEN..];
    let in_alphabet = hash
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    let upper = hash.iter().any(u8::is_ascii_uppercase);
    let lower = hash.iter().any(u8::is_ascii_lowercase);
    let digit = hash.iter().any(u8::is_ascii_digit);
    // The hash holds a `-` or `_` (else the word rule decides) and does not read as words
    // joined by them: both cases, or letters and digits.
    let marked = hash.iter().any(|b| matches!(b, b'-' | b'_'));
    in_alphabet && marked && ((upper && lower) || ((upper || lower) && digit))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names as each preset's build writes them.
    #[test]
    fn recognises_the_names_each_framework_writes() {
        let hashed = [
            // Vite (any template) and Rollup: base64url hashes, `-` and `_` included.
            "assets/index-BQk3h7xK.js",
            "assets/index-CAoPt-vL.js",
            "assets/index-D_ZG-1ty.css",
            "assets/react-CHdo91hT.svg",
            "assets/vue-_UTd7f0C.js",
            // VitePress.
            "assets/app.BQk3h7xK.js",
            "assets/chunks/framework.C3z_9kTK.js",
            "assets/guide_index.md.Ds-Y_QbK.lean.js",
            // SvelteKit.
            "_app/immutable/entry/start.BbJ4FZzW.js",
            "_app/immutable/nodes/0.CtGFs-_U.js",
            "_app/immutable/assets/0.Bf1e2c3d.css",
            // Angular (esbuild).
            "main-7GT3ZTYO.js",
            "polyfills-FFHMD2TL.js",
            "styles-5INURTSO.css",
            "chunk-ZXQHFSSA.js",
            // Next.js, Astro, Nuxt.
            "_next/static/chunks/main.js",
            "_next/static/css/app.css",
            "_astro/index.BQk3h7xK.css",
            "_nuxt/CwBzD1k8.js",
            "_nuxt/entry.D0dbnXcZ.css",
            // webpack: Create React App, Docusaurus, Gatsby.
            "static/js/main.8c8b27cf.js",
            "static/css/main.8c8b27cf.css",
            "static/media/logo.6ce24c58023cc2f8fd88fe9d219db6c6.svg",
            "assets/js/main.a1b2c3d4.js",
            "assets/js/17896441.2c3e5e2f.js",
            "app-5e2b5a0c1f2a3b4c5d6e.js",
            "component---src-pages-index-js-4b8f1e2c3d4a5b6c7d8e.js",
            // MkDocs Material.
            "assets/javascripts/bundle.83f73b43.min.js",
            "assets/stylesheets/main.8608ea7d.min.css",
            "img/logo.a1b2c3d4e5.png",
        ];
        for path in hashed {
            assert!(is_fingerprinted(path), "{path} is hashed");
        }
        let named = [
            "index.html",
            "page.3f9a1c2b.html",
            "_app/version.json",
            "_app/env.js",
            "_nuxt/builds/latest.json",
            "_nuxt/builds/meta/3f9a1c2b-aaaa.json",
            "bootstrap.min.js",
            "jquery-3.7.1.min.js",
            "landing-page.css",
            "my-site_home-page.js",
            "search_index.json",
            "sitemap.xml.gz",
            "favicon.ico",
            "README",
            "components.js",
            "3rdpartylicenses.txt",
            "LICENSE-APACHE.txt",
            "assets/javascripts/lunr/min/lunr.stemmer.support.min.js",
            "fonts/roboto-v30-latin-regular.woff2",
            "page-data/app-data.json",
        ];
        for path in named {
            assert!(!is_fingerprinted(path), "{path} is not hashed");
        }
    }
}
