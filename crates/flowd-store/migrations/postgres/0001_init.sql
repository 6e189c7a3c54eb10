-- flowd's PostgreSQL schema: the same tables as SQLite's (its four migrations, as they end up).
-- Timestamps are BIGINT epoch milliseconds; ids are UUIDv7 text; enums are their lower-case names.
--
-- Ids, names and settings keys are compared and sorted byte-wise (COLLATE "C"), as SQLite does:
-- listings page by `id <` and a locale's collation would not order UUID text by time.
--
-- JSON columns are `json`, not `jsonb`: `json` keeps the document as written, so a settings
-- value comes back with its keys in the order the workflow's dict had them, and a string holding
-- U+0000 (which `jsonb` refuses) is stored. Nothing queries into these documents.
-- Text that user code produces (an execution's logs, the import check's output and error) is
-- BYTEA holding UTF-8: PostgreSQL's text types cannot hold U+0000, which a workflow can print.

CREATE TABLE teams (
    id          TEXT COLLATE "C" PRIMARY KEY,
    name        TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT COLLATE "C" PRIMARY KEY,
    team_id     TEXT COLLATE "C" NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    -- SHA-256 of the key, lower-case hex.
    key_hash    TEXT NOT NULL UNIQUE,
    is_admin    BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE INDEX api_keys_team ON api_keys (team_id);

CREATE TABLE workflows (
    id               TEXT COLLATE "C" PRIMARY KEY,
    team_id          TEXT COLLATE "C" NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name             TEXT COLLATE "C" NOT NULL,
    mode             TEXT NOT NULL,
    runtime          TEXT NOT NULL,
    -- The active version; 0: none yet.
    version          BIGINT NOT NULL,
    enabled          BOOLEAN NOT NULL,
    hook_token       TEXT NOT NULL,
    -- Array of strings.
    secret_keys      JSON NOT NULL DEFAULT '[]',
    -- Object of string to string: the Python processes' environment variables.
    env              JSON NOT NULL DEFAULT '{}',
    -- The schedule as the user gave it, JSON text.
    schedule         TEXT,
    next_fire_at     BIGINT,
    timeout_s        BIGINT NOT NULL,
    memory_mb        BIGINT NOT NULL,
    max_concurrency  BIGINT,
    isolation        TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (team_id, name)
);

-- The scheduler looks for the workflows due next.
CREATE INDEX workflows_next_fire_at ON workflows (next_fire_at) WHERE next_fire_at IS NOT NULL;

CREATE TABLE workflow_versions (
    workflow_id  TEXT COLLATE "C" NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version      BIGINT NOT NULL,
    code         TEXT NOT NULL,
    -- Array of requirement lines.
    requirements JSON NOT NULL DEFAULT '[]',
    state        TEXT NOT NULL,
    build_log    BYTEA NOT NULL,
    -- Why it failed, in one line (which may quote the import's exception): UTF-8.
    error        BYTEA,
    environment  TEXT,
    created_at   BIGINT NOT NULL,
    settled_at   BIGINT,
    PRIMARY KEY (workflow_id, version)
);

-- Builds to resume at start.
CREATE INDEX workflow_versions_building ON workflow_versions (state) WHERE state = 'building';

-- One row per settings key, so that a change set applies as upserts and deletes and concurrent
-- changes to different keys merge. `position` gives the keys back in the order they were first
-- stored (an upsert keeps its row), like a Python dict.
CREATE TABLE workflow_settings (
    workflow_id  TEXT COLLATE "C" NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    key          TEXT COLLATE "C" NOT NULL,
    value        JSON NOT NULL,
    position     BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (workflow_id, key)
);

CREATE TABLE executions (
    id                TEXT COLLATE "C" PRIMARY KEY,
    workflow_id       TEXT COLLATE "C" NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version           BIGINT NOT NULL,
    "trigger"         TEXT NOT NULL,
    status            TEXT NOT NULL,
    started_at        BIGINT NOT NULL,
    finished_at       BIGINT,
    duration_ms       BIGINT,
    response_status   BIGINT,
    -- Array of strings.
    warnings          JSON NOT NULL DEFAULT '[]',
    -- Object {"type", "message", "traceback"}, or NULL.
    error             JSON,
    logs              BYTEA NOT NULL,
    logs_truncated    BOOLEAN NOT NULL,
    -- Object {"added", "changed", "removed"}, or NULL.
    settings_changed  JSON,
    -- The fire time a scheduled run claims: one fire time runs once (index below).
    fire_at           BIGINT
);

-- Like SQLite's: one full index besides the key (listings by workflow), partial ones for the
-- fire-time uniqueness and the `running` lookups, so a finished catch execution writes two.
CREATE INDEX executions_workflow_id ON executions (workflow_id, id DESC);
CREATE UNIQUE INDEX executions_fire_time ON executions (workflow_id, fire_at)
    WHERE fire_at IS NOT NULL;
CREATE INDEX executions_running ON executions (workflow_id) WHERE status = 'running';

-- The executions' writes, applied in order in the caller's transaction: what `Store::submit`
-- commits, a batch of many executions' writes in one call (one round trip). Each element of
-- `writes` is either
--   {"execution": {<the columns of `executions`>}}: an upsert by id, or
--   {"settings": {"workflow_id": …, "upserts": [[key, value], …], "removed": [key, …]}}:
--     the key-level merge of a settings change (keys not named are left as they are).
-- What user code produced travels beside `writes`, in place of which `writes` has its 1-based
-- index (a value of `upserts` included): the execution's `logs` in `log_bytes`, its JSON
-- columns and the settings values in `documents` (JSON text). `writes` is JSONB, parsed once
-- rather than at each `->>`: it holds flowd's own values (ids, names, numbers), not user text,
-- which could hold U+0000 that JSONB refuses.
-- Errors are the database's own: 23505 (unique_violation) for a fire time already claimed,
-- 23503 (foreign_key_violation) for a workflow that does not exist.
CREATE FUNCTION flowd_apply_writes(writes JSONB, log_bytes BYTEA[], documents TEXT[])
    RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    w JSONB;
    e JSONB;
    s JSONB;
BEGIN
    FOR w IN SELECT value FROM jsonb_array_elements(writes) LOOP
        e := w -> 'execution';
        s := w -> 'settings';
        IF e IS NOT NULL THEN
            INSERT INTO executions (id, workflow_id, version, "trigger", status, started_at,
                finished_at, duration_ms, response_status, warnings, error, logs, logs_truncated,
                settings_changed, fire_at)
            VALUES (e ->> 'id', e ->> 'workflow_id', (e ->> 'version')::BIGINT,
                e ->> 'trigger', e ->> 'status', (e ->> 'started_at')::BIGINT,
                (e ->> 'finished_at')::BIGINT, (e ->> 'duration_ms')::BIGINT,
                (e ->> 'response_status')::BIGINT, documents[(e ->> 'warnings')::INTEGER]::JSON,
                documents[(e ->> 'error')::INTEGER]::JSON,
                log_bytes[(e ->> 'logs')::INTEGER], (e ->> 'logs_truncated')::BOOLEAN,
                documents[(e ->> 'settings_changed')::INTEGER]::JSON,
                (e ->> 'fire_at')::BIGINT)
            ON CONFLICT (id) DO UPDATE SET
                workflow_id = excluded.workflow_id,
                version = excluded.version,
                "trigger" = excluded."trigger",
                status = excluded.status,
                started_at = excluded.started_at,
                finished_at = excluded.finished_at,
                duration_ms = excluded.duration_ms,
                response_status = excluded.response_status,
                warnings = excluded.warnings,
                error = excluded.error,
                logs = excluded.logs,
                logs_truncated = excluded.logs_truncated,
                settings_changed = excluded.settings_changed,
                fire_at = excluded.fire_at;
        ELSIF s IS NOT NULL THEN
            -- A change that only removes keys would not notice a missing workflow otherwise.
            -- FOR KEY SHARE: the workflow cannot be deleted before this transaction ends.
            PERFORM 1 FROM workflows WHERE id = s ->> 'workflow_id' FOR KEY SHARE;
            IF NOT FOUND THEN
                RAISE foreign_key_violation USING MESSAGE = 'workflow '
                    || (s ->> 'workflow_id') || ' does not exist';
            END IF;
            IF jsonb_array_length(s -> 'upserts') > 0 THEN
                INSERT INTO workflow_settings (workflow_id, key, value)
                SELECT s ->> 'workflow_id', upsert ->> 0,
                    documents[(upsert ->> 1)::INTEGER]::JSON
                FROM jsonb_array_elements(s -> 'upserts') WITH ORDINALITY AS upserts (upsert, n)
                ORDER BY n
                ON CONFLICT (workflow_id, key) DO UPDATE SET value = excluded.value;
            END IF;
            IF jsonb_array_length(s -> 'removed') > 0 THEN
                DELETE FROM workflow_settings
                WHERE workflow_id = s ->> 'workflow_id'
                  AND key IN (SELECT jsonb_array_elements_text(s -> 'removed'));
            END IF;
        ELSE
            RAISE invalid_parameter_value USING MESSAGE = 'unknown store write: ' || w::TEXT;
        END IF;
    END LOOP;
END
$$;
