//! Users: IM accounts, known by a SIP address of record (`sip:alice@example.com`)
//! and/or an IMPS UserID (`wv:alice@example.com`), with their credentials and the
//! limits the bridge applies to them.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use md5::{Digest, Md5};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::error::{StoreError, is_unique_violation};
use super::numbers::Msisdn;
use super::{Store, UnixTime};

/// A user's row id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

/// How the user wants message bodies from SMS delivered to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// `text/plain`.
    #[default]
    Plain,
    /// `message/cpim` wrapping the text (RFC 3862).
    Cpim,
}

impl BodyFormat {
    /// `plain` or `cpim`, as stored and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Cpim => "cpim",
        }
    }

    /// The format named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Plain, Self::Cpim]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// What happens to an IM for a user while they are offline (the recipient's
/// interworking preference of 3GPP TS 23.204's IP-SM-GW).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OfflineDelivery {
    /// Kept until they are online again.
    #[default]
    Store,
    /// Sent as SMS to their own phone ([`UserSettings::phone`]).
    Sms,
}

impl OfflineDelivery {
    /// `store` or `sms`, as stored and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Sms => "sms",
        }
    }

    /// The preference named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Store, Self::Sms]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

/// What the bridge may do for a user; [`UserSettings::default`] is what a new user gets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserSettings {
    /// Shown to contacts and in lists.
    pub display_name: Option<String>,
    /// Whether the user may send SMS at all.
    pub may_send_sms: bool,
    /// Most messages per minute (0: no limit).
    pub rate_per_minute: u32,
    /// Most messages per day (0: no limit).
    pub daily_cap: u32,
    /// Hide the user's name from SMS recipients.
    pub anonymous: bool,
    /// How SMS bodies are delivered to the user.
    pub body_format: BodyFormat,
    /// The user's own phone; no two users share one.
    pub phone: Option<Msisdn>,
    /// What happens to IMs for the user while they are offline; `Sms` needs
    /// a [`phone`](Self::phone).
    pub offline_delivery: OfflineDelivery,
}

impl Default for UserSettings {
    fn default() -> Self {
        Self {
            display_name: None,
            may_send_sms: true,
            rate_per_minute: 10,
            daily_cap: 200,
            anonymous: false,
            body_format: BodyFormat::Plain,
            phone: None,
            offline_delivery: OfflineDelivery::Store,
        }
    }
}

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// SIP address of record.
    pub sip_aor: Option<String>,
    /// IMPS UserID.
    pub imps_id: Option<String>,
    /// Limits and preferences.
    #[serde(flatten)]
    pub settings: UserSettings,
    /// Argon2id PHC string (IMPS Login); check with [`Store::verify_password`].
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// SIP digest realm and HA1 = MD5(username:realm:password) in hex.
    #[serde(skip)]
    pub sip_digest: Option<(String, String)>,
    /// When the user was added.
    #[serde(skip)]
    pub created_at: UnixTime,
}

impl User {
    /// The address to show: the SIP AOR, else the IMPS UserID.
    pub fn address(&self) -> &str {
        self.sip_aor
            .as_deref()
            .or(self.imps_id.as_deref())
            .unwrap_or_default()
    }

    /// Whether a password is set.
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// Which kind of address a string is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserAddress {
    /// `sip:user@host` or `sips:user@host`, scheme and host lower-cased.
    Sip(String),
    /// `wv:user@domain` or `wv:user`, lower-cased (IMPS UserIDs are case-insensitive).
    Imps(String),
}

impl UserAddress {
    /// Parses and normalises a user address; the error says what is wrong.
    pub fn parse(input: &str) -> Result<Self, StoreError> {
        let bad =
            |why: &str| StoreError::InvalidInput(format!("invalid user address {input:?}: {why}"));
        let s = input.trim();
        if s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\"".contains(c))
        {
            return Err(bad(
                "spaces, control characters, <, > and \" are not allowed",
            ));
        }
        let (scheme, rest) = s
            .split_once(':')
            .ok_or_else(|| bad("expected sip:user@host or wv:user@domain"))?;
        match scheme.to_ascii_lowercase().as_str() {
            scheme @ ("sip" | "sips") => {
                let (user, host) = rest
                    .rsplit_once('@')
                    .ok_or_else(|| bad("a SIP address of record is sip:user@host"))?;
                if user.is_empty() || host.is_empty() || host.contains(['@', ';', '?']) {
                    return Err(bad("a SIP address of record is sip:user@host"));
                }
                Ok(Self::Sip(format!(
                    "{scheme}:{user}@{}",
                    host.to_ascii_lowercase()
                )))
            }
            "wv" => {
                if rest.is_empty() || rest.starts_with('@') || rest.ends_with('@') {
                    return Err(bad("an IMPS UserID is wv:user@domain or wv:user"));
                }
                Ok(Self::Imps(format!("wv:{}", rest.to_ascii_lowercase())))
            }
            _ => Err(bad("expected sip:user@host or wv:user@domain")),
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Sip(s) | Self::Imps(s) => s,
        }
    }
}

