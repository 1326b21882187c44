//! Watches of presentities in other domains: our side of RFC 6665 presence
//! subscriptions (`Event: presence`, `Accept: application/pidf+xml`), one
//! SUBSCRIBE dialog per (watcher, presentity), at most `cap` of them. The
//! table builds the SUBSCRIBEs (first, refresh, resubscription, and
//! `Expires: 0` to end), reads their answers and the in-dialog NOTIFYs, and
//! turns what the NOTIFYs say into [`ForeignPresence`] news for the bridge.
//! Sans-IO: time is Unix seconds passed in; the glue in `endpoint.rs` sends.
//!
//! ```text
//!  watch ─▶ subscribing ─2xx─▶ live ─(refresh at ¾ of Expires)─▶ live
//!              │                 │ NOTIFY terminated, reason allows
//!              │ non-2xx         ├────────────────────────────────▶ resubscribe (after retry-after)
//!              ▼                 │ NOTIFY terminated, else; refresh refused; expired
//!            gone ◀──────────────┘
//!  unwatch / shutdown ─▶ ending (SUBSCRIBE Expires: 0; NOTIFYs answered, no news) ─▶ gone
//! ```

use std::collections::HashMap;

use super::body;
use super::client::Final;
use super::outbound::{Ids, OutRequest};
use super::route::{self, Route};
use super::wire::{Reply, Request, parse_name_addr, value_and_params};
use crate::bridge::api::{ForeignPresence, ForeignWatchState, Refusal};

/// The subscription duration we ask for (seconds).
pub(crate) const EXPIRES: u32 = 3600;
/// How many watches the front end keeps at most.
pub(crate) const DEFAULT_CAP: usize = 1000;
/// How long an answer may take (64·T1): an ended watch waits this long for
/// its final NOTIFY, an expired one for its refresh's answer.
const GRACE: u64 = 32;

/// (watcher, presentity).
pub(crate) type Key = (String, String);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// A SUBSCRIBE is out and no 2xx has come yet.
    Subscribing,
    /// Established.
    Live,
    /// Ended by the other side for a while: subscribe anew at this time.
    Resubscribe { at: u64 },
    /// Unwatched: `Expires: 0` sent; kept until the final NOTIFY or `until`.
    Ending { until: u64 },
}

/// One subscription dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watch {
    /// The local watcher as the bridge named them (`wv:harry@example.com`).
    watcher: String,
    presentity: String,
    /// The watcher's SIP identity (`sip:harry@<our domain>`).
    local_uri: String,
    contact: String,
    route: Route,
    call_id: String,
    local_tag: String,
    remote_tag: Option<String>,
    /// The Request-URI of in-dialog requests (the notifier's Contact).
    remote_target: String,
    route_set: Vec<String>,
    /// The last CSeq we used.
    cseq: u32,
    phase: Phase,
    /// When to refresh (Live only).
    refresh_at: Option<u64>,
    /// When the subscription runs out unless refreshed.
    expires_at: u64,
    /// The last news, given again to a watcher who watches again.
    last: Option<ForeignWatchState>,
}

impl Watch {
    fn news(&self, state: ForeignWatchState) -> ForeignPresence {
        ForeignPresence {
            watcher: self.watcher.clone(),
            presentity: self.presentity.clone(),
            state,
        }
    }

    /// A fresh dialog (first SUBSCRIBE or resubscription).
    fn restart(&mut self, ids: Ids) {
        self.call_id = ids.call_id;
        self.local_tag = ids.tag;
        self.remote_tag = None;
        self.remote_target = self.presentity.clone();
        self.route_set.clear();
        self.cseq = 0;
        self.phase = Phase::Subscribing;
        self.refresh_at = None;
    }

