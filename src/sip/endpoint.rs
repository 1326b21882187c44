//! [`SipFrontEnd`]: binds the listeners, runs rsipstack's endpoint, feeds
//! each incoming transaction to the handler in `uas.rs`, and sends SMS, IMDNs
//! and NOTIFYs as client transactions, and IMs and presence SUBSCRIBEs to
//! other domains on the routes of `[federation]`. Glue only: protocol
//! decisions live in the sans-IO modules.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rsipstack::EndpointBuilder;
use rsipstack::dialog::authenticate::Credential;
use rsipstack::sip::headers::make_header;
use rsipstack::sip::{HeadersExt, StatusCode};
use rsipstack::transaction::TransactionType;
use rsipstack::transaction::endpoint::EndpointOption;
use rsipstack::transaction::random_text;
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, SipConnection, TransportLayer};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::answered::{Answer, KeyDigest};
use super::client::{self, Client};
use super::invite::{OutgoingIm, SessionConfig, Sessions};
use super::msrp_conn;
use super::outbound::{self, Ids, OutRequest, Target};
use super::route::Routes;
use super::transport::{self, Admission, BUSY_RETRY_AFTER, InFlight, ScreenedUdp, TakenFromQueue};
use super::uas::Handled;
use super::uas::{Followup, Uas, UasConfig, lock};
use super::wire::{Reply, Request, Transport};
use crate::bridge::api::{
    BoxFuture, BridgeApi, DeliveryNotice, DeliveryResult, ForeignIm, ForeignPresence, FrontEnd,
    ImFrontEnd, Refusal, SmsToIm, WatchChanged, WatchDecision,
};
use crate::presence::Presence;

mod federation;
mod session_out;

/// Why the front end could not start.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// A listen address or trusted peer is not an IP address (and port).
    #[error("bad address {0:?} in [sip]")]
    Address(String),
    /// A socket could not be bound.
    #[error("SIP {transport} on {addr}: {source}")]
    Bind {
        /// `UDP` or `TCP`.
        transport: &'static str,
        /// The address.
        addr: SocketAddr,
        /// What the OS said.
        source: std::io::Error,
    },
    /// rsipstack refused to start.
    #[error("SIP stack: {0}")]
    Stack(String),
}

/// The SIP front end. Cheap to clone.
#[derive(Clone)]
pub struct SipFrontEnd {
    inner: Arc<Inner>,
}

