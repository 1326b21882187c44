//! The SQLite store: users, subscribers, contacts, conversations, the outbox with
//! its parts, the inbox with reassembly, status reports and charging records.
//! Every query lives here; the rest of smsbridge sees a typed API. No clock: each
//! call that changes state takes `now` ([`UnixTime`]), so tests control time.
//!
//! # Durability and sharing
//!
//! A [`Store`] wraps one connection and is not shared between threads: open one
//! per worker thread (or use it from `spawn_blocking`). Several processes (the
//! daemon and the command line) may use one file at once: WAL, a 5 s busy
//! timeout, and every write is one `BEGIN IMMEDIATE` transaction, so when a call
//! returns `Ok` its change is on disk (`synchronous=FULL`, rule 3), and when it
//! returns `Err` nothing of it is. The file is created with mode 0600 (SQLite gives
//! the `-wal` and `-shm` files the same mode). The schema is versioned with
//! `PRAGMA user_version`; [`Store::open`] migrates older files and refuses newer ones.
//!
//! # Errors
//!
//! [`StoreError::is_temporary`]: the database is busy or locked now: answer
//! "try later" (SIP 503, IMPS 503). [`StoreError::is_unusable`]: it cannot be
//! written at all (its directory or file is not writable, the file system is
//! read-only, the disk is full): said as such, since waiting will not help.
//! [`StoreError::is_bad_input`]: unknown user, invalid number, duplicate…: say what
//! was wrong. Anything else is a bug or a corrupt file.
//!
//! # For the modem worker
//!
//! ```text
//! at start:      release_claims(imsi, now)           parts left "sending" by a crash
//!                                                    become outcome_unknown (rule 4)
//! loop:          claim_next_part(imsi, now) -> Option<ClaimedPart>
//!                  AT+CMGS ok     -> part_sent(part, mr, now)
//!                  refused        -> part_failed(part, error, Retry::At(t) | Retry::Never, now)
//!                  no final result-> part_outcome_unknown(part, now)
//! +CMTI/+CMT:    receive_pdu(imsi, bytes, now) -> Received     then AT+CMGD / AT+CNMA
//! +CDS:          atomically: receive_pdu -> StatusReport(id, report),
//!                apply_report(imsi, &report, now) -> Option<ReportOutcome>,
//!                mark_report_applied(id, matched); at start: unapplied_reports()
//! timer:         expire_reassembly(now, timeout), next_reassembly_deadline(timeout)
//! ```
//!
//! # For the bridge
//!
//! - Users: [`Store::user_by_address`], [`Store::user`], [`Store::verify_password`] (IMPS),
//!   [`User::sip_digest`] (SIP HA1), [`UserSettings`] limits with
//!   [`Store::messages_since`].
//! - IM → SMS: resolve the recipient with [`Store::contact_by_alias`] or
//!   [`normalise_msisdn`], check [`Store::is_blocked`] and
//!   [`Subscriber::opted_out_at`], take [`Store::next_concat_reference`], build the
//!   parts with `pdu::segment`, then [`Store::enqueue`] before answering 202.
//! - Delivery notifications: the [`ReportOutcome`] of `apply_status_report`
//!   (`newly_final` says when to send the IMDN or DeliveryReport), and the state
//!   returned by `part_failed`.
//! - Outcome unknown (rule 4) is a policy: [`Store::requeue_unknown`] (may
//!   duplicate) or [`Store::fail_unknown`].
//! - The report window: [`Store::end_overdue_reports`] ends parts whose status
//!   report did not come in time as delivery unknown (final); their
//!   notifications are then due ([`Store::due_notices`]).
//! - SMS → IM routing, in the bridge's order: [`Store::contact_owners`], else
//!   [`Store::last_writer`], else the configured fallback. Store and forward:
//!   [`Store::pending_inbound`], then `mark_inbound_delivered`, `_retry`,
//!   `_failed` or `_expired`. A "STOP": [`Store::set_opted_out`].
//! - Presence authorisation: a presentity's rules ([`Store::presence_rules`],
//!   [`Store::set_presence_rules`], [`Store::put_identity_rule`]) and watchers
//!   ([`Store::watchers`], [`Store::record_watcher`]), capped at
//!   [`MAX_PRESENCE_RULES`] and [`MAX_WATCHERS`].

mod admin;
mod authz;
mod cdr;
mod contacts;
mod error;
mod foreign;
mod inbox;
mod lists;
mod notices;
mod numbers;
mod outbox;
mod relay;
mod reports;
mod schema;
mod sending;
mod time;
mod users;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

