//! Errors of the snapshot crate.
//!
//! The one distinction that matters most: [`Error::NotFound`] means the store answered and
//! the object is not there; [`Error::Unreachable`] means the store could not be asked. A
//! caller must never treat the second like the first (docassemble did, and started empty,
//! then backed the empty state up over the good copy).

use std::fmt;
use std::io;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, with enough words to tell the operator what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store answered: the object does not exist.
    #[error("{what} not found in {store}")]
    NotFound {
        /// The store, as a URL without credentials.
        store: String,
        /// The object (key) that was asked for.
        what: String,
    },
    /// The store could not be reached (connection refused, DNS, timeout, missing volume),
    /// after the given number of attempts.
    #[error("{store} unreachable after {attempts} attempt(s) ({detail}): {hint}")]
    Unreachable {
        /// The store or endpoint, as a URL without credentials.
        store: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last low-level error.
        detail: String,
        /// What the operator should check.
        hint: String,
    },
    /// A local store's directory does not exist. Unlike [`Error::Unreachable`], waiting
    /// will not make it appear (a volume is mounted before the container starts), so
    /// callers fail at once instead of retrying.
    #[error("{store} does not exist ({detail}): {hint}")]
    Missing {
        /// The store, as a URL.
        store: String,
        /// The low-level error.
        detail: String,
        /// What the operator should do.
        hint: String,
    },
    /// The store answered with an error other than "not found" (access denied, no such
    /// bucket, a malformed answer).
    #[error("{store}: {detail}")]
    Store {
        /// The store, as a URL without credentials.
        store: String,
        /// What it said and what to do about it.
        detail: String,
    },
    /// A local I/O error (reading the data to back up, writing a restored file, a full disk).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Data read back does not match what the manifest recorded.
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    /// The store URL could not be understood.
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A snapshot's manifest or layout is missing or malformed, or an argument was invalid.
    #[error("{0}")]
    Invalid(String),
    /// bosun refuses a step that could lose data (the message says why and what to do).
    #[error("{0}")]
    Refused(String),
    /// A unit's `dump` or `load` command failed.
    #[error("{0}")]
    Command(String),
}

impl Error {
    /// True when the store answered that the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// True when the store could not be reached at all (a missing local store included):
    /// never to be read as "the store is empty".
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. } | Error::Missing { .. })
    }

    /// True when asking again later may succeed (the network, S3); false for a local
    /// store whose directory does not exist.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }

    /// True when data read back failed its checksum or size check.
    pub fn is_integrity(&self) -> bool {
        matches!(self, Error::Integrity(_))
    }

    /// Wraps an I/O error with what was being done. An I/O error that carries an
    /// [`IntegrityError`] (from an item stream) becomes [`Error::Integrity`], and one that
    /// says the disk is full gets a hint.
    pub fn io(context: impl Into<String>, source: io::Error) -> Error {
        // The integrity error may be wrapped (e.g. by the tar reader): look down the chain.
        let mut cur: Option<&(dyn std::error::Error + 'static)> = source
            .get_ref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(e) = cur {
            if let Some(integrity) = e.downcast_ref::<IntegrityError>() {
                return Error::Integrity(integrity.clone());
            }
            cur = e.source();
        }
        let mut context = context.into();
        if source.raw_os_error() == Some(libc::ENOSPC) {
            context.push_str(" (no space left on the device: free space or enlarge the volume)");
        }
        Error::Io { context, source }
    }
}

/// A checksum or size mismatch found while reading an item back.
#[derive(Debug, Clone)]
pub struct IntegrityError {
    /// The snapshot id.
    pub snapshot: String,
    /// The item name.
    pub item: String,
    /// What did not match.
    pub detail: String,
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "checksum mismatch in item '{}' of snapshot {}: {}; the stored copy is damaged: \
             restore an older snapshot (bosun snapshot restore ID)",
            self.item, self.snapshot, self.detail
        )
    }
}

impl std::error::Error for IntegrityError {}

impl From<IntegrityError> for io::Error {
    fn from(e: IntegrityError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}
