//! The bridge: authorises and maps IMs to queued SMS (IM → SMS), and shares the
//! store with the modem workers ([`super::work`]) and the delivery loop
//! ([`super::inbound`]).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

use super::api::{
    Accepted, BoxFuture, BridgeApi, ImFrontEnd, ImToSms, PresenceRule, Recipient, Refusal,
    SipCredentials, SubHandling, SubscriberPresence, WatchDecision, WatcherInfo,
};
use super::policy;
use crate::config;
use crate::metrics::Metrics;
use crate::pdu::{
    self, Address, Body, DataCoding, EncodeOptions, Submit, Tpdu, UserData, Validity,
};
use crate::store::{
    FrontEnd, InboundId, MessageId, MessageState, Msisdn, NewMessage, Store, StoreError, UnixTime,
    User, normalise_msisdn,
};

/// Whether any modem can send now; the daemon passes the pool's view.
pub type ModemsReady = Arc<dyn Fn() -> bool + Send + Sync>;

/// Password hashes computed at once (argon2: about 19 MiB and one core each;
/// Logins are rare, and a flood must not grow the daemon past what a Pi spares).
pub(crate) const HASHES_AT_ONCE: usize = 1;
/// How long a Login waits for a turn to have its password checked.
pub(crate) const HASH_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// Where the bridge's glue reads the time it hands to the decisions; the
/// system clock in the daemon, a fixed or stepped one in tests.
pub type Clock = Arc<dyn Fn() -> UnixTime + Send + Sync>;

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
    /// Counts users coming online, so a delivery attempt that failed while
    /// its user was registering is not put off by the retry back-off.
    pub online_generation: std::sync::atomic::AtomicU64,
    /// Whether a modem can send.
    pub modems_ready: ModemsReady,
    /// Our domains and listen addresses, and the peers of other domains
    /// (`[federation]`): which addresses are local.
    pub domains: Arc<crate::domains::Domains>,
    /// `[federation]`: what users of other domains may reach.
    pub federation: config::Federation,
    /// `[presence] default_policy`: the handling of a watcher no rule of the
    /// presentity decides.
    pub presence_default: SubHandling,
    front_ends: RwLock<Vec<(FrontEnd, Arc<dyn ImFrontEnd>)>>,
    clock: Clock,
    /// Password hashes running at once: each takes an argon2 block of memory
    /// and a core, so a flood of Logins cannot take more than this.
    hashing: Arc<tokio::sync::Semaphore>,
    /// The counters `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// Where IMs wait for their group commit (started by the first one).
    commits: std::sync::OnceLock<mpsc::Sender<Submission>>,
    /// `[database] group_commit_max` and `group_commit_wait`.
    group_commit: (usize, Duration),
}

/// What a queued IM's decision gives: its outbox row and what was decided,
/// or why not.
type Decided = Result<(MessageId, policy::Outgoing), Refusal>;

/// One IM waiting for the group commit that decides and queues it.
struct Submission {
    req: ImToSms,
    /// The user the IM was for when it goes to their phone instead
    /// (`messages.for_user_id`).
    for_user: Option<crate::store::UserId>,
    modems_ready: bool,
    answer: oneshot::Sender<Decided>,
}

