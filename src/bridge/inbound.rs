//! SMS → IM: picks the user each received SMS is for and delivers it through
//! that user's front end, keeping it and retrying while the user is offline
//! (store and forward). Also expires stalled reassemblies into incomplete
//! messages, expires IMs no modem could send in time, and applies the opt-out
//! keyword.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::api::{DeliveryResult, SmsToIm};
use super::core::{Shared, front_end_of};
use crate::store::{InboundMessage, StoreError, UnixTime, User, normalise_msisdn};

/// How often due deliveries are looked for even without a wake-up.
const POLL: Duration = Duration::from_secs(5);
/// Senders whose messages are delivered side by side.
const PARALLEL: usize = 8;

/// Delivers received SMS until `shutdown`.
pub async fn run_inbound(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let now = UnixTime::now();
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
        let before = now.plus(-(shared.policy.outbox_expiry.as_secs() as i64));
        match shared.db(move |s| s.expire_queued(before, now)).await {
            Ok(expired) => {
                for m in expired {
                    tracing::warn!(message = m.0, "expired before a modem could send it");
                    let sh = Arc::clone(&shared);
                    tokio::spawn(async move {
                        sh.notify_outcome(m, false, Some("expired before it could be sent".into()))
                            .await
                    });
                }
            }
            Err(e) => tracing::warn!("cannot expire the outbox: {e}"),
        }
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
                        for m in msgs {
                            if stop.is_cancelled() {
                                return;
                            }
                            let id = m.id;
                            if let Err(e) = deliver(&shared, m).await {
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

fn backoff(attempts: u32) -> i64 {
    (30i64 << attempts.min(5)).min(900)
}

/// Routes and delivers one message, and records what happened.
async fn deliver(shared: &Arc<Shared>, m: InboundMessage) -> Result<(), StoreError> {
    let now = UnixTime::now();
    let id = m.id;
    if now.0 - m.received_at.0 > shared.policy.inbound_expiry.as_secs() as i64 {
        tracing::warn!(inbound = id.0, from = %m.sender, "undelivered for too long; expired");
        return shared
            .db(move |s| s.mark_inbound_expired(id, "not delivered in time"))
            .await;
    }
    let msisdn = normalise_msisdn(&m.sender, None).ok();
    let stop = shared.policy.stop_keyword.clone();
    let fallback = shared.policy.fallback_user.clone();
    let (sender, known_user, text) = (m.sender.clone(), m.user, m.text.clone());
    let m_for_route = msisdn.clone();
    // Route: the user already chosen, else the contact's owner (preferring the one
    // who last wrote), else the last writer, else the fallback user.
    let routed: Option<(User, Option<String>, bool)> = shared
        .db(move |s| {
            if let Some(n) = &m_for_route
                && !stop.is_empty()
                && text.trim().eq_ignore_ascii_case(&stop)
            {
                s.set_opted_out(n, true, now)?;
                tracing::warn!(from = %n, "opted out with {stop:?}");
            }
            let user_id = match (known_user, &m_for_route) {
                (Some(u), _) => Some(u),
                (None, Some(n)) => {
                    let owners = s.contact_owners(n)?;
                    let last = s.last_writer(n)?.map(|c| c.user);
                    match last {
                        Some(l) if owners.contains(&l) => Some(l),
                        _ => owners.first().copied().or(last),
                    }
                }
                (None, None) => None,
            };
            let user = match user_id {
                Some(u) => s.user(u)?,
                None => match &fallback {
                    Some(addr) => s.user_by_address(addr)?,
                    None => None,
                },
            };
            let Some(user) = user else { return Ok(None) };
            let (name, blocked) = match &m_for_route {
                Some(n) => match s.contact(user.id, n)? {
                    Some(c) => (c.nickname, c.blocked),
                    None => (None, false),
                },
                None => (None, false),
            };
            Ok(Some((user, name, blocked)))
        })
        .await?;
    let Some((user, from_name, blocked)) = routed else {
        tracing::warn!(inbound = id.0, from = %sender, "no user knows this number and no fallback user is configured");
        return shared
            .db(move |s| s.mark_inbound_failed(id, "no user to deliver to"))
            .await;
    };
    if blocked {
        tracing::info!(inbound = id.0, from = %sender, user = %user.address(), "sender is blocked; not delivered");
        return shared
            .db(move |s| s.mark_inbound_failed(id, "sender blocked by the user"))
            .await;
    }
    let uid = user.id;
    let kind = front_end_of(&user);
    let Some(fe) = shared.front_end(kind) else {
        let at = now.plus(backoff(m.attempts));
        return shared
            .db(move |s| s.mark_inbound_retry(id, Some(uid), at, "front end not running"))
            .await;
    };
    let msg = SmsToIm {
        inbound: id,
        to_user: user.address().to_owned(),
        from: sender.clone(),
        from_name,
        text: m.text,
        received: m.received_at,
        incomplete: m.incomplete,
        body_format: user.settings.body_format,
    };
    let to = msg.to_user.clone();
    match fe.deliver(msg).await {
        DeliveryResult::Delivered => {
            tracing::info!(inbound = id.0, from = %sender, %to, "SMS delivered");
            shared
                .db(move |s| s.mark_inbound_delivered(id, uid, now))
                .await
        }
        DeliveryResult::Retry(why) => {
            let at = now.plus(backoff(m.attempts));
            tracing::info!(inbound = id.0, %to, "not delivered now ({why}); kept");
            shared
                .db(move |s| s.mark_inbound_retry(id, Some(uid), at, &why))
                .await
        }
        DeliveryResult::Failed(why) => {
            tracing::warn!(inbound = id.0, %to, "delivery refused: {why}");
            shared.db(move |s| s.mark_inbound_failed(id, &why)).await
        }
    }
}
