//! Reactive presence authorisation, the presentity's side: a watcher no rule
//! of an IMPS user decides waits, the user is asked, and their answer
//! becomes a rule at the bridge (`BridgeApi::decide_watcher`); when a
//! decision changes, the watcher's subscriptions here show it.
//!
//! What the CSP versions define (read from the WV-CSP token tables of
//! libwbxml as kept in the AOSP IM engine (`csp13_data.h`, whose header lists
//! what 1.3 removed), the Symbian IMPS 1.2 token dictionary, Wireshark's
//! WV-CSP tables, the AOSP engine's `ImpsContactListManager`, and the Baraza
//! IMPS server's message definitions and presence handlers):
//!
//! - CSP 1.1 and 1.2: the server asks the presentity with a server-initiated
//!   `PresenceAuth-Request` (the watcher's `UserID`, optionally the
//!   `PresenceSubList` of attributes asked), which the client acknowledges
//!   with a `Status`. The presentity answers later in a transaction of its
//!   own, `PresenceAuth-User` (`UserID`, `Acceptance` T/F, optionally a
//!   `PresenceSubList`), answered with a `Status`; `CancelAuth-Request`
//!   (`UserID`) withdraws an authorisation given. CSP 1.2 adds the status
//!   query `GetReactiveAuthStatus-Request` → `GetReactiveAuthStatus-Response`
//!   with a `ReactiveAuthStatusList` of `ReactiveAuthStatus` (`UserID`,
//!   `ReactiveAuthState` GRANTED / DENIED / PENDING).
//! - CSP 1.3 removed all of these (`PresenceAuth-Request`,
//!   `PresenceAuth-User`, `CancelAuth-Request`, `GetReactiveAuthStatus-*`,
//!   the `REACT` and `CAAUT` functions). Authorisation moved to the
//!   presentity's attribute lists, whose `UserNotify` / `DefaultNotify` /
//!   `ContactListNotify` flags ask to be told of watchers they do not cover;
//!   the server tells with the general `Notification-Request` of
//!   `NotificationType` `ANU` (with the watcher in a `UserIDList`), and the
//!   presentity grants with `CreateAttributeList-Request` naming the watcher
//!   (or `ListManage-Request` with `AuthorizeAndGrant`).
//!
//! So a 1.1/1.2 session is asked with `PresenceAuth-Request` and a 1.3
//! session with `Notification-Request` `ANU` (a 1.3 document cannot carry the
//! removed primitive). The answer is taken in every version as
//! `PresenceAuth-User` (the AOSP engine sends it in 1.3 sessions too, and the
//! token tables read it there), a withdrawal as `CancelAuth-Request`, and,
//! in the 1.3 way, as a
//! `CreateAttributeList-Request` naming users (granted) or a
//! `DeleteAttributeList-Request` naming users (refused). Acceptance is for
//! all attributes or none: a `PresenceSubList` in the answer is not a
//! partial grant. The status query answers from `BridgeApi::watchers`.

use super::csp::{self, code};
use super::presence::{decision_key, presence_of};
use super::server::{Ctx, Server, refusal_code};
use super::session::Session;
use super::wbxml::Version;
use crate::bridge::api::{SubHandling, Target, WatchChanged, WatchDecision, Watched};
use crate::bridge::user_part;
use crate::xml::Element;

/// The 1.3 `NotificationType` of a watcher asking for attributes the
/// presentity has not authorised.
const AUTHORISATION_NEEDED: &str = "ANU";

/// The UserIDs a request names: bare `UserID`s, `User/UserID` and
/// `UserIDList/UserID`.
fn user_ids(p: &Element) -> Vec<String> {
    p.children_named("UserID")
        .map(|u| u.text.trim())
        .chain(
            p.children_named("User")
                .filter_map(|u| u.text_at(&["UserID"]))
                .map(str::trim),
        )
        .chain(
            p.children_named("UserIDList")
                .flat_map(|l| l.children_named("UserID"))
                .map(|u| u.text.trim()),
        )
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The refusal of an attribute-list request that names contact lists or
/// the default list (kept per user only), if it does.
fn users_only(p: &Element) -> Option<Element> {
    let lists = p.child("ContactList").is_some()
        || p.child("ContactListIDList").is_some()
        || csp::is_true(p.text_at(&["DefaultList"]));
    lists.then(|| {
        csp::status(
            code::NOT_SUPPORTED,
            "attribute lists are kept for users only, not for contact lists or the default list",
        )
    })
}

/// Where a watch stands, as the 1.2 status query says it.
fn reactive_state(d: WatchDecision) -> &'static str {
    match d {
        WatchDecision::Allow => "GRANTED",
        WatchDecision::PoliteBlock | WatchDecision::Block => "DENIED",
        WatchDecision::Pending => "PENDING",
    }
}

