-- A run's API token names its run, so that whoever ends the run revokes
-- it: the finish that holds its id, and also the reclaim of a run whose
-- instance is gone. No foreign key: a token outlives no run by more than
-- its expiry, and deleting old runs should not have to look here.
ALTER TABLE api_tokens ADD COLUMN run_id BIGINT;

CREATE INDEX api_tokens_by_run ON api_tokens (run_id) WHERE run_id IS NOT NULL;
