//! The store as the modems' work source: parts are claimed from the outbox,
//! outcomes and received PDUs are committed, status reports become delivery
//! notifications. Implements [`crate::modem::Work`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::core::Shared;
use super::policy;
use crate::modem::{BoxFuture, Job, JobId, ModemInfo, SendOutcome, Work};
use crate::pdu::StatusReport;
use crate::store::{
    MessageId, MessageState, PartId, Received, ReportId, ReportOutcome, Store, StoreError, UnixTime,
};

/// How often an idle modem looks for parts whose retry time has come.
const RETRY_POLL: Duration = Duration::from_secs(5);

/// The outbox as work for the modem pool.
pub struct StoreWork {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    generation: Arc<AtomicU64>,
    seen: Mutex<HashMap<String, u64>>,
    released: Mutex<HashSet<String>>,
    /// Claimed parts: their message and attempt number.
    claimed: Mutex<HashMap<JobId, (MessageId, u32)>>,
}

/// Which modem (SIM) work belongs to: the IMSI, else the IMEI.
fn imsi(m: &ModemInfo) -> String {
    m.imsi
        .clone()
        .or_else(|| m.imei.as_ref().map(|i| format!("imei:{i}")))
        .unwrap_or_else(|| "unknown".into())
}

impl StoreWork {
    /// Work from `shared`'s store, woken by [`Shared::wake_outbox`].
    pub fn new(shared: Arc<Shared>) -> Arc<Self> {
        let generation = Arc::clone(&shared.outbox_generation);
        Arc::new(Self {
            inner: Arc::new(Inner {
                shared,
                generation,
                seen: Mutex::new(HashMap::new()),
                released: Mutex::new(HashSet::new()),
                claimed: Mutex::new(HashMap::new()),
            }),
        })
    }
}

impl Inner {
    async fn settle(&self, job: JobId, outcome: SendOutcome) {
        let part = PartId(job as i64);
        let (message, attempt) = self
            .claimed
            .lock()
            .ok()
            .and_then(|mut c| c.remove(&job))
            .unwrap_or((MessageId(0), 1));
        let now = self.shared.now();
        let bridge_policy = &self.shared.policy;
        // Each outcome is recorded with the message state before and after it, in
        // one store call: a notification is woken on the change into a final
        // state (failed; delivery unknown for a message that asked for no
        // report) only, never twice.
        let result = match outcome {
            SendOutcome::Submitted { mr } => {
                tracing::info!(part = part.0, mr, "part submitted");
                self.shared
                    .db(move |s| {
                        let before = state_of(s, message)?;
                        Ok((before, s.part_sent(part, mr, now)?))
                    })
                    .await
            }
            SendOutcome::Failed(e) => {
                let retry =
                    policy::send_retry(e.class(), attempt, bridge_policy.send_attempts, now);
                tracing::warn!(part = part.0, attempt, "part not sent: {e} ({retry:?})");
                let err = e.to_string();
                self.shared
                    .db(move |s| {
                        let before = state_of(s, message)?;
                        Ok((before, s.part_failed(part, &err, retry, now)?))
                    })
                    .await
            }
            SendOutcome::OutcomeUnknown => {
                let requeue = policy::requeue_unknown(bridge_policy.outcome_unknown);
                tracing::warn!(
                    part = part.0,
                    "outcome unknown; policy: {:?}",
                    bridge_policy.outcome_unknown
                );
                self.shared
                    .db(move |s| {
                        let before = state_of(s, message)?;
                        s.part_outcome_unknown(part, now)?;
                        apply_unknown_policy(s, message, requeue, now)?;
                        Ok((before, state_of(s, message)?))
                    })
                    .await
            }
        };
        match result {
            // The notification it may owe is kept with the message; the
            // delivery loop sends it.
            Ok((before, after)) if policy::is_final(after) && !policy::is_final(before) => {
                self.shared.inbound.notify_one();
            }
            Ok((_, MessageState::Queued)) => self.shared.wake_outbox(),
            Ok(_) => {}
            Err(e) => tracing::error!(part = part.0, "cannot record a send outcome: {e}"),
        }
    }
}

fn state_of(s: &Store, message: MessageId) -> Result<MessageState, StoreError> {
    Ok(s.message(message)?
        .map_or(MessageState::Failed, |m| m.state))
}

