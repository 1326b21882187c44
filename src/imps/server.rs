//! One CSP request in, one CSP answer out: the session checks, Login (password
//! and the 4-way nonce/digest schema), ClientCapability, Service, KeepAlive,
//! Polling and Logout, and the dispatch to the messaging, list and presence
//! primitives. No HTTP here (the axum driver is `http.rs`); the bridge is
//! called through [`ImApi`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::csp::{self, Message, Mode, Outgoing, code};
use super::guard::LoginGuard;
use super::session::{CirAttached, DeliveryMethod, Limits, OpenError, SessionError, Sessions};
use crate::bridge::api::{ImApi, LoginProof, Refusal, SubHandling, Target};
use crate::bridge::user_part;
use crate::xml::Element;

/// What the server is configured with.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The domain of the UserIDs the server writes (`wv:+4917…@<domain>`).
    pub domain: String,
    /// Session limits.
    pub limits: Limits,
    /// ServerPollMin told to clients (seconds).
    pub poll_min: u32,
    /// Where the standalone TCP CIR channel listens, offered to clients that
    /// support it (`None`: not offered; they poll).
    pub cir_tcp: Option<SocketAddr>,
}

/// An answer: the HTTP status and the CSP body (empty where the binding allows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub http: u16,
    /// CSP XML, or nothing.
    pub body: Vec<u8>,
}

/// The longest UserID accepted at Login.
pub(crate) const MAX_USER_ID: usize = 256;

/// Makes random tokens (session ids, nonces, message ids).
pub type Random = Arc<dyn Fn() -> String + Send + Sync>;

/// The IMPS server core.
pub struct Server {
    pub(super) cfg: ServerConfig,
    pub(super) sessions: Mutex<Sessions>,
    /// Presence kept beyond the sessions (`presence.rs`).
    pub(super) presence: Mutex<super::presence::PresenceBook>,
    guard: Mutex<LoginGuard>,
    pub(super) bridge: Arc<dyn ImApi>,
    pub(super) random: Random,
    /// The HTTP listener's address, once bound (for HTTP CIR URLs).
    http_address: OnceLock<SocketAddr>,
    /// Requests read and not yet answered, and the most allowed
    /// (`[imps] max_in_flight`).
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// Requests in flight unless the configuration says otherwise.
const MAX_IN_FLIGHT: usize = 256;
/// What a request beyond the bound is told to wait.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(1);

/// One request counted in flight until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The path under which standalone HTTP CIR URLs are served.
pub(super) const CIR_HTTP_PATH: &str = "/cir/";

/// The session a request came in, as handlers need it.
pub(super) struct Ctx {
    pub(super) session_id: String,
    pub(super) user: String,
    pub(super) user_id: String,
    pub(super) now: Instant,
}

impl Server {
    /// A server over `bridge`; `random` must give ≥128 random bits per call.
    pub fn new(cfg: ServerConfig, bridge: Arc<dyn ImApi>, random: Random) -> Arc<Self> {
        let sessions = Mutex::new(Sessions::new(cfg.limits.clone()));
        Arc::new(Self {
            cfg,
            sessions,
            presence: Mutex::default(),
            guard: Mutex::new(LoginGuard::default()),
            bridge,
            random,
            http_address: OnceLock::new(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(MAX_IN_FLIGHT),
        })
    }

    /// At most `n` requests (at least 1) are worked on at once; beyond that a
    /// request is answered at once with Result 503 (busy, try again).
    pub fn set_max_in_flight(&self, n: usize) {
        self.max_in_flight.store(n.max(1), Ordering::SeqCst);
    }

    /// Counts a request in flight, or `None` when the bound is reached.
    fn enter(&self) -> Option<InFlight<'_>> {
        let max = self.max_in_flight.load(Ordering::SeqCst);
        let before = self.in_flight.fetch_add(1, Ordering::SeqCst);
        let counted = InFlight(&self.in_flight);
        (before < max).then_some(counted)
    }

