//! Presence subscriptions (RFC 6665, RFC 3856): the dialogs a watcher holds on
//! subscribers, their expiry and NOTIFY CSeq. No I/O; time (Unix seconds) is an
//! argument.

use std::collections::HashMap;

use crate::bridge::api::{FrontEnd, ImUserPresence, Recipient, WatchChanged, WatchDecision};
use crate::presence::Presence;

/// The default and the longest subscription (RFC 3856 §6.4 suggests 3600 s).
pub(crate) const DEFAULT_EXPIRES: u32 = 3600;

/// One subscription dialog, seen from the notifier (us).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subscription {
    pub(crate) call_id: String,
    /// Our tag (the To tag of our 200).
    pub(crate) local_tag: String,
    /// The watcher's From tag.
    pub(crate) remote_tag: String,
    /// The SUBSCRIBE's To URI: the subscriber as the watcher named it.
    pub(crate) local_uri: String,
    /// The SUBSCRIBE's From URI.
    pub(crate) remote_uri: String,
    /// The watcher's Contact URI: where NOTIFYs go.
    pub(crate) remote_target: String,
    /// Record-Route values, in order (RFC 3261 §12.1.1).
    pub(crate) route_set: Vec<String>,
    /// For a watcher on TCP without a route set: `sip:<peer>;transport=tcp`,
    /// so NOTIFYs reuse its connection.
    pub(crate) flow: Option<String>,
    /// The authenticated watcher (AOR).
    pub(crate) watcher: String,
    pub(crate) target: Recipient,
    /// The subscriber, E.164 with `+` (empty for a user of the bridge).
    pub(crate) msisdn: String,
    /// Set when the watched one is a user of the bridge (an IMPS user): their
    /// state as of the last (re-)SUBSCRIBE.
    pub(crate) im_user: Option<ImUserPresence>,
    /// Event `id` parameter, echoed in NOTIFY.
    pub(crate) event_id: Option<String>,
    pub(crate) expires_at: u64,
    /// CSeq of the last NOTIFY we sent.
    pub(crate) local_cseq: u32,
    /// What the presentity's policy lets the watcher see (`Allow` for a
    /// subscriber: the watcher's own contact).
    pub(crate) decision: WatchDecision,
    /// The presentity's address when it is a user of the bridge (what
    /// `BridgeApi::authorise_watch` was asked about, and what
    /// `ImFrontEnd::watch_changed` names), or, for a `presence.winfo`
    /// subscription, the watched user's own AOR.
    pub(crate) presentity: Option<String>,
    /// Set when the subscriber cannot be reached now (opted out), with why:
    /// their document is closed with it as the note.
    pub(crate) unavailable: Option<String>,
    /// Set for a `presence.winfo` subscription (RFC 3857): the `version`
    /// of its next watcherinfo document (RFC 3858 §4.1, from 0).
    pub(crate) winfo: Option<u32>,
}

impl Subscription {
    /// The Subscription-State for a NOTIFY at `now`.
    /// A rejected watcher's subscription is over; a pending one waits for
    /// the presentity (RFC 6665 §4.1.3, as Kamailio's presence module says).
    pub(crate) fn state(&self, now: u64) -> String {
        let left = self.expires_at.saturating_sub(now);
        match self.decision {
            WatchDecision::Block => "terminated;reason=rejected".into(),
            _ if left == 0 => "terminated;reason=timeout".into(),
            WatchDecision::Pending => format!("pending;expires={left}"),
            WatchDecision::Allow | WatchDecision::PoliteBlock => format!("active;expires={left}"),
        }
    }

    /// Takes the `version` for the next watcherinfo document (winfo only).
    pub(crate) fn next_winfo_version(&mut self) -> Option<u32> {
        let v = self.winfo?;
        self.winfo = Some(v.wrapping_add(1));
        Some(v)
    }
}

/// Whether two addresses of the bridge name the same user: the same user
/// part and host, whatever the scheme (`sip:erin@d` and `wv:erin@d` are one
/// presentity, the bridge says).
pub(crate) fn same_user(a: &str, b: &str) -> bool {
    fn rest(a: &str) -> &str {
        a.split_once(':').map_or(a, |(_, r)| r)
    }
    rest(a).eq_ignore_ascii_case(rest(b))
}

/// Every live subscription, keyed by (Call-ID, our tag).
#[derive(Debug, Clone)]
pub(crate) struct Subscriptions {
    by_dialog: HashMap<(String, String), Subscription>,
    max: usize,
}

