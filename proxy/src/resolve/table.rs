//! What the proxy remembers from storage: production aliases and custom domains for a short time,
//! manifests (which never change) until the cache is full, their project is deleted, or storage
//! no longer has them when asked again (`ProxyConfig::manifest_recheck`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::http::HeaderValue;
use scalemesh_core::layout::{self, DomainRoute, Manifest, Route};
use scalemesh_core::storage::{Storage, StorageError};
use scalemesh_core::sync::lock;
use scalemesh_core::{DeploymentId, ProjectName};

use crate::flights::Flights;

/// An answer read from storage, and when: the last time storage said so.
#[derive(Debug, Clone)]
pub struct Read<T> {
    pub value: T,
    pub at: Instant,
}

/// Who named what is looked up: storage itself (an alias or a domain's record just read), or
/// only a request's host, which anyone can make up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamedBy {
    Storage,
    Host,
}

/// Most production aliases remembered at once.
const MAX_ALIASES: usize = 10_000;

pub struct SiteTable {
    ttl: Duration,
    recheck: Duration,
    capacity: usize,
    /// Production's (label `None`) and the preview labels' of each project.
    aliases: Fresh<(ProjectName, Option<Box<str>>), DeploymentId>,
    domains: Fresh<String, ProjectName>,
    /// Whether storage has a manifest of a deployment of a project, as it last said (the
    /// manifests themselves are in `manifests`, as many as fit).
    deployments: Fresh<(ProjectName, DeploymentId), ()>,
    unknown: Budget,
    /// Reads refused for want of `unknown`, and a bound on how often that is logged.
    refused: AtomicU64,
    warned: Budget,
    flights: Flights,
    /// By deployment id (unique across projects), with when storage last said the manifest
    /// exists; the project is checked on every hit.
    manifests: Mutex<HashMap<DeploymentId, (Instant, Arc<Site>)>>,
    /// Bumped whenever something is forgotten, so answers remembered elsewhere from this table
    /// (`super::memo`, each thread's memo of hosts) know they are stale.
    generation: AtomicU64,
}

/// Which answers to forget: all, or only those that said something does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answers {
    All,
    Missing,
}

/// Answers read from storage, trusted for a while, at most `MAX_ALIASES` of them. Answers that
/// something does not exist go first when room is needed, all of them: hostile hosts make only
/// those, and must not push out the sites that exist, fresh or not.
struct Fresh<K, V> {
    entries: Mutex<HashMap<K, (Instant, Option<V>)>>,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Fresh<K, V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The answer and when it was read from storage, while it is fresh.
    fn get(&self, key: &K, ttl: Duration) -> Option<Read<Option<V>>> {
        lock(&self.entries)
            .get(key)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(at, value)| Read {
                value: value.clone(),
                at: *at,
            })
    }

    /// Whether storage said, the last time it was asked, that `key` exists.
    fn existed(&self, key: &K) -> bool {
        lock(&self.entries)
            .get(key)
            .is_some_and(|(_, value)| value.is_some())
    }

    fn put(&self, key: K, value: Option<V>, ttl: Duration) -> Instant {
        let mut entries = lock(&self.entries);
        if entries.len() >= MAX_ALIASES {
            entries.retain(|_, (_, value)| value.is_some());
            if entries.len() >= MAX_ALIASES {
                entries.retain(|_, (at, _)| at.elapsed() < ttl);
            }
            if entries.len() >= MAX_ALIASES {
                entries.clear();
            }
        }
        let now = Instant::now();
        entries.insert(key, (now, value));
        now
    }

    fn forget(&self, key: &K) {
        lock(&self.entries).remove(key);
    }

    /// Forgets the answers of `which` kind for the keys `f` picks.
    fn forget_where(&self, which: Answers, mut f: impl FnMut(&K) -> bool) {
        let missing_only = which == Answers::Missing;
        lock(&self.entries).retain(|key, (_, value)| (missing_only && value.is_some()) || !f(key));
    }
}

/// Storage reads for names the proxy does not know to exist: any label under the base domain,
/// any host name and any deployment id reach storage, so without a bound a flood of made-up
/// hosts is a flood of reads (each one billed on S3, and enough of them throttle the bucket
/// for every site). Names storage said exist are read again freely.
struct Budget {
    /// Reads a second; 0: no bound.
    rate: f64,
    /// Reads at once.
    most: f64,
    left: Mutex<(f64, Instant)>,
}

