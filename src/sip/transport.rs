//! The sockets under rsipstack. UDP: our socket behind rsipstack's
//! `platform::net::UdpSocket` seam, screening each datagram first (the seam
//! passes bytes, so rsipstack parses a datagram the screen let through once
//! more). TCP: our accept loop and Content-Length framer (why not
//! rsipstack's `SipCodec`: see [`Framer`]); the message the screen parsed
//! goes to rsipstack as is, over a `ChannelConnection` (reliable, keyed by
//! the peer address so requests to a TCP-registered contact reuse it).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rsipstack::sip::SipMessage;
use rsipstack::sip::Transport as RsTransport;
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::answered::{Answer, Answered, KeyDigest};
use super::screen::{self, Frame, Framer, Screened};

/// A TCP connection with nothing read for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(600);

/// The largest UDP datagram: read whole, so a long one is answered for what
/// it is instead of being cut.
const MAX_DATAGRAM: usize = 65_535;

/// Seconds a busy front end asks a client to wait before it tries again.
pub(crate) const BUSY_RETRY_AFTER: u64 = 1;

/// The bound on requests taken but not yet answered (`[sip] max_in_flight`).
/// The handler counts each request it works on ([`Admission::enter`]); a new
/// UDP request beyond the bound is answered 503 by the socket, statelessly,
/// before rsipstack makes a transaction of it, so a flood costs neither a
/// task nor a transaction's memory.
pub(crate) struct Admission {
    /// What was answered, for retransmissions.
    pub(crate) answered: Answered,
    max: usize,
    in_flight: AtomicUsize,
    /// UDP datagrams handed to rsipstack, and taken by its endpoint: those
    /// between wait in rsipstack's queue, parsed, and count as in flight.
    handed: AtomicU64,
    taken: AtomicU64,
    /// When the endpoint last took one (ms since `started`).
    last_taken_ms: AtomicU64,
    started: Instant,
    /// Whose transactions a retransmission may belong to (set once the
    /// endpoint is built, after the sockets).
    endpoint: OnceLock<std::sync::Weak<EndpointInner>>,
}

