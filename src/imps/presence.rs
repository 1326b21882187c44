//! Presence: GetPresence, SubscribePresence, UnsubscribePresence,
//! UpdatePresence and the PresenceNotification-Requests sent through polling,
//! and the CSP presence attributes ↔ [`Presence`] mapping
//! (`docs/presence-mapping.md`). An SMS-only subscriber always shows
//! OnlineStatus T with its MSISDN as ClientID, ClientInfo ClientType CLI,
//! UserAvailability AVAILABLE and StatusText "SMS-only"; a user of the
//! bridge shows their UpdatePresence attributes while logged in (kept per
//! user) or what their SIP registration or publication says; a user of
//! another domain shows what their server last notified of the watch
//! (`ImApi::watch_foreign`). The watcher's contact lists authorise watching
//! (in the list and not blocked = allowed).

use std::collections::HashMap;

use super::csp::{self, PA_NS, code};
use super::server::{Ctx, Server, refusal_code};
use crate::bridge::api::{ForeignPresence, ForeignWatchState, FrontEnd, Refusal, Target, Watched};
use crate::bridge::user_part;
use crate::presence::{Availability, ClientInfo, Presence};
use crate::xml::Element;

/// Foreign watches remembered (watcher, presentity) in total.
pub(super) const MAX_FOREIGN_WATCHES: usize = 10_000;
/// Foreign watches one watcher may hold.
pub(super) const MAX_FOREIGN_PER_WATCHER: usize = 256;
/// SIP users whose presence is remembered for IMPS watchers.
const MAX_SIP_USERS: usize = 10_000;

/// What the server remembers of presence beyond the sessions: each logged-in
/// user's own attributes (UpdatePresence), SIP users' presence as the SIP
/// front end told it, and the foreign watches of IMPS users with their
/// latest state.
#[derive(Debug, Default)]
pub(super) struct PresenceBook {
    /// By user part (lower-cased): the last `PresenceSubList` children.
    own: HashMap<String, Vec<Element>>,
    /// By user part (lower-cased).
    sip: HashMap<String, Presence>,
    /// By (watcher UserID lower-cased, presentity `sip:` URI).
    foreign: HashMap<(String, String), ForeignWatchState>,
}

fn attr(name: &str, value: &str) -> Element {
    Element::new(name)
        .with(Element::text("Qualifier", "T"))
        .with(Element::text("PresenceValue", value))
}

fn msisdn_client(msisdn: &str) -> Element {
    Element::new("ClientID").with(Element::text("MSISDN", msisdn))
}

/// The PresenceSubList of an SMS-only subscriber; with `unavailable` (they
/// opted out, say: `Watched::unavailable`) offline and not available, with
/// why in the status text.
pub(super) fn sms_only(msisdn: &str, unavailable: Option<&str>) -> Vec<Element> {
    let (online, availability, text) = match unavailable {
        Some(why) => ("F", "NOT_AVAILABLE", format!("SMS-only: {why}")),
        None => ("T", "AVAILABLE", "SMS-only".to_owned()),
    };
    vec![
        attr("OnlineStatus", online).with(msisdn_client(msisdn)),
        Element::new("ClientInfo")
            .with(Element::text("Qualifier", "T"))
            .with(Element::text("ClientType", "CLI"))
            .with(msisdn_client(msisdn)),
        attr("UserAvailability", availability),
        attr("StatusText", &text),
    ]
}

/// RPID moods (RFC 4480 §3.5) that IMPS `StatusMood` carries, as the CSP
/// writes them upper-cased (`in_love` ↔ `IN_LOVE`).
const MOODS: &[&str] = &[
    "afraid",
    "amazed",
    "angry",
    "annoyed",
    "anxious",
    "ashamed",
    "bored",
    "brave",
    "calm",
    "cold",
    "confused",
    "contented",
    "cranky",
    "curious",
    "depressed",
    "disappointed",
    "disgusted",
    "distracted",
    "embarrassed",
    "excited",
    "flirtatious",
    "frustrated",
    "grumpy",
    "guilty",
    "happy",
    "hot",
    "humbled",
    "humiliated",
    "hungry",
    "hurt",
    "impressed",
    "in_awe",
    "in_love",
    "indignant",
    "interested",
    "invincible",
    "jealous",
    "lonely",
    "mean",
    "moody",
    "nervous",
    "neutral",
    "offended",
    "playful",
    "proud",
    "relieved",
    "remorseful",
    "restless",
    "sad",
    "sarcastic",
    "serious",
    "shocked",
    "shy",
    "sick",
    "sleepy",
    "stressed",
    "surprised",
    "thirsty",
    "worried",
];

