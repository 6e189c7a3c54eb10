-- The nodes (flowd processes) sharing this database. A node is alive while its lease lasts: it
-- renews `lease_expires_at` about three times per lease; once it has passed, another node reaps
-- it (its `running` executions become `interrupted`, its concurrency slots are freed, its row is
-- deleted), in one transaction that locks the row, so one node does it.
CREATE TABLE nodes (
    id                TEXT COLLATE "C" PRIMARY KEY,
    address           TEXT NOT NULL,
    host              TEXT NOT NULL,
    started_at        BIGINT NOT NULL,
    lease_expires_at  BIGINT NOT NULL
);

-- The node that wrote an execution. Every connection of a node's store sets `flowd.node_id` (a
-- startup parameter), so each insert is stamped by the default without the writes naming it. Set
-- after the column is added: rows written before nodes were recorded keep NULL (no node), and
-- those still `running` are reaped as no registered node's.
ALTER TABLE executions ADD COLUMN node_id TEXT COLLATE "C";
ALTER TABLE executions ALTER COLUMN node_id SET DEFAULT current_setting('flowd.node_id', TRUE);
-- What a reap looks up: a node's running executions (running rows only, so finished ones cost
-- nothing).
CREATE INDEX executions_running_node ON executions (node_id) WHERE status = 'running';

-- A workflow's `max_concurrency` slots taken across the cluster: slot numbers 0 … limit-1, one
-- row per running execution holding one, under its node's lease (the rows go with the node).
CREATE TABLE concurrency_slots (
    workflow_id  TEXT COLLATE "C" NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    slot         BIGINT NOT NULL,
    node_id      TEXT COLLATE "C" NOT NULL REFERENCES nodes (id) ON DELETE CASCADE,
    -- The execution holding it.
    holder       TEXT COLLATE "C" NOT NULL,
    acquired_at  BIGINT NOT NULL,
    PRIMARY KEY (workflow_id, slot)
);
CREATE INDEX concurrency_slots_node ON concurrency_slots (node_id);
