-- Environment health reads these aggregates instead of the case rows of
-- its window. They are kept in the transaction that finishes a run:
-- record_environment_results() for the cases, a trigger on test_runs for
-- the run itself (so runs that end without cases, like a lost executor,
-- count too). rebuild_environment_health() derives them from the raw rows.

-- Passes and failures (failed or error) of each test on each environment
-- per UTC hour and per UTC day; a window is read as case rows up to its
-- first whole hour, hourly rows up to its first midnight and daily rows
-- after that, as the test insights do.
CREATE TABLE environment_test_stats (
    period         TEXT        NOT NULL CHECK (period IN ('hour', 'day')),
    starts_at      TIMESTAMPTZ NOT NULL,
    environment_id INTEGER     NOT NULL,
    nodeid         TEXT        NOT NULL,
    passes         INTEGER     NOT NULL,
    failures       INTEGER     NOT NULL,
    PRIMARY KEY (period, starts_at, environment_id, nodeid)
);
-- Where else a failed test passed, without reading every test's rows.
CREATE INDEX environment_test_stats_by_nodeid
    ON environment_test_stats (nodeid, period, starts_at) WHERE passes > 0;

-- Finished runs (success, failed, error; a cancelled run says nothing
-- about its environment) and failed or errored ones, per environment, per
-- UTC hour and day.
CREATE TABLE environment_run_stats (
    period         TEXT        NOT NULL CHECK (period IN ('hour', 'day')),
    starts_at      TIMESTAMPTZ NOT NULL,
    environment_id INTEGER     NOT NULL,
    runs           INTEGER     NOT NULL,
    failed_runs    INTEGER     NOT NULL,
    PRIMARY KEY (period, starts_at, environment_id)
);

-- Each environment's latest finished run and how many failed or errored
-- runs in a row end with it (0 when it succeeded).
CREATE TABLE environment_streaks (
    environment_id   INTEGER     PRIMARY KEY,
    failed_runs      INTEGER     NOT NULL,
    last_run_id      BIGINT      NOT NULL,
    last_finished_at TIMESTAMPTZ NOT NULL
);

-- What the automatic maintenance rule did last, per environment: it acts
-- again only on a failed run newer than last_run_id.
CREATE TABLE environment_health_actions (
    environment_id INTEGER     PRIMARY KEY,
    last_run_id    BIGINT      NOT NULL,
    applied_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    reason         TEXT        NOT NULL
);

CREATE FUNCTION record_environment_run() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.finished_at IS NULL OR NEW.environment_id IS NULL
       OR NEW.status NOT IN ('success', 'failed', 'error') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.finished_at IS NOT NULL THEN
        RETURN NULL;
    END IF;
    -- Only this environment's rows: runs of one environment never overlap.
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

CREATE TRIGGER test_runs_record_environment_run
    AFTER INSERT OR UPDATE OF finished_at ON test_runs
    FOR EACH ROW EXECUTE FUNCTION record_environment_run();

CREATE FUNCTION record_environment_results(finished_run BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    finished test_runs%ROWTYPE;
BEGIN
    SELECT * INTO finished FROM test_runs WHERE id = finished_run;
    IF finished.finished_at IS NULL OR finished.environment_id IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO environment_test_stats AS s
        (period, starts_at, environment_id, nodeid, passes, failures)
    SELECT p.period, date_trunc(p.period, finished.finished_at, 'UTC'),
           finished.environment_id, c.nodeid,
           count(*) FILTER (WHERE c.outcome = 'passed'),
           count(*) FILTER (WHERE c.outcome IN ('failed', 'error'))
    FROM run_cases c CROSS JOIN (VALUES ('hour'), ('day')) AS p (period)
    WHERE c.run_id = finished_run AND c.outcome IN ('passed', 'failed', 'error')
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (period, starts_at, environment_id, nodeid) DO UPDATE
        SET passes = s.passes + excluded.passes,
            failures = s.failures + excluded.failures;
END
$$;

CREATE FUNCTION rebuild_environment_health() RETURNS void
LANGUAGE sql AS $$
    TRUNCATE environment_test_stats, environment_run_stats, environment_streaks;

    INSERT INTO environment_test_stats (period, starts_at, environment_id, nodeid, passes, failures)
    SELECT p.period, date_trunc(p.period, r.finished_at, 'UTC'), r.environment_id, c.nodeid,
           count(*) FILTER (WHERE c.outcome = 'passed'),
           count(*) FILTER (WHERE c.outcome IN ('failed', 'error'))
    FROM run_cases c
    JOIN test_runs r ON r.id = c.run_id
    CROSS JOIN (VALUES ('hour'), ('day')) AS p (period)
    WHERE r.finished_at IS NOT NULL AND r.environment_id IS NOT NULL
      AND c.outcome IN ('passed', 'failed', 'error')
    GROUP BY 1, 2, 3, 4;

    INSERT INTO environment_run_stats (period, starts_at, environment_id, runs, failed_runs)
    SELECT p.period, date_trunc(p.period, r.finished_at, 'UTC'), r.environment_id,
           count(*), count(*) FILTER (WHERE r.status <> 'success')
    FROM test_runs r CROSS JOIN (VALUES ('hour'), ('day')) AS p (period)
    WHERE r.finished_at IS NOT NULL AND r.environment_id IS NOT NULL
      AND r.status IN ('success', 'failed', 'error')
    GROUP BY 1, 2, 3;

    WITH ranked AS (
        SELECT environment_id, id, finished_at, status,
               row_number() OVER (PARTITION BY environment_id
                                  ORDER BY finished_at DESC, id DESC) AS newest
        FROM test_runs
        WHERE finished_at IS NOT NULL AND environment_id IS NOT NULL
          AND status IN ('success', 'failed', 'error')
    )
    INSERT INTO environment_streaks (environment_id, failed_runs, last_run_id, last_finished_at)
    SELECT environment_id,
           coalesce(min(newest) FILTER (WHERE status = 'success'), max(newest) + 1) - 1,
           max(id) FILTER (WHERE newest = 1),
           max(finished_at) FILTER (WHERE newest = 1)
    FROM ranked
    GROUP BY environment_id;
$$;

SELECT rebuild_environment_health();
