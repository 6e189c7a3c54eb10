-- Signed and idempotent deliveries of hook calls (issue 18): as SQLite's 0008.
-- A workflow's `verify` object as JSON text (NULL: calls are not checked), and the header whose
-- value identifies a delivery instead of Idempotency-Key (lower-case; NULL: Idempotency-Key).
ALTER TABLE workflows ADD COLUMN verify TEXT;
ALTER TABLE workflows ADD COLUMN idempotency_header TEXT;

-- One row per idempotency key a workflow's callers sent: the primary key is what makes a
-- delivery run once, whichever node takes it. `response_*` are NULL while the execution that
-- claimed the key runs, and set in the commit of its record (`flowd_complete_idempotency_keys`,
-- called in the same statement as `flowd_apply_writes`).
CREATE TABLE idempotency_keys (
    workflow_id       TEXT COLLATE "C" NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    key               TEXT COLLATE "C" NOT NULL,
    -- Hex SHA-256 of the request the key came with.
    request_digest    TEXT NOT NULL,
    execution_id      TEXT COLLATE "C" NOT NULL,
    claimed_at        BIGINT NOT NULL,
    expires_at        BIGINT NOT NULL,
    response_status   BIGINT,
    -- JSON array of [name, value] pairs, in order.
    response_headers  JSON,
    response_body     BYTEA,
    PRIMARY KEY (workflow_id, key)
);

-- The sweep deletes expired keys.
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Stores the responses of executions that claimed keys. Each element of `completions` is
-- {"workflow_id", "key", "execution_id", "status", "headers": index in `documents`,
-- "body": index in `bodies`} (1-based indexes, as `flowd_apply_writes` has them); a key that is
-- no longer its execution's is left as it is.
CREATE FUNCTION flowd_complete_idempotency_keys(completions JSONB, documents TEXT[], bodies BYTEA[])
    RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    c JSONB;
BEGIN
    FOR c IN SELECT value FROM jsonb_array_elements(completions) LOOP
        UPDATE idempotency_keys SET
            response_status = (c ->> 'status')::BIGINT,
            response_headers = documents[(c ->> 'headers')::INTEGER]::JSON,
            response_body = bodies[(c ->> 'body')::INTEGER]
        WHERE workflow_id = c ->> 'workflow_id' AND key = c ->> 'key'
          AND execution_id = c ->> 'execution_id';
    END LOOP;
END
$$;
