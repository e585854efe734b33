//! Host → site: which deployment a request's host serves, with its manifest, in one call
//! ([`Resolver::site`]). Each serving thread remembers its answers for itself, so a request
//! for a site the thread served a moment ago reads no shared table, takes no lock and parses no
//! host; behind that memo is the table every thread shares (`table`: aliases, custom domains
//! and manifests read from storage), and behind that, storage.

mod table;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use scalemesh_core::hosts::{SiteHost, SiteHosts};
use scalemesh_core::storage::Storage;

use table::{NamedBy, Read};
pub use table::{ResolveError, Site, SiteTable, TableSettings};

/// Host → site for one proxy.
pub struct Resolver {
    /// Unique in the process: what is remembered per thread is remembered per proxy.
    id: u64,
    hosts: SiteHosts,
    table: SiteTable,
}

/// Whether a host names production (its project's name or a custom domain) or one deployment
/// (a preview).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Production,
    Preview,
}

/// What a host serves: the site, held by this thread, and how it was named.
pub struct Found {
    pub site: Arc<Held>,
    pub served: Served,
}

impl Resolver {
    /// Sites at `<project>.<base_domain>`, previews at their deployment's host, and custom
    /// domains, read through `table`.
    pub fn new(base_domain: &str, table: SiteTable) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Self {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            hosts: SiteHosts::new(base_domain, "http", None),
            table,
        }
    }

    /// The shared table, for what the server tells the proxy to forget.
    pub fn table(&self) -> &SiteTable {
        &self.table
    }

    /// What `host` (as the request spelled it) serves at `now`; `None` when it is no site's.
    pub async fn site(
        &self,
        storage: &dyn Storage,
        host: &str,
        now: Instant,
    ) -> Result<Option<Found>, ResolveError> {
        site(self, storage, host, now).await
    }
}

/// Hosts remembered per thread; all are forgotten when there would be more.
const MAX_HOSTS: usize = 1024;

/// Longer hosts are looked up every time rather than remembered: no real host is that long
/// (253 bytes, a port and a dot), and hostile ones must not fill the memo's memory.
const MAX_HOST_LEN: usize = 264;

/// What one thread remembers: only answers of one proxy (a process may run several) and of
/// its route table's current generation, so a site forgotten there (a deleted project, an
/// evicted manifest) is not kept alive here.
#[derive(Default)]
struct Memo {
    proxy: u64,
    generation: u64,
    hosts: HashMap<Box<str>, Remembered>,
}

struct Remembered {
    site: Arc<Held>,
    served: Served,
    /// When the alias (or domain) it was found through is no longer fresh, or the manifest
    /// is due to be checked again.
    until: Instant,
}

/// This thread's own hold on a shared site: requests clone it without touching a reference
/// count that other threads touch too.
pub struct Held(Arc<Site>);

impl std::ops::Deref for Held {
    type Target = Site;

    fn deref(&self) -> &Site {
        &self.0
    }
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// [`Resolver::site`].
async fn site(
    resolver: &Resolver,
    storage: &dyn Storage,
    host: &str,
    now: Instant,
) -> Result<Option<Found>, ResolveError> {
    let table = &resolver.table;
    let id = resolver.id;
    // Read before the tables are: anything forgotten from here on makes the memo stale.
    let generation = table.generation();
    let remembered = MEMO.with_borrow_mut(|memo| {
        if (memo.proxy, memo.generation) != (id, generation) {
            memo.hosts.clear();
            (memo.proxy, memo.generation) = (id, generation);
        }
        memo.hosts
            .get(host)
            .filter(|remembered| now < remembered.until)
            .map(|remembered| Found {
                site: remembered.site.clone(),
                served: remembered.served,
            })
    });
    if remembered.is_some() {
        return Ok(remembered);
    }
    let Some((site, served, until)) = find(resolver, storage, host).await? else {
        return Ok(None);
    };
    let site = Arc::new(Held(site));
    let remembered = Remembered {
        site: site.clone(),
        served,
        until,
    };
    MEMO.with_borrow_mut(|memo| {
        if (memo.proxy, memo.generation) != (id, generation) || host.len() > MAX_HOST_LEN {
            return;
        }
        if memo.hosts.len() >= MAX_HOSTS {
            memo.hosts.clear();
        }
        memo.hosts.insert(host.into(), remembered);
    });
    Ok(Some(Found { site, served }))
}

fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(365 * 24 * 3600))
        .unwrap_or(now)
}

