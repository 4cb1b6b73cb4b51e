-- Whether a run may start on environment `e` at once, ahead of the
-- scheduler: nothing else has a claim to the environment or to the slot.
-- The environment is in service for this claimer, with no reservation or
-- hold on it, and no run older than `run_id` waits anywhere except behind a
-- busy environment (an older run of this environment or of a pool, or one
-- waiting for a slot, goes first). Whether the environment is free is the
-- busy row's insert to say. The rule of `start_queued_run`'s
-- `only_if_first` and of `queue_run_on`.
CREATE FUNCTION may_start_first(e environments, run_id BIGINT, claimer_labels TEXT[])
RETURNS BOOLEAN LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- plpgsql, not sql: a sql function with subqueries is planned anew on
    -- every call; these plans are kept for the session.
    RETURN (e.maintenance_reason IS NULL OR e.maintenance_until <= now())
        AND (claimer_labels IS NULL OR e.labels && claimer_labels)
        AND NOT EXISTS (SELECT 1 FROM reservations w
                        WHERE w.environment_id = e.id AND w.state IN ('active', 'waiting'))
        AND NOT EXISTS (SELECT 1 FROM test_runs q
                        WHERE q.status = 'queued' AND q.id < run_id
                          AND (q.environment_id IS NULL OR NOT EXISTS (
                               SELECT 1 FROM environment_locks l
                               WHERE l.environment_id = q.environment_id)));
END
$$;

-- The API token of a run just started, given the hash of its secret: as
-- the run's user, if it has an account, good for the run's time-out and an
-- hour. NULL: no token.
CREATE FUNCTION issue_run_token(
    for_run BIGINT, for_user TEXT, on_environment INTEGER, token_hash TEXT,
    token_default_secs BIGINT
) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    issued BIGINT;
BEGIN
    IF token_hash IS NULL THEN
        RETURN NULL;
    END IF;
    INSERT INTO api_tokens (username, name, role, secret_hash, expires_at, run_id)
    SELECT u.username, 'run ' || for_run, u.role, token_hash,
           now() + make_interval(secs => coalesce(e.run_timeout_secs, token_default_secs) + 3600),
           for_run
    FROM users u LEFT JOIN environments e ON e.id = on_environment
    WHERE u.username = for_user
    RETURNING id INTO issued;
    RETURN issued;
END
$$;

-- As before, with its rule and its token written once (above).
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
        WHERE NOT only_if_first OR may_start_first(e, t.id, claimer_labels)
        ON CONFLICT (environment_id) DO NOTHING
        RETURNING environment_locks.environment_id, environment_locks.run_id, environment_locks.fence
    ), started AS (
        UPDATE test_runs r SET status = 'running', started_at = now(), fence = l.fence,
               instance_id = claimer, environment_id = l.environment_id
        FROM leased l WHERE r.id = l.run_id
        RETURNING r.*
    )
    SELECT ROW(started.*)::test_runs, started.fence,
           issue_run_token(started.id, started.username, started.environment_id, token_hash,
                           token_default_secs)
    FROM started;
END
$$;

-- A run asked for on one environment, queued, or started at once (given a
-- claimer, when `may_start_first` agrees and the environment is free), in
-- one call: the queue's room, the environment's row lock and the insert,
-- each with a snapshot of its own. A run started at once is inserted
-- running, under its busy row: no second write of the row, and no notice
-- that a run is queued. The caller holds the catalog lock, has checked the
-- run's paths under it, and commits. One row answers:
--   'too many'        the queues hold `max_queued` runs already
--                     (`queued_count` says how many); nothing written
--   'no environment'  there is no such environment; nothing written
--   'queued'          the run, waiting in its queue; with its environment's
--                     row as the lock took it
--   'started'         the run, running under the fence `lease_fence`, with
--                     its token's id (given `token_hash`) and its
--                     environment's row
-- It inserts what a run from the API sets (`runs::create`); reruns, groups
-- and schedules are inserted by the service itself.
CREATE FUNCTION queue_run_on(
    on_environment INTEGER, max_queued BIGINT,
    new_username TEXT, new_paths JSONB, new_hold_minutes INTEGER, new_selection JSONB,
    new_token_id BIGINT,
    claimer TEXT, renew_secs BIGINT, claimer_labels TEXT[], token_hash TEXT,
    token_default_secs BIGINT
) RETURNS TABLE (
    step TEXT, queued_count BIGINT, run test_runs, environment environments,
    lease_fence BIGINT, run_token_id BIGINT
) LANGUAGE plpgsql AS $$
DECLARE
    new_run BIGINT;
