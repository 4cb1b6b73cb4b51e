-- Results as pytest reports them while a run goes (its reporter plugin):
-- expected failures and unexpected passes are outcomes of their own, and a
-- run also counts its passed subtests and its finished tests.
ALTER TABLE run_cases DROP CONSTRAINT run_cases_outcome_check;
ALTER TABLE run_cases ADD CONSTRAINT run_cases_outcome_check
    CHECK (outcome IN ('passed', 'failed', 'skipped', 'error', 'xfailed', 'xpassed'));

ALTER TABLE test_runs
    ADD COLUMN subtests_passed INTEGER,
    ADD COLUMN completed       INTEGER;

-- Cases stored while a run goes: each write names how many it expects to
-- be there already (with the log's length), so that a retried write can
-- tell whether its first attempt committed.
ALTER TABLE test_runs ADD COLUMN case_count INTEGER NOT NULL DEFAULT 0;
UPDATE test_runs r SET case_count = c.n
FROM (SELECT run_id, count(*)::int AS n FROM run_cases GROUP BY run_id) c
WHERE c.run_id = r.id;
