//! SMS → IM: picks the user each received SMS is for and delivers it through
//! that user's front end, keeping it and retrying while the user is offline
//! (store and forward). Also expires stalled reassemblies into incomplete
//! messages, expires IMs no modem could send in time, ends the parts whose
//! status report did not come within the report window (delivery unknown),
//! and applies the opt-out keyword.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::api::{DeliveryNotice, DeliveryResult, ImEnvelope, ImFrontEnd, SmsToIm};
use super::core::{Shared, front_end_of, user_part};
use super::policy;
use crate::metrics::Metrics;
use crate::store::{
    FrontEnd, InboundId, InboundKind, InboundMessage, NoticeDisposition, StoreError, UnixTime,
    User, UserId, normalise_msisdn,
};

/// How often due deliveries are looked for even without a wake-up.
const POLL: Duration = Duration::from_secs(5);
/// Senders whose messages are delivered side by side.
const PARALLEL: usize = 8;
/// How long a client that was handed a message (IMPS NewMessage or
/// MessageNotification) has to confirm it before it is offered again in the
/// same session: longer than a client takes to poll and fetch, and not so long
/// that a lost confirmation holds a message up for long. A new login makes it
/// due at once, whatever is left of this.
const OFFER_WINDOW: Duration = Duration::from_secs(600);

