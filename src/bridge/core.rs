//! The bridge: authorises and maps IMs to queued SMS (IM → SMS), and shares the
//! store with the modem workers ([`super::work`]) and the delivery loop
//! ([`super::inbound`]).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use super::api::{
    Accepted, BoxFuture, BridgeApi, DeliveryNotice, DeliveryResult, ImFrontEnd, ImToSms, Recipient,
    Refusal, SipCredentials, SubscriberPresence,
};
use crate::config;
use crate::pdu::{
    self, Address, Body, DataCoding, EncodeOptions, Submit, Tpdu, UserData, Validity,
};
use crate::store::{
    FrontEnd, MessageId, MessageState, Msisdn, NewMessage, Store, StoreError, UnixTime, User,
    normalise_msisdn,
};

/// Whether any modem can send now; the daemon passes the pool's view.
pub type ModemsReady = Arc<dyn Fn() -> bool + Send + Sync>;

/// State shared by the bridge's parts.
pub struct Shared {
    store: Mutex<Store>,
    /// The `[bridge]` policy.
    pub policy: config::Bridge,
    /// Country code for national numbers.
    pub country_code: Option<String>,
    /// New work for the modems (see [`Shared::wake_outbox`]).
    pub outbox: Arc<Notify>,
    /// Counts [`Shared::wake_outbox`] calls, so a modem that looked for work just
    /// before one does not sleep through it.
    pub outbox_generation: Arc<std::sync::atomic::AtomicU64>,
    /// New or newly due SMS for IM users.
    pub inbound: Arc<Notify>,
    /// Whether a modem can send.
    pub modems_ready: ModemsReady,
    front_ends: RwLock<Vec<(FrontEnd, Arc<dyn ImFrontEnd>)>>,
}

impl Shared {
    /// Shares `store` with the given policy.
    pub fn new(store: Store, cfg: &config::Config, modems_ready: ModemsReady) -> Arc<Self> {
        Arc::new(Self {
            store: Mutex::new(store),
            policy: cfg.bridge.clone(),
            country_code: cfg.numbers.default_country_code.clone(),
            outbox: Arc::new(Notify::new()),
            outbox_generation: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            inbound: Arc::new(Notify::new()),
            modems_ready,
            front_ends: RwLock::new(Vec::new()),
        })
    }

    /// Tells the modems there is new work: the generation moves first, then the
    /// waiters wake.
    pub fn wake_outbox(&self) {
        self.outbox_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.outbox.notify_waiters();
    }

    /// Registers the front end that delivers to users of `kind`.
    pub fn set_front_end(&self, kind: FrontEnd, fe: Arc<dyn ImFrontEnd>) {
        if let Ok(mut v) = self.front_ends.write() {
            v.retain(|(k, _)| *k != kind);
            v.push((kind, fe));
        }
    }

    /// The front end for users of `kind`, if one runs.
    pub fn front_end(&self, kind: FrontEnd) -> Option<Arc<dyn ImFrontEnd>> {
        self.front_ends
            .read()
            .ok()?
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, f)| Arc::clone(f))
    }

    /// Sends the delivery notification of `message` if its sender asked for this
    /// outcome. Failures to notify are logged; the message state is already final.
    pub async fn notify_outcome(
        self: &Arc<Self>,
        message: MessageId,
        delivered: bool,
        reason: Option<String>,
    ) {
        let Ok(Some(m)) = self.db(move |s| s.message(message)).await else {
            return;
        };
        let wanted = if delivered {
            m.imdn_positive
        } else {
            m.imdn_negative
        };
        let (Some(id), Some(user), true) = (m.im_message_id.clone(), m.user.clone(), wanted) else {
            return;
        };
        let Some(fe) = self.front_end(m.front_end) else {
            tracing::warn!("no {:?} front end to notify {user}", m.front_end);
            return;
        };
        let notice = DeliveryNotice {
            to_user: user.clone(),
            front_end: m.front_end,
            im_message_id: id,
            recipient: m.msisdn.to_string(),
            delivered,
            at: UnixTime::now(),
            reason,
        };
        match fe.notify(notice).await {
            DeliveryResult::Delivered => {
                tracing::info!(message = message.0, %user, delivered, "delivery notification sent")
            }
            other => {
                tracing::warn!(message = message.0, %user, "delivery notification not taken: {other:?}")
            }
        }
    }

    /// Runs `f` on the store in a blocking thread (SQLite fsyncs).
    pub async fn db<T, F>(self: &Arc<Self>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let mut store = this.store.lock().map_err(|_| StoreError::Unavailable {
                detail: "store lock poisoned".into(),
            })?;
            f(&mut store)
        })
        .await
        .map_err(|e| StoreError::Unavailable {
            detail: format!("store task failed: {e}"),
        })?
    }
}

