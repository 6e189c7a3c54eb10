-- Process environment variables of a workflow's Python processes: a JSON object of string to string.
ALTER TABLE workflows ADD COLUMN env TEXT NOT NULL DEFAULT '{}';
