-- The slowest tests rank by an exact median over their window, which
-- needs every duration, but only of the few tests that can make the list:
-- a histogram per row tells which. And the first run of a window, which
-- bounds the walk down each listed test's results, is read from the same
-- rows instead of from every run of the window.

-- The bucket of a duration: each millisecond below 16 ms, then 8 buckets
-- per doubling (from 2^e to 2^(e+1) ms, buckets 2^(e-3) ms wide), so a
-- bucket is at most 1/8 of its lower bound wide; 232 buckets up to 2^31
-- ms. A negative duration counts in bucket 0. Coarse on purpose: a bucket
-- only tells whether a test may rank among the slowest, and the fewer
-- buckets a row has durations in, the fewer bytes every window reads. The
-- backend computes the buckets' bounds from their numbers
-- (backend/src/db/histogram.rs). ln(ms + 0.5) keeps the floor of the
-- logarithm exact at powers of two.
CREATE FUNCTION duration_bucket(ms INTEGER) RETURNS INTEGER
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ms < 16 THEN greatest(ms, 0)
                ELSE (floor(ln(ms + 0.5::float8) / ln(2::float8))::int - 3) * 8
                     + (ms >> (floor(ln(ms + 0.5::float8) / ln(2::float8))::int - 3))
           END
$$;

-- The histogram of durations kept as test_period_stats keeps them (4-byte
-- big-endian integers): for each bucket with any, in bucket order, its
-- number as one byte and its count as a 4-byte big-endian integer. (A
-- histogram may also hold more than one entry of a bucket: its count is
-- their sum.)
CREATE FUNCTION duration_histogram(durations_ms BYTEA) RETURNS BYTEA
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(substr(int4send(bucket), 4) || int4send(n::int), ''::bytea
                               ORDER BY bucket), ''::bytea)
    FROM (
        SELECT duration_bucket((get_byte(durations_ms, i) << 24) | (get_byte(durations_ms, i + 1) << 16)
                               | (get_byte(durations_ms, i + 2) << 8) | get_byte(durations_ms, i + 3))
                 AS bucket,
               count(*) AS n
        FROM generate_series(0, length(durations_ms) - 4, 4) AS i
        GROUP BY 1
    ) AS buckets
$$;

-- Two histograms as one, one entry per bucket: the counts of a bucket in
-- both added up.
CREATE FUNCTION merge_duration_histograms(a BYTEA, b BYTEA) RETURNS BYTEA
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(string_agg(substr(int4send(bucket), 4) || int4send(n::int), ''::bytea
                               ORDER BY bucket), ''::bytea)
    FROM (
        SELECT get_byte(h, i) AS bucket,
               sum((get_byte(h, i + 1) << 24) | (get_byte(h, i + 2) << 16)
                   | (get_byte(h, i + 3) << 8) | get_byte(h, i + 4)) AS n
        FROM (VALUES (a), (b)) AS both_ (h), generate_series(0, length(h) - 5, 5) AS i
        GROUP BY 1
    ) AS buckets
$$;

-- histogram: duration_histogram(durations_ms), kept along with it.
-- first_run_id: no run with a result in the row has a lower id (the
-- lowest such id for rows written from now on; for older rows, the lowest
-- id of the runs that finished in the period).
ALTER TABLE test_period_stats
    ADD COLUMN histogram BYTEA NOT NULL DEFAULT '',
    ADD COLUMN first_run_id BIGINT NOT NULL DEFAULT 0;

-- The lowest run id of each hour and day, for the rows written before.
CREATE TEMPORARY TABLE period_first_runs (
    period       TEXT        NOT NULL,
    starts_at    TIMESTAMPTZ NOT NULL,
    first_run_id BIGINT      NOT NULL,
    PRIMARY KEY (period, starts_at)
) ON COMMIT DROP;
INSERT INTO period_first_runs
SELECT p.period, date_trunc(p.period, r.finished_at, 'UTC'), min(r.id)
FROM test_runs r CROSS JOIN (VALUES ('hour'), ('day')) AS p (period)
WHERE r.finished_at IS NOT NULL
GROUP BY 1, 2;
ANALYZE period_first_runs;

