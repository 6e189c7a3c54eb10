-- Versions are built (their requirements installed into an environment) and their module imported
-- in the sandbox before they can become active. Versions stored before this migration were
-- active or superseded: `ready`.
ALTER TABLE workflow_versions ADD COLUMN requirements TEXT NOT NULL DEFAULT '[]';
ALTER TABLE workflow_versions ADD COLUMN state TEXT NOT NULL DEFAULT 'ready';
ALTER TABLE workflow_versions ADD COLUMN build_log TEXT NOT NULL DEFAULT '';
ALTER TABLE workflow_versions ADD COLUMN error TEXT;
ALTER TABLE workflow_versions ADD COLUMN environment TEXT;
ALTER TABLE workflow_versions ADD COLUMN settled_at INTEGER;

-- Builds to resume at start.
CREATE INDEX workflow_versions_building ON workflow_versions (state) WHERE state = 'building';
-- `workflows.version` = 0 means: no active version yet.
