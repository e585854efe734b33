//! What the proxy remembers from storage: production aliases and custom domains for a short time,
//! manifests (which never change) until the cache is full or their project is deleted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::http::HeaderValue;
use scalemesh_core::layout::{self, DomainRoute, Manifest, Route};
use scalemesh_core::storage::{Storage, StorageError};
use scalemesh_core::{DeploymentId, ProjectName};

use crate::cache::Flights;

/// Most production aliases remembered at once.
const MAX_ALIASES: usize = 10_000;

pub struct RouteTable {
    ttl: Duration,
    capacity: usize,
    aliases: Fresh<ProjectName, DeploymentId>,
    domains: Fresh<String, ProjectName>,
    flights: Flights,
    /// By deployment id (unique across projects); the project is checked on every hit.
    manifests: Mutex<HashMap<DeploymentId, Arc<Site>>>,
}

/// Answers read from storage, trusted for a while, at most `MAX_ALIASES` of them (hosts of
/// sites that do not exist count too).
struct Fresh<K, V> {
    entries: Mutex<HashMap<K, (Instant, Option<V>)>>,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Fresh<K, V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K, ttl: Duration) -> Option<Option<V>> {
        lock(&self.entries)
            .get(key)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, value)| value.clone())
    }

    fn put(&self, key: K, value: Option<V>, ttl: Duration) {
        let mut entries = lock(&self.entries);
        if entries.len() >= MAX_ALIASES {
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= MAX_ALIASES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    fn forget(&self, key: &K) {
        lock(&self.entries).remove(key);
    }
}

/// The caches hold plain data; a panic elsewhere while one was locked leaves nothing half-done.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RouteTable {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            aliases: Fresh::new(),
            domains: Fresh::new(),
            flights: Flights::default(),
            manifests: Mutex::new(HashMap::new()),
        }
    }

    pub fn invalidate(&self, project: &ProjectName) {
        self.aliases.forget(project);
    }

    pub fn forget_manifests(&self, project: &ProjectName) {
        lock(&self.manifests).retain(|_, site| site.manifest.project != *project);
    }

    pub fn invalidate_domain(&self, host: &str) {
        self.domains.forget(&host.to_owned());
    }

    /// The project a custom domain serves, `None` when it is no domain of any.
    pub async fn domain(
        &self,
        storage: &dyn Storage,
        host: &str,
    ) -> Result<Option<ProjectName>, StorageError> {
        let host = host.to_owned();
        if let Some(project) = self.domains.get(&host, self.ttl) {
            return Ok(project);
        }
        let key = layout::domain(&host);
        let _flight = self.flights.join(&key).await;
        if let Some(project) = self.domains.get(&host, self.ttl) {
            return Ok(project);
        }
        let project = match storage.get_bytes(&key).await {
            Ok(bytes) => {
                let route: DomainRoute = serde_json::from_slice(&bytes).map_err(|e| {
                    StorageError::Backend(format!("domain {host} is unreadable: {e}"))
                })?;
                (route.host == host).then_some(route.project)
            }
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        self.domains.put(host, project.clone(), self.ttl);
        Ok(project)
    }

    /// The deployment `project`'s production alias points to, `None` when it has none.
    pub async fn production(
        &self,
        storage: &dyn Storage,
        project: &ProjectName,
    ) -> Result<Option<DeploymentId>, StorageError> {
        if let Some(deployment) = self.aliases.get(project, self.ttl) {
            return Ok(deployment);
        }
        let _flight = self.flights.join(&layout::route(project)).await;
        if let Some(deployment) = self.aliases.get(project, self.ttl) {
            return Ok(deployment);
        }
        let deployment = match storage.get_bytes(&layout::route(project)).await {
            Ok(bytes) => {
                let route: Route = serde_json::from_slice(&bytes).map_err(|e| {
                    StorageError::Backend(format!("route of {project} is unreadable: {e}"))
                })?;
                (route.project == *project).then_some(route.deployment)
            }
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        self.aliases
            .put(project.clone(), deployment.clone(), self.ttl);
        Ok(deployment)
    }

    /// The manifest of a finished deployment of `project`, `None` when there is none: unknown,
    /// still uploading, or a deployment of another project.
    pub async fn manifest(
        &self,
        storage: &dyn Storage,
        project: &ProjectName,
        deployment: &DeploymentId,
    ) -> Result<Option<Arc<Site>>, StorageError> {
        let cached = |table: &Self| {
            lock(&table.manifests)
                .get(deployment)
                .map(|site| (site.manifest.project == *project).then(|| site.clone()))
        };
        if let Some(found) = cached(self) {
            return Ok(found);
        }
        let _flight = self
            .flights
            .join(&layout::manifest(project, deployment))
            .await;
        if let Some(found) = cached(self) {
            return Ok(found);
        }
        let manifest: Manifest = match storage
            .get_bytes(&layout::manifest(project, deployment))
            .await
        {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                StorageError::Backend(format!("manifest of {deployment} is unreadable: {e}"))
            })?,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        if manifest.project != *project || manifest.deployment != *deployment {
            return Ok(None);
        }
        let site = Arc::new(Site::new(manifest));
        let mut cache = lock(&self.manifests);
        if cache.len() >= self.capacity {
            // Manifests are cheap to read again; dropping an arbitrary one keeps the bound.
            if let Some(victim) = cache.keys().next().cloned() {
                cache.remove(&victim);
            }
        }
        cache.insert(deployment.clone(), site.clone());
        Ok(Some(site))
    }
}

/// A deployment as the proxy serves it: its manifest, and what every response of it shares.
pub struct Site {
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
        Self {
            manifest,
            last_modified,
            modified,
        }
    }
}
