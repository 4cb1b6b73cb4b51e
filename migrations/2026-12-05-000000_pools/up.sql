-- Pools: a run may be queued for any environment with a label; it gets
-- its environment when it starts. Run groups: one suite split into shards,
-- one run each. Instances: which environments each live instance serves.
ALTER TABLE test_runs
    ALTER COLUMN environment_id DROP NOT NULL,
    ADD COLUMN environment_label TEXT,
    ADD COLUMN run_group_id BIGINT,
    ADD COLUMN shard INTEGER,
    -- Only a run that never started may lack an environment.
    ADD CONSTRAINT test_runs_have_a_target CHECK (
        environment_id IS NOT NULL
        OR (environment_label IS NOT NULL AND status IN ('queued', 'cancelled')));

-- A pool's queue, FIFO by id.
CREATE INDEX test_runs_pool_queue ON test_runs (environment_label, id)
    WHERE status = 'queued' AND environment_id IS NULL;

CREATE TABLE run_groups (
    id                BIGSERIAL   PRIMARY KEY,
    username          TEXT        NOT NULL,
    environment_label TEXT        NOT NULL,
    paths             JSONB       NOT NULL,
    shards_requested  INTEGER     NOT NULL CHECK (shards_requested BETWEEN 2 AND 100),
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX test_runs_by_group ON test_runs (run_group_id, shard, id)
    WHERE run_group_id IS NOT NULL;

CREATE CONSTRAINT TRIGGER run_groups_bump_state_version
    AFTER INSERT OR UPDATE OR DELETE ON run_groups
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION bump_state_version();

-- Each instance's labels (NULL: it serves every environment) and the
-- advisory lock key it holds while alive: an instance is live exactly
-- while its lock is held, with no heartbeat to write or to trust.
CREATE TABLE instances (
    instance_id   TEXT        PRIMARY KEY,
    runner_labels TEXT[],
    lock_key      BIGINT      NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE VIEW live_instances AS
    SELECT i.* FROM instances i
    WHERE EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = ((i.lock_key >> 32) & 4294967295)::oid
          AND l.objid = (i.lock_key & 4294967295)::oid);

-- An instance that starts (or, touched by a scheduler that saw one go,
-- stops) changes why pool runs wait: polled views must be built again.
CREATE CONSTRAINT TRIGGER instances_bump_state_version
    AFTER INSERT OR UPDATE OR DELETE ON instances
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION bump_state_version();
