-- Environments as a managed resource: labels, maintenance, and
-- reservations (a person's, asked for now or as the next in line) and
-- holds (kept for a person after their run failed).
ALTER TABLE environments
    ADD COLUMN labels             TEXT[]      NOT NULL DEFAULT '{}',
    ADD COLUMN maintenance_reason TEXT,
    ADD COLUMN maintenance_since  TIMESTAMPTZ,
    ADD COLUMN maintenance_until  TIMESTAMPTZ;

ALTER TABLE test_runs
    ADD COLUMN hold_on_failure_minutes INTEGER
        CHECK (hold_on_failure_minutes BETWEEN 1 AND 120);

-- A reservation waits in its environment's queue between runs: its place
-- is drawn from the runs' own id sequence, so that runs (by id) and
-- reservations (by queue_order) of an environment form one FIFO order.
-- `active` means the environment is held for its owner until expires_at;
-- an active row whose expires_at passed counts as ended wherever it is
-- read, and the scheduler's sweep marks it so.
CREATE TABLE reservations (
    id             BIGSERIAL   PRIMARY KEY,
    environment_id INTEGER     NOT NULL,
    owner          TEXT        NOT NULL,
    reason         TEXT        NOT NULL DEFAULT '',
    kind           TEXT        NOT NULL CHECK (kind IN ('reservation', 'hold')),
    state          TEXT        NOT NULL CHECK (state IN ('waiting', 'active', 'ended')),
    minutes        INTEGER     NOT NULL CHECK (minutes BETWEEN 1 AND 480),
    queue_order    BIGINT      NOT NULL DEFAULT nextval('test_runs_id_seq'),
    run_id         BIGINT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    starts_at      TIMESTAMPTZ,
    expires_at     TIMESTAMPTZ,
    ended_at       TIMESTAMPTZ,
    end_reason     TEXT,
    CHECK (state = 'waiting' OR (starts_at IS NOT NULL AND expires_at IS NOT NULL))
);
-- The database's own guard: never two holders of one environment.
CREATE UNIQUE INDEX reservations_one_active ON reservations (environment_id) WHERE state = 'active';
CREATE INDEX reservations_waiting ON reservations (environment_id, queue_order) WHERE state = 'waiting';
CREATE INDEX reservations_active_expiry ON reservations (expires_at) WHERE state = 'active';

CREATE CONSTRAINT TRIGGER reservations_bump_state_version
    AFTER INSERT OR UPDATE OR DELETE ON reservations
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION bump_state_version();

-- Schedulers hear of a new reservation in a queue and of a hold or
-- reservation that ended (its environment may be free).
CREATE FUNCTION notify_reservation_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        PERFORM pg_notify('test_executor', 'released');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER reservations_notify
    AFTER INSERT OR UPDATE OF state ON reservations
    FOR EACH ROW EXECUTE FUNCTION notify_reservation_change();

-- Maintenance ending, or labels changing, may let runs start.
CREATE FUNCTION notify_environment_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.maintenance_reason IS DISTINCT FROM OLD.maintenance_reason
       OR NEW.labels IS DISTINCT FROM OLD.labels THEN
        PERFORM pg_notify('test_executor', 'released');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER environments_notify
    AFTER UPDATE ON environments
    FOR EACH ROW EXECUTE FUNCTION notify_environment_change();

-- Estimates look up the recent durations of runs of the same paths.
CREATE INDEX test_runs_by_paths ON test_runs (md5(paths::text), id DESC)
    WHERE status IN ('success', 'failed');
