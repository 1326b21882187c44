//! Contact lists as IMPS sees them: named lists (which may be empty), contacts
//! that are other users of the bridge (IM contacts, for IMPS ↔ SIP), and the
//! upserts an IMPS ListManage or BlockEntity needs on subscriber contacts.

use rusqlite::params;

use super::contacts::{DEFAULT_LIST, subscriber_id};
use super::error::StoreError;
use super::numbers::Msisdn;
use super::users::UserId;
use super::{Store, UnixTime};

/// A user's contact that is another user of the bridge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImContact {
    /// Whose contact it is.
    pub user: UserId,
    /// The other user.
    pub contact: UserId,
    /// The other user's address (SIP AOR, else IMPS UserID).
    pub address: String,
    /// The other user's IMPS UserID, if they have one.
    pub imps_id: Option<String>,
    /// The owner's name for them.
    pub nickname: Option<String>,
    /// The list it is in.
    pub list_name: String,
    /// Messages from them are refused.
    pub blocked: bool,
}

pub(super) fn check_list_name(name: &str) -> Result<(), StoreError> {
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(StoreError::InvalidInput(format!(
            "invalid contact list name {name:?}: 1 to 100 characters, no control characters"
        )));
    }
    Ok(())
}

impl Store {
    /// The names of a user's contact lists: created ones and those that have contacts.
    pub fn contact_lists(&self, user: UserId) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT name FROM contact_lists WHERE user_id = ?1 \
             UNION SELECT list_name FROM contacts WHERE user_id = ?1 \
             UNION SELECT list_name FROM im_contacts WHERE user_id = ?1 \
             UNION SELECT list_name FROM foreign_contacts WHERE user_id = ?1 ORDER BY 1",
        )?;
        let rows = stmt.query_map([user.0], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Creates an empty contact list; `Duplicate` if it exists.
    pub fn create_contact_list(
        &mut self,
        user: UserId,
        name: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        check_list_name(name)?;
        if self.contact_lists(user)?.iter().any(|n| n == name) {
            return Err(StoreError::Duplicate(format!("contact list {name}")));
        }
        self.write(|tx| {
            tx.execute(
                "INSERT INTO contact_lists (user_id, name, created_at) VALUES (?1, ?2, ?3)",
                params![user.0, name, now.0],
            )?;
            Ok(())
        })
    }

    /// Deletes a contact list with the contacts in it; `false` if there was none.
    /// Blocked contacts stay (moved to the default list), so a block outlives its list.
    pub fn delete_contact_list(&mut self, user: UserId, name: &str) -> Result<bool, StoreError> {
        if !self.contact_lists(user)?.iter().any(|n| n == name) {
            return Ok(false);
        }
        self.write(|tx| {
            for table in ["contacts", "im_contacts", "foreign_contacts"] {
                tx.execute(
                    &format!(
                        "DELETE FROM {table} WHERE user_id = ?1 AND list_name = ?2 AND blocked = 0"
                    ),
                    params![user.0, name],
                )?;
                tx.execute(
                    &format!(
                        "UPDATE {table} SET list_name = ?3 WHERE user_id = ?1 AND list_name = ?2"
                    ),
                    params![user.0, name, DEFAULT_LIST],
                )?;
            }
            tx.execute(
                "DELETE FROM contact_lists WHERE user_id = ?1 AND name = ?2",
                params![user.0, name],
            )?;
            Ok(true)
        })
    }

    /// Puts a subscriber in a user's list under a nickname: adds the contact, or
    /// moves and renames it if it exists (its alias and block stay).
    pub fn put_contact(
        &mut self,
        user: UserId,
        msisdn: &Msisdn,
        nickname: Option<&str>,
        list: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        check_list_name(list)?;
        self.write(|tx| {
            let s = subscriber_id(tx, msisdn, now)?;
            tx.execute(
                "INSERT INTO contacts (user_id, subscriber_id, nickname, list_name, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, subscriber_id) DO UPDATE SET \
                 nickname = coalesce(excluded.nickname, nickname), list_name = excluded.list_name",
                params![user.0, s, nickname, list, now.0],
            )?;
            Ok(())
        })
    }

    /// Blocks or unblocks a subscriber for a user, adding the contact (to the
    /// default list) if there is none: a block needs no prior contact.
    pub fn block_subscriber(
        &mut self,
        user: UserId,
        msisdn: &Msisdn,
        blocked: bool,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let s = subscriber_id(tx, msisdn, now)?;
            tx.execute(
                "INSERT INTO contacts (user_id, subscriber_id, list_name, blocked, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, subscriber_id) DO UPDATE SET \
                 blocked = excluded.blocked",
                params![user.0, s, DEFAULT_LIST, blocked, now.0],
            )?;
            Ok(())
        })
    }

    /// A user's contacts that are users of the bridge, by address.
    pub fn im_contacts(&self, user: UserId) -> Result<Vec<ImContact>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.user_id, c.contact_user_id, coalesce(u.sip_aor, u.imps_id), u.imps_id, \
             c.nickname, c.list_name, c.blocked FROM im_contacts c JOIN users u ON u.id = c.contact_user_id \
             WHERE c.user_id = ?1 ORDER BY 3",
        )?;
        let rows = stmt.query_map([user.0], |r| {
            Ok(ImContact {
                user: UserId(r.get(0)?),
                contact: UserId(r.get(1)?),
                address: r.get(2)?,
                imps_id: r.get(3)?,
                nickname: r.get(4)?,
                list_name: r.get(5)?,
                blocked: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A user's IM contact for another user, if any.
    pub fn im_contact(&self, user: UserId, other: UserId) -> Result<Option<ImContact>, StoreError> {
        Ok(self
            .im_contacts(user)?
            .into_iter()
            .find(|c| c.contact == other))
    }

    /// Puts another user in a user's list (added, or moved and renamed).
    pub fn put_im_contact(
        &mut self,
        user: UserId,
        other: UserId,
        nickname: Option<&str>,
        list: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        check_list_name(list)?;
        if user == other {
            return Err(StoreError::InvalidInput(
                "a user cannot be their own contact".into(),
            ));
        }
        self.write(|tx| {
            tx.execute(
                "INSERT INTO im_contacts (user_id, contact_user_id, nickname, list_name, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, contact_user_id) DO UPDATE SET \
                 nickname = coalesce(excluded.nickname, nickname), list_name = excluded.list_name",
                params![user.0, other.0, nickname, list, now.0],
            )?;
            Ok(())
        })
    }

    /// Blocks or unblocks another user (adding the contact if needed).
    pub fn block_im_user(
        &mut self,
        user: UserId,
        other: UserId,
        blocked: bool,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "INSERT INTO im_contacts (user_id, contact_user_id, list_name, blocked, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, contact_user_id) DO UPDATE SET \
                 blocked = excluded.blocked",
                params![user.0, other.0, DEFAULT_LIST, blocked, now.0],
            )?;
            Ok(())
        })
    }

    /// Removes a contact (subscriber, user, or user of another domain) from a
    /// user's lists; `false` if absent.
    pub fn remove_entry(
        &mut self,
        user: UserId,
        entry: ListEntryRef<'_>,
    ) -> Result<bool, StoreError> {
        self.write(|tx| {
            let n = match entry {
                ListEntryRef::Subscriber(m) => tx.execute(
                    "DELETE FROM contacts WHERE user_id = ?1 AND subscriber_id = \
                     (SELECT id FROM subscribers WHERE msisdn = ?2)",
                    params![user.0, m.as_str()],
                )?,
                ListEntryRef::User(u) => tx.execute(
                    "DELETE FROM im_contacts WHERE user_id = ?1 AND contact_user_id = ?2",
                    params![user.0, u.0],
                )?,
                // A blocked one stays (lists never show it): the block
                // outlives the entry.
                ListEntryRef::Foreign(a) => {
                    let blocked = tx.query_row(
                        "SELECT count(*) FROM foreign_contacts WHERE user_id = ?1 AND address = ?2 AND blocked = 1",
                        params![user.0, a],
                        |r| r.get::<_, i64>(0),
                    )?;
                    usize::try_from(blocked).unwrap_or(0)
                        + tx.execute(
                            "DELETE FROM foreign_contacts WHERE user_id = ?1 AND address = ?2 AND blocked = 0",
                            params![user.0, a],
                        )?
                }
            };
            Ok(n > 0)
        })
    }

    /// The users who have `user` as an unblocked IM contact (their watchers' lists).
    pub fn im_contact_owners(&self, user: UserId) -> Result<Vec<UserId>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_id FROM im_contacts WHERE contact_user_id = ?1 AND blocked = 0",
        )?;
        let rows = stmt.query_map([user.0], |r| r.get(0).map(UserId))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The user whose IMPS UserID or SIP AOR has this user part (any case), when
    /// exactly one does: `alice` finds `wv:alice@…`, `wv:alice` or `sip:alice@…`.
    pub fn user_by_user_part(&self, part: &str) -> Result<Option<UserId>, StoreError> {
        let part = part.to_ascii_lowercase();
        let matches = |a: &Option<String>| {
            a.as_deref().is_some_and(|a| {
                let rest = a.split_once(':').map_or(a, |(_, r)| r);
                rest.rsplit_once('@')
                    .map_or(rest, |(u, _)| u)
                    .eq_ignore_ascii_case(&part)
            })
        };
        let found: Vec<UserId> = self
            .users()?
            .into_iter()
            .filter(|u| matches(&u.imps_id) || matches(&u.sip_aor))
            .map(|u| u.id)
            .collect();
        Ok(match found.as_slice() {
            [one] => Some(*one),
            _ => None,
        })
    }

    /// Keeps an IM from one user of the bridge for another (IMPS ↔ SIP) in the
    /// inbox, so it is delivered like a received SMS: now if they are online,
    /// else when they come back (store and forward). The row's modem is
    /// [`IM_RELAY`].
    /// The sender's envelope is kept with it; the first attempt is due at
    /// `due` (the relay tries the recipient itself first).
    pub fn enqueue_im(
        &mut self,
        im: &super::RelayedIm<'_>,
        now: UnixTime,
        due: UnixTime,
    ) -> Result<super::InboundId, StoreError> {
        let super::RelayedIm {
            to,
            from,
            sender,
            text,
            ref envelope,
        } = *im;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO inbound (modem_imsi, sender, text, received_at, state, user_id, next_attempt_at) \
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6)",
                params![IM_RELAY, sender, text, now.0, to.0, due.0],
            )?;
            let id = tx.last_insert_rowid();
            super::relay::keep_envelope(tx, id, envelope, Some(from))?;
            super::cdr::record_inbound(tx, id, Some((from, to)), now)?;
            Ok(super::InboundId(id))
        })
    }
}

/// The `modem_imsi` of inbox rows that are IMs relayed between users, not SMS.
pub const IM_RELAY: &str = "im-relay";

/// One entry of a contact list, by what it points at.
#[derive(Debug, Clone, Copy)]
pub enum ListEntryRef<'a> {
    /// An SMS-only subscriber.
    Subscriber(&'a Msisdn),
    /// Another user of the bridge.
    User(UserId),
    /// A user of another domain, by address (`sip:jane@otherdomain.test`).
    Foreign(&'a str),
}
