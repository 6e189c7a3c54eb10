-- A workflow's own retention of its executions: object {"days", "max_executions"} (each
-- optional), or NULL for the server's.
ALTER TABLE workflows ADD COLUMN retention JSON;
