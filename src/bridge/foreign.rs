//! Users of other domains: IMs from the bridge's users to them (through the
//! federating front end, SIP), IMs from them to the bridge's users and
//! subscribers (as `[federation]` allows), and their watches of the bridge's
//! users. A foreign address is never a subscriber and never a user of ours,
//! whatever its user part (DESIGN.md rule 9).

use std::sync::Arc;

use super::api::{
    Accepted, ForeignIm, ImToSms, ImUserPresence, NotifyOn, Recipient, Refusal, SubscriberPresence,
    Verified, WatchDecision,
};
use super::core::{Bridge, encode_parts, front_end_of, store_refusal, user_part};
use super::policy::{self, ForeignReach};
use crate::domains::Classified;
use crate::store::{FrontEnd, MessageId, NotifyFlags, RelayEnvelope, User, normalise_msisdn};

/// An IM from a user of the bridge for a user of another domain.
pub(super) struct ToForeign {
    /// The foreign recipient, `sip:user@domain`.
    pub(super) to: String,
    /// The text.
    pub(super) text: String,
    /// The sender's display name.
    pub(super) display_name: Option<String>,
    /// The IM's message id.
    pub(super) im_message_id: Option<String>,
    /// Delivery notifications wanted.
    pub(super) notify: NotifyOn,
}

impl Bridge {
    /// The address as `sip:user@domain` when it names a user of another
    /// domain, else `None`.
    pub(super) fn foreign_address(&self, address: &str) -> Option<String> {
        match self.shared.domains.classify(address) {
            Ok(Classified::Foreign { uri, .. }) => Some(uri),
            _ => None,
        }
    }

    /// Whether the address names a user of another domain.
    pub(super) fn is_foreign(&self, address: &str) -> bool {
        self.foreign_address(address).is_some()
    }

    /// A user of the bridge as other domains are to see them: their SIP
    /// address, else their IMPS UserID as a `sip:` URI (at our first domain
    /// when it has none).
    fn federated_address(&self, user: &User) -> String {
        if let Some(aor) = &user.sip_aor {
            return aor.clone();
        }
        let id = user.address();
        let rest = id.split_once(':').map_or(id, |(_, r)| r);
        if rest.contains('@') {
            format!("sip:{rest}")
        } else {
            let domain = self.shared.domains.names().first().cloned();
            format!("sip:{rest}@{}", domain.unwrap_or_default())
        }
    }

    /// Sends an IM from `from` to a user of another domain through the SIP
    /// front end and waits for the answer there; no route is a refusal.
    pub(super) async fn send_to_foreign(&self, from: &User, im: ToForeign) -> Result<(), Refusal> {
        let (uid, to) = (from.id, im.to.clone());
        let blocked = self
            .shared
            .db(move |s| Ok(s.foreign_contact(uid, &to)?.is_some_and(|c| c.blocked)))
            .await
            .map_err(store_refusal)?;
        policy::decide_foreign_outbound(&im.text, blocked, &im.to)?;
        let Some(sip) = self.shared.front_end(FrontEnd::Sip) else {
            return Err(Refusal::NoRoute(im.to));
        };
        let msg = ForeignIm {
            from: self.federated_address(from),
            display_name: im
                .display_name
                .or_else(|| from.settings.display_name.clone()),
            to: im.to.clone(),
            text: im.text,
            im_message_id: im.im_message_id,
            notify: im.notify,
        };
        sip.send_foreign(msg).await?;
        tracing::info!(from = %from.address(), to = %im.to, "IM sent to another domain");
        Ok(())
    }

    /// An IM from a user of another domain, whose server the front end
    /// accepted as a peer (`Verified::FederatedPeer`): to a user of the bridge
    /// it is kept in the inbox with the sender's whole address and delivered
    /// like a relayed IM; to a subscriber it goes out as SMS only if
    /// `[federation] foreign_to_sms`; to another domain never.
    pub(super) async fn receive_foreign(
        self: Arc<Self>,
        req: ImToSms,
    ) -> Result<Accepted, Refusal> {
        let from = match self.foreign_address(&req.sender.address) {
            Some(a) if req.sender.verified == Verified::FederatedPeer => a,
            _ => return Err(Refusal::UnknownUser(req.sender.address)),
        };
        let to_user = match &req.recipient {
            Recipient::Foreign(to) => {
                policy::decide_foreign_inbound(
                    ForeignReach::Foreign,
                    &req.text,
                    to,
                    &self.shared.federation,
                )?;
                // The policy lets none through (no open relay).
                return Err(Refusal::ForeignNotAllowed(to.clone()));
            }
            Recipient::Number(n) => {
                let m = normalise_msisdn(n, self.shared.country_code.as_deref())
                    .map_err(|e| Refusal::UnknownRecipient(e.to_string()))?;
                policy::decide_foreign_inbound(
                    ForeignReach::Subscriber,
                    &req.text,
                    m.as_str(),
                    &self.shared.federation,
                )?;
                return self.foreign_sms(from, m, req).await;
            }
            Recipient::Alias(part) => part.clone(),
        };
        let (text, fed) = (req.text.clone(), self.shared.federation.clone());
        // No notification can be owed to a user of another domain here:
        // their envelope is kept for the recipient, without asking for any.
        let im_message_id = req.im_message_id.clone();
        let now = self.shared.now();
        let (sender, unknown) = (from.clone(), to_user.clone());
        let kept = self
            .shared
            .db(move |s| {
                s.atomically(|s| {
                    let Some(user) = s
                        .user_by_user_part(&to_user)?
                        .map(|id| s.user(id))
                        .transpose()?
                        .flatten()
                    else {
                        return Ok(Err(Refusal::UnknownRecipient(unknown)));
                    };
                    // Their block list and block rules (one decision with
                    // presence: `authz`).
                    let blocked = Bridge::blocks_messages(s, user.id, &sender)?;
                    let reach = ForeignReach::User {
                        blocked_sender: blocked,
                    };
                    if let Err(r) =
                        policy::decide_foreign_inbound(reach, &text, user.address(), &fed)
                    {
                        return Ok(Err(r));
                    }
                    let envelope = RelayEnvelope {
                        message_id: im_message_id.as_deref(),
                        origin: &sender,
                        notify: NotifyFlags::default(),
                    };
                    let id = s.enqueue_foreign_im(user.id, &sender, &text, &envelope, now)?;
                    Ok(Ok((id, user.address().to_owned())))
                })
            })
            .await
            .map_err(store_refusal)??;
        self.shared.inbound.notify_one();
        tracing::info!(inbound = kept.0.0, %from, to = %kept.1, "IM from another domain kept for a user");
        Ok(Accepted {
            delivered: false,
            message: MessageId(0),
            parts: 0,
        })
    }

