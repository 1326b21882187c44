//! The requests we serve: one [`Request`] in, one [`Reply`] and follow-ups
//! out. Authentication (digest or trusted peer), then MESSAGE → bridge,
//! REGISTER → registrar, SUBSCRIBE → presence, PUBLISH → publications. The
//! only I/O is the bridge call; the glue sends the reply and runs the
//! follow-ups after it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::body::{self, ACCEPT};
use super::digest::{self, Nonces, Verdict};
use super::message::{self, Mapped};
use super::presence::{self, Subscription, Subscriptions};
use super::publish::{self, Publications, Publish, PublishError};
use super::registrar::{Register, RegisterError, Registrar};
use super::relay::Relays;
use super::watch::{self, Watches};
use super::winfo;
use super::wire::{Reply, Request, Transport, Uri, parse_name_addr};
use crate::bridge::api::{
    BridgeApi, ForeignPresence, FrontEnd, Refusal, Sender, Verified, WatchChanged, WatchDecision,
};
use crate::domains::{Classified, Domains};
use crate::presence::Presence;
use rsipstack::sip::Method;

/// Methods we serve, for `Allow`.
pub(crate) const ALLOW: &str = "MESSAGE, OPTIONS, REGISTER, SUBSCRIBE, CANCEL, PUBLISH";
/// The same with chat sessions (`[msrp]`) on.
pub(crate) const ALLOW_WITH_SESSIONS: &str =
    "MESSAGE, OPTIONS, REGISTER, SUBSCRIBE, CANCEL, PUBLISH, INVITE, ACK, BYE, UPDATE";
/// Event packages we notify, for `Allow-Events`.
pub(crate) const ALLOW_EVENTS: &str = "presence, presence.winfo";
/// Seconds a draining front end asks clients to wait.
const DRAINING_RETRY_AFTER: &str = "5";

/// What the handler needs to know.
#[derive(Debug, Clone)]
pub(crate) struct UasConfig {
    pub(crate) realm: String,
    pub(crate) domain: String,
    pub(crate) trusted: Vec<IpAddr>,
    /// Our Contact URI per transport (for SUBSCRIBE dialogs).
    pub(crate) contact_udp: String,
    pub(crate) contact_tcp: String,
    /// Accept only digest `qop=auth-int` (the body covered too).
    pub(crate) require_auth_int: bool,
    /// Which hosts are ours, and whose servers may speak for other domains.
    pub(crate) domains: Arc<Domains>,
}

impl UasConfig {
    pub(crate) fn contact(&self, t: Transport) -> &str {
        match t {
            Transport::Udp => &self.contact_udp,
            Transport::Tcp => &self.contact_tcp,
        }
    }
}

/// Work after the reply has left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Followup {
    /// Send a NOTIFY for this subscription (its state at send time).
    Notify(Box<Subscription>),
    /// Tell the bridge a user registered.
    UserOnline(String),
    /// The user's presence changed (registered or not, published): their
    /// watchers here and on the other front end hear of it.
    Presence(String, Presence),
    /// News of a presentity of another domain for the bridge.
    Foreign(ForeignPresence),
    /// Send this request (a NOTIFY in a relayed dialog).
    Send(Box<super::outbound::OutRequest>),
    /// Watch (watcher, presentity) in another domain for a relayed dialog.
    WatchForeign(String, String),
    /// No relayed dialog wants that watch any more.
    UnwatchForeign(String, String),
}

/// The reply and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handled {
    pub(crate) reply: Reply,
    pub(crate) followups: Vec<Followup>,
}

impl From<Reply> for Handled {
    fn from(reply: Reply) -> Self {
        Self {
            reply,
            followups: Vec::new(),
        }
    }
}

/// The request handler.
pub(crate) struct Uas {
    pub(crate) cfg: UasConfig,
    bridge: Arc<dyn BridgeApi>,
    nonces: Nonces,
    pub(crate) registrar: Mutex<Registrar>,
    pub(crate) subs: Mutex<Subscriptions>,
    pub(crate) publications: Mutex<Publications>,
    /// Our subscriptions to presentities of other domains.
    pub(crate) watches: Mutex<Watches>,
    /// Local watchers' subscriptions to other domains, relayed.
    pub(crate) relays: Mutex<Relays>,
    draining: AtomicBool,
    random: fn() -> String,
    /// Chat sessions (`invite.rs`), once `[msrp]` is on.
    msrp: std::sync::OnceLock<Arc<Mutex<super::invite::Sessions>>>,
}

/// Locks a mutex; a panic elsewhere must not take the front end down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The address of record of a `sip:` URI: `sip:user@host`, host lower-cased,
/// no port or parameters. An IP-literal host means us: it becomes `domain`,
/// so a softphone configured with the bridge's address finds its account.
pub(crate) fn canonical_aor(u: &Uri, domain: &str) -> Option<String> {
    if u.scheme != "sip" && u.scheme != "sips" {
        return None;
    }
    let user = u.user.as_deref()?;
    let host = if u.host_is_ip() {
        domain.to_ascii_lowercase()
    } else {
        u.host.clone()
    };
    Some(format!("sip:{user}@{host}"))
}