struct Inner {
    uas: Arc<Uas>,
    admission: Arc<Admission>,
    client: Client,
    addrs: Vec<SocketAddr>,
    /// How many of `addrs` (the first ones) are UDP; the rest are TCP.
    udp_listeners: usize,
    domain: String,
    upstream: Option<(String, Option<Credential>)>,
    /// Where requests for other domains go (`[federation]`).
    routes: RwLock<Arc<Routes>>,
    /// How long a request to another domain may take: a transaction's time
    /// (64·T1) and a little for the DNS.
    foreign_timeout: Duration,
    /// Set by `start_msrp`: for the sessions we open.
    opener: std::sync::OnceLock<session_out::Opener>,
    _endpoint: rsipstack::transaction::Endpoint,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random() -> String {
    random_text(12)
}

/// A Call-ID and From tag for a new request.
fn fresh_ids() -> Ids {
    Ids {
        call_id: format!("{}@smsbridge", random_text(16)),
        tag: random(),
    }
}

fn parse_addr(s: &str) -> Result<SocketAddr, SipError> {
    s.parse().map_err(|_| SipError::Address(s.to_owned()))
}

fn contact_uri(addr: Option<SocketAddr>, transport: &str) -> String {
    match addr {
        Some(a) if transport == "tcp" => format!("sip:smsbridge@{a};transport=tcp"),
        Some(a) => format!("sip:smsbridge@{a}"),
        None => "sip:smsbridge@127.0.0.1".into(),
    }
}

impl SipFrontEnd {
    /// Binds the configured UDP and TCP listeners and starts serving;
    /// requests go to `bridge`. Everything stops when `shutdown` is cancelled.
    pub async fn start(
        cfg: &crate::config::Sip,
        bridge: Arc<dyn BridgeApi>,
        shutdown: CancellationToken,
    ) -> Result<Self, SipError> {
        let trusted = cfg
            .trusted_peers
            .iter()
            .map(|p| {
                p.parse::<IpAddr>()
                    .map_err(|_| SipError::Address(p.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let cancel = shutdown.child_token();
        let tl = TransportLayer::new(cancel.clone());
        let t1 = Duration::from_millis(cfg.t1_ms.max(1));
        let admission = Arc::new(Admission::new(cfg.max_in_flight, t1 * 64));
        let mut addrs = Vec::new();
        let (mut first_udp, mut first_tcp) = (None, None);
        for a in &cfg.udp {
            let addr = parse_addr(a)?;
            let bind_error = |source| SipError::Bind {
                transport: "UDP",
                addr,
                source,
            };
            let sock = tokio::net::UdpSocket::bind(addr)
                .await
                .map_err(bind_error)?;
            let local = sock.local_addr().map_err(bind_error)?;
            let conn = UdpConnection::from_socket(
                Arc::new(ScreenedUdp::new(sock, Arc::clone(&admission))),
                None,
                Some(cancel.child_token()),
            )
            .await
            .map_err(|e| SipError::Stack(e.to_string()))?;
            tl.add_transport(SipConnection::Udp(conn));
            first_udp.get_or_insert(local);
            addrs.push(local);
        }
        let udp_listeners = addrs.len();
        let mut listeners = Vec::new();
        for a in &cfg.tcp {
            let addr = parse_addr(a)?;
            let bind_error = |source| SipError::Bind {
                transport: "TCP",
                addr,
                source,
            };
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(bind_error)?;
            let local = l.local_addr().map_err(bind_error)?;
            first_tcp.get_or_insert(local);
            addrs.push(local);
            listeners.push(l);
        }
        let option = EndpointOption {
            t1,
            t1x64: t1 * 64,
            ..EndpointOption::default()
        };
        let endpoint = EndpointBuilder::new()
            .with_user_agent(concat!("smsbridge/", env!("CARGO_PKG_VERSION")))
            .with_transport_layer(tl)
            .with_cancel_token(cancel.clone())
            .with_option(option)
            .with_transport_inspector(Box::new(TakenFromQueue(Arc::clone(&admission))))
            .build();
        let mut incoming = endpoint
            .incoming_transactions()
            .map_err(|e| SipError::Stack(e.to_string()))?;
        let inner_ep = endpoint.inner.clone();
        admission.set_endpoint(&inner_ep);
        tokio::spawn(async move {
            if let Err(e) = inner_ep.serve().await {
                warn!(error = %e, "SIP endpoint stopped");
            }
        });
        for l in listeners {
            let limits = transport::TcpLimits {
                max_connections: cfg.max_tcp_connections,
                max_per_address: cfg.max_tcp_connections_per_address,
                message_timeout: cfg.tcp_message_timeout,
            };
            transport::serve_tcp(l, endpoint.inner.clone(), limits, cancel.clone());
        }
        // The bridge's domain set; without one, what this front end knows:
        // its domain and the addresses it listens on.
        let domains = bridge.domains().unwrap_or_else(|| {
            Arc::new(
                crate::domains::Domains::listening([&cfg.domain], addrs.iter().map(|a| a.ip()))
                    .with_trusted(trusted.iter().copied()),
            )
        });
        let uas = Arc::new(Uas::new(
            UasConfig {
                realm: cfg.realm.clone(),
                domain: cfg.domain.clone(),
                domains,
                trusted,
                contact_udp: contact_uri(first_udp.or(first_tcp), "udp"),
                contact_tcp: contact_uri(first_tcp.or(first_udp), "tcp"),
                require_auth_int: cfg.require_auth_int,
            },
            bridge,
            random_text(24),
            random,
        ));
        let upstream = cfg.upstream.as_ref().map(|u| {
            let cred = u.password.as_ref().map(|p| Credential {
                username: u
                    .register_as
                    .as_deref()
                    .and_then(|a| {
                        a.split_once(':')?
                            .1
                            .split_once('@')
                            .map(|(u, _)| u.to_owned())
                    })
                    .or_else(|| u.username.clone())
                    .unwrap_or_default(),
                password: p.clone(),
                realm: None,
                auth_username: u.username.clone(),
            });
            (u.proxy.clone(), cred)
        });
        let fe = Self {
            inner: Arc::new(Inner {
                uas,
                admission,
                client: Client {
                    endpoint: endpoint.inner.clone(),
                    tcp_local: first_tcp.map(|a| SipAddr {
                        r#type: Some(rsipstack::sip::Transport::Tcp),
                        addr: a.into(),
                    }),
                },
                addrs,
                udp_listeners,
                domain: cfg.domain.clone(),
                upstream,
                routes: RwLock::new(Arc::new(Routes::default())),
                foreign_timeout: t1 * 64 + Duration::from_secs(5),
                opener: std::sync::OnceLock::new(),
                _endpoint: endpoint,
            }),
        };
        if let Some(u) = &cfg.upstream
            && let (Some(aor), Some((_, Some(cred)))) = (&u.register_as, &fe.inner.upstream)
        {
            tokio::spawn(client::register_upstream(
                fe.inner.client.endpoint.clone(),
                aor.clone(),
                u.proxy.clone(),
                cred.clone(),
                u.expires,
                cancel.clone(),
            ));
        }
        let serving = fe.clone();
        let stop = cancel.clone();
        tokio::spawn(async move {
            loop {
                let tx = tokio::select! {
                    _ = stop.cancelled() => break,
                    tx = incoming.recv() => match tx { Some(tx) => tx, None => break },
                };
                // Counted from here, not from when its task first runs: under
                // a flood the tasks waiting for a core are in flight too.
                let counted = serving.inner.admission.enter();
                let fe = serving.clone();
                tokio::spawn(async move { fe.serve(tx, counted).await });
            }
        });
        let housekeeping = fe.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tick.tick() => housekeeping.expire(unix_now()).await,
                }
            }
        });
        info!(addrs = ?fe.inner.addrs, "SIP front end listening");
        Ok(fe)
    }

