//! What the proxy remembers from storage: production aliases for a short time, manifests (which
//! never change) until the cache is full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use scalemesh_core::layout::{self, Manifest, Route};
use scalemesh_core::storage::{Storage, StorageError};
use scalemesh_core::{DeploymentId, ProjectName};

use crate::cache::Flights;

/// Most production aliases remembered at once.
const MAX_ALIASES: usize = 10_000;

pub struct RouteTable {
    ttl: Duration,
    capacity: usize,
    aliases: Mutex<HashMap<ProjectName, (Instant, Option<DeploymentId>)>>,
    flights: Flights,
    manifests: Mutex<HashMap<(ProjectName, DeploymentId), Arc<Manifest>>>,
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
            aliases: Mutex::new(HashMap::new()),
            flights: Flights::default(),
            manifests: Mutex::new(HashMap::new()),
        }
    }

    pub fn invalidate(&self, project: &ProjectName) {
        lock(&self.aliases).remove(project);
    }

    /// The deployment `project`'s production alias points to, `None` when it has none.
    pub async fn production(
        &self,
        storage: &dyn Storage,
        project: &ProjectName,
    ) -> Result<Option<DeploymentId>, StorageError> {
        let fresh = |table: &Self| {
            lock(&table.aliases)
                .get(project)
                .filter(|(at, _)| at.elapsed() < table.ttl)
                .map(|(_, deployment)| deployment.clone())
        };
        if let Some(deployment) = fresh(self) {
            return Ok(deployment);
        }
        let _flight = self.flights.join(&layout::route(project)).await;
        if let Some(deployment) = fresh(self) {
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
        let mut aliases = lock(&self.aliases);
        if aliases.len() >= MAX_ALIASES {
            // Hosts of projects that do not exist count too: keep the table bounded.
            aliases.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if aliases.len() >= MAX_ALIASES {
                aliases.clear();
            }
        }
        aliases.insert(project.clone(), (Instant::now(), deployment.clone()));
        Ok(deployment)
    }

    /// The manifest of a finished deployment of `project`, `None` when there is none: unknown,
    /// still uploading, or a deployment of another project.
    pub async fn manifest(
        &self,
        storage: &dyn Storage,
        project: &ProjectName,
        deployment: &DeploymentId,
    ) -> Result<Option<Arc<Manifest>>, StorageError> {
        let key = (project.clone(), deployment.clone());
        if let Some(found) = lock(&self.manifests).get(&key) {
            return Ok(Some(found.clone()));
        }
        let _flight = self
            .flights
            .join(&layout::manifest(project, deployment))
            .await;
        if let Some(found) = lock(&self.manifests).get(&key) {
            return Ok(Some(found.clone()));
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
        let manifest = Arc::new(manifest);
        let mut cache = lock(&self.manifests);
        if cache.len() >= self.capacity {
            // Manifests are cheap to read again; dropping an arbitrary one keeps the bound.
            if let Some(victim) = cache.keys().next().cloned() {
                cache.remove(&victim);
            }
        }
        cache.insert(key, manifest.clone());
        Ok(Some(manifest))
    }
}
