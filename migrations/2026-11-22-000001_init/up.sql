-- Environments are the shared resources runs queue for; 1 to 100 exist
-- from the start.
CREATE TABLE environments (
    id               INTEGER PRIMARY KEY CHECK (id BETWEEN 1 AND 100),
    name             TEXT        NOT NULL,
    description      TEXT        NOT NULL DEFAULT '',
    variables        JSONB       NOT NULL DEFAULT '{}'::jsonb,
    run_timeout_secs INTEGER     CHECK (run_timeout_secs > 0),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

INSERT INTO environments (id, name)
SELECT n, 'env-' || n FROM generate_series(1, 100) AS n;

-- Runs outlive the environment they ran on, so there is no foreign key.
CREATE TABLE test_runs (
    id               BIGSERIAL   PRIMARY KEY,
    username         TEXT        NOT NULL,
    environment_id   INTEGER     NOT NULL,
    paths            JSONB       NOT NULL,
    status           TEXT        NOT NULL DEFAULT 'queued' CHECK (
        status IN ('queued', 'running', 'success', 'failed', 'error', 'cancelled')
    ),
    status_reason    TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    exit_code        INTEGER,
    total            INTEGER,
    passed           INTEGER,
    failed           INTEGER,
    skipped          INTEGER,
    errors           INTEGER,
    xfailed          INTEGER,
    xpassed          INTEGER,
    -- Bytes of log stored so far: the offset where the next chunk goes.
    log_bytes        BIGINT      NOT NULL DEFAULT 0,
    -- The lease fence under which the run was started; every write about a
    -- running run names it.
    fence            BIGINT,
    instance_id      TEXT,
    cancel_requested BOOLEAN     NOT NULL DEFAULT false,
    rerun_of         BIGINT
);

-- The database's own guard: never two running runs on one environment.
CREATE UNIQUE INDEX test_runs_one_running_per_environment
    ON test_runs (environment_id) WHERE status = 'running';
-- The scheduler's FIFO queue per environment.
CREATE INDEX test_runs_queue ON test_runs (environment_id, id) WHERE status = 'queued';
-- The run list, newest first, filtered by status, user or environment.
CREATE INDEX test_runs_by_status ON test_runs (status, id DESC);
CREATE INDEX test_runs_by_username ON test_runs (username, id DESC);
CREATE INDEX test_runs_by_environment ON test_runs (environment_id, id DESC);

-- A run's log in chunks, each starting at a byte offset of the whole log.
CREATE TABLE run_log_chunks (
    run_id       BIGINT NOT NULL REFERENCES test_runs (id) ON DELETE CASCADE,
    start_offset BIGINT NOT NULL,
    content      TEXT   NOT NULL,
    PRIMARY KEY (run_id, start_offset)
);

CREATE TABLE run_cases (
    id          BIGSERIAL PRIMARY KEY,
    run_id      BIGINT NOT NULL REFERENCES test_runs (id) ON DELETE CASCADE,
    nodeid      TEXT   NOT NULL,
    outcome     TEXT   NOT NULL CHECK (outcome IN ('passed', 'failed', 'skipped', 'error')),
    duration_ms BIGINT NOT NULL,
    message     TEXT
);
CREATE INDEX run_cases_by_run ON run_cases (run_id);
CREATE INDEX run_cases_by_nodeid ON run_cases (nodeid, run_id DESC);

-- Every claim takes the next fence, so a stale holder is told apart.
CREATE SEQUENCE lease_fences;

-- The busy row: an environment is held by one run of one instance until
-- expires_at (database clock), which its holder keeps renewing.
CREATE TABLE environment_locks (
    environment_id INTEGER     PRIMARY KEY,
    run_id         BIGINT      NOT NULL,
    holder         TEXT        NOT NULL,
    fence          BIGINT      NOT NULL,
    expires_at     TIMESTAMPTZ NOT NULL,
    -- Process group of the run's test process, killed if found in a past life.
    pgid           INTEGER,
    acquired_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX environment_locks_by_expiry ON environment_locks (expires_at);
CREATE INDEX environment_locks_by_holder ON environment_locks (holder);