/// The CSP presence attributes (`PresenceSubList` children) showing `p`.
pub(crate) fn attributes(p: &Presence) -> Vec<Element> {
    let availability = match (p.open, p.availability) {
        (false, _) => "NOT_AVAILABLE",
        (true, Some(Availability::Discreet)) => "DISCREET",
        (true, Some(Availability::NotAvailable)) => "NOT_AVAILABLE",
        (true, _) => "AVAILABLE",
    };
    let mut out = vec![
        attr("OnlineStatus", csp::tf(p.open)),
        attr("UserAvailability", availability),
    ];
    if let Some(note) = p.note.as_deref().filter(|n| !n.is_empty()) {
        out.push(attr("StatusText", note));
    }
    if let Some(m) = p.mood.as_deref().filter(|m| MOODS.contains(m)) {
        out.push(attr("StatusMood", &m.to_ascii_uppercase()));
    }
    if let Some(c) = &p.client {
        let fields = [
            ("ClientType", &c.client_type),
            ("ClientProducer", &c.producer),
            ("Model", &c.model),
        ];
        let mut el = Element::new("ClientInfo").with(Element::text("Qualifier", "T"));
        for (name, v) in fields {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                el = el.with(Element::text(name, v));
            }
        }
        out.push(el);
    }
    out
}

/// The value of a qualified attribute (`Qualifier` F means "not valid").
fn value_of<'a>(attrs: &'a [Element], name: &str) -> Option<&'a str> {
    let a = attrs.iter().find(|a| a.name == name)?;
    if a.text_at(&["Qualifier"]) == Some("F") {
        return None;
    }
    Some(a.text_at(&["PresenceValue"]).unwrap_or(""))
}

/// What a user who is logged in (`online`) and set `attrs` shows. Their
/// OnlineStatus F hides them (offline); attributes they did not set say
/// nothing.
pub(crate) fn to_presence(online: bool, attrs: &[Element]) -> Presence {
    let open = online && value_of(attrs, "OnlineStatus") != Some("F");
    let availability = match value_of(attrs, "UserAvailability") {
        Some("AVAILABLE") => Some(Availability::Available),
        Some("DISCREET") => Some(Availability::Discreet),
        Some("NOT_AVAILABLE") => Some(Availability::NotAvailable),
        _ => None,
    };
    let note = value_of(attrs, "StatusText")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let mood = value_of(attrs, "StatusMood")
        .map(str::to_ascii_lowercase)
        .filter(|m| MOODS.contains(&m.as_str()));
    let client = attrs
        .iter()
        .find(|a| a.name == "ClientInfo" && a.text_at(&["Qualifier"]) != Some("F"))
        .map(|c| {
            let field = |n: &str| c.text_at(&[n]).filter(|v| !v.is_empty()).map(str::to_owned);
            ClientInfo {
                client_type: field("ClientType"),
                producer: field("ClientProducer"),
                model: field("Model"),
            }
        })
        .filter(|c| *c != ClientInfo::default());
    Presence {
        open,
        availability: if open { availability } else { None },
        activities: Vec::new(),
        mood,
        note,
        client,
    }
}

/// What a foreign watch shows: the presentity's presence once authorised,
/// offline while pending or after it ended.
fn foreign_shown(state: Option<&ForeignWatchState>) -> Presence {
    match state {
        Some(ForeignWatchState::Active(p)) => p.clone(),
        _ => Presence::offline(),
    }
}

/// The presence attributes a client may set about itself.
const SETTABLE: &[&str] = &[
    "OnlineStatus",
    "UserAvailability",
    "StatusText",
    "StatusMood",
    "StatusContent",
    "Alias",
    "ClientInfo",
    "CommCap",
    "ContactInfo",
    "FreeTextLocation",
    "PreferredLanguage",
];

impl Server {
    fn book(&self) -> std::sync::MutexGuard<'_, PresenceBook> {
        self.presence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether some IMPS session belongs to a user with this user part.
    pub(super) fn online_by_part(&self, part: &str) -> bool {
        self.sessions()
            .all_mut()
            .any(|s| user_part(&s.user).eq_ignore_ascii_case(part))
    }