    pub(super) fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Attaches a CIR channel to session `id`, for a `HELO` from `client`.
    pub fn attach_cir(&self, id: &str, client: IpAddr) -> Result<CirAttached, SessionError> {
        self.sessions().attach_cir(id, client)
    }

    /// 4-way Login nonces pending (for tests and status).
    pub fn pending_nonces(&self) -> usize {
        self.sessions().pending_nonces()
    }

    fn guard(&self) -> MutexGuard<'_, LoginGuard> {
        self.guard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Answers one HTTP body from a client on this host.
    pub async fn handle(&self, body: &[u8], now: Instant) -> Reply {
        self.handle_from(body, now, IpAddr::V4(Ipv4Addr::LOCALHOST))
            .await
    }

    /// Answers one HTTP body from a client at `client`.
    pub async fn handle_from(&self, body: &[u8], now: Instant, client: IpAddr) -> Reply {
        let parsed = csp::parse(body);
        // Answered in the client's CSP version.
        let version = parsed.as_ref().map_or(csp::Version::V13, |m| m.version);
        let body = self
            .respond(parsed, now, client)
            .await
            .map(|o| csp::encode_in(&o, version))
            .unwrap_or_default();
        Reply { http: 200, body }
    }

    /// Answers one CSP message, however it was encoded (XML or WBXML), from
    /// a client at `client`: the message to send back, or nothing (an empty
    /// HTTP body).
    pub async fn respond(
        &self,
        parsed: Result<Message, csp::CspError>,
        now: Instant,
        client: IpAddr,
    ) -> Option<Outgoing> {
        let msg = match parsed {
            Ok(m) => m,
            Err(e) => {
                tracing::info!("IMPS request refused: {e}");
                return self.answer(None, None, csp::status(code::BAD_REQUEST, &e.to_string()));
            }
        };
        let tid = msg.transaction_id.clone();
        let Some(_in_flight) = self.enter() else {
            let busy = Refusal::Busy {
                retry_after: BUSY_RETRY_AFTER,
            };
            tracing::debug!("IMPS request beyond max_in_flight: busy");
            let status = csp::status(refusal_code(&busy), &busy.to_string());
            return self.answer(msg.session_id.clone(), tid, status);
        };
        if msg.primitive.name == "Login-Request" {
            return self.login(&msg, now, client).await;
        }
        let ctx = match self.check_session(&msg, now, client) {
            Ok(c) => c,
            Err(e) => {
                let (c, why) = match e {
                    SessionError::Expired => (code::SESSION_EXPIRED, "session expired"),
                    SessionError::Unknown => (code::INVALID_SESSION, "invalid session"),
                };
                return self.answer(msg.session_id.clone(), tid, csp::status(c, why));
            }
        };
        if msg.mode == Mode::Response {
            // The client's answer to a NewMessage, DeliveryReport-Request,
            // PresenceNotification-Request or PresenceAuth-Request: nothing
            // more to say (empty body). A client that answers the
            // PresenceAuth-Request with its PresenceAuth-User has decided.
            // A client that answers a NewMessage with MessageDelivered has
            // the message.
            match msg.primitive.name.as_str() {
                "PresenceAuth-User" => {
                    let _ = self.presence_auth_user(&ctx, &msg.primitive).await;
                }
                "MessageDelivered" => {
                    let _ = self.message_delivered(&ctx, &msg.primitive).await;
                }
                // So does one that answers it Status 200 (the CSP 1.1 way).
                "Status" => {
                    self.status_answered(&ctx, tid.as_deref(), &msg.primitive)
                        .await;
                }
                _ => {}
            }
            return None;
        }
        let p = &msg.primitive;
        let primitive = match p.name.as_str() {
            "Polling-Request" => return self.poll(&ctx),
            "KeepAlive-Request" => self.keep_alive(&ctx, p),
            "Logout-Request" => self.logout(&ctx),
            "ClientCapability-Request" => self.capability(&ctx, p),
            "Service-Request" => service(p),
            "MessageDelivered" => self.message_delivered(&ctx, p).await,
            "GetMessage-Request" => self.get_message(&ctx, p).await,
            "SetDeliveryMethod-Request" => self.set_delivery_method(&ctx, p),
            "SendMessage-Request" => self.send_message(&ctx, p).await,
            "GetList-Request" => self.get_list(&ctx).await,
            "CreateList-Request" => self.create_list(&ctx, p).await,
            "DeleteList-Request" => self.delete_list(&ctx, p).await,
            "ListManage-Request" => self.list_manage(&ctx, p).await,
            "BlockEntity-Request" => self.block_entity(&ctx, p).await,
            "GetBlockedList-Request" => self.get_blocked(&ctx).await,
            "GetPresence-Request" => self.get_presence(&ctx, p).await,
            "SubscribePresence-Request" => self.subscribe(&ctx, p).await,
            "UnsubscribePresence-Request" => self.unsubscribe(&ctx, p),
            "UpdatePresence-Request" => self.update_presence(&ctx, p),
            "PresenceAuth-User" => self.presence_auth_user(&ctx, p).await,
            "CancelAuth-Request" => self.decide(&ctx, p, SubHandling::Block).await,
            "CreateAttributeList-Request" => self.grant_attributes(&ctx, p).await,
            "DeleteAttributeList-Request" => self.revoke_attributes(&ctx, p).await,
            // CSP 1.3 removed the status query (and cannot write its answer).
            "GetReactiveAuthStatus-Request" if msg.version == csp::Version::V13 => csp::status(
                code::NOT_SUPPORTED,
                "CSP 1.3 has no GetReactiveAuthStatus; waiting watchers come as Notification-Request",
            ),
            "GetReactiveAuthStatus-Request" => self.reactive_auth_status(&ctx, p).await,
            other => csp::status(
                code::NOT_SUPPORTED,
                &format!("{other} is not supported by this server"),
            ),
        };
        let session = (p.name != "Logout-Request").then(|| ctx.session_id.clone());
        self.answer(session, tid, primitive)
    }