/// One request counted in flight until dropped.
pub(crate) struct InFlight {
    admission: Arc<Admission>,
    /// Whether it was within the bound when it came.
    pub(crate) admitted: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.admission.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admission {
    /// At most `max` in flight; answers kept for `keep` (64·T1).
    pub(crate) fn new(max: usize, keep: Duration) -> Self {
        Self {
            answered: Answered::new(keep),
            max: max.max(1),
            in_flight: AtomicUsize::new(0),
            handed: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            last_taken_ms: AtomicU64::new(0),
            started: Instant::now(),
            endpoint: OnceLock::new(),
        }
    }

    pub(crate) fn set_endpoint(&self, endpoint: &Arc<EndpointInner>) {
        let _ = self.endpoint.set(Arc::downgrade(endpoint));
    }

    /// Counts a request the handler takes; `admitted` is false when the bound
    /// was already reached (a TCP request, or UDP ones that raced the check).
    pub(crate) fn enter(self: &Arc<Self>) -> InFlight {
        let before = self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight {
            admission: Arc::clone(self),
            admitted: before < self.max,
        }
    }

    /// Requests being worked on now, and datagrams waiting for rsipstack's
    /// endpoint to take them.
    pub(crate) fn in_flight(&self) -> usize {
        let waiting = self.waiting();
        self.in_flight
            .load(Ordering::SeqCst)
            .saturating_add(usize::try_from(waiting).unwrap_or(usize::MAX))
    }

    fn ms_since_start(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Datagrams handed to rsipstack and not yet taken by its endpoint. One
    /// rsipstack drops (it cannot parse what the screen could) is never
    /// taken: when the endpoint has taken nothing for a second, nothing is
    /// waiting, and the count starts again from there.
    fn waiting(&self) -> u64 {
        let (handed, taken) = (
            self.handed.load(Ordering::SeqCst),
            self.taken.load(Ordering::SeqCst),
        );
        let idle = self
            .ms_since_start()
            .saturating_sub(self.last_taken_ms.load(Ordering::SeqCst));
        if handed > taken && idle > 1000 {
            self.taken.fetch_max(handed, Ordering::SeqCst);
            return 0;
        }
        handed.saturating_sub(taken)
    }

    fn handed(&self) {
        self.handed.fetch_add(1, Ordering::SeqCst);
    }

    /// rsipstack's endpoint took a datagram from its queue.
    pub(crate) fn taken(&self) {
        self.taken.fetch_add(1, Ordering::SeqCst);
        self.last_taken_ms
            .store(self.ms_since_start(), Ordering::SeqCst);
    }

    /// Whether a request that came now is to be answered busy at once,
    /// and its key: it was answered busy before (a retransmission), or the
    /// bound is reached and it is not a retransmission of a transaction
    /// rsipstack knows (those it absorbs or answers again itself) or one the
    /// front end answered. ACK and CANCEL belong to a transaction: never.
    fn refuses(&self, msg: &SipMessage) -> Option<KeyDigest> {
        let SipMessage::Request(req) = msg else {
            return None;
        };
        if matches!(
            req.method,
            rsipstack::sip::Method::Ack | rsipstack::sip::Method::Cancel
        ) {
            return None;
        }
        let key = TransactionKey::from_request(req, TransactionRole::Server).ok()?;
        let digest = KeyDigest::of(&key);
        match self.answered.busy(digest, Instant::now()) {
            Some(true) => return Some(digest),
            Some(false) => return None,
            None => {}
        }
        if self.in_flight() < self.max {
            return None;
        }
        let endpoint = self.endpoint.get().and_then(std::sync::Weak::upgrade)?;
        let known = endpoint.transactions.contains_key(&key)
            || endpoint.finished_transactions.contains_key(&key);
        (!known).then_some(digest)
    }
}

/// Tells the [`Admission`] each time rsipstack's endpoint takes a UDP
/// datagram from its queue.
pub(crate) struct TakenFromQueue(pub(crate) Arc<Admission>);

#[async_trait::async_trait]
impl rsipstack::transaction::endpoint::TransportEventInspector for TakenFromQueue {
    async fn handle(&self, event: TransportEvent) -> Option<TransportEvent> {
        if let TransportEvent::Incoming(_, SipConnection::Udp(_), _) = &event {
            self.0.taken();
        }
        Some(event)
    }
}

/// A UDP socket that answers or drops what rsipstack would silently lose,
/// and answers busy what is beyond the [`Admission`] bound.
pub(crate) struct ScreenedUdp {
    sock: UdpSocket,
    /// Each datagram is read whole into this first.
    whole: tokio::sync::Mutex<Vec<u8>>,
    admission: Arc<Admission>,
}

impl ScreenedUdp {
    pub(crate) fn new(sock: UdpSocket, admission: Arc<Admission>) -> Self {
        Self {
            sock,
            whole: tokio::sync::Mutex::new(vec![0u8; MAX_DATAGRAM]),
            admission,
        }
    }
}

#[async_trait::async_trait]
impl rsipstack::platform::net::UdpSocket for ScreenedUdp {
    async fn recv_from(&self, buf: &mut [u8]) -> rsipstack::Result<(usize, SocketAddr)> {
        let mut whole = self.whole.lock().await;
        loop {
            let (n, from) = self.sock.recv_from(&mut whole).await?;
            let packet = whole.get(..n).unwrap_or_default();
            if packet.iter().all(u8::is_ascii_whitespace) {
                let n = n.min(buf.len());
                buf[..n].copy_from_slice(&packet[..n]);
                return Ok((n, from)); // keep-alives: rsipstack answers them
            }
            match screen::screen(packet) {
                // rsipstack's UDP loop takes bytes through this seam and
                // parses them itself: it gets the bytes the screen parsed
                // (the head rewritten), and the screen's parse is dropped.
                Screened::Pass(msg, bytes) => match self.admission.refuses(&msg) {
                    Some(key) => {
                        debug!(%from, "busy: a request beyond max_in_flight answered 503");
                        let why = "too many requests at once";
                        if let Some(reply) = screen::busy_reply_to(packet, BUSY_RETRY_AFTER, why) {
                            let _ = self.sock.send_to(&reply, from).await;
                        }
                        self.admission
                            .answered
                            .remember(key, &Answer::Busy, Instant::now());
                    }
                    None if bytes.len() <= buf.len() => {
                        buf[..bytes.len()].copy_from_slice(&bytes);
                        self.admission.handed();
                        return Ok((bytes.len(), from));
                    }
                    // A good request longer than rsipstack's UDP buffer (8 KiB):
                    // 513, and the Warning says to use TCP (RFC 3261 §18.1.1).
                    None => {
                        let limit = buf.len();
                        info!(%from, n, "a SIP datagram over {limit} bytes: 513");
                        let why = format!("requests over {limit} bytes must come over TCP");
                        if let Some(bytes) = screen::reply_to(packet, 513, &why) {
                            let _ = self.sock.send_to(&bytes, from).await;
                        }
                    }
                },
                Screened::Reply(bytes) => {
                    debug!(%from, "answering a request rsipstack cannot take");
                    let _ = self.sock.send_to(&bytes, from).await;
                }
                Screened::Drop(why) => info!(%from, why, "dropped a SIP datagram"),
            }
        }
    }

    async fn send_to(&self, buf: &[u8], addr: SocketAddr) -> rsipstack::Result<usize> {
        Ok(self.sock.send_to(buf, addr).await?)
    }

    fn local_addr(&self) -> rsipstack::Result<SocketAddr> {
        Ok(self.sock.local_addr()?)
    }
}

/// What SIP over TCP allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpLimits {
    /// Connections open at once.
    pub(crate) max_connections: usize,
    /// Connections open at once from one address.
    pub(crate) max_per_address: usize,
    /// Time to send the rest of a message once its first byte came.
    pub(crate) message_timeout: Duration,
}

/// Accepts TCP connections until `cancel`, within `limits`: more connections
/// than the caps are closed as soon as they are accepted.
pub(crate) fn serve_tcp(
    listener: TcpListener,
    endpoint: Arc<EndpointInner>,
    limits: TcpLimits,
    cancel: CancellationToken,
) {
    let caps = crate::caps::ConnectionCaps::new(limits.max_connections, limits.max_per_address);
    tokio::spawn(async move {
        let mut last_warned: Option<tokio::time::Instant> = None;
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => return,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let Some(slot) = caps.admit(peer.ip()) else {
                        let now = tokio::time::Instant::now();
                        if last_warned
                            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(60))
                        {
                            last_warned = Some(now);
                            tracing::warn!(
                                "SIP over TCP: connection from {peer} refused: {} at once, {} per address",
                                limits.max_connections,
                                limits.max_per_address
                            );
                        }
                        drop(stream);
                        continue;
                    };
                    let (e, c) = (endpoint.clone(), cancel.child_token());
                    let timeout = limits.message_timeout;
                    tokio::spawn(async move {
                        let _slot = slot;
                        tcp_connection(stream, peer, e, timeout, c).await
                    });
                }
                Err(e) => {
                    info!(error = %e, "TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
}

async fn tcp_connection(
    stream: TcpStream,
    peer: SocketAddr,
    endpoint: Arc<EndpointInner>,
    message_timeout: Duration,
    cancel: CancellationToken,
) {
    let (mut rd, mut wr) = stream.into_split();
    let (in_tx, in_rx) = mpsc::unbounded_channel::<TransportEvent>();
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<TransportEvent>();
    let addr = SipAddr {
        r#type: Some(RsTransport::Tcp),
        addr: peer.into(),
    };
    let Ok(conn) =
        ChannelConnection::create_connection(in_rx, out_tx, addr.clone(), Some(cancel.clone()))
            .await
    else {
        return;
    };
    let conn = SipConnection::Channel(conn);
    endpoint.transport_layer.add_connection(conn.clone());

    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    // Not the connection's token: rsipstack may cancel that when the connection
    // is removed, which would race with writing the last reply.
    let writer_cancel = CancellationToken::new();
    let stop_writer = writer_cancel.clone();
    let writer = tokio::spawn(async move {
        let (mut raw_open, mut out_open) = (true, true);
        // Runs until both queues are closed, so a reply queued just before the
        // reader stopped (e.g. a 400 for an unframeable stream) is still written.
        while raw_open || out_open {
            let bytes = tokio::select! {
                _ = writer_cancel.cancelled() => break,
                ev = out_rx.recv(), if out_open => match ev {
                    Some(TransportEvent::Incoming(msg, _, _)) => msg.to_bytes(),
                    Some(_) => continue,
                    None => {
                        out_open = false;
                        continue;
                    }
                },
                raw = raw_rx.recv(), if raw_open => match raw {
                    Some(b) => b,
                    None => {
                        raw_open = false;
                        continue;
                    }
                },
            };
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });

    let mut framer = Framer::default();
    let mut buf = vec![0u8; 16 * 1024];
    // Idle between messages for TCP_IDLE; once a message has begun, the rest
    // must come within message_timeout (a client sending byte by byte is cut
    // off, however often it sends).
    let mut message_began: Option<tokio::time::Instant> = None;
    'read: loop {
        let wait = match message_began {
            Some(t) => message_timeout.saturating_sub(t.elapsed()),
            None => TCP_IDLE,
        };
        let n = tokio::select! {
            _ = cancel.cancelled() => break,
            r = tokio::time::timeout(wait, rd.read(&mut buf)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Err(_) => {
                    if message_began.is_some() {
                        debug!(%peer, "SIP over TCP: a message did not complete in time; closed");
                    }
                    break;
                }
                Ok(Ok(n)) => n,
            },
        };
        framer.push(buf.get(..n).unwrap_or_default());
        let now = tokio::time::Instant::now();
        let mut completed = false;
        loop {
            match framer.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Ping)) => {
                    completed = true;
                    let _ = raw_tx.send(b"\r\n".to_vec());
                }
                Ok(Some(Frame::Message(bytes))) => match screen::screen(&bytes) {
                    Screened::Pass(msg, _) => {
                        completed = true;
                        let Ok(msg) =
                            SipConnection::update_msg_received(*msg, peer, RsTransport::Tcp)
                        else {
                            continue;
                        };
                        if in_tx
                            .send(TransportEvent::Incoming(msg, conn.clone(), addr.clone()))
                            .is_err()
                        {
                            break 'read;
                        }
                    }
                    Screened::Reply(b) => {
                        completed = true;
                        let _ = raw_tx.send(b);
                    }
                    Screened::Drop(why) => {
                        completed = true;
                        info!(%peer, why, "dropped a SIP message on TCP");
                    }
                },
                Err(e) => {
                    info!(%peer, why = e.why, "closing a TCP connection that cannot be framed");
                    if let Some(reply) = e.head.and_then(|h| screen::reply_to(&h, e.code, e.why)) {
                        let _ = raw_tx.send(reply);
                    }
                    break 'read;
                }
            }
        }
        // The clock runs for the message now held in part: since its first
        // byte, which came in this read if an earlier message completed in it.
        message_began = match (framer.is_mid_message(), completed, message_began) {
            (false, _, _) => None,
            (true, true, _) | (true, false, None) => Some(now),
            (true, false, Some(t)) => Some(t),
        };
    }
    drop(in_tx);
    drop(raw_tx);
    endpoint.transport_layer.remove_connection(&conn);
    // Answers to requests already read may still come (the bridge stores
    // first); give them a moment, then stop the writer.
    let mut writer = writer;
    if tokio::time::timeout(Duration::from_secs(2), &mut writer)
        .await
        .is_err()
    {
        stop_writer.cancel();
        let _ = writer.await;
    }
    cancel.cancel();
}
