//! Presence authorisation, the glue: the presentity's access policy decides
//! every watch (SIP SUBSCRIBE, IMPS SubscribePresence/GetPresence, watchers
//! of other domains alike). Each decision reads its snapshot (the
//! presentity's rules, their list entry for the watcher, the watcher's
//! addresses) and records the watcher in one transaction, then tells the
//! front ends: a new pending watcher to the presentity's own front end(s)
//! ([`ImFrontEnd::watcher_pending`]), a changed decision to every front end
//! ([`ImFrontEnd::watch_changed`]).
//!
//! The decision itself is [`policy::decide_watch`]. Blocks have one home:
//! the block list (the contacts' `blocked` flag IMPS `BlockEntity` writes)
//! is read as an identity rule, and an explicit rule lives in
//! `presence_rules`; writing one keeps the other from contradicting it (an
//! unblock drops the block rules of that watcher, a reactive answer other
//! than block lifts the list's block).
//!
//! [`ImFrontEnd::watcher_pending`]: super::api::ImFrontEnd::watcher_pending
//! [`ImFrontEnd::watch_changed`]: super::api::ImFrontEnd::watch_changed

use super::api::{BoxFuture, PresenceRule, Refusal, SubHandling, WatchChanged, WatchDecision};
use super::core::{Bridge, store_refusal};
use super::im::arc;
use super::policy::{self, WatchSnapshot};
use crate::store::{FrontEnd, Msisdn, Store, StoreError, UnixTime, User, UserId};

/// The words a watcher sees for a subscriber who opted out.
pub(super) const OPTED_OUT: &str = "opted out of messages (STOP)";

/// What the presentity's policy needs about `watcher`, read in the caller's
/// transaction: their rules, their list entry for the watcher (a user of the
/// bridge by user row, another domain's user by address), and every address
/// the watcher is known by.
pub(super) fn watch_snapshot(
    s: &Store,
    presentity: UserId,
    watcher: &str,
    default: SubHandling,
) -> Result<WatchSnapshot, StoreError> {
    let rules = s.presence_rules(presentity)?;
    let user = match s.user_by_address(watcher) {
        Ok(u) => u,
        Err(e) if e.is_bad_input() => None,
        Err(e) => return Err(e),
    };
    let (addresses, listed) = match user {
        Some(u) => {
            let addresses = [u.sip_aor.as_deref(), u.imps_id.as_deref()]
                .into_iter()
                .flatten()
                .filter_map(policy::normalise_address)
                .collect();
            (
                addresses,
                s.im_contact(presentity, u.id)?.map(|c| c.blocked),
            )
        }
        None => {
            let a = policy::normalise_address(watcher);
            let listed = match &a {
                Some(a) if a.starts_with("sip:") => {
                    s.foreign_contact(presentity, a)?.map(|c| c.blocked)
                }
                _ => None,
            };
            (a.into_iter().collect(), listed)
        }
    };
    Ok(WatchSnapshot {
        rules,
        listed,
        watcher: addresses,
        default,
    })
}

/// Decides every known watcher of the presentity again (after their rules
/// or lists changed) and records the new decisions; returns the watchers
/// whose decision changed.
fn redecide_watchers(
    s: &mut Store,
    presentity: UserId,
    default: SubHandling,
    now: UnixTime,
) -> Result<Vec<(String, WatchDecision)>, StoreError> {
    let mut changed = Vec::new();
    for w in s.watchers(presentity)? {
        let d = policy::decide_watch(&watch_snapshot(s, presentity, &w.watcher, default)?);
        if d != w.decision {
            s.record_watcher(presentity, &w.watcher, d, now)?;
            changed.push((w.watcher, d));
        }
    }
    Ok(changed)
}

/// `[presence] default_policy` as the handling it names.
pub fn default_handling(p: crate::config::DefaultPolicy) -> SubHandling {
    use crate::config::DefaultPolicy as D;
    match p {
        D::Confirm => SubHandling::Confirm,
        D::Allow => SubHandling::Allow,
        D::Block => SubHandling::Block,
        D::PoliteBlock => SubHandling::PoliteBlock,
    }
}

/// Replaces the presentity's rules and decides their known watchers again,
/// in the caller's transaction; returns the watchers whose decision changed
/// (the bridge tells the front ends; the command line cannot, and the
/// daemon's front ends see the new decision at the watcher's next refresh).
pub fn replace_presence_rules(
    s: &mut Store,
    presentity: UserId,
    rules: &[PresenceRule],
    default: SubHandling,
    now: UnixTime,
) -> Result<Vec<(String, WatchDecision)>, StoreError> {
    s.atomically(|s| {
        s.set_presence_rules(presentity, rules)?;
        redecide_watchers(s, presentity, default, now)
    })
}

