-- Asynchronous hook calls: committed before their `202`, claimed by a node with a lease, and
-- kept once run with the response their status URL answers.
CREATE TABLE async_calls (
    id                TEXT    PRIMARY KEY,
    workflow_id       TEXT    NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    token             TEXT    NOT NULL UNIQUE,
    -- JSON array of [name, value]; dropped (NULL) once done.
    request_headers   TEXT,
    request_query     TEXT,
    request_body      BLOB,
    enqueued_at       INTEGER NOT NULL,
    -- queued, claimed or done.
    state             TEXT    NOT NULL,
    lease_until       INTEGER,
    -- The node that claimed it (nodes.id), while claimed.
    node_id           TEXT,
    response_status   INTEGER,
    -- JSON array of [name, value].
    response_headers  TEXT,
    response_body     BLOB,
    finished_at       INTEGER
);

-- The calls not done yet, per workflow, oldest first.
CREATE INDEX async_calls_pending ON async_calls (workflow_id, enqueued_at, id)
    WHERE state != 'done';

-- How a workflow's hook calls are answered: sync, or async (202 and a status URL).
ALTER TABLE workflows ADD COLUMN response TEXT NOT NULL DEFAULT 'sync';