impl Budget {
    fn new(per_second: u32) -> Self {
        Self::with(f64::from(per_second), f64::from(per_second))
    }

    /// One at a time, one per `interval`.
    fn every(interval: Duration) -> Self {
        Self::with(1.0 / interval.as_secs_f64().max(1e-3), 1.0)
    }

    fn with(rate: f64, most: f64) -> Self {
        Self {
            rate,
            most,
            left: Mutex::new((most, Instant::now())),
        }
    }

    /// Takes one read, if there is one left.
    fn take(&self) -> bool {
        self.take_at(Instant::now())
    }

    /// [`Budget::take`] at the time `now` (never earlier than the last take).
    fn take_at(&self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let mut left = lock(&self.left);
        let now = now.max(left.1);
        let tokens = (left.0 + now.duration_since(left.1).as_secs_f64() * self.rate).min(self.most);
        let took = tokens >= 1.0;
        *left = (if took { tokens - 1.0 } else { tokens }, now);
        took
    }
}

/// Why the proxy cannot say which site a host is.
#[derive(Debug)]
pub enum ResolveError {
    Storage(StorageError),
    /// Too many names unknown to the proxy were asked for just now (`Budget`).
    Busy,
}

impl From<StorageError> for ResolveError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

/// How long answers are trusted, how many manifests are kept, and the budget for names not
/// known to exist (`ProxyConfig` says what each is for).
#[derive(Debug, Clone, Copy)]
pub struct TableSettings {
    pub ttl: Duration,
    pub recheck: Duration,
    pub manifests: usize,
    pub unknown_lookups: u32,
}