    /// What the IMPS user with this user part shows now.
    pub(super) fn own_presence(&self, part: &str) -> Presence {
        let online = self.online_by_part(part);
        let attrs = self
            .book()
            .own
            .get(&part.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default();
        to_presence(online, &attrs)
    }

    /// A SIP user's presence as the SIP front end last told it (offline
    /// too: a publication can say closed while the user is registered).
    /// When the table is full an offline entry makes room; failing that the
    /// user is shown by registration alone.
    pub(super) fn sip_presence_changed(&self, part: &str, p: &Presence) {
        {
            let mut book = self.book();
            let key = part.to_ascii_lowercase();
            if book.sip.len() >= MAX_SIP_USERS && !book.sip.contains_key(&key) {
                let offline = book
                    .sip
                    .iter()
                    .find(|(_, v)| **v == Presence::offline())
                    .map(|(k, _)| k.clone());
                if let Some(k) = offline {
                    book.sip.remove(&k);
                }
            }
            if book.sip.len() < MAX_SIP_USERS || book.sip.contains_key(&key) {
                book.sip.insert(key, p.clone());
            }
        }
        self.push_presence(part, FrontEnd::Sip, p.open);
    }

    fn presence_el(&self, watcher: &str, w: &Watched) -> Element {
        let sub = match &w.target {
            Target::Subscriber { msisdn, .. } => sms_only(msisdn, w.unavailable.as_deref()),
            Target::Foreign { address, .. } => {
                let key = (watcher.to_ascii_lowercase(), address.clone());
                attributes(&foreign_shown(self.book().foreign.get(&key)))
            }
            Target::User {
                user_part: part,
                front_end: FrontEnd::Imps,
                ..
            } => {
                let own = self.book().own.get(&part.to_ascii_lowercase()).cloned();
                match own {
                    // What they set, as they set it, while logged in.
                    Some(attrs) if !attrs.is_empty() && self.online_by_part(part) => attrs,
                    _ => attributes(&self.own_presence(part)),
                }
            }
            Target::User {
                user_part: part, ..
            } => {
                let known = self.book().sip.get(&part.to_ascii_lowercase()).cloned();
                attributes(&known.unwrap_or_else(|| {
                    if w.online.unwrap_or(false) {
                        Presence::online()
                    } else {
                        Presence::offline()
                    }
                }))
            }
        };
        presence_of(&self.wv_id(&w.target), sub)
    }

    /// The names a request asks about: `User/UserID`, bare `UserID`s, and the
    /// entries of any `ContactList` named.
    async fn names(&self, ctx: &Ctx, p: &Element) -> Vec<String> {
        self.names_and_lists(ctx, p).await.0
    }

    /// The UserIDs a request names, directly or through its contact lists,
    /// and the first contact list it names that does not exist.
    async fn names_and_lists(&self, ctx: &Ctx, p: &Element) -> (Vec<String>, Option<String>) {
        let mut names: Vec<String> = p
            .children_named("User")
            .filter_map(|u| u.text_at(&["UserID"]))
            .chain(p.children_named("UserID").map(|u| u.text.trim()))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let wanted: Vec<String> = p
            .children_named("ContactList")
            .map(|c| super::lists::list_name(&c.text))
            .collect();
        let mut missing = None;
        if !wanted.is_empty()
            && let Ok(lists) = self.bridge.lists(ctx.user.clone()).await
        {
            for l in lists.iter().filter(|l| wanted.contains(&l.name)) {
                names.extend(
                    l.entries
                        .iter()
                        .filter(|e| !e.blocked)
                        .map(|e| self.wv_id(&e.target)),
                );
            }
            missing = wanted
                .iter()
                .find(|w| !lists.iter().any(|l| &l.name == *w))
                .cloned();
        }
        (names, missing)
    }

    /// What `ctx`'s user may see of `name`; for a user of another domain the
    /// watch there is started (or kept) first.
    async fn watch(&self, ctx: &Ctx, name: &str) -> Result<Watched, Refusal> {
        let w = self.bridge.watch(ctx.user.clone(), name.to_owned()).await?;
        if let Target::Foreign { address, .. } = &w.target {
            self.watch_foreign(&ctx.user_id, address).await?;
        }
        Ok(w)
    }

    /// Starts the watch of `presentity` for `watcher` unless one is under
    /// way; it is remembered as pending until its first news.
    async fn watch_foreign(&self, watcher: &str, presentity: &str) -> Result<(), Refusal> {
        let key = (watcher.to_ascii_lowercase(), presentity.to_owned());
        {
            let mut book = self.book();
            if book.foreign.contains_key(&key) {
                return Ok(());
            }
            let mine = book.foreign.keys().filter(|(w, _)| *w == key.0).count();
            if book.foreign.len() >= MAX_FOREIGN_WATCHES || mine >= MAX_FOREIGN_PER_WATCHER {
                return Err(Refusal::Busy {
                    retry_after: std::time::Duration::from_secs(60),
                });
            }
            book.foreign.insert(key.clone(), ForeignWatchState::Pending);
        }
        let started = self
            .bridge
            .watch_foreign(watcher.to_owned(), presentity.to_owned())
            .await;
        if started.is_err() {
            self.book().foreign.remove(&key);
        }
        started
    }

    /// Ends `watcher`'s foreign watches that `gone` selects.
    fn unwatch_foreign(&self, watcher: &str, gone: impl Fn(&str) -> bool) {
        let w = watcher.to_ascii_lowercase();
        let ended: Vec<String> = {
            let mut book = self.book();
            let keys: Vec<(String, String)> = book
                .foreign
                .keys()
                .filter(|(kw, p)| *kw == w && gone(p))
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|k| book.foreign.remove(&k).map(|_| k.1))
                .collect()
        };
        for presentity in ended {
            self.bridge.unwatch_foreign(watcher.to_owned(), presentity);
        }
    }

