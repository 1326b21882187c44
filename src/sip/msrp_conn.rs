//! The MSRP listener: thin tokio glue around `crate::msrp` and the session
//! table of `invite.rs`. A connection must name a negotiated session in its
//! first chunk (our `a=path` in To-Path, the offer's in From-Path, RFC 4975
//! §7.3) within `handshake_timeout`, else it is closed: a stranger costs
//! one small buffer for a few seconds and never an SMS.
//!
//! In a session every SEND chunk gets its response; the chunk that makes a
//! message whole is answered only after the bridge has taken the message
//! (committed, as a MESSAGE's 202 is), or refused it (the response carries
//! the refusal, §7.2). Messages for the peer (replies) go out as SENDs and
//! count as delivered on their 200. TCP loss ends the session.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::body::BodyError;
use super::invite::{OutgoingIm, Sessions, im_from_session};
use super::outbound::OutRequest;
use super::uas::lock;
use crate::bridge::api::{BridgeApi, Refusal};
use crate::msrp::chunking::{self, Outgoing};
use crate::msrp::{Chunk, Framer, Kind, Method, MsrpUri, Progress, Reassembly};

/// What the listener needs.
#[derive(Clone)]
pub(crate) struct Listener {
    pub(crate) sessions: Arc<Mutex<Sessions>>,
    pub(crate) bridge: Arc<dyn BridgeApi>,
    pub(crate) handshake_timeout: Duration,
    /// How long a SEND of ours waits for its 200.
    pub(crate) response_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_per_address: usize,
    /// BYEs for sessions that ended on our side go here.
    pub(crate) byes: mpsc::UnboundedSender<OutRequest>,
    pub(crate) random: fn() -> String,
}

/// Accepts connections until `stop`.
pub(crate) fn serve(listener: TcpListener, ctx: Listener, stop: CancellationToken) {
    let open: Arc<Mutex<Vec<IpAddr>>> = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(async move {
        loop {
            let (stream, peer) = tokio::select! {
                _ = stop.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => { debug!(error = %e, "MSRP accept"); continue; }
                },
            };
            {
                let mut o = lock(&open);
                let here = o.iter().filter(|a| **a == peer.ip()).count();
                if o.len() >= ctx.max_connections || here >= ctx.max_per_address {
                    debug!(%peer, "MSRP connection refused: too many");
                    continue;
                }
                o.push(peer.ip());
            }
            let (ctx, open, stop) = (ctx.clone(), Arc::clone(&open), stop.clone());
            tokio::spawn(async move {
                connection(stream, peer, &ctx, stop).await;
                let mut o = lock(&open);
                if let Some(i) = o.iter().position(|a| *a == peer.ip()) {
                    o.swap_remove(i);
                }
            });
        }
    });
}

/// A SEND of ours waiting for its response.
struct Pending {
    tid: String,
    done: tokio::sync::oneshot::Sender<Result<(), String>>,
    deadline: tokio::time::Instant,
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: &Listener,
    stop: CancellationToken,
) {
    let limits = lock(&ctx.sessions).cfg.limits;
    let mut framer = Framer::new(limits.max_header_bytes, limits.max_chunk_body);
    let mut buf = vec![0u8; 16 * 1024];
    // The first chunk binds the connection to a session.
    let first = tokio::time::timeout(ctx.handshake_timeout, async {
        loop {
            match framer.next_frame() {
                Ok(Some(f)) => return Some(f),
                Ok(None) => {}
                Err(_) => return None,
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => framer.push(&buf[..n]),
            }
        }
    })
    .await;
    let Ok(Some(frame)) = first else {
        debug!(%peer, "MSRP connection closed: no session named in time");
        return;
    };
    let Ok(chunk) = Chunk::parse(&frame) else {
        return;
    };
    let (Some(to), Some(from)) = (chunk.to_path.first(), chunk.from_path.last()) else {
        return;
    };
    let (tx, rx) = mpsc::channel::<OutgoingIm>(16);
    let bound = {
        let mut table = lock(&ctx.sessions);
        table.matching(to, from).and_then(|s| {
            if s.outgoing.as_ref().is_some_and(|o| !o.is_closed()) {
                return None;
            }
            s.outgoing = Some(tx.clone());
            Some((
                s.ours.clone(),
                s.theirs.clone(),
                s.peer.clone(),
                s.target.clone(),
                s.anonymous,
                s.ended.clone(),
            ))
        })
    };
    let Some((ours, theirs, sender, target, anonymous, ended)) = bound else {
        if chunk.wants_response(481) {
            let _ = stream
                .write_all(&chunk.response(481, "No session").to_bytes())
                .await;
        }
        debug!(%peer, "MSRP connection closed: no such session");
        return;
    };
    let id = ours.session_id().unwrap_or_default().to_owned();
    info!(%peer, session = %id, "MSRP session connected");
    let session = Conn {
        ctx,
        reassembly: Reassembly::new(limits),
        ours,
        theirs,
        sender,
        target,
        anonymous,
        pending: Vec::new(),
    };
    let bound = Bound {
        id,
        ended,
        rx,
        stop,
    };
    drive(stream, framer, session, bound, Some(chunk)).await;
}