    /// A response, with Poll T when something waits for the session.
    pub(super) fn answer(
        &self,
        session_id: Option<String>,
        transaction_id: Option<String>,
        primitive: Element,
    ) -> Option<Outgoing> {
        let poll = session_id
            .as_deref()
            .is_some_and(|id| self.sessions().has_queued(id));
        Some(Outgoing {
            session_id,
            transaction_id,
            mode: Mode::Response,
            poll,
            primitive,
        })
    }

    fn check_session(
        &self,
        msg: &Message,
        now: Instant,
        client: IpAddr,
    ) -> Result<Ctx, SessionError> {
        let id = msg.session_id.as_deref().ok_or(SessionError::Unknown)?;
        let mut sessions = self.sessions();
        if let Err(e) = sessions.bound(id, client) {
            tracing::warn!(%client, "IMPS SessionID used from another address than its Login: refused");
            return Err(e);
        }
        let s = sessions.touch(now, id)?;
        Ok(Ctx {
            session_id: s.id.clone(),
            user: s.user.clone(),
            user_id: s.user_id.clone(),
            now,
        })
    }

    async fn login(&self, msg: &Message, now: Instant, client: IpAddr) -> Option<Outgoing> {
        let p = &msg.primitive;
        let tid = msg.transaction_id.clone();
        let client_id = p.child("ClientID").cloned();
        let respond = |primitive: Element| self.answer(None, tid.clone(), primitive);
        let login_response = |result: Element, extra: Vec<Element>| {
            Element::new("Login-Response")
                .with_all(client_id.clone())
                .with(result)
                .with_all(extra)
        };
        let Some(user_id) = p.text_at(&["UserID"]).filter(|u| !u.is_empty()) else {
            return respond(login_response(
                csp::result(code::BAD_REQUEST, "no UserID"),
                vec![],
            ));
        };
        if user_id.len() > MAX_USER_ID {
            return respond(login_response(
                csp::result(
                    code::BAD_REQUEST,
                    &format!("UserID longer than {MAX_USER_ID} bytes"),
                ),
                vec![],
            ));
        }
        // Throttled before any work: nothing is hashed or remembered. An
        // admitted attempt counts as failed until it succeeds.
        if let Err(wait) = self.guard().admit(now, user_id, client) {
            let secs = wait.as_secs().max(1);
            tracing::warn!(%user_id, %client, "IMPS Login throttled for {secs}s after failed attempts");
            return respond(login_response(
                csp::result(
                    code::UNAVAILABLE,
                    &format!("too many failed logins; try again in {secs}s"),
                ),
                vec![],
            ));
        }
        let proof = if let Some(pw) = p.child("Password") {
            LoginProof::Password(pw.text.clone())
        } else if let Some(d) = p.text_at(&["DigestBytes"]) {
            let Some(nonce) = self.sessions().take_nonce(now, user_id, client) else {
                return respond(login_response(
                    csp::result(
                        code::INVALID_PASSWORD,
                        "no valid nonce; start the Login again",
                    ),
                    vec![],
                ));
            };
            LoginProof::Md5Digest {
                nonce,
                digest: d.to_owned(),
            }
        } else if p.child("DigestSchema").is_some() {
            let offered = p.children_named("DigestSchema");
            if !offered
                .into_iter()
                .any(|s| s.text.trim().eq_ignore_ascii_case("MD5"))
            {
                return respond(login_response(
                    csp::result(
                        code::NO_DIGEST_SCHEMA,
                        "only the MD5 digest schema is supported",
                    ),
                    vec![],
                ));
            }
            let nonce = (self.random)();
            let issued = self
                .sessions()
                .issue_nonce(now, user_id, client, nonce.clone());
            if issued.is_err() {
                tracing::warn!(%client, "IMPS Login: too many 4-way logins pending");
                return respond(login_response(
                    csp::result(code::UNAVAILABLE, "too many logins in progress"),
                    vec![],
                ));
            }
            return respond(login_response(
                csp::result(code::UNAUTHORIZED, "Further authorization required"),
                vec![
                    Element::text("Nonce", &nonce),
                    Element::text("DigestSchema", "MD5"),
                ],
            ));
        } else {
            return respond(login_response(
                csp::result(code::BAD_REQUEST, "Password or DigestSchema required"),
                vec![],
            ));
        };
        let user = match self.bridge.login(user_id.to_owned(), proof).await {
            Ok(u) => u,
            Err(r) => {
                let c = refusal_code(&r);
                tracing::info!(%user_id, %client, "IMPS Login refused: {r}");
                return respond(login_response(csp::result(c, &r.to_string()), vec![]));
            }
        };
        self.guard().succeeded(user_id, client);
        let ttl = p
            .text_at(&["TimeToLive"])
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_secs);
        let session_id = (self.random)();
        let cir_token = (self.random)();
        let keep_alive = {
            let mut sessions = self.sessions();
            let ka = sessions.grant(ttl);
            let wv = user.imps_id.clone().unwrap_or_else(|| user_id.to_owned());
            let opened = sessions.open(
                now,
                session_id.clone(),
                user.address.clone(),
                wv,
                ka,
                client,
            );
            match opened {
                // Named by the CIRs of this session.
                Ok(s) => {
                    s.cookie = p.text_at(&["SessionCookie"]).map(str::to_owned);
                    s.version = msg.version;
                    s.cir_token = cir_token;
                }
                Err(e) => {
                    let why = match e {
                        OpenError::Full => "too many sessions",
                        OpenError::UserFull => {
                            "too many sessions for this user; log out of another"
                        }
                    };
                    return respond(login_response(csp::result(code::UNAVAILABLE, why), vec![]));
                }
            }
            ka
        };
        tracing::info!(user = %user.address, "IMPS Login");
        self.ask_pending_at_login(&session_id, &user.address).await;
        self.bridge.user_online(user.address.clone());
        self.presence_changed(&user.address);
        respond(login_response(
            csp::result(code::OK, ""),
            vec![
                Element::text("SessionID", &session_id),
                Element::text("KeepAliveTime", &keep_alive.as_secs().to_string()),
                Element::text("CapabilityRequest", "T"),
            ],
        ))
    }

