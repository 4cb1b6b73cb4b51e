-- Insights look at the runs finished within a window of days.
CREATE INDEX test_runs_by_finished_at ON test_runs (finished_at) WHERE finished_at IS NOT NULL;
-- History of every test of a file: node ids by prefix, whatever the
-- database's collation.
CREATE INDEX run_cases_by_nodeid_pattern ON run_cases (nodeid text_pattern_ops);
