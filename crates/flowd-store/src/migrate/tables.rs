//! The tables `flowd migrate-store` copies: the one place to list a new table.

/// Every table of the store that holds data, parents before the tables whose foreign keys name
/// them (the copy inserts in this order). A table added to the schema is added here, where its
/// parents are; the copy refuses a source with a table missing from this list, so none is left
/// behind unnoticed. Rows are read in `rowid` order (that is the order of a workflow's settings),
/// or by primary key in a table without a rowid ([`row_order`]).
/// Columns are not listed: the copy takes the source's, and carries each value as the target's
/// column type says.
pub const TABLES: &[&str] = &[
    "teams",
    "api_keys",
    "workflows",
    "workflow_versions",
    "workflow_settings",
    "executions",
    "audit_log",
    "idempotency_keys",
    // The rate limit of each workflow's failure alerts, and the alerts' deliveries.
    "alert_state",
    "alert_deliveries",
    // The queue of asynchronous calls; a call claimed on the source is claimed by no node of the
    // target, so the target's first reap of dead nodes queues it again.
    "async_calls",
    // The requests of hook executions, for replay (payloads copied as stored, sealed or not).
    "stored_requests",
    // The fingerprint of the key the copied secret values are sealed with (they are copied as
    // they are, ciphertext): the target's nodes must be given the same secret key.
    "secret_key_fingerprint",
];

/// The order a table's rows are read in: `rowid`, or the primary key of a table created
/// `WITHOUT ROWID` (the idempotency keys of hook calls, the alerts' rate limits, the stored
/// requests).
pub(super) fn row_order(table: &str) -> &'static str {
    match table {
        "idempotency_keys" => "workflow_id, key",
        "alert_state" => "workflow_id",
        "stored_requests" => "execution_id",
        _ => "rowid",
    }
}

/// Tables of the schema that are not data: the migrator's own (the target's schema is migrated
/// by this binary, not copied), and the state of the nodes that were running on the source — their
/// leases and the `max_concurrency` slots they held — which ends with them (the source's node is
/// stopped; the target's nodes register themselves).
pub(super) fn is_bookkeeping(table: &str) -> bool {
    table == "_sqlx_migrations"
        || table.starts_with("sqlite_")
        || table == "nodes"
        || table == "concurrency_slots"
}
