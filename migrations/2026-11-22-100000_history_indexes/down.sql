DROP INDEX run_cases_by_nodeid_pattern;
DROP INDEX test_runs_by_finished_at;