impl Uas {
    /// `secret` keys the nonces; `random` makes tags.
    pub(crate) fn new(
        cfg: UasConfig,
        bridge: Arc<dyn BridgeApi>,
        secret: String,
        random: fn() -> String,
    ) -> Self {
        let nonces = Nonces::new(secret, 300).requiring_auth_int(cfg.require_auth_int);
        Self {
            cfg,
            bridge,
            nonces,
            registrar: Mutex::new(Registrar::default()),
            subs: Mutex::new(Subscriptions::new(10_000)),
            publications: Mutex::new(Publications::default()),
            watches: Mutex::new(Watches::new(watch::DEFAULT_CAP)),
            relays: Mutex::new(Relays::new(watch::DEFAULT_CAP)),
            draining: AtomicBool::new(false),
            random,
            msrp: std::sync::OnceLock::new(),
        }
    }

    /// Turns chat sessions on (once).
    pub(crate) fn enable_msrp(&self, sessions: Arc<Mutex<super::invite::Sessions>>) {
        let _ = self.msrp.set(sessions);
    }

    /// The chat sessions, if `[msrp]` is on.
    pub(crate) fn msrp(&self) -> Option<&Arc<Mutex<super::invite::Sessions>>> {
        self.msrp.get()
    }

    pub(crate) fn random_fn(&self) -> fn() -> String {
        self.random
    }