    /// The bound addresses (UDP first, then TCP), with real ports.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner.addrs.clone()
    }

    /// Each listening address with its transport, `UDP` or `TCP`.
    pub fn listeners(&self) -> Vec<(&'static str, SocketAddr)> {
        let udp = self.inner.udp_listeners;
        self.inner
            .addrs
            .iter()
            .enumerate()
            .map(|(i, a)| (if i < udp { "UDP" } else { "TCP" }, *a))
            .collect()
    }

    /// Graceful shutdown: new requests get 503 with Retry-After, and every
    /// subscription to another domain is ended (`Expires: 0`) while the
    /// transport is still up.
    pub fn set_draining(&self, yes: bool) {
        self.inner.uas.set_draining(yes);
        if yes {
            let ended = lock(&self.inner.uas.watches).unwatch_all(unix_now());
            for (out, route) in ended {
                self.spawn_foreign(out, route);
            }
        }
    }

    /// Users with live registrations and their contacts, for `smsbridge status`.
    pub fn registrations(&self) -> Vec<(String, Vec<String>)> {
        lock(&self.inner.uas.registrar).snapshot(unix_now())
    }

    async fn serve(&self, mut tx: Transaction, counted: InFlight) {
        let req = to_request(&tx);
        let admission = &self.inner.admission;
        let digest = KeyDigest::of(&tx.key);
        let busy = || {
            Reply::new(503)
                .with("Retry-After", BUSY_RETRY_AFTER.to_string())
                .warning("too many requests at once")
        };
        let handled = match admission.answered.get(digest, std::time::Instant::now()) {
            // A retransmission of one answered before (rsipstack forgot it).
            Some(Answer::Reply(reply)) => Handled::from(reply),
            Some(Answer::Busy) => Handled::from(busy()),
            None => {
                let mut handled = if counted.admitted {
                    self.inner.uas.handle(&req, unix_now()).await
                } else {
                    debug!(method = %req.method(), "busy: 503 beyond max_in_flight");
                    Handled::from(busy())
                };
                // The tag is chosen now, so a retransmission gets the same one.
                handled
                    .reply
                    .to_tag
                    .get_or_insert_with(|| admission.answered.tag(digest));
                let answer = match handled.reply.code {
                    503 if !counted.admitted => Answer::Busy,
                    _ => Answer::Reply(handled.reply.clone()),
                };
                admission
                    .answered
                    .remember(digest, &answer, std::time::Instant::now());
                handled
            }
        };
        debug!(method = %req.method(), code = handled.reply.code, "answering");
        let response = to_response(&tx, handled.reply);
        let sent = if tx.transaction_type == TransactionType::ServerNonInvite {
            send_final(&tx, response).await
        } else {
            tx.respond(response).await.map_err(|e| e.to_string())
        };
        if let Err(e) = sent {
            warn!(error = %e, "cannot send a SIP response");
        }
        drop(counted);
        // The answer is kept compactly in `answered`; rsipstack's copy of the
        // whole response (kept as long) goes.
        let key = tx.key.clone();
        drop(tx);
        self.inner
            .client
            .endpoint
            .finished_transactions
            .remove(&key);
        for f in handled.followups {
            match f {
                Followup::UserOnline(aor) => self.inner.uas.bridge().user_online(aor),
                Followup::Presence(aor, p) => self.sip_user_changed(aor, p),
                Followup::Foreign(news) => self.inner.uas.bridge().foreign_presence(news),
                Followup::Send(out) => self.send_logged(*out).await,
                Followup::WatchForeign(watcher, presentity) => {
                    self.relay_watch(watcher, presentity)
                }
                Followup::UnwatchForeign(watcher, presentity) => {
                    self.unwatch_foreign(&watcher, &presentity)
                }
                Followup::Notify(s) => {
                    let contact = self.inner.uas.cfg.contact(req.transport).to_owned();
                    let out = outbound::presence_notify(
                        &s,
                        &s.state(unix_now()),
                        &self.inner.domain,
                        &contact,
                    );
                    self.send_logged(out).await;
                }
            }
        }
    }

