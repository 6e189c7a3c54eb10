-- A workflow's own retention of its executions: JSON object {"days", "max_executions"} (each
-- optional), or NULL for the server's.
ALTER TABLE workflows ADD COLUMN retention TEXT;

-- The fingerprint of the secret key the store's secret values (workflows' `env` values, settings
-- values) are sealed with: one row, none while they are kept in clear.
CREATE TABLE secret_key_fingerprint (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint  TEXT    NOT NULL
);
