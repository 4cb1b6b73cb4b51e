-- Notifications name the environment they are about, so that an instance
-- claims on that environment alone instead of sweeping them all:
--   queued <environment id>    a run was queued for that environment
--   queued                     a run was queued for a pool
--   released <environment id>  that environment's busy row went
-- The other payloads are unchanged; a bare `released` (reservations,
-- maintenance, labels) still asks for a full sweep.
CREATE OR REPLACE FUNCTION notify_run_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status = 'queued' THEN
            PERFORM pg_notify('test_executor',
                              'queued' || coalesce(' ' || NEW.environment_id, ''));
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
    PERFORM pg_notify('test_executor', 'released ' || OLD.environment_id);
    RETURN NULL;
END
$$;
