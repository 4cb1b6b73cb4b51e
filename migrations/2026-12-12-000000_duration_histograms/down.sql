-- The functions as 2026-11-24-000000_test_insights wrote them.
CREATE OR REPLACE FUNCTION record_test_results(finished_run BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    finished test_runs%ROWTYPE;
BEGIN
    SELECT * INTO finished FROM test_runs WHERE id = finished_run;
    IF finished.finished_at IS NULL THEN
        RETURN;
    END IF;
    -- Rows in key order: finishes on other environments share rows (the
    -- same test in the same hour), and one order of locking them rules
    -- out deadlocks.
    INSERT INTO test_period_stats AS s (period, starts_at, nodeid, failures, durations_ms)
    SELECT p.period, date_trunc(p.period, finished.finished_at, 'UTC'), c.nodeid,
           count(*) FILTER (WHERE c.outcome IN ('failed', 'error')),
           coalesce(string_agg(int4send(least(c.duration_ms, 2147483647)::int), '' ORDER BY c.id)
                    FILTER (WHERE c.outcome <> 'skipped'), '')
    FROM run_cases c CROSS JOIN (VALUES ('hour'), ('day')) AS p (period)
    WHERE c.run_id = finished_run
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (period, starts_at, nodeid) DO UPDATE
        SET failures = s.failures + excluded.failures,
            durations_ms = s.durations_ms || excluded.durations_ms;

    -- Runs on one environment never overlap, so nothing else writes this
    -- environment's rows meanwhile.
    WITH latest AS (
        SELECT DISTINCT ON (nodeid) nodeid, outcome = 'passed' AS passed
        FROM run_cases
        WHERE run_id = finished_run AND outcome IN ('passed', 'failed', 'error')
        ORDER BY nodeid, id DESC
    ), flips AS (
        INSERT INTO test_flips
            (nodeid, environment_id, run_id, flipped_at, previous_run_id, previous_at)
        SELECT l.nodeid, finished.environment_id, finished_run, finished.finished_at,
               r.run_id, r.finished_at
        FROM latest l
        JOIN test_last_results r
          ON r.environment_id = finished.environment_id AND r.nodeid = l.nodeid
        WHERE r.passed <> l.passed AND r.run_id < finished_run
    )
    INSERT INTO test_last_results AS r (environment_id, nodeid, passed, run_id, finished_at)
    SELECT finished.environment_id, nodeid, passed, finished_run, finished.finished_at
    FROM latest
    ORDER BY nodeid
    ON CONFLICT (environment_id, nodeid) DO UPDATE
        SET passed = excluded.passed, run_id = excluded.run_id,
            finished_at = excluded.finished_at
        WHERE r.run_id < excluded.run_id;
END
$$;

CREATE OR REPLACE FUNCTION rebuild_test_insights() RETURNS void
LANGUAGE sql AS $$
    TRUNCATE test_period_stats, test_last_results, test_flips;

    INSERT INTO test_period_stats (period, starts_at, nodeid, failures, durations_ms)
    SELECT p.period, date_trunc(p.period, r.finished_at, 'UTC'), c.nodeid,
           count(*) FILTER (WHERE c.outcome IN ('failed', 'error')),
           coalesce(string_agg(int4send(least(c.duration_ms, 2147483647)::int), '' ORDER BY c.id)
                    FILTER (WHERE c.outcome <> 'skipped'), '')
    FROM run_cases c
    JOIN test_runs r ON r.id = c.run_id
    CROSS JOIN (VALUES ('hour'), ('day')) AS p (period)
    WHERE r.finished_at IS NOT NULL
    GROUP BY 1, 2, 3;

    WITH latest AS (
        -- Each test's last pass or fail in each run.
        SELECT DISTINCT ON (c.run_id, c.nodeid)
               c.nodeid, r.environment_id, c.run_id, r.finished_at,
               c.outcome = 'passed' AS passed
        FROM run_cases c
        JOIN test_runs r ON r.id = c.run_id
        WHERE r.finished_at IS NOT NULL AND c.outcome IN ('passed', 'failed', 'error')
        ORDER BY c.run_id, c.nodeid, c.id DESC
    ), steps AS (
        SELECT *, lag(passed) OVER w AS previous_passed,
               lag(run_id) OVER w AS previous_run_id,
               lag(finished_at) OVER w AS previous_at,
               row_number() OVER (PARTITION BY nodeid, environment_id ORDER BY run_id DESC) AS newest
        FROM latest
        WINDOW w AS (PARTITION BY nodeid, environment_id ORDER BY run_id)
    ), flips AS (
        INSERT INTO test_flips
            (nodeid, environment_id, run_id, flipped_at, previous_run_id, previous_at)
        SELECT nodeid, environment_id, run_id, finished_at, previous_run_id, previous_at
        FROM steps
        WHERE passed <> previous_passed
    )
    INSERT INTO test_last_results (environment_id, nodeid, passed, run_id, finished_at)
    SELECT environment_id, nodeid, passed, run_id, finished_at
    FROM steps
    WHERE newest = 1;
$$;

DROP INDEX test_period_stats_by_nodeid;
ALTER TABLE test_period_stats DROP COLUMN histogram, DROP COLUMN first_run_id;
DROP FUNCTION merge_duration_histograms(BYTEA, BYTEA);
DROP FUNCTION duration_histogram(BYTEA);
DROP FUNCTION duration_bucket(INTEGER);
