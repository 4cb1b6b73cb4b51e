DROP TRIGGER test_runs_count_truncated ON test_runs;
DROP TRIGGER test_runs_count_deleted ON test_runs;
DROP TRIGGER test_runs_count_inserted ON test_runs;
DROP FUNCTION count_no_runs();
DROP FUNCTION count_changed_runs();
DROP TABLE run_counts;