pub use admin::Purged;
pub use authz::{MAX_PRESENCE_RULES, MAX_WATCHERS};
pub use cdr::{ChargingRecord, Direction};
pub use contacts::{
    Contact, ContactId, Conversation, DEFAULT_LIST, ImportError, NewContact, Subscriber,
};
pub use error::StoreError;
pub use foreign::{ForeignContact, ForeignMessage, IM_FOREIGN};
pub use inbox::{InboundId, InboundMessage, InboundState, Received, ReportId};
pub use lists::{IM_RELAY, ImContact, ListEntryRef};
pub use notices::{DueNotice, FailureCause};
pub use numbers::{Msisdn, NumberError, NumberProblem, normalise_msisdn};
pub use outbox::{
    ClaimedPart, FrontEnd, MessageId, MessageState, MessageSummary, NewMessage, PartId, Retry,
};
pub use relay::{
    DispositionOutcome, InboundKind, NoticeDisposition, NotifyFlags, RelayEnvelope, RelayedIm,
};
pub use reports::{REPORT_WINDOW_SECS, ReportOutcome};
pub use time::UnixTime;
pub use users::{
    BodyFormat, OfflineDelivery, User, UserAddress, UserId, UserSettings, sip_ha1, verify_password,
};

/// How long a call waits for another connection's write lock before it reports
/// the database as unavailable.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection (rusqlite's default is 16).
const STATEMENT_CACHE: usize = 256;

/// One connection to the database. See the module documentation.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    default_country_code: Option<String>,
}

impl Store {
    /// Opens (creating it with mode 0600 if missing) and migrates the database
    /// at `path` for reading and writing. A file or place that cannot be
    /// written is refused at once with why ([`StoreError::Unusable`]), not at
    /// the first write.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        create_private(path)?;
        let conn = Connection::open(path).map_err(|e| StoreError::from(e).at(path))?;
        if conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(StoreError::Unusable {
                action: "open",
                path: Some(path.to_owned()),
                why: why_read_only(path),
            });
        }
        Self::setup(conn).map_err(|e| e.at(path))
    }

    /// Opens the database at `path` for reading and writing as [`Store::open`]
    /// does, but only if it exists: for changes to rows that a new, empty
    /// database cannot have (a user to remove, a message to requeue), so a
    /// mistyped path is said, not made.
    pub fn open_existing_for_writing(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(StoreError::NoDatabase(path.to_owned()));
        }
        Self::open(path)
    }

    /// Opens the database at `path` for commands that only read: a missing file
    /// is [`StoreError::NoDatabase`] and is never created. A file that can be
    /// written is opened as [`Store::open`] does (so its `-wal` and `-shm` go
    /// away again when it is closed); one that cannot be written, or that sits
    /// where nothing can be written, is still read.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        use rusqlite::OpenFlags;
        let path = path.as_ref();
        if !path.exists() {
            return Err(StoreError::NoDatabase(path.to_owned()));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| StoreError::from(e).at(path))?;
        if !conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true) {
            return Self::setup(conn).map_err(|e| e.at(path));
        }
        let conn = match read_only_version(conn) {
            Ok((conn, version)) => Self::checked_read_only(conn, version)?,
            // A WAL file cannot be read without its `-shm`, which a reader
            // who may not write there cannot make: with no `-wal` either,
            // everything is in the file, and it is read as it is.
            Err(e) if !wal_of(path).exists() => {
                let uri = format!("file:{}?immutable=1", path.display());
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_URI
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = Connection::open_with_flags(uri, flags)
                    .map_err(|_| StoreError::from(e).at(path))?;
                let (conn, version) =
                    read_only_version(conn).map_err(|e| StoreError::from(e).at(path))?;
                Self::checked_read_only(conn, version)?
            }
            Err(e) => return Err(StoreError::from(e).at(path)),
        };
        Ok(Self {
            conn,
            default_country_code: None,
        })
    }

    /// A read-only connection whose schema this build reads as it is.
    fn checked_read_only(conn: Connection, version: i64) -> Result<Connection, StoreError> {
        if version == schema::VERSION {
            return Ok(conn);
        }
        if version > schema::VERSION {
            return Err(StoreError::NewerSchema {
                found: version,
                supported: schema::VERSION,
            });
        }
        Err(StoreError::Unusable {
            action: "read",
            path: conn.path().map(Into::into),
            why: format!(
                "it has schema version {version} and needs a migration to {}, which needs it writable",
                schema::VERSION
            ),
        })
    }

    /// A private database in memory, for tests.
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Reads the mode back: an in-memory database stays "memory".
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A plan that does not depend on the values bound: otherwise SQLite
        // (3.54) marks a statement with `col = ?` for re-preparing whenever
        // its bindings are cleared, which the statement cache does after
        // every use, and every cached statement would be compiled again on
        // each run (a tenth of the daemon's time under load). No query here
        // needs a bound value to pick a partial index.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        // Room for every statement the daemon runs (some 180), so that the
        // statements of one group commit never evict each other.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn,
            default_country_code: None,
        })
    }

    /// The country code used to read national numbers in received PDUs: senders
    /// of SMS and recipients of status reports (the configuration's
    /// `numbers.default_country_code`).
    pub fn set_default_country_code(&mut self, cc: Option<String>) {
        self.default_country_code = cc;
    }

    /// Runs `PRAGMA integrity_check`: `"ok"`, or SQLite's list of problems.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let lines: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(lines.join("\n"))
    }

    /// Runs `f` in one IMMEDIATE transaction: all of it is committed, or nothing.
    /// Inside [`Store::atomically`] it runs in a savepoint of that transaction
    /// instead, so the call is still all-or-nothing and the outer decision
    /// commits (or rolls back) everything at once.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.conn.is_autocommit() {
            let sp = self.conn.savepoint()?;
            let value = f(&sp)?;
            sp.commit()?;
            return Ok(value);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Runs `f` — reads, a decision and its writes — in one `BEGIN IMMEDIATE`
    /// transaction (DESIGN.md rule 8): nobody else writes between the snapshot
    /// `f` reads and the outcome it writes, so limits are exact, and a crash or
    /// an error leaves all of the outcome or none of it. Every store call made
    /// inside joins the transaction. A nested call joins the outer one.
    pub fn atomically<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.conn.is_autocommit() {
            return self.write_nested(f);
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        // An error or a panic inside `f` rolls back, so the connection is never
        // left inside a transaction that nobody will finish.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        let committed = match outcome {
            Ok(Ok(v)) => self
                .conn
                .execute_batch("COMMIT")
                .map(|()| v)
                .map_err(Into::into),
            Ok(Err(e)) => Err(e),
            Err(panic) => {
                self.rollback();
                std::panic::resume_unwind(panic)
            }
        };
        if committed.is_err() {
            self.rollback();
        }
        committed
    }

    fn rollback(&self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn write_nested<T>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.conn.execute_batch("SAVEPOINT nested")?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("RELEASE nested")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self
                    .conn
                    .execute_batch("ROLLBACK TO nested; RELEASE nested");
                Err(e)
            }
        }
    }
}