    /// The next SUBSCRIBE of this dialog asking for `expires` seconds.
    fn subscribe(&mut self, expires: u32) -> OutRequest {
        self.cseq += 1;
        let to = match &self.remote_tag {
            Some(tag) => format!("<{}>;tag={tag}", self.presentity),
            None => format!("<{}>", self.presentity),
        };
        let mut headers = vec![
            ("Event".to_owned(), "presence".to_owned()),
            ("Accept".to_owned(), "application/pidf+xml".to_owned()),
            ("Expires".to_owned(), expires.to_string()),
            ("Contact".to_owned(), format!("<{}>", self.contact)),
        ];
        for r in &self.route_set {
            headers.push(("Route".to_owned(), r.clone()));
        }
        let next_hop = self
            .route_set
            .first()
            .and_then(|r| parse_name_addr(r))
            .map(|na| na.uri)
            .or_else(|| self.route.next_hop.clone());
        OutRequest {
            method: "SUBSCRIBE",
            request_uri: self.remote_target.clone(),
            next_hop,
            from: format!("<{}>", self.local_uri),
            from_tag: self.local_tag.clone(),
            to,
            call_id: self.call_id.clone(),
            cseq: self.cseq,
            headers,
            content_type: None,
            body: Vec::new(),
        }
    }

    /// The subscription now runs `expires` more seconds: refresh at ¾ of it.
    fn granted(&mut self, expires: u64, now: u64) {
        self.expires_at = now + expires;
        self.refresh_at = (expires > 0).then(|| now + (expires * 3 / 4).max(1));
    }
}

/// What [`Watches::watch`] found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Started {
    /// Already watched; the last news, if any, for the watcher again.
    Existing(Option<ForeignPresence>),
    /// A new watch: send this SUBSCRIBE and hand its answer to
    /// [`Watches::answered`].
    New(Box<OutRequest>),
}

/// What a NOTIFY leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notified {
    pub(crate) reply: Reply,
    pub(crate) news: Option<ForeignPresence>,
}

/// What the housekeeping tick has to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Due {
    /// SUBSCRIBEs to send (refreshes, resubscriptions), with their watch.
    pub(crate) requests: Vec<(Key, OutRequest)>,
    /// Watches that ran out.
    pub(crate) news: Vec<ForeignPresence>,
}

/// The table of watches.
#[derive(Debug)]
pub(crate) struct Watches {
    by_key: HashMap<Key, Watch>,
    cap: usize,
}

