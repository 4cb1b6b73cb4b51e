DROP TRIGGER test_runs_record_environment_run ON test_runs;
DROP FUNCTION rebuild_environment_health();
DROP FUNCTION record_environment_results(BIGINT);
DROP FUNCTION record_environment_run();
DROP TABLE environment_health_actions;
DROP TABLE environment_streaks;
DROP TABLE environment_run_stats;
DROP TABLE environment_test_stats;