    fn allow(&self) -> &'static str {
        if self.msrp.get().is_some() {
            ALLOW_WITH_SESSIONS
        } else {
            ALLOW
        }
    }

    pub(crate) fn set_draining(&self, yes: bool) {
        self.draining.store(yes, Ordering::SeqCst);
    }

    pub(crate) fn bridge(&self) -> &Arc<dyn BridgeApi> {
        &self.bridge
    }

    /// Handles one request at `now` (Unix seconds).
    pub(crate) async fn handle(&self, req: &Request, now: u64) -> Handled {
        if self.draining.load(Ordering::SeqCst) {
            return Reply::new(503)
                .with("Retry-After", DRAINING_RETRY_AFTER)
                .warning("shutting down")
                .into();
        }
        // RFC 3261 §8.2: the method first (§8.2.1), then Require (§8.2.2),
        // then the content. A UAS that does not do calls answers an INVITE
        // 405 whatever its body or Require (RFC 4475 §3.3.6, §3.3.15).
        // An unsupported Request-URI scheme was answered 416 by the screen.
        let serve = match req.method() {
            Method::Options
            | Method::Message
            | Method::Register
            | Method::Subscribe
            | Method::Publish
            | Method::Notify => req.method(),
            // Chat sessions (`invite.rs`), when `[msrp]` is on.
            Method::Invite | Method::Bye | Method::Update if self.msrp.get().is_some() => {
                req.method()
            }
            // ACK and CANCEL never reach here: rsipstack's transactions take
            // them. Methods it does not know were answered 501 by the screen.
            Method::Ack | Method::Cancel => {
                return Reply::new(501).with("Allow", self.allow()).into();
            }
            _ => return Reply::new(405).with("Allow", self.allow()).into(),
        };
        let mut require = req.header_list("Require");
        // Session timers (RFC 4028) are ours with chat sessions.
        if matches!(serve, Method::Invite | Method::Update) {
            require.retain(|o| !o.eq_ignore_ascii_case("timer"));
        }
        if !require.is_empty() {
            return Reply::new(420)
                .with("Unsupported", require.join(", "))
                .into();
        }
        match serve {
            Method::Message => self.message(req, now).await,
            Method::Register => self.register(req, now).await,
            Method::Subscribe => self.subscribe(req, now).await,
            Method::Publish => self.publish(req, now).await,
            Method::Notify => self.notify(req, now),
            Method::Invite => self.invite(req, now).await,
            Method::Bye | Method::Update => self.in_dialog(req, now),
            _ => Reply::new(200)
                .with("Allow", self.allow())
                .with("Accept", ACCEPT)
                .with("Allow-Events", ALLOW_EVENTS)
                .into(),
        }
    }

    fn challenge(&self, now: u64, stale: bool) -> Reply {
        Reply::new(401).with(
            "WWW-Authenticate",
            self.nonces.challenge(&self.cfg.realm, now, stale),
        )
    }

    /// A user of another domain named by `na`, as `sip:user@domain` with
    /// their domain; `None` for ours (and for what names nobody).
    fn foreign_identity(&self, na: &super::wire::NameAddr) -> Option<(String, String)> {
        let u = na.addr.as_ref()?;
        match self
            .cfg
            .domains
            .classify_parts(&u.scheme, u.user.as_deref(), &u.host)
        {
            Ok(Classified::Foreign { uri, domain }) => Some((uri, domain)),
            _ => None,
        }
    }

    /// Who sent the request: a trusted peer's asserted identity, a user of
    /// another domain whose server sent it, or a user who answered our
    /// digest challenge for the AOR in `header` (From, or To for REGISTER).
    /// An identity of another domain is accepted only from that domain's
    /// configured addresses (`[[federation.domain]]`) or a trusted peer, and
    /// is never challenged: it cannot be a user of ours.
    pub(super) async fn identify(
        &self,
        req: &Request,
        header: &str,
        now: u64,
    ) -> Result<Sender, Reply> {
        let na = req
            .header(header)
            .and_then(parse_name_addr)
            .ok_or_else(|| Reply::new(400).warning(&format!("bad or missing {header}")))?;
        let domain = &self.cfg.domain;
        if !self.cfg.trusted.contains(&req.source.ip())
            && let Some((address, from)) = self.foreign_identity(&na)
        {
            if !self.cfg.domains.accepts_from(&from, req.source.ip()) {
                return Err(Reply::new(403).warning(&format!(
                    "{address}: requests from {from} are accepted only from its configured servers"
                )));
            }
            return Ok(Sender {
                address,
                display_name: na.display,
                verified: Verified::FederatedPeer,
            });
        }
        if self.cfg.trusted.contains(&req.source.ip()) {
            let asserted = req
                .header_list("P-Asserted-Identity")
                .into_iter()
                .filter_map(parse_name_addr)
                .find(|n| {
                    n.addr
                        .as_ref()
                        .and_then(|u| canonical_aor(u, domain))
                        .is_some()
                });
            let id = asserted.unwrap_or_else(|| na.clone());
            if let Some((address, _)) = self.foreign_identity(&id) {
                return Ok(Sender {
                    address,
                    display_name: id.display.or(na.display),
                    verified: Verified::FederatedPeer,
                });
            }
            let address = id
                .addr
                .as_ref()
                .and_then(|u| canonical_aor(u, domain))
                .ok_or_else(|| Reply::new(403).warning("no SIP identity asserted"))?;
            return Ok(Sender {
                address,
                display_name: id.display.or(na.display),
                verified: Verified::TrustedPeer,
            });
        }
        let address = na
            .addr
            .as_ref()
            .and_then(|u| canonical_aor(u, domain))
            .ok_or_else(|| Reply::new(403).warning(&format!("{} is not a SIP user", na.uri)))?;
        let Some(c) = req
            .header_values("Authorization")
            .filter_map(digest::parse_authorization)
            .find(|c| c.realm == self.cfg.realm)
        else {
            return Err(self.challenge(now, false));
        };
        let user = address
            .strip_prefix("sip:")
            .and_then(|r| r.rsplit_once('@'))
            .map_or("", |(u, _)| u);
        if c.username != user {
            return Err(
                Reply::new(403).warning("the digest username is not the user of the address")
            );
        }
        let Some(creds) = self.bridge.sip_credentials(address.clone()).await else {
            return Err(Reply::new(403).warning(&format!("{address} has no SIP account here")));
        };
        if creds.realm != self.cfg.realm {
            return Err(Reply::new(403).warning("the password was set for another realm"));
        }
        let method = req.method().to_string();
        let signed = digest::Signed {
            method: &method,
            uri_matches: req.names_request_uri(&c.uri),
            body: req.body(),
        };
        match digest::verify(&self.nonces, &c, &creds.ha1, signed, now) {
            Verdict::Ok => Ok(Sender {
                address,
                display_name: na.display,
                verified: Verified::Authenticated,
            }),
            Verdict::Stale => Err(self.challenge(now, true)),
            Verdict::Wrong => Err(self.challenge(now, false)),
        }
    }

    async fn message(&self, req: &Request, now: u64) -> Handled {
        let sender = match self.identify(req, "From", now).await {
            Ok(s) => s,
            Err(r) => return r.into(),
        };
        match message::map_message(req, sender, &self.cfg.domains) {
            Mapped::Reply(r) => r.into(),
            // 200 when the recipient's device has it already, 202 when it
            // is stored (RFC 3428 §7).
            Mapped::Submit(im) => match self.bridge.submit(im).await {
                Ok(a) if a.delivered => Reply::new(200).into(),
                Ok(_) => Reply::new(202).into(),
                Err(refusal) => message::refusal_reply(&refusal).into(),
            },
            Mapped::Disposition(from, to, report) => {
                match self.bridge.disposition(from, to, report).await {
                    Ok(()) => Reply::new(200).into(),
                    Err(refusal) => message::refusal_reply(&refusal).into(),
                }
            }
        }
    }

    /// A NOTIFY in one of our subscriptions to another domain (`watch.rs`):
    /// its dialog identifies it, no digest is asked.
    fn notify(&self, req: &Request, now: u64) -> Handled {
        let ids = || super::outbound::Ids {
            call_id: format!("{}@smsbridge", (self.random)()),
            tag: (self.random)(),
        };
        let n = lock(&self.watches).notify(req, now, ids);
        Handled {
            reply: n.reply,
            followups: n.news.into_iter().map(Followup::Foreign).collect(),
        }
    }

    async fn register(&self, req: &Request, now: u64) -> Handled {
        // The To of a REGISTER is the address of record: a SIP or SIPS URI
        // (RFC 3261 §10.2; RFC 4475 §3.3.4).
        let aor = req.header("To").and_then(parse_name_addr);
        if !aor
            .as_ref()
            .and_then(|na| na.addr.as_ref())
            .is_some_and(|u| u.scheme == "sip" || u.scheme == "sips")
        {
            return Reply::new(400)
                .warning("the To of a REGISTER must be a sip: or sips: URI")
                .into();
        }
        let sender = match self.identify(req, "To", now).await {
            Ok(s) if s.verified == Verified::FederatedPeer => {
                return Reply::new(403)
                    .warning(&format!("{} is not a user of this domain", s.address))
                    .into();
            }
            Ok(s) => s,
            Err(r) => return r.into(),
        };
        let (Some(call_id), Some(cseq)) = (req.header("Call-ID"), req.cseq()) else {
            return Reply::new(400).warning("bad Call-ID or CSeq").into();
        };
        let contacts = req.header_list("Contact");
        let r = Register {
            aor: &sender.address,
            contacts: contacts.clone(),
            expires: req.header("Expires"),
            call_id,
            cseq,
            source: req.source,
            transport: req.transport,
        };
        let (was_online, result) = {
            let mut registrar = lock(&self.registrar);
            let was = !registrar.contacts(&sender.address, now).is_empty();
            (was, registrar.register(&r, now))
        };
        match result {
            Ok(list) => {
                let mut reply = Reply::new(200);
                for (uri, left) in &list {
                    reply = reply.with("Contact", format!("<{uri}>;expires={left}"));
                }
                let mut followups = Vec::new();
                // Only changes are pushed, not every refresh; a publication
                // outweighs the registration.
                if was_online == list.is_empty()
                    && lock(&self.publications).presence(&sender.address).is_none()
                {
                    let p = if list.is_empty() {
                        Presence::offline()
                    } else {
                        Presence::online()
                    };
                    followups.push(Followup::Presence(sender.address.clone(), p));
                }
                // A fresh or refreshed binding: anything waiting may go now.
                if !list.is_empty() && !contacts.is_empty() {
                    followups.push(Followup::UserOnline(sender.address));
                }
                Handled { reply, followups }
            }
            Err(e @ RegisterError::Bad(_)) => Reply::new(400).warning(&e.to_string()).into(),
            Err(e @ RegisterError::OutOfOrder(_)) => Reply::new(500).warning(&e.to_string()).into(),
            Err(e @ RegisterError::TooMany(_)) => Reply::new(403).warning(&e.to_string()).into(),
        }
    }

    async fn subscribe(&self, req: &Request, now: u64) -> Handled {
        let winfo = req.header("Event").is_some_and(winfo::is_winfo_event);
        if !winfo && !req.header("Event").is_some_and(body::is_presence_event) {
            return Reply::new(489).with("Allow-Events", ALLOW_EVENTS).into();
        }
        if winfo && !winfo::accepted(&req.header_list("Accept")) {
            return Reply::new(406).with("Accept", winfo::MIME).into();
        }
        let expires = match presence::subscribe_expires(req.header("Expires")) {
            Ok(e) => e,
            Err(why) => return Reply::new(400).warning(&why).into(),
        };
        let sender = match self.identify(req, "From", now).await {
            Ok(s) => s,
            Err(r) => return r.into(),
        };
        let Some(call_id) = req.header("Call-ID") else {
            return Reply::new(400).warning("no Call-ID").into();
        };
        let tag = req.to_tag();
        let relayed = match &tag {
            Some(tag) => lock(&self.relays).has(call_id, tag),
            None => false,
        };
        let foreign = req.uri().and_then(|u| lock(&self.relays).presentity(&u));
        match (tag, foreign) {
            (Some(tag), _) if relayed => {
                self.relay_refresh(req, call_id, &tag, &sender, expires, now)
            }
            (Some(tag), _) => {
                self.resubscribe(req, call_id, &tag, &sender, expires, now)
                    .await
            }
            (None, _) if winfo => self.new_winfo(req, call_id, sender, expires, now).await,
            (None, Some(presentity)) => {
                self.relay_new(req, call_id, sender, presentity, expires, now)
            }
            (None, None) => {
                self.new_subscription(req, call_id, sender, expires, now)
                    .await
            }
        }
    }

    async fn new_subscription(
        &self,
        req: &Request,
        call_id: &str,
        sender: Sender,
        expires: u32,
        now: u64,
    ) -> Handled {
        let target = match message::recipient(req, &self.cfg.domains) {
            Ok(t) => t,
            Err(why) => return Reply::new(404).warning(&why).into(),
        };
        let mut s = match self.dialog(req, call_id, &sender.address, target.clone(), expires, now) {
            Ok(s) => s,
            Err(r) => return r.into(),
        };
        let p = match self
            .bridge
            .presence(sender.address.clone(), target.clone())
            .await
        {
            Ok(p) => p,
            Err(r) => return presence_refusal(&r).into(),
        };
        s.msisdn = p.msisdn;
        s.im_user = p.im_user;
        s.unavailable = p.unavailable;
        s.presentity = s.im_user.as_ref().map(|u| self.user_address(u));
        // The bridge's answer carries the presentity's decision (a blocked
        // watcher got a refusal above).
        s.decision = match p.decision {
            WatchDecision::Block => {
                return Reply::new(403)
                    .warning("the presentity does not allow you")
                    .into();
            }
            d => d,
        };
        if expires > 0 && !lock(&self.subs).insert(s.clone()) {
            return Reply::new(503)
                .with("Retry-After", "60")
                .warning("too many subscriptions")
                .into();
        }
        self.subscribed(req, &s, expires)
    }

    /// The dialog a new SUBSCRIBE sets up, with us as its notifier (no
    /// subscriber or user in it yet).
    fn dialog(
        &self,
        req: &Request,
        call_id: &str,
        watcher: &str,
        target: crate::bridge::api::Recipient,
        expires: u32,
        now: u64,
    ) -> Result<Subscription, Reply> {
        let from = req.header("From").and_then(parse_name_addr);
        let to = req.header("To").and_then(parse_name_addr);
        let contact = req.header("Contact").and_then(parse_name_addr);
        let (Some(from), Some(to), Some(contact)) = (from, to, contact) else {
            return Err(Reply::new(400).warning("SUBSCRIBE needs From, To and Contact"));
        };
        let Some(remote_tag) = from.param("tag").map(str::to_owned) else {
            return Err(Reply::new(400).warning("From has no tag"));
        };
        let route_set: Vec<String> = req
            .header_list("Record-Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        Ok(Subscription {
            call_id: call_id.to_owned(),
            local_tag: (self.random)(),
            remote_tag,
            local_uri: to.uri,
            remote_uri: from.uri,
            remote_target: contact.uri,
            route_set: route_set.clone(),
            flow: (req.transport == Transport::Tcp && route_set.is_empty())
                .then(|| format!("sip:{};transport=tcp", req.source)),
            watcher: watcher.to_owned(),
            target,
            msisdn: String::new(),
            im_user: None,
            event_id: req.header("Event").and_then(body::event_id),
            expires_at: now + u64::from(expires),
            local_cseq: 1,
            decision: WatchDecision::Allow,
            presentity: None,
            unavailable: None,
            winfo: None,
        })
    }

    /// A new SUBSCRIBE for a user of a peer domain (`relay.rs`): 200 and a
    /// first NOTIFY here, and the watch of the other domain.
    fn relay_new(
        &self,
        req: &Request,
        call_id: &str,
        sender: Sender,
        presentity: String,
        expires: u32,
        now: u64,
    ) -> Handled {
        let target = crate::bridge::api::Recipient::Alias(presentity.clone());
        let s = match self.dialog(req, call_id, &sender.address, target, expires, now) {
            Ok(s) => s,
            Err(r) => return r.into(),
        };
        let contact = self.cfg.contact(req.transport).to_owned();
        let tag = s.local_tag.clone();
        let Some((notify, first)) = lock(&self.relays).start(s, presentity.clone(), &contact, now)
        else {
            return Reply::new(503)
                .with("Retry-After", "60")
                .warning("too many subscriptions")
                .into();
        };
        let mut followups = vec![Followup::Send(Box::new(notify))];
        if first {
            followups.push(Followup::WatchForeign(sender.address, presentity));
        }
        Handled {
            reply: self.accept_subscribe(req, expires, &tag),
            followups,
        }
    }

    /// A re-SUBSCRIBE (or unsubscribe) in a relayed dialog.
    fn relay_refresh(
        &self,
        req: &Request,
        call_id: &str,
        tag: &str,
        sender: &Sender,
        expires: u32,
        now: u64,
    ) -> Handled {
        let r = lock(&self.relays).refresh(call_id, tag, &sender.address, expires, now);
        match r {
            Err(403) => Reply::new(403).warning("not your subscription").into(),
            Err(code) => Reply::new(code).into(),
            Ok(done) => {
                let mut followups = vec![Followup::Send(Box::new(done.notify))];
                if let Some((w, p)) = done.unwatch {
                    followups.push(Followup::UnwatchForeign(w, p));
                }
                Handled {
                    reply: self.accept_subscribe(req, done.expires, &done.local_tag),
                    followups,
                }
            }
        }
    }

    async fn resubscribe(
        &self,
        req: &Request,
        call_id: &str,
        tag: &str,
        sender: &Sender,
        expires: u32,
        now: u64,
    ) -> Handled {
        let Some(existing) = lock(&self.subs).get(call_id, tag).cloned() else {
            return Reply::new(481).into();
        };
        if existing.watcher != sender.address {
            return Reply::new(403).warning("not your subscription").into();
        }
        if existing.winfo.is_some() {
            return self.refresh_winfo(req, &existing, expires, now).await;
        }
        let mut expires = expires;
        if expires > 0 {
            let d = match self
                .bridge
                .presence(existing.watcher.clone(), existing.target.clone())
                .await
            {
                Ok(p) => {
                    lock(&self.subs).set_im_user(call_id, tag, p.im_user, p.unavailable);
                    p.decision
                }
                // Refused now by the presentity: the refresh ends it below.
                Err(Refusal::Blocked(_) | Refusal::BlockedByRecipient(_)) => WatchDecision::Block,
                Err(r) => {
                    lock(&self.subs).remove(call_id, tag);
                    return presence_refusal(&r).into();
                }
            };
            lock(&self.subs).set_decision(call_id, tag, d);
            // Rejected now: the refresh ends it (NOTIFY terminated;
            // reason=rejected).
            if d == WatchDecision::Block {
                expires = 0;
            }
        }
        match lock(&self.subs).refresh(call_id, tag, expires, now) {
            Some(s) => self.subscribed(req, &s, expires),
            None => Reply::new(481).into(),
        }
    }

    /// The address of the bridge user a subscription watches, as the bridge
    /// knows them: `sip:` for SIP users, `wv:` for IMPS users.
    fn user_address(&self, u: &crate::bridge::api::ImUserPresence) -> String {
        let scheme = match u.front_end {
            FrontEnd::Sip => "sip",
            FrontEnd::Imps => "wv",
        };
        format!("{scheme}:{}@{}", u.user_part, self.cfg.domain)
    }

    /// A new `presence.winfo` SUBSCRIBE (RFC 3857): a user of ours watching
    /// their own watchers; the first NOTIFY has them all.
    async fn new_winfo(
        &self,
        req: &Request,
        call_id: &str,
        sender: Sender,
        expires: u32,
        now: u64,
    ) -> Handled {
        let own = req.uri().and_then(|u| canonical_aor(&u, &self.cfg.domain));
        if sender.verified == Verified::FederatedPeer || own.as_deref() != Some(&sender.address) {
            return Reply::new(403)
                .warning("a user may watch only their own watchers")
                .into();
        }
        let aor = sender.address;
        let target = crate::bridge::api::Recipient::Alias(aor.clone());
        let mut s = match self.dialog(req, call_id, &aor, target, expires, now) {
            Ok(s) => s,
            Err(r) => return r.into(),
        };
        s.presentity = Some(aor.clone());
        s.winfo = Some(0);
        let doc = match self.full_winfo(&mut s).await {
            Ok(doc) => doc,
            Err(r) => return presence_refusal(&r).into(),
        };
        if expires > 0 {
            let mut subs = lock(&self.subs);
            if subs.winfo_count(&aor) >= winfo::MAX_PER_USER {
                return Reply::new(403)
                    .warning(&format!(
                        "at most {} watcher subscriptions per user",
                        winfo::MAX_PER_USER
                    ))
                    .into();
            }
            if !subs.insert(s.clone()) {
                return Reply::new(503)
                    .with("Retry-After", "60")
                    .warning("too many subscriptions")
                    .into();
            }
        }
        self.winfo_subscribed(req, &s, expires, doc, now)
    }

    /// The full watcherinfo document for `s`, taking its next version.
    async fn full_winfo(&self, s: &mut Subscription) -> Result<String, Refusal> {
        let aor = s.presentity.clone().unwrap_or_default();
        let watchers = self.bridge.watchers(aor.clone()).await?;
        let version = s.next_winfo_version().unwrap_or_default();
        let list: Vec<_> = watchers
            .iter()
            .map(|w| (w.watcher.as_str(), w.decision))
            .collect();
        Ok(winfo::document(&aor, version, true, &list))
    }

    /// A re-SUBSCRIBE of `presence.winfo`: the full list again, or the end.
    async fn refresh_winfo(
        &self,
        req: &Request,
        existing: &Subscription,
        expires: u32,
        now: u64,
    ) -> Handled {
        let (call_id, tag) = (&existing.call_id, &existing.local_tag);
        if expires == 0 {
            return match lock(&self.subs).refresh(call_id, tag, 0, now) {
                Some(s) => self.subscribed(req, &s, 0),
                None => Reply::new(481).into(),
            };
        }
        let mut current = existing.clone();
        let doc = match self.full_winfo(&mut current).await {
            Ok(doc) => doc,
            Err(r) => return presence_refusal(&r).into(),
        };
        let refreshed = {
            let mut subs = lock(&self.subs);
            subs.set_winfo_version(call_id, tag, current.winfo);
            subs.refresh(call_id, tag, expires, now)
        };
        match refreshed {
            Some(s) => self.winfo_subscribed(req, &s, expires, doc, now),
            None => Reply::new(481).into(),
        }
    }

    /// 200, then a NOTIFY with the watcherinfo document `doc`.
    fn winfo_subscribed(
        &self,
        req: &Request,
        s: &Subscription,
        expires: u32,
        doc: String,
        now: u64,
    ) -> Handled {
        let contact = self.cfg.contact(req.transport);
        let notify = super::outbound::winfo_notify(s, &s.state(now), contact, doc);
        Handled {
            reply: self.accept_subscribe(req, expires, &s.local_tag),
            followups: vec![Followup::Send(Box::new(notify))],
        }
    }

    /// 200 with Expires and our tag and Contact, then the NOTIFY; 202 for
    /// a subscription waiting for the presentity (RFC 3265 §3.1.6.1, as
    /// Kamailio's presence module answers a pending one).
    fn subscribed(&self, req: &Request, s: &Subscription, expires: u32) -> Handled {
        let mut reply = self.accept_subscribe(req, expires, &s.local_tag);
        if s.decision == WatchDecision::Pending && expires > 0 {
            reply.code = 202;
        }
        Handled {
            reply,
            followups: vec![Followup::Notify(Box::new(s.clone()))],
        }
    }

    /// The 200 to a SUBSCRIBE: the granted Expires, our tag and Contact.
    fn accept_subscribe(&self, req: &Request, expires: u32, local_tag: &str) -> Reply {
        let mut reply = Reply::new(200)
            .with("Expires", expires.to_string())
            .with("Contact", format!("<{}>", self.cfg.contact(req.transport)));
        reply.to_tag = Some(local_tag.to_owned());
        reply
    }
}

