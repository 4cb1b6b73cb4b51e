SELECT record_listed_run(run_id) FROM runs_to_record;

DROP TRIGGER environment_run_stats_record_listed_runs ON environment_run_stats;
DROP TRIGGER test_period_stats_record_listed_runs ON test_period_stats;
DROP FUNCTION record_listed_runs();

DROP TRIGGER environment_locks_notify ON environment_locks;

CREATE OR REPLACE FUNCTION notify_environment_released() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('test_executor', 'released ' || OLD.environment_id);
    RETURN NULL;
END
$$;

CREATE TRIGGER environment_locks_notify
    AFTER DELETE ON environment_locks
    FOR EACH ROW EXECUTE FUNCTION notify_environment_released();

-- The trigger function as 2026-12-08-000000_environment_health wrote it.
CREATE OR REPLACE FUNCTION record_environment_run() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.finished_at IS NULL OR NEW.environment_id IS NULL
       OR NEW.status NOT IN ('success', 'failed', 'error') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.finished_at IS NOT NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO environment_run_stats AS s (period, starts_at, environment_id, runs, failed_runs)
    SELECT p.period, date_trunc(p.period, NEW.finished_at, 'UTC'), NEW.environment_id,
           1, (NEW.status <> 'success')::int
    FROM (VALUES ('day'), ('hour')) AS p (period)
    ORDER BY 1
    ON CONFLICT (period, starts_at, environment_id) DO UPDATE
        SET runs = s.runs + 1, failed_runs = s.failed_runs + excluded.failed_runs;
    INSERT INTO environment_streaks AS k (environment_id, failed_runs, last_run_id, last_finished_at)
    VALUES (NEW.environment_id, (NEW.status <> 'success')::int, NEW.id, NEW.finished_at)
    ON CONFLICT (environment_id) DO UPDATE
        SET failed_runs = CASE WHEN excluded.failed_runs = 0 THEN 0 ELSE k.failed_runs + 1 END,
            last_run_id = excluded.last_run_id,
            last_finished_at = excluded.last_finished_at
        WHERE (k.last_finished_at, k.last_run_id) < (excluded.last_finished_at, excluded.last_run_id);
    RETURN NULL;
END
$$;

DROP FUNCTION record_listed_run(BIGINT);
DROP FUNCTION count_environment_run(test_runs);
DROP TABLE runs_to_record;