    fn poll(&self, ctx: &Ctx) -> Option<Outgoing> {
        let next = {
            let mut sessions = self.sessions();
            sessions
                .touch(ctx.now, &ctx.session_id)
                .ok()
                .and_then(|s| s.queue.pop_front().map(|p| (p, !s.queue.is_empty())))
        };
        next.map(|(pending, more)| Outgoing {
            session_id: Some(ctx.session_id.clone()),
            transaction_id: Some(pending.transaction_id),
            mode: Mode::Request,
            poll: more,
            primitive: pending.primitive,
        })
    }

    fn keep_alive(&self, ctx: &Ctx, p: &Element) -> Element {
        let ttl = p
            .text_at(&["TimeToLive"])
            .map(|t| t.parse::<u64>().map(Duration::from_secs));
        let mut sessions = self.sessions();
        let granted = match ttl {
            Some(Err(_)) => {
                return Element::new("KeepAlive-Response").with(csp::result(
                    code::BAD_PARAMETER,
                    "TimeToLive is not a number",
                ));
            }
            Some(Ok(t)) => sessions.grant(Some(t)),
            None => sessions.grant(None),
        };
        if let Ok(s) = sessions.touch(ctx.now, &ctx.session_id) {
            s.keep_alive = granted;
        }
        Element::new("KeepAlive-Response")
            .with(csp::result(code::OK, ""))
            .with(Element::text(
                "KeepAliveTime",
                &granted.as_secs().to_string(),
            ))
    }