    /// A SIP user's presence changed (registration, PUBLISH): IMPS watchers
    /// hear through the bridge, SIP watchers of that user by NOTIFY.
    fn sip_user_changed(&self, aor: String, p: Presence) {
        self.notify_watchers(FrontEnd::Sip, crate::bridge::user_part(&aor), &p);
        self.inner.uas.bridge().presence_changed(aor, p);
    }

    /// NOTIFYs every subscription watching the bridge user `user_part` of
    /// `front_end` whose view changed to `p`.
    fn notify_watchers(&self, front_end: FrontEnd, user_part: &str, p: &Presence) {
        let now = unix_now();
        let changed = lock(&self.inner.uas.subs).user_changed(front_end, user_part, p);
        for s in changed {
            let contact = self.inner.uas.cfg.contact_udp.clone();
            let out = outbound::presence_notify(&s, &s.state(now), &self.inner.domain, &contact);
            let fe = self.clone();
            tokio::spawn(async move { fe.send_logged(out).await });
        }
    }

    async fn send_logged(&self, out: OutRequest) {
        match self.inner.client.send(&out, None).await {
            Ok(code) => debug!(method = out.method, code, "request answered"),
            Err(e) => info!(method = out.method, error = %e, "request not sent"),
        }
    }

    /// Drops expired registrations and ends expired subscriptions.
    async fn expire(&self, now: u64) {
        self.watches_due(now);
        if let Some(sessions) = self.inner.uas.msrp() {
            let byes = lock(sessions).expire(now);
            for bye in byes {
                self.send_logged(bye).await;
            }
        }
        let (notifies, unwatched) = lock(&self.inner.uas.relays).expire(now);
        self.send_all(notifies);
        for (watcher, presentity) in unwatched {
            self.unwatch_foreign(&watcher, &presentity);
        }
        let gone = lock(&self.inner.uas.registrar).purge(now);
        for aor in gone {
            // A publication outweighs the registration.
            if lock(&self.inner.uas.publications).presence(&aor).is_none() {
                self.sip_user_changed(aor, Presence::offline());
            }
        }
        for (aor, p) in self.inner.uas.expire_publications(now) {
            self.sip_user_changed(aor, p);
        }
        let ended = lock(&self.inner.uas.subs).expire(now);
        for s in ended {
            let contact = self.inner.uas.cfg.contact_udp.clone();
            let out = outbound::presence_notify(&s, &s.state(now), &self.inner.domain, &contact);
            let fe = self.clone();
            tokio::spawn(async move { fe.send_logged(out).await });
        }
    }

