-- Every execution writes one row: each index on `executions` is one more B-tree page written per
-- call. Catch executions have no fire time and nearly all rows are finished, so the fire-time
-- uniqueness and the status lookups become partial indexes (rows outside them cost nothing), and
-- the status index, which only the `running` lookups used, is replaced by one on running rows.
-- A table-level UNIQUE cannot be dropped in SQLite: the table is rebuilt with the same columns.
CREATE TABLE executions_rebuilt (
    id                TEXT    PRIMARY KEY NOT NULL,
    workflow_id       TEXT    NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version           INTEGER NOT NULL,
    "trigger"         TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    started_at        INTEGER NOT NULL,
    finished_at       INTEGER,
    duration_ms       INTEGER,
    response_status   INTEGER,
    -- JSON array of strings.
    warnings          TEXT    NOT NULL DEFAULT '[]',
    -- JSON object {"type", "message", "traceback"}, or NULL.
    error             TEXT,
    logs              TEXT    NOT NULL DEFAULT '',
    logs_truncated    INTEGER NOT NULL DEFAULT 0,
    -- JSON object {"added", "changed", "removed"}, or NULL.
    settings_changed  TEXT,
    -- The fire time a scheduled run claims: one fire time runs once (index below).
    fire_at           INTEGER
);

INSERT INTO executions_rebuilt (id, workflow_id, version, "trigger", status, started_at,
    finished_at, duration_ms, response_status, warnings, error, logs, logs_truncated,
    settings_changed, fire_at)
SELECT id, workflow_id, version, "trigger", status, started_at, finished_at, duration_ms,
    response_status, warnings, error, logs, logs_truncated, settings_changed, fire_at
FROM executions;

DROP TABLE executions;
ALTER TABLE executions_rebuilt RENAME TO executions;

CREATE INDEX executions_workflow_id ON executions (workflow_id, id DESC);
CREATE UNIQUE INDEX executions_fire_time ON executions (workflow_id, fire_at)
    WHERE fire_at IS NOT NULL;
CREATE INDEX executions_running ON executions (workflow_id) WHERE status = 'running';
