//! SendMessage-Request in; NewMessage (or MessageNotification) and
//! DeliveryReport-Request out through the session's poll queue. The server is
//! the IMPS [`ImFrontEnd`]: SMS replies and IMs from SIP users are offered to a
//! logged-in user, and stay in the bridge's inbox (store and forward) until
//! the client confirms it has them: MessageDelivered, a Status 200 answering
//! the NewMessage, or GetMessage.

use std::sync::Arc;

use super::csp::{self, code};
use super::server::{Ctx, Server, refusal_code};
use super::session::{DeliveryMethod, Offer, Session};
use crate::bridge::api::{
    BoxFuture, DeliveryNotice, DeliveryResult, FailureCause, ForeignPresence, FrontEnd, ImFrontEnd,
    ImSend, NotifyOn, Sender, Sent, SmsToIm, Verified, WatchChanged,
};
use crate::bridge::user_part;
use crate::presence::Presence;
use crate::store::InboundId;
use crate::xml::Element;

/// The MessageID a message for an IMPS user has: its inbound row's, the
/// same each time it is offered (also after a restart), so a client that got
/// it twice can tell.
fn offer_id(inbound: InboundId) -> String {
    format!("in{}", inbound.0)
}

fn user_el(id: &str) -> Element {
    Element::new("User").with(Element::text("UserID", id))
}