/// A session we opened (our INVITE answered): we connect to the
/// answerer's path (RFC 4975 §5.4) and send first. The session is already
/// in the table with `rx`'s sender as its queue; `ended` ends it.
pub(crate) async fn connect_out(
    ctx: &Listener,
    opened: &super::invite::Opened,
    bound: Bound,
) -> std::io::Result<()> {
    let host = opened
        .theirs
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = opened.theirs.port().unwrap_or(2855);
    let stream = tokio::time::timeout(ctx.handshake_timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    let limits = lock(&ctx.sessions).cfg.limits;
    info!(peer = %opened.theirs, session = %bound.id, "MSRP session connected out");
    let session = Conn {
        ctx,
        reassembly: Reassembly::new(limits),
        ours: opened.ours.clone(),
        theirs: opened.theirs.clone(),
        sender: opened.user.clone(),
        target: opened.other.clone(),
        anonymous: false,
        pending: Vec::new(),
    };
    let framer = Framer::new(limits.max_header_bytes, limits.max_chunk_body);
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let session = Conn {
            ctx: &ctx,
            ..session
        };
        drive(stream, framer, session, bound, None).await;
    });
    Ok(())
}

/// What ties a connection to its session.
pub(crate) struct Bound {
    pub(crate) id: String,
    pub(crate) ended: CancellationToken,
    pub(crate) rx: mpsc::Receiver<OutgoingIm>,
    pub(crate) stop: CancellationToken,
}

/// Runs a connection bound to its session until either ends; `next` is a
/// chunk already read.
async fn drive(
    mut stream: TcpStream,
    mut framer: Framer,
    mut session: Conn<'_>,
    bound: Bound,
    mut next: Option<Chunk>,
) {
    let Bound {
        id,
        ended,
        mut rx,
        stop,
    } = bound;
    let ctx = session.ctx;
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::new();
    let lost = 'conn: loop {
        // Every chunk framed so far is handled before reading more.
        loop {
            let c = match next.take() {
                Some(c) => c,
                None => match framer.next_frame() {
                    Ok(Some(f)) => match Chunk::parse(&f) {
                        Ok(c) => c,
                        Err(e) => {
                            debug!(session = %id, error = %e, "bad MSRP chunk: closing");
                            break 'conn true;
                        }
                    },
                    Ok(None) => break,
                    Err(e) => {
                        debug!(session = %id, error = %e, "MSRP stream refused: closing");
                        break 'conn true;
                    }
                },
            };
            session.handle(c, &mut out).await;
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    break 'conn true;
                }
                out.clear();
            }
        }
        lock(&ctx.sessions).touch(&id, unix_now());
        let deadline = session
            .pending
            .iter()
            .map(|p| p.deadline)
            .min()
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            _ = stop.cancelled() => break false,
            _ = ended.cancelled() => break false,
            r = stream.read(&mut buf) => match r {
                Ok(0) | Err(_) => break true,
                Ok(n) => framer.push(&buf[..n]),
            },
            Some(im) = rx.recv() => {
                let bytes = session.send(im);
                if stream.write_all(&bytes).await.is_err() {
                    break true;
                }
            }
            _ = tokio::time::sleep_until(deadline) => {
                let now = tokio::time::Instant::now();
                let (late, keep): (Vec<_>, Vec<_>) =
                    session.pending.drain(..).partition(|p| p.deadline <= now);
                session.pending = keep;
                for p in late {
                    let _ = p.done.send(Err("no response to SEND".into()));
                }
            }
        }
    };
    for p in session.pending.drain(..) {
        let _ = p.done.send(Err("the session ended".into()));
    }
    rx.close();
    while let Ok(im) = rx.try_recv() {
        let _ = im.done.send(Err("the session ended".into()));
    }
    if lost {
        info!(session = %id, "MSRP connection lost: the session ends");
        if let Some(bye) = lock(&ctx.sessions).end(&id, true) {
            let _ = ctx.byes.send(bye);
        }
    }
}

