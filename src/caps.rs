//! Caps on connections: at most so many open at once, and from one address.
//! A listener asks [`ConnectionCaps::admit`] for each accepted connection and
//! closes it at once when refused; the [`Slot`] it gets gives its place back
//! when dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Open connections, in total and per address.
#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

/// The caps of one listener.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionCaps {
    max_total: usize,
    max_per_address: usize,
    open: Arc<Mutex<Open>>,
}

/// One admitted connection; gives its place back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
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

impl ConnectionCaps {
    /// At most `max_total` connections, `max_per_address` from one address.
    pub(crate) fn new(max_total: usize, max_per_address: usize) -> Self {
        Self {
            max_total,
            max_per_address,
            open: Arc::new(Mutex::new(Open::default())),
        }
    }

    /// A place for a connection from `ip`, or `None` when a cap is reached.
    pub(crate) fn admit(&self, ip: IpAddr) -> Option<Slot> {
        let mut o = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let from_ip = o.by_address.get(&ip).copied().unwrap_or(0);
        if o.total >= self.max_total || from_ip >= self.max_per_address {
            return None;
        }
        o.total += 1;
        *o.by_address.entry(ip).or_default() += 1;
        Some(Slot {
            open: Arc::clone(&self.open),
            ip,
        })
    }

    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let o = self.open.lock().unwrap_or_else(|p| p.into_inner());
        (o.total, o.by_address.len())
    }
}

/// A listener under [`ConnectionCaps`]: connections beyond the caps are
/// closed as soon as they are accepted, with a warning at most once a minute
/// so a flood is not a flood of log lines.
pub(crate) struct CappedListener {
    listener: tokio::net::TcpListener,
    caps: ConnectionCaps,
    name: &'static str,
    last_warned: Option<tokio::time::Instant>,
}

impl CappedListener {
    /// `listener` within `caps`; `name` is for the log.
    pub(crate) fn new(
        name: &'static str,
        listener: tokio::net::TcpListener,
        caps: ConnectionCaps,
    ) -> Self {
        Self {
            listener,
            caps,
            name,
            last_warned: None,
        }
    }

    /// The next admitted connection, with its place; `None` once `shutdown`
    /// is cancelled.
    pub(crate) async fn accept(
        &mut self,
        shutdown: &tokio_util::sync::CancellationToken,
    ) -> Option<(tokio::net::TcpStream, std::net::SocketAddr, Slot)> {
        let name = self.name;
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, most likely: wait a little
                        // rather than spin.
                        tracing::warn!("{name}: cannot accept a connection: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = shutdown.cancelled() => return None,
            };
            if let Some(slot) = self.caps.admit(peer.ip()) {
                return Some((stream, peer, slot));
            }
            let now = tokio::time::Instant::now();
            if self
                .last_warned
                .is_none_or(|t| now.duration_since(t) > std::time::Duration::from_secs(60))
            {
                self.last_warned = Some(now);
                tracing::warn!(
                    "{name}: connection from {peer} refused: {} connections at once, {} per address",
                    self.caps.max_total,
                    self.caps.max_per_address
                );
            }
            drop(stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_admitted_up_to_the_caps_and_give_their_place_back() {
        let caps = ConnectionCaps::new(3, 2);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = caps.admit(a).expect("first from a");
        let _a2 = caps.admit(a).expect("second from a");
        assert!(caps.admit(a).is_none(), "third from a");
        let _b1 = caps.admit(b).expect("first from b");
        assert!(caps.admit(b).is_none(), "total reached");
        drop(a1);
        let b2 = caps.admit(b).expect("a place came back");
        assert_eq!(caps.counts(), (3, 2));
        drop(b2);
        assert_eq!(caps.counts(), (2, 2));
    }
}
