-- Failure alerts (issue 19): a workflow's own `alerts` policy {"url", "on", "min_interval_s"}
-- (NULL: the server's default), and the workflow of its team run as its error handler (by name;
-- NULL: none).
ALTER TABLE workflows ADD COLUMN alerts JSON;
ALTER TABLE workflows ADD COLUMN on_failure TEXT;

-- The rate limit of a workflow's alerts, shared by every node: when one was last sent, how many
-- were suppressed since, and how many the last one sent reported (answered by the claim).
CREATE TABLE alert_state (
    workflow_id          TEXT COLLATE "C" PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    last_sent_at         BIGINT NOT NULL,
    suppressed           BIGINT NOT NULL,
    reported_suppressed  BIGINT NOT NULL
);

-- Each alert delivery, its attempts done. Deleted with its execution by the retention.
CREATE TABLE alert_deliveries (
    id            TEXT COLLATE "C" PRIMARY KEY,
    workflow_id   TEXT COLLATE "C" NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    execution_id  TEXT COLLATE "C" NOT NULL,
    at            BIGINT NOT NULL,
    status_code   INTEGER,
    error         TEXT,
    attempts      INTEGER NOT NULL,
    suppressed    BIGINT NOT NULL
);

CREATE INDEX alert_deliveries_workflow ON alert_deliveries (workflow_id, at DESC);
CREATE INDEX alert_deliveries_execution ON alert_deliveries (execution_id);
