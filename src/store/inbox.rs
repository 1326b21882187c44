//! The inbox: every PDU read from a modem, committed before the modem deletes it;
//! the reassembly of concatenated parts (rows, so it survives restarts); and the
//! inbound messages the bridge delivers to users, with store-and-forward state.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::error::StoreError;
use super::numbers::normalise_msisdn;
use super::users::UserId;
use super::{Store, UnixTime};
use crate::pdu::{
    Address, Body, Deliver, Offer, PartKey, Pdu, Reassembly, StatusReport, Tpdu, join_text,
};

/// An inbound message's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct InboundId(pub i64);

/// What [`Store::receive_pdu`] did with a PDU. In every case the PDU is committed
/// (or was before), so the modem may delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A complete message (single, or the last missing part) is ready for the bridge.
    Message(InboundId),
    /// A part was kept; the message needs more.
    Waiting {
        /// Distinct parts held.
        have: u8,
        /// Parts in the message.
        of: u8,
    },
    /// This PDU was already received on this modem: nothing new.
    Duplicate,
    /// Another copy of a part already held (kept raw, not delivered twice).
    DuplicatePart,
    /// An SMS-STATUS-REPORT, stored raw and not yet applied: pass it to
    /// [`Store::apply_report`], then [`Store::mark_report_applied`], in the same
    /// [`Store::atomically`] as this call. A report stored earlier but never
    /// applied comes back as this too when its PDU is read again.
    StatusReport(ReportId, StatusReport),
    /// An SMS-SUBMIT read back from modem memory: stored raw, nothing to deliver.
    Other,
    /// The PDU does not decode: stored raw with the error, never lost.
    Undecodable(String),
}

/// Where an inbound message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InboundState {
    /// Waiting for delivery to a user.
    Pending,
    /// Delivered to a user.
    Delivered,
    /// Given up: no user could take it.
    Failed,
    /// Held too long undelivered.
    Expired,
}

impl InboundState {
    /// Every state, in lifecycle order.
    pub const ALL: [Self; 4] = [Self::Pending, Self::Delivered, Self::Failed, Self::Expired];

    /// The name in the database, the command line and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Expired => "expired",
        }
    }

    /// The state named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    fn from_db(s: &str) -> Self {
        Self::parse(s).unwrap_or(Self::Failed)
    }
}

impl std::fmt::Display for InboundState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A message from a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    /// Row id.
    pub id: InboundId,
    /// The modem (IMSI) it came in on.
    pub modem_imsi: String,
    /// E.164 when the sender is a number, else as received (alphanumeric, short code).
    pub sender: String,
    /// The text, parts joined; gaps in an incomplete message read `[…]`.
    pub text: String,
    /// The service centre time stamp of the first part.
    pub sent_at: Option<UnixTime>,
    /// When it was committed.
    pub received_at: UnixTime,
    /// Parts were missing when reassembly timed out.
    pub incomplete: bool,
    /// Delivery state.
    pub state: InboundState,
    /// The user it was routed to.
    pub user: Option<UserId>,
    /// Delivery attempts.
    pub attempts: u32,
    /// When to try again.
    pub next_attempt_at: UnixTime,
    /// The latest delivery error.
    pub last_error: Option<String>,
    /// A message, or a notification owed to the user.
    pub kind: super::InboundKind,
    /// For an IM from another user: its message id (as its sender gave it,
    /// or made up); for a notice: the id of the IM it is about.
    pub im_message_id: Option<String>,
    /// For an IM from another user: the sender's whole address; for a
    /// notice: the address of the IM's recipient it is about.
    pub origin: Option<String>,
    /// The sending user, when they are a user of the bridge.
    pub origin_user: Option<UserId>,
    /// The notifications the IM's sender asked for.
    pub notify: super::NotifyFlags,
    /// What a notice says.
    pub disposition: Option<super::NoticeDisposition>,
}