/// The recipients' UserIDs (or ScreenName/SName) of a `MessageInfo`.
fn recipients(info: &Element) -> Vec<String> {
    let Some(r) = info.child("Recipient") else {
        return Vec::new();
    };
    r.children_named("User")
        .filter_map(|u| u.text_at(&["UserID"]))
        .chain(
            r.children_named("ScreenName")
                .filter_map(|s| s.text_at(&["SName"])),
        )
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Text for SMS from an HTML body: tags dropped, the five entities resolved
/// already by the XML parser.
fn strip_tags(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

impl Server {
    pub(super) async fn send_message(&self, ctx: &Ctx, p: &Element) -> Element {
        let respond = |c: u16, why: &str, id: Option<&str>| {
            Element::new("SendMessage-Response")
                .with(csp::result(c, why))
                .with_all(id.map(|i| Element::text("MessageID", i)))
        };
        let Some(info) = p.child("MessageInfo") else {
            return respond(code::BAD_REQUEST, "no MessageInfo", None);
        };
        let content_type = info
            .text_at(&["ContentType"])
            .unwrap_or("text/plain")
            .to_ascii_lowercase();
        let raw = p.text_at(&["ContentData"]).unwrap_or_default();
        let text = if content_type.starts_with("text/plain") {
            raw.to_owned()
        } else if content_type.starts_with("text/html") {
            strip_tags(raw)
        } else {
            return respond(
                code::UNSUPPORTED_MEDIA,
                "only text/plain can go as SMS",
                None,
            );
        };
        if info
            .text_at(&["ContentEncoding"])
            .is_some_and(|e| !e.eq_ignore_ascii_case("None"))
        {
            return respond(
                code::UNSUPPORTED_MEDIA,
                "ContentEncoding must be None",
                None,
            );
        }
        let to = recipients(info);
        if to.is_empty() {
            return respond(code::BAD_REQUEST, "no Recipient", None);
        }
        let report = csp::is_true(p.text_at(&["DeliveryReport"]));
        let message_id = self.message_id();
        let mut failures = Vec::new();
        for name in &to {
            let req = ImSend {
                sender: Sender {
                    address: ctx.user.clone(),
                    display_name: None,
                    verified: Verified::Authenticated,
                },
                front_end: FrontEnd::Imps,
                to: name.clone(),
                text: text.clone(),
                im_message_id: Some(message_id.clone()),
                notify: NotifyOn {
                    displayed: false,
                    delivered: report,
                    failed: report,
                },
            };
            match self.bridge.send(req).await {
                Ok(Sent::Sms(a)) => {
                    tracing::info!(user = %ctx.user, to = %name, parts = a.parts, "SendMessage queued as SMS")
                }
                Ok(Sent::Im { .. }) => {
                    tracing::info!(user = %ctx.user, to = %name, "SendMessage relayed")
                }
                Err(r) => failures.push((name.clone(), r)),
            }
        }
        match failures.as_slice() {
            [] => respond(code::OK, "", Some(&message_id)),
            [(name, r)] if to.len() == 1 => {
                tracing::info!(user = %ctx.user, to = %name, "SendMessage refused: {r}");
                respond(refusal_code(r), &r.to_string(), None)
            }
            many => {
                let c = if many.len() == to.len() {
                    refusal_code(&many[0].1)
                } else {
                    code::OK + 1
                };
                let mut res = csp::result(c, "some recipients were refused");
                for (name, r) in many {
                    res = res.with(
                        Element::new("DetailedResult")
                            .with(Element::text("Code", &refusal_code(r).to_string()))
                            .with(Element::text("Description", &r.to_string()))
                            .with(Element::text("UserID", name)),
                    );
                }
                Element::new("SendMessage-Response")
                    .with(res)
                    .with_all((c == code::OK + 1).then(|| Element::text("MessageID", &message_id)))
            }
        }
    }

    /// Queues `primitive` for the user's newest live session; `false` if none.
    fn push_to_user(&self, user: &str, primitive: Element) -> bool {
        let max = self.cfg.limits.max_queue;
        let mut sessions = self.sessions();
        let newest = sessions.of_user(user).max_by_key(|s| s.last_seen);
        newest.is_some_and(|s| s.push(primitive, max))
    }

    /// The `MessageInfo` of a message for `recipient` (their UserID).
    fn message_info(&self, msg: &SmsToIm, recipient: &str) -> Element {
        let sender = self.wv_of(&msg.from);
        let mut sender_user = Element::new("User").with(Element::text("UserID", &sender));
        if let Some(name) = &msg.from_name {
            sender_user = sender_user.with(Element::text("ScreenName", name));
        }
        Element::new("MessageInfo")
            .with(Element::text("MessageID", &offer_id(msg.inbound)))
            .with(Element::text("ContentType", "text/plain"))
            .with(Element::text("ContentEncoding", "None"))
            .with(Element::text("ContentSize", &msg.text.len().to_string()))
            .with(Element::new("Recipient").with(user_el(recipient)))
            .with(Element::new("Sender").with(sender_user))
            .with(Element::text("DateTime", &msg.received.to_string()))
    }

    /// Hands `msg` to the newest session of its user as the client asked
    /// (NewMessage, or MessageNotification for Notify/Get) and remembers it
    /// until the client confirms it. Offered again with the same MessageID,
    /// it is not queued twice.
    fn offer(&self, msg: &SmsToIm) -> DeliveryResult {
        let max = self.cfg.limits.max_queue;
        let mut sessions = self.sessions();
        let Some(s) = sessions.of_user(&msg.to_user).max_by_key(|s| s.last_seen) else {
            return DeliveryResult::Retry("not logged in".into());
        };
        let id = offer_id(msg.inbound);
        let info = self.message_info(msg, &s.user_id);
        let offer = Offer {
            inbound: msg.inbound,
            info: info.clone(),
            content: msg.text.clone(),
            confirmed: false,
            transaction: None,
        };
        if !s.remember_offer(&id, offer, max) {
            return DeliveryResult::Retry("too many messages unconfirmed".into());
        }
        if s.queued_message(&id) {
            return DeliveryResult::Offered;
        }
        let push = s.delivery == DeliveryMethod::Push;
        let primitive = if push {
            Element::new("NewMessage")
                .with(info)
                .with(Element::text("ContentData", &msg.text))
        } else {
            Element::new("MessageNotification").with(info)
        };
        let Some(tid) = s.push_tracked(primitive, max) else {
            return DeliveryResult::Retry("queue full".into());
        };
        // A notification is not the message: only its fetch confirms it.
        if push && let Some(o) = s.offered.get_mut(&id) {
            o.transaction = Some(tid);
        }
        DeliveryResult::Offered
    }

    /// The client answered our transaction `tid` with a Status: if it
    /// carried a NewMessage and says 200, the client has that message.
    pub(super) async fn status_answered(&self, ctx: &Ctx, tid: Option<&str>, status: &Element) {
        if status.text_at(&["Result", "Code"]) != Some("200") {
            return;
        }
        let Some(tid) = tid else {
            return;
        };
        let message_id = self.sessions().of_user(&ctx.user).find_map(|s| {
            s.offered
                .iter()
                .find(|(_, o)| o.transaction.as_deref() == Some(tid))
                .map(|(id, _)| id.clone())
        });
        if let Some(id) = message_id
            && let Err((_, why)) = self.confirm(ctx, &id).await
        {
            tracing::info!(user = %ctx.user, "Status for NewMessage {id} not taken: {why}");
        }
    }

    /// The offer `message_id` made to any session of `user`, if any.
    fn offer_of(&self, user: &str, message_id: &str) -> Option<Offer> {
        self.sessions()
            .of_user(user)
            .find_map(|s| s.offered.get(message_id).cloned())
    }

    /// The client has the message `message_id` (MessageDelivered, or
    /// GetMessage): the bridge is told, and the offer kept as confirmed.
    /// The offer on success; a CSP code and why on failure (426 for an id
    /// never offered to this user).
    async fn confirm(&self, ctx: &Ctx, message_id: &str) -> Result<Offer, (u16, String)> {
        let Some(offer) = self.offer_of(&ctx.user, message_id) else {
            return Err((
                code::INVALID_MESSAGE_ID,
                format!("no message {message_id} was offered to this user"),
            ));
        };
        if !offer.confirmed {
            self.bridge
                .im_received(ctx.user.clone(), offer.inbound)
                .await
                .map_err(|r| (refusal_code(&r), r.to_string()))?;
            for s in self.sessions().of_user(&ctx.user) {
                if let Some(o) = s.offered.get_mut(message_id) {
                    o.confirmed = true;
                }
            }
            tracing::info!(user = %ctx.user, inbound = offer.inbound.0, "IMPS client confirmed a message");
        }
        Ok(offer)
    }

    /// `MessageDelivered` (as a request, or as the answer to a NewMessage).
    pub(super) async fn message_delivered(&self, ctx: &Ctx, p: &Element) -> Element {
        let Some(id) = p.text_at(&["MessageID"]).filter(|i| !i.is_empty()) else {
            return csp::status(code::BAD_REQUEST, "no MessageID");
        };
        match self.confirm(ctx, id).await {
            Ok(_) => csp::status(code::OK, ""),
            Err((c, why)) => {
                tracing::info!(user = %ctx.user, "MessageDelivered refused: {why}");
                csp::status(c, &why)
            }
        }
    }

    /// `GetMessage-Request` (Notify/Get): the message, confirmed as
    /// delivered as it is handed over.
    pub(super) async fn get_message(&self, ctx: &Ctx, p: &Element) -> Element {
        let Some(id) = p.text_at(&["MessageID"]).filter(|i| !i.is_empty()) else {
            return csp::status(code::BAD_REQUEST, "no MessageID");
        };
        match self.confirm(ctx, id).await {
            Ok(offer) => Element::new("GetMessage-Response")
                .with(offer.info)
                .with(Element::text("ContentData", &offer.content)),
            Err((c, why)) => {
                tracing::info!(user = %ctx.user, "GetMessage refused: {why}");
                csp::status(c, &why)
            }
        }
    }

    /// `SetDeliveryMethod-Request`: push or Notify/Get from now on.
    pub(super) fn set_delivery_method(&self, ctx: &Ctx, p: &Element) -> Element {
        let Some(method) = p.text_at(&["DeliveryMethod"]) else {
            return csp::status(code::BAD_REQUEST, "no DeliveryMethod");
        };
        if let Ok(s) = self.sessions().touch(ctx.now, &ctx.session_id) {
            s.delivery = DeliveryMethod::parse(method);
        }
        csp::status(code::OK, "")
    }

    /// A session of `ended`'s user ended with messages unconfirmed: if the
    /// user has another session, they are offered there now; if not, the
    /// next login offers them.
    pub(super) fn session_ended(&self, ended: &Session) {
        if ended.unconfirmed() && self.sessions().is_online(&ended.user) {
            self.bridge.user_online(ended.user.clone());
        }
    }

    fn delivery_report(&self, n: &DeliveryNotice) -> Element {
        let (c, why) = delivery_result(n);
        // Another user of the bridge by their user part; a subscriber by
        // number; a user of another domain keeps their domain.
        let recipient = match &n.recipient_user {
            Some(part) => format!("wv:{part}@{}", self.cfg.domain),
            None => self.wv_of(&n.recipient),
        };
        Element::new("DeliveryReport-Request")
            .with(csp::result(c, &why))
            .with(
                Element::new("MessageInfo")
                    .with(Element::text("MessageID", &n.im_message_id))
                    .with(Element::new("Recipient").with(user_el(&recipient))),
            )
            .with(Element::text("DeliveryTime", &n.at.to_string()))
    }
}

/// CSP status 202 "Accepted": the request was taken on, its processing is not
/// complete. The CSP has no "delivery unknown" code; in a DeliveryReport this is
/// the one that claims neither success (200) nor failure (4xx/5xx).
const ACCEPTED_NOT_CONFIRMED: u16 = 202;

/// The DeliveryReport's Result for a bridge notice: 200 delivered; 542 expired
/// (validity period over before the queue or the network could deliver it);
/// 410 any other failure, and a delivery unknown by default; 202 for a delivery
/// unknown when the sender is to be told neutrally.
fn delivery_result(n: &DeliveryNotice) -> (u16, String) {
    if n.delivered {
        return (code::OK, String::new());
    }
    let why = n.reason.clone().unwrap_or_else(|| "not delivered".into());
    let c = if n.neutral {
        ACCEPTED_NOT_CONFIRMED
    } else if n.cause == Some(FailureCause::Expired) {
        code::EXPIRED
    } else {
        code::UNABLE_TO_DELIVER
    };
    (c, why)
}

/// The IMPS front end as the bridge sees it.
#[derive(Clone)]
pub struct ImpsFrontEnd(pub Arc<Server>);

impl ImFrontEnd for ImpsFrontEnd {
    fn deliver(&self, msg: SmsToIm) -> BoxFuture<DeliveryResult> {
        let server = Arc::clone(&self.0);
        Box::pin(async move { server.offer(&msg) })
    }

    fn notify(&self, notice: DeliveryNotice) -> BoxFuture<DeliveryResult> {
        let server = Arc::clone(&self.0);
        Box::pin(async move {
            // CSP has delivery reports only: a display notification is
            // not something an IMPS client can be told.
            if notice.displayed {
                tracing::debug!(user = %notice.to_user, id = %notice.im_message_id, "display notification: IMPS has no way to say it");
                return DeliveryResult::Delivered;
            }
            let report = server.delivery_report(&notice);
            if server.push_to_user(&notice.to_user, report) {
                DeliveryResult::Delivered
            } else {
                DeliveryResult::Retry("not logged in".into())
            }
        })
    }

    /// A SIP user registered, went away or published: IMPS watchers of that
    /// user hear.
    fn presence_changed(&self, user_part: &str, presence: &Presence) {
        self.0.sip_presence_changed(user_part, presence);
    }

    fn user_presence(&self, user_part: &str) -> Option<Presence> {
        Some(self.0.own_presence(user_part))
    }

    /// News of a foreign watch of an IMPS user: a PresenceNotification.
    fn foreign_presence(&self, update: ForeignPresence) {
        self.0.foreign_presence(update);
    }

    /// A watcher waits for an IMPS user: their sessions are asked.
    fn watcher_pending(&self, presentity: &str, watcher: &str) {
        self.0.watcher_pending(presentity, watcher);
    }

    /// A presentity decided about an IMPS watcher: their subscriptions show it.
    fn watch_changed(&self, change: &WatchChanged) {
        self.0.watch_changed(change);
    }

    fn online(&self, address: &str) -> Option<bool> {
        let part = user_part(address).to_owned();
        let online = self.0.sessions().is_online(address);
        Some(online || self.0.online_by_part(&part))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_bodies_lose_their_tags() {
        assert_eq!(
            strip_tags("<span style=\"x\">Hi</span> <b>Bob</b>"),
            "Hi Bob"
        );
        assert_eq!(strip_tags("1 < 2"), "1 ");
    }

    #[test]
    fn delivery_report_results() {
        let n = |delivered, neutral, cause| DeliveryNotice {
            displayed: false,
            recipient_user: None,
            to_user: "wv:alice@sms.test".into(),
            front_end: FrontEnd::Imps,
            im_message_id: "m1".into(),
            recipient: "+4917".into(),
            delivered,
            neutral,
            at: crate::bridge::api::UnixTime(0),
            reason: (!delivered).then(|| "no status report within 49h".to_owned()),
            cause,
        };
        let unknown = Some(FailureCause::DeliveryUnknown);
        assert_eq!(delivery_result(&n(true, false, None)), (200, String::new()));
        let why = "no status report within 49h".to_owned();
        assert_eq!(
            delivery_result(&n(false, false, unknown)),
            (410, why.clone())
        );
        assert_eq!(
            delivery_result(&n(false, true, unknown)),
            (202, why.clone())
        );
        let expired = Some(FailureCause::Expired);
        assert_eq!(delivery_result(&n(false, false, expired)), (542, why));
    }
}