/// Counts a batch's decisions share: read once per batch, then moved by each
/// IM the batch queues, so they stay exact (nobody else writes while the
/// batch's transaction holds the lock) without a count per IM.
#[derive(Default)]
struct BatchCounts {
    /// Messages waiting for a modem.
    queued: Option<usize>,
    /// Per user: messages in the last minute and the last day (0 where the
    /// user has no such limit, as nothing reads it then).
    sent: std::collections::HashMap<crate::store::UserId, (u32, u32)>,
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
            online_generation: std::sync::atomic::AtomicU64::new(0),
            inbound: Arc::new(Notify::new()),
            modems_ready,
            domains: Arc::new(crate::domains::Domains::from_config(cfg)),
            federation: cfg.federation.clone(),
            presence_default: super::authz::default_handling(cfg.presence.default_policy),
            front_ends: RwLock::new(Vec::new()),
            clock: Arc::new(UnixTime::now),
            hashing: Arc::new(tokio::sync::Semaphore::new(HASHES_AT_ONCE)),
            metrics: Arc::new(Metrics::new()),
            commits: std::sync::OnceLock::new(),
            group_commit: (
                cfg.database.group_commit_max.max(1),
                cfg.database.group_commit_wait,
            ),
        })
    }

    /// The queue of the group commit, whose task starts with the first IM (it
    /// ends when the bridge is dropped).
    fn commits(self: &Arc<Self>) -> &mpsc::Sender<Submission> {
        self.commits.get_or_init(|| {
            let (max, wait) = self.group_commit;
            let (tx, rx) = mpsc::channel(max.saturating_mul(4));
            tokio::spawn(commit_loop(Arc::downgrade(self), rx, max, wait));
            tx
        })
    }

    /// Checks a password against an argon2 hash (`None`: an unknown user, who
    /// costs the same and never matches) on a blocking thread, outside the
    /// store's lock, at most [`HASHES_AT_ONCE`] at a time; a Login that cannot
    /// get a turn within [`HASH_QUEUE_WAIT`] is refused as busy.
    pub async fn verify_password(
        &self,
        phc: Option<String>,
        password: String,
    ) -> Result<bool, Refusal> {
        let busy = Refusal::Busy {
            retry_after: Duration::from_secs(5),
        };
        let permit =
            tokio::time::timeout(HASH_QUEUE_WAIT, Arc::clone(&self.hashing).acquire_owned())
                .await
                .map_err(|_| {
                    tracing::warn!("password checks are queued too long: Login refused as busy");
                    busy.clone()
                })?
                .map_err(|_| busy.clone())?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            crate::store::verify_password(phc.as_deref(), &password)
        })
        .await
        .map_err(|_| busy)
    }

    /// The same, with the time read from `clock` (tests).
    pub fn with_clock(
        store: Store,
        cfg: &config::Config,
        modems_ready: ModemsReady,
        clock: Clock,
    ) -> Arc<Self> {
        let mut shared = Self::new(store, cfg, modems_ready);
        if let Some(s) = Arc::get_mut(&mut shared) {
            s.clock = clock;
        }
        shared
    }

    /// The time now, for a decision.
    pub fn now(&self) -> UnixTime {
        (self.clock)()
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

    /// Every front end that runs (each hears every change of a presentity's
    /// decisions).
    pub fn front_ends(&self) -> Vec<Arc<dyn ImFrontEnd>> {
        self.front_ends
            .read()
            .map(|v| v.iter().map(|(_, f)| Arc::clone(f)).collect())
            .unwrap_or_default()
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
        self.submit_for(req, None).await
    }

    /// IM → SMS; `for_user`: the IM was for that user, and goes to their
    /// phone (recorded with the outbox row, in the transaction that queues it).
    pub(super) async fn submit_for(
        self: Arc<Self>,
        req: ImToSms,
        for_user: Option<crate::store::UserId>,
    ) -> Result<Accepted, Refusal> {
        let sh = Arc::clone(&self.shared);
        policy::screen_submit(&req, &sh.policy)?;
        let (answer, answered) = oneshot::channel();
        let submission = Submission {
            req: req.clone(),
            for_user,
            modems_ready: (sh.modems_ready)(),
            answer,
        };
        let gone = || {
            tracing::error!("the group commit has stopped");
            Refusal::Internal {
                retry_after: Duration::from_secs(60),
            }
        };
        sh.commits().send(submission).await.map_err(|_| gone())?;
        let decided = answered.await.map_err(|_| gone())?;
        let (message, out) = decided?;
        tracing::info!(
            user = %req.sender.address,
            to = %out.msisdn,
            parts = out.parts,
            message = message.0,
            "IM accepted for SMS"
        );
        Ok(Accepted {
            delivered: false,
            message,
            parts: out.parts,
        })
    }

    /// The subscriber an IM is for.
    async fn resolve(&self, user: &User, to: &Recipient) -> Result<Msisdn, Refusal> {
        let (uid, to) = (user.id, to.clone());
        let cc = self.shared.country_code.clone();
        self.shared
            .db(move |s| resolve_recipient(s, uid, &to, cc.as_deref()))
            .await
            .map_err(store_refusal)?
    }
}