/// The configured policy for a message with a part of unknown outcome.
fn apply_unknown_policy(
    s: &mut Store,
    message: MessageId,
    requeue: bool,
    now: UnixTime,
) -> Result<(), StoreError> {
    if requeue {
        s.requeue_unknown(message, now)?;
    } else {
        s.fail_unknown(message, now)?;
    }
    Ok(())
}

impl Work for StoreWork {
    fn wait(&self, modem: ModemInfo) -> BoxFuture<()> {
        let inner = &self.inner;
        let seen = inner
            .seen
            .lock()
            .ok()
            .and_then(|s| s.get(&imsi(&modem)).copied());
        let (generation, notify) = (
            Arc::clone(&inner.generation),
            Arc::clone(&inner.shared.outbox),
        );
        Box::pin(async move {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if seen != Some(generation.load(Ordering::SeqCst)) {
                return;
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(RETRY_POLL) => {}
            }
        })
    }

    fn claim(&self, modem: ModemInfo) -> BoxFuture<Option<Job>> {
        let inner = Arc::clone(&self.inner);
        let id = imsi(&modem);
        // Read before claiming: a message queued during the claim bumps it, so the
        // next wait does not sleep through it.
        let generation = inner.generation.load(Ordering::SeqCst);
        // Marked released only once it worked (below), so a failed first claim is
        // retried.
        let first = inner.released.lock().is_ok_and(|r| !r.contains(&id));
        let requeue = policy::requeue_unknown(inner.shared.policy.outcome_unknown);
        Box::pin(async move {
            let now = inner.shared.now();
            let i = id.clone();
            let part = inner
                .shared
                .db(move |s| {
                    let mut failed = Vec::new();
                    if first {
                        // Parts left "sending" by a crash become outcome unknown
                        // (rule 4), never silently sent again; then the configured
                        // policy settles their messages, as it would have at once.
                        let n = s.release_claims(&i, now)?;
                        if n > 0 {
                            tracing::warn!(modem = %i, "{n} parts were being sent when smsbridge stopped: outcome unknown");
                        }
                        for m in s.messages(Some(MessageState::OutcomeUnknown))? {
                            if m.modem_imsi.as_deref() == Some(i.as_str()) {
                                apply_unknown_policy(s, m.id, requeue, now)?;
                                if state_of(s, m.id)? == MessageState::Failed {
                                    failed.push(m.id);
                                }
                            }
                        }
                    }
                    Ok((s.claim_next_part(&i, now)?, failed))
                })
                .await;
            let part = match part {
                Ok((p, failed)) => {
                    if first && let Ok(mut r) = inner.released.lock() {
                        r.insert(id.clone());
                    }
                    if !failed.is_empty() {
                        inner.shared.inbound.notify_one();
                    }
                    Ok(p)
                }
                Err(e) => Err(e),
            };
            // Only an empty outbox lets the next wait sleep; after a claim there
            // may be more parts due right away.
            if let Ok(mut s) = inner.seen.lock() {
                if matches!(part, Ok(None)) {
                    s.insert(id.clone(), generation);
                } else {
                    s.remove(&id);
                }
            }
            match part {
                Ok(Some(p)) => {
                    let job = p.part.0 as JobId;
                    if let Ok(mut c) = inner.claimed.lock() {
                        c.insert(job, (p.message, p.attempt));
                    }
                    tracing::debug!(modem = %id, part = p.part.0, seq = p.seq, total = p.total, "part claimed");
                    Some(Job {
                        id: job,
                        tpdu: p.tpdu,
                        smsc: None,
                    })
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(modem = %id, "cannot claim work: {e}");
                    None
                }
            }
        })
    }

    fn done(&self, _modem: ModemInfo, job: JobId, outcome: SendOutcome) -> BoxFuture<()> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move { inner.settle(job, outcome).await })
    }

    fn received(&self, modem: ModemInfo, pdu: Vec<u8>) -> BoxFuture<bool> {
        let shared = Arc::clone(&self.inner.shared);
        let id = imsi(&modem);
        Box::pin(async move { receive(&shared, id, pdu).await })
    }
}