/// Marks a gap where parts never came.
const GAP: &str = "[…]";

/// A stored status report (its `inbox_pdus` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReportId(pub i64);

/// The sender as the store keeps it: E.164 where it is a number we can read.
fn sender_text(a: &Address, default_cc: Option<&str>) -> String {
    if a.is_alphanumeric() {
        return a.value.clone();
    }
    let written = if a.is_international() {
        format!("+{}", a.value)
    } else {
        a.value.clone()
    };
    normalise_msisdn(&written, default_cc).map_or(written, |m| m.to_string())
}

struct Key<'a> {
    modem: &'a str,
    sender: &'a str,
    reference: u16,
    total: u8,
    wide: bool,
}

fn insert_pdu(
    tx: &Connection,
    modem: &str,
    pdu: &[u8],
    kind: &str,
    sender: Option<&str>,
    error: Option<&str>,
    now: UnixTime,
) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO inbox_pdus (modem_imsi, pdu, received_at, kind, sender, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![modem, pdu, now.0, kind, sender, error])?;
    Ok(tx.last_insert_rowid())
}

/// An inbound message about to be written, and the PDU rows it came from.
struct NewInbound<'a> {
    modem: &'a str,
    sender: &'a str,
    text: &'a str,
    sent_at: Option<UnixTime>,
    incomplete: bool,
    pdus: &'a [i64],
}

fn insert_inbound(
    tx: &Connection,
    m: &NewInbound<'_>,
    now: UnixTime,
) -> Result<InboundId, StoreError> {
    let NewInbound {
        modem,
        sender,
        text,
        sent_at,
        incomplete,
        pdus,
    } = *m;
    tx.prepare_cached(
        "INSERT INTO inbound (modem_imsi, sender, text, sent_at, received_at, incomplete, state, next_attempt_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?5)",
    )?
    .execute(params![modem, sender, text, sent_at.map(|t| t.0), now.0, incomplete])?;
    let id = tx.last_insert_rowid();
    let mut link = tx.prepare_cached("UPDATE inbox_pdus SET inbound_id = ?2 WHERE id = ?1")?;
    for p in pdus {
        link.execute(params![p, id])?;
    }
    super::cdr::record_inbound(tx, id, None, now)?;
    Ok(InboundId(id))
}

/// The keys of the messages that have parts held, oldest first.
/// A reassembly key as stored: modem, sender, reference, total, wide.
type HeldKey = (String, String, u16, u8, bool);

/// The parts of one message run through the reassembly rule.
type HeldParts = Reassembly<Held, UnixTime>;

/// An owned [`Key`].
struct OwnedKey(HeldKey);

impl OwnedKey {
    fn as_key(&self) -> Key<'_> {
        let (modem, sender, reference, total, wide) = &self.0;
        Key {
            modem,
            sender,
            reference: *reference,
            total: *total,
            wide: *wide,
        }
    }
}

/// Every message with parts held, each through the reassembly rule with
/// `timeout_secs`, oldest first.
fn every_held(
    tx: &Connection,
    timeout_secs: i64,
) -> Result<Vec<(OwnedKey, HeldParts)>, StoreError> {
    let timeout = Duration::from_secs(u64::try_from(timeout_secs).unwrap_or(0));
    let mut out = Vec::new();
    for k in held_keys(tx)? {
        let key = OwnedKey(k);
        let Some(part_key) = part_key_of(tx, &key.as_key())? else {
            continue;
        };
        let parts = held(tx, &key.as_key(), &part_key, timeout)?;
        out.push((key, parts));
    }
    Ok(out)
}

fn held_keys(tx: &Connection) -> Result<Vec<HeldKey>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT modem_imsi, sender, reference, total, wide FROM reassembly \
             GROUP BY modem_imsi, sender, reference, total, wide ORDER BY min(received_at)",
        )?
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?)
}

/// A part held for reassembly: its `inbox_pdus` row and the decoded SMS.
type Held = (i64, Deliver);

