-- Signed and idempotent deliveries of hook calls (issue 18).
-- A workflow's `verify` object as JSON text (NULL: calls are not checked), and the header whose
-- value identifies a delivery instead of Idempotency-Key (lower-case; NULL: Idempotency-Key).
ALTER TABLE workflows ADD COLUMN verify TEXT;
ALTER TABLE workflows ADD COLUMN idempotency_header TEXT;

-- One row per idempotency key a workflow's callers sent: the primary key is what makes a
-- delivery run once, whichever node of a shared store takes it. `response_*` are NULL while the
-- execution that claimed the key runs, and set in the commit of its record.
CREATE TABLE idempotency_keys (
    workflow_id       TEXT    NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    key               TEXT    NOT NULL,
    -- Hex SHA-256 of the request the key came with.
    request_digest    TEXT    NOT NULL,
    execution_id      TEXT    NOT NULL,
    claimed_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    response_status   INTEGER,
    -- JSON array of [name, value] pairs, in order.
    response_headers  TEXT,
    response_body     BLOB,
    PRIMARY KEY (workflow_id, key)
) WITHOUT ROWID;

-- The sweep deletes expired keys.
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
