//! Presence: GetPresence, SubscribePresence, UnsubscribePresence,
//! UpdatePresence and the PresenceNotification-Requests sent through polling.
//! An SMS-only subscriber always shows OnlineStatus T with its MSISDN as
//! ClientID, ClientInfo ClientType CLI, UserAvailability AVAILABLE and
//! StatusText "SMS-only"; a user of the bridge shows their IMPS session (and
//! UpdatePresence) or their SIP registration. The watcher's contact lists
//! authorise watching (in the list and not blocked = allowed).

use super::csp::{self, PA_NS, code};
use super::server::{Ctx, Server, refusal_code};
use crate::bridge::api::{FrontEnd, Target, Watched};
use crate::bridge::user_part;
use crate::xml::Element;

fn attr(name: &str, value: &str) -> Element {
    Element::new(name)
        .with(Element::text("Qualifier", "T"))
        .with(Element::text("PresenceValue", value))
}

fn msisdn_client(msisdn: &str) -> Element {
    Element::new("ClientID").with(Element::text("MSISDN", msisdn))
}

/// The PresenceSubList of an SMS-only subscriber.
pub(super) fn sms_only(msisdn: &str) -> Vec<Element> {
    vec![
        attr("OnlineStatus", "T").with(msisdn_client(msisdn)),
        Element::new("ClientInfo")
            .with(Element::text("Qualifier", "T"))
            .with(Element::text("ClientType", "CLI"))
            .with(msisdn_client(msisdn)),
        attr("UserAvailability", "AVAILABLE"),
        attr("StatusText", "SMS-only"),
    ]
}

fn user_presence(online: bool) -> Vec<Element> {
    vec![
        attr("OnlineStatus", csp::tf(online)),
        attr(
            "UserAvailability",
            if online { "AVAILABLE" } else { "NOT_AVAILABLE" },
        ),
    ]
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
    /// Whether some IMPS session belongs to a user with this user part.
    pub(super) fn online_by_part(&self, part: &str) -> bool {
        self.sessions()
            .all_mut()
            .any(|s| user_part(&s.user).eq_ignore_ascii_case(part))
    }

    fn presence_el(&self, w: &Watched) -> Element {
        let sub = match &w.target {
            Target::Subscriber { msisdn, .. } => sms_only(msisdn),
            // Known only from the foreign watch's NOTIFYs.
            Target::Foreign { .. } => user_presence(false),
            Target::User {
                user_part: part,
                front_end,
                ..
            } => {
                let own = (*front_end == FrontEnd::Imps).then(|| {
                    self.sessions()
                        .all_mut()
                        .filter(|s| user_part(&s.user).eq_ignore_ascii_case(part))
                        .map(|s| s.presence.clone())
                        .max_by_key(Vec::len)
                });
                match own.flatten() {
                    Some(p) if !p.is_empty() => p,
                    Some(_) => user_presence(true),
                    None => user_presence(w.online.unwrap_or(false)),
                }
            }
        };
        Element::new("Presence")
            .with(Element::text("UserID", &self.wv_id(&w.target)))
            .with(
                Element::new("PresenceSubList")
                    .attr("xmlns", PA_NS)
                    .with_all(sub),
            )
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

    pub(super) async fn get_presence(&self, ctx: &Ctx, p: &Element) -> Element {
        let names = self.names(ctx, p).await;
        if names.is_empty() {
            return Element::new("GetPresence-Response")
                .with(csp::result(code::BAD_REQUEST, "no UserID or ContactList"));
        }
        let mut found = Vec::new();
        let mut refused = Vec::new();
        for n in &names {
            match self.bridge.watch(ctx.user.clone(), n.clone()).await {
                Ok(w) => found.push(self.presence_el(&w)),
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
            match self.bridge.watch(ctx.user.clone(), n.clone()).await {
                Ok(w) => presences.push((self.wv_id(&w.target), self.presence_el(&w))),
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
        let mut sessions = self.sessions();
        if let Ok(s) = sessions.touch(ctx.now, &ctx.session_id) {
            s.watching
                .retain(|w| !all && !gone.contains(&user_part(w).to_ascii_lowercase()));
        }
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
        {
            let mut sessions = self.sessions();
            for s in sessions.of_user(&ctx.user) {
                s.presence = attrs.clone();
            }
        }
        self.presence_changed(&ctx.user);
        csp::status(code::OK, "")
    }

    /// Tells IMPS sessions watching `user` their new presence.
    pub(super) fn presence_changed(&self, user: &str) {
        let part = user_part(user);
        let online = self.online_by_part(part);
        // SIP watchers of this user too (PIDF NOTIFY through the bridge).
        self.bridge.presence_changed(user.to_owned(), online);
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
        let el = self.presence_el(&Watched {
            target,
            online: Some(online),
        });
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
