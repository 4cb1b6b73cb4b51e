-- How many runs there are, kept as runs are inserted and deleted, so that
-- the run list's total costs sixteen rows instead of a count over the
-- whole table (which grows with the table, and is paid again at every
-- change while runs come and go). Shards as in state_version: concurrent
-- inserts of different sessions seldom wait for one another.
CREATE TABLE run_counts (
    shard SMALLINT PRIMARY KEY,
    runs  BIGINT   NOT NULL DEFAULT 0
);

-- One function for both: each trigger names its transition table
-- `changed`, and the operation says which way the count goes.
CREATE FUNCTION count_changed_runs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE run_counts
    SET runs = runs + CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END * (SELECT count(*) FROM changed)
    WHERE shard = pg_backend_pid() % 16;
    RETURN NULL;
END
$$;

CREATE FUNCTION count_no_runs() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE run_counts SET runs = 0;
    RETURN NULL;
END
$$;

-- The triggers first: from here on no other session inserts or deletes a
-- run until this commits, so the count below is exact.
CREATE TRIGGER test_runs_count_inserted AFTER INSERT ON test_runs
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION count_changed_runs();
CREATE TRIGGER test_runs_count_deleted AFTER DELETE ON test_runs
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION count_changed_runs();
CREATE TRIGGER test_runs_count_truncated AFTER TRUNCATE ON test_runs
    FOR EACH STATEMENT EXECUTE FUNCTION count_no_runs();

INSERT INTO run_counts (shard, runs)
SELECT shard, CASE WHEN shard = 0 THEN (SELECT count(*) FROM test_runs) ELSE 0 END
FROM generate_series(0, 15) AS shard;
