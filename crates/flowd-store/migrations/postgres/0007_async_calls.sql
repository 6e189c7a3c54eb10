-- Asynchronous hook calls: committed before their `202`, claimed by a node with a lease
-- (`FOR UPDATE SKIP LOCKED`), and kept once run with the response their status URL answers.
CREATE TABLE async_calls (
    id                TEXT COLLATE "C" PRIMARY KEY,
    workflow_id       TEXT COLLATE "C" NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    token             TEXT COLLATE "C" NOT NULL UNIQUE,
    -- Array of [name, value]; dropped (NULL) once done.
    request_headers   JSON,
    request_query     TEXT,
    request_body      BYTEA,
    enqueued_at       BIGINT NOT NULL,
    -- queued, claimed or done.
    state             TEXT NOT NULL,
    lease_until       BIGINT,
    -- The node that claimed it (nodes.id), while claimed.
    node_id           TEXT COLLATE "C",
    response_status   BIGINT,
    -- Array of [name, value].
    response_headers  JSON,
    response_body     BYTEA,
    finished_at       BIGINT
);

-- The calls not done yet, per workflow, oldest first.
CREATE INDEX async_calls_pending ON async_calls (workflow_id, enqueued_at, id)
    WHERE state <> 'done';

-- How a workflow's hook calls are answered: sync, or async (202 and a status URL).
ALTER TABLE workflows ADD COLUMN response TEXT NOT NULL DEFAULT 'sync';
