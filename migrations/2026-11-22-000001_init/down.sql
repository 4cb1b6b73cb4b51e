DROP TABLE environment_locks;
DROP SEQUENCE lease_fences;
DROP TABLE run_cases;
DROP TABLE run_log_chunks;
DROP TABLE test_runs;
DROP TABLE environments;
