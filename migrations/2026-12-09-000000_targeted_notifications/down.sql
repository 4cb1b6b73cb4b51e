CREATE OR REPLACE FUNCTION notify_run_change() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE OR REPLACE FUNCTION notify_environment_released() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('test_executor', 'released');
    RETURN NULL;
END
$$;
