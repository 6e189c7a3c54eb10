//! Domain types and the rules of the workflow contract (`CONTRACT.md`), free of IO.
//!
//! - [`alerts`]: failure alerts: a workflow's `alerts` policy and the summary an alert sends.
//! - [`access`]: the roles of API keys and the kinds of change the audit log records.
//! - [`value`]: [`PyValue`], the Python value tree exchanged with workflow code, and its
//!   [`marshal`] wire encoding.
//! - [`egress`]: exceptions to the egress policy (`10.0.0.0/8`, `db.internal:5432`).
//! - [`request`]: how an HTTP request to a hook URL becomes the `_request` dict.
//! - [`response`]: how a workflow's return value becomes the HTTP response.
//! - [`retention`]: how long executions are kept, and what falls out at a given time.
//! - [`retry`]: a workflow's retry policy and the backoff before each retry.
//! - [`schedule`]: pull-mode schedules (intervals, cron in a time zone) and their fire times.
//! - [`settings`]: settings snapshots, change sets, merging and masking of secrets.
//! - [`workflow`]: workflow names, modes, limits.
//! - [`verify`]: signature verification of hook calls (GitHub, Stripe, Slack, Standard Webhooks,
//!   any HMAC in a header).

#![forbid(unsafe_code)]

pub mod access;
pub mod alerts;
pub mod egress;
pub mod marshal;
pub mod request;
pub mod requirements;
pub mod response;
pub mod retention;
pub mod retry;
pub mod schedule;
pub mod settings;
pub mod value;
pub mod verify;
pub mod workflow;

pub use value::PyValue;