UPDATE test_period_stats s
SET histogram = duration_histogram(s.durations_ms),
    first_run_id = coalesce((SELECT f.first_run_id FROM period_first_runs f
                             WHERE f.period = s.period AND f.starts_at = s.starts_at), 0);

-- The rows of the few tests whose durations are read, test by test: on
-- the primary key, a list of node ids after a range of times is looked
-- for all along the range (about 25 ms for 50 tests over 30 days at a
-- million runs, 10 ms with this index).
CREATE INDEX test_period_stats_by_nodeid ON test_period_stats (nodeid, period, starts_at);

ALTER TABLE test_period_stats ALTER COLUMN histogram DROP DEFAULT,
    ALTER COLUMN first_run_id DROP DEFAULT;

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
    --
    -- A row's histogram takes the run's as more entries after its own,
    -- and is merged into one entry per bucket once it grows past 20
    -- entries: a merge per result would cost a finish of a thousand tests
    -- about 150 ms more; readers add up every entry of a bucket anyway.
    WITH cases AS (
        SELECT c.id, c.nodeid, c.outcome, least(c.duration_ms, 2147483647)::int AS ms
        FROM run_cases c
        WHERE c.run_id = finished_run
    ), tests AS (
        SELECT nodeid, count(*) FILTER (WHERE outcome IN ('failed', 'error')) AS failures,
               coalesce(string_agg(int4send(ms), '' ORDER BY id)
                        FILTER (WHERE outcome <> 'skipped'), '') AS durations_ms
        FROM cases
        GROUP BY nodeid
    ), histograms AS (
        SELECT nodeid, string_agg(substr(int4send(bucket), 4) || int4send(n::int), ''
                                  ORDER BY bucket) AS histogram
        FROM (
            SELECT nodeid, duration_bucket(ms) AS bucket, count(*) AS n
            FROM cases
            WHERE outcome <> 'skipped'
            GROUP BY 1, 2
        ) AS buckets
        GROUP BY nodeid
    )
    INSERT INTO test_period_stats AS s
        (period, starts_at, nodeid, failures, durations_ms, histogram, first_run_id)
    SELECT p.period, date_trunc(p.period, finished.finished_at, 'UTC'), t.nodeid, t.failures,
           t.durations_ms, coalesce(h.histogram, ''), finished_run
    FROM tests t
    LEFT JOIN histograms h ON h.nodeid = t.nodeid
    CROSS JOIN (VALUES ('hour'), ('day')) AS p (period)
    ORDER BY 1, 2, 3
    ON CONFLICT (period, starts_at, nodeid) DO UPDATE
        SET failures = s.failures + excluded.failures,
            durations_ms = s.durations_ms || excluded.durations_ms,
            histogram = CASE WHEN length(s.histogram) + length(excluded.histogram) > 100
                             THEN merge_duration_histograms(s.histogram, excluded.histogram)
                             ELSE s.histogram || excluded.histogram END,
            first_run_id = least(s.first_run_id, excluded.first_run_id);

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

    INSERT INTO test_period_stats
        (period, starts_at, nodeid, failures, durations_ms, histogram, first_run_id)
    SELECT period, starts_at, nodeid, failures, durations_ms,
           duration_histogram(durations_ms), first_run_id
    FROM (
        SELECT p.period, date_trunc(p.period, r.finished_at, 'UTC') AS starts_at, c.nodeid,
               count(*) FILTER (WHERE c.outcome IN ('failed', 'error')) AS failures,
               coalesce(string_agg(int4send(least(c.duration_ms, 2147483647)::int), '' ORDER BY c.id)
                        FILTER (WHERE c.outcome <> 'skipped'), '') AS durations_ms,
               min(c.run_id) AS first_run_id
        FROM run_cases c
        JOIN test_runs r ON r.id = c.run_id
        CROSS JOIN (VALUES ('hour'), ('day')) AS p (period)
        WHERE r.finished_at IS NOT NULL
        GROUP BY 1, 2, 3
    ) AS periods;

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