impl SiteTable {
    pub fn new(settings: TableSettings) -> Self {
        let TableSettings {
            ttl,
            recheck,
            manifests: capacity,
            unknown_lookups: lookups,
        } = settings;
        Self {
            ttl,
            recheck,
            capacity: capacity.max(1),
            aliases: Fresh::new(),
            domains: Fresh::new(),
            deployments: Fresh::new(),
            unknown: Budget::new(lookups),
            refused: AtomicU64::new(0),
            warned: Budget::every(Duration::from_secs(10)),
            flights: Flights::default(),
            manifests: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn recheck(&self) -> Duration {
        self.recheck
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn forgot(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn invalidate(&self, project: &ProjectName) {
        self.aliases
            .forget_where(Answers::All, |(of, _)| of == project);
        // A deployment of it may have just become ready.
        self.deployments
            .forget_where(Answers::Missing, |(of, _)| of == project);
        self.forgot();
    }

    /// Storage reads refused so far because too many unknown names were asked for at once.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes a read of storage for a name not known to exist, or says why not.
    fn unknown_read(&self) -> Result<(), ResolveError> {
        if self.unknown.take() {
            return Ok(());
        }
        self.refused.fetch_add(1, Ordering::Relaxed);
        if self.warned.take() {
            tracing::warn!(
                "too many hosts unknown to this proxy asked for at once; answering 503 to those \
                 beyond the bound (--unknown-lookups)"
            );
        }
        Err(ResolveError::Busy)
    }

    pub fn forget_manifests(&self, project: &ProjectName) {
        lock(&self.manifests).retain(|_, (_, site)| site.manifest.project != *project);
        self.deployments
            .forget_where(Answers::All, |(of, _)| of == project);
        self.forgot();
    }

    pub fn invalidate_domain(&self, host: &str) {
        self.domains.forget(&host.to_owned());
        self.forgot();
    }

    /// Forgets `deployment`'s manifest, and that it exists: it was taken back from storage.
    pub fn forget_deployment(&self, project: &ProjectName, deployment: &DeploymentId) {
        lock(&self.manifests).remove(deployment);
        self.deployments
            .forget(&(project.clone(), deployment.clone()));
        self.forgot();
    }

    /// The project a custom domain serves, `None` when it is no domain of any, and when that
    /// was read from storage.
    pub async fn domain(
        &self,
        storage: &dyn Storage,
        host: &str,
    ) -> Result<Read<Option<ProjectName>>, ResolveError> {
        let host = host.to_owned();
        if let Some(found) = self.domains.get(&host, self.ttl) {
            return Ok(found);
        }
        let key = layout::domain(&host);
        let _flight = self.flights.join(&key).await;
        if let Some(found) = self.domains.get(&host, self.ttl) {
            return Ok(found);
        }
        if !self.domains.existed(&host) {
            self.unknown_read()?;
        }
        let project = match storage.get_bytes(&key).await {
            Ok(bytes) => {
                let route: DomainRoute = serde_json::from_slice(&bytes).map_err(|e| {
                    StorageError::Backend(format!("domain {host} is unreadable: {e}"))
                })?;
                (route.host == host).then_some(route.project)
            }
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let at = self.domains.put(host, project.clone(), self.ttl);
        Ok(Read { value: project, at })
    }

    /// The deployment `project`'s production alias points to, `None` when it has none, and
    /// when that was read from storage. A project named by storage (a custom domain's record)
    /// costs nothing of the budget for unknown names.
    pub async fn production(
        &self,
        storage: &dyn Storage,
        project: &ProjectName,
        named_by: NamedBy,
    ) -> Result<Read<Option<DeploymentId>>, ResolveError> {
        self.alias(storage, project, None, named_by).await
    }

    /// The deployment a branch's or pull request's preview host (`label`) serves, as
    /// [`SiteTable::production`] reads production's.
    pub async fn label(
        &self,
        storage: &dyn Storage,
        project: &ProjectName,
        label: &str,
    ) -> Result<Read<Option<DeploymentId>>, ResolveError> {
        self.alias(storage, project, Some(label), NamedBy::Host)
            .await
    }

    /// Production's alias (`label` `None`) or a preview label's.
    async fn alias(
        &self,
        storage: &dyn Storage,
        project: &ProjectName,
        label: Option<&str>,
        named_by: NamedBy,
    ) -> Result<Read<Option<DeploymentId>>, ResolveError> {
        let key = (project.clone(), label.map(Box::from));
        if let Some(found) = self.aliases.get(&key, self.ttl) {
            return Ok(found);
        }
        let object = match label {
            None => layout::route(project),
            Some(label) => layout::label_route(project, label),
        };
        let _flight = self.flights.join(&object).await;
        if let Some(found) = self.aliases.get(&key, self.ttl) {
            return Ok(found);
        }
        if named_by == NamedBy::Host && !self.aliases.existed(&key) {
            self.unknown_read()?;
        }
        let deployment = match storage.get_bytes(&object).await {
            Ok(bytes) => {
                let route: Route = serde_json::from_slice(&bytes)
                    .map_err(|e| StorageError::Backend(format!("{object} is unreadable: {e}")))?;
                (route.project == *project).then_some(route.deployment)
            }
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let at = self.aliases.put(key, deployment.clone(), self.ttl);
        Ok(Read {
            value: deployment,
            at,
        })
    }

    /// The manifest of a finished deployment of `project`, `None` when there is none: unknown,
    /// still uploading, deleted, or a deployment of another project; and when storage last said
    /// it exists.
    /// A deployment named by storage (an alias just read) is known to exist; one named by the
    /// host alone (a preview) costs a read of the budget for unknown names.
    pub async fn manifest(
        &self,
        storage: &dyn Storage,
        project: &ProjectName,
        deployment: &DeploymentId,
        named_by: NamedBy,
    ) -> Result<Option<Read<Arc<Site>>>, ResolveError> {
        let cached = |table: &Self| {
            lock(&table.manifests)
                .get(deployment)
                .filter(|(_, site)| site.manifest.project == *project)
                .map(|(checked, site)| Read {
                    value: site.clone(),
                    at: *checked,
                })
        };
        let is_fresh = |found: &Read<Arc<Site>>| found.at.elapsed() < self.recheck;
        if let Some(found) = cached(self).filter(is_fresh) {
            return Ok(Some(found));
        }
        let key = layout::manifest(project, deployment);
        let _flight = self.flights.join(&key).await;
        match cached(self) {
            Some(found) if is_fresh(&found) => return Ok(Some(found)),
            Some(Read { value: site, .. }) => {
                return Ok(self.recheck_manifest(storage, &key, deployment, site).await);
            }
            None => {}
        }
        let named = (project.clone(), deployment.clone());
        if let Some(Read { value: None, .. }) = self.deployments.get(&named, self.ttl) {
            return Ok(None);
        }
        if named_by == NamedBy::Host && !self.deployments.existed(&named) {
            self.unknown_read()?;
        }
        // Something forgotten while this read runs (a manifest taken back) may be what it
        // reads: then it answers this request but is not kept.
        let generation = self.generation();
        let manifest: Manifest = match storage.get_bytes(&key).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                StorageError::Backend(format!("manifest of {deployment} is unreadable: {e}"))
            })?,
            Err(e) if e.is_not_found() => {
                self.deployments.put(named, None, self.ttl);
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        if manifest.project != *project || manifest.deployment != *deployment {
            self.deployments.put(named, None, self.ttl);
            return Ok(None);
        }
        let site = Arc::new(Site::new(manifest));
        let now = Instant::now();
        if self.generation() != generation {
            return Ok(Some(Read {
                value: site,
                at: now,
            }));
        }
        self.deployments.put(named, Some(()), self.ttl);
        let mut cache = lock(&self.manifests);
        if cache.len() >= self.capacity {
            // Manifests are cheap to read again; dropping an arbitrary one keeps the bound.
            if let Some(victim) = cache.keys().next().cloned() {
                cache.remove(&victim);
                self.forgot();
            }
        }
        cache.insert(deployment.clone(), (now, site.clone()));
        Ok(Some(Read {
            value: site,
            at: now,
        }))
    }

    /// A manifest kept past its recheck: still there? One byte says so without reading the
    /// whole manifest again. Gone, it is forgotten; storage failing is no reason to stop
    /// serving what is in memory (it is asked again after another interval).
    async fn recheck_manifest(
        &self,
        storage: &dyn Storage,
        key: &str,
        deployment: &DeploymentId,
        site: Arc<Site>,
    ) -> Option<Read<Arc<Site>>> {
        match storage.get_range(key, 0, 1).await {
            Err(e) if e.is_not_found() => {
                if lock(&self.manifests).remove(deployment).is_some() {
                    self.forgot();
                }
                None
            }
            checked => {
                if let Err(e) = checked {
                    tracing::warn!(error = %e, %deployment, "checking a manifest failed");
                }
                let now = Instant::now();
                if let Some(entry) = lock(&self.manifests).get_mut(deployment) {
                    entry.0 = now;
                }
                Some(Read {
                    value: site,
                    at: now,
                })
            }
        }
    }
}

/// A deployment as the proxy serves it: its manifest, and what every response of it shares.
pub struct Site {
    /// Unique in the process among sites ever loaded: what is kept per site outside it (each
    /// thread's copies of responses) is never found for another, nor for a reload of this one.
    pub id: u64,
    pub manifest: Manifest,
    /// `Last-Modified`: when the deployment was made.
    pub last_modified: HeaderValue,
    pub modified: SystemTime,
}

impl Site {
    fn new(manifest: Manifest) -> Self {
        let modified = SystemTime::from(manifest.created_at);
        let last_modified = HeaderValue::from_str(&httpdate::fmt_http_date(modified))
            .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            manifest,
            last_modified,
            modified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_that_something_is_missing_go_first() {
        let fresh = Fresh::<String, u32>::new();
        let ttl = Duration::from_millis(1);
        fresh.put("real".to_owned(), Some(1), ttl);
        // No longer fresh, but storage said it exists.
        std::thread::sleep(Duration::from_millis(5));
        for i in 0..2 * MAX_ALIASES {
            fresh.put(format!("made-up-{i}"), None, ttl);
        }
        assert!(fresh.existed(&"real".to_owned()));
        assert!(lock(&fresh.entries).len() <= MAX_ALIASES);
    }

    #[test]
    fn a_budget_gives_its_rate_and_no_more() {
        // (milliseconds after the start, reads asked for then, reads given) for 5 a second.
        const TABLE: &[(u64, usize, usize)] = &[
            (0, 20, 5),     // a full budget at once, and no more
            (100, 5, 0),    // half a read back: none
            (200, 5, 1),    // one read back after 200 ms
            (200, 1, 0),    // and it is spent
            (1_000, 9, 4),  // 800 ms later, four
            (60_000, 9, 5), // never more than the budget holds
            (60_000, 1, 0),
        ];
        let start = Instant::now();
        let budget = Budget::new(5);
        *lock(&budget.left) = (5.0, start);
        for &(at, asked, given) in TABLE {
            let now = start + Duration::from_millis(at);
            let took = (0..asked).filter(|_| budget.take_at(now)).count();
            assert_eq!(took, given, "{asked} asked for at {at} ms");
        }
        // A clock read earlier than the last take gives nothing back.
        assert!(!budget.take_at(start));
        let unbounded = Budget::new(0);
        assert!((0..10_000).all(|_| unbounded.take_at(start)));
    }
}