impl Bridge {
    /// Decides a watch of `presentity` by `watcher` and records the watcher;
    /// a watcher newly pending is announced to the presentity's front
    /// end(s).
    pub(super) async fn authorise(
        &self,
        presentity: &User,
        watcher: &str,
    ) -> Result<WatchDecision, Refusal> {
        let (pid, w) = (presentity.id, watcher.to_owned());
        let (default, now) = (self.shared.presence_default, self.shared.now());
        let (decision, before) = self
            .shared
            .db(move |s| {
                s.atomically(|s| {
                    // A presentity watching themself (another device) is no
                    // watcher: always allowed, never recorded.
                    if let Ok(Some(u)) = s.user_by_address(&w)
                        && u.id == pid
                    {
                        return Ok((WatchDecision::Allow, Some(WatchDecision::Allow)));
                    }
                    let d = policy::decide_watch(&watch_snapshot(s, pid, &w, default)?);
                    let before = s.record_watcher(pid, &w, d, now)?;
                    Ok((d, before))
                })
            })
            .await
            .map_err(store_refusal)?;
        if decision == WatchDecision::Pending && before != Some(WatchDecision::Pending) {
            tracing::info!(presentity = %presentity.address(), %watcher, "watcher waits for the presentity");
            for (kind, address) in [
                (FrontEnd::Sip, presentity.sip_aor.as_deref()),
                (FrontEnd::Imps, presentity.imps_id.as_deref()),
            ] {
                if let (Some(address), Some(fe)) = (address, self.shared.front_end(kind)) {
                    fe.watcher_pending(address, watcher);
                }
            }
        }
        Ok(decision)
    }

    /// Tells every front end that these watchers' decisions on `presentity`
    /// changed.
    fn tell_changed(&self, presentity: &User, changed: &[(String, WatchDecision)]) {
        if changed.is_empty() {
            return;
        }
        let fes = self.shared.front_ends();
        for (watcher, decision) in changed {
            tracing::info!(presentity = %presentity.address(), %watcher, decision = decision.as_str(), "watch decision changed");
            let change = WatchChanged {
                presentity: presentity.address().to_owned(),
                watcher: watcher.clone(),
                decision: *decision,
            };
            for fe in &fes {
                fe.watch_changed(&change);
            }
        }
    }

    /// After the presentity's lists changed (a block or unblock of
    /// `addresses`): an unblock drops their identity block rules too, then
    /// every known watcher is decided again and the front ends hear of the
    /// changes.
    pub(super) async fn lists_changed(
        &self,
        presentity: &User,
        addresses: Vec<String>,
        unblocked: bool,
    ) -> Result<(), Refusal> {
        let pid = presentity.id;
        let (default, now) = (self.shared.presence_default, self.shared.now());
        let changed = self
            .shared
            .db(move |s| {
                s.atomically(|s| {
                    if unblocked {
                        s.remove_identity_rules(pid, &addresses, SubHandling::Block)?;
                    }
                    redecide_watchers(s, pid, default, now)
                })
            })
            .await
            .map_err(store_refusal)?;
        self.tell_changed(presentity, &changed);
        Ok(())
    }

    /// Whether `watcher`'s messages to `presentity` are refused by a block
    /// the presentity wrote (their block list or a block rule), read in the
    /// caller's transaction.
    pub(super) fn blocks_messages(
        s: &Store,
        presentity: UserId,
        watcher: &str,
    ) -> Result<bool, StoreError> {
        // The default plays no part in a message decision.
        let snap = watch_snapshot(s, presentity, watcher, SubHandling::Allow)?;
        Ok(policy::blocks_messages(&snap))
    }

    /// What a user of the bridge may see of a subscriber: with the
    /// subscriber as their own contact, as today (`Allow`); else by the
    /// policy of the contact's (first) owner, who is the presentity for
    /// rules. `Ok((nickname, decision, unavailable))`: unavailable when the
    /// subscriber opted out (STOP). A subscriber the watcher blocked is
    /// refused as blocked; one nobody has, or whose owner blocks the
    /// watcher, is not in contacts. (Contacts other owners blocked are no
    /// owners: their SMS do not reach them either.)
    pub(super) async fn subscriber_watch(
        &self,
        watcher: &User,
        watcher_address: &str,
        msisdn: &Msisdn,
    ) -> Result<(Option<String>, WatchDecision, Option<String>), Refusal> {
        let (uid, m) = (watcher.id, msisdn.clone());
        let (contact, opted_out, owner) = self
            .shared
            .db(move |s| {
                let contact = s.contact(uid, &m)?;
                let opted_out = s.subscriber(&m)?.is_some_and(|x| x.opted_out_at.is_some());
                let owner = match &contact {
                    Some(_) => None,
                    None => match s.contact_owners(&m)?.into_iter().find(|o| *o != uid) {
                        Some(o) => s.user(o)?,
                        None => None,
                    },
                };
                Ok((contact, opted_out, owner))
            })
            .await
            .map_err(store_refusal)?;
        let not_in_contacts = || Refusal::NotInContacts(msisdn.to_string());
        let (name, decision) = match (contact, owner) {
            // A contact the watcher's block list has (BlockEntity, or the
            // operator's `contacts block`): refused, as the refusal says.
            (Some(c), _) if c.blocked => return Err(Refusal::Blocked(msisdn.to_string())),
            (Some(c), _) => (c.nickname, WatchDecision::Allow),
            (None, Some(owner)) => match self.authorise(&owner, watcher_address).await? {
                WatchDecision::Block => return Err(not_in_contacts()),
                d => (None, d),
            },
            (None, None) => return Err(not_in_contacts()),
        };
        Ok((name, decision, opted_out.then(|| OPTED_OUT.to_owned())))
    }
}

