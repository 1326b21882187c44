//! The sockets under rsipstack. UDP: our socket behind rsipstack's
//! `platform::net::UdpSocket` seam, screening each datagram first (the seam
//! passes bytes, so rsipstack parses a datagram the screen let through once
//! more). TCP: our accept loop and Content-Length framer (why not
//! rsipstack's `SipCodec`: see [`Framer`]); the message the screen parsed
//! goes to rsipstack as is, over a `ChannelConnection` (reliable, keyed by
//! the peer address so requests to a TCP-registered contact reuse it).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rsipstack::sip::Transport as RsTransport;
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transport::channel::ChannelConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportEvent};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::screen::{self, Frame, Framer, Screened};

/// A TCP connection with nothing read for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(600);

/// The largest UDP datagram: read whole, so a long one is answered for what
/// it is instead of being cut.
const MAX_DATAGRAM: usize = 65_535;

/// A UDP socket that answers or drops what rsipstack would silently lose.
pub(crate) struct ScreenedUdp {
    sock: UdpSocket,
    /// Each datagram is read whole into this first.
    whole: tokio::sync::Mutex<Vec<u8>>,
}

impl ScreenedUdp {
    pub(crate) fn new(sock: UdpSocket) -> Self {
        Self {
            sock,
            whole: tokio::sync::Mutex::new(vec![0u8; MAX_DATAGRAM]),
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
                // parses them itself: the screen's parse is dropped here.
                Screened::Pass(_) if n <= buf.len() => {
                    buf[..n].copy_from_slice(packet);
                    return Ok((n, from));
                }
                // A good request longer than rsipstack's UDP buffer (8 KiB):
                // 513, and the Warning says to use TCP (RFC 3261 §18.1.1).
                Screened::Pass(_) => {
                    let limit = buf.len();
                    info!(%from, n, "a SIP datagram over {limit} bytes: 513");
                    let why = format!("requests over {limit} bytes must come over TCP");
                    if let Some(bytes) = screen::reply_to(packet, 513, &why) {
                        let _ = self.sock.send_to(&bytes, from).await;
                    }
                }
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

/// Accepts TCP connections until `cancel`.
pub(crate) fn serve_tcp(
    listener: TcpListener,
    endpoint: Arc<EndpointInner>,
    cancel: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => return,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let (e, c) = (endpoint.clone(), cancel.child_token());
                    tokio::spawn(async move { tcp_connection(stream, peer, e, c).await });
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
    'read: loop {
        let n = tokio::select! {
            _ = cancel.cancelled() => break,
            r = tokio::time::timeout(TCP_IDLE, rd.read(&mut buf)) => match r {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
                Ok(Ok(n)) => n,
            },
        };
        framer.push(buf.get(..n).unwrap_or_default());
        loop {
            match framer.next_frame() {
                Ok(None) => break,
                Ok(Some(Frame::Ping)) => {
                    let _ = raw_tx.send(b"\r\n".to_vec());
                }
                Ok(Some(Frame::Message(bytes))) => match screen::screen(&bytes) {
                    Screened::Pass(msg) => {
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
                        let _ = raw_tx.send(b);
                    }
                    Screened::Drop(why) => info!(%peer, why, "dropped a SIP message on TCP"),
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
