//! What IM front ends need beyond IM → SMS ([`ImApi`]): IMPS Login, names
//! resolved to subscribers or to other users of the bridge, contact lists and
//! blocks over the same contacts the SIP side uses, watching, and IMs between
//! users (IMPS ↔ SIP), kept in the inbox and delivered like SMS (store and
//! forward).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use md5::{Digest, Md5};

use super::api::{
    Accepted, BoxFuture, ContactList, ImApi, ImSend, ImToSms, ImUser, ListEntry, LoginProof,
    NotifyOn, Recipient, Refusal, Sent, Target, Verified, WatchDecision, Watched,
};
use super::core::{Bridge, front_end_of, store_refusal, user_part};
use super::foreign::ToForeign;
use super::policy;
use crate::domains::Classified;
use crate::store::{
    FrontEnd, ListEntryRef, MessageId, Msisdn, NotifyFlags, RelayEnvelope, RelayedIm, User,
    normalise_msisdn,
};

/// How long an IM to another user waits for their device before the
/// sender is told it is stored (well under SIP timer F, 32 s).
const INLINE_WAIT: Duration = Duration::from_secs(4);
/// How long the delivery loop leaves a just relayed IM to the first
/// attempt: longer than a SIP transaction may take.
const INLINE_HOLD_SECS: i64 = 40;

/// An IM for another user of the bridge, with what its envelope keeps.
struct Relayed {
    text: String,
    im_message_id: Option<String>,
    notify: NotifyOn,
}

/// Whom a name leads to, with the rows behind it.
enum Resolved {
    Subscriber(Msisdn, Option<String>),
    User(User, Option<String>),
    /// A user of another domain: their `sip:user@domain` address.
    Foreign(String, Option<String>),
}

impl Resolved {
    fn target(&self) -> Target {
        match self {
            Self::Subscriber(m, name) => Target::Subscriber {
                msisdn: m.to_string(),
                name: name.clone(),
            },
            Self::User(u, name) => Target::User {
                user_part: user_part(u.address()).to_owned(),
                front_end: front_end_of(u),
                name: name.clone(),
            },
            Self::Foreign(address, name) => Target::Foreign {
                address: address.clone(),
                name: name.clone(),
            },
        }
    }
}