    /// News of a foreign watch: remembered, and pushed to the watcher's
    /// sessions that subscribed to the presentity. A watch the other side
    /// ended is forgotten (the next SubscribePresence or GetPresence starts
    /// a new one); news of a watch we do not hold is dropped.
    pub(super) fn foreign_presence(&self, update: ForeignPresence) {
        let key = (
            update.watcher.to_ascii_lowercase(),
            update.presentity.clone(),
        );
        {
            let mut book = self.book();
            if !book.foreign.contains_key(&key) {
                return;
            }
            if matches!(update.state, ForeignWatchState::Terminated(_)) {
                book.foreign.remove(&key);
            } else {
                book.foreign.insert(key, update.state.clone());
            }
        }
        let target = Target::Foreign {
            address: update.presentity.clone(),
            name: None,
        };
        let id = self.wv_id(&target);
        let el = presence_of(&id, attributes(&foreign_shown(Some(&update.state))));
        let max = self.cfg.limits.max_queue;
        let mut sessions = self.sessions();
        for s in sessions.all_mut() {
            if s.user_id.eq_ignore_ascii_case(&update.watcher)
                && s.watching.iter().any(|w| w.eq_ignore_ascii_case(&id))
            {
                s.push(
                    Element::new("PresenceNotification-Request").with(el.clone()),
                    max,
                );
            }
        }
    }

    /// The user `user` (address) with UserID `user_id` has no session left:
    /// their own attributes go and their foreign watches end.
    pub(super) fn user_gone(&self, user: &str, user_id: &str) {
        let part = user_part(user);
        if self.online_by_part(part) {
            return;
        }
        self.book().own.remove(&part.to_ascii_lowercase());
        self.unwatch_foreign(user_id, |_| true);
    }

    pub(super) async fn get_presence(&self, ctx: &Ctx, p: &Element) -> Element {
        let names = self.names(ctx, p).await;
        if names.is_empty() {
            return Element::new("GetPresence-Response")
                .with(csp::result(code::BAD_REQUEST, "no UserID or ContactList"));
        }
        let mut found = Vec::new();
        let mut refused = Vec::new();
        for n in &names {
            match self.watch(ctx, n).await {
                Ok(w) => found.push(self.presence_el(&ctx.user_id, &w)),
                Err(r) => refused.push((n.clone(), r)),
            }
        }
        let result = match (found.is_empty(), refused.first()) {
            (_, None) => csp::result(code::OK, ""),
            (true, Some((_, r))) if names.len() == 1 => {
                csp::result(refusal_code(r), &r.to_string())
            }
            (_, Some(_)) => {
                let mut res = csp::result(
                    if found.is_empty() {
                        code::FORBIDDEN
                    } else {
                        code::OK + 1
                    },
                    "some users were refused",
                );
                for (n, r) in &refused {
                    res = res.with(
                        Element::new("DetailedResult")
                            .with(Element::text("Code", &refusal_code(r).to_string()))
                            .with(Element::text("Description", &r.to_string()))
                            .with(Element::text("UserID", n)),
                    );
                }
                res
            }
        };
        Element::new("GetPresence-Response")
            .with(result)
            .with_all(found)
    }

