-- Instances hear of each other's changes at once through NOTIFY on the
-- channel `test_executor`, instead of finding them at their next tick:
--   queued         a run was queued: claim it if its environment is free
--   finished <id>  run <id> ended: whoever waits for it may answer, and its
--                  environment may be free for the next run
--   cancel <id>    someone asked to cancel running run <id>: its holder
--                  stops it now
--   released       an environment's busy row went: the next run may start
-- Notifications are sent at commit, identical ones of one transaction
-- once. A listener that misses some (it was reconnecting) still has the
-- scheduler's safety tick.
CREATE FUNCTION notify_run_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status = 'queued' THEN
            PERFORM pg_notify('test_executor', 'queued');
        END IF;
    ELSIF NEW.status IS DISTINCT FROM OLD.status
          AND NEW.status NOT IN ('queued', 'running') THEN
        PERFORM pg_notify('test_executor', 'finished ' || NEW.id);
    ELSIF NEW.cancel_requested AND NOT OLD.cancel_requested AND NEW.status = 'running' THEN
        PERFORM pg_notify('test_executor', 'cancel ' || NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER test_runs_notify
    AFTER INSERT OR UPDATE OF status, cancel_requested ON test_runs
    FOR EACH ROW EXECUTE FUNCTION notify_run_change();

CREATE FUNCTION notify_environment_released() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('test_executor', 'released');
    RETURN NULL;
END
$$;

CREATE TRIGGER environment_locks_notify
    AFTER DELETE ON environment_locks
    FOR EACH ROW EXECUTE FUNCTION notify_environment_released();
