//! Users of other domains in a user's lists (foreign contacts, by their
//! `sip:user@domain` address: nickname, list, block), and the IMs those
//! users send to users of the bridge, kept in the inbox like relayed IMs.

use rusqlite::{OptionalExtension, params};

use super::contacts::{DEFAULT_LIST, subscriber_id};
use super::error::StoreError;
use super::numbers::Msisdn;
use super::outbox::{check_tpdus, insert_parts, take_reference};
use super::users::UserId;
use super::{FrontEnd, InboundId, MessageId, Store, UnixTime};
use crate::pdu::Alphabet;

/// A user's contact in another domain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ForeignContact {
    /// Whose contact it is.
    pub user: UserId,
    /// Their address, `sip:user@domain`.
    pub address: String,
    /// The owner's name for them.
    pub nickname: Option<String>,
    /// The list it is in.
    pub list_name: String,
    /// Messages and watches from them are refused.
    pub blocked: bool,
}

/// An SMS a user of another domain sent (`[federation] foreign_to_sms`): no
/// user of the bridge sends it, so it has no user row, no conversation (a
/// reply is routed as any SMS from that number), and no delivery
/// notification is owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignMessage {
    /// The sender, `sip:user@domain`.
    pub from: String,
    /// The recipient.
    pub msisdn: Msisdn,
    /// The text as sent.
    pub text: String,
    /// The alphabet the parts are in.
    pub alphabet: Alphabet,
    /// One SMS-SUBMIT per part.
    pub parts: Vec<Vec<u8>>,
    /// The front end that accepted it.
    pub front_end: FrontEnd,
}

/// The `modem_imsi` of inbox rows that are IMs from users of other domains.
pub const IM_FOREIGN: &str = "im-foreign";

fn check_address(address: &str) -> Result<(), StoreError> {
    let ok = address
        .strip_prefix("sip:")
        .and_then(|r| r.split_once('@'))
        .is_some_and(|(u, h)| !u.is_empty() && !h.is_empty())
        && !address.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidInput(format!(
            "{address:?} is not a sip:user@domain address"
        )))
    }
}

/// A row of `SELECT user_id, address, nickname, list_name, blocked`.
fn foreign_contact_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ForeignContact> {
    Ok(ForeignContact {
        user: UserId(r.get(0)?),
        address: r.get(1)?,
        nickname: r.get(2)?,
        list_name: r.get(3)?,
        blocked: r.get(4)?,
    })
}

impl Store {
    /// A user's contacts in other domains, by address.
    pub fn foreign_contacts(&self, user: UserId) -> Result<Vec<ForeignContact>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_id, address, nickname, list_name, blocked FROM foreign_contacts \
             WHERE user_id = ?1 ORDER BY address",
        )?;
        let rows = stmt.query_map([user.0], foreign_contact_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A user's contact with this foreign address, if any.
    pub fn foreign_contact(
        &self,
        user: UserId,
        address: &str,
    ) -> Result<Option<ForeignContact>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT user_id, address, nickname, list_name, blocked FROM foreign_contacts \
                 WHERE user_id = ?1 AND address = ?2",
            )?
            .query_row(params![user.0, address], foreign_contact_from_row)
            .optional()?)
    }

    /// Puts a user of another domain in a user's list under a nickname:
    /// added, or moved and renamed (its block stays).
    pub fn put_foreign_contact(
        &mut self,
        user: UserId,
        address: &str,
        nickname: Option<&str>,
        list: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        super::lists::check_list_name(list)?;
        check_address(address)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO foreign_contacts (user_id, address, nickname, list_name, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, address) DO UPDATE SET \
                 nickname = coalesce(excluded.nickname, nickname), list_name = excluded.list_name",
                params![user.0, address, nickname, list, now.0],
            )?;
            Ok(())
        })
    }

    /// Blocks or unblocks a user of another domain (adding the contact to the
    /// default list if needed: a block needs no prior contact).
    pub fn block_foreign(
        &mut self,
        user: UserId,
        address: &str,
        blocked: bool,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        check_address(address)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO foreign_contacts (user_id, address, list_name, blocked, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id, address) DO UPDATE SET \
                 blocked = excluded.blocked",
                params![user.0, address, DEFAULT_LIST, blocked, now.0],
            )?;
            Ok(())
        })
    }

    /// Keeps an IM from a user of another domain for a user of the bridge in
    /// the inbox, delivered like a relayed IM (now, or when they come back).
    /// `from` is the sender's whole address (`sip:jane@otherdomain.test`),
    /// shown to the recipient as it is; the charging record names it. The
    /// envelope is kept (no notification is ever owed to them here).
    pub fn enqueue_foreign_im(
        &mut self,
        to: UserId,
        from: &str,
        text: &str,
        envelope: &super::RelayEnvelope<'_>,
        now: UnixTime,
    ) -> Result<InboundId, StoreError> {
        check_address(from)?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO inbound (modem_imsi, sender, text, received_at, state, user_id, next_attempt_at) \
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?4)",
                params![IM_FOREIGN, from, text, now.0, to.0],
            )?;
            let id = tx.last_insert_rowid();
            super::relay::keep_envelope(tx, id, envelope, None)?;
            tx.prepare_cached(
                "INSERT INTO charging_records (at, direction, user_address, peer_address, message_id, result) \
                 VALUES (?1, 'im_to_im', ?3, (SELECT coalesce(sip_aor, imps_id) FROM users WHERE id = ?4), \
                 ?2, 'received')",
            )?
            .execute(params![now.0, id, from, to.0])?;
            Ok(InboundId(id))
        })
    }

    /// Takes the next concatenation reference for `msisdn` and queues the
    /// SMS from a user of another domain that `build` makes with it, in one
    /// transaction; durable when it returns `Ok`. Its charging records name
    /// the foreign sender.
    pub fn enqueue_foreign_with(
        &mut self,
        msisdn: &Msisdn,
        now: UnixTime,
        build: impl FnOnce(u16) -> Result<ForeignMessage, StoreError>,
    ) -> Result<MessageId, StoreError> {
        self.write(|tx| {
            let reference = take_reference(tx, msisdn, now)?;
            let m = build(reference)?;
            check_address(&m.from)?;
            check_tpdus(&m.parts)?;
            let subscriber = subscriber_id(tx, &m.msisdn, now)?;
            tx.prepare_cached(
                "INSERT INTO messages (user_id, foreign_sender, subscriber_id, text, alphabet, \
                 front_end, report_requested, imdn_positive, imdn_negative, part_count, state, \
                 created_at, updated_at) \
                 VALUES (NULL, ?1, ?2, ?3, ?4, ?5, 1, 0, 0, ?6, 'queued', ?7, ?7)",
            )?
            .execute(params![
                m.from,
                subscriber,
                m.text,
                m.alphabet.name(),
                m.front_end.as_str(),
                m.parts.len() as i64,
                now.0
            ])?;
            let id = tx.last_insert_rowid();
            insert_parts(tx, id, &m.parts, now)?;
            Ok(MessageId(id))
        })
    }

    /// Messages a user of another domain queued as SMS since `since`
    /// (inclusive), for their limits.
    pub fn foreign_messages_since(&self, from: &str, since: UnixTime) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM messages WHERE foreign_sender = ?1 AND created_at >= ?2",
            )?
            .query_row(params![from, since.0], |r| r.get(0))?)
    }
}