/// The SIP digest HA1, MD5(`username:realm:password`) in lower-case hex (RFC 2617 §3.2.2.2).
pub fn sip_ha1(username: &str, realm: &str, password: &str) -> String {
    let digest = Md5::digest(format!("{username}:{realm}:{password}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest username of a SIP AOR: its user part (`alice` for `sip:alice@example.com`).
fn digest_username(aor: &str) -> &str {
    let rest = aor.split_once(':').map_or(aor, |(_, r)| r);
    rest.rsplit_once('@').map_or(rest, |(u, _)| u)
}

/// The credentials made from one password, computed outside any transaction
/// because Argon2 is slow on purpose.
struct Credentials {
    phc: String,
    ha1: Option<String>,
}

fn credentials(
    sip_aor: Option<&str>,
    password: &str,
    realm: &str,
) -> Result<Credentials, StoreError> {
    if password.is_empty() {
        return Err(StoreError::InvalidInput("the password is empty".into()));
    }
    let phc = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| StoreError::unavailable(format!("password hashing failed: {e}")))?
        .to_string();
    let ha1 = sip_aor.map(|aor| sip_ha1(digest_username(aor), realm, password));
    Ok(Credentials { phc, ha1 })
}

/// Whether `password` matches the argon2 PHC string `phc`; no store needed, so
/// the slow hash can run outside the store's lock. `None` checks against a
/// hash of a random password, so an unknown user costs the same time as a
/// wrong password and never matches.
pub fn verify_password(phc: Option<&str>, password: &str) -> bool {
    let known = phc.is_some();
    let phc = phc.unwrap_or_else(|| unknown_user_hash());
    let matches = PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    });
    known && matches
}

/// An argon2 hash of 128 random bits, made once.
fn unknown_user_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let mut secret = [0u8; 16];
        // Without OS randomness the fixed bytes still never match a user:
        // the result is discarded for unknown users.
        let _ = getrandom::fill(&mut secret);
        Argon2::default()
            .hash_password(&secret)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

const USER_COLUMNS: &str = "id, sip_aor, imps_id, display_name, password_hash, sip_realm, sip_ha1, \
     may_send_sms, rate_per_minute, daily_cap, anonymous, body_format, created_at, phone, \
     offline_delivery";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    let realm: Option<String> = r.get(5)?;
    let ha1: Option<String> = r.get(6)?;
    let body_format: String = r.get(11)?;
    let offline: String = r.get(14)?;
    Ok(User {
        id: UserId(r.get(0)?),
        sip_aor: r.get(1)?,
        imps_id: r.get(2)?,
        password_hash: r.get(4)?,
        sip_digest: realm.zip(ha1),
        settings: UserSettings {
            display_name: r.get(3)?,
            may_send_sms: r.get(7)?,
            rate_per_minute: r.get(8)?,
            daily_cap: r.get(9)?,
            anonymous: r.get(10)?,
            body_format: if body_format == "cpim" {
                BodyFormat::Cpim
            } else {
                BodyFormat::Plain
            },
            phone: r.get::<_, Option<String>>(13)?.map(Msisdn::from_db),
            offline_delivery: OfflineDelivery::parse(&offline).unwrap_or_default(),
        },
        created_at: UnixTime(r.get(12)?),
    })
}

/// Keeps (or with `None` forgets) the copy of the password the IMPS 4-way
/// Login needs; only for users who opted in (see [`Store::set_imps_digest`]).
fn set_imps_secret(
    tx: &Connection,
    user: UserId,
    password: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE users SET imps_secret = ?2 WHERE id = ?1")?
        .execute(params![user.0, password])?;
    Ok(())
}