struct Conn<'a> {
    ctx: &'a Listener,
    reassembly: Reassembly,
    ours: MsrpUri,
    theirs: MsrpUri,
    sender: crate::bridge::api::Sender,
    target: crate::bridge::api::Recipient,
    anonymous: bool,
    pending: Vec<Pending>,
}

impl Conn<'_> {
    /// One chunk from the peer; what to write goes into `out`.
    async fn handle(&mut self, c: Chunk, out: &mut Vec<u8>) {
        let respond = |out: &mut Vec<u8>, code: u16, comment: &str| {
            if c.wants_response(code) {
                out.extend_from_slice(&c.response(code, comment).to_bytes());
            }
        };
        if c.to_path.first() != Some(&self.ours) || c.from_path.last() != Some(&self.theirs) {
            respond(out, 481, "Not this session");
            return;
        }
        match &c.kind {
            Kind::Response { code, .. } => {
                if let Some(i) = self.pending.iter().position(|p| p.tid == c.tid) {
                    let p = self.pending.swap_remove(i);
                    let r = if *code == 200 {
                        Ok(())
                    } else {
                        Err(format!("MSRP {code}"))
                    };
                    let _ = p.done.send(r);
                }
            }
            Kind::Request(Method::Report) => {}
            Kind::Request(Method::Other(_)) => respond(out, 501, "Unknown method"),
            Kind::Request(Method::Send) => match self.reassembly.push(&c) {
                Ok(Progress::Partial | Progress::Nothing) => respond(out, 200, "OK"),
                Err(e) => respond(out, e.code(), &e.to_string()),
                Ok(Progress::Complete(m)) => {
                    let (code, comment) = self.submit(&m.content_type, &m.body).await;
                    respond(out, code, &comment);
                    if code == 200 && m.success_report {
                        let rep = chunking::success_report(
                            &self.new_tid(),
                            vec![self.theirs.clone()],
                            vec![self.ours.clone()],
                            &m,
                        );
                        out.extend_from_slice(&rep.to_bytes());
                    }
                }
            },
        }
    }

    /// A whole message to the bridge, as a MESSAGE with that body: the
    /// response code and comment.
    async fn submit(&self, content_type: &str, body: &[u8]) -> (u16, String) {
        match im_from_session(
            &self.sender,
            &self.target,
            self.anonymous,
            content_type,
            body,
        ) {
            Ok(None) => (200, "OK".into()),
            Ok(Some(im)) => match self.ctx.bridge.submit(im).await {
                Ok(_) => (200, "OK".into()),
                Err(r) => (refusal_code(&r), r.to_string()),
            },
            Err(BodyError::Unsupported(what)) => (415, format!("Unsupported {what}")),
            Err(BodyError::Invalid(why)) => (400, why),
        }
    }

    /// A message for the peer as SEND chunks; its outcome comes with the
    /// last chunk's response.
    fn send(&mut self, im: OutgoingIm) -> Vec<u8> {
        let message_id = self.new_tid();
        let (to, from) = (vec![self.theirs.clone()], vec![self.ours.clone()]);
        let chunks = Outgoing {
            to_path: &to,
            from_path: &from,
            message_id: &message_id,
            content_type: &im.content_type,
            body: &im.body,
            success_report: false,
        }
        .chunks(self.reassembly_limit(), || self.new_tid());
        let mut bytes = Vec::new();
        for c in &chunks {
            bytes.extend_from_slice(&c.to_bytes());
        }
        if let Some(last) = chunks.last() {
            self.pending.push(Pending {
                tid: last.tid.clone(),
                done: im.done,
                deadline: tokio::time::Instant::now() + self.ctx.response_timeout,
            });
        }
        bytes
    }

    fn reassembly_limit(&self) -> usize {
        lock(&self.ctx.sessions).cfg.limits.max_chunk_body
    }

    fn new_tid(&self) -> String {
        let mut t: String = (self.ctx.random)()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect();
        while t.len() < 8 {
            t.push('0');
        }
        t
    }
}

/// The MSRP code for each refusal (§7.2 and §10 have few): the request is
/// bad (400), forbidden (403), too large (413), or anything else that makes
/// the message undeliverable now (403 with the reason in the comment).
fn refusal_code(r: &Refusal) -> u16 {
    match r {
        Refusal::TooLong { .. } => 413,
        Refusal::EmptyMessage | Refusal::Invalid(_) => 400,
        _ => 403,
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
