-- A claim's last step, for `leases::start` and `finish_and_hand_off` alike:
-- locks queued run `queued_run`, takes the environment's busy row for it
-- under a new fence, marks it running there (a pool's run gets its
-- environment now) and, given `token_hash`, inserts the run's token (as
-- the run's user, if it has an account, good for the run's time-out and
-- an hour). A run whose row is locked elsewhere (a cancel under way) is
-- not waited for. With `only_if_first`, the run starts only when nothing
-- else has a claim to the environment or to the slot: the environment in
-- service for this claimer, no reservation or hold on it, and no older run
-- waiting anywhere except behind a busy environment. No row: nothing
-- started.
CREATE FUNCTION start_queued_run(
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

-- The finish of a run and the start of the next one on its environment,
-- in one call: between two runs, the time is the database's work, not a
-- dozen round trips. It does what `leases::finish_and_claim_next` does
-- statement by statement, for the usual finish: no hold to keep after a
-- failure and no attachments to link (the caller takes the long way for
-- those). Each statement has a snapshot of its own, as the long way's do.
--
-- `finished` false: nothing was written but the lease's renewal (the lease
-- or the stored progress is not what the caller expected, or a hold may
-- follow); the long way then tells which. Otherwise `started_run` is the
-- run started, if any, with its lease's fence, its token's id and its
-- environment as the claim locked it; a run it did not hand on to is
-- recorded in insights and health before it returns, unless a row a stuck
-- session holds leaves it for the sweep (`left_for_sweep`).
CREATE FUNCTION finish_and_hand_off(
    finishing_run BIGINT, on_environment INTEGER, with_fence BIGINT, renew_secs BIGINT,
    final_status TEXT, final_reason TEXT, final_exit_code INTEGER, final_log_bytes BIGINT,
    summary INTEGER[], expected_log_bytes BIGINT, expected_cases INTEGER,
    log_offsets BIGINT[], log_pieces TEXT[],
    case_nodeids TEXT[], case_outcomes TEXT[], case_durations BIGINT[], case_messages TEXT[],
    report_xml TEXT, revoked_token BIGINT,
    claimer TEXT, claimer_labels TEXT[], token_hash TEXT, token_default_secs BIGINT,
    OUT finished BOOLEAN, OUT started_run test_runs, OUT next_fence BIGINT, OUT next_token BIGINT,
    OUT next_environment environments, OUT left_for_sweep BOOLEAN
) LANGUAGE plpgsql AS $$
DECLARE
    written BIGINT;
    environment environments%ROWTYPE;
    first_queued BIGINT;
    started RECORD;
BEGIN
    finished := false;
    left_for_sweep := false;
    UPDATE environment_locks SET expires_at = now() + make_interval(secs => renew_secs)
    WHERE environment_id = on_environment AND fence = with_fence;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    -- A hold after a failure is written before the release, on the long way.
    IF final_status IN ('failed', 'error') AND EXISTS (
        SELECT 1 FROM test_runs WHERE id = finishing_run AND hold_on_failure_minutes IS NOT NULL
    ) THEN
        RETURN;
    END IF;
    -- A cancel accepted while the run was ending wins, as on the long way.
    WITH done AS (
        UPDATE test_runs SET
            status = CASE WHEN cancel_requested THEN 'cancelled' ELSE final_status END,
            status_reason = CASE WHEN cancel_requested THEN 'cancelled by user' ELSE final_reason END,
            exit_code = final_exit_code, finished_at = now(), log_bytes = final_log_bytes,
            total = summary[1], passed = summary[2], failed = summary[3], skipped = summary[4],
            errors = summary[5], xfailed = summary[6], xpassed = summary[7],
            subtests_passed = summary[8], completed = summary[9],
            case_count = case_count + coalesce(cardinality(case_nodeids), 0)
        WHERE id = finishing_run AND fence = with_fence AND status = 'running'
          AND log_bytes = expected_log_bytes AND case_count = expected_cases
        RETURNING id
    ), listed AS (
        INSERT INTO runs_to_record (run_id) SELECT id FROM done
    )
    SELECT id INTO written FROM done;
    IF written IS NULL THEN
        RETURN;
    END IF;
    finished := true;
    INSERT INTO run_log_chunks (run_id, start_offset, content)
    SELECT finishing_run, piece.start_offset, piece.content
    FROM unnest(log_offsets, log_pieces) AS piece (start_offset, content);
    INSERT INTO run_cases (run_id, nodeid, outcome, duration_ms, message)
    SELECT finishing_run, c.nodeid, c.outcome, c.duration_ms, c.message
    FROM unnest(case_nodeids, case_outcomes, case_durations, case_messages)
         WITH ORDINALITY AS c (nodeid, outcome, duration_ms, message, position)
    ORDER BY c.position;
    INSERT INTO run_reports (run_id, junit_xml) SELECT finishing_run, report_xml
    WHERE report_xml IS NOT NULL
    ON CONFLICT DO NOTHING;
    DELETE FROM api_tokens WHERE id = revoked_token;
    DELETE FROM environment_locks WHERE environment_id = on_environment AND fence = with_fence;
    IF claimer IS NOT NULL THEN
        -- As a claim that does not wait: the environment's row if nobody
        -- holds it, in service for this claimer, free and not reserved.
        SELECT * INTO environment FROM environments WHERE id = on_environment
        FOR NO KEY UPDATE SKIP LOCKED;
        IF FOUND
           AND NOT (environment.maintenance_reason IS NOT NULL
                    AND (environment.maintenance_until IS NULL OR environment.maintenance_until > now()))
           AND (claimer_labels IS NULL OR environment.labels && claimer_labels)
           AND NOT EXISTS (SELECT 1 FROM environment_locks WHERE environment_id = on_environment)
           AND NOT EXISTS (SELECT 1 FROM reservations
                           WHERE environment_id = on_environment AND state IN ('active', 'waiting'))
        THEN
            SELECT id INTO first_queued FROM test_runs
            WHERE environment_id = on_environment AND status = 'queued' ORDER BY id LIMIT 1;
            SELECT * INTO started FROM start_queued_run(
                on_environment, first_queued, claimer, renew_secs, true,
                claimer_labels, token_hash, token_default_secs);
            IF FOUND THEN
                started_run := started.run;
                next_fence := started.lease_fence;
                next_token := started.run_token_id;
                next_environment := environment;
            END IF;
        END IF;
    END IF;
    IF next_fence IS NULL THEN
        -- As the long way's savepoint: a row a stuck session holds leaves
        -- the run listed for the sweep instead of failing the finish.
        BEGIN
            PERFORM record_listed_run(finishing_run);
        EXCEPTION WHEN OTHERS THEN
            left_for_sweep := true;
        END;
    END IF;
END
$$;
