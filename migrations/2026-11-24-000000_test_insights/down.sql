DROP FUNCTION rebuild_test_insights();
DROP FUNCTION record_test_results(BIGINT);
DROP INDEX run_cases_failures_by_nodeid;
DROP TABLE test_flips;
DROP TABLE test_last_results;
DROP TABLE test_period_stats;