/// Creates the file with mode 0600 before SQLite opens it, so the umask cannot
/// make it readable to others. An existing file keeps the mode it has.
fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let e = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => e,
    };
    let dir = directory_of(path);
    let why = if e.raw_os_error() == Some(nix::libc::EROFS) {
        "read-only file system".to_owned()
    } else if e.kind() == std::io::ErrorKind::PermissionDenied {
        format!("the directory {} is not writable", dir.display())
    } else if e.kind() == std::io::ErrorKind::NotFound {
        format!("the directory {} does not exist", dir.display())
    } else {
        e.to_string()
    };
    Err(StoreError::Unusable {
        action: "create",
        path: Some(path.to_owned()),
        why,
    })
}

/// The schema version of a read-only connection, which is also the first read.
fn read_only_version(conn: Connection) -> Result<(Connection, i64), rusqlite::Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok((conn, version))
}

/// The `-wal` file next to a database file.
fn wal_of(path: &Path) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    name.into()
}

/// The directory a database file is in (`.` for a bare file name).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Why SQLite could open `path` only for reading, in words.
fn why_read_only(path: &Path) -> String {
    use nix::unistd::{AccessFlags, access};
    let rofs = nix::sys::statvfs::statvfs(path)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    if rofs {
        "read-only file system".to_owned()
    } else if access(path, AccessFlags::W_OK).is_err() {
        "the file is read-only".to_owned()
    } else if access(directory_of(path), AccessFlags::W_OK).is_err() {
        format!(
            "the directory {} is not writable",
            directory_of(path).display()
        )
    } else {
        "it can only be opened read-only".to_owned()
    }
}

/// Serialises a time as RFC 3339 (for JSON output).
fn rfc3339<S: serde::Serializer>(t: &UnixTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(t)
}

fn rfc3339_opt<S: serde::Serializer>(t: &Option<UnixTime>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}
