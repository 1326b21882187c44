//! A local SIP user's presence subscription to a user of another domain,
//! relayed: towards the watcher we are the notifier (their dialog with us),
//! towards the other domain the subscriber (one watch per watcher and
//! presentity, `watch.rs`), and each piece of news of that watch becomes a
//! NOTIFY in every dialog of that watcher for that presentity. Which
//! Request-URIs are relayed: those whose host is a `[[federation.domain]]`.
//! Sans-IO; time is Unix seconds passed in.

use std::collections::HashMap;

use super::outbound::{self, OutRequest};
use super::pidf;
use super::presence::{DEFAULT_EXPIRES, Subscription};
use super::wire::Uri;
use crate::bridge::api::{ForeignPresence, ForeignWatchState};

/// One relayed dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Relay {
    /// The dialog (`target`, `msisdn` and `im_user` unused).
    sub: Subscription,
    /// The foreign presentity (`sip:jane@otherdomain.test`).
    presentity: String,
    /// Our Contact in NOTIFYs.
    contact: String,
    /// What the NOTIFYs say now.
    state: ForeignWatchState,
}

impl Relay {
    /// The next NOTIFY of this dialog for its current state at `now`.
    fn notify(&mut self, now: u64) -> OutRequest {
        self.sub.local_cseq += 1;
        let left = self.sub.expires_at.saturating_sub(now);
        let (state, body) = match &self.state {
            _ if left == 0 => ("terminated;reason=timeout".to_owned(), None),
            ForeignWatchState::Pending => (format!("pending;expires={left}"), None),
            ForeignWatchState::Active(p) => (
                format!("active;expires={left}"),
                Some(pidf::presence_document(
                    &self.presentity,
                    &self.presentity,
                    p,
                )),
            ),
            ForeignWatchState::Terminated(reason) => (
                format!("terminated;reason={}", terminated_reason(reason)),
                None,
            ),
        };
        outbound::dialog_notify(&self.sub, &state, &self.contact, body)
    }
}

/// The RFC 6665 reason to give the watcher: the other domain's when it is
/// one of the registered values, else `noresource`.
fn terminated_reason(reason: &str) -> &str {
    const KNOWN: [&str; 7] = [
        "deactivated",
        "probation",
        "rejected",
        "timeout",
        "giveup",
        "noresource",
        "invariant",
    ];
    KNOWN
        .into_iter()
        .find(|k| k.eq_ignore_ascii_case(reason))
        .unwrap_or("noresource")
}

/// What a refresh or an end of a relayed dialog leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refreshed {
    /// The granted expiry (for the 200).
    pub(crate) expires: u32,
    /// Our tag, for the 200's To.
    pub(crate) local_tag: String,
    /// The NOTIFY it triggers.
    pub(crate) notify: OutRequest,
    /// The watch of the other domain is no longer wanted: (watcher, presentity).
    pub(crate) unwatch: Option<(String, String)>,
}

/// Every relayed dialog, keyed by (Call-ID, our tag).
#[derive(Debug)]
pub(crate) struct Relays {
    by_dialog: HashMap<(String, String), Relay>,
    peer_domains: Vec<String>,
    max: usize,
}

