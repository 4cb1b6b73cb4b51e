DROP VIEW live_instances;
DROP TABLE instances;
DROP TABLE run_groups;
DROP INDEX test_runs_by_group;
DROP INDEX test_runs_pool_queue;
DELETE FROM test_runs WHERE environment_id IS NULL;
ALTER TABLE test_runs
    DROP CONSTRAINT test_runs_have_a_target,
    DROP COLUMN shard,
    DROP COLUMN run_group_id,
    DROP COLUMN environment_label,
    ALTER COLUMN environment_id SET NOT NULL;
