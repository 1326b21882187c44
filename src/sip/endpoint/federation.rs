//! The front end's side of other domains: IMs and presence watches sent on
//! the routes of `[federation]`, their answers, refreshes and news, and the
//! relayed subscriptions of local SIP watchers. Glue over `route`, `watch`
//! and `relay`.

use std::sync::Arc;

use rsipstack::transaction::random_text;
use tracing::{debug, info};

use super::{SipFrontEnd, fresh_ids, unix_now};
use crate::bridge::api::{ForeignIm, ForeignPresence, ForeignWatchState, Refusal, UnixTime};
use crate::sip::client::Final;
use crate::sip::outbound::{self, OutRequest};
use crate::sip::route::{self, Login, Route, Routes};
use crate::sip::uas::lock;
use crate::sip::watch::{Key, Started};

impl SipFrontEnd {
    /// Takes the routes to other domains from `[federation]` (none until
    /// this is called: every foreign address is then `NoRoute`).
    pub fn set_federation(&self, federation: &crate::config::Federation) {
        lock(&self.inner.uas.relays)
            .set_peer_domains(federation.domain.iter().map(|d| d.name.clone()));
        let routes = Arc::new(Routes::from_config(federation));
        *self
            .inner
            .routes
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = routes;
    }

    pub(super) fn routes(&self) -> Arc<Routes> {
        Arc::clone(
            &self
                .inner
                .routes
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Sends a request to another domain on `route` and waits for its final
    /// answer, at most the transaction's time.
    async fn exchange_foreign(
        &self,
        out: &OutRequest,
        route: Option<&Route>,
    ) -> Result<Final, String> {
        let login = |code| route.and_then(|r| r.login_for(code)).map(Login::credential);
        match tokio::time::timeout(
            self.inner.foreign_timeout,
            self.inner.client.exchange(out, login),
        )
        .await
        {
            Ok(answer) => answer,
            Err(_) => Err("no final answer in time".into()),
        }
    }

    /// Sends an in-dialog request of a watch (an unsubscribe) and logs the
    /// answer; nobody waits for it.
    pub(super) fn spawn_foreign(&self, out: OutRequest, route: Route) {
        let fe = self.clone();
        tokio::spawn(async move {
            match fe.exchange_foreign(&out, Some(&route)).await {
                Ok(a) => debug!(method = out.method, code = a.code, "request answered"),
                Err(e) => info!(method = out.method, error = %e, "request not sent"),
            }
        });
    }

    /// Sends a SUBSCRIBE of watch `key` and gives its answer to the table;
    /// news it leads to goes to the bridge.
    async fn send_watch(&self, key: Key, out: OutRequest) -> Result<(), Refusal> {
        let route = lock(&self.inner.uas.watches).route(&key);
        let answer = self.exchange_foreign(&out, route.as_ref()).await;
        if let Err(e) = &answer {
            info!(presentity = %key.1, error = %e, "SUBSCRIBE not answered");
        }
        let (result, news) = lock(&self.inner.uas.watches).answered(
            &key,
            &out.call_id,
            answer.as_ref().map_err(String::as_str),
            unix_now(),
        );
        if let Some(n) = news {
            self.inner.uas.bridge().foreign_presence(n);
        }
        result
    }

    /// Sends requests nobody waits for, each in its own task.
    pub(super) fn send_all(&self, requests: Vec<OutRequest>) {
        for out in requests {
            let fe = self.clone();
            tokio::spawn(async move { fe.send_logged(out).await });
        }
    }

    /// Watches a presentity of another domain for relayed dialogs; if the
    /// other domain refuses, those dialogs end with a reason that says so.
    pub(super) fn relay_watch(&self, watcher: String, presentity: String) {
        let fe = self.clone();
        tokio::spawn(async move {
            let Err(refusal) = fe.start_watch(watcher.clone(), presentity.clone()).await else {
                return;
            };
            let reason = match refusal {
                Refusal::ForeignNotAllowed(_) => "rejected",
                Refusal::Busy { .. } => "giveup",
                _ => "noresource",
            };
            let news = ForeignPresence {
                watcher,
                presentity,
                state: ForeignWatchState::Terminated(reason.into()),
            };
            let ended = lock(&fe.inner.uas.relays).news(&news, unix_now());
            fe.send_all(ended);
        });
    }

    /// Refreshes and resubscriptions due now; watches that ran out.
    pub(super) fn watches_due(&self, now: u64) {
        let due = lock(&self.inner.uas.watches).due(now, fresh_ids);
        for n in due.news {
            self.inner.uas.bridge().foreign_presence(n);
        }
        for (key, out) in due.requests {
            let fe = self.clone();
            tokio::spawn(async move {
                if let Err(r) = fe.send_watch(key, out).await {
                    debug!(refusal = %r, "presence subscription not renewed");
                }
            });
        }
    }

    /// A MESSAGE to the other domain on its route; the final answer decides.
    pub(super) async fn message_foreign(&self, msg: ForeignIm) -> Result<(), Refusal> {
        let route = self.routes().route(&msg.to)?;
        let from = outbound::local_sip_uri(&msg.from, &self.inner.domain);
        let message_id = msg.im_message_id.clone().unwrap_or_else(|| random_text(16));
        let now = UnixTime::now().to_string();
        let out = outbound::foreign_message(&msg, &from, &route, fresh_ids(), &message_id, &now);
        match self.exchange_foreign(&out, Some(&route)).await {
            Ok(a) => route::outcome(&msg.to, a.code, a.header("Retry-After")),
            Err(e) => {
                info!(to = %msg.to, error = %e, "MESSAGE to another domain not answered");
                Err(Refusal::NoRoute(msg.to))
            }
        }
    }

    /// A presence subscription to the other domain (one per watcher and
    /// presentity); `Ok` once its first SUBSCRIBE is accepted there.
    pub(super) async fn start_watch(
        &self,
        watcher: String,
        presentity: String,
    ) -> Result<(), Refusal> {
        let route = self.routes().route(&presentity)?;
        let local = outbound::local_sip_uri(&watcher, &self.inner.domain);
        let cfg = &self.inner.uas.cfg;
        let contact = if route.is_tcp(&presentity) {
            cfg.contact_tcp.clone()
        } else {
            cfg.contact_udp.clone()
        };
        let started = lock(&self.inner.uas.watches).watch(
            &watcher,
            &presentity,
            &local,
            &contact,
            route,
            fresh_ids(),
            unix_now(),
        )?;
        match started {
            Started::Existing(last) => {
                if let Some(n) = last {
                    self.inner.uas.bridge().foreign_presence(n);
                }
                Ok(())
            }
            Started::New(out) => self.send_watch((watcher, presentity), *out).await,
        }
    }

    /// News for a local SIP watcher: NOTIFYs in their relayed dialogs.
    pub(super) fn relay_news(&self, update: &ForeignPresence) {
        let notifies = lock(&self.inner.uas.relays).news(update, unix_now());
        self.send_all(notifies);
    }

    /// Ends a watch: `Expires: 0` to the other domain.
    pub(super) fn end_watch(&self, watcher: &str, presentity: &str) {
        let ended = lock(&self.inner.uas.watches).unwatch(watcher, presentity, unix_now());
        if let Some((out, route)) = ended {
            self.spawn_foreign(out, route);
        }
    }
}