/// The group commit: takes the IMs waiting (up to `max`, the first waiting at
/// most `wait` for company) and decides and queues them in one transaction,
/// so one fsync makes them all durable; each is answered once it committed.
async fn commit_loop(
    shared: std::sync::Weak<Shared>,
    mut rx: mpsc::Receiver<Submission>,
    max: usize,
    wait: Duration,
) {
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + wait;
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) if wait.is_zero() => break,
                Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(s)) => batch.push(s),
                    _ => break,
                },
            }
        }
        let Some(sh) = shared.upgrade() else { break };
        commit_batch(&sh, batch).await;
    }
}

/// Decides and queues `batch` in one `BEGIN IMMEDIATE` transaction (rule 8):
/// one after the other, each seeing the rows of those before it, so limits
/// stay exact; each in a savepoint, so one that fails takes nobody else with
/// it. The answers go out after the commit, or all say why it failed.
async fn commit_batch(sh: &Arc<Shared>, batch: Vec<Submission>) {
    let (jobs, answers): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|s| ((s.req, s.for_user, s.modems_ready), s.answer))
        .unzip();
    // One time for the batch: its limit windows and its rows' created_at.
    let now = sh.now();
    let cc = sh.country_code.clone();
    let bridge_policy = sh.policy.clone();
    let validity = Some(Validity::relative(sh.policy.validity));
    let committed = sh
        .db(move |s| {
            s.atomically(|s| {
                let mut decided = Vec::with_capacity(jobs.len());
                let mut counts = BatchCounts::default();
                for (req, for_user, modems_ready) in &jobs {
                    let one = s.atomically(|s| {
                        let snap = submit_snapshot(
                            s,
                            req,
                            cc.as_deref(),
                            *modems_ready,
                            now,
                            &mut counts,
                        )?;
                        let out = match policy::decide_submit(snap, req, &bridge_policy) {
                            Ok(out) => out,
                            Err(refusal) => return Ok(Err(refusal)),
                        };
                        let id = queue(s, &out, req, validity, now)?;
                        if let Some(u) = for_user {
                            s.set_message_for_user(id, *u)?;
                        }
                        Ok(Ok((id, out)))
                    });
                    let one = one.unwrap_or_else(|e| Err(store_refusal(e)));
                    if let Ok((_, out)) = &one {
                        counts.queued(out.user);
                    }
                    decided.push(one);
                }
                Ok(decided)
            })
        })
        .await;
    match committed {
        Ok(decided) => {
            if decided.iter().any(Result::is_ok) {
                sh.wake_outbox();
            }
            for (answer, d) in answers.into_iter().zip(decided) {
                let _ = answer.send(d);
            }
        }
        Err(e) => {
            let refusal = store_refusal(e);
            for answer in answers {
                let _ = answer.send(Err(refusal.clone()));
            }
        }
    }
}

/// Reads what [`policy::decide_submit`] needs, inside its transaction.
fn submit_snapshot(
    s: &mut Store,
    req: &ImToSms,
    cc: Option<&str>,
    modems_ready: bool,
    now: UnixTime,
    counts: &mut BatchCounts,
) -> Result<policy::SubmitSnapshot, StoreError> {
    let user = match s.user_by_address(&req.sender.address) {
        Ok(u) => u,
        Err(e) if e.is_bad_input() => None,
        Err(e) => return Err(e),
    };
    let mut snap = policy::SubmitSnapshot {
        user: None,
        recipient: Err(Refusal::UnknownRecipient(String::new())),
        blocked: false,
        opted_out: false,
        sent_last_minute: 0,
        sent_last_day: 0,
        queued: 0,
        modems_ready,
    };
    let Some(user) = user else {
        return Ok(snap);
    };
    snap.recipient = resolve_recipient(s, user.id, &req.recipient, cc)?;
    if let Ok(m) = &snap.recipient {
        snap.blocked = s.is_blocked(user.id, m)?;
        snap.opted_out = s.subscriber(m)?.is_some_and(|x| x.opted_out_at.is_some());
    }
    (snap.sent_last_minute, snap.sent_last_day) = match counts.sent.get(&user.id) {
        Some(c) => *c,
        None => {
            let (minute, day) = policy::limit_windows(now);
            let st = &user.settings;
            let c = (
                if st.rate_per_minute > 0 {
                    s.messages_since(user.id, minute)?
                } else {
                    0
                },
                if st.daily_cap > 0 {
                    s.messages_since(user.id, day)?
                } else {
                    0
                },
            );
            counts.sent.insert(user.id, c);
            c
        }
    };
    snap.queued = match counts.queued {
        Some(q) => q,
        None => *counts
            .queued
            .insert(s.count_messages(MessageState::Queued)?),
    };
    snap.user = Some(user);
    Ok(snap)
}