    /// An SMS for a subscriber from a user of another domain, allowed by
    /// `[federation] foreign_to_sms`: decided by [`policy::decide_submit`] as
    /// for a user with the default settings (the sender's name in front, the
    /// default rate limit and daily cap counted per foreign sender, opt-outs,
    /// the queue, the modems) and queued in the same transaction.
    async fn foreign_sms(
        self: Arc<Self>,
        from: String,
        msisdn: crate::store::Msisdn,
        req: ImToSms,
    ) -> Result<Accepted, Refusal> {
        let sh = Arc::clone(&self.shared);
        let (policy_cfg, now) = (sh.policy.clone(), sh.now());
        let modems_ready = (sh.modems_ready)();
        let validity = Some(crate::pdu::Validity::relative(sh.policy.validity));
        let sender = from.clone();
        let (message, out) = sh
            .db(move |s| {
                s.atomically(|s| {
                    let (minute, day) = policy::limit_windows(now);
                    let snap = policy::SubmitSnapshot {
                        user: Some(foreign_sender(&sender)),
                        opted_out: s
                            .subscriber(&msisdn)?
                            .is_some_and(|x| x.opted_out_at.is_some()),
                        recipient: Ok(msisdn),
                        blocked: false,
                        sent_last_minute: s.foreign_messages_since(&sender, minute)?,
                        sent_last_day: s.foreign_messages_since(&sender, day)?,
                        queued: s.count_messages(crate::store::MessageState::Queued)?,
                        modems_ready,
                    };
                    let out = match policy::decide_submit(snap, &req, &policy_cfg) {
                        Ok(out) => out,
                        Err(r) => return Ok(Err(r)),
                    };
                    let id = s.enqueue_foreign_with(&out.msisdn, now, |reference| {
                        Ok(crate::store::ForeignMessage {
                            from: sender.clone(),
                            msisdn: out.msisdn.clone(),
                            text: out.text.clone(),
                            alphabet: out.alphabet,
                            parts: encode_parts(&out, validity, reference)?,
                            front_end: req.front_end,
                        })
                    })?;
                    Ok(Ok((id, out)))
                })
            })
            .await
            .map_err(store_refusal)??;
        sh.wake_outbox();
        tracing::info!(%from, to = %out.msisdn, parts = out.parts, message = message.0, "IM from another domain accepted for SMS");
        Ok(Accepted {
            delivered: false,
            message,
            parts: out.parts,
        })
    }

    /// What a watcher of another domain (a SUBSCRIBE its server sent) may
    /// see of `target`: a user of the bridge, as that user's policy decides
    /// (their contacts count as rules: listed is allowed, blocked is
    /// blocked); never a subscriber or another domain's user.
    pub(super) async fn foreign_watcher_presence(
        &self,
        watcher: String,
        target: Recipient,
    ) -> Result<SubscriberPresence, Refusal> {
        let Some(watcher) = self.foreign_address(&watcher) else {
            return Err(Refusal::UnknownUser(watcher));
        };
        let part = match target {
            Recipient::Alias(part) => part,
            Recipient::Number(n) | Recipient::Foreign(n) => {
                return Err(Refusal::ForeignNotAllowed(n));
            }
        };
        let found = self
            .shared
            .db(move |s| {
                let Some(id) = s.user_by_user_part(&part)? else {
                    return Ok(Err(Refusal::UnknownRecipient(part)));
                };
                Ok(s.user(id)?.ok_or(Refusal::UnknownRecipient(part)))
            })
            .await
            .map_err(store_refusal)??;
        let user = found;
        let decision = self.authorise(&user, &watcher).await?;
        if decision == WatchDecision::Block {
            return Err(Refusal::Blocked(watcher));
        }
        let front_end = front_end_of(&user);
        let part = user_part(user.address()).to_owned();
        let presence = if decision == WatchDecision::Allow {
            let online = self
                .shared
                .front_end(front_end)
                .and_then(|fe| fe.online(user.address()));
            self.presence_of(front_end, &part, online)
        } else {
            crate::presence::Presence::offline()
        };
        Ok(SubscriberPresence {
            msisdn: String::new(),
            name: None,
            im_user: Some(ImUserPresence {
                user_part: part,
                front_end,
                presence,
            }),
            decision,
            unavailable: None,
        })
    }
}

/// A user of another domain as [`policy::decide_submit`] sees a sender: the
/// default settings, named by their address. Never stored: the queued
/// message names them in `foreign_sender`, with no user row.
fn foreign_sender(address: &str) -> User {
    User {
        id: crate::store::UserId(0),
        sip_aor: Some(address.to_owned()),
        imps_id: None,
        settings: crate::store::UserSettings::default(),
        password_hash: None,
        sip_digest: None,
        created_at: crate::store::UnixTime(0),
    }
}
