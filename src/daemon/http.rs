//! Serving an HTTP router with limits, for the IMPS and status listeners: at
//! most so many connections at once and from one address (more are closed as
//! soon as they are accepted), a deadline for each request's head (a client
//! that sends it byte by byte is cut off), and a deadline for idle keep-alive
//! connections. The body's deadline and size are the handler's, which knows
//! the declared length before reading.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

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

/// Open connections, in total and per address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted connection; gives its place back when dropped.
struct Slot {
    open: Arc<Mutex<Open>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut o = self.open.lock().unwrap_or_else(|p| p.into_inner());
        o.total = o.total.saturating_sub(1);
        if let Some(n) = o.by_address.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                o.by_address.remove(&self.ip);
            }
        }
    }
}

fn admit(open: &Arc<Mutex<Open>>, ip: IpAddr, limits: &HttpLimits) -> Option<Slot> {
    let mut o = open.lock().unwrap_or_else(|p| p.into_inner());
    let from_ip = o.by_address.get(&ip).copied().unwrap_or(0);
    if o.total >= limits.max_connections || from_ip >= limits.max_per_address {
        return None;
    }
    o.total += 1;
    *o.by_address.entry(ip).or_default() += 1;
    Some(Slot {
        open: Arc::clone(open),
        ip,
    })
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
    let open = Arc::new(Mutex::new(Open::default()));
    // Refusals are logged at most once a minute per listener, so a flood does
    // not become a flood of log lines.
    let mut last_warned: Option<tokio::time::Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, most likely: wait a little rather
                    // than spin.
                    tracing::warn!("{name}: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => return,
        };
        let Some(slot) = admit(&open, peer.ip(), &limits) else {
            let now = tokio::time::Instant::now();
            if last_warned.is_none_or(|t| now.duration_since(t) > Duration::from_secs(60)) {
                last_warned = Some(now);
                tracing::warn!(
                    "{name}: connection from {peer} refused: {} connections at once, {} per address",
                    limits.max_connections,
                    limits.max_per_address
                );
            }
            drop(stream);
            continue;
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_admitted_up_to_the_limits_and_give_their_place_back() {
        let limits = HttpLimits {
            max_connections: 3,
            max_per_address: 2,
            header_timeout: Duration::from_secs(1),
        };
        let open = Arc::new(Mutex::new(Open::default()));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = admit(&open, a, &limits).expect("first from a");
        let _a2 = admit(&open, a, &limits).expect("second from a");
        assert!(admit(&open, a, &limits).is_none(), "third from a");
        let _b1 = admit(&open, b, &limits).expect("first from b");
        assert!(admit(&open, b, &limits).is_none(), "total reached");
        drop(a1);
        let _b2 = admit(&open, b, &limits).expect("a place came back");
        assert_eq!(open.lock().unwrap().total, 3);
        drop(_b2);
        let o = open.lock().unwrap();
        assert_eq!((o.total, o.by_address.len()), (2, 2));
    }
}