impl BatchCounts {
    /// One more message queued by `user` in this batch.
    fn queued(&mut self, user: crate::store::UserId) {
        if let Some(q) = &mut self.queued {
            *q += 1;
        }
        if let Some((minute, day)) = self.sent.get_mut(&user) {
            *minute += 1;
            *day += 1;
        }
    }
}

/// The subscriber a recipient names for `user`: a number, or a contact alias
/// (a national number without an alias still counts).
fn resolve_recipient(
    s: &Store,
    user: crate::store::UserId,
    to: &Recipient,
    cc: Option<&str>,
) -> Result<Result<Msisdn, Refusal>, StoreError> {
    Ok(match to {
        Recipient::Number(n) => {
            normalise_msisdn(n, cc).map_err(|e| Refusal::UnknownRecipient(e.to_string()))
        }
        Recipient::Alias(alias) => match s.contact_by_alias(user, alias)? {
            Some(c) => Ok(c.msisdn),
            None => normalise_msisdn(alias, cc)
                .map_err(|_| Refusal::UnknownRecipient(format!("no contact {alias:?}"))),
        },
        // Never a subscriber: routed to its domain by `super::foreign`.
        Recipient::Foreign(address) => Err(Refusal::NoRoute(address.clone())),
    })
}

/// Encodes the accepted text and writes its outbox row (inside the decision's
/// transaction).
fn queue(
    s: &mut Store,
    out: &policy::Outgoing,
    req: &ImToSms,
    validity: Option<Validity>,
    now: UnixTime,
) -> Result<MessageId, StoreError> {
    s.enqueue_with(&out.msisdn, now, |reference| {
        Ok(NewMessage {
            user: out.user,
            msisdn: out.msisdn.clone(),
            text: out.text.clone(),
            alphabet: out.alphabet,
            parts: encode_parts(out, validity, reference)?,
            im_message_id: req.im_message_id.clone(),
            report_requested: true,
            imdn_positive: req.notify.delivered,
            imdn_negative: req.notify.failed,
            front_end: req.front_end,
        })
    })
}

