-- The flaky tests' newest flips within the window, test by test: a range
-- of this index each. With only (nodeid, run_id) and (flipped_at), the
-- planner intersected both whole ranges per test, about 2 ms a test at a
-- million runs.
CREATE INDEX test_flips_by_nodeid_and_time ON test_flips (nodeid, flipped_at);