/// Refuses settings that cannot hold: IMs as SMS with no phone to send them
/// to, or a phone another user (not `user`) has already.
fn check_settings(
    tx: &Connection,
    user: Option<UserId>,
    settings: &UserSettings,
) -> Result<(), StoreError> {
    let Some(phone) = &settings.phone else {
        if settings.offline_delivery == OfflineDelivery::Sms {
            return Err(StoreError::InvalidInput(
                "IMs as SMS while offline need the user's phone number".into(),
            ));
        }
        return Ok(());
    };
    let other: Option<i64> = tx
        .prepare_cached("SELECT id FROM users WHERE phone = ?1 AND id IS NOT ?2")?
        .query_row(params![phone.as_str(), user.map(|u| u.0)], |r| r.get(0))
        .optional()?;
    match other {
        Some(_) => Err(StoreError::Duplicate(format!(
            "phone {phone} (another user has it)"
        ))),
        None => Ok(()),
    }
}

/// The id of the user with this (normalised) address, inside a transaction.
pub(super) fn resolve(tx: &Connection, address: &str) -> Result<UserId, StoreError> {
    let a = UserAddress::parse(address)?;
    tx.prepare_cached("SELECT id FROM users WHERE sip_aor = ?1 OR imps_id = ?1")?
        .query_row([a.as_str()], |r| r.get(0))
        .optional()?
        .map(UserId)
        .ok_or_else(|| StoreError::UnknownUser(a.as_str().to_owned()))
}