impl Bridge {
    pub(super) fn authorise_watch_api(
        &self,
        presentity: String,
        watcher: String,
    ) -> BoxFuture<Result<WatchDecision, Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let p = this.user_named(&presentity).await?;
            this.authorise(&p, &watcher).await
        })
    }

    /// What `read` reads of the presentity's rows.
    pub(super) fn read_presentity<T: Send + 'static>(
        &self,
        presentity: String,
        read: fn(&Store, UserId) -> Result<T, StoreError>,
    ) -> BoxFuture<Result<T, Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let pid = this.user_named(&presentity).await?.id;
            this.shared
                .db(move |s| read(s, pid))
                .await
                .map_err(store_refusal)
        })
    }

    pub(super) fn decide_watcher_api(
        &self,
        presentity: String,
        watcher: String,
        handling: SubHandling,
    ) -> BoxFuture<Result<(), Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let p = this.user_named(&presentity).await?;
            let pid = p.id;
            let (default, now) = (this.shared.presence_default, this.shared.now());
            let w = watcher.clone();
            let (decision, mut changed) = this
                .shared
                .db(move |s| {
                    s.atomically(|s| {
                        s.put_identity_rule(pid, &w, handling)?;
                        if handling != SubHandling::Block {
                            lift_list_block(s, pid, &w, now)?;
                        }
                        let d = policy::decide_watch(&watch_snapshot(s, pid, &w, default)?);
                        if s.watcher(pid, &w)?.is_some() {
                            s.record_watcher(pid, &w, d, now)?;
                        }
                        let changed = redecide_watchers(s, pid, default, now)?;
                        Ok((d, changed))
                    })
                })
                .await
                .map_err(store_refusal)?;
            tracing::info!(presentity = %p.address(), %watcher, handling = handling.as_str(), "presentity answered about a watcher");
            // The watcher named always hears the answer; others whose
            // decision moved with it (their other address) too.
            let named = policy::normalise_address(&watcher).unwrap_or_else(|| watcher.clone());
            changed.retain(|(w, _)| *w != named);
            changed.insert(0, (watcher, decision));
            this.tell_changed(&p, &changed);
            Ok(())
        })
    }

    pub(super) fn set_presence_rules_api(
        &self,
        presentity: String,
        rules: Vec<PresenceRule>,
    ) -> BoxFuture<Result<(), Refusal>> {
        let this = arc(self);
        Box::pin(async move {
            let p = this.user_named(&presentity).await?;
            let pid = p.id;
            let (default, now) = (this.shared.presence_default, this.shared.now());
            let changed = this
                .shared
                .db(move |s| replace_presence_rules(s, pid, &rules, default, now))
                .await
                .map_err(store_refusal)?;
            tracing::info!(presentity = %p.address(), changed = changed.len(), "presence rules replaced");
            this.tell_changed(&p, &changed);
            Ok(())
        })
    }
}

/// The presentity's answer lets the watcher in: a block of theirs in the
/// presentity's lists goes (the answer is the newer word).
fn lift_list_block(
    s: &mut Store,
    presentity: UserId,
    watcher: &str,
    now: UnixTime,
) -> Result<(), StoreError> {
    match s.user_by_address(watcher) {
        Ok(Some(u)) => {
            if s.im_contact(presentity, u.id)?.is_some_and(|c| c.blocked) {
                s.block_im_user(presentity, u.id, false, now)?;
            }
        }
        Ok(None) => {
            if let Some(a) = policy::normalise_address(watcher)
                && s.foreign_contact(presentity, &a)?
                    .is_some_and(|c| c.blocked)
            {
                s.block_foreign(presentity, &a, false, now)?;
            }
        }
        Err(e) if e.is_bad_input() => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
