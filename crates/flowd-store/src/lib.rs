//! flowd's persistence: the [`Store`] trait and its backends (SQLite, embedded, by default).
//!
//! Everything above this crate talks to a `dyn Store`; nothing backend-specific leaks through the
//! trait, so that a PostgreSQL backend can be added beside SQLite. Timestamps are epoch
//! milliseconds (`i64`), ids are UUIDv7 strings (time-sortable), JSON values are stored as text.
//!
//! What every backend shares: the trait and what it takes and answers (`store`), the records
//! (`model`), the errors (`error`), the ticket a commit is awaited with (`commit`), sqlx's errors
//! as the store's (`sqlx_error`). Each backend is a module of its own that depends on these and
//! on no other backend (`sqlite`).

#![forbid(unsafe_code)]

mod commit;
mod error;
mod model;
mod sqlite;
mod sqlx_error;
mod store;

pub use commit::{CommitCompleter, CommitTicket};
pub use error::{BoxError, Result, StoreError};
pub use model::*;
pub use sqlite::SqliteStore;
pub use store::{ClaimOutcome, ExecutionQuery, FireAdvance, RunClaim, Store, StoreWrite};
