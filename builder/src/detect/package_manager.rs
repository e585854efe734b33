//! The Node.js package manager an app uses, from `packageManager` in package.json, else its
//! lockfile, else npm; and the commands and caches that go with it.

use std::path::Path;

use super::error::DetectError;
use super::package_json::PackageJson;
use super::place::Place;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageManager {
    Npm,
    Pnpm,
    /// Yarn 1 ("classic").
    Yarn,
    /// Yarn 2 and later: a `.yarnrc.yml`, or `packageManager: yarn@>=2`.
    YarnBerry,
    Bun,
}

/// Lockfiles in the order they are tried when package.json names no package manager.
const LOCKFILES: [(&str, PackageManager); 6] = [
    ("pnpm-lock.yaml", PackageManager::Pnpm),
    ("yarn.lock", PackageManager::Yarn),
    ("package-lock.json", PackageManager::Npm),
    ("npm-shrinkwrap.json", PackageManager::Npm),
    ("bun.lock", PackageManager::Bun),
    ("bun.lockb", PackageManager::Bun),
];

/// Where a package manager the machine lacks (or has in another version) is installed from the
/// npm registry, relative to the build's HOME; its `bin` goes first on PATH.
const TOOLS: &str = ".scalemesh/tools";

impl PackageManager {
    pub fn name(self) -> &'static str {
        match self {
            Self::Npm => "npm",
            Self::Pnpm => "pnpm",
            Self::Yarn | Self::YarnBerry => "yarn",
            Self::Bun => "bun",
        }
    }

    fn same_tool(self, other: Self) -> bool {
        self.name() == other.name()
    }
}

/// `packageManager` in package.json, as Node.js's corepack defined it: `pnpm@9.12.0+sha512.…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageManagerField {
    pub manager: PackageManager,
    /// The exact version, without the hash: `9.12.0`.
    pub version: String,
}

impl PackageManagerField {
    /// `None` when `raw` is not `name@x.y.z`, optionally followed by `-pre` and `+hash`.
    pub fn parse(raw: &str) -> Option<Self> {
        let (name, rest) = raw.split_once('@')?;
        let version = match rest.split_once('+') {
            Some((version, hash)) => {
                let hash_ok = !hash.is_empty()
                    && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.');
                hash_ok.then_some(version)?
            }
            None => rest,
        };
        let (release, pre) = match version.split_once('-') {
            Some((release, pre)) => (release, Some(pre)),
            None => (version, None),
        };
        let numbers: Vec<&str> = release.split('.').collect();
        let numeric = |n: &&str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        if numbers.len() != 3 || !numbers.iter().all(numeric) {
            return None;
        }
        if let Some(pre) = pre
            && (pre.is_empty() || !pre.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.'))
        {
            return None;
        }
        let manager = match name {
            "npm" => PackageManager::Npm,
            "pnpm" => PackageManager::Pnpm,
            "yarn" if numbers[0] == "1" || numbers[0] == "0" => PackageManager::Yarn,
            "yarn" => PackageManager::YarnBerry,
            "bun" => PackageManager::Bun,
            _ => return None,
        };
        Some(Self {
            manager,
            version: version.to_owned(),
        })
    }
}

/// A Node.js app's package manager and what it was told by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRuntime {
    pub package_manager: PackageManager,
    /// The package manager's lockfile, when the app has one: `pnpm-lock.yaml`.
    pub lockfile: Option<String>,
    /// package.json's `packageManager`, without its hash: `pnpm@9.12.0`.
    pub declared: Option<String>,
    /// Yarn Plug'n'Play: there is no `node_modules`; packages live in `.yarn/cache`.
    pub pnp: bool,
}

