-- Replay of stored requests (issue 19).
-- Whether a workflow's hook requests are stored (0: the data must not be kept).
ALTER TABLE workflows ADD COLUMN store_requests INTEGER NOT NULL DEFAULT 1;
-- A replay's original execution, and why a hook execution's request was not stored.
ALTER TABLE executions ADD COLUMN replay_of TEXT;
ALTER TABLE executions ADD COLUMN request_not_stored TEXT;

-- The request of a hook execution, written in the commit of its record and deleted with it
-- (retention, the workflow's deletion). `payload` is the encoded request (method, path, query
-- string, headers, body), sealed under the secret key when the store has one. WITHOUT ROWID: the
-- key is the table's one B-tree (a rowid table would add an index on it), so each hook call's
-- commit writes one more B-tree, not two; a large payload goes to overflow pages either way.
CREATE TABLE stored_requests (
    execution_id  TEXT    PRIMARY KEY NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    workflow_id   TEXT    NOT NULL,
    stored_at     INTEGER NOT NULL,
    -- Headers, query string and body, in bytes (what the size cap counts).
    size          INTEGER NOT NULL,
    payload       BLOB    NOT NULL
) WITHOUT ROWID;
