ALTER TABLE test_runs DROP COLUMN case_count, DROP COLUMN completed, DROP COLUMN subtests_passed;
-- The older outcomes closest to them.
UPDATE run_cases SET outcome = 'skipped' WHERE outcome = 'xfailed';
UPDATE run_cases SET outcome = 'passed' WHERE outcome = 'xpassed';
ALTER TABLE run_cases DROP CONSTRAINT run_cases_outcome_check;
ALTER TABLE run_cases ADD CONSTRAINT run_cases_outcome_check
    CHECK (outcome IN ('passed', 'failed', 'skipped', 'error'));