impl Subscriptions {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            by_dialog: HashMap::new(),
            max,
        }
    }

    /// Adds a subscription; `false` when the table is full.
    #[must_use]
    pub(crate) fn insert(&mut self, s: Subscription) -> bool {
        if self.by_dialog.len() >= self.max {
            return false;
        }
        self.by_dialog
            .insert((s.call_id.clone(), s.local_tag.clone()), s);
        true
    }

    pub(crate) fn get(&self, call_id: &str, local_tag: &str) -> Option<&Subscription> {
        self.by_dialog
            .get(&(call_id.to_owned(), local_tag.to_owned()))
    }

    /// Refreshes to `expires` seconds from `now` and takes the next NOTIFY
    /// CSeq; `expires` 0 ends it. Returns the updated subscription.
    pub(crate) fn refresh(
        &mut self,
        call_id: &str,
        local_tag: &str,
        expires: u32,
        now: u64,
    ) -> Option<Subscription> {
        let key = (call_id.to_owned(), local_tag.to_owned());
        let s = self.by_dialog.get_mut(&key)?;
        s.expires_at = now + u64::from(expires);
        s.local_cseq += 1;
        let out = s.clone();
        if expires == 0 {
            self.by_dialog.remove(&key);
        }
        Some(out)
    }

    /// Records the watched one's current state (a re-SUBSCRIBE asked again).
    pub(crate) fn set_im_user(
        &mut self,
        call_id: &str,
        local_tag: &str,
        p: Option<ImUserPresence>,
        unavailable: Option<String>,
    ) {
        if let Some(s) = self
            .by_dialog
            .get_mut(&(call_id.to_owned(), local_tag.to_owned()))
        {
            s.im_user = p;
            s.unavailable = unavailable;
        }
    }

    /// Records that the bridge user `user_part` of `front_end` now shows
    /// `presence`, and returns the subscriptions watching them whose view
    /// changed, each with its CSeq advanced for the NOTIFY.
    pub(crate) fn user_changed(
        &mut self,
        front_end: FrontEnd,
        user_part: &str,
        presence: &Presence,
    ) -> Vec<Subscription> {
        let mut out = Vec::new();
        for s in self.by_dialog.values_mut() {
            if let Some(u) = &mut s.im_user
                && u.front_end == front_end
                && u.user_part.eq_ignore_ascii_case(user_part)
                && u.presence != *presence
            {
                u.presence = presence.clone();
                // A polite-blocked or pending watcher hears nothing of it.
                if s.decision == WatchDecision::Allow {
                    s.local_cseq += 1;
                    out.push(s.clone());
                }
            }
        }
        out
    }

    /// Records the presentity's decision for a subscription (a refresh
    /// asked again).
    pub(crate) fn set_decision(&mut self, call_id: &str, local_tag: &str, d: WatchDecision) {
        if let Some(s) = self
            .by_dialog
            .get_mut(&(call_id.to_owned(), local_tag.to_owned()))
        {
            s.decision = d;
        }
    }

    /// Records the next watcherinfo version of a `presence.winfo`
    /// subscription (a refresh sent a full document).
    pub(crate) fn set_winfo_version(&mut self, call_id: &str, local_tag: &str, v: Option<u32>) {
        if let Some(s) = self
            .by_dialog
            .get_mut(&(call_id.to_owned(), local_tag.to_owned()))
        {
            s.winfo = v;
        }
    }

    /// How many `presence.winfo` subscriptions `presentity` holds.
    pub(crate) fn winfo_count(&self, presentity: &str) -> usize {
        self.by_dialog
            .values()
            .filter(|s| {
                s.winfo.is_some()
                    && s.presentity
                        .as_deref()
                        .is_some_and(|p| p.eq_ignore_ascii_case(presentity))
            })
            .count()
    }

    /// The presentity decided anew on a watcher: their presence
    /// subscriptions take the decision and are returned, each with its CSeq
    /// advanced for the NOTIFY; a rejected one is removed.
    pub(crate) fn decided(&mut self, change: &WatchChanged) -> Vec<Subscription> {
        let mut out = Vec::new();
        for s in self.by_dialog.values_mut() {
            if s.winfo.is_none()
                && s.decision != change.decision
                && s.watcher.eq_ignore_ascii_case(&change.watcher)
                && s.presentity
                    .as_deref()
                    .is_some_and(|p| same_user(p, &change.presentity))
            {
                s.decision = change.decision;
                s.local_cseq += 1;
                out.push(s.clone());
            }
        }
        // A rejected subscription is never kept.
        self.by_dialog
            .retain(|_, s| s.decision != WatchDecision::Block);
        out
    }

    /// The `presence.winfo` subscriptions of `presentity`, each with its
    /// CSeq advanced and the version of the document it is to get.
    pub(crate) fn winfo_of(&mut self, presentity: &str) -> Vec<(Subscription, u32)> {
        let mut out = Vec::new();
        for s in self.by_dialog.values_mut() {
            if s.presentity
                .as_deref()
                .is_some_and(|p| same_user(p, presentity))
                && let Some(version) = s.next_winfo_version()
            {
                s.local_cseq += 1;
                out.push((s.clone(), version));
            }
        }
        out
    }

    pub(crate) fn remove(&mut self, call_id: &str, local_tag: &str) -> Option<Subscription> {
        self.by_dialog
            .remove(&(call_id.to_owned(), local_tag.to_owned()))
    }

    /// Removes and returns the subscriptions expired at `now`, each with its
    /// CSeq advanced for the final NOTIFY.
    pub(crate) fn expire(&mut self, now: u64) -> Vec<Subscription> {
        let keys: Vec<_> = self
            .by_dialog
            .iter()
            .filter(|(_, s)| s.expires_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        keys.into_iter()
            .filter_map(|k| self.by_dialog.remove(&k))
            .map(|mut s| {
                s.local_cseq += 1;
                s
            })
            .collect()
    }

    /// When the next subscription expires.
    #[cfg(test)]
    pub(crate) fn next_expiry(&self) -> Option<u64> {
        self.by_dialog.values().map(|s| s.expires_at).min()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_dialog.len()
    }
}

