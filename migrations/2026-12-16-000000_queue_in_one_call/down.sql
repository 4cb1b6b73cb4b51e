CREATE OR REPLACE FUNCTION webhook_outbox(event_name TEXT, subject BIGINT) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO webhook_deliveries (webhook_id, event, subject_id)
    SELECT id, event_name, subject FROM webhooks WHERE event_name = ANY (events);
$$;

DROP TRIGGER test_runs_record_environment_run ON test_runs;
CREATE TRIGGER test_runs_record_environment_run
    AFTER INSERT OR UPDATE OF finished_at ON test_runs
    FOR EACH ROW EXECUTE FUNCTION record_environment_run();

DROP TRIGGER test_runs_webhooks ON test_runs;
CREATE TRIGGER test_runs_webhooks
    AFTER UPDATE OF status ON test_runs
    FOR EACH ROW EXECUTE FUNCTION webhook_run_finished();

DROP TRIGGER test_runs_notify ON test_runs;
DROP TRIGGER test_runs_notify_queued ON test_runs;
CREATE TRIGGER test_runs_notify
    AFTER INSERT OR UPDATE OF status, cancel_requested ON test_runs
    FOR EACH ROW EXECUTE FUNCTION notify_run_change();


DROP FUNCTION queue_run_on;

CREATE OR REPLACE FUNCTION start_queued_run(
    on_environment INTEGER, queued_run BIGINT, claimer TEXT, renew_secs BIGINT,
    only_if_first BOOLEAN, claimer_labels TEXT[], token_hash TEXT, token_default_secs BIGINT
) RETURNS TABLE (run test_runs, lease_fence BIGINT, run_token_id BIGINT)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    WITH target AS (
        SELECT t.id FROM test_runs t WHERE t.id = queued_run AND t.status = 'queued'
        FOR NO KEY UPDATE SKIP LOCKED
    ), leased AS (
        INSERT INTO environment_locks (environment_id, run_id, holder, fence, expires_at)
        SELECT e.id, t.id, claimer, nextval('lease_fences'), now() + make_interval(secs => renew_secs)
        FROM target t JOIN environments e ON e.id = on_environment
        WHERE NOT only_if_first OR (
            (e.maintenance_reason IS NULL OR e.maintenance_until <= now())
            AND (claimer_labels IS NULL OR e.labels && claimer_labels)
            AND NOT EXISTS (SELECT 1 FROM reservations w
                            WHERE w.environment_id = e.id AND w.state IN ('active', 'waiting'))
            AND NOT EXISTS (SELECT 1 FROM test_runs q
                            WHERE q.status = 'queued' AND q.id < t.id
                              AND (q.environment_id IS NULL OR NOT EXISTS (
                                   SELECT 1 FROM environment_locks l
                                   WHERE l.environment_id = q.environment_id))))
        ON CONFLICT (environment_id) DO NOTHING
        RETURNING environment_locks.environment_id, environment_locks.run_id, environment_locks.fence
    ), started AS (
        UPDATE test_runs r SET status = 'running', started_at = now(), fence = l.fence,
               instance_id = claimer, environment_id = l.environment_id
        FROM leased l WHERE r.id = l.run_id
        RETURNING r.*
    ), token AS (
        INSERT INTO api_tokens (username, name, role, secret_hash, expires_at, run_id)
        SELECT u.username, 'run ' || s.id, u.role, token_hash,
               now() + make_interval(secs => coalesce(e.run_timeout_secs, token_default_secs) + 3600),
               s.id
        FROM started s JOIN users u ON u.username = s.username
        LEFT JOIN environments e ON e.id = s.environment_id
        WHERE token_hash IS NOT NULL
        RETURNING api_tokens.id
    )
    SELECT ROW(started.*)::test_runs, started.fence, (SELECT token.id FROM token)
    FROM started;
END
$$;

DROP FUNCTION issue_run_token;
DROP FUNCTION may_start_first;