impl Server {
    /// Whether session `s` is the user `address`'s: their address at the
    /// bridge, their UserID, or either scheme with their user part at this
    /// server's domain.
    fn session_of(&self, s: &Session, address: &str) -> bool {
        if s.user.eq_ignore_ascii_case(address) || s.user_id.eq_ignore_ascii_case(address) {
            return true;
        }
        let ours = address
            .rsplit_once('@')
            .is_some_and(|(_, d)| d.eq_ignore_ascii_case(&self.cfg.domain));
        let part = user_part(address);
        ours && (user_part(&s.user).eq_ignore_ascii_case(part)
            || user_part(&s.user_id).eq_ignore_ascii_case(part))
    }

    /// What asks a session of CSP `version` whether `watcher` (a UserID) may
    /// watch.
    fn authorisation_request(version: Version, watcher: &str) -> Element {
        match version {
            Version::V11 | Version::V12 => {
                Element::new("PresenceAuth-Request").with(Element::text("UserID", watcher))
            }
            Version::V13 => Element::new("Notification-Request")
                .with(Element::text("NotificationType", AUTHORISATION_NEEDED))
                .with(Element::new("UserIDList").with(Element::text("UserID", watcher))),
        }
    }

    /// Asks session `s` about `watcher` (a UserID) unless a question about
    /// them already waits there.
    fn ask_session(&self, s: &mut Session, watcher: &str) {
        let asked = s.queue.iter().any(|q| {
            let p = &q.primitive;
            (p.name == "PresenceAuth-Request" || p.name == "Notification-Request")
                && user_ids(p).iter().any(|u| u.eq_ignore_ascii_case(watcher))
        });
        if !asked {
            let request = Self::authorisation_request(s.version, watcher);
            s.push(request, self.cfg.limits.max_queue);
        }
    }

    /// A watcher waits for the IMPS user `presentity`: every session of
    /// theirs is asked (one logged out is asked at their next Login).
    pub(super) fn watcher_pending(&self, presentity: &str, watcher: &str) {
        let watcher = self.wv_of(watcher);
        let mut asked = 0;
        for s in self.sessions().all_mut() {
            if self.session_of(s, presentity) {
                self.ask_session(s, &watcher);
                asked += 1;
            }
        }
        tracing::info!(%presentity, %watcher, sessions = asked, "IMPS presentity asked about a watcher");
    }

    /// At Login: the session of `user` is asked about every watcher still
    /// waiting for them.
    pub(super) async fn ask_pending_at_login(&self, session_id: &str, user: &str) {
        let watchers = match self.bridge.watchers(user.to_owned()).await {
            Ok(w) => w,
            Err(r) => {
                tracing::debug!(%user, "no watchers to ask about: {r}");
                return;
            }
        };
        let pending: Vec<String> = watchers
            .iter()
            .filter(|w| w.decision == WatchDecision::Pending)
            .map(|w| self.wv_of(&w.watcher))
            .collect();
        let mut sessions = self.sessions();
        if let Some(s) = sessions.all_mut().find(|s| s.id == session_id) {
            for w in &pending {
                self.ask_session(s, w);
            }
        }
    }

    /// `PresenceAuth-User` (and the 1.3 attribute-list grants): the
    /// presentity's answer about watchers, handed to the bridge as a rule.
    pub(super) async fn presence_auth_user(&self, ctx: &Ctx, p: &Element) -> Element {
        let handling = match p.text_at(&["Acceptance"]).map(str::trim) {
            Some(a) if a.eq_ignore_ascii_case("T") => SubHandling::Allow,
            Some(a) if a.eq_ignore_ascii_case("F") => SubHandling::Block,
            _ => return csp::status(code::BAD_REQUEST, "Acceptance must be T or F"),
        };
        self.decide(ctx, p, handling).await
    }

    /// The presentity `ctx`'s decision `handling` about every watcher `p`
    /// names.
    pub(super) async fn decide(&self, ctx: &Ctx, p: &Element, handling: SubHandling) -> Element {
        let watchers = user_ids(p);
        if watchers.is_empty() {
            return csp::status(code::BAD_REQUEST, "no UserID");
        }
        for w in watchers {
            let decided = self
                .bridge
                .decide_watcher(ctx.user.clone(), w.clone(), handling)
                .await;
            if let Err(r) = decided {
                tracing::info!(user = %ctx.user, watcher = %w, "presence authorisation refused: {r}");
                return csp::status(refusal_code(&r), &r.to_string());
            }
            tracing::info!(user = %ctx.user, watcher = %w, ?handling, "presence authorisation");
        }
        csp::status(code::OK, "")
    }

    /// `CreateAttributeList-Request` naming users (the 1.3 grant): the
    /// users named may see the presentity (nothing, for a `PresenceSubList`
    /// that names no attribute). Lists for contact lists or the default list
    /// are not kept.
    pub(super) async fn grant_attributes(&self, ctx: &Ctx, p: &Element) -> Element {
        if let Some(refused) = users_only(p) {
            return refused;
        }
        let handling = match p.child("PresenceSubList") {
            Some(l) if l.children.is_empty() => SubHandling::Block,
            _ => SubHandling::Allow,
        };
        self.decide(ctx, p, handling).await
    }