impl Uas {
    /// News for a presentity's `presence.winfo` watchers: `watcher` now
    /// stands so. One partial document per subscription (RFC 3858 §4.2).
    pub(crate) fn watcher_news(
        &self,
        presentity: &str,
        watcher: &str,
        decision: WatchDecision,
        now: u64,
    ) -> Vec<super::outbound::OutRequest> {
        let contact = self.cfg.contact(Transport::Udp);
        lock(&self.subs)
            .winfo_of(presentity)
            .into_iter()
            .map(|(s, version)| {
                let resource = s.presentity.as_deref().unwrap_or(presentity);
                let doc = winfo::document(resource, version, false, &[(watcher, decision)]);
                super::outbound::winfo_notify(&s, &s.state(now), contact, doc)
            })
            .collect()
    }

    /// The presentity decided anew on a watcher: the NOTIFYs to send now
    /// (the watcher's subscriptions pending, polite-blocked or rejected,
    /// the presentity's winfo watchers), and the watcher's subscriptions
    /// allowed now on a user, whose presence is to be asked again
    /// ([`Uas::reloaded`]) before their NOTIFY.
    pub(crate) fn decided(
        &self,
        change: &WatchChanged,
        now: u64,
    ) -> (Vec<super::outbound::OutRequest>, Vec<Subscription>) {
        let contact = self.cfg.contact(Transport::Udp);
        let (reload, now_notify): (Vec<_>, Vec<_>) = lock(&self.subs)
            .decided(change)
            .into_iter()
            .partition(|s| s.decision == WatchDecision::Allow && s.im_user.is_some());
        let mut out: Vec<_> = now_notify
            .iter()
            .map(|s| super::outbound::presence_notify(s, &s.state(now), &self.cfg.domain, contact))
            .collect();
        out.extend(self.watcher_news(&change.presentity, &change.watcher, change.decision, now));
        (out, reload)
    }