    fn logout(&self, ctx: &Ctx) -> Element {
        let closed = self.sessions().close(&ctx.session_id);
        tracing::info!(user = %ctx.user, "IMPS Logout");
        if let Some(s) = &closed {
            self.session_ended(s);
        }
        self.user_gone(&ctx.user, &ctx.user_id);
        self.presence_changed(&ctx.user);
        csp::status(code::OK, "")
    }

    /// Ends sessions idle past their KeepAliveTime; the driver calls this on a timer.
    pub fn expire(&self, now: Instant) {
        let ended = self.sessions().expire(now);
        for s in ended {
            tracing::info!(user = %s.user, "IMPS session expired");
            self.session_ended(&s);
            self.user_gone(&s.user, &s.user_id);
            self.presence_changed(&s.user);
        }
    }

    fn capability(&self, ctx: &Ctx, p: &Element) -> Element {
        let asked = p.at(&["CapabilityList"]);
        let client_type = asked
            .and_then(|c| c.text_at(&["ClientType"]))
            .unwrap_or("MOBILE_PHONE");
        // Push unless the client asks for Notify/Get.
        let delivery = asked
            .and_then(|c| c.text_at(&["InitialDeliveryMethod"]))
            .map_or(DeliveryMethod::Push, DeliveryMethod::parse);
        if let Ok(s) = self.sessions().touch(ctx.now, &ctx.session_id) {
            s.delivery = delivery;
        }
        Element::new("ClientCapability-Response")
            .with_all(p.child("ClientID").cloned())
            .with(
                Element::new("AgreedCapabilityList")
                    .with(Element::text("ClientType", client_type))
                    .with(Element::text("InitialDeliveryMethod", delivery.as_str()))
                    .with(Element::text("AcceptedContentType", "text/plain"))
                    .with(Element::text("AcceptedTransferEncoding", "None"))
                    .with(Element::text(
                        "AcceptedContentLength",
                        &crate::xml::MAX_INPUT.to_string(),
                    ))
                    .with(Element::text("MultiTrans", "1"))
                    .with(Element::text(
                        "ParserSize",
                        &crate::xml::MAX_INPUT.to_string(),
                    ))
                    .with(Element::text("SupportedBearer", "HTTP"))
                    .with(Element::text(
                        "ServerPollMin",
                        &self.cfg.poll_min.to_string(),
                    ))
                    .with_all(self.cir_offer(ctx, asked)),
            )
    }

