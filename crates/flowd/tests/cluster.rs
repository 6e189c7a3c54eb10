//! Several real `flowd serve` processes on one PostgreSQL database, driven from outside as a load
//! balancer's clients would: one module per topic. These are slow end-to-end tests (their modules
//! are named `e2e_…`: `cargo test -- --skip e2e` skips them).

// The harness serves every topic; each uses only part of it.
#[allow(dead_code)]
#[path = "cluster/support.rs"]
mod support;

#[path = "cluster/e2e_schedules.rs"]
mod e2e_schedules;

#[path = "cluster/e2e_max_concurrency.rs"]
mod e2e_max_concurrency;

#[path = "cluster/e2e_dead_nodes.rs"]
mod e2e_dead_nodes;

#[path = "cluster/e2e_changes.rs"]
mod e2e_changes;

#[path = "cluster/e2e_settings.rs"]
mod e2e_settings;

#[path = "cluster/e2e_keys.rs"]
mod e2e_keys;