/// The accepted text as SMS-SUBMITs with a status report asked for, encoded
/// once, for `AT+CMGS`.
pub(super) fn encode_parts(
    out: &policy::Outgoing,
    validity: Option<Validity>,
    reference: u16,
) -> Result<Vec<Vec<u8>>, StoreError> {
    let destination = Address::from_number(out.msisdn.as_str())
        .map_err(|e| StoreError::InvalidInput(e.to_string()))?;
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
    let parts = pdu::segment(&template, &out.text, reference, &EncodeOptions::default())
        .map_err(|e| StoreError::InvalidInput(e.to_string()))?;
    let mut tpdus = Vec::with_capacity(parts.len());
    for p in parts {
        let mut b = Vec::new();
        Tpdu::Submit(p)
            .encode(&mut b)
            .map_err(|e| StoreError::InvalidInput(e.to_string()))?;
        tpdus.push(b);
    }
    Ok(tpdus)
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
        Refusal::StoreBusy {
            retry_after: Duration::from_secs(30),
        }
    } else if e.is_bad_input() {
        Refusal::Invalid(e.to_string())
    } else {
        tracing::error!("store error: {e}");
        Refusal::Internal {
            retry_after: Duration::from_secs(60),
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
            let found = this
                .shared
                .db(move |s| s.user_by_address(&w))
                .await
                .map_err(store_refusal)?;
            // A watcher of another domain (its server accepted by the front
            // end) is never one of ours, whatever the user part.
            if found.is_none() && this.is_foreign(&watcher) {
                return this.foreign_watcher_presence(watcher, target).await;
            }
            let user = found.ok_or(Refusal::UnknownUser(watcher.clone()))?;
            let msisdn = match this.resolve(&user, &target).await {
                Ok(m) => m,
                // Not a subscriber: perhaps another user of the bridge (an IMPS
                // user watched from SIP), as their policy decides.
                Err(e) => {
                    let Recipient::Alias(name) = &target else {
                        return Err(e);
                    };
                    let watched = crate::bridge::api::ImApi::watch(&this, watcher, name.clone())
                        .await
                        .map_err(|we| match we {
                            // A user of the bridge, but not one the watcher may watch.
                            Refusal::Blocked(_)
                            | Refusal::BlockedByRecipient(_)
                            | Refusal::NotInContacts(_) => we,
                            _ => e,
                        })?;
                    return this.watched_presence(watched);
                }
            };
            let (name, decision, unavailable) =
                this.subscriber_watch(&user, &watcher, &msisdn).await?;
            Ok(SubscriberPresence {
                msisdn: msisdn.to_string(),
                name,
                im_user: None,
                decision,
                unavailable,
            })
        })
    }

    fn presence_changed(&self, address: String, presence: crate::presence::Presence) {
        // Watchers on the other front end hear of it (SIP users' registrations
        // to IMPS watchers, IMPS users' logins to SIP watchers).
        let other = if address.starts_with("sip:") || address.starts_with("sips:") {
            FrontEnd::Imps
        } else {
            FrontEnd::Sip
        };
        if let Some(fe) = self.shared.front_end(other) {
            fe.presence_changed(user_part(&address), &presence);
        }
    }

    fn foreign_presence(&self, update: crate::bridge::api::ForeignPresence) {
        // The watcher's own front end tells them (IMPS watchers by `wv:`).
        let kind = if update.watcher.starts_with("wv:") {
            FrontEnd::Imps
        } else {
            FrontEnd::Sip
        };
        if let Some(fe) = self.shared.front_end(kind) {
            fe.foreign_presence(update);
        }
    }

    fn domains(&self) -> Option<Arc<crate::domains::Domains>> {
        Some(Arc::clone(&self.shared.domains))
    }

    fn authorise_watch(
        &self,
        presentity: String,
        watcher: String,
    ) -> BoxFuture<Result<WatchDecision, Refusal>> {
        self.authorise_watch_api(presentity, watcher)
    }

    fn watchers(&self, presentity: String) -> BoxFuture<Result<Vec<WatcherInfo>, Refusal>> {
        self.read_presentity(presentity, Store::watchers)
    }

    fn decide_watcher(
        &self,
        presentity: String,
        watcher: String,
        handling: SubHandling,
    ) -> BoxFuture<Result<(), Refusal>> {
        self.decide_watcher_api(presentity, watcher, handling)
    }

    fn presence_rules(&self, presentity: String) -> BoxFuture<Result<Vec<PresenceRule>, Refusal>> {
        self.read_presentity(presentity, Store::presence_rules)
    }

    fn set_presence_rules(
        &self,
        presentity: String,
        rules: Vec<PresenceRule>,
    ) -> BoxFuture<Result<(), Refusal>> {
        self.set_presence_rules_api(presentity, rules)
    }

    /// The recipient's client has the message: delivered, by the same store
    /// call as a delivery by the loop (which also owes its sender the notice
    /// they asked for), and counted like one. Another user's message, a
    /// notice, or one no longer pending changes nothing.
    fn im_received(&self, user: String, inbound: InboundId) -> BoxFuture<Result<(), Refusal>> {
        let sh = Arc::clone(&self.shared);
        Box::pin(async move {
            let now = sh.now();
            let who = user.clone();
            let confirmed = sh
                .db(move |s| {
                    s.atomically(|s| {
                        let Some(u) = s.user_by_address(&who)? else {
                            return Ok(None);
                        };
                        let Some(m) = s.pending_inbound_of(inbound, u.id)? else {
                            return Ok(Some(None));
                        };
                        s.mark_inbound_delivered(inbound, u.id, now)?;
                        Ok(Some(Some((front_end_of(&u), m.received_at))))
                    })
                })
                .await
                .map_err(store_refusal)?;
            match confirmed {
                None => Err(Refusal::UnknownUser(user)),
                Some(None) => {
                    tracing::info!(inbound = inbound.0, %user, "confirmation of a message not pending for this user: nothing to do");
                    Ok(())
                }
                Some(Some((kind, received))) => {
                    tracing::info!(inbound = inbound.0, %user, "confirmed by the client: delivered");
                    // A notification it owes its sender goes out now.
                    sh.inbound.notify_one();
                    let metrics = &sh.metrics;
                    Metrics::front_end_counter(&metrics.im_delivered, kind.as_str());
                    let waited = u64::try_from(now.0 - received.0).unwrap_or(0);
                    Metrics::observe(&metrics.im_delivery_latency, Duration::from_secs(waited));
                    Ok(())
                }
            }
        })
    }

    fn user_online(&self, address: String) {
        let sh = Arc::clone(&self.shared);
        sh.online_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::spawn(async move {
            let now = sh.now();
            let due = sh
                .db(move |s| match s.user_by_address(&address)? {
                    Some(u) => Ok(s.inbound_due_for(u.id, now)? + s.notices_due_for(u.id, now)?),
                    None => Ok(0),
                })
                .await;
            if matches!(due, Ok(n) if n > 0) {
                sh.inbound.notify_one();
            }
        });
    }

    fn disposition(
        &self,
        from: super::api::Sender,
        to: Recipient,
        report: super::api::Disposition,
    ) -> BoxFuture<Result<(), Refusal>> {
        let this = super::im::arc(self);
        Box::pin(async move { this.relay_disposition(from, to, report).await })
    }
}

