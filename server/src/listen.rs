//! The API's router on a listener: served by `scalemesh_net` like every listener, each request
//! told which address its connection comes from (axum's `ConnectInfo<SocketAddr>`, which the
//! sign-in throttle reads).

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::service::TowerToHyperService;
use scalemesh_net::Limits;
use tokio::net::{TcpListener, TcpStream};

/// Serves `router` on `listener` until `shutdown` completes.
pub async fn serve_router(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let service = TowerToHyperService::new(router);
    let tag = move |stream: &TcpStream| WithPeer {
        inner: service.clone(),
        peer: stream.peer_addr().ok(),
    };
    scalemesh_net::serve_connections(listener, tag, limits, shutdown).await
}

/// A router's service that tells each request which address its connection comes from.
#[derive(Clone)]
struct WithPeer<S> {
    inner: S,
    peer: Option<SocketAddr>,
}

impl<S> Service<Request<Incoming>> for WithPeer<S>
where
    S: Service<Request<Incoming>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        if let Some(peer) = self.peer {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
        }
        self.inner.call(req)
    }
}
