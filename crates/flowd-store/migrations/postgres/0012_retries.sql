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

-- flowd_apply_writes writes attempt and retry_of from 0013 on (with the columns of replay).
