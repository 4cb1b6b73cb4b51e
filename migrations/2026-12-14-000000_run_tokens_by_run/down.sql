DROP INDEX api_tokens_by_run;

ALTER TABLE api_tokens DROP COLUMN run_id;