/// Test hook: the comma-separated names in `SMSBRIDGE_FAILPOINTS` make the
/// named step fail as a store error would (the crash tests use it).
fn failpoint(name: &str) -> Result<(), StoreError> {
    static SET: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let set = SET.get_or_init(|| {
        std::env::var("SMSBRIDGE_FAILPOINTS")
            .map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
            .unwrap_or_default()
    });
    if set.iter().any(|s| s == name) {
        return Err(StoreError::InvalidInput(format!("failpoint {name}")));
    }
    Ok(())
}

/// Applies a stored report and records that it was, in the caller's transaction.
fn apply_stored_report(
    s: &mut Store,
    modem: &str,
    id: ReportId,
    report: &StatusReport,
    now: UnixTime,
) -> Result<Option<ReportOutcome>, StoreError> {
    failpoint("report-apply")?;
    let outcome = s.apply_report(modem, report, now)?;
    s.mark_report_applied(id, outcome.is_some())?;
    Ok(outcome)
}

/// Commits a PDU the modem received; a status report is applied in the same
/// transaction (rule 8). `true`: it is on disk and the modem may delete or
/// acknowledge it.
async fn receive(shared: &Arc<Shared>, modem: String, pdu: Vec<u8>) -> bool {
    let now = shared.now();
    let (m, raw) = (modem.clone(), pdu.clone());
    let result = shared
        .db(move |s| {
            s.atomically(|s| {
                let r = s.receive_pdu(&m, &raw, now)?;
                let report = match &r {
                    Received::StatusReport(id, sr) => apply_stored_report(s, &m, *id, sr, now)?,
                    _ => None,
                };
                Ok((r, report))
            })
        })
        .await;
    let result = match result {
        // Applying failed for a reason that will not pass by reading the PDU
        // again: keep the report raw and unapplied (the sweep applies it), so
        // the modem can let go of it.
        Err(e) if !e.is_temporary() => {
            tracing::warn!(modem = %modem, "received PDU not applied, kept raw for the sweep: {e}");
            let (m, err) = (modem.clone(), e.to_string());
            shared
                .db(move |s| {
                    s.atomically(|s| {
                        let r = s.receive_pdu(&m, &pdu, now)?;
                        if let Received::StatusReport(id, _) = &r {
                            s.mark_report_error(*id, &err)?;
                        }
                        Ok((r, None))
                    })
                })
                .await
        }
        other => other,
    };
    match result {
        Ok((Received::Message(m), _)) => {
            tracing::info!(modem = %modem, inbound = m.0, "SMS received");
            shared.inbound.notify_one();
            true
        }
        Ok((Received::StatusReport(..), Some(o))) => {
            report_applied(shared, o);
            true
        }
        Ok((Received::Undecodable(e), _)) => {
            tracing::warn!(modem = %modem, "undecodable PDU kept raw: {e}");
            true
        }
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(modem = %modem, "received PDU not stored (left on the modem): {e}");
            false
        }
    }
}

/// Tells the sender when a report made their message final.
fn report_applied(shared: &Arc<Shared>, o: ReportOutcome) {
    if !o.newly_final {
        return;
    }
    let delivered = o.all_delivered();
    tracing::info!(
        message = o.message.0,
        delivered,
        "delivery outcome from status reports"
    );
    // The notification it may owe is kept with the message.
    shared.inbound.notify_one();
}

/// Applies every stored report that was never applied (a failed apply step, or
/// a stop in between under an older build). Run at start-up; returns how many
/// matched a part.
pub(super) async fn sweep_reports(shared: &Arc<Shared>) -> Result<usize, StoreError> {
    let now = shared.now();
    let applied = shared
        .db(move |s| {
            let pending = s.unapplied_reports()?;
            let mut outcomes = Vec::new();
            for (id, modem, report) in pending {
                match s.atomically(|s| apply_stored_report(s, &modem, id, &report, now)) {
                    Ok(o) => outcomes.extend(o),
                    Err(e) if e.is_temporary() => return Err(e),
                    Err(e) => {
                        tracing::warn!(report = id.0, "stored report still not applied: {e}");
                        let _ = s.mark_report_error(id, &e.to_string());
                    }
                }
            }
            Ok(outcomes)
        })
        .await?;
    let n = applied.len();
    if n > 0 {
        tracing::info!("{n} stored status reports applied at start-up");
    }
    for o in applied {
        report_applied(shared, o);
    }
    Ok(n)
}
