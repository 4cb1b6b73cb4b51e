DROP TRIGGER schedules_bump_state_version ON schedules;
DROP INDEX test_runs_one_per_fire;
ALTER TABLE test_runs
    DROP COLUMN schedule_note,
    DROP COLUMN scheduled_for,
    DROP COLUMN schedule_id;
DROP TABLE schedules;
DROP TABLE reservation_expiry_notices;
DROP TRIGGER environment_locks_webhooks ON environment_locks;
DROP FUNCTION webhook_environment_free();
DROP TRIGGER test_runs_webhooks ON test_runs;
DROP FUNCTION webhook_run_finished();
DROP FUNCTION webhook_outbox(TEXT, BIGINT);
DROP TABLE webhook_deliveries;
DROP SEQUENCE webhook_claims;
DROP TABLE webhooks;
