//! What can go wrong in the store, sorted by blame: the database cannot be used
//! right now (the caller answers "try later"), the input was bad (the caller says
//! what was wrong), or the caller asked for something the state does not allow.

use super::numbers::NumberError;

/// An error from the store.
///
/// Front ends map [`StoreError::is_temporary`] to "try later" (SIP 503 with
/// Retry-After, IMPS 503) and [`StoreError::is_bad_input`] to a client error. A
/// failed call never leaves a half-written change: every write is one transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database cannot be used now: read-only, disk full, busy or locked past
    /// the busy timeout, an I/O error, or the file cannot be opened.
    #[error("database unavailable, try later: {detail}")]
    Unavailable {
        /// What SQLite or the OS said.
        detail: String,
    },
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
    /// Whether the same call may succeed later without any change to its input:
    /// the front end answers "try later" and keeps nothing.
    pub fn is_temporary(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
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

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode as C;
        match e.sqlite_error_code() {
            Some(
                C::DatabaseBusy
                | C::DatabaseLocked
                | C::ReadOnly
                | C::DiskFull
                | C::SystemIoFailure
                | C::CannotOpen
                | C::PermissionDenied
                | C::OutOfMemory
                | C::FileLockingProtocolFailed
                | C::NoLargeFileSupport,
            ) => Self::unavailable(e),
            _ => Self::Database(e),
        }
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        Self::unavailable(e)
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
