//! Sends the delivery notifications the store says are owed (IMDN, IMPS
//! DeliveryReport): each final message (delivered, failed, delivery unknown) once, to its sender's front end, kept
//! and retried while the sender is offline, given up after `inbound_expiry`.

use std::sync::Arc;

use super::api::{
    DeliveryNotice, DeliveryResult, Disposition, DispositionStatus, Recipient, Refusal, Sender,
    Verified,
};
use super::core::{Bridge, Shared, store_refusal};
use super::policy;
use crate::store::{DispositionOutcome, DueNotice, NoticeDisposition, UnixTime};

/// Notifications handled per pass; the rest wait for the next one.
const BATCH: usize = 256;

/// Sends what is due at `now`.
pub(super) async fn send_due(shared: &Arc<Shared>, now: UnixTime) {
    let due = match shared.db(move |s| s.due_notices(now, BATCH)).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("cannot read the notifications owed: {e}");
            return;
        }
    };
    for n in due {
        let id = n.message;
        let outcome = send_one(shared, n, now).await;
        let written = match outcome {
            Sent::Done => shared.db(move |s| s.mark_notified(id, now)).await,
            Sent::Later(at) => shared.db(move |s| s.notice_retry(id, at)).await,
        };
        if let Err(e) = written {
            tracing::warn!(message = id.0, "cannot record a notification: {e}");
        }
    }
}

enum Sent {
    /// Sent, not wanted, or given up: not due any more.
    Done,
    /// Try again then.
    Later(UnixTime),
}

async fn send_one(shared: &Arc<Shared>, n: DueNotice, now: UnixTime) -> Sent {
    let unknown_as = shared.policy.delivery_unknown_notice;
    let Some(kind) =
        policy::notification_due(n.state, n.imdn_positive, n.imdn_negative, unknown_as)
    else {
        return Sent::Done;
    };
    let delivered = kind == policy::Notice::Delivered;
    let (Some(user), Some(im_message_id)) = (n.user.clone(), n.im_message_id.clone()) else {
        tracing::info!(message = n.message.0, "no sender or message id to notify");
        return Sent::Done;
    };
    if policy::notice_given_up(n.final_at, now, shared.policy.inbound_expiry) {
        tracing::warn!(message = n.message.0, %user, "delivery notification given up: the sender was not reachable in time");
        return Sent::Done;
    }
    let Some(fe) = shared.front_end(n.front_end) else {
        tracing::warn!(
            message = n.message.0,
            "no {:?} front end to notify {user}",
            n.front_end
        );
        return Sent::Later(policy::inbound_retry_at(n.attempts, now));
    };
    let notice = DeliveryNotice {
        displayed: false,
        recipient_user: None,
        to_user: user.clone(),
        front_end: n.front_end,
        im_message_id,
        recipient: n.msisdn.to_string(),
        delivered,
        neutral: kind == policy::Notice::Unknown,
        at: now,
        reason: (!delivered).then(|| {
            n.last_error
                .clone()
                .unwrap_or_else(|| "not delivered".into())
        }),
        cause: if delivered { None } else { n.cause },
    };
    match fe.notify(notice).await {
        // A report pushed to a client session is answered by the client's
        // Status alone: nothing more will confirm it.
        DeliveryResult::Delivered | DeliveryResult::Offered => {
            tracing::info!(message = n.message.0, %user, ?kind, "delivery notification sent");
            Sent::Done
        }
        DeliveryResult::Retry(why) => {
            tracing::info!(message = n.message.0, %user, "delivery notification kept for later: {why}");
            Sent::Later(policy::inbound_retry_at(n.attempts, now))
        }
        DeliveryResult::Failed(why) => {
            tracing::warn!(message = n.message.0, %user, "delivery notification refused: {why}");
            Sent::Done
        }
    }
}

impl Bridge {
    /// A recipient's client reports on an IM it received from another user
    /// of the bridge: correlated by the reporter (the IM's recipient), the
    /// message id and the IM's sender (the report's target). A display the
    /// sender asked for is kept for them as a notice (delivered now or when
    /// they come back); a report on an IM the reporter never received from
    /// that user is refused and changes nothing. Reports about SMS or from
    /// other domains have nobody to go to and are dropped.
    pub(super) async fn relay_disposition(
        &self,
        from: Sender,
        to: Recipient,
        report: Disposition,
    ) -> Result<(), Refusal> {
        // A report from another domain, or about an IM that did not come
        // from a user of the bridge (an SMS, a user of another domain), has
        // nobody here to go to: taken and dropped, as before.
        if from.verified == Verified::FederatedPeer {
            tracing::debug!(from = %from.address, "an IMDN from another domain; dropped");
            return Ok(());
        }
        let reporter = self.user_named(&from.address).await?;
        let origin = match &to {
            Recipient::Alias(part) => {
                let p = part.clone();
                self.shared
                    .db(move |s| s.user_by_user_part(&p))
                    .await
                    .map_err(store_refusal)?
            }
            Recipient::Number(_) | Recipient::Foreign(_) => None,
        };
        let unknown =
            || Refusal::UnknownRecipient(format!("no IM {} to report on", report.message_id));
        let Some(origin) = origin else {
            tracing::debug!(from = %from.address, ?to, "an IMDN about an IM from no user of ours; dropped");
            return Ok(());
        };
        let disposition = match report.status {
            DispositionStatus::Displayed => NoticeDisposition::Displayed,
            DispositionStatus::Delivered => NoticeDisposition::Delivered,
            DispositionStatus::Failed => NoticeDisposition::Failed,
        };
        let (rid, mid, now) = (reporter.id, report.message_id.clone(), self.shared.now());
        let outcome = self
            .shared
            .db(move |s| s.relay_disposition(rid, &mid, origin, disposition, now))
            .await
            .map_err(store_refusal)?;
        match outcome {
            DispositionOutcome::Unknown => {
                tracing::info!(from = %from.address, message_id = %report.message_id, "a report on an IM the reporter never received; refused");
                Err(unknown())
            }
            DispositionOutcome::Owed(id) => {
                tracing::info!(inbound = id.0, from = %from.address, message_id = %report.message_id, "display notification kept for the sender");
                self.shared.inbound.notify_one();
                Ok(())
            }
            DispositionOutcome::NotOwed => Ok(()),
        }
    }
}
