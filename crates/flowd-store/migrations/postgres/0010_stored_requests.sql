-- Replay of stored requests (issue 19): as SQLite's 0011.
ALTER TABLE workflows ADD COLUMN store_requests BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE executions ADD COLUMN replay_of TEXT COLLATE "C";
ALTER TABLE executions ADD COLUMN request_not_stored TEXT;

-- The request of a hook execution, written in the commit of its record and deleted with it.
-- `payload` is the encoded request, sealed under the secret key when the store has one.
CREATE TABLE stored_requests (
    execution_id  TEXT COLLATE "C" PRIMARY KEY REFERENCES executions (id) ON DELETE CASCADE,
    workflow_id   TEXT COLLATE "C" NOT NULL,
    stored_at     BIGINT NOT NULL,
    size          BIGINT NOT NULL,
    payload       BYTEA NOT NULL
);

-- flowd_apply_writes writes the two new columns and the stored requests from 0013 on.
