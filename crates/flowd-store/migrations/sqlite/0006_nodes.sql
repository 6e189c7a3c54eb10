-- The nodes (flowd processes) using this database: on SQLite one at a time (a node that starts
-- ends the lease of every other), with the same lease and reaping as on a shared database, so a
-- node's `running` executions become `interrupted` when the next one starts.
CREATE TABLE nodes (
    id                TEXT    PRIMARY KEY NOT NULL,
    address           TEXT    NOT NULL,
    host              TEXT    NOT NULL,
    started_at        INTEGER NOT NULL,
    lease_expires_at  INTEGER NOT NULL
);

-- The node that wrote an execution (NULL: written before nodes were recorded; those still
-- `running` are reaped as no registered node's).
ALTER TABLE executions ADD COLUMN node_id TEXT;
CREATE INDEX executions_running_node ON executions (node_id) WHERE status = 'running';

-- A workflow's `max_concurrency` slots taken (slot numbers 0 … limit-1), under the lease of the
-- node holding them. A single node keeps its gates in memory and does not use them; the table is
-- here so that the store behaves alike on every backend.
CREATE TABLE concurrency_slots (
    workflow_id  TEXT    NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    slot         INTEGER NOT NULL,
    node_id      TEXT    NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    -- The execution holding it.
    holder       TEXT    NOT NULL,
    acquired_at  INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, slot)
);
CREATE INDEX concurrency_slots_node ON concurrency_slots (node_id);