impl Store {
    /// Adds a user known by one or both addresses, with an optional password
    /// (hashed for IMPS and turned into a SIP digest HA1 for `realm`).
    pub fn add_user(
        &mut self,
        sip_aor: Option<&str>,
        imps_id: Option<&str>,
        settings: &UserSettings,
        password: Option<&str>,
        realm: &str,
        now: UnixTime,
    ) -> Result<UserId, StoreError> {
        let sip = sip_aor.map(UserAddress::parse).transpose()?;
        let imps = imps_id.map(UserAddress::parse).transpose()?;
        match (&sip, &imps) {
            (None, None) => {
                return Err(StoreError::InvalidInput(
                    "a user needs a SIP address or an IMPS UserID".into(),
                ));
            }
            (Some(UserAddress::Imps(a)), _) | (_, Some(UserAddress::Sip(a))) => {
                return Err(StoreError::InvalidInput(format!(
                    "{a} is in the wrong field"
                )));
            }
            _ => {}
        }
        let sip = sip.as_ref().map(UserAddress::as_str);
        let imps = imps.as_ref().map(UserAddress::as_str);
        let creds = password.map(|p| credentials(sip, p, realm)).transpose()?;
        self.write(|tx| {
            for a in sip.iter().chain(imps.iter()) {
                if resolve(tx, a).is_ok() {
                    return Err(StoreError::Duplicate(format!("user {a}")));
                }
            }
            check_settings(tx, None, settings)?;
            let res = tx.execute(
                "INSERT INTO users (sip_aor, imps_id, display_name, password_hash, sip_realm, sip_ha1, \
                 may_send_sms, rate_per_minute, daily_cap, anonymous, body_format, created_at, \
                 phone, offline_delivery) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    sip,
                    imps,
                    settings.display_name,
                    creds.as_ref().map(|c| &c.phc),
                    creds.as_ref().and_then(|c| c.ha1.as_ref()).map(|_| realm),
                    creds.as_ref().and_then(|c| c.ha1.as_ref()),
                    settings.may_send_sms,
                    settings.rate_per_minute,
                    settings.daily_cap,
                    settings.anonymous,
                    settings.body_format.as_str(),
                    now.0,
                    settings.phone.as_ref().map(Msisdn::as_str),
                    settings.offline_delivery.as_str()
                ],
            );
            match res {
                Ok(_) => Ok(UserId(tx.last_insert_rowid())),
                Err(e) if is_unique_violation(&e) => {
                    Err(StoreError::Duplicate(format!("user {}", sip.or(imps).unwrap_or_default())))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    /// The user with this SIP AOR or IMPS UserID, if any.
    pub fn user_by_address(&self, address: &str) -> Result<Option<User>, StoreError> {
        let a = UserAddress::parse(address)?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE sip_aor = ?1 OR imps_id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([a.as_str()], user_from_row)
            .optional()?)
    }

    /// The user with this id, if any.
    pub fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([id.0], user_from_row)
            .optional()?)
    }

    /// The user whose own phone is `phone`, if any.
    pub fn user_by_phone(&self, phone: &Msisdn) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE phone = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([phone.as_str()], user_from_row)
            .optional()?)
    }

    /// Every user, by address.
    pub fn users(&self) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY coalesce(sip_aor, imps_id)");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], user_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Replaces a user's limits and preferences.
    pub fn update_user_settings(
        &mut self,
        address: &str,
        settings: &UserSettings,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            let id = resolve(tx, address)?;
            check_settings(tx, Some(id), settings)?;
            tx.execute(
                "UPDATE users SET display_name = ?2, may_send_sms = ?3, rate_per_minute = ?4, \
                 daily_cap = ?5, anonymous = ?6, body_format = ?7, phone = ?8, \
                 offline_delivery = ?9 WHERE id = ?1",
                params![
                    id.0,
                    settings.display_name,
                    settings.may_send_sms,
                    settings.rate_per_minute,
                    settings.daily_cap,
                    settings.anonymous,
                    settings.body_format.as_str(),
                    settings.phone.as_ref().map(Msisdn::as_str),
                    settings.offline_delivery.as_str()
                ],
            )?;
            Ok(())
        })
    }

    /// Sets a user's password: a new Argon2id hash and, for a SIP user, the HA1 for `realm`.
    pub fn set_password(
        &mut self,
        address: &str,
        password: &str,
        realm: &str,
    ) -> Result<(), StoreError> {
        let user = self
            .user_by_address(address)?
            .ok_or_else(|| StoreError::UnknownUser(address.to_owned()))?;
        let creds = credentials(user.sip_aor.as_deref(), password, realm)?;
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET password_hash = ?2, sip_realm = ?3, sip_ha1 = ?4 WHERE id = ?1",
                params![
                    user.id.0,
                    creds.phc,
                    creds.ha1.as_ref().map(|_| realm),
                    creds.ha1
                ],
            )?;
            if n == 0 {
                return Err(StoreError::UnknownUser(address.to_owned()));
            }
            // A user who opted in to the 4-way Login keeps it with the new password.
            tx.prepare_cached(
                "UPDATE users SET imps_secret = ?2 WHERE id = ?1 AND imps_secret IS NOT NULL",
            )?
            .execute(params![user.id.0, password])?;
            Ok(())
        })
    }

    /// Turns the IMPS 4-way (nonce/MD5 digest) Login on for an IMPS user, with
    /// their current `password`, or off (`None`). It digests nonce‖password, so
    /// the server must keep the password itself, readable to whoever reads the
    /// database: it is off unless asked for, per user.
    pub fn set_imps_digest(
        &mut self,
        address: &str,
        password: Option<&str>,
    ) -> Result<(), StoreError> {
        let user = self
            .user_by_address(address)?
            .ok_or_else(|| StoreError::UnknownUser(address.to_owned()))?;
        if user.imps_id.is_none() {
            return Err(StoreError::InvalidInput(format!(
                "{address} has no IMPS UserID"
            )));
        }
        if let Some(p) = password
            && !verify_password(user.password_hash.as_deref(), p)
        {
            return Err(StoreError::InvalidInput(format!(
                "that is not the password of {address}"
            )));
        }
        self.write(|tx| set_imps_secret(tx, user.id, password))
    }

    /// Whether the user opted in to the IMPS 4-way Login.
    pub fn has_imps_digest(&self, user: UserId) -> Result<bool, StoreError> {
        Ok(self.imps_secret(user)?.is_some())
    }

    /// The secret for the IMPS nonce/digest Login of a user who opted in (OMA
    /// IMPS digests nonce‖password, so it is the password).
    pub fn imps_secret(&self, user: UserId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT imps_secret FROM users WHERE id = ?1")?
            .query_row([user.0], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    }

    /// Whether `password` is the user's password (IMPS Login). A user without a
    /// password, or with a hash that does not parse, never matches.
    pub fn verify_password(&self, user: &User, password: &str) -> bool {
        verify_password(user.password_hash.as_deref(), password)
    }

    /// Removes a user with their contacts and conversations. Parts of their
    /// messages not sent yet are failed ("user removed") in the same transaction; history and
    /// charging records stay.
    pub fn remove_user(&mut self, address: &str, now: UnixTime) -> Result<(), StoreError> {
        self.write(|tx| {
            let id = resolve(tx, address)?;
            let open: Vec<i64> = tx
                .prepare(
                    "SELECT DISTINCT m.id FROM messages m JOIN parts p ON p.message_id = m.id \
                     WHERE m.user_id = ?1 AND p.state = 'queued'",
                )?
                .query_map([id.0], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for m in open {
                tx.execute(
                    "UPDATE parts SET state = 'failed', last_error = 'user removed' \
                     WHERE message_id = ?1 AND state = 'queued'",
                    [m],
                )?;
                super::outbox::refresh_message(tx, super::MessageId(m), now)?;
            }
            tx.execute("DELETE FROM users WHERE id = ?1", [id.0])?;
            Ok(())
        })
    }
}
