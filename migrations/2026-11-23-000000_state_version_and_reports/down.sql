DROP TABLE run_reports;
DROP TRIGGER run_log_chunks_bump_state_version ON run_log_chunks;
DROP TRIGGER environment_locks_bump_state_version ON environment_locks;
DROP TRIGGER environments_bump_state_version ON environments;
DROP TRIGGER test_runs_bump_state_version ON test_runs;
DROP FUNCTION bump_state_version();
DROP TABLE state_version;
