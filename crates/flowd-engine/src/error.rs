//! The engine's errors: each has a stable machine-readable code that the HTTP layer maps to a
//! status in one table.

use flowd_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
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
    #[error("storage error: {0}")]
    Store(StoreError),
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

impl EngineError {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::NotFound(_) => "not_found",
            EngineError::Conflict(_) => "conflict",
            EngineError::InvalidCode { .. } => "invalid_code",
            EngineError::Invalid(_) => "invalid_request",
            EngineError::Busy(_) => "busy",
            EngineError::Runtime(_) => "runtime_unavailable",
            EngineError::Store(_) => "internal",
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