    /// The NOTIFY of a subscription just allowed, with its user's presence
    /// as the bridge says it now (a polite-blocked or pending watcher was
    /// told nothing of it).
    pub(crate) async fn reloaded(
        &self,
        mut s: Subscription,
        now: u64,
    ) -> super::outbound::OutRequest {
        if let Ok(p) = self
            .bridge
            .presence(s.watcher.clone(), s.target.clone())
            .await
        {
            lock(&self.subs).set_im_user(
                &s.call_id,
                &s.local_tag,
                p.im_user.clone(),
                p.unavailable.clone(),
            );
            s.im_user = p.im_user;
            s.unavailable = p.unavailable;
        }
        let contact = self.cfg.contact(Transport::Udp);
        super::outbound::presence_notify(&s, &s.state(now), &self.cfg.domain, contact)
    }

    /// What a SIP user shows: their publication, else their registration.
    pub(crate) fn user_presence(&self, aor: &str, now: u64) -> Presence {
        if let Some(p) = lock(&self.publications).presence(aor) {
            return p;
        }
        if lock(&self.registrar).contacts(aor, now).is_empty() {
            Presence::offline()
        } else {
            Presence::online()
        }
    }

    /// PUBLISH (RFC 3903 §6) of event `presence` by a user for their own
    /// address of record.
    async fn publish(&self, req: &Request, now: u64) -> Handled {
        if !req.header("Event").is_some_and(body::is_presence_event) {
            return Reply::new(489).with("Allow-Events", "presence").into();
        }
        let expires = match publish::publish_expires(req.header("Expires")) {
            Ok(e) => e,
            Err(Some(min)) => {
                return Reply::new(423).with("Min-Expires", min.to_string()).into();
            }
            Err(None) => return Reply::new(400).warning("bad Expires").into(),
        };
        if req.body().len() > publish::MAX_BODY {
            return Reply::new(413)
                .warning(&format!("at most {} bytes of PIDF", publish::MAX_BODY))
                .into();
        }
        let sender = match self.identify(req, "From", now).await {
            Ok(s) => s,
            Err(r) => return r.into(),
        };
        // The presentity is the Request-URI (RFC 3903 §4): only one's own.
        let target = req.uri().and_then(|u| canonical_aor(&u, &self.cfg.domain));
        if target.as_deref() != Some(sender.address.as_str()) {
            return Reply::new(403)
                .warning("a user may publish only their own presence")
                .into();
        }
        let document = if req.body().is_empty() {
            None
        } else {
            let mime = req
                .header("Content-Type")
                .and_then(body::ContentType::parse)
                .map(|c| c.mime);
            if mime.as_deref() != Some("application/pidf+xml") {
                return Reply::new(415)
                    .with("Accept", "application/pidf+xml")
                    .into();
            }
            match super::pidf::read(req.body()) {
                Ok(p) => Some(p),
                Err(e) => return Reply::new(400).warning(&format!("bad PIDF: {e}")).into(),
            }
        };
        let if_match = req.header("SIP-If-Match").map(|t| t.trim().to_owned());
        let op = match (if_match, document, expires) {
            (Some(tag), _, 0) => Publish::Remove(tag),
            (Some(tag), None, _) => Publish::Refresh(tag),
            (Some(tag), Some(p), _) => Publish::Modify(tag, p),
            (None, Some(p), e) if e > 0 => Publish::Initial(p),
            (None, _, _) => {
                return Reply::new(400)
                    .warning("a new publication needs a PIDF body and a non-zero Expires")
                    .into();
            }
        };
        let aor = sender.address;
        let (before, result, after) = {
            let mut t = lock(&self.publications);
            let before = t.presence(&aor);
            let result = t.apply(&aor, op, expires, now, (self.random)());
            (before, result, t.presence(&aor))
        };
        match result {
            Ok(tag) => {
                let reply = Reply::new(200)
                    .with("SIP-ETag", tag)
                    .with("Expires", expires.to_string());
                let mut followups = Vec::new();
                if before != after {
                    let p = self.user_presence(&aor, now);
                    followups.push(Followup::Presence(aor, p));
                }
                Handled { reply, followups }
            }
            Err(e @ PublishError::UnknownTag(_)) => Reply::new(412).warning(&e.to_string()).into(),
            Err(e @ PublishError::UserFull(_)) => Reply::new(403).warning(&e.to_string()).into(),
            Err(e @ PublishError::Full) => Reply::new(503)
                .with("Retry-After", "60")
                .warning(&e.to_string())
                .into(),
        }
    }

    /// Drops publications expired at `now`: each user who lost one, with
    /// what they show now (a later publication, else their registration).
    pub(crate) fn expire_publications(&self, now: u64) -> Vec<(String, Presence)> {
        let gone = lock(&self.publications).expire(now);
        gone.into_iter()
            .map(|aor| {
                let p = self.user_presence(&aor, now);
                (aor, p)
            })
            .collect()
    }
}

/// SUBSCRIBE refusals: 404 for an unknown subscriber or a presentity of
/// another domain with no route there, 503 when busy, 400 for nonsense, 403
/// otherwise.
fn presence_refusal(r: &Refusal) -> Reply {
    match r {
        Refusal::UnknownRecipient(_)
        | Refusal::NoRoute(_)
        | Refusal::Invalid(_)
        | Refusal::EmptyMessage => message::refusal_reply(r),
        _ if r.retry_after().is_some() => message::refusal_reply(r),
        _ => Reply::new(403).warning(&r.to_string()),
    }
}

#[cfg(test)]
mod tests;
