//! Subscribers (SMS-only people), the contacts that link a user to a subscriber,
//! and conversations (who last wrote to whom, through which modem): what the
//! bridge needs to resolve a recipient and to route a reply.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::error::{StoreError, is_unique_violation};
use super::numbers::Msisdn;
use super::users::{UserId, resolve};
use super::{Store, UnixTime};

/// The contact list name a contact gets unless told otherwise.
pub const DEFAULT_LIST: &str = "SMS";

/// A contact's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct ContactId(pub i64);

/// A contact to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewContact {
    /// The owning user's address (SIP AOR or IMPS UserID).
    pub user: String,
    /// The subscriber.
    pub msisdn: Msisdn,
    /// What the user calls the subscriber.
    pub nickname: Option<String>,
    /// A name usable as the user part of a SIP URI (`sip:mum@bridge`), unique per
    /// user, compared without regard to case.
    pub alias: Option<String>,
    /// The contact list it appears in (default [`DEFAULT_LIST`]).
    pub list_name: Option<String>,
}

/// A contact as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Contact {
    /// Row id.
    pub id: ContactId,
    /// The owning user.
    #[serde(skip)]
    pub user: UserId,
    /// The owning user's address.
    #[serde(rename = "user")]
    pub user_address: String,
    /// The subscriber.
    pub msisdn: Msisdn,
    /// What the user calls the subscriber.
    pub nickname: Option<String>,
    /// SIP user part alias, lower case.
    pub alias: Option<String>,
    /// Contact list name.
    pub list_name: String,
    /// Whether the user blocked this subscriber.
    pub blocked: bool,
}

/// A subscriber as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    /// The MSISDN.
    pub msisdn: Msisdn,
    /// A display name, if one was set.
    pub display_name: Option<String>,
    /// When they sent "STOP"; `None` while opted in.
    pub opted_out_at: Option<UnixTime>,
}

/// Who last wrote to a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// The user.
    pub user: UserId,
    /// The modem (IMSI) a part last went out through; `None` while still queued.
    pub modem_imsi: Option<String>,
    /// When.
    pub at: UnixTime,
}

/// Why `import_contacts` imported nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// These rows (index into the input, error) are bad; nothing was imported.
    #[error("{} bad rows; nothing imported", .0.len())]
    Rows(Vec<(usize, StoreError)>),
    /// The database failed; nothing was imported.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The subscriber row for `msisdn`, created on first use.
pub(super) fn subscriber_id(
    tx: &Connection,
    msisdn: &Msisdn,
    now: UnixTime,
) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO subscribers (msisdn, created_at) VALUES (?1, ?2) ON CONFLICT (msisdn) DO NOTHING",
    )?
    .execute(params![msisdn.as_str(), now.0])?;
    Ok(tx
        .prepare_cached("SELECT id FROM subscribers WHERE msisdn = ?1")?
        .query_row([msisdn.as_str()], |r| r.get(0))?)
}

fn check_alias(alias: &str) -> Result<String, StoreError> {
    let ok_chars = alias
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._~-".contains(c));
    if alias.is_empty() || alias.len() > 64 || !ok_chars {
        return Err(StoreError::InvalidInput(format!(
            "invalid alias {alias:?}: use 1 to 64 letters, digits, '.', '_', '~' or '-'"
        )));
    }
    if !alias.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err(StoreError::InvalidInput(format!(
            "invalid alias {alias:?}: it needs a letter, or it reads as a number"
        )));
    }
    Ok(alias.to_ascii_lowercase())
}

fn check_text(what: &str, s: &str) -> Result<(), StoreError> {
    if s.trim().is_empty() || s.chars().count() > 100 || s.chars().any(char::is_control) {
        return Err(StoreError::InvalidInput(format!(
            "invalid {what} {s:?}: 1 to 100 characters, no control characters"
        )));
    }
    Ok(())
}

