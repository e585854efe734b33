//! One request: host → deployment → manifest → file.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scalemesh_core::hosts::SiteHost;
use scalemesh_core::layout::{self, Manifest, ManifestEntry};
use scalemesh_core::{DeploymentId, ProjectName};

use crate::path::parse_request_path;
use crate::{Proxy, pages};

pub async fn handle(State(proxy): State<Proxy>, req: Request) -> Response {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut res = (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n").into_response();
        res.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return res;
    }
    let Some(site) = host_of(&req).and_then(|h| proxy.inner.hosts.parse(h)) else {
        return page(StatusCode::NOT_FOUND, pages::NO_SITE);
    };
    let (project, deployment, preview) = match site {
        SiteHost::Project(project) => {
            match proxy
                .inner
                .routes
                .production(proxy.inner.storage.as_ref(), &project)
                .await
            {
                Ok(Some(deployment)) => (project, deployment, false),
                Ok(None) => return page(StatusCode::NOT_FOUND, pages::NO_SITE),
                Err(e) => return unavailable(&e),
            }
        }
        SiteHost::Deployment {
            project,
            deployment,
        } => (project, deployment, true),
    };
    let manifest = match proxy
        .inner
        .routes
        .manifest(proxy.inner.storage.as_ref(), &project, &deployment)
        .await
    {
        Ok(Some(m)) => m,
        Ok(None) => return page(StatusCode::NOT_FOUND, pages::NO_SITE),
        Err(e) => return unavailable(&e),
    };
    let mut res = match resolve(&manifest, req.uri().path()) {
        Some(path) => {
            serve_file(
                &proxy,
                &project,
                &deployment,
                path,
                &manifest.files[path],
                StatusCode::OK,
                req.headers(),
            )
            .await
        }
        None => match manifest.files.get_key_value("404.html") {
            Some((path, entry)) => {
                serve_file(
                    &proxy,
                    &project,
                    &deployment,
                    path,
                    entry,
                    StatusCode::NOT_FOUND,
                    req.headers(),
                )
                .await
            }
            None => page(StatusCode::NOT_FOUND, pages::NOT_FOUND),
        },
    };
    if preview {
        res.headers_mut()
            .insert("x-robots-tag", HeaderValue::from_static("noindex"));
    }
    res
}

/// `Host`, or the URI's authority when the request carried one (HTTP/2 `:authority`, absolute
/// form). Several `Host` headers are no host at all.
fn host_of(req: &Request) -> Option<&str> {
    if let Some(authority) = req.uri().authority() {
        return Some(authority.as_str());
    }
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let first = hosts.next()?;
    if hosts.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// The manifest path a request path serves: the file itself, or a folder's `index.html`.
fn resolve<'m>(manifest: &'m Manifest, raw_path: &str) -> Option<&'m str> {
    let site_path = parse_request_path(raw_path)?;
    let index = if site_path.path.is_empty() {
        "index.html".to_owned()
    } else {
        format!("{}/index.html", site_path.path)
    };
    let candidates = if site_path.is_dir {
        vec![index]
    } else {
        vec![site_path.path, index]
    };
    candidates.into_iter().find_map(|c| {
        manifest
            .files
            .get_key_value(c.as_str())
            .map(|(k, _)| k.as_str())
    })
}

async fn serve_file(
    proxy: &Proxy,
    project: &ProjectName,
    deployment: &DeploymentId,
    path: &str,
    entry: &ManifestEntry,
    status: StatusCode,
    request_headers: &HeaderMap,
) -> Response {
    let hash = entry.sha256.get(..32).unwrap_or(&entry.sha256);
    let etag = format!("\"{hash}\"");
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&entry.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=0, must-revalidate"),
    );
    security_headers(&mut headers);
    if status == StatusCode::OK && if_none_match(request_headers, &etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    let key = layout::output_file(project, deployment, path);
    let storage = proxy.inner.storage.as_ref();
    let body = if proxy.inner.bodies.holds(entry.size) {
        proxy.inner.bodies.get(storage, &key).await.map(|bytes| {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            Body::from(bytes)
        })
    } else {
        storage.get(&key).await.map(|object| {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(object.size));
            Body::from_stream(object.body)
        })
    };
    match body {
        Ok(body) => (status, headers, body).into_response(),
        // Listed but gone: the deployment is being deleted.
        Err(e) if e.is_not_found() => page(StatusCode::NOT_FOUND, pages::NOT_FOUND),
        Err(e) => unavailable(&e),
    }
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().trim_start_matches("W/"))
        .any(|v| v == etag || v == "*")
}

fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
}

fn page(status: StatusCode, html: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    security_headers(&mut headers);
    (status, headers, html).into_response()
}

fn unavailable(err: &scalemesh_core::storage::StorageError) -> Response {
    tracing::warn!(error = %err, "storage read failed");
    page(StatusCode::BAD_GATEWAY, pages::UNAVAILABLE)
}
