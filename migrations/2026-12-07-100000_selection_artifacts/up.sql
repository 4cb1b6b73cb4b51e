-- Test selection by pytest expression, artifacts kept with their runs,
-- and retention: old runs lose their details unless pinned.
-- The selection is one column: {"keyword": ..., "markers": ...}, each a
-- pytest expression (-k, -m) checked when the run was created.
ALTER TABLE test_runs
    ADD COLUMN selection JSONB,
    ADD COLUMN pinned BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN details_removed_at TIMESTAMPTZ;

-- What retention looks at: finished runs that still have their details.
CREATE INDEX test_runs_retention ON test_runs (finished_at)
    WHERE finished_at IS NOT NULL AND details_removed_at IS NULL;

-- The files a run's tests left in TEST_ARTIFACTS_DIR. In the database, so
-- that any instance serves them whichever ran the tests; the bytes in
-- chunks, so that no single value or statement is huge.
CREATE TABLE run_artifacts (
    id           BIGSERIAL PRIMARY KEY,
    run_id       BIGINT    NOT NULL REFERENCES test_runs (id) ON DELETE CASCADE,
    path         TEXT      NOT NULL,
    size         BIGINT    NOT NULL CHECK (size >= 0),
    content_type TEXT      NOT NULL,
    UNIQUE (run_id, path)
);

CREATE TABLE run_artifact_chunks (
    artifact_id BIGINT  NOT NULL REFERENCES run_artifacts (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    data        BYTEA   NOT NULL,
    PRIMARY KEY (artifact_id, seq)
);

-- Artifacts a test named with a `[[ATTACHMENT|path]]` line.
CREATE TABLE run_case_attachments (
    run_id BIGINT NOT NULL REFERENCES test_runs (id) ON DELETE CASCADE,
    nodeid TEXT   NOT NULL,
    path   TEXT   NOT NULL,
    PRIMARY KEY (run_id, nodeid, path)
);
