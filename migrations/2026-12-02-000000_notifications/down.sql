DROP TRIGGER environment_locks_notify ON environment_locks;
DROP FUNCTION notify_environment_released();
DROP TRIGGER test_runs_notify ON test_runs;
DROP FUNCTION notify_run_change();