BEGIN
    SELECT count(*) INTO queued_count FROM test_runs t WHERE t.status = 'queued';
    IF queued_count >= max_queued THEN
        step := 'too many';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT * INTO environment FROM environments e WHERE e.id = on_environment
    FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        step := 'no environment';
        RETURN NEXT;
        RETURN;
    END IF;
    new_run := nextval('test_runs_id_seq');
    IF claimer IS NOT NULL AND may_start_first(environment, new_run, claimer_labels) THEN
        INSERT INTO environment_locks (environment_id, run_id, holder, fence, expires_at)
        VALUES (on_environment, new_run, claimer, nextval('lease_fences'),
                now() + make_interval(secs => renew_secs))
        ON CONFLICT (environment_id) DO NOTHING
        RETURNING environment_locks.fence INTO lease_fence;
    END IF;
    INSERT INTO test_runs (id, username, environment_id, paths, hold_on_failure_minutes, selection,
                           token_id, status, started_at, fence, instance_id)
    VALUES (new_run, new_username, on_environment, new_paths, new_hold_minutes, new_selection,
            new_token_id,
            CASE WHEN lease_fence IS NULL THEN 'queued' ELSE 'running' END,
            CASE WHEN lease_fence IS NOT NULL THEN now() END,
            lease_fence,
            CASE WHEN lease_fence IS NOT NULL THEN claimer END)
    RETURNING * INTO run;
    IF lease_fence IS NULL THEN
        step := 'queued';
    ELSE
        step := 'started';
        run_token_id := issue_run_token(new_run, new_username, on_environment, token_hash,
                                        token_default_secs);
    END IF;
    RETURN NEXT;
END
$$;

-- Row triggers on test_runs fire only where their function does something:
-- a start (queued to running) calls none of them, the insert only the
-- queue's notification. Each condition is its function's own first test.
DROP TRIGGER test_runs_notify ON test_runs;
CREATE TRIGGER test_runs_notify_queued
    AFTER INSERT ON test_runs
    FOR EACH ROW WHEN (NEW.status = 'queued') EXECUTE FUNCTION notify_run_change();
CREATE TRIGGER test_runs_notify
    AFTER UPDATE OF status, cancel_requested ON test_runs
    FOR EACH ROW WHEN (
        (NEW.status IS DISTINCT FROM OLD.status AND NEW.status NOT IN ('queued', 'running'))
        OR (NEW.cancel_requested AND NOT OLD.cancel_requested AND NEW.status = 'running'))
    EXECUTE FUNCTION notify_run_change();

DROP TRIGGER test_runs_webhooks ON test_runs;
CREATE TRIGGER test_runs_webhooks
    AFTER UPDATE OF status ON test_runs
    FOR EACH ROW WHEN (OLD.status IN ('queued', 'running')
                       AND NEW.status IN ('success', 'failed', 'error', 'cancelled'))
    EXECUTE FUNCTION webhook_run_finished();

DROP TRIGGER test_runs_record_environment_run ON test_runs;
CREATE TRIGGER test_runs_record_environment_run
    AFTER INSERT OR UPDATE OF finished_at ON test_runs
    FOR EACH ROW WHEN (NEW.finished_at IS NOT NULL AND NEW.environment_id IS NOT NULL
                       AND NEW.status IN ('success', 'failed', 'error'))
    EXECUTE FUNCTION record_environment_run();

-- Every finish calls it: as plpgsql, its plan is kept for the session,
-- where a sql function with an INSERT is planned anew on each call.
CREATE OR REPLACE FUNCTION webhook_outbox(event_name TEXT, subject BIGINT) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_deliveries (webhook_id, event, subject_id)
    SELECT id, event_name, subject FROM webhooks WHERE event_name = ANY (events);
END
$$;
