-- Webhooks: where to tell whom about which events, and the outbox of
-- deliveries. A delivery row is written in the transaction of the change
-- it reports (by the triggers below, or the expiry sweep), so an event is
-- never lost to a restart or a receiver that is down; instances claim due
-- rows with SKIP LOCKED and a lease, so each is sent by one of them.
CREATE TABLE webhooks (
    id         BIGSERIAL   PRIMARY KEY,
    url        TEXT        NOT NULL,
    events     TEXT[]      NOT NULL,
    secret     TEXT,
    format     TEXT        NOT NULL DEFAULT 'json' CHECK (format IN ('json', 'slack')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    id              BIGSERIAL   PRIMARY KEY,
    webhook_id      BIGINT      NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event           TEXT        NOT NULL,
    -- The run, environment or reservation the event is about.
    subject_id      BIGINT      NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Rendered at the first attempt, then sent byte for byte at each retry.
    body            TEXT,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The attempt in flight: only its sender may record its result.
    claim           BIGINT,
    last_status     INTEGER,
    last_error      TEXT,
    delivered_at    TIMESTAMPTZ,
    failed_at       TIMESTAMPTZ
);

CREATE SEQUENCE webhook_claims;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);

CREATE FUNCTION webhook_outbox(event_name TEXT, subject BIGINT) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO webhook_deliveries (webhook_id, event, subject_id)
    SELECT id, event_name, subject FROM webhooks WHERE event_name = ANY (events);
$$;

-- A run reaching its final status, however it got there (finished, lost,
-- cancelled while queued, swept at start-up).
CREATE FUNCTION webhook_run_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('queued', 'running')
       AND NEW.status IN ('success', 'failed', 'error', 'cancelled') THEN
        PERFORM webhook_outbox('run.finished', NEW.id);
        IF NEW.status IN ('failed', 'error') THEN
            PERFORM webhook_outbox('run.failed', NEW.id);
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER test_runs_webhooks
    AFTER UPDATE OF status ON test_runs
    FOR EACH ROW EXECUTE FUNCTION webhook_run_finished();

-- An environment's busy row released with nothing of its own queued and
-- no hold on it: it is free for whoever wants it.
CREATE FUNCTION webhook_environment_free() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM test_runs
                   WHERE environment_id = OLD.environment_id AND status = 'queued')
       AND NOT EXISTS (SELECT 1 FROM reservations
                       WHERE environment_id = OLD.environment_id AND state = 'active'
                         AND expires_at > now()) THEN
        PERFORM webhook_outbox('environment.free', OLD.environment_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER environment_locks_webhooks
    AFTER DELETE ON environment_locks
    FOR EACH ROW EXECUTE FUNCTION webhook_environment_free();

-- Which end of which reservation was announced as coming: an extended
-- reservation has a new end, announced again.
CREATE TABLE reservation_expiry_notices (
    reservation_id BIGINT      NOT NULL REFERENCES reservations (id) ON DELETE CASCADE,
    expires_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (reservation_id, expires_at)
);

-- Schedules: runs queued by a cron expression in a time zone. One run
-- per fire across instances: the fire moves `next_run_at` under the row's
-- lock, and a run names the fire it is for, once.
CREATE TABLE schedules (
    id                      BIGSERIAL   PRIMARY KEY,
    name                    TEXT        NOT NULL,
    cron                    TEXT        NOT NULL,
    timezone                TEXT        NOT NULL,
    environment_id          INTEGER,
    environment_label       TEXT,
    paths                   JSONB       NOT NULL,
    username                TEXT        NOT NULL,
    hold_on_failure_minutes INTEGER,
    enabled                 BOOLEAN     NOT NULL DEFAULT true,
    next_run_at             TIMESTAMPTZ,
    last_run_id             BIGINT,
    last_fired_at           TIMESTAMPTZ,
    last_error              TEXT,
    created_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((environment_id IS NULL) <> (environment_label IS NULL))
);

CREATE INDEX schedules_due ON schedules (next_run_at) WHERE enabled;

ALTER TABLE test_runs
    ADD COLUMN schedule_id BIGINT REFERENCES schedules (id) ON DELETE SET NULL,
    ADD COLUMN scheduled_for TIMESTAMPTZ,
    ADD COLUMN schedule_note TEXT;

CREATE UNIQUE INDEX test_runs_one_per_fire ON test_runs (schedule_id, scheduled_for)
    WHERE schedule_id IS NOT NULL;

CREATE CONSTRAINT TRIGGER schedules_bump_state_version
    AFTER INSERT OR UPDATE OR DELETE ON schedules
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION bump_state_version();
