-- API keys get a role (admin, developer, viewer), a prefix shown in listings, an optional expiry
-- and the time they were last used. `is_admin` stays, kept equal to `role = 'admin'`.
ALTER TABLE api_keys ADD COLUMN role TEXT NOT NULL DEFAULT 'developer';
UPDATE api_keys SET role = 'admin' WHERE is_admin;
ALTER TABLE api_keys ADD COLUMN prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE api_keys ADD COLUMN last_used_at INTEGER;

-- Every change made through the API, written in the transaction of the change. No foreign keys:
-- an entry outlives the key, team and workflow it names (their ids and names are copied).
CREATE TABLE audit_log (
    id             TEXT    PRIMARY KEY NOT NULL,
    at             INTEGER NOT NULL,
    actor_id       TEXT    NOT NULL,
    actor_name     TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    team_id        TEXT,
    team_name      TEXT,
    workflow_id    TEXT,
    workflow_name  TEXT,
    summary        TEXT    NOT NULL
);

-- The retention deletes by time; listings page by id (UUIDv7, time-ordered).
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_team ON audit_log (team_id, id DESC);