/// The parts held for `key`, put through the one reassembly rule
/// ([`Reassembly`]) in the order they arrived, all under `part_key`.
fn held(
    tx: &Connection,
    key: &Key<'_>,
    part_key: &PartKey,
    timeout: Duration,
) -> Result<Reassembly<Held, UnixTime>, StoreError> {
    let rows: Vec<(u8, i64, Vec<u8>, i64)> = tx
        .prepare_cached(
            "SELECT r.seq, p.id, p.pdu, r.received_at FROM reassembly r \
             JOIN inbox_pdus p ON p.id = r.pdu_id \
             WHERE r.modem_imsi = ?1 AND r.sender = ?2 AND r.reference = ?3 AND r.total = ?4 \
             AND r.wide = ?5 ORDER BY r.received_at, p.id",
        )?
        .query_map(
            params![key.modem, key.sender, key.reference, key.total, key.wide],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut parts = Reassembly::new(timeout);
    for (seq, id, raw, at) in rows {
        // Every held part decoded once already.
        if let Ok(Pdu {
            tpdu: Tpdu::Deliver(d),
            ..
        }) = Pdu::decode(&raw)
        {
            // Held rows are distinct and incomplete: this only refills the rule.
            let _ = parts.offer(UnixTime(at), part_key.clone(), seq, (id, d));
        }
    }
    Ok(parts)
}

/// The key the rule uses for the rows of `key`: the first held part's (or
/// `fallback`'s) originator, so rows whose sender was written differently but
/// reads as the same number stay one message.
fn part_key_of(tx: &Connection, key: &Key<'_>) -> Result<Option<PartKey>, StoreError> {
    let raw: Option<Vec<u8>> = tx
        .prepare_cached(
            "SELECT p.pdu FROM reassembly r JOIN inbox_pdus p ON p.id = r.pdu_id \
             WHERE r.modem_imsi = ?1 AND r.sender = ?2 AND r.reference = ?3 AND r.total = ?4 \
             AND r.wide = ?5 ORDER BY r.received_at, p.id LIMIT 1",
        )?
        .query_row(
            params![key.modem, key.sender, key.reference, key.total, key.wide],
            |r| r.get(0),
        )
        .optional()?;
    Ok(match raw.as_deref().map(Pdu::decode) {
        Some(Ok(Pdu {
            tpdu: Tpdu::Deliver(d),
            ..
        })) => Some(PartKey {
            sender: d.originator,
            reference: key.reference,
            total: key.total,
            wide: key.wide,
        }),
        _ => None,
    })
}

/// Turns the parts of `key` the rule handed back (in order, with their part
/// numbers) into one inbound message, and forgets the held rows.
fn complete(
    tx: &Connection,
    key: &Key<'_>,
    parts: &[(u8, Held)],
    incomplete: bool,
    now: UnixTime,
) -> Result<InboundId, StoreError> {
    let mut text = String::new();
    let mut run: Vec<&Body> = Vec::new();
    let mut expected = 1u8;
    for (seq, (_, d)) in parts {
        if *seq != expected {
            text.push_str(&join_text(run.drain(..)));
            text.push_str(GAP);
        }
        run.push(&d.user_data.body);
        expected = seq.saturating_add(1);
    }
    text.push_str(&join_text(run.drain(..)));
    if incomplete && expected <= key.total {
        text.push_str(GAP);
    }
    // A time stamp that is not valid BCD is kept raw in the PDU, not guessed.
    let sent_at = parts
        .first()
        .and_then(|(_, (_, d))| d.scts.is_valid().then(|| UnixTime::from_pdu(&d.scts)));
    let ids: Vec<i64> = parts.iter().map(|(_, (id, _))| *id).collect();
    let m = NewInbound {
        modem: key.modem,
        sender: key.sender,
        text: &text,
        sent_at,
        incomplete,
        pdus: &ids,
    };
    let id = insert_inbound(tx, &m, now)?;
    tx.prepare_cached(
        "DELETE FROM reassembly WHERE modem_imsi = ?1 AND sender = ?2 AND reference = ?3 \
         AND total = ?4 AND wide = ?5",
    )?
    .execute(params![
        key.modem,
        key.sender,
        key.reference,
        key.total,
        key.wide
    ])?;
    Ok(id)
}

fn deliver(
    tx: &Connection,
    modem: &str,
    raw: &[u8],
    d: &Deliver,
    default_cc: Option<&str>,
    now: UnixTime,
) -> Result<Received, StoreError> {
    let sender = sender_text(&d.originator, default_cc);
    let part = PartKey::of(d).filter(|(k, seq)| k.total > 1 && (1..=k.total).contains(seq));
    let Some((key, seq)) = part else {
        let pdu = insert_pdu(tx, modem, raw, "message", Some(&sender), None, now)?;
        let text = join_text([&d.user_data.body]);
        let sent_at = d.scts.is_valid().then(|| UnixTime::from_pdu(&d.scts));
        let m = NewInbound {
            modem,
            sender: &sender,
            text: &text,
            sent_at,
            incomplete: false,
            pdus: &[pdu],
        };
        return Ok(Received::Message(insert_inbound(tx, &m, now)?));
    };
    let pdu = insert_pdu(tx, modem, raw, "part", Some(&sender), None, now)?;
    let k = Key {
        modem,
        sender: &sender,
        reference: key.reference,
        total: key.total,
        wide: key.wide,
    };
    let part_key = part_key_of(tx, &k)?.unwrap_or(key);
    // The timeout does not matter for an offer; expiry passes its own.
    let mut parts = held(tx, &k, &part_key, Duration::ZERO)?;
    match parts.offer(now, part_key, seq, (pdu, d.clone())) {
        Ok(Offer::Duplicate) => {
            tx.execute(
                "UPDATE inbox_pdus SET kind = 'duplicate_part' WHERE id = ?1",
                [pdu],
            )?;
            Ok(Received::DuplicatePart)
        }
        Ok(Offer::Waiting { have, of }) => {
            tx.prepare_cached(
                "INSERT INTO reassembly (modem_imsi, sender, reference, total, wide, seq, pdu_id, received_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![k.modem, k.sender, k.reference, k.total, k.wide, seq, pdu, now.0])?;
            Ok(Received::Waiting { have, of })
        }
        Ok(Offer::Complete(all)) => {
            let numbered: Vec<(u8, Held)> = (1..=k.total).zip(all).collect();
            Ok(Received::Message(complete(tx, &k, &numbered, false, now)?))
        }
        // Part numbers were checked above; a bad one is kept as a message.
        Err(e) => Err(StoreError::InvalidInput(e.to_string())),
    }
}

const INBOUND_SELECT: &str = "SELECT id, modem_imsi, sender, text, sent_at, received_at, incomplete, state, \
     user_id, attempts, next_attempt_at, last_error, kind, im_message_id, origin, origin_user_id, \
     notify_delivered, notify_failed, notify_displayed, disposition FROM inbound";

fn inbound_from_row(r: &Row<'_>) -> rusqlite::Result<InboundMessage> {
    let state: String = r.get(7)?;
    Ok(InboundMessage {
        id: InboundId(r.get(0)?),
        modem_imsi: r.get(1)?,
        sender: r.get(2)?,
        text: r.get(3)?,
        sent_at: r.get::<_, Option<i64>>(4)?.map(UnixTime),
        received_at: UnixTime(r.get(5)?),
        incomplete: r.get(6)?,
        state: InboundState::from_db(&state),
        user: r.get::<_, Option<i64>>(8)?.map(UserId),
        attempts: r.get(9)?,
        next_attempt_at: UnixTime(r.get(10)?),
        last_error: r.get(11)?,
        kind: super::InboundKind::from_db(&r.get::<_, String>(12)?),
        im_message_id: r.get(13)?,
        origin: r.get(14)?,
        origin_user: r.get::<_, Option<i64>>(15)?.map(UserId),
        notify: super::NotifyFlags {
            delivered: r.get(16)?,
            failed: r.get(17)?,
            displayed: r.get(18)?,
        },
        disposition: r
            .get::<_, Option<String>>(19)?
            .as_deref()
            .and_then(super::NoticeDisposition::from_db),
    })
}

impl Store {
    /// Commits a PDU read from `modem_imsi` (bytes as `AT+CMGR`/`+CMT` give them,
    /// SMSC field first). Call before deleting it from the modem or acknowledging
    /// it (rule 3). The same bytes again on the same modem are a [`Received::Duplicate`].
    pub fn receive_pdu(
        &mut self,
        modem_imsi: &str,
        pdu: &[u8],
        now: UnixTime,
    ) -> Result<Received, StoreError> {
        let cc = self.default_country_code.clone();
        self.write(|tx| {
            let seen: Option<i64> = tx
                .prepare_cached("SELECT id FROM inbox_pdus WHERE modem_imsi = ?1 AND pdu = ?2")?
                .query_row(params![modem_imsi, pdu], |r| r.get(0))
                .optional()?;
            if let Some(id) = seen {
                // Read again: a report stored without being applied is offered
                // once more, so it cannot be lost to the duplicate check.
                let unapplied: bool = tx
                    .prepare_cached(
                        "SELECT kind = 'status_report' AND report_applied IS NULL FROM inbox_pdus WHERE id = ?1",
                    )?
                    .query_row([id], |r| r.get(0))?;
                if unapplied
                    && let Ok(Pdu {
                        tpdu: Tpdu::StatusReport(r),
                        ..
                    }) = Pdu::decode(pdu)
                {
                    return Ok(Received::StatusReport(ReportId(id), r));
                }
                return Ok(Received::Duplicate);
            }
            match Pdu::decode(pdu) {
                Err(e) => {
                    let e = e.to_string();
                    insert_pdu(tx, modem_imsi, pdu, "undecodable", None, Some(&e), now)?;
                    Ok(Received::Undecodable(e))
                }
                Ok(Pdu {
                    tpdu: Tpdu::StatusReport(r),
                    ..
                }) => {
                    let id = insert_pdu(tx, modem_imsi, pdu, "status_report", None, None, now)?;
                    Ok(Received::StatusReport(ReportId(id), r))
                }
                Ok(Pdu {
                    tpdu: Tpdu::Submit(_),
                    ..
                }) => {
                    insert_pdu(tx, modem_imsi, pdu, "other", None, None, now)?;
                    Ok(Received::Other)
                }
                Ok(Pdu {
                    tpdu: Tpdu::Deliver(d),
                    ..
                }) => deliver(tx, modem_imsi, pdu, &d, cc.as_deref(), now),
            }
        })
    }

    /// Records that the stored report `id` was applied: `matched` whether it
    /// matched a part. Call in the same [`Store::atomically`] as the apply.
    pub fn mark_report_applied(&mut self, id: ReportId, matched: bool) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE inbox_pdus SET report_applied = ?2 WHERE id = ?1")?
                .execute(params![id.0, matched])?;
            Ok(())
        })
    }

    /// Records why applying the stored report `id` failed; it stays unapplied
    /// for the sweep.
    pub fn mark_report_error(&mut self, id: ReportId, error: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached("UPDATE inbox_pdus SET error = ?2 WHERE id = ?1")?
                .execute(params![id.0, error])?;
            Ok(())
        })
    }

    /// Stored status reports that were never applied, oldest first, with the
    /// modem they came from.
    pub fn unapplied_reports(&self) -> Result<Vec<(ReportId, String, StatusReport)>, StoreError> {
        let rows: Vec<(i64, String, Vec<u8>)> = self
            .conn
            .prepare_cached(
                "SELECT id, modem_imsi, pdu FROM inbox_pdus \
                 WHERE kind = 'status_report' AND report_applied IS NULL ORDER BY id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, modem, raw)| match Pdu::decode(&raw) {
                Ok(Pdu {
                    tpdu: Tpdu::StatusReport(r),
                    ..
                }) => Some((ReportId(id), modem, r)),
                _ => None,
            })
            .collect())
    }

    /// Turns collections of parts whose newest part is `timeout_secs` old or older
    /// into inbound messages marked incomplete (never a silent drop). Returns them.
    pub fn expire_reassembly(
        &mut self,
        now: UnixTime,
        timeout_secs: i64,
    ) -> Result<Vec<InboundId>, StoreError> {
        self.write(|tx| {
            let mut out = Vec::new();
            for (key, mut parts) in every_held(tx, timeout_secs)? {
                for late in parts.expire(now) {
                    out.push(complete(tx, &key.as_key(), &late.parts, true, now)?);
                }
            }
            Ok(out)
        })
    }

    /// The earliest time a held collection of parts expires with `timeout_secs`,
    /// for the driver's timer. `None` when no parts wait.
    pub fn next_reassembly_deadline(
        &self,
        timeout_secs: i64,
    ) -> Result<Option<UnixTime>, StoreError> {
        Ok(every_held(&self.conn, timeout_secs)?
            .iter()
            .filter_map(|(_, parts)| parts.poll_timeout())
            .min())
    }

    /// Inbound messages waiting for delivery whose next attempt is due, oldest first.
    pub fn pending_inbound(&self, now: UnixTime) -> Result<Vec<InboundMessage>, StoreError> {
        // One sender's messages to one user in order: none is due while an
        // earlier one of theirs still waits.
        let sql = format!(
            "{INBOUND_SELECT} WHERE state = 'pending' AND next_attempt_at <= ?1 \
             AND NOT EXISTS (SELECT 1 FROM inbound e WHERE e.state = 'pending' \
             AND e.sender = inbound.sender AND e.user_id IS inbound.user_id \
             AND e.id < inbound.id AND e.next_attempt_at > ?1) ORDER BY id"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([now.0], inbound_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many inbound messages wait for delivery (due or not).
    pub fn count_pending_inbound(&self) -> Result<usize, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM inbound WHERE state = 'pending'")?
            .query_row([], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(usize::MAX))
    }

    /// One inbound message.
    pub fn inbound(&self, id: InboundId) -> Result<Option<InboundMessage>, StoreError> {
        let sql = format!("{INBOUND_SELECT} WHERE id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id.0], inbound_from_row)
            .optional()?)
    }

    /// Inbound messages, oldest first (for lists).
    pub fn inbound_messages(&self) -> Result<Vec<InboundMessage>, StoreError> {
        self.inbound_in(None)
    }

    /// Inbound messages, oldest first, all or in one state.
    pub fn inbound_in(
        &self,
        state: Option<InboundState>,
    ) -> Result<Vec<InboundMessage>, StoreError> {
        let sql = format!("{INBOUND_SELECT} WHERE ?1 IS NULL OR state = ?1 ORDER BY id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([state.map(InboundState::as_str)], inbound_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Makes every pending message routed to `user` due at `now` (the user came
    /// online: store and forward delivers at once). Returns how many.
    pub fn inbound_due_for(&mut self, user: UserId, now: UnixTime) -> Result<usize, StoreError> {
        Ok(self.conn.execute(
            "UPDATE inbound SET next_attempt_at = ?2 WHERE state = 'pending' AND user_id = ?1 AND next_attempt_at > ?2",
            params![user.0, now.0],
        )?)
    }

    /// The message reached `user`; a delivery notification its sender asked
    /// for is owed to them from now, in the same transaction.
    pub fn mark_inbound_delivered(
        &mut self,
        id: InboundId,
        user: UserId,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.update_pending(
            id,
            "state = 'delivered', user_id = ?2, delivered_at = ?3, attempts = attempts + 1",
            params![id.0, user.0, now.0],
            Some(now),
        )
    }

    /// Delivery did not work now (user offline, front end down): try again at `at`.
    pub fn mark_inbound_retry(
        &mut self,
        id: InboundId,
        user: Option<UserId>,
        at: UnixTime,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.update_pending(
            id,
            "user_id = coalesce(?2, user_id), next_attempt_at = ?3, last_error = ?4, attempts = attempts + 1",
            params![id.0, user.map(|u| u.0), at.0, reason],
            None,
        )
    }

    /// The message was handed to `user`'s client, which has not confirmed it
    /// (IMPS NewMessage or MessageNotification): it stays pending, with
    /// `offered_at` now, and is not offered again before `until` (the window
    /// the client has to confirm) unless the user comes back
    /// ([`Store::inbound_due_for`] at their next login makes it due at once).
    /// `false` when it is no longer pending (the client confirmed it before
    /// this was written).
    pub fn mark_inbound_offered(
        &mut self,
        id: InboundId,
        user: UserId,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<bool, StoreError> {
        let n = self
            .conn
            .prepare_cached(
                "UPDATE inbound SET user_id = ?2, offered_at = ?3, next_attempt_at = ?4, \
                 last_error = 'offered, not confirmed', attempts = attempts + 1 \
                 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![id.0, user.0, now.0, until.0])?;
        Ok(n == 1)
    }

    /// The message `id` if it is pending, a message (not a notice) and
    /// routed to `user`: what `user`'s client may confirm it has.
    pub fn pending_inbound_of(
        &self,
        id: InboundId,
        user: UserId,
    ) -> Result<Option<InboundMessage>, StoreError> {
        let sql = format!(
            "{INBOUND_SELECT} WHERE id = ?1 AND user_id = ?2 AND state = 'pending' AND kind = 'message'"
        );
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![id.0, user.0], inbound_from_row)
            .optional()?)
    }

    /// Delivery failed for good (no user to route to, policy); a negative
    /// notification its sender asked for is owed to them from now.
    pub fn mark_inbound_failed(
        &mut self,
        id: InboundId,
        reason: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.update_pending(
            id,
            "state = 'failed', last_error = ?2",
            params![id.0, reason],
            Some(now),
        )
    }

    /// The message was held longer than the bridge keeps messages; a
    /// negative notification its sender asked for is owed to them from now.
    pub fn mark_inbound_expired(
        &mut self,
        id: InboundId,
        reason: &str,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.update_pending(
            id,
            "state = 'expired', last_error = ?2",
            params![id.0, reason],
            Some(now),
        )
    }

    /// Changes a pending message with `set`; `ended` at a time when that makes
    /// it final, which its charging record gets in the same transaction, with
    /// the notification owed to an IM's sender.
    fn update_pending(
        &mut self,
        id: InboundId,
        set: &str,
        p: impl rusqlite::Params,
        ended: Option<UnixTime>,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let n = tx
                .prepare_cached(&format!(
                    "UPDATE inbound SET {set} WHERE id = ?1 AND state = 'pending'"
                ))?
                .execute(p)?;
            if n == 1 {
                if let Some(now) = ended {
                    super::cdr::set_inbound_outcome(tx, id.0, now)?;
                    super::relay::owe_final_notice(tx, id, now)?;
                }
                return Ok(());
            }
            let state: Option<String> = tx
                .query_row("SELECT state FROM inbound WHERE id = ?1", [id.0], |r| {
                    r.get(0)
                })
                .optional()?;
            Err(match state {
                None => StoreError::NotFound {
                    what: "inbound message",
                    id: id.0,
                },
                Some(state) => StoreError::WrongState {
                    what: "inbound message",
                    id: id.0,
                    state,
                    expected: "pending",
                },
            })
        })
    }
}
