-- Nodes hear of each change to who may do what — an API key revoked or changed, a team renamed or
-- deleted — on the channel `flowd_changes`, as `access <id>`, so that a key revoked on one node is
-- refused at once on every node (each keeps the keys it looked up in memory). Published by a
-- trigger, in the transaction that makes the change, and only if it commits. A key's last use
-- (written about once a minute) publishes nothing.

CREATE FUNCTION flowd_publish_access_change() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('flowd_changes', 'access ' || OLD.id);
    ELSIF (to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at') THEN
        PERFORM pg_notify('flowd_changes', 'access ' || NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER api_keys_publish_access_change
    AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION flowd_publish_access_change();

CREATE TRIGGER teams_publish_access_change
    AFTER UPDATE OR DELETE ON teams
    FOR EACH ROW EXECUTE FUNCTION flowd_publish_access_change();
