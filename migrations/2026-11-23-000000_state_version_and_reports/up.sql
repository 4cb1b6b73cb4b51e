-- Cheap polling: a version of everything the polled GET endpoints show
-- (runs, their logs, cases and reports, environments and their busy rows),
-- which answers become ETags. A poll reads it first and, when the client
-- already has that version, answers 304 without running its query.
--
-- Why this shape:
-- * A transactional counter, not a sequence: a sequence moves before the
--   writer commits, so a poll could read the new number with the old data
--   and then answer 304 to that stale body until the next change. A counter
--   row moves in the same transaction as the data, so a reader that sees a
--   version also sees every change it counts.
-- * Bumped by a deferred constraint trigger, i.e. at commit: the counter's
--   row lock is then the last lock a writer takes and is held only for the
--   commit itself, so writers never deadlock over it and wait on each other
--   for microseconds at most.
-- * In 16 shards (chosen by the writer's backend pid), summed by readers:
--   writers on different connections rarely touch the same row. The sum
--   grows by at least one with every committed change, whatever the order
--   of commits, so equal sums mean nothing visible has changed.
-- * Once per transaction (a transaction-local flag), however many rows it
--   touches. Lease renewals and pgid updates of environment_locks change
--   nothing the API shows, so only inserts and deletes there count.
CREATE TABLE state_version (
    shard   SMALLINT PRIMARY KEY,
    changes BIGINT   NOT NULL DEFAULT 0
);
INSERT INTO state_version (shard) SELECT generate_series(0, 15);

CREATE FUNCTION bump_state_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('test_executor.state_bumped', true), '') = '' THEN
        UPDATE state_version SET changes = changes + 1 WHERE shard = pg_backend_pid() % 16;
        PERFORM set_config('test_executor.state_bumped', 'yes', true);
    END IF;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER test_runs_bump_state_version
    AFTER INSERT OR UPDATE OR DELETE ON test_runs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION bump_state_version();
CREATE CONSTRAINT TRIGGER environments_bump_state_version
    AFTER INSERT OR UPDATE OR DELETE ON environments
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION bump_state_version();
CREATE CONSTRAINT TRIGGER environment_locks_bump_state_version
    AFTER INSERT OR DELETE ON environment_locks
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION bump_state_version();
CREATE CONSTRAINT TRIGGER run_log_chunks_bump_state_version
    AFTER INSERT OR UPDATE OR DELETE ON run_log_chunks
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION bump_state_version();

-- A finished run's JUnit XML report as pytest wrote it, served as
-- /api/runs/{id}/junit.xml. Apart from test_runs, whose rows are rewritten
-- several times a second while a run goes on.
CREATE TABLE run_reports (
    run_id    BIGINT PRIMARY KEY REFERENCES test_runs (id) ON DELETE CASCADE,
    junit_xml TEXT   NOT NULL
);