impl NodeRuntime {
    pub fn detect(root: &Path, pkg: &PackageJson) -> Result<Self, DetectError> {
        let field = match &pkg.package_manager {
            Some(raw) => Some(
                PackageManagerField::parse(raw)
                    .ok_or_else(|| DetectError::PackageManagerField(raw.clone()))?,
            ),
            None => None,
        };
        let found = LOCKFILES
            .iter()
            .filter(|(file, _)| root.join(file).is_file())
            .map(|&(file, pm)| (file, pm));
        let mut package_manager = match &field {
            Some(field) => field.manager,
            None => found
                .clone()
                .next()
                .map_or(PackageManager::Npm, |(_, pm)| pm),
        };
        let yarnrc = root.join(".yarnrc.yml");
        if package_manager == PackageManager::Yarn && field.is_none() && yarnrc.is_file() {
            package_manager = PackageManager::YarnBerry;
        }
        let lockfile = found
            .filter(|(_, pm)| pm.same_tool(package_manager))
            .map(|(file, _)| file.to_owned())
            .next();
        let pnp = package_manager == PackageManager::YarnBerry && !yarnrc_links_node_modules(root);
        Ok(Self {
            package_manager,
            lockfile,
            declared: field.map(|f| format!("{}@{}", f.manager.name(), f.version)),
            pnp,
        })
    }

    /// The install command: a frozen install when there is a lockfile.
    pub fn install(&self) -> String {
        let locked = self.lockfile.is_some();
        match (self.package_manager, locked) {
            (PackageManager::Npm, true) => "npm ci",
            (PackageManager::Npm, false) => "npm install",
            (PackageManager::Pnpm, true) => "pnpm install --frozen-lockfile",
            (PackageManager::Pnpm, false) => "pnpm install",
            (PackageManager::Yarn, true) => "yarn install --frozen-lockfile",
            (PackageManager::YarnBerry, true) => "yarn install --immutable",
            (PackageManager::Yarn | PackageManager::YarnBerry, false) => "yarn install",
            (PackageManager::Bun, true) => "bun install --frozen-lockfile",
            (PackageManager::Bun, false) => "bun install",
        }
        .to_owned()
    }

    /// Runs a package.json script: `pnpm run build`.
    pub fn run(&self, script: &str) -> String {
        format!("{} run {script}", self.package_manager.name())
    }

    /// Makes the package manager available, in the version `packageManager` declares, before
    /// the install: installed with npm from the registry (whose integrity npm checks) into a
    /// folder of the build's HOME that the plan puts first on PATH, so a `build` script that
    /// itself calls `pnpm` gets the same version. Corepack is not used: the one that Node.js
    /// 20 and 22 bring fails on the registry's current signing keys, and Node.js 25 brings none.
    /// Without a declared version the machine's own tool is used when it has one.
    pub fn setup(&self) -> Option<String> {
        let (tool, package) = match self.package_manager {
            PackageManager::Pnpm => ("pnpm", "pnpm"),
            PackageManager::Yarn => ("yarn", "yarn"),
            PackageManager::YarnBerry => ("yarn", "@yarnpkg/cli-dist"),
            PackageManager::Bun => ("bun", "bun"),
            PackageManager::Npm => return None,
        };
        let version = self.declared_version();
        // `--prefix` moves npm's global configuration along with it: the machine's (a registry
        // mirror, its certificate authorities) is named so that it still counts.
        let install = format!(
            "npm install --global --prefix \"$HOME/{TOOLS}\" --globalconfig \"$(npm config get globalconfig)\" --no-audit --no-fund {package}@{}",
            version.unwrap_or(match self.package_manager {
                PackageManager::Yarn => "1",
                _ => "latest",
            })
        );
        Some(match version {
            Some(v) => format!("[ \"$({tool} --version 2>/dev/null)\" = \"{v}\" ] || {install}"),
            None => format!("command -v {tool} >/dev/null || {install}"),
        })
    }

    /// The version `packageManager` names for this package manager, as parsed and checked
    /// (digits, dots and a plain pre-release tag only).
    fn declared_version(&self) -> Option<&str> {
        self.declared.as_deref()?.split_once('@').map(|(_, v)| v)
    }

