//! flowd's persistence: the [`Store`] trait and its backends: SQLite (embedded, the default) and
//! PostgreSQL (a server several nodes can share), chosen by a [`DatabaseUrl`].
//!
//! Everything above this crate talks to a `dyn Store`; nothing backend-specific leaks through the
//! trait. Timestamps are epoch milliseconds (`i64`), ids are UUIDv7 strings (time-sortable), JSON
//! values are stored as text (SQLite) or `json` (PostgreSQL).
//!
//! What every backend shares: the trait and what it takes and answers (`store`), the records
//! (`model`; the queue of asynchronous calls in `async_call`), the nodes sharing a store and what a dead one releases (`node`), the changes a
//! shared store publishes to its nodes (`changes`), the idempotency keys of hook calls
//! (`idempotency`), the errors (`error`), the ticket a commit is awaited with (`commit`), sqlx's
//! errors as the store's (`sqlx_error`), the refusal of a schema newer than the binary
//! (`schema_version`), the choice of a backend (`database_url`). Each backend is a module of its
//! own that depends on these and on no other backend (`sqlite`, `postgres`).

#![forbid(unsafe_code)]

mod async_call;
mod changes;
mod commit;
mod database_url;
mod error;
mod idempotency;
mod json_column;
pub mod metrics;
pub mod migrate;
mod model;
mod node;
mod postgres;
mod schema_version;
mod secrets;
mod sqlite;
mod sqlx_error;
mod store;
mod stored_request;

pub use async_call::{
    AsyncCallRecord, AsyncCallState, Enqueued, NextAttempt, QueueBound, QueuedRequest,
};
pub use changes::{ChangeFeed, StoreChange, WorkflowChange};
pub use commit::{CommitCompleter, CommitTicket};
pub use database_url::{DatabaseUrl, DatabaseUrlError};
pub use error::{BoxError, Result, StoreError};
pub use idempotency::{
    IdempotencyClaim, IdempotencyClaimOutcome, IdempotencyRecord, StoredResponse,
};
pub use model::*;
pub use node::{NodeRecord, ReapedNode};
pub use postgres::PostgresStore;
pub use secrets::{InvalidSecretKey, SecretKey};
pub use sqlite::backup::{backup_database, check_backup, BackupError};
pub use sqlite::SqliteStore;
pub use store::{
    ClaimOutcome, ExecutionQuery, FireAdvance, RunClaim, Store, StoreWrite, WorkflowRetention,
};
pub use stored_request::{request_size, RequestParts, RequestView, StoredRequest};
