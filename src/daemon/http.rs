//! Serving an HTTP router with limits, for the IMPS and status listeners: at
//! most so many connections at once and from one address (more are closed as
//! soon as they are accepted), a deadline for each request's head (a client
//! that sends it byte by byte is cut off), and a deadline for idle keep-alive
//! connections. The body's deadline and size are the handler's, which knows
//! the declared length before reading.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::caps::{CappedListener, ConnectionCaps};

/// What one listener allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one address.
    pub max_per_address: usize,
    /// Time to send a request's head, and to start the next one on a
    /// kept-alive connection.
    pub header_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown`, within `limits`. `name` is for
/// the log. The router sees the peer as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    name: &'static str,
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let caps = ConnectionCaps::new(limits.max_connections, limits.max_per_address);
    let mut listener = CappedListener::new(name, listener, caps);
    while let Some((stream, peer, slot)) = listener.accept(&shutdown).await {
        let service = TowerToHyperService::new(app.clone().layer(axum::Extension(
            axum::extract::ConnectInfo::<SocketAddr>(peer),
        )));
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!("{name}: connection from {peer}: {e}");
                    }
                }
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}
