//! What can go wrong in the store, sorted by blame: the database cannot be used
//! right now (busy or locked: the caller answers "try later"), it cannot be used
//! at all until someone fixes its place (a directory or file that is not
//! writable, a read-only file system, a full disk: said as such, never "try
//! later"), the input was bad (the caller says what was wrong), or the caller
//! asked for something the state does not allow.

use std::path::{Path, PathBuf};

use super::numbers::NumberError;

/// An error from the store.
///
/// Front ends map [`StoreError::is_temporary`] to "try later" (SIP 503 with
/// Retry-After, IMPS 503) and [`StoreError::is_bad_input`] to a client error. A
/// failed call never leaves a half-written change: every write is one transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be used now but will be again without anyone doing
    /// anything: busy or locked past the busy timeout, out of memory.
    #[error("database unavailable, try later: {detail}")]
    Unavailable {
        /// What SQLite or the OS said.
        detail: String,
    },
    /// The database cannot be used, and waiting will not change that: the file
    /// or its directory is not writable, the file system is read-only, the disk
    /// is full, an I/O error. Someone has to fix the place it lives in.
    #[error("cannot {action} the database{}: {why}", in_path(.path.as_deref()))]
    Unusable {
        /// `open`, `create` or `write`.
        action: &'static str,
        /// The file, when known.
        path: Option<PathBuf>,
        /// Why, in words.
        why: String,
    },
    /// A command that only reads found no database file (and made none).
    #[error("no database at {}", .0.display())]
    NoDatabase(PathBuf),
    /// The file was written by a newer smsbridge.
    #[error(
        "database schema version {found} is newer than this smsbridge understands (at most {supported}); upgrade smsbridge"
    )]
    NewerSchema {
        /// `PRAGMA user_version` in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// No user has this address.
    #[error("unknown user {0}")]
    UnknownUser(String),
    /// The user has no contact for this MSISDN.
    #[error("{user} has no contact {msisdn}")]
    UnknownContact {
        /// The user's address.
        user: String,
        /// The subscriber's MSISDN.
        msisdn: String,
    },
    /// No outbox message, part or inbound message has this id.
    #[error("no {what} with id {id}")]
    NotFound {
        /// "message", "part" or "inbound message".
        what: &'static str,
        /// The id asked for.
        id: i64,
    },
    /// A telephone number that is not a valid MSISDN.
    #[error(transparent)]
    InvalidNumber(#[from] NumberError),
    /// Other bad input: an address, alias or field the store refuses, with why.
    #[error("{0}")]
    InvalidInput(String),
    /// The row exists already.
    #[error("{0} already exists")]
    Duplicate(String),
    /// The call does not fit the row's state, e.g. `part_sent` for a part that is
    /// not being sent. A bug in the caller, not bad input from outside.
    #[error("{what} {id} is {state}, not {expected}")]
    WrongState {
        /// "part", "message" or "inbound message".
        what: &'static str,
        /// Its id.
        id: i64,
        /// The state it is in.
        state: String,
        /// The state the call needs.
        expected: &'static str,
    },
    /// A migration would leave the file inconsistent (a reference to a row that
    /// does not exist); nothing of it was committed.
    #[error("cannot migrate the database: {0}")]
    Migration(String),
    /// Anything else SQLite reported: a corrupt file, or a bug in a query.
    #[error("database error: {0}")]
    Database(rusqlite::Error),
}

impl StoreError {
    /// Whether the same call may succeed later without any change to its input
    /// or to the machine (busy, locked): the front end answers "try later" and
    /// keeps nothing. A database that cannot be written at all
    /// ([`StoreError::Unusable`]) is not temporary.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Whether the database itself cannot be used until someone fixes its
    /// place (permissions, a read-only or full file system) or creates it.
    pub fn is_unusable(&self) -> bool {
        matches!(self, Self::Unusable { .. } | Self::NoDatabase(_))
    }

    /// The same error, naming the database file it is about (for errors met
    /// while opening it).
    pub(super) fn at(self, file: &Path) -> Self {
        match self {
            Self::Unusable {
                action,
                path: None,
                why,
            } => Self::Unusable {
                action,
                path: Some(file.to_owned()),
                why,
            },
            other => other,
        }
    }

    /// Whether the input was at fault (unknown user, invalid number, duplicate, …):
    /// the caller says what was wrong and must not retry as is.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::UnknownUser(_)
                | Self::UnknownContact { .. }
                | Self::NotFound { .. }
                | Self::InvalidNumber(_)
                | Self::InvalidInput(_)
                | Self::Duplicate(_)
        )
    }

    pub(super) fn unavailable(detail: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            detail: detail.to_string(),
        }
    }
}

/// ` PATH` when the path is known.
fn in_path(path: Option<&Path>) -> String {
    path.map(|p| format!(" {}", p.display()))
        .unwrap_or_default()
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode as C;
        let unusable = |action, why: String| Self::Unusable {
            action,
            path: None,
            why,
        };
        match e.sqlite_error_code() {
            Some(
                C::DatabaseBusy | C::DatabaseLocked | C::OutOfMemory | C::FileLockingProtocolFailed,
            ) => Self::unavailable(e),
            Some(C::ReadOnly) => unusable(
                "write",
                "it is read-only (the file, its directory or the file system)".into(),
            ),
            Some(C::DiskFull) => unusable("write", "the disk is full".into()),
            Some(C::SystemIoFailure) => unusable("read or write", format!("I/O error ({e})")),
            Some(C::CannotOpen | C::PermissionDenied | C::NoLargeFileSupport) => {
                unusable("open", e.to_string())
            }
            _ => Self::Database(e),
        }
    }
}

/// Whether `e` is a UNIQUE or PRIMARY KEY constraint violation.
pub(super) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}
