//! Session-mode IM (RFC 4975) on the SIP side: an INVITE with an MSRP offer
//! to a subscriber or a user of ours is answered by the bridge with a path
//! on its MSRP listener, and its dialog is kept in [`Sessions`] until BYE,
//! the session timer (RFC 4028) or the idle timeout, or the loss of the TCP
//! connection. A first message riding in the INVITE (`message/cpim` in a
//! `multipart/mixed` body, RCS-e) is handled like a MESSAGE before the 200.
//!
//! The table is sans-IO; the MSRP connections (`msrp_conn`) read it and hang
//! their outgoing queue on it. ACK and CANCEL never reach here: rsipstack's
//! INVITE server transaction absorbs the ACK of our 2xx and answers a
//! CANCEL that comes after it.

use std::collections::HashMap;
use std::net::IpAddr;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::body::{self, BodyError, ImContent};
use super::message;
use super::outbound::OutRequest;
use super::sdp::{self, OfferError};
use super::uas::{Handled, Uas, lock};
use super::wire::{Reply, Request, parse_name_addr};
use crate::bridge::api::{FrontEnd, ImToSms, Recipient, Sender};
use crate::msrp::MsrpUri;

/// The smallest `Session-Expires` we take (RFC 4028 §4 `Min-SE` default).
pub(crate) const MIN_SE: u64 = 90;

/// `[msrp]` as the SIP side needs it.
#[derive(Debug, Clone)]
pub(crate) struct SessionConfig {
    /// Host and port written into our `a=path`.
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) max_sessions: usize,
    pub(crate) max_sessions_per_address: usize,
    /// Seconds a session without a session timer lives without traffic.
    pub(crate) idle_timeout: u64,
    pub(crate) limits: crate::msrp::Limits,
}

/// A message to send into a session, and where its outcome goes.
#[derive(Debug)]
pub(crate) struct OutgoingIm {
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
    pub(crate) done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// One session.
#[derive(Debug)]
pub(crate) struct Session {
    /// Our `a=path`.
    pub(crate) ours: MsrpUri,
    /// The offer's `a=path`.
    pub(crate) theirs: MsrpUri,
    /// Who invited (authenticated as for MESSAGE).
    pub(crate) peer: Sender,
    /// Whom the INVITE named.
    pub(crate) target: Recipient,
    /// The subscriber number an alias target stands for, whose SMS are
    /// replies in this session.
    number: Option<String>,
    pub(crate) anonymous: bool,
    dialog: Dialog,
    /// SIP source address of the INVITE.
    source: IpAddr,
    answer: Vec<u8>,
    /// Unix seconds; activity or a refresh moves it.
    expires_at: u64,
    /// `Session-Expires` in seconds, if a session timer runs.
    timer: Option<u64>,
    /// The connection, once the peer has connected.
    pub(crate) outgoing: Option<mpsc::Sender<OutgoingIm>>,
    /// Cancelled when the session ends: the connection closes.
    pub(crate) ended: CancellationToken,
}

#[derive(Debug, Clone)]
struct Dialog {
    call_id: String,
    local_tag: String,
    remote_tag: String,
    /// Their From (with tag) and our To (without), for a BYE of ours.
    remote: String,
    local: String,
    /// Where a BYE of ours goes.
    remote_target: String,
    next_hop: Option<String>,
    /// The CSeq of a BYE of ours.
    bye_cseq: u32,
}

/// A session the bridge opened itself (its INVITE answered 2xx) to
/// deliver stored IMs to `user`, who is then the session's peer, and
/// `other` the sender whose messages (and `user`'s replies) it carries.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    pub(crate) ours: MsrpUri,
    /// The answer's `a=path`.
    pub(crate) theirs: MsrpUri,
    pub(crate) user: Sender,
    pub(crate) other: Recipient,
    pub(crate) source: IpAddr,
    pub(crate) dialog: OpenedDialog,
}

/// The dialog our INVITE made.
#[derive(Debug, Clone)]
pub(crate) struct OpenedDialog {
    pub(crate) call_id: String,
    /// Our From (without tag) and its tag.
    pub(crate) local: String,
    pub(crate) local_tag: String,
    /// Their To from the 2xx (with its tag).
    pub(crate) remote: String,
    /// The 2xx's Contact.
    pub(crate) remote_target: String,
    pub(crate) next_hop: Option<String>,
    pub(crate) invite_cseq: u32,
}

