DROP TABLE run_case_attachments;
DROP TABLE run_artifact_chunks;
DROP TABLE run_artifacts;
DROP INDEX test_runs_retention;
ALTER TABLE test_runs
    DROP COLUMN details_removed_at,
    DROP COLUMN pinned,
    DROP COLUMN selection;