/// The Expires of a SUBSCRIBE: the default when absent, at most the default.
pub(crate) fn subscribe_expires(header: Option<&str>) -> Result<u32, String> {
    match header.map(str::trim) {
        None => Ok(DEFAULT_EXPIRES),
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(v.parse::<u64>().map_or(DEFAULT_EXPIRES, |n| {
                n.min(u64::from(DEFAULT_EXPIRES)) as u32
            }))
        }
        Some(v) => Err(format!("bad Expires {v:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(expires_at: u64) -> Subscription {
        Subscription {
            call_id: "c".into(),
            local_tag: "l".into(),
            remote_tag: "r".into(),
            local_uri: "sip:+4917@sms.example".into(),
            remote_uri: "sip:alice@sms.example".into(),
            remote_target: "sip:alice@127.0.0.1:5070".into(),
            route_set: vec![],
            flow: None,
            watcher: "sip:alice@sms.example".into(),
            target: Recipient::Number("+4917".into()),
            msisdn: "+4917".into(),
            im_user: None,
            event_id: None,
            expires_at,
            local_cseq: 1,
            decision: WatchDecision::Allow,
            presentity: None,
            unavailable: None,
            winfo: None,
        }
    }

    #[test]
    fn refresh_expiry_and_unsubscribe() {
        let mut t = Subscriptions::new(1);
        assert!(t.insert(sub(1060)));
        let mut other = sub(5);
        other.call_id = "d".into();
        assert!(!t.insert(other), "table full");
        assert_eq!(t.get("c", "l").unwrap().state(1000), "active;expires=60");
        let s = t.refresh("c", "l", 120, 1050).unwrap();
        assert_eq!((s.expires_at, s.local_cseq), (1170, 2));
        assert_eq!(t.next_expiry(), Some(1170));
        assert!(t.expire(1169).is_empty());
        let gone = t.expire(1170);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].state(1170), "terminated;reason=timeout");
        assert_eq!(gone[0].local_cseq, 3);
        assert_eq!(t.len(), 0);
        assert!(t.insert(sub(2000)));
        let s = t.refresh("c", "l", 0, 1500).unwrap();
        assert_eq!(s.state(1500), "terminated;reason=timeout");
        assert!(t.get("c", "l").is_none());
        assert!(t.refresh("c", "l", 60, 1500).is_none());
    }

    #[test]
    fn a_watched_users_change_reaches_only_their_watchers() {
        let mut t = Subscriptions::new(4);
        let mut s = sub(2000);
        s.im_user = Some(ImUserPresence {
            user_part: "erin".into(),
            front_end: FrontEnd::Imps,
            presence: Presence::online(),
        });
        assert!(t.insert(s));
        let away = Presence {
            open: true,
            activities: vec!["away".into()],
            ..Presence::default()
        };
        // Another front end's erin, or the same view: nothing to send.
        assert!(t.user_changed(FrontEnd::Sip, "erin", &away).is_empty());
        assert!(
            t.user_changed(FrontEnd::Imps, "ERIN", &Presence::online())
                .is_empty()
        );
        let changed = t.user_changed(FrontEnd::Imps, "ERIN", &away);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].local_cseq, 2);
        assert_eq!(changed[0].im_user.as_ref().unwrap().presence, away);
        assert!(t.user_changed(FrontEnd::Imps, "erin", &away).is_empty());
    }

    #[test]
    fn expires_values() {
        assert_eq!(subscribe_expires(None), Ok(3600));
        assert_eq!(subscribe_expires(Some("0")), Ok(0));
        assert_eq!(subscribe_expires(Some("600")), Ok(600));
        assert_eq!(subscribe_expires(Some("99999999999999")), Ok(3600));
        assert!(subscribe_expires(Some("-1")).is_err());
    }
}