    /// `DeleteAttributeList-Request` naming users: they may no longer see
    /// the presentity.
    pub(super) async fn revoke_attributes(&self, ctx: &Ctx, p: &Element) -> Element {
        if let Some(refused) = users_only(p) {
            return refused;
        }
        self.decide(ctx, p, SubHandling::Block).await
    }

    /// `GetReactiveAuthStatus-Request`: where the watchers of `ctx`'s user
    /// (those named, or all) stand.
    pub(super) async fn reactive_auth_status(&self, ctx: &Ctx, p: &Element) -> Element {
        let respond = |result: Element, list: Option<Element>| {
            Element::new("GetReactiveAuthStatus-Response")
                .with(result)
                .with_all(list)
        };
        let wanted: Vec<String> = user_ids(p)
            .iter()
            .map(|u| self.wv_of(u).to_ascii_lowercase())
            .collect();
        let watchers = match self.bridge.watchers(ctx.user.clone()).await {
            Ok(w) => w,
            Err(r) => return respond(csp::result(refusal_code(&r), &r.to_string()), None),
        };
        let statuses: Vec<Element> = watchers
            .iter()
            .map(|w| (self.wv_of(&w.watcher), w.decision))
            .filter(|(id, _)| wanted.is_empty() || wanted.contains(&id.to_ascii_lowercase()))
            .map(|(id, d)| {
                Element::new("ReactiveAuthStatus")
                    .with(Element::text("UserID", &id))
                    .with(Element::text("ReactiveAuthState", reactive_state(d)))
            })
            .collect();
        let list = (!statuses.is_empty())
            .then(|| Element::new("ReactiveAuthStatusList").with_all(statuses));
        respond(csp::result(code::OK, ""), list)
    }

    /// A presentity's decision on a watcher changed: the watcher's sessions
    /// here that subscribed to them are shown it at once (full presence,
    /// offline, or nothing); refused, the subscription ends.
    pub(super) fn watch_changed(&self, change: &WatchChanged) {
        let part = user_part(&change.presentity).to_owned();
        let watchers: Vec<String> = self
            .sessions()
            .all_mut()
            .filter(|s| self.session_of(s, &change.watcher))
            .map(|s| s.user.to_ascii_lowercase())
            .collect();
        let mut front_end = None;
        {
            let mut book = self.book();
            for w in &watchers {
                if let Some(d) = book.decisions.get_mut(&decision_key(w, &part)) {
                    d.decision = change.decision;
                    front_end = Some(d.front_end);
                }
            }
        }
        // Never watched here: nothing to show.
        let Some(front_end) = front_end else {
            return;
        };
        let watched = Watched {
            target: Target::User {
                user_part: part.clone(),
                front_end,
                name: None,
            },
            online: None,
            decision: change.decision,
            unavailable: None,
        };
        let id = self.wv_id(&watched.target);
        // Refused or pending again: a Presence without attributes.
        let el = self
            .shown("", &watched, change.decision)
            .unwrap_or_else(|| presence_of(&id, Vec::new()));
        let max = self.cfg.limits.max_queue;
        let mut sessions = self.sessions();
        for s in sessions.all_mut() {
            let watching = s
                .watching
                .iter()
                .any(|w| user_part(w).eq_ignore_ascii_case(&part));
            if !watching || !self.session_of(s, &change.watcher) {
                continue;
            }
            s.push(
                Element::new("PresenceNotification-Request").with(el.clone()),
                max,
            );
            if change.decision == WatchDecision::Block {
                s.watching
                    .retain(|w| !user_part(w).eq_ignore_ascii_case(&part));
            }
        }
        tracing::info!(presentity = %change.presentity, watcher = %change.watcher, decision = ?change.decision, "IMPS watch changed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_read_in_every_form() {
        let p = Element::new("PresenceAuth-User")
            .with(Element::text("UserID", " wv:a@x "))
            .with(Element::new("User").with(Element::text("UserID", "wv:b@x")))
            .with(
                Element::new("UserIDList")
                    .with(Element::text("UserID", "wv:c@x"))
                    .with(Element::text("UserID", "")),
            );
        assert_eq!(user_ids(&p), ["wv:a@x", "wv:b@x", "wv:c@x"]);
    }

    #[test]
    fn each_version_is_asked_in_its_own_form() {
        for v in [Version::V11, Version::V12] {
            let r = Server::authorisation_request(v, "wv:harry@x");
            assert_eq!(r.name, "PresenceAuth-Request");
            assert_eq!(r.text_at(&["UserID"]), Some("wv:harry@x"));
        }
        let r = Server::authorisation_request(Version::V13, "wv:harry@x");
        assert_eq!(r.name, "Notification-Request");
        assert_eq!(r.text_at(&["NotificationType"]), Some("ANU"));
        assert_eq!(r.text_at(&["UserIDList", "UserID"]), Some("wv:harry@x"));
    }
}
