DROP INDEX test_runs_by_paths;
DROP TRIGGER environments_notify ON environments;
DROP FUNCTION notify_environment_change();
DROP TABLE reservations;
DROP FUNCTION notify_reservation_change();
ALTER TABLE test_runs DROP COLUMN hold_on_failure_minutes;
ALTER TABLE environments
    DROP COLUMN labels,
    DROP COLUMN maintenance_reason,
    DROP COLUMN maintenance_since,
    DROP COLUMN maintenance_until;