    /// The CIR methods agreed, of those the client offered: standalone TCP
    /// if its channel listens, with its address, and standalone HTTP if the
    /// IMPS listener has an address clients can reach, with the session's
    /// CIR URL; none: the client polls.
    fn cir_offer(&self, ctx: &Ctx, asked: Option<&Element>) -> Vec<Element> {
        let offered = |m: &str| {
            asked.is_some_and(|a| {
                a.children_named("SupportedCIRMethod")
                    .any(|c| c.text.trim().eq_ignore_ascii_case(m))
            })
        };
        let tcp = self.cfg.cir_tcp.filter(|_| offered("STCP"));
        let http = self
            .http_address
            .get()
            .filter(|a| !a.ip().is_unspecified() && offered("SHTTP"))
            .and_then(|a| {
                let token = self
                    .sessions()
                    .touch(ctx.now, &ctx.session_id)
                    .ok()?
                    .cir_token
                    .clone();
                Some(format!("http://{a}{CIR_HTTP_PATH}{token}"))
            });
        let mut out = Vec::new();
        // The methods first, then their addresses, as the DTD orders them.
        if tcp.is_some() {
            out.push(Element::text("SupportedCIRMethod", "STCP"));
        }
        if http.is_some() {
            out.push(Element::text("SupportedCIRMethod", "SHTTP"));
        }
        if let Some(addr) = tcp {
            out.push(Element::text("TCPAddress", &addr.ip().to_string()));
            out.push(Element::text("TCPPort", &addr.port().to_string()));
        }
        if let Some(url) = http {
            out.push(Element::text("CIRHTTPAddress", &url));
        }
        out
    }

    /// Tells the server where its HTTP listener is, for the standalone HTTP
    /// CIR URLs it gives clients (the first call counts).
    pub fn set_http_address(&self, addr: SocketAddr) {
        let _ = self.http_address.set(addr);
    }

    /// Answers a GET of a standalone HTTP CIR URL (its last part is `token`)
    /// from `client`: whether something waits for that session.
    pub fn cir_http(&self, token: &str, client: IpAddr) -> Result<bool, SessionError> {
        self.sessions().cir_http(token, client)
    }

    /// `wv:<msisdn or user part>@<domain>` for a target.
    pub(super) fn wv_id(&self, t: &Target) -> String {
        let part = match t {
            Target::Subscriber { msisdn, .. } => msisdn.as_str(),
            Target::User { user_part, .. } => user_part.as_str(),
            // The foreign address keeps its own domain.
            Target::Foreign { address, .. } => {
                let rest = address.split_once(':').map_or(address.as_str(), |(_, r)| r);
                return format!("wv:{rest}");
            }
        };
        format!("wv:{part}@{}", self.cfg.domain)
    }

    /// `wv:<sender>@<domain>` for the sender of a delivered SMS or IM; a
    /// user of another domain (`sip:jane@otherdomain.test`) keeps their own
    /// domain (`wv:jane@otherdomain.test`).
    pub(super) fn wv_of(&self, from: &str) -> String {
        if from.starts_with("wv:") {
            from.to_owned()
        } else if let Some(rest) = from.strip_prefix("sip:").filter(|r| r.contains('@')) {
            format!("wv:{rest}")
        } else {
            format!("wv:{}@{}", user_part(from), self.cfg.domain)
        }
    }

    /// A fresh message id.
    pub(super) fn message_id(&self) -> String {
        format!("m{}", (self.random)())
    }
}