    pub(super) async fn subscribe(&self, ctx: &Ctx, p: &Element) -> Element {
        let (names, missing) = self.names_and_lists(ctx, p).await;
        if let Some(list) = missing {
            return csp::status(code::NO_SUCH_LIST, &format!("no contact list {list}"));
        }
        let lists = p.child("ContactList").is_some();
        if names.is_empty() && !lists {
            return csp::status(code::BAD_REQUEST, "no User or ContactList");
        }
        // An empty contact list: subscribed to its nobody.
        let mut presences = Vec::new();
        for n in &names {
            match self.watch(ctx, n).await {
                Ok(w) => {
                    presences.push((self.wv_id(&w.target), self.presence_el(&ctx.user_id, &w)))
                }
                Err(r) => return csp::status(refusal_code(&r), &r.to_string()),
            }
        }
        let max = self.cfg.limits.max_queue;
        let mut sessions = self.sessions();
        if let Ok(s) = sessions.touch(ctx.now, &ctx.session_id)
            && !presences.is_empty()
        {
            let mut initial = Element::new("PresenceNotification-Request");
            for (id, el) in presences {
                if !s.watching.contains(&id) {
                    s.watching.push(id);
                }
                initial = initial.with(el);
            }
            s.push(initial, max);
        }
        csp::status(code::OK, "")
    }

    pub(super) fn unsubscribe(&self, ctx: &Ctx, p: &Element) -> Element {
        let gone: Vec<String> = p
            .children_named("User")
            .filter_map(|u| u.text_at(&["UserID"]))
            .chain(p.children_named("UserID").map(|u| u.text.trim()))
            .map(|s| user_part(s).to_ascii_lowercase())
            .collect();
        let all = p.child("ContactList").is_some() || gone.is_empty();
        let still: Vec<String> = {
            let mut sessions = self.sessions();
            if let Ok(s) = sessions.touch(ctx.now, &ctx.session_id) {
                s.watching
                    .retain(|w| !all && !gone.contains(&user_part(w).to_ascii_lowercase()));
            }
            sessions
                .all_mut()
                .filter(|s| s.user_id.eq_ignore_ascii_case(&ctx.user_id))
                .flat_map(|s| s.watching.iter().map(|w| w.to_ascii_lowercase()))
                .collect()
        };
        // The SIP subscription ends once no session of the user watches.
        let wv = |presentity: &str| {
            self.wv_id(&Target::Foreign {
                address: presentity.to_owned(),
                name: None,
            })
            .to_ascii_lowercase()
        };
        self.unwatch_foreign(&ctx.user_id, |presentity| {
            let id = wv(presentity);
            (all || gone.contains(&user_part(&id).to_ascii_lowercase())) && !still.contains(&id)
        });
        csp::status(code::OK, "")
    }

    pub(super) fn update_presence(&self, ctx: &Ctx, p: &Element) -> Element {
        let Some(list) = p.child("PresenceSubList") else {
            return csp::status(code::BAD_REQUEST, "no PresenceSubList");
        };
        if let Some(bad) = list
            .children
            .iter()
            .find(|a| !SETTABLE.contains(&a.name.as_str()))
        {
            return csp::status(
                code::BAD_PRESENCE_ATTRIBUTE,
                &format!("{} cannot be set", bad.name),
            );
        }
        let attrs = list.children.clone();
        self.book()
            .own
            .insert(user_part(&ctx.user).to_ascii_lowercase(), attrs);
        self.presence_changed(&ctx.user);
        csp::status(code::OK, "")
    }

    /// Tells watchers of the IMPS user `user` (address) their new presence:
    /// IMPS sessions here, SIP watchers through the bridge.
    pub(super) fn presence_changed(&self, user: &str) {
        let part = user_part(user);
        let p = self.own_presence(part);
        let online = self.online_by_part(part);
        self.bridge.presence_changed(user.to_owned(), p);
        self.push_presence(part, FrontEnd::Imps, online);
    }