impl Bridge {
    /// What a watcher sees of what [`ImApi::watch`] allowed, as SIP asks
    /// for it: a user's presence (offline unless allowed), or a
    /// subscriber's.
    ///
    /// [`ImApi::watch`]: crate::bridge::api::ImApi::watch
    fn watched_presence(
        &self,
        watched: crate::bridge::api::Watched,
    ) -> Result<SubscriberPresence, Refusal> {
        use crate::bridge::api::Target;
        match watched.target {
            Target::User {
                user_part,
                name,
                front_end,
            } => {
                let presence = if watched.decision == WatchDecision::Allow {
                    self.presence_of(front_end, &user_part, watched.online)
                } else {
                    crate::presence::Presence::offline()
                };
                Ok(SubscriberPresence {
                    msisdn: String::new(),
                    name,
                    im_user: Some(crate::bridge::api::ImUserPresence {
                        user_part,
                        front_end,
                        presence,
                    }),
                    decision: watched.decision,
                    unavailable: None,
                })
            }
            Target::Subscriber { msisdn, name } => Ok(SubscriberPresence {
                msisdn,
                name,
                im_user: None,
                decision: watched.decision,
                unavailable: watched.unavailable,
            }),
            // Watched through the federating front end, not here.
            Target::Foreign { address, .. } => Err(Refusal::NoRoute(address)),
        }
    }

    /// What a user of the bridge shows: what their front end says of them,
    /// else whether they are `online` there.
    pub(super) fn presence_of(
        &self,
        front_end: FrontEnd,
        user_part: &str,
        online: Option<bool>,
    ) -> crate::presence::Presence {
        self.shared
            .front_end(front_end)
            .and_then(|fe| fe.user_presence(user_part))
            .unwrap_or_else(|| {
                if online.unwrap_or(false) {
                    crate::presence::Presence::online()
                } else {
                    crate::presence::Presence::offline()
                }
            })
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
