//! The engine's errors: each has a stable machine-readable code that the HTTP layer maps to a
//! status in one table.

use flowd_store::{BoxError, StoreError};

use crate::settings_cell::NotSaved;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The caller's role does not allow this (a team's ids another team's key names are
    /// `NotFound`, never this).
    #[error("{0}")]
    Forbidden(String),
    /// Code refused at deploy: it does not compile, or has no fitting `workflow` function.
    #[error("{message}")]
    InvalidCode {
        message: String,
        line: u32,
        column: u32,
    },
    /// A field of a request is wrong; the message names it and says why.
    #[error("{0}")]
    Invalid(String),
    /// A run cannot start now (e.g. one is already running where runs must not overlap).
    #[error("{0}")]
    Busy(String),
    #[error("the Python runtime is unavailable: {0}")]
    Runtime(String),
    /// The store failed: [`StoreError::is_unavailable`] tells a condition that passes (disk
    /// full, I/O error, a lock held too long) from a fault.
    #[error("storage error: {0}")]
    Store(#[source] StoreError),
    /// Data read back from the store that cannot be used (it breaks a rule it was checked
    /// against when written): a fault of the server, not of the request. `what` says what is
    /// wrong with which data.
    #[error("{what}: {source}")]
    CorruptData {
        what: String,
        #[source]
        source: BoxError,
    },
    /// A replay of an execution that has no stored request.
    #[error(transparent)]
    NoStoredRequest(#[from] crate::replay::NoStoredRequest),
    /// The admin key file in the data dir could not be read or written.
    #[error("the admin key file {}: {source}", path.display())]
    AdminKeyFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<StoreError> for EngineError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => EngineError::Conflict(message),
            StoreError::NotFound(what) => EngineError::NotFound(what),
            other => EngineError::Store(other),
        }
    }
}

impl From<NotSaved> for EngineError {
    fn from(error: NotSaved) -> Self {
        match error {
            NotSaved::Store(error) => EngineError::from(error),
            lost @ NotSaved::BasisLost => {
                EngineError::Store(StoreError::Unavailable(Box::new(lost)))
            }
        }
    }
}

impl EngineError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::NotFound(_) => "not_found",
            EngineError::Conflict(_) => "conflict",
            EngineError::Forbidden(_) => "forbidden",
            EngineError::InvalidCode { .. } => "invalid_code",
            EngineError::Invalid(_) => "invalid_request",
            EngineError::Busy(_) => "busy",
            EngineError::NoStoredRequest(_) => "no_stored_request",
            EngineError::Runtime(_) => "runtime_unavailable",
            EngineError::Store(error) if error.is_unavailable() => "store_unavailable",
            EngineError::Store(_)
            | EngineError::CorruptData { .. }
            | EngineError::AdminKeyFile { .. } => "internal",
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn io_error() -> BoxError {
        Box::new(std::io::Error::other("disk full"))
    }

    #[test]
    fn an_unavailable_store_is_store_unavailable() {
        let error = EngineError::from(StoreError::Unavailable(io_error()));
        assert_eq!(error.code(), "store_unavailable");
    }

    #[test]
    fn a_stopped_store_is_store_unavailable() {
        assert_eq!(
            EngineError::from(StoreError::Stopped).code(),
            "store_unavailable"
        );
    }

    #[test]
    fn a_failing_backend_is_internal() {
        let error = EngineError::from(StoreError::Backend(io_error()));
        assert_eq!(error.code(), "internal");
    }

    #[test]
    fn corrupt_stored_data_is_internal() {
        let error = EngineError::from(StoreError::Corrupt("workflows.mode".into()));
        assert_eq!(error.code(), "internal");
    }

    #[test]
    fn stored_data_the_engine_cannot_use_is_internal_and_keeps_its_cause() {
        let error = EngineError::CorruptData {
            what: "the stored requirements".into(),
            source: io_error(),
        };
        assert_eq!(error.code(), "internal");
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("disk full"));
    }

    #[test]
    fn a_store_conflict_is_the_engines_conflict() {
        let error = EngineError::from(StoreError::Conflict("name taken".into()));
        assert_eq!(error.code(), "conflict");
    }

    #[test]
    fn a_store_failure_keeps_the_backends_error_as_its_source() {
        let error = EngineError::from(StoreError::Unavailable(io_error()));
        let store = std::error::Error::source(&error).expect("the store's error");
        let backend = store.source().map(ToString::to_string);
        assert_eq!(backend.as_deref(), Some("disk full"));
    }
}