    /// Turns chat sessions on: MSRP connections are taken on `listener`,
    /// and INVITEs with an MSRP offer are answered with a path on it
    /// (`[msrp] host`, else the listener's address).
    pub fn start_msrp(
        &self,
        cfg: &crate::config::Msrp,
        listener: tokio::net::TcpListener,
        stop: CancellationToken,
    ) -> std::io::Result<SocketAddr> {
        let local = listener.local_addr()?;
        let host = if cfg.host.is_empty() {
            local.ip().to_string()
        } else {
            cfg.host.clone()
        };
        let sessions = Arc::new(std::sync::Mutex::new(Sessions::new(SessionConfig {
            host,
            port: local.port(),
            max_sessions: cfg.max_sessions,
            max_sessions_per_address: cfg.max_sessions_per_address,
            idle_timeout: cfg.idle_timeout.as_secs().max(1),
            limits: crate::msrp::Limits {
                max_header_bytes: cfg.max_header_bytes,
                max_chunk_body: cfg.max_chunk,
                max_message: cfg.max_message,
                max_chunks: cfg.max_chunks_per_message,
                max_messages: cfg.max_messages_in_progress,
            },
        })));
        let (byes, mut bye_rx) = tokio::sync::mpsc::unbounded_channel();
        let ctx = msrp_conn::Listener {
            sessions: Arc::clone(&sessions),
            bridge: Arc::clone(self.inner.uas.bridge()),
            handshake_timeout: cfg.handshake_timeout,
            response_timeout: self.inner.foreign_timeout,
            max_connections: cfg.max_sessions,
            max_per_address: cfg.max_sessions_per_address,
            byes,
            random,
        };
        let _ = self.inner.opener.set(session_out::Opener {
            listener: ctx.clone(),
            stop: stop.clone(),
            all_users: cfg.invite_all_users,
        });
        msrp_conn::serve(listener, ctx, stop.clone());
        let fe = self.clone();
        tokio::spawn(async move {
            loop {
                let bye = tokio::select! {
                    _ = stop.cancelled() => break,
                    b = bye_rx.recv() => match b { Some(b) => b, None => break },
                };
                fe.send_logged(bye).await;
            }
        });
        self.inner.uas.enable_msrp(sessions);
        info!(%local, "MSRP listening");
        Ok(local)
    }

    /// Sends `msg` as MSRP SEND in an open session of its recipient with
    /// its sender: true once the peer answered 200.
    async fn deliver_in_session(&self, msg: &SmsToIm) -> bool {
        let other = msg
            .envelope
            .as_ref()
            .map_or(msg.from.as_str(), |e| e.from_address.as_str());
        let body = msg.text.as_bytes().to_vec();
        self.send_in_session(&msg.to_user, other, "text/plain;charset=UTF-8", body)
            .await
    }