/// Whether the digest the client sent is Base64(MD5(nonce ‖ secret)).
fn digest_matches(nonce: &str, secret: &str, digest: &str) -> bool {
    let mut h = Md5::new();
    h.update(nonce.as_bytes());
    h.update(secret.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(h.finalize());
    let got = digest.trim().as_bytes();
    // Constant time over the expected length.
    expected.len() == got.len()
        && expected
            .as_bytes()
            .iter()
            .zip(got)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

impl Bridge {
    pub(super) async fn user_named(&self, address: &str) -> Result<User, Refusal> {
        let a = address.to_owned();
        self.shared
            .db(move |s| s.user_by_address(&a))
            .await
            .map_err(|e| {
                if e.is_bad_input() {
                    Refusal::UnknownUser(address.to_owned())
                } else {
                    store_refusal(e)
                }
            })?
            .ok_or_else(|| Refusal::UnknownUser(address.to_owned()))
    }

    /// IM → SMS, unless the alias names no contact and no number but another
    /// user of the bridge: then the IM is relayed to them. A refusal is counted
    /// by front end and cause.
    pub(super) async fn submit_or_relay(
        self: Arc<Self>,
        req: ImToSms,
    ) -> Result<Accepted, Refusal> {
        let (metrics, fe) = (Arc::clone(&self.shared.metrics), req.front_end);
        self.submit_or_relay_uncounted(req)
            .await
            .inspect_err(|r| metrics.refused(fe.as_str(), r.cause()))
    }

    async fn submit_or_relay_uncounted(self: Arc<Self>, req: ImToSms) -> Result<Accepted, Refusal> {
        // A user of another domain (the front end accepted their server):
        // never taken for a user of ours, whatever the user part; the policy
        // says whom they may reach.
        if req.sender.verified == Verified::FederatedPeer {
            return self.receive_foreign(req).await;
        }
        if let Recipient::Foreign(to) = &req.recipient {
            let sender = self.user_named(&req.sender.address).await?;
            let im = ToForeign {
                to: to.clone(),
                text: req.text,
                display_name: req.sender.display_name,
                im_message_id: req.im_message_id,
                notify: req.notify,
            };
            self.send_to_foreign(&sender, im).await?;
            return Ok(Accepted {
                delivered: false,
                message: MessageId(0),
                parts: 0,
            });
        }
        if let Recipient::Alias(alias) = &req.recipient {
            let sender = self.user_named(&req.sender.address).await?;
            let (uid, a) = (sender.id, alias.clone());
            let cc = self.shared.country_code.clone();
            let other = self
                .shared
                .db(move |s| {
                    if s.contact_by_alias(uid, &a)?.is_some()
                        || normalise_msisdn(&a, cc.as_deref()).is_ok()
                    {
                        return Ok(None);
                    }
                    match s.user_by_user_part(&a)? {
                        Some(id) if id != uid => s.user(id),
                        _ => Ok(None),
                    }
                })
                .await
                .map_err(store_refusal)?;
            if let Some(to) = other {
                let to_phone = Arc::clone(&self).to_phone_if_offline(&sender, &to, req.clone());
                if let Some(accepted) = to_phone.await? {
                    return Ok(accepted);
                }
                let im = Relayed {
                    text: req.text,
                    im_message_id: req.im_message_id,
                    notify: req.notify,
                };
                let delivered = self.relay(&sender, &to, im).await?;
                return Ok(Accepted {
                    delivered,
                    message: MessageId(0),
                    parts: 0,
                });
            }
        }
        self.submit_inner(req).await
    }

    /// An IM for a user who is offline now and asked for IMs as SMS while
    /// offline (3GPP TS 23.204, the IP-SM-GW's interworking preference) goes
    /// to their own phone through the same decision and queue as any IM →
    /// SMS (the sender's limits, name and privacy), its outbox row naming
    /// whom it was for. `None`: keep it for them as usual (online, no such
    /// preference, they blocked the sender, or the SMS path refused: kept
    /// rather than refused).
    async fn to_phone_if_offline(
        self: Arc<Self>,
        from: &User,
        to: &User,
        mut im: ImToSms,
    ) -> Result<Option<Accepted>, Refusal> {
        let online = self
            .shared
            .front_end(front_end_of(to))
            .and_then(|fe| fe.online(to.address()));
        let Some(phone) = policy::offline_phone(to, online).cloned() else {
            return Ok(None);
        };
        let (tid, from_address) = (to.id, from.address().to_owned());
        let blocked = self
            .shared
            .db(move |s| Bridge::blocks_messages(s, tid, &from_address))
            .await
            .map_err(store_refusal)?;
        if blocked {
            return Ok(None);
        }
        im.recipient = Recipient::Number(phone.to_string());
        match self.submit_for(im, Some(to.id)).await {
            Ok(accepted) => {
                tracing::info!(
                    from = %from.address(),
                    to = %to.address(),
                    %phone,
                    message = accepted.message.0,
                    "IM for an offline user sent to their phone"
                );
                Ok(Some(accepted))
            }
            Err(r) if policy::keep_instead_of_sms(&r) => {
                tracing::info!(
                    from = %from.address(),
                    to = %to.address(),
                    "not sent to their phone ({r}); kept for them"
                );
                Ok(None)
            }
            Err(r) => Err(r),
        }
    }

    /// Keeps an IM for another user in the inbox with its envelope (the
    /// block is read and the IM kept in one transaction), then offers it to
    /// the recipient's front end at once for a bounded while. `Ok(true)`
    /// when their device took it in that time (SIP 200); otherwise it stays
    /// stored and the delivery loop takes it on (SIP 202).
    async fn relay(&self, from: &User, to: &User, im: Relayed) -> Result<bool, Refusal> {
        let (fid, tid, from_address) = (from.id, to.id, from.address().to_owned());
        let sender = user_part(from.address()).to_owned();
        let to_address = to.address().to_owned();
        let now = self.shared.now();
        let due = now.plus(INLINE_HOLD_SECS);
        let m = self
            .shared
            .db(move |s| {
                s.atomically(|s| {
                    // The recipient's block list and block rules (one
                    // decision with presence: `authz`).
                    let blocked = Bridge::blocks_messages(s, tid, &from_address)?;
                    if let Err(r) = policy::decide_relay(&im.text, blocked, &to_address) {
                        return Ok(Err(r));
                    }
                    let envelope = RelayEnvelope {
                        message_id: im.im_message_id.as_deref(),
                        origin: &from_address,
                        notify: NotifyFlags {
                            delivered: im.notify.delivered,
                            failed: im.notify.failed,
                            displayed: im.notify.displayed,
                        },
                    };
                    let relayed = RelayedIm {
                        to: tid,
                        from: fid,
                        sender: &sender,
                        text: &im.text,
                        envelope,
                    };
                    let id = s.enqueue_im(&relayed, now, due)?;
                    s.inbound(id).map(Ok)
                })
            })
            .await
            .map_err(store_refusal)??;
        let Some(m) = m else {
            return Ok(false);
        };
        let id = m.id;
        tracing::info!(inbound = id.0, from = %from.address(), to = %to.address(), "IM relayed between users");
        // The attempt runs to its end even when the answer cannot wait for
        // it, so its outcome is recorded once; the loop's first try is held
        // back until after the longest SIP transaction.
        let shared = Arc::clone(&self.shared);
        let attempt =
            tokio::spawn(async move { super::inbound::deliver(&shared, m, &mut Vec::new()).await });
        match tokio::time::timeout(INLINE_WAIT, attempt).await {
            Ok(Ok(Ok(delivered))) => Ok(delivered),
            Ok(Ok(Err(e))) => {
                tracing::warn!(
                    inbound = id.0,
                    "first delivery bookkeeping failed; kept: {e}"
                );
                Ok(false)
            }
            Ok(Err(_)) | Err(_) => Ok(false),
        }
    }

    /// Whom `name` is for `user`: a bridge user's address, a user of
    /// another domain (by the host of the address: never one of ours, never
    /// a subscriber), a number, a contact's nickname or alias, an IM or
    /// foreign contact's nickname, a user part.
    async fn resolve_target(&self, user: &User, name: &str) -> Result<Resolved, Refusal> {
        let (uid, name_owned) = (user.id, name.trim().to_owned());
        let cc = self.shared.country_code.clone();
        let domains = Arc::clone(&self.shared.domains);
        let found = self
            .shared
            .db(move |s| {
                let name = name_owned.as_str();
                let has_scheme = name.contains(':');
                // A user's own address names them, whatever its host.
                if has_scheme
                    && let Ok(Some(u)) = s.user_by_address(name)
                    && u.id != uid
                {
                    let nick = s.im_contact(uid, u.id)?.and_then(|c| c.nickname);
                    return Ok(Some(Resolved::User(u, nick)));
                }
                let part = match domains.classify(name) {
                    Ok(Classified::Foreign { uri, .. }) => {
                        let nick = s.foreign_contact(uid, &uri)?.and_then(|c| c.nickname);
                        return Ok(Some(Resolved::Foreign(uri, nick)));
                    }
                    Ok(Classified::Subscriber(n)) => {
                        return Ok(match normalise_msisdn(&n, cc.as_deref()) {
                            Ok(m) => {
                                let nick = s.contact(uid, &m)?.and_then(|c| c.nickname);
                                Some(Resolved::Subscriber(m, nick))
                            }
                            Err(_) => None,
                        });
                    }
                    Ok(Classified::Local(part)) => part,
                    Err(_) => return Ok(None),
                };
                let part = part.as_str();
                let contacts = s.contacts(None)?;
                if let Some(c) = contacts.into_iter().find(|c| {
                    c.user == uid
                        && (c
                            .nickname
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(part))
                            || c.alias
                                .as_deref()
                                .is_some_and(|a| a.eq_ignore_ascii_case(part)))
                }) {
                    return Ok(Some(Resolved::Subscriber(c.msisdn, c.nickname)));
                }
                let ims = s.im_contacts(uid)?;
                let by_nick = ims
                    .iter()
                    .find(|c| {
                        c.nickname
                            .as_deref()
                            .is_some_and(|n| n.eq_ignore_ascii_case(part))
                    })
                    .map(|c| c.contact);
                let other = match by_nick {
                    Some(id) => Some(id),
                    None => {
                        let foreign = s.foreign_contacts(uid)?.into_iter().find(|c| {
                            c.nickname
                                .as_deref()
                                .is_some_and(|n| n.eq_ignore_ascii_case(part))
                        });
                        if let Some(c) = foreign {
                            return Ok(Some(Resolved::Foreign(c.address, c.nickname)));
                        }
                        s.user_by_user_part(part)?
                    }
                };
                match other {
                    Some(id) if id != uid => {
                        let nick = s.im_contact(uid, id)?.and_then(|c| c.nickname);
                        Ok(s.user(id)?.map(|u| Resolved::User(u, nick)))
                    }
                    _ => Ok(None),
                }
            })
            .await
            .map_err(store_refusal)?;
        found.ok_or_else(|| Refusal::UnknownRecipient(name.to_owned()))
    }

    async fn lists_of(&self, user: &User) -> Result<Vec<ContactList>, Refusal> {
        let (uid, address) = (user.id, user.address().to_owned());
        let (names, contacts, ims, users, foreign) = self
            .shared
            .db(move |s| {
                let ims = s.im_contacts(uid)?;
                let mut users = Vec::new();
                for c in &ims {
                    users.push(s.user(c.contact)?);
                }
                Ok((
                    s.contact_lists(uid)?,
                    s.contacts(Some(&address))?,
                    ims,
                    users,
                    s.foreign_contacts(uid)?,
                ))
            })
            .await
            .map_err(store_refusal)?;
        let mut lists: Vec<ContactList> = names
            .into_iter()
            .map(|name| ContactList {
                name,
                entries: Vec::new(),
            })
            .collect();
        let mut put = |list: &str, e: ListEntry| {
            if let Some(l) = lists.iter_mut().find(|l| l.name == list) {
                l.entries.push(e);
            }
        };
        for c in contacts {
            let target = Resolved::Subscriber(c.msisdn, c.nickname).target();
            put(
                &c.list_name,
                ListEntry {
                    target,
                    blocked: c.blocked,
                },
            );
        }
        for (c, u) in ims.into_iter().zip(users) {
            if let Some(u) = u {
                let target = Resolved::User(u, c.nickname).target();
                put(
                    &c.list_name,
                    ListEntry {
                        target,
                        blocked: c.blocked,
                    },
                );
            }
        }
        for c in foreign {
            let target = Resolved::Foreign(c.address, c.nickname).target();
            put(
                &c.list_name,
                ListEntry {
                    target,
                    blocked: c.blocked,
                },
            );
        }
        Ok(lists)
    }
}

pub(super) fn arc(b: &Bridge) -> Arc<Bridge> {
    Arc::new(Bridge {
        shared: Arc::clone(&b.shared),
    })
}

impl Bridge {
    /// An IMPS Login's check, before counting.
    async fn check_login(
        self: Arc<Self>,
        user: String,
        proof: LoginProof,
    ) -> Result<ImUser, Refusal> {
        let this = self;

        // Unknown users, users without IMPS and wrong passwords get the
        // same answer after the same work: Logins cannot tell who exists.
        let found = match this.user_named(&user).await {
            Ok(u) => u.imps_id.is_some().then_some(u),
            Err(Refusal::UnknownUser(_)) => None,
            Err(other) => return Err(other),
        };
        let ok = match proof {
            LoginProof::Password(password) => {
                let phc = found.as_ref().and_then(|u| u.password_hash.clone());
                this.shared.verify_password(phc, password).await?
            }
            LoginProof::Md5Digest { nonce, digest } => {
                let secret = match &found {
                    Some(u) => {
                        let id = u.id;
                        this.shared
                            .db(move |s| s.imps_secret(id))
                            .await
                            .map_err(store_refusal)?
                    }
                    None => None,
                };
                let secret = secret.unwrap_or_default();
                digest_matches(&nonce, &secret, &digest) && !secret.is_empty()
            }
        };
        match found {
            Some(u) if ok => Ok(ImUser {
                address: u.address().to_owned(),
                imps_id: u.imps_id.clone(),
                display_name: u.settings.display_name.clone(),
            }),
            _ => Err(Refusal::BadCredentials),
        }
    }
}

impl ImApi for Bridge {
    fn login(&self, user: String, proof: LoginProof) -> BoxFuture<Result<ImUser, Refusal>> {
        let this = arc(self);
        let metrics = Arc::clone(&self.shared.metrics);
        Box::pin(async move {
            this.check_login(user, proof)
                .await
                .inspect_err(|r| metrics.refused("imps", r.cause()))
        })
    }

    fn resolve_name(&self, user: String, name: String) -> BoxFuture<Result<Target, Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let u = this.user_named(&user).await?;
            Ok(this.resolve_target(&u, &name).await?.target())
        })
    }

    fn send(&self, req: ImSend) -> BoxFuture<Result<Sent, Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let u = this.user_named(&req.sender.address).await?;
            match this.resolve_target(&u, &req.to).await? {
                Resolved::Subscriber(m, _) => {
                    let im = ImToSms {
                        sender: req.sender,
                        front_end: req.front_end,
                        recipient: Recipient::Number(m.to_string()),
                        text: req.text,
                        im_message_id: req.im_message_id,
                        notify: req.notify,
                        anonymous: false,
                    };
                    Arc::clone(&this).submit_inner(im).await.map(Sent::Sms)
                }
                Resolved::User(to, _) => {
                    let relayed = Relayed {
                        text: req.text.clone(),
                        im_message_id: req.im_message_id.clone(),
                        notify: req.notify,
                    };
                    let im = ImToSms {
                        sender: req.sender,
                        front_end: req.front_end,
                        recipient: Recipient::Alias(req.to),
                        text: req.text,
                        im_message_id: req.im_message_id,
                        notify: req.notify,
                        anonymous: false,
                    };
                    let to_phone = Arc::clone(&this).to_phone_if_offline(&u, &to, im);
                    if let Some(accepted) = to_phone.await? {
                        return Ok(Sent::Sms(accepted));
                    }
                    this.relay(&u, &to, relayed)
                        .await
                        .map(|delivered| Sent::Im { delivered })
                }
                Resolved::Foreign(to, _) => {
                    let im = ToForeign {
                        to,
                        text: req.text,
                        display_name: req.sender.display_name,
                        im_message_id: req.im_message_id,
                        notify: req.notify,
                    };
                    this.send_to_foreign(&u, im)
                        .await
                        .map(|()| Sent::Im { delivered: false })
                }
            }
        })
    }

    fn lists(&self, user: String) -> BoxFuture<Result<Vec<ContactList>, Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let u = this.user_named(&user).await?;
            this.lists_of(&u).await
        })
    }

    fn create_list(&self, user: String, list: String) -> BoxFuture<Result<(), Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let uid = this.user_named(&user).await?.id;
            let now = this.shared.now();
            this.shared
                .db(move |s| s.create_contact_list(uid, &list, now))
                .await
                .map_err(store_refusal)
        })
    }

    fn delete_list(&self, user: String, list: String) -> BoxFuture<Result<(), Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let uid = this.user_named(&user).await?.id;
            let l = list.clone();
            let deleted = this
                .shared
                .db(move |s| s.delete_contact_list(uid, &l))
                .await
                .map_err(store_refusal)?;
            if deleted {
                Ok(())
            } else {
                Err(Refusal::UnknownList(list))
            }
        })
    }

    fn list_add(
        &self,
        user: String,
        list: String,
        name: String,
        nickname: Option<String>,
    ) -> BoxFuture<Result<Target, Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let u = this.user_named(&user).await?;
            let resolved = this.resolve_target(&u, &name).await?;
            let uid = u.id;
            let now = this.shared.now();
            let nick = nickname.clone();
            let result = match &resolved {
                Resolved::Subscriber(m, _) => {
                    let m = m.clone();
                    this.shared
                        .db(move |s| s.put_contact(uid, &m, nick.as_deref(), &list, now))
                        .await
                }
                Resolved::User(other, _) => {
                    let oid = other.id;
                    this.shared
                        .db(move |s| s.put_im_contact(uid, oid, nick.as_deref(), &list, now))
                        .await
                }
                Resolved::Foreign(address, _) => {
                    let a = address.clone();
                    this.shared
                        .db(move |s| s.put_foreign_contact(uid, &a, nick.as_deref(), &list, now))
                        .await
                }
            };
            result.map_err(store_refusal)?;
            let mut target = resolved.target();
            if let (
                Some(n),
                Target::Subscriber { name, .. }
                | Target::User { name, .. }
                | Target::Foreign { name, .. },
            ) = (nickname, &mut target)
            {
                *name = Some(n);
            }
            Ok(target)
        })
    }

    fn list_remove(&self, user: String, name: String) -> BoxFuture<Result<(), Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let u = this.user_named(&user).await?;
            let uid = u.id;
            let removed = match this.resolve_target(&u, &name).await? {
                Resolved::Subscriber(m, _) => {
                    this.shared
                        .db(move |s| s.remove_entry(uid, ListEntryRef::Subscriber(&m)))
                        .await
                }
                Resolved::User(o, _) => {
                    this.shared
                        .db(move |s| s.remove_entry(uid, ListEntryRef::User(o.id)))
                        .await
                }
                Resolved::Foreign(a, _) => {
                    this.shared
                        .db(move |s| s.remove_entry(uid, ListEntryRef::Foreign(&a)))
                        .await
                }
            }
            .map_err(store_refusal)?;
            if removed {
                Ok(())
            } else {
                Err(Refusal::UnknownRecipient(format!(
                    "{name} is not in your lists"
                )))
            }
        })
    }

    fn block(
        &self,
        user: String,
        name: String,
        blocked: bool,
    ) -> BoxFuture<Result<Target, Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let u = this.user_named(&user).await?;
            let resolved = this.resolve_target(&u, &name).await?;
            let (uid, now) = (u.id, this.shared.now());
            match &resolved {
                Resolved::Subscriber(m, _) => {
                    let m = m.clone();
                    this.shared
                        .db(move |s| s.block_subscriber(uid, &m, blocked, now))
                        .await
                }
                Resolved::User(o, _) => {
                    let oid = o.id;
                    this.shared
                        .db(move |s| s.block_im_user(uid, oid, blocked, now))
                        .await
                }
                Resolved::Foreign(a, _) => {
                    let a = a.clone();
                    this.shared
                        .db(move |s| s.block_foreign(uid, &a, blocked, now))
                        .await
                }
            }
            .map_err(store_refusal)?;
            tracing::info!(user = %u.address(), %name, blocked, "block list changed");
            let addresses = match &resolved {
                Resolved::Subscriber(..) => Vec::new(),
                Resolved::User(o, _) => [o.sip_aor.clone(), o.imps_id.clone()]
                    .into_iter()
                    .flatten()
                    .collect(),
                Resolved::Foreign(a, _) => vec![a.clone()],
            };
            if !addresses.is_empty() {
                this.lists_changed(&u, addresses, !blocked).await?;
            }
            Ok(resolved.target())
        })
    }

    fn watch_foreign(&self, watcher: String, presentity: String) -> BoxFuture<Result<(), Refusal>> {
        match self.shared.front_end(FrontEnd::Sip) {
            Some(sip) => sip.watch_foreign(watcher, presentity),
            None => Box::pin(async move { Err(Refusal::NoRoute(presentity)) }),
        }
    }

    fn unwatch_foreign(&self, watcher: String, presentity: String) {
        if let Some(sip) = self.shared.front_end(FrontEnd::Sip) {
            sip.unwatch_foreign(&watcher, &presentity);
        }
    }

    fn watch(&self, watcher: String, name: String) -> BoxFuture<Result<Watched, Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let u = this.user_named(&watcher).await?;
            let resolved = this.resolve_target(&u, &name).await?;
            let uid = u.id;
            let (decision, online, unavailable) = match &resolved {
                Resolved::Subscriber(m, _) => {
                    let (_, decision, unavailable) = this.subscriber_watch(&u, &watcher, m).await?;
                    (decision, None, unavailable)
                }
                // The presentity's policy decides; the watcher's own block
                // of them still keeps them out of sight.
                Resolved::User(o, _) => {
                    let oid = o.id;
                    let own = this
                        .shared
                        .db(move |s| s.im_contact(uid, oid))
                        .await
                        .map_err(store_refusal)?;
                    if own.is_some_and(|c| c.blocked) {
                        return Err(Refusal::Blocked(name));
                    }
                    let decision = this.authorise(o, &watcher).await?;
                    let online = match decision {
                        WatchDecision::Block => return Err(Refusal::BlockedByRecipient(name)),
                        WatchDecision::Allow => this
                            .shared
                            .front_end(front_end_of(o))
                            .and_then(|fe| fe.online(o.address())),
                        WatchDecision::PoliteBlock | WatchDecision::Pending => Some(false),
                    };
                    (decision, online, None)
                }
                // Their presence comes from their domain (`watch_foreign`),
                // whose policy decides there; the watcher's list says
                // whether to ask.
                Resolved::Foreign(a, _) => {
                    let a = a.clone();
                    let c = this
                        .shared
                        .db(move |s| s.foreign_contact(uid, &a))
                        .await
                        .map_err(store_refusal)?;
                    match c.map(|c| c.blocked) {
                        Some(false) => (WatchDecision::Allow, None, None),
                        Some(true) => return Err(Refusal::Blocked(name)),
                        None => return Err(Refusal::NotInContacts(name)),
                    }
                }
            };
            Ok(Watched {
                target: resolved.target(),
                online,
                decision,
                unavailable,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_digest_of_nonce_and_password() {
        // Base64(MD5("abc" ‖ "secret")), computed with Python's hashlib.
        let d = "M+fLaU+2+y+EivZ3TZ/xOA==";
        assert!(digest_matches("abc", "secret", d));
        assert!(!digest_matches("abd", "secret", d));
        assert!(!digest_matches("abc", "secret", ""));
    }
}