fn service(p: &Element) -> Element {
    let feat = |name: &str, funcs: &[&str]| {
        Element::new(name).with_all(funcs.iter().map(|f| Element::new(f)))
    };
    Element::new("Service-Response")
        .with_all(p.child("ClientID").cloned())
        .with(csp::result(code::OK, ""))
        .with(
            Element::new("AllFunctions").with(
                Element::new("WVCSPFeat")
                    .with(feat("FundamentalFeat", &["ServiceFunc", "InviteFunc"]))
                    .with(feat(
                        "PresenceFeat",
                        &[
                            "ContListFunc",
                            "PresenceAuthFunc",
                            "PresenceDeliverFunc",
                            "AttListFunc",
                        ],
                    ))
                    .with(feat(
                        "IMFeat",
                        &["IMSendFunc", "IMReceiveFunc", "IMAuthFunc"],
                    )),
            ),
        )
}

/// A refusal of the bridge as a CSP Result code: the one table.
pub(super) fn refusal_code(r: &Refusal) -> u16 {
    match r {
        Refusal::UnknownUser(_) | Refusal::UnknownRecipient(_) | Refusal::NoRoute(_) => {
            code::UNKNOWN_USER
        }
        Refusal::Blocked(_) | Refusal::BlockedByRecipient(_) => code::BLOCKED,
        Refusal::SmsNotAllowed(_)
        | Refusal::OptedOut(_)
        | Refusal::NotInContacts(_)
        | Refusal::DailyCap(_)
        | Refusal::AnonymityForbidden
        | Refusal::ForeignNotAllowed(_) => code::FORBIDDEN,
        Refusal::BadCredentials | Refusal::NoImpsAccount(_) => code::INVALID_PASSWORD,
        Refusal::UnknownList(_) => code::NO_SUCH_LIST,
        Refusal::TooLong { .. } => code::REJECTED,
        Refusal::QueueFull { .. } => code::QUEUE_FULL,
        Refusal::RateLimited { .. }
        | Refusal::NoModem { .. }
        | Refusal::StoreBusy { .. }
        | Refusal::Busy { .. }
        | Refusal::Internal { .. } => code::UNAVAILABLE,
        Refusal::EmptyMessage | Refusal::Invalid(_) => code::BAD_REQUEST,
    }
}

#[cfg(test)]
mod admission_tests {
    use super::*;
    use crate::imps::fuzz::Nobody;

    const POLL: &str = "<?xml version=\"1.0\"?><WV-CSP-Message xmlns=\"http://www.openmobilealliance.org/DTD/WV-CSP1.3\"><Session><SessionDescriptor><SessionType>Inband</SessionType><SessionID>s1</SessionID></SessionDescriptor><Transaction><TransactionDescriptor><TransactionMode>Request</TransactionMode><TransactionID>t1</TransactionID></TransactionDescriptor><TransactionContent xmlns=\"http://www.openmobilealliance.org/DTD/WV-TRC1.3\"><Polling-Request/></TransactionContent></Transaction></Session></WV-CSP-Message>";

    #[tokio::test]
    async fn a_request_beyond_the_bound_is_answered_busy_at_once() {
        let cfg = ServerConfig {
            domain: "sms.test".into(),
            limits: Limits::default(),
            poll_min: 5,
            cir_tcp: None,
        };
        let server = Server::new(cfg, Arc::new(Nobody), Arc::new(|| "r".into()));
        server.set_max_in_flight(1);
        let held = server.enter();
        assert!(held.is_some());
        let busy = server.handle(POLL.as_bytes(), Instant::now()).await;
        let text = String::from_utf8(busy.body).unwrap();
        assert!(text.contains("<Code>503</Code>"), "{text}");
        assert!(text.contains("busy, try again in 1s"), "{text}");
        assert!(text.contains("<TransactionID>t1</TransactionID>"), "{text}");
        // Once the one in flight is answered, the next is served (an unknown
        // session, here).
        drop(held);
        let served = server.handle(POLL.as_bytes(), Instant::now()).await;
        let text = String::from_utf8(served.body).unwrap();
        assert!(text.contains("<Code>604</Code>"), "{text}");
    }
}