    /// Pushes a PresenceNotification-Request about the user with this user
    /// part (on `front_end`) to every IMPS session watching it.
    pub(super) fn push_presence(&self, part: &str, front_end: FrontEnd, online: bool) {
        let target = Target::User {
            user_part: part.to_owned(),
            front_end,
            name: None,
        };
        let el = self.presence_el(
            "",
            &Watched {
                target,
                online: Some(online),
                decision: crate::bridge::api::WatchDecision::Allow,
                unavailable: None,
            },
        );
        let max = self.cfg.limits.max_queue;
        let mut sessions = self.sessions();
        for s in sessions.all_mut() {
            if s.watching
                .iter()
                .any(|w| user_part(w).eq_ignore_ascii_case(part))
            {
                s.push(
                    Element::new("PresenceNotification-Request").with(el.clone()),
                    max,
                );
            }
        }
    }
}

/// A `Presence` element for `user_id` with these attributes.
fn presence_of(user_id: &str, attrs: Vec<Element>) -> Element {
    Element::new("Presence")
        .with(Element::text("UserID", user_id))
        .with(
            Element::new("PresenceSubList")
                .attr("xmlns", PA_NS)
                .with_all(attrs),
        )
}

/// One test per row of `docs/presence-mapping.md`, with the PIDF documents of
/// real peers (baresip, Kamailio) among the inputs.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::pidf;

    fn fixture(name: &str) -> Presence {
        let path = format!("{}/tests/fixtures/pidf/{name}", env!("CARGO_MANIFEST_DIR"));
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        pidf::read(&body).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn an_opted_out_subscriber_is_offline_and_not_available_with_why() {
        let shown = |u| {
            let attrs = sms_only("+491715550001", u);
            ["OnlineStatus", "UserAvailability", "StatusText"].map(|n| value(&attrs, n))
        };
        assert_eq!(
            shown(None),
            [
                Some("T".into()),
                Some("AVAILABLE".into()),
                Some("SMS-only".into())
            ]
        );
        assert_eq!(
            shown(Some("opted out of messages (STOP)")),
            [
                Some("F".into()),
                Some("NOT_AVAILABLE".into()),
                Some("SMS-only: opted out of messages (STOP)".into())
            ]
        );
    }

    /// The PresenceValue of `name` in `attrs` (`None`: not there).
    fn value(attrs: &[Element], name: &str) -> Option<String> {
        attrs
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.text_at(&["PresenceValue"]))
            .map(str::to_owned)
    }

    fn set(pairs: &[(&str, &str)]) -> Vec<Element> {
        pairs.iter().map(|(n, v)| attr(n, v)).collect()
    }

    /// What a SIP watcher gets for an IMPS user logged in with `attrs`.
    fn document(attrs: &[Element]) -> String {
        pidf::presence_document(
            "sip:erin@sms.example",
            "sip:erin@sms.example",
            &to_presence(true, attrs),
        )
    }

    #[test]
    fn row_basic_to_online_status() {
        for (file, online) in [
            ("baresip-publish-open.xml", "T"),
            ("baresip-publish-closed.xml", "F"),
            ("baresip-publish-unknown.xml", "F"),
            ("kamailio-dummy-presence.xml", "T"),
            ("kamailio-notify-open.xml", "T"),
            ("kamailio-notify-closed.xml", "F"),
            ("kamailio-notify-withdrawn.xml", "F"),
            // One tuple closed, one open.
            ("rpid-rich.xml", "T"),
        ] {
            let attrs = attributes(&fixture(file));
            assert_eq!(
                value(&attrs, "OnlineStatus").as_deref(),
                Some(online),
                "{file}"
            );
        }
    }

    #[test]
    fn row_online_status_to_basic() {
        assert!(document(&[]).contains("<basic>open</basic>"));
        let hidden = set(&[("OnlineStatus", "F")]);
        assert!(document(&hidden).contains("<basic>closed</basic>"));
        let out = pidf::presence_document("sip:e@x", "sip:e@x", &to_presence(false, &[]));
        assert!(out.contains("<basic>closed</basic>"), "{out}");
    }

    #[test]
    fn row_activities_to_user_availability() {
        for (file, availability) in [
            ("rpid-rich.xml", "DISCREET"),
            ("tuple-rpid.xml", "NOT_AVAILABLE"),
            ("baresip-publish-open.xml", "AVAILABLE"),
            ("kamailio-dummy-presence.xml", "AVAILABLE"),
            ("kamailio-notify-open.xml", "AVAILABLE"),
            ("baresip-publish-closed.xml", "NOT_AVAILABLE"),
            ("kamailio-notify-withdrawn.xml", "NOT_AVAILABLE"),
        ] {
            let attrs = attributes(&fixture(file));
            assert_eq!(
                value(&attrs, "UserAvailability").as_deref(),
                Some(availability),
                "{file}"
            );
        }
    }

    #[test]
    fn row_user_availability_to_activities() {
        for (availability, activities) in [
            (
                "DISCREET",
                Some("<rpid:activities><rpid:busy/></rpid:activities>"),
            ),
            (
                "NOT_AVAILABLE",
                Some("<rpid:activities><rpid:away/></rpid:activities>"),
            ),
            ("AVAILABLE", None),
        ] {
            let doc = document(&set(&[("UserAvailability", availability)]));
            match activities {
                Some(a) => assert!(doc.contains(a), "{availability}: {doc}"),
                None => assert!(!doc.contains("rpid:activities"), "{availability}: {doc}"),
            }
            // And back: the same availability.
            let back = attributes(&pidf::read(doc.as_bytes()).unwrap());
            assert_eq!(
                value(&back, "UserAvailability").as_deref(),
                Some(availability)
            );
        }
    }

    #[test]
    fn row_mood() {
        let attrs = attributes(&fixture("rpid-rich.xml"));
        assert_eq!(value(&attrs, "StatusMood").as_deref(), Some("HAPPY"));
        assert_eq!(
            value(
                &attributes(&fixture("baresip-publish-open.xml")),
                "StatusMood"
            ),
            None
        );
        let doc = document(&set(&[("StatusMood", "IN_LOVE")]));
        assert!(
            doc.contains("<rpid:mood><rpid:in_love/></rpid:mood>"),
            "{doc}"
        );
        // NONE and values RPID lacks are not written.
        for v in ["NONE", "BOGUS"] {
            assert!(!document(&set(&[("StatusMood", v)])).contains("rpid:mood"));
        }
    }

    #[test]
    fn row_notes_to_status_text() {
        for (file, text) in [
            ("rpid-rich.xml", Some("In a meeting & on a call")),
            ("kamailio-dummy-presence.xml", Some("Available")),
            ("tuple-rpid.xml", Some("Gone fishing")),
            ("baresip-publish-open.xml", None),
            ("kamailio-notify-open.xml", None),
        ] {
            let attrs = attributes(&fixture(file));
            assert_eq!(value(&attrs, "StatusText").as_deref(), text, "{file}");
        }
    }

    #[test]
    fn row_status_text_to_notes() {
        let doc = document(&set(&[("StatusText", "at lunch")]));
        assert!(doc.contains("<note>at lunch</note></tuple>"), "{doc}");
        assert!(
            doc.contains("<dm:note>at lunch</dm:note></dm:person>"),
            "{doc}"
        );
        assert_eq!(
            pidf::read(doc.as_bytes()).unwrap().note.as_deref(),
            Some("at lunch")
        );
    }

    #[test]
    fn row_device_to_client_info() {
        let attrs = attributes(&fixture("rpid-rich.xml"));
        let c = attrs.iter().find(|a| a.name == "ClientInfo").unwrap();
        assert_eq!(c.text_at(&["ClientType"]), Some("COMPUTER"));
        assert_eq!(c.text_at(&["Model"]), Some("Linphone 5.2"));
        assert_eq!(c.text_at(&["ClientProducer"]), None);
        assert!(
            !attributes(&fixture("baresip-publish-open.xml"))
                .iter()
                .any(|a| a.name == "ClientInfo")
        );
    }

    #[test]
    fn row_client_info_to_device() {
        let info = Element::new("ClientInfo")
            .with(Element::text("Qualifier", "T"))
            .with(Element::text("ClientType", "MOBILE_PHONE"))
            .with(Element::text("DevManufacturer", "Nokia"))
            .with(Element::text("ClientProducer", "Nokia"))
            .with(Element::text("Model", "6630"))
            .with(Element::text("ClientVersion", "2.0"));
        let doc = document(&[info]);
        assert!(
            doc.contains("<dm:device id=\"client\"><rpid:class>MOBILE_PHONE</rpid:class><dm:deviceID>urn:uuid:"),
            "{doc}"
        );
        assert!(
            doc.contains("<dm:note>Nokia 6630</dm:note></dm:device>"),
            "{doc}"
        );
        assert!(!doc.contains("2.0"), "ClientVersion is lost: {doc}");
        let back = attributes(&pidf::read(doc.as_bytes()).unwrap());
        let c = back.iter().find(|a| a.name == "ClientInfo").unwrap();
        assert_eq!(c.text_at(&["ClientType"]), Some("MOBILE_PHONE"));
        assert_eq!(c.text_at(&["Model"]), Some("Nokia 6630"));
    }

    #[test]
    fn row_what_is_ignored() {
        // rpid-rich has place-type, a CIPID homepage, an unknown namespace's
        // element, contact priorities and a device ID: none shows up.
        let attrs = attributes(&fixture("rpid-rich.xml"));
        let names: Vec<&str> = attrs.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "OnlineStatus",
                "UserAvailability",
                "StatusText",
                "StatusMood",
                "ClientInfo"
            ]
        );
        // IMPS attributes without a PIDF counterpart are not written.
        let doc = document(&[
            attr("Alias", "erin the great"),
            attr("FreeTextLocation", "Berlin"),
            attr("PreferredLanguage", "de"),
        ]);
        for lost in ["erin the great", "Berlin", ">de<"] {
            assert!(!doc.contains(lost), "{lost}: {doc}");
        }
    }

    #[test]
    fn a_qualifier_f_says_nothing() {
        let unqualified = Element::new("StatusText")
            .with(Element::text("Qualifier", "F"))
            .with(Element::text("PresenceValue", "stale"));
        let p = to_presence(true, &[unqualified]);
        assert_eq!(p, Presence::online());
    }

    struct NoBridge;
    impl crate::bridge::api::BridgeApi for NoBridge {
        fn submit(
            &self,
            _r: crate::bridge::api::ImToSms,
        ) -> crate::bridge::api::BoxFuture<Result<crate::bridge::api::Accepted, Refusal>> {
            Box::pin(async { Err(Refusal::Invalid("none".into())) })
        }
        fn sip_credentials(
            &self,
            _a: String,
        ) -> crate::bridge::api::BoxFuture<Option<crate::bridge::api::SipCredentials>> {
            Box::pin(async { None })
        }
        fn presence(
            &self,
            w: String,
            _t: crate::bridge::api::Recipient,
        ) -> crate::bridge::api::BoxFuture<Result<crate::bridge::api::SubscriberPresence, Refusal>>
        {
            Box::pin(async move { Err(Refusal::UnknownUser(w)) })
        }
        fn user_online(&self, _a: String) {}
    }
    impl crate::bridge::api::ImApi for NoBridge {}

    #[test]
    fn a_sip_users_publication_outweighs_their_registration() {
        let server = Server::new(
            super::super::server::ServerConfig {
                domain: "sms.example".into(),
                limits: super::super::session::Limits::default(),
                poll_min: 5,
                cir_tcp: None,
            },
            std::sync::Arc::new(NoBridge),
            std::sync::Arc::new(|| "t".to_owned()),
        );
        let registered = Watched {
            target: Target::User {
                user_part: "erin".into(),
                front_end: FrontEnd::Sip,
                name: None,
            },
            online: Some(true),
            decision: crate::bridge::api::WatchDecision::Allow,
            unavailable: None,
        };
        let shown = |server: &Server| {
            let el = server.presence_el("", &registered);
            let list = el.child("PresenceSubList").unwrap().children.clone();
            (value(&list, "OnlineStatus"), value(&list, "StatusText"))
        };
        // Nothing heard from the SIP side: the registration.
        assert_eq!(shown(&server), (Some("T".into()), None));
        let away = Presence {
            open: true,
            note: Some("back at 3".into()),
            ..Presence::default()
        };
        server.sip_presence_changed("Erin", &away);
        assert_eq!(shown(&server), (Some("T".into()), Some("back at 3".into())));
        // Published closed while registered: closed.
        server.sip_presence_changed("erin", &Presence::offline());
        assert_eq!(shown(&server), (Some("F".into()), None));
    }

    #[test]
    fn foreign_watches_pending_or_ended_show_offline() {
        for state in [
            None,
            Some(ForeignWatchState::Pending),
            Some(ForeignWatchState::Terminated("noresource".into())),
        ] {
            let attrs = attributes(&foreign_shown(state.as_ref()));
            assert_eq!(value(&attrs, "OnlineStatus").as_deref(), Some("F"));
            assert_eq!(
                value(&attrs, "UserAvailability").as_deref(),
                Some("NOT_AVAILABLE")
            );
        }
        let active = ForeignWatchState::Active(fixture("kamailio-dummy-presence.xml"));
        let attrs = attributes(&foreign_shown(Some(&active)));
        assert_eq!(value(&attrs, "OnlineStatus").as_deref(), Some("T"));
    }
}