    /// Folders to put first on PATH, and the variables the commands need.
    pub fn path_and_env(&self) -> (Vec<Place>, Vec<(String, String)>) {
        match self.setup() {
            Some(_) => (vec![Place::home(format!("{TOOLS}/bin"))], Vec::new()),
            None => (Vec::new(), Vec::new()),
        }
    }

    /// Said in the log when a declared version is not the one that runs.
    pub fn note(&self) -> Option<String> {
        let declared = self.declared.as_ref()?;
        matches!(self.package_manager, PackageManager::Npm)
            .then(|| format!("packageManager asks for {declared}: using the builder's own"))
    }

    /// What is worth keeping between builds: the installed packages in the app, and the
    /// package manager's download cache in HOME.
    pub fn caches(&self) -> Vec<Place> {
        let installed = if self.pnp {
            Place::app(".yarn/cache")
        } else {
            Place::app("node_modules")
        };
        // pnpm's store: `$XDG_DATA_HOME/pnpm/store`, that is `~/.local/share/pnpm/store`
        // when only HOME is set, as in a build.
        let downloads = match self.package_manager {
            PackageManager::Npm => ".npm",
            PackageManager::Pnpm => ".local/share/pnpm/store",
            PackageManager::Yarn => ".cache/yarn",
            PackageManager::YarnBerry => ".yarn/berry/cache",
            PackageManager::Bun => ".bun/install/cache",
        };
        let mut caches = vec![installed, Place::home(downloads)];
        if self.setup().is_some() {
            // The package manager itself, as the setup installed it.
            caches.push(Place::home(TOOLS));
        }
        caches
    }
}

/// Whether `.yarnrc.yml` sets `nodeLinker` to `node-modules` or `pnpm` (Yarn's default is PnP).
fn yarnrc_links_node_modules(root: &Path) -> bool {
    let Ok(Some(raw)) = crate::source::read_config_file(root, ".yarnrc.yml") else {
        return false;
    };
    raw.lines().any(|line| {
        line.trim()
            .strip_prefix("nodeLinker:")
            .map(|v| v.trim().trim_matches(['"', '\'']))
            .is_some_and(|v| v == "node-modules" || v == "pnpm")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_package_manager_field() {
        let cases: [(&str, Option<(PackageManager, &str)>); 14] = [
            ("pnpm@9.12.0", Some((PackageManager::Pnpm, "9.12.0"))),
            (
                "pnpm@9.12.0+sha512.4abf725084d7bcbafbd728bfc7bee61f2f791f977fd87542b3579dcb23504d170d46337945e4c66485cd12d588a0c0e570ed9c477e7ccdd8507cf05f3f92eaca",
                Some((PackageManager::Pnpm, "9.12.0")),
            ),
            ("yarn@1.22.22", Some((PackageManager::Yarn, "1.22.22"))),
            ("yarn@4.5.1", Some((PackageManager::YarnBerry, "4.5.1"))),
            ("yarn@2.4.3", Some((PackageManager::YarnBerry, "2.4.3"))),
            ("npm@10.9.0", Some((PackageManager::Npm, "10.9.0"))),
            ("bun@1.1.30", Some((PackageManager::Bun, "1.1.30"))),
            (
                "pnpm@10.0.0-rc.1",
                Some((PackageManager::Pnpm, "10.0.0-rc.1")),
            ),
            ("pnpm", None),
            ("pnpm@9", None),
            ("pnpm@^9.0.0", None),
            ("deno@2.0.0", None),
            ("pnpm@9.12.0+", None),
            ("yarn@https://example.com/yarn.js", None),
        ];
        for (raw, want) in cases {
            let got = PackageManagerField::parse(raw).map(|f| (f.manager, f.version));
            assert_eq!(got, want.map(|(m, v)| (m, v.to_owned())), "{raw}");
        }
    }
}