impl Watches {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            by_key: HashMap::new(),
            cap,
        }
    }

    /// How many watches there are (ending ones included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Starts watching `presentity` for `watcher` (known to the other side
    /// as `local_uri`, reached at `contact`) on `route`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn watch(
        &mut self,
        watcher: &str,
        presentity: &str,
        local_uri: &str,
        contact: &str,
        route: Route,
        ids: Ids,
        now: u64,
    ) -> Result<Started, Refusal> {
        let key = (watcher.to_owned(), presentity.to_owned());
        if let Some(w) = self.by_key.get(&key)
            && !matches!(w.phase, Phase::Ending { .. })
        {
            return Ok(Started::Existing(w.last.clone().map(|s| w.news(s))));
        }
        if !self.by_key.contains_key(&key) && self.by_key.len() >= self.cap {
            return Err(Refusal::Busy {
                retry_after: std::time::Duration::from_secs(60),
            });
        }
        let mut w = Watch {
            watcher: key.0.clone(),
            presentity: key.1.clone(),
            local_uri: local_uri.to_owned(),
            contact: contact.to_owned(),
            route,
            call_id: String::new(),
            local_tag: String::new(),
            remote_tag: None,
            remote_target: String::new(),
            route_set: Vec::new(),
            cseq: 0,
            phase: Phase::Subscribing,
            refresh_at: None,
            expires_at: now + u64::from(EXPIRES),
            last: None,
        };
        w.restart(ids);
        let out = w.subscribe(EXPIRES);
        self.by_key.insert(key, w);
        Ok(Started::New(Box::new(out)))
    }

    /// The route of a watch, for the credentials its requests answer
    /// challenges with.
    pub(crate) fn route(&self, key: &Key) -> Option<Route> {
        self.by_key.get(key).map(|w| w.route.clone())
    }

    /// The final answer (`Err`: none came, why) to a SUBSCRIBE sent in
    /// dialog `call_id` of watch `key`. For a first SUBSCRIBE the result is
    /// the watch's; a refresh that fails for good ends the watch with news.
    pub(crate) fn answered(
        &mut self,
        key: &Key,
        call_id: &str,
        answer: Result<&Final, &str>,
        now: u64,
    ) -> (Result<(), Refusal>, Option<ForeignPresence>) {
        let Some(w) = self.by_key.get_mut(key).filter(|w| w.call_id == call_id) else {
            // Unwatched (or restarted) meanwhile: nothing to do.
            return (Ok(()), None);
        };
        if let Phase::Ending { .. } = w.phase {
            return (Ok(()), None);
        }
        let (code, retry_after) = match answer {
            Ok(a) => (a.code, a.header("Retry-After")),
            Err(_) => (408, None),
        };
        if let Ok(a) = answer {
            w.cseq = w.cseq.max(a.cseq);
        }
        let first = w.phase == Phase::Subscribing;
        match (answer, route::outcome(&w.presentity, code, retry_after)) {
            (Ok(a), Ok(())) if code < 300 => {
                if first {
                    if w.remote_tag.is_none() {
                        w.remote_tag = a
                            .header("To")
                            .and_then(parse_name_addr)
                            .and_then(|na| na.param("tag").map(str::to_owned));
                    }
                    if let Some(c) = a.header("Contact").and_then(parse_name_addr) {
                        w.remote_target = c.uri;
                    }
                    // RFC 3261 §12.1.2: the route set is Record-Route reversed.
                    w.route_set = a
                        .header_list("Record-Route")
                        .into_iter()
                        .rev()
                        .map(str::to_owned)
                        .collect();
                    w.phase = Phase::Live;
                }
                let granted = a
                    .header("Expires")
                    .and_then(|e| e.trim().parse::<u64>().ok())
                    .unwrap_or(u64::from(EXPIRES))
                    .min(u64::from(EXPIRES));
                w.granted(granted, now);
                (Ok(()), None)
            }
            (_, outcome) if first => {
                let refusal = outcome
                    .err()
                    .unwrap_or(Refusal::NoRoute(w.presentity.clone()));
                self.by_key.remove(key);
                (Err(refusal), None)
            }
            (_, outcome) => {
                let refusal = outcome
                    .err()
                    .unwrap_or(Refusal::NoRoute(w.presentity.clone()));
                // RFC 6665 §4.1.2.2: after a failed refresh the subscription
                // stands until it runs out, unless the dialog is gone.
                if matches!(code, 404 | 405 | 481 | 489 | 501 | 403 | 603) {
                    let news = w.news(ForeignWatchState::Terminated(format!("SIP {code}")));
                    self.by_key.remove(key);
                    return (Err(refusal), Some(news));
                }
                let half = now + (w.expires_at.saturating_sub(now) / 2);
                w.refresh_at = (half > now).then_some(half);
                (Err(refusal), None)
            }
        }
    }

    /// An incoming NOTIFY: in one of our dialogs (Call-ID, our tag in To,
    /// theirs in From) it is answered 200 and its state becomes news;
    /// otherwise 481.
    pub(crate) fn notify(
        &mut self,
        req: &Request,
        now: u64,
        ids: impl FnOnce() -> Ids,
    ) -> Notified {
        let plain = |reply: Reply| Notified { reply, news: None };
        if !req.header("Event").is_some_and(body::is_presence_event) {
            return plain(Reply::new(489).with("Allow-Events", "presence"));
        }
        let Some(state) = req.header("Subscription-State") else {
            return plain(Reply::new(400).warning("no Subscription-State"));
        };
        let from_tag = req
            .header("From")
            .and_then(parse_name_addr)
            .and_then(|na| na.param("tag").map(str::to_owned));
        let (Some(call_id), Some(to_tag), Some(from_tag)) =
            (req.header("Call-ID"), req.to_tag(), from_tag)
        else {
            return plain(Reply::new(481).warning("no such subscription"));
        };
        let found = self.by_key.iter_mut().find(|(_, w)| {
            w.call_id == call_id
                && w.local_tag == to_tag
                && w.remote_tag.as_ref().is_none_or(|t| *t == from_tag)
        });
        let Some((key, w)) = found else {
            return plain(Reply::new(481).warning("no such subscription"));
        };
        let key = key.clone();
        // A NOTIFY may come before the 2xx (RFC 6665 §4.1.2.4): it sets the
        // dialog up.
        if w.remote_tag.is_none() {
            w.remote_tag = Some(from_tag);
            if let Some(c) = req.header("Contact").and_then(parse_name_addr) {
                w.remote_target = c.uri;
            }
        }
        let (value, params) = value_and_params(state);
        let param = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_deref())
        };
        let seconds = |name: &str| param(name).and_then(|v| v.trim().parse::<u64>().ok());
        let ok = Reply::new(200);
        let ending = matches!(w.phase, Phase::Ending { .. });
        let state = match value.to_ascii_lowercase().as_str() {
            "terminated" => {
                let reason = param("reason").unwrap_or("terminated").to_ascii_lowercase();
                if ending {
                    self.by_key.remove(&key);
                    return plain(ok);
                }
                // RFC 6665 §4.1.3: which reasons allow a new subscription.
                let retry = match reason.as_str() {
                    "deactivated" | "timeout" => Some(seconds("retry-after").unwrap_or(0)),
                    "probation" | "giveup" => Some(seconds("retry-after").unwrap_or(60)),
                    _ => None,
                };
                match retry {
                    Some(after) => {
                        w.restart(ids());
                        w.phase = Phase::Resubscribe {
                            at: now + after.min(3600),
                        };
                        return plain(ok);
                    }
                    None => {
                        let news = w.news(ForeignWatchState::Terminated(reason));
                        self.by_key.remove(&key);
                        return Notified {
                            reply: ok,
                            news: Some(news),
                        };
                    }
                }
            }
            "pending" => ForeignWatchState::Pending,
            "active" => match super::pidf::read(req.body()) {
                Ok(p) => ForeignWatchState::Active(p),
                Err(why) => {
                    tracing::info!(presentity = %w.presentity, %why, "NOTIFY without a readable PIDF");
                    return plain(ok);
                }
            },
            other => {
                return plain(
                    Reply::new(400).warning(&format!("unknown subscription state {other}")),
                );
            }
        };
        if ending {
            return plain(ok);
        }
        if w.phase == Phase::Subscribing {
            w.phase = Phase::Live;
        }
        if let Some(left) = seconds("expires") {
            w.granted(left, now);
        }
        w.last = Some(state.clone());
        Notified {
            reply: ok,
            news: Some(w.news(state)),
        }
    }

    /// Refreshes and resubscriptions due at `now`, and watches that ran out.
    pub(crate) fn due(&mut self, now: u64, mut ids: impl FnMut() -> Ids) -> Due {
        let mut due = Due::default();
        let mut gone = Vec::new();
        for (key, w) in &mut self.by_key {
            match w.phase {
                Phase::Ending { until } if until <= now => gone.push(key.clone()),
                Phase::Live if w.refresh_at.is_some_and(|t| t <= now) => {
                    w.refresh_at = None;
                    due.requests.push((key.clone(), w.subscribe(EXPIRES)));
                }
                // A refresh may still be on its way for a transaction's time.
                Phase::Live | Phase::Subscribing if w.expires_at + GRACE <= now => {
                    due.news
                        .push(w.news(ForeignWatchState::Terminated("timeout".into())));
                    gone.push(key.clone());
                }
                Phase::Resubscribe { at } if at <= now => {
                    w.restart(ids());
                    w.expires_at = now + u64::from(EXPIRES);
                    due.requests.push((key.clone(), w.subscribe(EXPIRES)));
                }
                _ => {}
            }
        }
        for key in gone {
            self.by_key.remove(&key);
        }
        due
    }

    /// Ends the watch: the `Expires: 0` SUBSCRIBE to send (with the route
    /// whose logins answer its challenges), if a dialog is up or being set
    /// up. No news is given for it afterwards.
    pub(crate) fn unwatch(
        &mut self,
        watcher: &str,
        presentity: &str,
        now: u64,
    ) -> Option<(OutRequest, Route)> {
        let key = (watcher.to_owned(), presentity.to_owned());
        let w = self.by_key.get_mut(&key)?;
        match w.phase {
            Phase::Ending { .. } => None,
            Phase::Resubscribe { .. } => {
                self.by_key.remove(&key);
                None
            }
            Phase::Live | Phase::Subscribing => {
                w.phase = Phase::Ending { until: now + GRACE };
                Some((w.subscribe(0), w.route.clone()))
            }
        }
    }

    /// Ends every watch (shutdown).
    pub(crate) fn unwatch_all(&mut self, now: u64) -> Vec<(OutRequest, Route)> {
        let keys: Vec<Key> = self.by_key.keys().cloned().collect();
        keys.iter()
            .filter_map(|(w, p)| self.unwatch(w, p, now))
            .collect()
    }
}

#[cfg(test)]
mod tests;