/// Delivers received SMS until `shutdown`.
pub async fn run_inbound(shared: Arc<Shared>, shutdown: CancellationToken) {
    // Reports stored but never applied (a failed apply step, or a stop in
    // between under an older build) are applied before anything else.
    if let Err(e) = super::work::sweep_reports(&shared).await {
        tracing::warn!("cannot apply stored status reports now: {e}");
    }
    let (report_window, shortened) = shared.policy.report_window();
    if let Some(why) = shortened {
        tracing::warn!("{why}");
    }
    loop {
        let now = shared.now();
        // After the stored reports above, so a report that did come is not
        // overtaken by the window; before the notifications, so they go out
        // in this pass.
        end_overdue_reports(&shared, now, report_window).await;
        let timeout = shared.policy.reassembly_timeout.as_secs() as i64;
        match shared.db(move |s| s.expire_reassembly(now, timeout)).await {
            Ok(ids) if !ids.is_empty() => {
                tracing::warn!(
                    "{} concatenated SMS timed out waiting for parts; delivering what arrived",
                    ids.len()
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot expire reassembly: {e}"),
        }
        let before = policy::outbox_expired_before(now, shared.policy.outbox_expiry);
        match shared.db(move |s| s.expire_queued(before, now)).await {
            Ok(expired) => {
                for m in &expired {
                    tracing::warn!(message = m.0, "expired before a modem could send it");
                }
            }
            Err(e) => tracing::warn!("cannot expire the outbox: {e}"),
        }
        super::notices::send_due(&shared, now).await;
        match shared.db(move |s| s.pending_inbound(now)).await {
            // One sender's messages in order; different senders side by side, so
            // one user whose phone does not answer (a SIP timeout each) does not
            // hold up everyone else.
            Ok(due) => {
                let mut by_sender: BTreeMap<String, Vec<InboundMessage>> = BTreeMap::new();
                for m in due {
                    by_sender.entry(m.sender.clone()).or_default().push(m);
                }
                let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
                let mut running = tokio::task::JoinSet::new();
                for (_, msgs) in by_sender {
                    let (shared, limit, stop) =
                        (Arc::clone(&shared), Arc::clone(&limit), shutdown.clone());
                    running.spawn(async move {
                        let Ok(_permit) = limit.acquire_owned().await else {
                            return;
                        };
                        // After one is kept for later, that user gets no
                        // later one of this sender in this round: in order.
                        let mut held = Vec::new();
                        for m in msgs {
                            if stop.is_cancelled() {
                                return;
                            }
                            if m.user.is_some_and(|u| held.contains(&u)) {
                                continue;
                            }
                            let id = m.id;
                            if let Err(e) = deliver(&shared, m, &mut held).await {
                                tracing::warn!(
                                    inbound = id.0,
                                    "delivery bookkeeping failed, will retry: {e}"
                                );
                            }
                        }
                    });
                }
                while running.join_next().await.is_some() {}
            }
            Err(e) => tracing::warn!("cannot read the inbox: {e}"),
        }
        tokio::select! {
            () = shared.inbound.notified() => {}
            () = tokio::time::sleep(POLL) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Ends the parts whose status report is overdue at `now` as delivery unknown
/// (one transaction per batch; a long outage may take a few passes).
pub(super) async fn end_overdue_reports(shared: &Arc<Shared>, now: UnixTime, window: Duration) {
    let before = policy::reports_overdue_before(now, window);
    let why = format!(
        "no status report within {}",
        humantime::format_duration(window)
    );
    match shared
        .db(move |s| s.end_overdue_reports(before, &why, now))
        .await
    {
        Ok(ended) => {
            for m in &ended {
                tracing::warn!(message = m.0, "no status report in time: delivery unknown");
            }
        }
        Err(e) => tracing::warn!("cannot end overdue status reports: {e}"),
    }
}

/// The user whose own phone `n` is, with the sender of the latest IM sent
/// there for them (TS 23.204: a reply from it goes back to that sender).
fn phone_reply(
    s: &crate::store::Store,
    n: &crate::store::Msisdn,
) -> Result<Option<policy::PhoneReply>, StoreError> {
    let Some(owner) = s.user_by_phone(n)? else {
        return Ok(None);
    };
    Ok(s.latest_sender_via_phone(owner.id, n)?
        .map(|im_sender| policy::PhoneReply {
            owner: owner.id,
            im_sender,
        }))
}

/// Routes and delivers one message (or hands a notice to its user's front
/// end), and records what happened. `Ok(true)` when it reached the user; the
/// user goes into `held` when it is kept for later.
pub(super) async fn deliver(
    shared: &Arc<Shared>,
    m: InboundMessage,
    held: &mut Vec<crate::store::UserId>,
) -> Result<bool, StoreError> {
    let now = shared.now();
    let id = m.id;
    if policy::inbound_expired(m.received_at, now, shared.policy.inbound_expiry) {
        tracing::warn!(inbound = id.0, from = %m.sender, "undelivered for too long; expired");
        return shared
            .db(move |s| s.mark_inbound_expired(id, "not delivered in time", now))
            .await
            .map(|()| false);
    }
    if m.kind == InboundKind::Notice {
        return notice(shared, m, now).await;
    }
    let msisdn = normalise_msisdn(&m.sender, None).ok();
    let stop = shared.policy.stop_keyword.clone();
    let fallback = shared.policy.fallback_user.clone();
    let (sender, chosen, text) = (m.sender.clone(), m.user, m.text.clone());
    let m_for_route = msisdn.clone();
    // Route (policy::route_reply) and apply an opt-out in one transaction;
    // `as_user`: the user part of the user it comes from (a reply from their
    // own phone to an IM sent there for them), shown instead of the number.
    let routed: Option<(User, Option<String>, bool, Option<String>)> = shared
        .db(move |s| {
            s.atomically(|s| {
                if let Some(n) = &m_for_route
                    && policy::is_opt_out(&text, &stop)
                {
                    s.set_opted_out(n, true, now)?;
                    tracing::warn!(from = %n, "opted out with {stop:?}");
                }
                let mut snap = policy::RouteSnapshot {
                    chosen,
                    ..Default::default()
                };
                if chosen.is_none()
                    && let Some(n) = &m_for_route
                {
                    snap.owners = s.contact_owners(n)?;
                    snap.last_writer = s.last_writer(n)?.map(|c| c.user);
                }
                if let Some(addr) = &fallback {
                    snap.fallback = s.user_by_address(addr)?.map(|u| u.id);
                }
                if let Some(n) = &m_for_route {
                    snap.phone_reply = phone_reply(s, n)?;
                }
                let Some(uid) = policy::route_reply(&snap) else {
                    return Ok(None);
                };
                let Some(user) = s.user(uid)? else {
                    return Ok(None);
                };
                if let Some(owner) = policy::reply_as(&snap, uid)
                    .map(|o| s.user(o))
                    .transpose()?
                    .flatten()
                {
                    let blocked = super::core::Bridge::blocks_messages(s, uid, owner.address())?;
                    let from = super::core::user_part(owner.address()).to_owned();
                    return Ok(Some((
                        user,
                        owner.settings.display_name,
                        blocked,
                        Some(from),
                    )));
                }
                let (name, blocked) = match &m_for_route {
                    Some(n) => match s.contact(user.id, n)? {
                        Some(c) => (c.nickname, c.blocked),
                        None => (None, false),
                    },
                    None => (None, false),
                };
                Ok(Some((user, name, blocked, None)))
            })
        })
        .await?;
    let Some((user, from_name, blocked, as_user)) = routed else {
        tracing::warn!(inbound = id.0, from = %sender, "no user knows this number and no fallback user is configured");
        return failed(shared, id, "no user to deliver to", now).await;
    };
    if blocked {
        tracing::info!(inbound = id.0, from = %sender, user = %user.address(), "sender is blocked; not delivered");
        return failed(shared, id, "sender blocked by the user", now).await;
    }
    let uid = user.id;
    let kind = front_end_of(&user);
    let Some(fe) = front_end_or_keep(shared, kind, &m, uid, now).await? else {
        return Ok(false);
    };
    let msg = SmsToIm {
        envelope: envelope_of(&m),
        inbound: id,
        to_user: user.address().to_owned(),
        from: as_user.unwrap_or_else(|| sender.clone()),
        from_name,
        text: m.text,
        received: m.received_at,
        incomplete: m.incomplete,
        body_format: user.settings.body_format,
    };
    let to = msg.to_user.clone();
    let metrics = &shared.metrics;
    let label = kind.as_str();
    let online = || shared.online_generation.load(Ordering::SeqCst);
    let online_before = online();
    match fe.deliver(msg).await {
        DeliveryResult::Delivered => {
            tracing::info!(inbound = id.0, from = %sender, %to, "SMS delivered");
            Metrics::front_end_counter(&metrics.im_delivered, label);
            let waited = u64::try_from(now.0 - m.received_at.0).unwrap_or(0);
            Metrics::observe(&metrics.im_delivery_latency, Duration::from_secs(waited));
            shared
                .db(move |s| s.mark_inbound_delivered(id, uid, now))
                .await
                .map(|()| true)
        }
        // Until the client confirms (BridgeApi::im_received), the message
        // stays pending: not offered again while the client may still be
        // fetching it, and due at once when the user logs in again.
        DeliveryResult::Offered => {
            let until = now.plus(OFFER_WINDOW.as_secs() as i64);
            tracing::info!(inbound = id.0, %to, "offered to the client; kept until it confirms");
            let still_pending = shared
                .db(move |s| s.mark_inbound_offered(id, uid, now, until))
                .await?;
            if !still_pending {
                tracing::debug!(
                    inbound = id.0,
                    "confirmed before the offer was written down"
                );
            }
            Ok(false)
        }
        DeliveryResult::Retry(why) => {
            let at = policy::inbound_retry_at(m.attempts, now);
            tracing::info!(inbound = id.0, %to, "not delivered now ({why}); kept");
            if m.attempts == 0 {
                Metrics::front_end_counter(&metrics.im_stored, label);
            }
            held.push(uid);
            shared
                .db(move |s| s.mark_inbound_retry(id, Some(uid), at, &why))
                .await?;
            // A user who came online meanwhile may have been made due
            // before this retry was written: due again, at once.
            if online() != online_before {
                shared.db(move |s| s.inbound_due_for(uid, now)).await?;
                shared.inbound.notify_one();
            }
            Ok(false)
        }
        DeliveryResult::Failed(why) => {
            tracing::warn!(inbound = id.0, %to, "delivery refused: {why}");
            Metrics::front_end_counter(&metrics.im_failed, label);
            shared
                .db(move |s| s.mark_inbound_failed(id, &why, now))
                .await
                .map(|()| false)
        }
    }
}

/// Records that `id` failed for good because of `why`: not delivered.
async fn failed(
    shared: &Arc<Shared>,
    id: InboundId,
    why: &str,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let why = why.to_owned();
    shared
        .db(move |s| s.mark_inbound_failed(id, &why, now))
        .await
        .map(|()| false)
}

/// The front end of `kind`; when it is not running, `m` is kept for `user`
/// and tried again later.
async fn front_end_or_keep(
    shared: &Arc<Shared>,
    kind: FrontEnd,
    m: &InboundMessage,
    user: UserId,
    now: UnixTime,
) -> Result<Option<Arc<dyn ImFrontEnd>>, StoreError> {
    if let Some(fe) = shared.front_end(kind) {
        return Ok(Some(fe));
    }
    let (id, at) = (m.id, policy::inbound_retry_at(m.attempts, now));
    shared
        .db(move |s| s.mark_inbound_retry(id, Some(user), at, "front end not running"))
        .await?;
    Ok(None)
}

/// What the recipient's front end keeps of an IM's envelope: for a message
/// from another user only.
fn envelope_of(m: &InboundMessage) -> Option<ImEnvelope> {
    let (Some(message_id), Some(from_address)) = (&m.im_message_id, &m.origin) else {
        return None;
    };
    let n = m.notify;
    Some(ImEnvelope {
        message_id: message_id.clone(),
        from_address: from_address.clone(),
        display: n.displayed,
        cpim: n.delivered || n.failed || n.displayed,
        sent_at: m.received_at,
    })
}

/// Hands a notice row to the front end of the user it is owed to (the IM's
/// sender); kept and retried like a message while they are offline.
async fn notice(
    shared: &Arc<Shared>,
    m: InboundMessage,
    now: UnixTime,
) -> Result<bool, StoreError> {
    let id = m.id;
    let owed = match m.user {
        Some(uid) => shared.db(move |s| s.user(uid)).await?,
        None => None,
    };
    let (Some(user), Some(im_message_id), Some(about)) =
        (owed, m.im_message_id.clone(), m.origin.clone())
    else {
        tracing::info!(inbound = id.0, "a notification for nobody; dropped");
        return failed(shared, id, "no user to notify", now).await;
    };
    let uid = user.id;
    let kind = front_end_of(&user);
    let Some(fe) = front_end_or_keep(shared, kind, &m, uid, now).await? else {
        return Ok(false);
    };
    let disposition = m.disposition.unwrap_or(NoticeDisposition::Failed);
    let delivered = disposition != NoticeDisposition::Failed;
    let notice = DeliveryNotice {
        to_user: user.address().to_owned(),
        front_end: kind,
        im_message_id,
        recipient_user: Some(user_part(&about).to_owned()),
        recipient: about,
        delivered,
        displayed: disposition == NoticeDisposition::Displayed,
        neutral: false,
        at: m.received_at,
        reason: (!delivered).then(|| m.text.clone()),
        cause: None,
    };
    let to = notice.to_user.clone();
    match fe.notify(notice).await {
        DeliveryResult::Delivered | DeliveryResult::Offered => {
            tracing::info!(inbound = id.0, %to, ?disposition, "notification delivered");
            shared
                .db(move |s| s.mark_inbound_delivered(id, uid, now))
                .await
                .map(|()| true)
        }
        DeliveryResult::Retry(why) => {
            let at = policy::inbound_retry_at(m.attempts, now);
            tracing::info!(inbound = id.0, %to, "notification kept for later: {why}");
            shared
                .db(move |s| s.mark_inbound_retry(id, Some(uid), at, &why))
                .await
                .map(|()| false)
        }
        DeliveryResult::Failed(why) => {
            tracing::warn!(inbound = id.0, %to, "notification refused: {why}");
            shared
                .db(move |s| s.mark_inbound_failed(id, &why, now))
                .await
                .map(|()| false)
        }
    }
}