fn insert_contact(tx: &Connection, c: &NewContact, now: UnixTime) -> Result<ContactId, StoreError> {
    let user = resolve(tx, &c.user)?;
    let msisdn = &c.msisdn;
    let alias = c.alias.as_deref().map(check_alias).transpose()?;
    if let Some(n) = &c.nickname {
        check_text("name", n)?;
    }
    let list = c.list_name.as_deref().unwrap_or(DEFAULT_LIST);
    check_text("contact list name", list)?;
    let subscriber = subscriber_id(tx, msisdn, now)?;
    let res = tx
        .prepare_cached(
            "INSERT INTO contacts (user_id, subscriber_id, nickname, alias, list_name, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![user.0, subscriber, c.nickname, alias, list, now.0]);
    match res {
        Ok(_) => Ok(ContactId(tx.last_insert_rowid())),
        Err(e) if is_unique_violation(&e) => {
            let taken: bool = tx
                .prepare_cached(
                    "SELECT count(*) FROM contacts WHERE user_id = ?1 AND subscriber_id = ?2",
                )?
                .query_row(params![user.0, subscriber], |r| r.get::<_, i64>(0))?
                > 0;
            Err(StoreError::Duplicate(if taken {
                format!("contact {msisdn} of {}", c.user)
            } else {
                format!("alias {} of {}", alias.unwrap_or_default(), c.user)
            }))
        }
        Err(e) => Err(e.into()),
    }
}

const CONTACT_SELECT: &str = "SELECT c.id, c.user_id, coalesce(u.sip_aor, u.imps_id), s.msisdn, \
     c.nickname, c.alias, c.list_name, c.blocked \
     FROM contacts c JOIN users u ON u.id = c.user_id JOIN subscribers s ON s.id = c.subscriber_id";

fn contact_from_row(r: &Row<'_>) -> rusqlite::Result<Contact> {
    Ok(Contact {
        id: ContactId(r.get(0)?),
        user: UserId(r.get(1)?),
        user_address: r.get(2)?,
        msisdn: Msisdn::from_db(r.get(3)?),
        nickname: r.get(4)?,
        alias: r.get(5)?,
        list_name: r.get(6)?,
        blocked: r.get(7)?,
    })
}

impl Store {
    /// Adds a contact (creating the subscriber on first use).
    pub fn add_contact(&mut self, c: &NewContact, now: UnixTime) -> Result<ContactId, StoreError> {
        self.write(|tx| insert_contact(tx, c, now))
    }

    /// Adds every contact or none. Bad rows (unknown user, duplicate, bad alias…)
    /// are all reported, with their index in `rows`.
    pub fn import_contacts(
        &mut self,
        rows: &[NewContact],
        now: UnixTime,
    ) -> Result<usize, ImportError> {
        self.import_rows(rows, now, true)
    }

    /// Checks rows as `import_contacts` would, and adds none of them.
    pub fn check_contacts(
        &mut self,
        rows: &[NewContact],
        now: UnixTime,
    ) -> Result<(), ImportError> {
        self.import_rows(rows, now, false).map(drop)
    }

    fn import_rows(
        &mut self,
        rows: &[NewContact],
        now: UnixTime,
        commit: bool,
    ) -> Result<usize, ImportError> {
        let mut bad = Vec::new();
        let res = self.write(|tx| {
            for (i, c) in rows.iter().enumerate() {
                match insert_contact(tx, c, now) {
                    Ok(_) => {}
                    Err(e) if e.is_bad_input() => bad.push((i, e)),
                    Err(e) => return Err(e),
                }
            }
            if bad.is_empty() && commit {
                Ok(())
            } else {
                // An error rolls the transaction back: all rows or none.
                Err(StoreError::InvalidInput("rolled back".into()))
            }
        });
        match res {
            Ok(()) => Ok(rows.len()),
            Err(_) if !bad.is_empty() => Err(ImportError::Rows(bad)),
            Err(StoreError::InvalidInput(_)) if !commit => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Contacts, of one user or of all, by user and MSISDN.
    pub fn contacts(&self, user: Option<&str>) -> Result<Vec<Contact>, StoreError> {
        let user_id = match user {
            Some(a) => Some(
                self.user_by_address(a)?
                    .ok_or_else(|| StoreError::UnknownUser(a.to_owned()))?
                    .id
                    .0,
            ),
            None => None,
        };
        let sql = format!(
            "{CONTACT_SELECT} WHERE ?1 IS NULL OR c.user_id = ?1 \
             ORDER BY coalesce(u.sip_aor, u.imps_id), s.msisdn"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([user_id], contact_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A user's contact by alias (any case), for resolving `sip:<alias>@bridge`.
    pub fn contact_by_alias(
        &self,
        user: UserId,
        alias: &str,
    ) -> Result<Option<Contact>, StoreError> {
        let sql = format!("{CONTACT_SELECT} WHERE c.user_id = ?1 AND c.alias = ?2");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(
                params![user.0, alias.to_ascii_lowercase()],
                contact_from_row,
            )
            .optional()?)
    }

    /// A user's contact for a subscriber, if any.
    pub fn contact(&self, user: UserId, msisdn: &Msisdn) -> Result<Option<Contact>, StoreError> {
        let sql = format!("{CONTACT_SELECT} WHERE c.user_id = ?1 AND s.msisdn = ?2");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![user.0, msisdn.as_str()], contact_from_row)
            .optional()?)
    }

    /// Removes a user's contact.
    pub fn remove_contact(&mut self, user: &str, msisdn: &Msisdn) -> Result<(), StoreError> {
        self.update_contact(user, msisdn, "DELETE FROM contacts")
    }

    /// Blocks or unblocks a subscriber for a user (their SMS are not routed to
    /// that user, and the user cannot write to them).
    pub fn set_blocked(
        &mut self,
        user: &str,
        msisdn: &Msisdn,
        blocked: bool,
    ) -> Result<(), StoreError> {
        let sql = if blocked {
            "UPDATE contacts SET blocked = 1"
        } else {
            "UPDATE contacts SET blocked = 0"
        };
        self.update_contact(user, msisdn, sql)
    }

    fn update_contact(
        &mut self,
        user: &str,
        msisdn: &Msisdn,
        head: &str,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let id = resolve(tx, user)?;
            let n = tx.execute(
                &format!(
                    "{head} WHERE user_id = ?1 AND subscriber_id = \
                     (SELECT id FROM subscribers WHERE msisdn = ?2)"
                ),
                params![id.0, msisdn.as_str()],
            )?;
            if n == 0 {
                return Err(StoreError::UnknownContact {
                    user: user.to_owned(),
                    msisdn: msisdn.to_string(),
                });
            }
            Ok(())
        })
    }

    /// The users who have this subscriber as an unblocked contact, oldest contact
    /// first: the first choice when routing an SMS from them.
    pub fn contact_owners(&self, msisdn: &Msisdn) -> Result<Vec<UserId>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.user_id FROM contacts c JOIN subscribers s ON s.id = c.subscriber_id \
             WHERE s.msisdn = ?1 AND c.blocked = 0 ORDER BY c.created_at, c.id",
        )?;
        let rows = stmt.query_map([msisdn.as_str()], |r| r.get(0).map(UserId))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether `user` blocked this subscriber.
    pub fn is_blocked(&self, user: UserId, msisdn: &Msisdn) -> Result<bool, StoreError> {
        Ok(self.contact(user, msisdn)?.is_some_and(|c| c.blocked))
    }

    /// Records that `user` wrote to `msisdn` (through `modem_imsi` when known).
    /// `enqueue` and `part_sent` call this themselves.
    pub fn record_conversation(
        &mut self,
        user: UserId,
        msisdn: &Msisdn,
        modem_imsi: Option<&str>,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let s = subscriber_id(tx, msisdn, now)?;
            record_conversation(tx, user, s, modem_imsi, now)
        })
    }

    /// The user who last wrote to this subscriber (who is not blocked by them),
    /// the second choice when routing an SMS from them.
    pub fn last_writer(&self, msisdn: &Msisdn) -> Result<Option<Conversation>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT v.user_id, v.modem_imsi, v.last_at FROM conversations v \
                 JOIN subscribers s ON s.id = v.subscriber_id \
                 LEFT JOIN contacts c ON c.user_id = v.user_id AND c.subscriber_id = v.subscriber_id \
                 WHERE s.msisdn = ?1 AND coalesce(c.blocked, 0) = 0 \
                 ORDER BY v.last_at DESC, v.rowid DESC LIMIT 1",
            )?
            .query_row([msisdn.as_str()], |r| {
                Ok(Conversation {
                    user: UserId(r.get(0)?),
                    modem_imsi: r.get(1)?,
                    at: UnixTime(r.get(2)?),
                })
            })
            .optional()?)
    }

    /// The subscriber with this MSISDN, if known.
    pub fn subscriber(&self, msisdn: &Msisdn) -> Result<Option<Subscriber>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT msisdn, display_name, opted_out_at FROM subscribers WHERE msisdn = ?1",
            )?
            .query_row([msisdn.as_str()], |r| {
                Ok(Subscriber {
                    msisdn: Msisdn::from_db(r.get(0)?),
                    display_name: r.get(1)?,
                    opted_out_at: r.get::<_, Option<i64>>(2)?.map(UnixTime),
                })
            })
            .optional()?)
    }

    /// Opts a subscriber out (an SMS "STOP") or back in.
    pub fn set_opted_out(
        &mut self,
        msisdn: &Msisdn,
        opted_out: bool,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let s = subscriber_id(tx, msisdn, now)?;
            tx.execute(
                "UPDATE subscribers SET opted_out_at = ?2 WHERE id = ?1",
                params![s, opted_out.then_some(now.0)],
            )?;
            Ok(())
        })
    }
}

/// Upserts the conversation row; a `None` modem keeps the one recorded before.
pub(super) fn record_conversation(
    tx: &Connection,
    user: UserId,
    subscriber: i64,
    modem_imsi: Option<&str>,
    now: UnixTime,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO conversations (user_id, subscriber_id, modem_imsi, last_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (user_id, subscriber_id) DO UPDATE SET \
         modem_imsi = coalesce(excluded.modem_imsi, modem_imsi), last_at = max(last_at, excluded.last_at)",
    )?
    .execute(params![user.0, subscriber, modem_imsi, now.0])?;
    Ok(())
}