/// The bridge as the front ends see it.
pub struct Bridge {
    pub(super) shared: Arc<Shared>,
}

impl Bridge {
    /// A bridge over shared state.
    pub fn new(shared: Arc<Shared>) -> Arc<Self> {
        Arc::new(Self { shared })
    }

    pub(super) async fn submit_inner(self: Arc<Self>, req: ImToSms) -> Result<Accepted, Refusal> {
        let sh = &self.shared;
        let policy = &sh.policy;
        if req.text.trim().is_empty() {
            return Err(Refusal::Invalid("empty message".into()));
        }
        if req.anonymous && !policy.allow_anonymous {
            return Err(Refusal::AnonymityForbidden);
        }
        let address = req.sender.address.clone();
        let user = sh
            .db(move |s| s.user_by_address(&address))
            .await
            .map_err(store_refusal)?
            .ok_or_else(|| Refusal::UnknownUser(req.sender.address.clone()))?;
        if !user.settings.may_send_sms {
            return Err(Refusal::NotAllowed(format!(
                "{} may not send SMS",
                user.address()
            )));
        }
        let msisdn = self.resolve(&user, &req.recipient).await?;
        let (uid, m) = (user.id, msisdn.clone());
        let (blocked, subscriber) = sh
            .db(move |s| Ok((s.is_blocked(uid, &m)?, s.subscriber(&m)?)))
            .await
            .map_err(store_refusal)?;
        if blocked {
            return Err(Refusal::NotAllowed(format!("{msisdn} is blocked")));
        }
        if subscriber.is_some_and(|s| s.opted_out_at.is_some()) {
            return Err(Refusal::NotAllowed(format!(
                "{msisdn} opted out of messages"
            )));
        }
        self.check_limits(&user).await?;
        if !(sh.modems_ready)() {
            return Err(Refusal::Unavailable {
                retry_after: Duration::from_secs(60),
                why: "no modem is registered".into(),
            });
        }
        let text = self.with_prefix(&user, &req);
        let opts = EncodeOptions::default();
        let plan = pdu::plan(&text, &opts);
        if plan.parts > policy.max_parts {
            return Err(Refusal::TooLong {
                parts: plan.parts,
                max: policy.max_parts,
            });
        }
        let destination = Address::from_number(msisdn.as_str())
            .map_err(|e| Refusal::UnknownRecipient(e.to_string()))?;
        let validity = Some(Validity::relative(policy.validity));
        let m = msisdn.clone();
        let im_message_id = req.im_message_id.clone();
        let notify = req.notify;
        let front_end = req.front_end;
        let user_id = user.id;
        let now = UnixTime::now();
        let message = sh
            .db(move |s| {
                let to = m.clone();
                s.enqueue_with(&to, now, |reference| {
                    let template = Submit {
                        reject_duplicates: false,
                        status_report_request: true,
                        reply_path: false,
                        mr: 0,
                        destination,
                        pid: 0,
                        dcs: DataCoding::GSM7,
                        validity,
                        user_data: UserData {
                            header: None,
                            body: Body::Data(Vec::new()),
                        },
                    };
                    let parts = pdu::segment(&template, &text, reference, &opts)
                        .map_err(|e| StoreError::InvalidInput(e.to_string()))?;
                    let mut tpdus = Vec::with_capacity(parts.len());
                    for p in parts {
                        let mut b = Vec::new();
                        Tpdu::Submit(p)
                            .encode(&mut b)
                            .map_err(|e| StoreError::InvalidInput(e.to_string()))?;
                        tpdus.push(b);
                    }
                    Ok(NewMessage {
                        user: user_id,
                        msisdn: m,
                        text,
                        alphabet: plan.alphabet,
                        parts: tpdus,
                        im_message_id,
                        report_requested: true,
                        imdn_positive: notify.delivered,
                        imdn_negative: notify.failed,
                        front_end,
                    })
                })
            })
            .await
            .map_err(store_refusal)?;
        sh.wake_outbox();
        tracing::info!(
            user = %user.address(),
            to = %msisdn,
            parts = plan.parts,
            message = message.0,
            "IM accepted for SMS"
        );
        Ok(Accepted {
            message,
            parts: plan.parts,
        })
    }