/// The site from the shared tables, and until when that answer holds: while the alias or
/// domain it came through is fresh and the manifest needs no new check.
async fn find(
    resolver: &Resolver,
    storage: &dyn Storage,
    host: &str,
) -> Result<Option<(Arc<Site>, Served, Instant)>, ResolveError> {
    let table = &resolver.table;
    let Some(site_host) = resolver.hosts.parse(host) else {
        return Ok(None);
    };
    let (project, deployment, fresh_from, served) = match site_host {
        SiteHost::Project(project) => {
            let alias = table.production(storage, &project, NamedBy::Host).await?;
            let Some(deployment) = alias.value else {
                return Ok(None);
            };
            (project, deployment, Some(alias.at), Served::Production)
        }
        SiteHost::Domain(domain) => {
            let record = table.domain(storage, &domain).await?;
            let Some(project) = record.value else {
                return Ok(None);
            };
            // The domain's record names the project: reading its alias is no guess.
            let alias = table
                .production(storage, &project, NamedBy::Storage)
                .await?;
            let Some(deployment) = alias.value else {
                return Ok(None);
            };
            let fresh_from = alias.at.min(record.at);
            (project, deployment, Some(fresh_from), Served::Production)
        }
        SiteHost::Label { project, label } => {
            let alias = table.label(storage, &project, &label).await?;
            let Some(deployment) = alias.value else {
                return Ok(None);
            };
            (project, deployment, Some(alias.at), Served::Preview)
        }
        // A preview names its deployment: no alias to go stale.
        SiteHost::Deployment {
            project,
            deployment,
        } => (project, deployment, None, Served::Preview),
    };
    // A deployment an alias named is known to exist; one the host alone named is a guess.
    let named_by = match fresh_from {
        Some(_) => NamedBy::Storage,
        None => NamedBy::Host,
    };
    let Some(Read {
        value: site,
        at: checked,
    }) = table
        .manifest(storage, &project, &deployment, named_by)
        .await?
    else {
        return Ok(None);
    };
    // However long the intervals, an instant that cannot be represented means never.
    let later = |at: Instant, by| at.checked_add(by).unwrap_or_else(far_future);
    let until = later(checked, table.recheck());
    let until = fresh_from.map_or(until, |at| until.min(later(at, table.ttl())));
    Ok(Some((site, served, until)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use scalemesh_builder::upload::{self, UploadLimits};
    use scalemesh_core::layout::{self, Route};
    use scalemesh_core::rules::Routing;
    use scalemesh_core::storage::{Body, FsStorage, ObjectMeta, Storage};
    use scalemesh_core::{DeploymentId, ProjectName};

    use super::{MAX_HOST_LEN, MEMO};
    use crate::{Proxy, ProxyConfig};

    /// Hosts too long to be real are answered but not remembered: hostile ones cannot fill
    /// a thread's memory.
    #[tokio::test]
    async fn hosts_too_long_to_be_real_are_answered_but_not_remembered() {
        let d = tempfile::tempdir().expect("tempdir");
        let storage: Arc<dyn Storage> = Arc::new(FsStorage::new(d.path().join("storage")));
        let project = ProjectName::parse("site").expect("name");
        let folder = d.path().join("src");
        std::fs::create_dir_all(&folder).expect("mkdir");
        std::fs::write(folder.join("index.html"), "x").expect("write");
        let id = DeploymentId::generate();
        let (mut files, _) = upload::collect(&folder, UploadLimits::default()).expect("collect");
        let routing = upload::take_routing(&mut files, Routing::default()).expect("rules");
        upload::upload(storage.clone(), &project, &id, files, routing, |_, _| {})
            .await
            .expect("upload");
        upload::publish(storage.as_ref(), &project, &id)
            .await
            .expect("publish");
        let route = Route {
            project: project.clone(),
            deployment: id,
            updated_at: time::OffsetDateTime::now_utc(),
        };
        let route = serde_json::to_vec(&route).expect("json");
        storage
            .put(
                &layout::route(&project),
                Body::Bytes(route.into()),
                &ObjectMeta::default(),
            )
            .await
            .expect("put");
        let proxy = Proxy::new(storage, &ProxyConfig::default());
        let held = || MEMO.with_borrow(|memo| memo.hosts.len());

        let ok = |host: &str| {
            let host = host.to_owned();
            let proxy = proxy.clone();
            async move {
                let inner = &proxy.inner;
                super::site(
                    &inner.resolver,
                    inner.storage.as_ref(),
                    &host,
                    Instant::now(),
                )
                .await
                .expect("read")
            }
        };
        assert!(ok("site.localhost").await.is_some());
        assert_eq!(held(), 1);
        // (the host's length, whether it is remembered)
        let longest = format!("site.localhost:{}", "0".repeat(MAX_HOST_LEN - 15));
        assert_eq!(longest.len(), MAX_HOST_LEN);
        assert!(ok(&longest).await.is_some());
        assert_eq!(held(), 2, "a host of {MAX_HOST_LEN} bytes is remembered");
        for i in 0..300 {
            let host = format!("site.localhost:{i}{}", "0".repeat(200_000));
            assert!(ok(&host).await.is_some(), "host {i} is answered");
        }
        let long = format!("site.localhost:{}", "0".repeat(MAX_HOST_LEN - 14));
        assert!(ok(&long).await.is_some());
        assert_eq!(held(), 2, "no longer host is remembered");
    }
}