    /// Sends a body as MSRP SEND in an open session of `user` with `other`
    /// (a subscriber's address or another user's): true once the peer
    /// answered 200; false when there is no such session or it failed.
    async fn send_in_session(
        &self,
        user: &str,
        other: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> bool {
        let Some(sessions) = self.inner.uas.msrp() else {
            return false;
        };
        let Some(tx) = lock(sessions).for_reply(user, other) else {
            return false;
        };
        let (done, result) = tokio::sync::oneshot::channel();
        let im = OutgoingIm {
            content_type: content_type.into(),
            body,
            done,
        };
        if tx.send(im).await.is_err() {
            return false;
        }
        match result.await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                info!(%user, error = %e, "not taken in the chat session: as MESSAGE");
                false
            }
            Err(_) => false,
        }
    }

    /// Where `aor` is reached: its contacts, else the upstream proxy.
    fn targets(&self, aor: &str) -> (Vec<Target>, bool) {
        let contacts = lock(&self.inner.uas.registrar).contacts(aor, unix_now());
        if !contacts.is_empty() {
            let t = contacts
                .into_iter()
                .map(|b| Target {
                    request_uri: b.uri,
                    next_hop: (b.transport == Transport::Tcp)
                        .then(|| format!("sip:{};transport=tcp", b.source)),
                })
                .collect();
            return (t, false);
        }
        match &self.inner.upstream {
            Some((proxy, _)) => (
                vec![Target {
                    request_uri: aor.to_owned(),
                    next_hop: Some(proxy.clone()),
                }],
                true,
            ),
            None => (Vec::new(), false),
        }
    }

    /// Sends one request per target at once; the first 2xx wins.
    async fn fan_out(
        &self,
        aor: &str,
        build: impl Fn(&Target, Ids) -> OutRequest,
    ) -> DeliveryResult {
        let (targets, upstream) = self.targets(aor);
        if targets.is_empty() {
            return DeliveryResult::Retry("not registered".into());
        }
        let cred = upstream
            .then(|| self.inner.upstream.as_ref().and_then(|(_, c)| c.clone()))
            .flatten();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for t in &targets {
            let ids = Ids {
                call_id: format!("{}@smsbridge", random_text(16)),
                tag: random(),
            };
            let out = build(t, ids);
            let (fe, tx, cred) = (self.clone(), tx.clone(), cred.clone());
            tokio::spawn(async move {
                let r = match fe.inner.client.send(&out, cred.as_ref()).await {
                    Ok(code) => outbound::classify(code),
                    Err(e) => DeliveryResult::Retry(e),
                };
                let _ = tx.send(r);
            });
        }
        drop(tx);
        let mut results = Vec::new();
        while let Some(r) = rx.recv().await {
            if r == DeliveryResult::Delivered {
                return r;
            }
            results.push(r);
        }
        outbound::combine(&results)
    }
}

impl ImFrontEnd for SipFrontEnd {
    fn deliver(&self, msg: SmsToIm) -> BoxFuture<DeliveryResult> {
        let fe = self.clone();
        Box::pin(async move {
            // A chat session of this user with this sender takes it first.
            if fe.deliver_in_session(&msg).await {
                return DeliveryResult::Delivered;
            }
            // Else a session we open, if the user's device takes one.
            if let Some(r) = fe.deliver_by_session_invite(&msg).await {
                return r;
            }
            let domain = fe.inner.domain.clone();
            let aor = msg.to_user.clone();
            fe.fan_out(&aor, |t, ids| outbound::sms_message(&msg, &domain, t, ids))
                .await
        })
    }

    fn notify(&self, notice: DeliveryNotice) -> BoxFuture<DeliveryResult> {
        let fe = self.clone();
        Box::pin(async move {
            let domain = fe.inner.domain.clone();
            let aor = notice.to_user.clone();
            let new_id = random_text(16);
            // In the sender's chat session with the recipient while it is
            // open, as RCS clients expect; else as MESSAGE.
            let (from_uri, body) = outbound::imdn_body(&notice, &domain, &new_id);
            if fe
                .send_in_session(&aor, &from_uri, "message/cpim", body)
                .await
            {
                return DeliveryResult::Delivered;
            }
            fe.fan_out(&aor, |t, ids| {
                outbound::imdn_message(&notice, &domain, t, ids, &new_id)
            })
            .await
        })
    }

    /// An IMPS user's presence changed: SIP watchers of them get a NOTIFY
    /// with the new document.
    fn presence_changed(&self, user_part: &str, presence: &Presence) {
        self.notify_watchers(FrontEnd::Imps, user_part, presence);
    }

    /// A SIP user's publication, else their registration.
    fn user_presence(&self, user_part: &str) -> Option<Presence> {
        let aor = format!("sip:{user_part}@{}", self.inner.domain);
        Some(self.inner.uas.user_presence(&aor, unix_now()))
    }

    fn send_foreign(&self, msg: ForeignIm) -> BoxFuture<Result<(), Refusal>> {
        let fe = self.clone();
        Box::pin(async move { fe.message_foreign(msg).await })
    }

