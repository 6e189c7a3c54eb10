-- Destinations a workflow's processes alone may connect to although the egress policy refuses
-- them: a JSON array of exceptions as written (`10.0.0.0/8`, `db.internal:5432`).
ALTER TABLE workflows ADD COLUMN egress_allow TEXT NOT NULL DEFAULT '[]';