    /// The subscriber an IM is for.
    async fn resolve(&self, user: &User, to: &Recipient) -> Result<Msisdn, Refusal> {
        match to {
            Recipient::Number(n) => normalise_msisdn(n, self.shared.country_code.as_deref())
                .map_err(|e| Refusal::UnknownRecipient(e.to_string())),
            Recipient::Alias(alias) => {
                let (uid, a) = (user.id, alias.clone());
                let contact = self
                    .shared
                    .db(move |s| s.contact_by_alias(uid, &a))
                    .await
                    .map_err(store_refusal)?;
                match contact {
                    Some(c) => Ok(c.msisdn),
                    // A national number without a contact alias still counts.
                    None => normalise_msisdn(alias, self.shared.country_code.as_deref())
                        .map_err(|_| Refusal::UnknownRecipient(format!("no contact {alias:?}"))),
                }
            }
        }
    }

    /// Per-user rate limit and daily cap, and the outbox limit.
    async fn check_limits(&self, user: &User) -> Result<(), Refusal> {
        let (uid, now) = (user.id, UnixTime::now());
        let (minute, day, queued) = self
            .shared
            .db(move |s| {
                Ok((
                    s.messages_since(uid, now.plus(-60))?,
                    s.messages_since(uid, now.plus(-86400))?,
                    s.count_messages(MessageState::Queued)?,
                ))
            })
            .await
            .map_err(store_refusal)?;
        let st = &user.settings;
        if st.rate_per_minute > 0 && minute >= st.rate_per_minute {
            return Err(Refusal::Unavailable {
                retry_after: Duration::from_secs(60),
                why: format!("rate limit of {} messages per minute", st.rate_per_minute),
            });
        }
        if st.daily_cap > 0 && day >= st.daily_cap {
            return Err(Refusal::NotAllowed(format!(
                "daily cap of {} messages reached",
                st.daily_cap
            )));
        }
        if queued >= self.shared.policy.queue_limit {
            return Err(Refusal::Unavailable {
                retry_after: Duration::from_secs(120),
                why: format!("{queued} messages are waiting for a modem"),
            });
        }
        Ok(())
    }

    /// The text as sent: with the sender's name in front unless anonymous.
    /// Trailing line breaks (which some clients add to the body) are dropped: an
    /// SMS has no room for them.
    fn with_prefix(&self, user: &User, req: &ImToSms) -> String {
        let text = req.text.trim_end_matches(['\r', '\n']);
        let template = &self.shared.policy.sender_prefix;
        if template.is_empty() || req.anonymous || user.settings.anonymous {
            return text.to_owned();
        }
        // Only the configured name or the address: the From display name is the
        // sender's to choose, and would let anyone sign an SMS "Bank".
        let name = user
            .settings
            .display_name
            .clone()
            .unwrap_or_else(|| user_part(user.address()).to_owned());
        format!("{}{text}", template.replace("{name}", &name))
    }
}

/// `alice` of `sip:alice@example.com` (or of `wv:alice@…`).
pub fn user_part(address: &str) -> &str {
    let rest = address.split_once(':').map_or(address, |(_, r)| r);
    rest.split('@').next().unwrap_or(rest)
}

/// A store error as a refusal: temporary ones say "try later".
pub(super) fn store_refusal(e: StoreError) -> Refusal {
    if e.is_temporary() {
        tracing::warn!("store unavailable: {e}");
        Refusal::Unavailable {
            retry_after: Duration::from_secs(30),
            why: "database busy".into(),
        }
    } else if e.is_bad_input() {
        Refusal::Invalid(e.to_string())
    } else {
        tracing::error!("store error: {e}");
        Refusal::Unavailable {
            retry_after: Duration::from_secs(60),
            why: "internal error".into(),
        }
    }
}

