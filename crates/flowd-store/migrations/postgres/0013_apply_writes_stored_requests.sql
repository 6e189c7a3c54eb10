-- flowd_apply_writes (0001) writing the executions' columns of retries (0012: attempt, retry_of)
-- and of replay (0010: replay_of, request_not_stored), and a third kind of element:
--   {"request": {"execution_id", "workflow_id", "stored_at", "size", "payload"}}: a stored
--     request, its payload's 1-based index in `log_bytes`.
CREATE OR REPLACE FUNCTION flowd_apply_writes(writes JSONB, log_bytes BYTEA[], documents TEXT[])
    RETURNS VOID LANGUAGE plpgsql AS $$
DECLARE
    w JSONB;
    e JSONB;
    s JSONB;
    r JSONB;
BEGIN
    FOR w IN SELECT value FROM jsonb_array_elements(writes) LOOP
        e := w -> 'execution';
        s := w -> 'settings';
        r := w -> 'request';
        IF e IS NOT NULL THEN
            INSERT INTO executions (id, workflow_id, version, "trigger", status, started_at,
                finished_at, duration_ms, response_status, warnings, error, logs, logs_truncated,
                settings_changed, fire_at, attempt, retry_of, replay_of, request_not_stored)
            VALUES (e ->> 'id', e ->> 'workflow_id', (e ->> 'version')::BIGINT,
                e ->> 'trigger', e ->> 'status', (e ->> 'started_at')::BIGINT,
                (e ->> 'finished_at')::BIGINT, (e ->> 'duration_ms')::BIGINT,
                (e ->> 'response_status')::BIGINT, documents[(e ->> 'warnings')::INTEGER]::JSON,
                documents[(e ->> 'error')::INTEGER]::JSON,
                log_bytes[(e ->> 'logs')::INTEGER], (e ->> 'logs_truncated')::BOOLEAN,
                documents[(e ->> 'settings_changed')::INTEGER]::JSON,
                (e ->> 'fire_at')::BIGINT, COALESCE((e ->> 'attempt')::BIGINT, 1),
                e ->> 'retry_of', e ->> 'replay_of',
                e ->> 'request_not_stored')
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
                retry_of = excluded.retry_of,
                replay_of = excluded.replay_of,
                request_not_stored = excluded.request_not_stored;
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
        ELSIF r IS NOT NULL THEN
            INSERT INTO stored_requests (execution_id, workflow_id, stored_at, size, payload)
            VALUES (r ->> 'execution_id', r ->> 'workflow_id', (r ->> 'stored_at')::BIGINT,
                (r ->> 'size')::BIGINT, log_bytes[(r ->> 'payload')::INTEGER])
            ON CONFLICT (execution_id) DO UPDATE SET payload = excluded.payload,
                size = excluded.size, stored_at = excluded.stored_at;
        ELSE
            RAISE invalid_parameter_value USING MESSAGE = 'unknown store write: ' || w::TEXT;
        END IF;
    END LOOP;
END
$$;