impl OpenedDialog {
    /// `None` when the 2xx had no To tag: no dialog.
    fn dialog(&self) -> Option<Dialog> {
        let remote_tag = parse_name_addr(&self.remote)?.param("tag")?.to_owned();
        Some(Dialog {
            call_id: self.call_id.clone(),
            local_tag: self.local_tag.clone(),
            remote_tag,
            remote: self.remote.clone(),
            local: self.local.clone(),
            remote_target: self.remote_target.clone(),
            next_hop: self.next_hop.clone(),
            bye_cseq: self.invite_cseq + 1,
        })
    }

    /// The BYE that ends the dialog when no session comes of it.
    pub(crate) fn bye(&self) -> Option<OutRequest> {
        self.dialog().map(|d| bye_request(&d))
    }
}

/// Every open session, by our session-id.
#[derive(Debug)]
pub(crate) struct Sessions {
    pub(crate) cfg: SessionConfig,
    by_id: HashMap<String, Session>,
}

impl Sessions {
    pub(crate) fn new(cfg: SessionConfig) -> Self {
        Self {
            cfg,
            by_id: HashMap::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// A fresh session-id and our `a=path` for it.
    pub(crate) fn new_path(&self, random: fn() -> String) -> MsrpUri {
        MsrpUri::tcp(&self.cfg.host, self.cfg.port, &session_id(random))
    }

    /// Keeps a session we opened, its connection about to be made
    /// (`outgoing` is its queue); the token ends that connection with the
    /// session. `None` when the 2xx had no To tag.
    pub(crate) fn opened(
        &mut self,
        o: &Opened,
        now: u64,
        outgoing: mpsc::Sender<OutgoingIm>,
    ) -> Option<(String, CancellationToken)> {
        let id = o.ours.session_id()?.to_owned();
        let ended = CancellationToken::new();
        let session = Session {
            ours: o.ours.clone(),
            theirs: o.theirs.clone(),
            peer: o.user.clone(),
            target: o.other.clone(),
            number: None,
            anonymous: false,
            dialog: o.dialog.dialog()?,
            source: o.source,
            answer: Vec::new(),
            expires_at: now + self.cfg.idle_timeout,
            timer: None,
            outgoing: Some(outgoing),
            ended: ended.clone(),
        };
        self.by_id.insert(id.clone(), session);
        Some((id, ended))
    }

    /// The session our URI `to` names, if `from` is the path its offer gave.
    pub(crate) fn matching(&mut self, to: &MsrpUri, from: &MsrpUri) -> Option<&mut Session> {
        let s = self.by_id.get_mut(to.session_id()?)?;
        (s.ours == *to && s.theirs == *from).then_some(s)
    }

    /// Traffic in a session: its idle deadline moves.
    pub(crate) fn touch(&mut self, id: &str, now: u64) {
        let idle = self.cfg.idle_timeout;
        if let Some(s) = self.by_id.get_mut(id)
            && s.timer.is_none()
        {
            s.expires_at = now + idle;
        }
    }

    /// The connected session of `user` (its inviter) with `other`: the
    /// subscriber number or the user their INVITE named.
    pub(crate) fn for_reply(&self, user: &str, other: &str) -> Option<mpsc::Sender<OutgoingIm>> {
        self.by_id
            .values()
            .filter(|s| {
                s.peer.address == user
                    && (names(&s.target, other)
                        || s.number
                            .as_ref()
                            .is_some_and(|n| names(&Recipient::Number(n.clone()), other)))
            })
            .find_map(|s| s.outgoing.clone().filter(|tx| !tx.is_closed()))
    }

    /// Ends a session; a BYE of ours is owed when `bye` (timer, TCP loss).
    pub(crate) fn end(&mut self, id: &str, bye: bool) -> Option<OutRequest> {
        let s = self.by_id.remove(id)?;
        s.ended.cancel();
        bye.then(|| bye_request(&s.dialog))
    }

    /// Ends the sessions whose time is up; BYEs to send.
    pub(crate) fn expire(&mut self, now: u64) -> Vec<OutRequest> {
        let due: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        due.iter().filter_map(|id| self.end(id, true)).collect()
    }

    fn by_dialog(&self, req: &Request) -> Option<String> {
        let call_id = req.header("Call-ID")?;
        let remote = req
            .header("From")
            .and_then(parse_name_addr)?
            .param("tag")?
            .to_owned();
        let local = req.to_tag()?;
        self.by_id
            .iter()
            .find(|(_, s)| {
                s.dialog.call_id == call_id
                    && s.dialog.remote_tag == remote
                    && s.dialog.local_tag == local
            })
            .map(|(id, _)| id.clone())
    }
}

/// Whether the session's target is `other`: a number (compared by its
/// digits) or a user's address (by user part).
fn names(target: &Recipient, other: &str) -> bool {
    let digits = |s: &str| -> String { s.chars().filter(|c| c.is_ascii_digit()).collect() };
    match target {
        Recipient::Number(n) => !digits(n).is_empty() && digits(n) == digits(other),
        Recipient::Alias(a) => {
            other == a || crate::bridge::user_part(other).eq_ignore_ascii_case(a)
        }
        Recipient::Foreign(f) => f == other,
    }
}

fn bye_request(d: &Dialog) -> OutRequest {
    let (from, from_tag) = (d.local.clone(), d.local_tag.clone());
    OutRequest {
        method: "BYE",
        request_uri: d.remote_target.clone(),
        next_hop: d.next_hop.clone(),
        from,
        from_tag,
        to: d.remote.clone(),
        call_id: d.call_id.clone(),
        cseq: d.bye_cseq,
        headers: Vec::new(),
        content_type: None,
        body: Vec::new(),
    }
}

/// The session-id of a new session: 24 characters of `random`.
fn session_id(random: fn() -> String) -> String {
    let mut id: String = random()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    while id.len() < 20 {
        id.extend(random().chars().filter(|c| c.is_ascii_alphanumeric()));
    }
    id.truncate(24);
    id
}

/// `Session-Expires: <delta>[;refresher=...]`.
fn session_expires(req: &Request) -> Result<Option<u64>, Reply> {
    let Some(v) = req.header("Session-Expires") else {
        return Ok(None);
    };
    let delta = v.split(';').next().unwrap_or_default().trim();
    let n: u64 = delta
        .parse()
        .map_err(|_| Reply::new(400).warning("bad Session-Expires"))?;
    if n < MIN_SE {
        return Err(Reply::new(422).with("Min-SE", MIN_SE.to_string()));
    }
    Ok(Some(n.min(86_400)))
}

/// An IM read from a session (the INVITE's body or a whole SEND), as a
/// MESSAGE with that body would become; `None` for what is not a message
/// (isComposing, an IMDN).
pub(crate) fn im_from_session(
    peer: &Sender,
    target: &Recipient,
    anonymous: bool,
    content_type: &str,
    body: &[u8],
) -> Result<Option<ImToSms>, BodyError> {
    match body::read_im(Some(content_type), None, body)? {
        ImContent::Text {
            text,
            im_message_id,
            notify,
        } => Ok(Some(ImToSms {
            sender: peer.clone(),
            front_end: FrontEnd::Sip,
            recipient: target.clone(),
            text,
            im_message_id,
            notify,
            anonymous,
        })),
        ImContent::Composing | ImContent::Notification(_) => Ok(None),
    }
}

impl Uas {
    /// INVITE: in a dialog of ours a refresh (the same answer), else a new
    /// session.
    pub(crate) async fn invite(&self, req: &Request, now: u64) -> Handled {
        let Some(sessions) = self.msrp() else {
            return Reply::new(405).with("Allow", super::uas::ALLOW).into();
        };
        if req.to_tag().is_some() {
            let mut table = lock(sessions);
            let Some(id) = table.by_dialog(req) else {
                return Reply::new(481).into();
            };
            let timer = match session_expires(req) {
                Ok(t) => t,
                Err(r) => return r.into(),
            };
            let idle = table.cfg.idle_timeout;
            let Some(s) = table.by_id.get_mut(&id) else {
                return Reply::new(481).into();
            };
            s.timer = timer.or(s.timer);
            s.expires_at = now + s.timer.unwrap_or(idle);
            let mut reply = Reply::new(200)
                .with("Contact", self.cfg.contact(req.transport))
                .with("Content-Type", "application/sdp");
            if let Some(t) = s.timer {
                reply = reply.with("Session-Expires", format!("{t};refresher=uac"));
            }
            reply.body = s.answer.clone();
            reply.to_tag = Some(s.dialog.local_tag.clone());
            return reply.into();
        }
        match self.new_session(sessions, req, now).await {
            Ok(reply) | Err(reply) => reply.into(),
        }
    }

    async fn new_session(
        &self,
        sessions: &std::sync::Mutex<Sessions>,
        req: &Request,
        now: u64,
    ) -> Result<Reply, Reply> {
        let peer = self.identify(req, "From", now).await?;
        let target = match message::recipient(req, &self.cfg.domains) {
            Ok(Recipient::Foreign(f)) => {
                return Err(Reply::new(403).warning(&format!(
                    "{f}: chat sessions go to subscribers and users of this bridge only"
                )));
            }
            Ok(r) => r,
            Err(why) => return Err(Reply::new(404).warning(&why)),
        };
        let timer = session_expires(req)?;
        let number = self.alias_number(&peer, &target).await;
        let parts = sdp::split_invite_body(req.header("Content-Type"), req.body())
            .map_err(|e| Reply::new(400).warning(&e.to_string()))?;
        let Some(offer_sdp) = parts.sdp else {
            return Err(Reply::new(488).warning("an MSRP offer is needed in the INVITE"));
        };
        let offer = sdp::read_offer(&offer_sdp).map_err(|e| match e {
            OfferError::Malformed(_) => Reply::new(400).warning(&e.to_string()),
            OfferError::NotAcceptable(_) => Reply::new(488).warning(&e.to_string()),
        })?;
        let anonymous = body::privacy_requested(&req.header_list("Privacy"));
        let (Some(call_id), Some(remote_tag), Some(from), Some(to)) = (
            req.header("Call-ID"),
            req.header("From")
                .and_then(parse_name_addr)
                .and_then(|n| n.param("tag").map(str::to_owned)),
            req.header("From"),
            req.header("To"),
        ) else {
            return Err(Reply::new(400).warning("bad Call-ID or From tag"));
        };
        {
            let table = lock(sessions);
            if table.len() >= table.cfg.max_sessions {
                return Err(Reply::new(486).warning("too many chat sessions"));
            }
            let from_here = table
                .by_id
                .values()
                .filter(|s| s.source == req.source.ip())
                .count();
            if from_here >= table.cfg.max_sessions_per_address {
                return Err(Reply::new(486).warning("too many chat sessions from this address"));
            }
        }
        // The first message, if it rides along: handled as a MESSAGE, and
        // committed before the 200 (a refusal refuses the session).
        if let Some((ct, bytes)) = &parts.message {
            match im_from_session(&peer, &target, anonymous, ct, bytes) {
                Ok(Some(im)) => {
                    if let Err(refusal) = self.bridge().submit(im).await {
                        return Err(message::refusal_reply(&refusal));
                    }
                }
                Ok(None) => {}
                Err(BodyError::Unsupported(what)) => {
                    return Err(Reply::new(415)
                        .with("Accept", "application/sdp, message/cpim, text/plain")
                        .warning(&format!("unsupported content: {what}")));
                }
                Err(BodyError::Invalid(why)) => return Err(Reply::new(400).warning(&why)),
            }
        }
        let mut table = lock(sessions);
        let id = session_id(self.random_fn());
        let ours = MsrpUri::tcp(&table.cfg.host, table.cfg.port, &id);
        let answer = sdp::answer(&ours, now, &offer);
        let local_tag = (self.random_fn())();
        let contact = req
            .header("Contact")
            .and_then(parse_name_addr)
            .map(|n| n.uri)
            .unwrap_or_else(|| req.uri_text());
        let next_hop = (req.transport == super::wire::Transport::Tcp)
            .then(|| format!("sip:{};transport=tcp", req.source));
        let mut reply = Reply::new(200)
            .with("Contact", self.cfg.contact(req.transport))
            .with("Content-Type", "application/sdp");
        if let Some(t) = timer {
            reply = reply.with("Session-Expires", format!("{t};refresher=uac"));
            if req
                .header_list("Supported")
                .iter()
                .any(|o| o.eq_ignore_ascii_case("timer"))
            {
                reply = reply.with("Require", "timer");
            }
        }
        reply.body = answer.clone();
        reply.to_tag = Some(local_tag.clone());
        let idle = table.cfg.idle_timeout;
        table.by_id.insert(
            id,
            Session {
                ours,
                theirs: offer.path,
                peer,
                target,
                number,
                anonymous,
                dialog: Dialog {
                    call_id: call_id.to_owned(),
                    local_tag,
                    remote_tag,
                    remote: from.to_owned(),
                    local: to.to_owned(),
                    remote_target: contact,
                    next_hop,
                    bye_cseq: 1,
                },
                source: req.source.ip(),
                answer,
                expires_at: now + timer.unwrap_or(idle),
                timer,
                outgoing: None,
                ended: CancellationToken::new(),
            },
        );
        Ok(reply)
    }

    /// The number behind an alias that names a contact of the peer (not a
    /// SIP user of ours): the presence lookup resolves it, reading only.
    async fn alias_number(&self, peer: &Sender, target: &Recipient) -> Option<String> {
        let Recipient::Alias(alias) = target else {
            return None;
        };
        let as_user = format!("sip:{alias}@{}", self.cfg.domain);
        if self.bridge().sip_credentials(as_user).await.is_some() {
            return None;
        }
        self.bridge()
            .presence(peer.address.clone(), target.clone())
            .await
            .ok()
            .map(|p| p.msisdn)
    }

    /// BYE in one of our sessions ends it; UPDATE refreshes its timer.
    pub(crate) fn in_dialog(&self, req: &Request, now: u64) -> Handled {
        let Some(sessions) = self.msrp() else {
            return Reply::new(481).into();
        };
        let mut table = lock(sessions);
        let Some(id) = table.by_dialog(req) else {
            return Reply::new(481).into();
        };
        if req.method() == rsipstack::sip::Method::Bye {
            table.end(&id, false);
            return Reply::new(200).into();
        }
        let timer = match session_expires(req) {
            Ok(t) => t,
            Err(r) => return r.into(),
        };
        let idle = table.cfg.idle_timeout;
        if let Some(s) = table.by_id.get_mut(&id) {
            s.timer = timer.or(s.timer);
            s.expires_at = now + s.timer.unwrap_or(idle);
            if let Some(t) = s.timer {
                return Reply::new(200)
                    .with("Session-Expires", format!("{t};refresher=uac"))
                    .into();
            }
        }
        Reply::new(200).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::api::Verified;

    #[test]
    fn replies_match_the_invited_number_or_user() {
        assert!(names(
            &Recipient::Number("+49 171 5550001".into()),
            "+491715550001"
        ));
        assert!(!names(
            &Recipient::Number("+491715550001".into()),
            "+491715550002"
        ));
        assert!(names(
            &Recipient::Alias("bob".into()),
            "sip:bob@sms.example"
        ));
        assert!(!names(
            &Recipient::Alias("bob".into()),
            "sip:bobby@sms.example"
        ));
    }

    #[test]
    fn a_session_id_is_long_and_plain() {
        fn r() -> String {
            "a-b_c".into()
        }
        let id = session_id(r);
        assert!(id.len() >= 20 && id.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn expiry_ends_sessions_with_a_bye() {
        let cfg = SessionConfig {
            host: "127.0.0.1".into(),
            port: 2855,
            max_sessions: 1,
            max_sessions_per_address: 1,
            idle_timeout: 60,
            limits: crate::msrp::Limits {
                max_header_bytes: 1,
                max_chunk_body: 1,
                max_message: 1,
                max_chunks: 1,
                max_messages: 1,
            },
        };
        let mut t = Sessions::new(cfg);
        let ended = CancellationToken::new();
        t.by_id.insert(
            "abcd".into(),
            Session {
                ours: MsrpUri::tcp("127.0.0.1", 2855, "abcd"),
                theirs: MsrpUri::tcp("127.0.0.2", 1, "x"),
                peer: Sender {
                    address: "sip:alice@sms.example".into(),
                    display_name: None,
                    verified: Verified::Authenticated,
                },
                target: Recipient::Number("+491715550001".into()),
                number: None,
                anonymous: false,
                dialog: Dialog {
                    call_id: "c1".into(),
                    local_tag: "lt".into(),
                    remote_tag: "rt".into(),
                    remote: "<sip:alice@sms.example>;tag=rt".into(),
                    local: "<sip:+491715550001@sms.example>".into(),
                    remote_target: "sip:alice@127.0.0.2:5062".into(),
                    next_hop: None,
                    bye_cseq: 1,
                },
                source: IpAddr::from([127, 0, 0, 2]),
                answer: Vec::new(),
                expires_at: 100,
                timer: None,
                outgoing: None,
                ended: ended.clone(),
            },
        );
        t.touch("abcd", 50);
        assert!(t.expire(109).is_empty(), "touched at 50: up at 110");
        let byes = t.expire(110);
        assert_eq!(byes.len(), 1);
        assert_eq!(
            (
                byes[0].method,
                byes[0].to.as_str(),
                byes[0].from_tag.as_str()
            ),
            ("BYE", "<sip:alice@sms.example>;tag=rt", "lt")
        );
        assert!(ended.is_cancelled());
        assert_eq!(t.len(), 0);
    }
}