impl BridgeApi for Bridge {
    fn submit(&self, req: ImToSms) -> BoxFuture<Result<Accepted, Refusal>> {
        let this = Arc::new(Self {
            shared: Arc::clone(&self.shared),
        });
        // An alias that names no contact and no number may name another user
        // of the bridge (IMPS ↔ SIP): see `super::im`.
        Box::pin(this.submit_or_relay(req))
    }

    fn sip_credentials(&self, address: String) -> BoxFuture<Option<SipCredentials>> {
        let sh = Arc::clone(&self.shared);
        Box::pin(async move {
            let user = sh.db(move |s| s.user_by_address(&address)).await.ok()??;
            let (realm, ha1) = user.sip_digest?;
            Some(SipCredentials { realm, ha1 })
        })
    }

    fn presence(
        &self,
        watcher: String,
        target: Recipient,
    ) -> BoxFuture<Result<SubscriberPresence, Refusal>> {
        let this = Self {
            shared: Arc::clone(&self.shared),
        };
        Box::pin(async move {
            let w = watcher.clone();
            let user = this
                .shared
                .db(move |s| s.user_by_address(&w))
                .await
                .map_err(store_refusal)?
                .ok_or(Refusal::UnknownUser(watcher.clone()))?;
            let msisdn = match this.resolve(&user, &target).await {
                Ok(m) => m,
                // Not a subscriber: perhaps another user of the bridge (an IMPS
                // user watched from SIP), allowed when in the watcher's lists.
                Err(e) => {
                    let Recipient::Alias(name) = &target else {
                        return Err(e);
                    };
                    let watched = crate::bridge::api::ImApi::watch(&this, watcher, name.clone())
                        .await
                        .map_err(|we| match we {
                            // A user of the bridge, but not one the watcher may watch.
                            Refusal::NotAllowed(_) => we,
                            _ => e,
                        })?;
                    return match watched.target {
                        crate::bridge::api::Target::User {
                            user_part, name, ..
                        } => Ok(SubscriberPresence {
                            msisdn: String::new(),
                            name,
                            im_user: Some(crate::bridge::api::ImUserPresence {
                                user_part,
                                open: watched.online.unwrap_or(false),
                            }),
                        }),
                        crate::bridge::api::Target::Subscriber { msisdn, name } => {
                            Ok(SubscriberPresence {
                                msisdn,
                                name,
                                im_user: None,
                            })
                        }
                    };
                }
            };
            let (uid, m) = (user.id, msisdn.clone());
            let contact = this
                .shared
                .db(move |s| s.contact(uid, &m))
                .await
                .map_err(store_refusal)?;
            match contact {
                Some(c) if !c.blocked => Ok(SubscriberPresence {
                    msisdn: msisdn.to_string(),
                    name: c.nickname,
                    im_user: None,
                }),
                Some(_) => Err(Refusal::NotAllowed(format!("{msisdn} is blocked"))),
                None => Err(Refusal::NotAllowed(format!(
                    "{msisdn} is not in your contacts"
                ))),
            }
        })
    }

    fn presence_changed(&self, address: String, open: bool) {
        // Watchers on the other front end hear of it (SIP users' registrations
        // to IMPS watchers, IMPS users' logins to SIP watchers).
        let other = if address.starts_with("sip:") || address.starts_with("sips:") {
            FrontEnd::Imps
        } else {
            FrontEnd::Sip
        };
        if let Some(fe) = self.shared.front_end(other) {
            fe.presence_changed(user_part(&address), open);
        }
    }

    fn user_online(&self, address: String) {
        let sh = Arc::clone(&self.shared);
        tokio::spawn(async move {
            let now = UnixTime::now();
            let due = sh
                .db(move |s| match s.user_by_address(&address)? {
                    Some(u) => s.inbound_due_for(u.id, now),
                    None => Ok(0),
                })
                .await;
            if matches!(due, Ok(n) if n > 0) {
                sh.inbound.notify_one();
            }
        });
    }
}

/// What the front ends are, so the bridge can route deliveries.
pub(super) fn front_end_of(user: &User) -> FrontEnd {
    if user.sip_aor.is_some() {
        FrontEnd::Sip
    } else {
        FrontEnd::Imps
    }
}
