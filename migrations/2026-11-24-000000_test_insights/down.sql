DROP FUNCTION rebuild_test_insights();
DROP FUNCTION record_test_results(BIGINT);
DROP INDEX run_cases_failures_by_nodeid;
DROP INDEX test_runs_by_finished_at;
CREATE INDEX test_runs_by_finished_at ON test_runs (finished_at) WHERE finished_at IS NOT NULL;
DROP TABLE test_flips;
DROP TABLE test_last_results;
DROP TABLE test_period_stats;
