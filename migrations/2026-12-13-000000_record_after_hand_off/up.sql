-- What a finished run adds to insights and environment health is no part
-- of handing its environment on: a finish that claims the next run lists
-- the run here instead of recording it, and records it once the next
-- run's tests are under way, off the path between the two. Whoever
-- deletes a run's row records it, so each run is recorded exactly once;
-- rows a stopped instance left behind are recorded by a later sweep.
CREATE TABLE runs_to_record (
    run_id    BIGINT      PRIMARY KEY,
    listed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX runs_to_record_by_age ON runs_to_record (listed_at);

-- The per-run part of environment health, for the trigger and for a
-- listed run alike.
CREATE FUNCTION count_environment_run(finished test_runs) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF finished.finished_at IS NULL OR finished.environment_id IS NULL
       OR finished.status NOT IN ('success', 'failed', 'error') THEN
        RETURN;
    END IF;
    -- Only this environment's rows: runs of one environment never overlap.
    INSERT INTO environment_run_stats AS s (period, starts_at, environment_id, runs, failed_runs)
    SELECT p.period, date_trunc(p.period, finished.finished_at, 'UTC'), finished.environment_id,
           1, (finished.status <> 'success')::int
    FROM (VALUES ('day'), ('hour')) AS p (period)
    ORDER BY 1
    ON CONFLICT (period, starts_at, environment_id) DO UPDATE
        SET runs = s.runs + 1, failed_runs = s.failed_runs + excluded.failed_runs;
    INSERT INTO environment_streaks AS k (environment_id, failed_runs, last_run_id, last_finished_at)
    VALUES (finished.environment_id, (finished.status <> 'success')::int, finished.id,
            finished.finished_at)
    ON CONFLICT (environment_id) DO UPDATE
        SET failed_runs = CASE WHEN excluded.failed_runs = 0 THEN 0 ELSE k.failed_runs + 1 END,
            last_run_id = excluded.last_run_id,
            last_finished_at = excluded.last_finished_at
        WHERE (k.last_finished_at, k.last_run_id) < (excluded.last_finished_at, excluded.last_run_id);
END
$$;

-- A listed run is counted when it is recorded, not when it finishes.
CREATE OR REPLACE FUNCTION record_environment_run() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.finished_at IS NOT NULL
                             OR EXISTS (SELECT 1 FROM runs_to_record WHERE run_id = NEW.id)) THEN
        RETURN NULL;
    END IF;
    PERFORM count_environment_run(NEW);
    RETURN NULL;
END
$$;

-- Records a listed run and takes it off the list; false if it was not on
-- it (recorded already). A run deleted meanwhile only leaves the list.
-- Its callers (a running run's loop, the scheduler's pass) must not hang
-- on a row a stuck session holds: past the lock timeout it fails, the
-- run stays listed, and a later sweep records it.
CREATE FUNCTION record_listed_run(listed_run BIGINT) RETURNS boolean
LANGUAGE plpgsql SET lock_timeout = '200ms' AS $$
DECLARE
    finished test_runs%ROWTYPE;
BEGIN
    DELETE FROM runs_to_record WHERE run_id = listed_run;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT * INTO finished FROM test_runs WHERE id = listed_run;
    IF FOUND THEN
        PERFORM count_environment_run(finished);
        PERFORM record_test_results(listed_run);
        PERFORM record_environment_results(listed_run);
    END IF;
    RETURN true;
END
$$;

-- `released <id>` once the transaction that deleted the busy row commits,
-- and only if the environment is still free then: a finish that handed
-- the environment straight on to the next run wakes nobody for it.
DROP TRIGGER environment_locks_notify ON environment_locks;

CREATE OR REPLACE FUNCTION notify_environment_released() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM environment_locks WHERE environment_id = OLD.environment_id) THEN
        PERFORM pg_notify('test_executor', 'released ' || OLD.environment_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER environment_locks_notify
    AFTER DELETE ON environment_locks
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION notify_environment_released();

-- A rebuild derives its tables from every finished run, listed ones too:
-- before it empties them, the listed runs are recorded (in the other
-- rebuild's tables as well), so none of them is counted again later.
CREATE FUNCTION record_listed_runs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM record_listed_run(run_id) FROM runs_to_record ORDER BY run_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER test_period_stats_record_listed_runs
    BEFORE TRUNCATE ON test_period_stats
    FOR EACH STATEMENT EXECUTE FUNCTION record_listed_runs();

CREATE TRIGGER environment_run_stats_record_listed_runs
    BEFORE TRUNCATE ON environment_run_stats
    FOR EACH STATEMENT EXECUTE FUNCTION record_listed_runs();