    fn watch_foreign(&self, watcher: String, presentity: String) -> BoxFuture<Result<(), Refusal>> {
        let fe = self.clone();
        Box::pin(async move { fe.start_watch(watcher, presentity).await })
    }

    fn foreign_presence(&self, update: ForeignPresence) {
        self.relay_news(&update);
    }

    fn unwatch_foreign(&self, watcher: &str, presentity: &str) {
        self.end_watch(watcher, presentity);
    }

    /// A watcher waits for a SIP user: their `presence.winfo`
    /// subscriptions hear it.
    fn watcher_pending(&self, presentity: &str, watcher: &str) {
        let news =
            self.inner
                .uas
                .watcher_news(presentity, watcher, WatchDecision::Pending, unix_now());
        self.send_all(news);
    }

    /// A presentity decided anew on a watcher: that watcher's SIP
    /// subscriptions take the decision (those allowed now after asking the
    /// bridge what the user shows), and the presentity's winfo watchers
    /// hear it.
    fn watch_changed(&self, change: &WatchChanged) {
        let now = unix_now();
        let (notifies, allowed) = self.inner.uas.decided(change, now);
        self.send_all(notifies);
        for s in allowed {
            let fe = self.clone();
            tokio::spawn(async move {
                let out = fe.inner.uas.reloaded(s, unix_now()).await;
                fe.send_logged(out).await;
            });
        }
    }

    fn online(&self, address: &str) -> Option<bool> {
        Some(
            self.registrations()
                .iter()
                .any(|(aor, contacts)| aor == address && !contacts.is_empty()),
        )
    }
}

/// The rsipstack request as our plain [`Request`].
fn to_request(tx: &Transaction) -> Request {
    let r = &tx.original;
    let (source, transport) = match &tx.connection {
        Some(c) => (
            c.get_remote_addr()
                .and_then(|a| a.get_socketaddr().ok())
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
            if c.is_reliable() {
                Transport::Tcp
            } else {
                Transport::Udp
            },
        ),
        None => (SocketAddr::from(([0, 0, 0, 0], 0)), Transport::Udp),
    };
    Request::new(r.clone(), source, transport)
}

/// Our [`Reply`] as an rsipstack response to the transaction's request.
/// The final answer to a non-INVITE request, sent on its transaction's
/// connection without rsipstack's state machine. `respond` would end the
/// transaction at once and leave a cleanup timer holding a copy of its key
/// for 64·T1, for each request answered (some 100–150 bytes each, 160,000 of
/// them at 5,000/s); the front end's [`Answered`](super::answered) already
/// gives a retransmission the same answer, through a new transaction.
async fn send_final(tx: &Transaction, response: rsipstack::sip::Response) -> Result<(), String> {
    let connection = tx
        .connection
        .as_ref()
        .ok_or_else(|| format!("no connection for {}", tx.key))?;
    connection
        .send(response.into(), tx.destination.as_ref())
        .await
        .map_err(|e| e.to_string())
}

fn to_response(tx: &Transaction, reply: Reply) -> rsipstack::sip::Response {
    let body = (!reply.body.is_empty()).then_some(reply.body);
    let mut resp =
        tx.endpoint_inner
            .make_response(&tx.original, StatusCode::from(reply.code), body);
    // A From tag the screen added to an RFC 2543 request goes again: the
    // response's From is the request's as the client sent it.
    if let Ok(call_id) = resp.call_id_header().map(|c| c.value().to_owned())
        && let Ok(from) = resp.from_header_mut()
    {
        let added = format!(";tag={}", super::screen::rfc2543_from_tag(&call_id));
        if let Some(original) = from.value().strip_suffix(added.as_str()) {
            *from = rsipstack::sip::headers::From::new(original.to_owned());
        }
    }
    if reply.code >= 200 {
        let tag = reply.to_tag.unwrap_or_else(random);
        // The request's To tag stays, however it was written: never a second.
        if let Ok(to) = resp.to_header_mut()
            && !matches!(to.tag(), Ok(Some(_)))
        {
            let value = format!("{};tag={tag}", to.value());
            *to = rsipstack::sip::headers::To::new(value);
        }
    }
    for (n, v) in reply.headers {
        resp.headers.push(make_header(&n, v));
    }
    resp
}