impl Relays {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            by_dialog: HashMap::new(),
            peer_domains: Vec::new(),
            max,
        }
    }

    /// The domains whose users' presence is relayed (`[[federation.domain]]`).
    pub(crate) fn set_peer_domains(&mut self, names: impl IntoIterator<Item = String>) {
        self.peer_domains = names
            .into_iter()
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
    }

    /// The presentity a Request-URI names when it is a user of a peer
    /// domain: `sip:user@domain`.
    pub(crate) fn presentity(&self, uri: &Uri) -> Option<String> {
        let user = uri.user.as_deref()?;
        let sip = uri.scheme == "sip" || uri.scheme == "sips";
        (sip && self.peer_domains.contains(&uri.host))
            .then(|| outbound::subscriber_uri(user, &uri.host))
    }

    /// Whether (Call-ID, our tag) is a relayed dialog.
    pub(crate) fn has(&self, call_id: &str, local_tag: &str) -> bool {
        self.by_dialog
            .contains_key(&(call_id.to_owned(), local_tag.to_owned()))
    }

    fn watched(&self, watcher: &str, presentity: &str) -> bool {
        self.by_dialog
            .values()
            .any(|r| r.sub.watcher == watcher && r.presentity == presentity)
    }

    /// A new relayed dialog: its first NOTIFY (what is known of the
    /// presentity already, else pending), and whether the other domain is
    /// to be watched for it (the first dialog of this watcher for it).
    /// `None` when the table is full.
    pub(crate) fn start(
        &mut self,
        sub: Subscription,
        presentity: String,
        contact: &str,
        now: u64,
    ) -> Option<(OutRequest, bool)> {
        if self.by_dialog.len() >= self.max {
            return None;
        }
        let known = self
            .by_dialog
            .values()
            .find(|r| r.sub.watcher == sub.watcher && r.presentity == presentity)
            .map(|r| r.state.clone());
        let first = known.is_none();
        let mut r = Relay {
            sub,
            presentity,
            contact: contact.to_owned(),
            state: known.unwrap_or(ForeignWatchState::Pending),
        };
        r.sub.local_cseq = 0;
        let out = r.notify(now);
        // A fetch (Expires: 0) gets one NOTIFY and no watch.
        let kept = r.sub.expires_at > now;
        if kept {
            self.by_dialog
                .insert((r.sub.call_id.clone(), r.sub.local_tag.clone()), r);
        }
        Some((out, first && kept))
    }

    /// A re-SUBSCRIBE from `watcher` in a relayed dialog (`expires` 0 ends
    /// it); `Err` with the status code when it is not theirs.
    pub(crate) fn refresh(
        &mut self,
        call_id: &str,
        local_tag: &str,
        watcher: &str,
        expires: u32,
        now: u64,
    ) -> Result<Refreshed, u16> {
        let key = (call_id.to_owned(), local_tag.to_owned());
        let r = self.by_dialog.get_mut(&key).ok_or(481u16)?;
        if r.sub.watcher != watcher {
            return Err(403);
        }
        let expires = expires.min(DEFAULT_EXPIRES);
        r.sub.expires_at = now + u64::from(expires);
        let notify = r.notify(now);
        let local_tag = r.sub.local_tag.clone();
        let mut unwatch = None;
        if expires == 0
            && let Some(r) = self.by_dialog.remove(&key)
            && !self.watched(&r.sub.watcher, &r.presentity)
        {
            unwatch = Some((r.sub.watcher, r.presentity));
        }
        Ok(Refreshed {
            expires,
            local_tag,
            notify,
            unwatch,
        })
    }

    /// News of a watch: a NOTIFY in each dialog of its watcher for its
    /// presentity; a terminated watch ends them.
    pub(crate) fn news(&mut self, n: &ForeignPresence, now: u64) -> Vec<OutRequest> {
        let ended = matches!(n.state, ForeignWatchState::Terminated(_));
        let mut out = Vec::new();
        self.by_dialog.retain(|_, r| {
            if r.sub.watcher != n.watcher || r.presentity != n.presentity {
                return true;
            }
            r.state = n.state.clone();
            out.push(r.notify(now));
            !ended
        });
        out
    }

    /// Dialogs that ran out at `now`: their last NOTIFYs, and the watches
    /// no dialog wants any more.
    pub(crate) fn expire(&mut self, now: u64) -> (Vec<OutRequest>, Vec<(String, String)>) {
        let mut notifies = Vec::new();
        let mut ended = Vec::new();
        self.by_dialog.retain(|_, r| {
            if r.sub.expires_at > now {
                return true;
            }
            notifies.push(r.notify(now));
            ended.push((r.sub.watcher.clone(), r.presentity.clone()));
            false
        });
        ended.retain(|(w, p)| !self.watched(w, p));
        ended.dedup();
        (notifies, ended)
    }
}

#[cfg(test)]
mod tests;
