-- flowd's SQLite schema. Timestamps are INTEGER epoch milliseconds, ids are UUIDv7 text,
-- JSON values are stored as text, enums as their lower-case names.
-- Foreign keys are enforced (the store turns `PRAGMA foreign_keys` on for every connection).

CREATE TABLE teams (
    id          TEXT    PRIMARY KEY NOT NULL,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT    PRIMARY KEY NOT NULL,
    team_id     TEXT    NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    -- SHA-256 of the key, lower-case hex.
    key_hash    TEXT    NOT NULL UNIQUE,
    is_admin    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE INDEX api_keys_team ON api_keys (team_id);

CREATE TABLE workflows (
    id               TEXT    PRIMARY KEY NOT NULL,
    team_id          TEXT    NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    mode             TEXT    NOT NULL,
    runtime          TEXT    NOT NULL,
    version          INTEGER NOT NULL,
    enabled          INTEGER NOT NULL,
    hook_token       TEXT    NOT NULL,
    -- JSON array of strings.
    secret_keys      TEXT    NOT NULL DEFAULT '[]',
    -- The schedule as the user gave it, JSON text.
    schedule         TEXT,
    next_fire_at     INTEGER,
    timeout_s        INTEGER NOT NULL,
    memory_mb        INTEGER NOT NULL,
    max_concurrency  INTEGER,
    isolation        TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    UNIQUE (team_id, name)
);

-- The scheduler looks for the workflows due next.
CREATE INDEX workflows_next_fire_at ON workflows (next_fire_at);

CREATE TABLE workflow_versions (
    workflow_id  TEXT    NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    code         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, version)
);

-- One row per settings key, so that a change set applies as upserts and deletes and concurrent
-- changes to different keys merge. A rowid table: `ORDER BY rowid` gives the keys back in
-- insertion order (an upsert keeps its row's place), like a Python dict.
CREATE TABLE workflow_settings (
    workflow_id  TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    -- JSON text.
    value        TEXT NOT NULL,
    PRIMARY KEY (workflow_id, key)
);

CREATE TABLE executions (
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
    -- The fire time a scheduled run claims: one fire time runs once. NULLs do not collide.
    fire_at           INTEGER,
    UNIQUE (workflow_id, fire_at)
);

CREATE INDEX executions_workflow_id ON executions (workflow_id, id DESC);
CREATE INDEX executions_status ON executions (status);
