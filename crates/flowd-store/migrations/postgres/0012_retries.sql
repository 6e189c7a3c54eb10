-- Retries of asynchronous and scheduled executions.
-- A workflow's retry policy: {"max_attempts", "backoff_s", "on"}; NULL retries nothing.
ALTER TABLE workflows ADD COLUMN retry JSON;
-- Which attempt an execution is (1-based), and for a retry the id of the first attempt.
ALTER TABLE executions ADD COLUMN attempt BIGINT NOT NULL DEFAULT 1;
ALTER TABLE executions ADD COLUMN retry_of TEXT COLLATE "C";
-- A queued execution's current attempt: its execution id (a row's id is its first attempt's),
-- its number, what started the first attempt (catch: a hook call; pull: a scheduled run), and
-- the time before which it is not claimed (a retry's backoff).
ALTER TABLE async_calls ADD COLUMN execution_id TEXT COLLATE "C";
ALTER TABLE async_calls ADD COLUMN attempt BIGINT NOT NULL DEFAULT 1;
ALTER TABLE async_calls ADD COLUMN "trigger" TEXT NOT NULL DEFAULT 'catch';
ALTER TABLE async_calls ADD COLUMN not_before BIGINT;
UPDATE async_calls SET execution_id = id;

-- flowd_apply_writes (0001) writing an execution's attempt and retry_of too; an execution
-- without them is a first attempt.
CREATE OR REPLACE FUNCTION flowd_apply_writes(writes JSONB, log_bytes BYTEA[], documents TEXT[])
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
                settings_changed, fire_at, attempt, retry_of)
            VALUES (e ->> 'id', e ->> 'workflow_id', (e ->> 'version')::BIGINT,
                e ->> 'trigger', e ->> 'status', (e ->> 'started_at')::BIGINT,
                (e ->> 'finished_at')::BIGINT, (e ->> 'duration_ms')::BIGINT,
                (e ->> 'response_status')::BIGINT, documents[(e ->> 'warnings')::INTEGER]::JSON,
                documents[(e ->> 'error')::INTEGER]::JSON,
                log_bytes[(e ->> 'logs')::INTEGER], (e ->> 'logs_truncated')::BOOLEAN,
                documents[(e ->> 'settings_changed')::INTEGER]::JSON,
                (e ->> 'fire_at')::BIGINT, COALESCE((e ->> 'attempt')::BIGINT, 1),
                e ->> 'retry_of')
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
                fire_at = excluded.fire_at,
                attempt = excluded.attempt,
                retry_of = excluded.retry_of;
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
