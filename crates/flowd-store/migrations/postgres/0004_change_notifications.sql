-- Nodes sharing this database hear of each change to a workflow (created, updated, deleted) on
-- the channel `flowd_changes`, as `<change> <workflow id>`. A trigger publishes it, so it is sent
-- in the transaction that makes the change, and only if that transaction commits.
--
-- A claim of a fire time moves only `next_fire_at`: that publishes nothing (each scheduler reads
-- the fire times from the table). A settled version publishes `updated`: whether a workflow
-- without an active version is being built or failed is part of what a node keeps in memory.
-- Settings publish nothing: every run reads them at its start.

CREATE FUNCTION flowd_publish_workflow_change() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('flowd_changes', 'created ' || NEW.id);
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('flowd_changes', 'deleted ' || OLD.id);
    ELSIF (to_jsonb(OLD) - 'next_fire_at') IS DISTINCT FROM (to_jsonb(NEW) - 'next_fire_at') THEN
        PERFORM pg_notify('flowd_changes', 'updated ' || NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER workflows_publish_change
    AFTER INSERT OR UPDATE OR DELETE ON workflows
    FOR EACH ROW EXECUTE FUNCTION flowd_publish_workflow_change();

CREATE FUNCTION flowd_publish_version_settled() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('flowd_changes', 'updated ' || NEW.workflow_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER workflow_versions_publish_settled
    AFTER UPDATE OF state ON workflow_versions
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION flowd_publish_version_settled();
