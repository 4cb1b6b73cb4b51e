ALTER TABLE test_runs DROP COLUMN token_id;
ALTER TABLE environments DROP COLUMN allowed_users, DROP COLUMN protected;
DROP TABLE audit_log;
DROP TABLE setup_codes;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE users;
