-- Identity: accounts, their sessions and API tokens, the audit log, and
-- environments that only some users may run on.
CREATE TABLE users (
    username      TEXT        PRIMARY KEY,
    role          TEXT        NOT NULL CHECK (role IN ('viewer', 'member', 'admin')),
    -- Argon2id in PHC format; null: no password login (SSO users, or the
    -- admin before its first set-up).
    password_hash TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Server-side sessions: logging out, a role change or a deleted user take
-- effect at the next request. Only a hash of the cookie's secret is kept.
CREATE TABLE sessions (
    secret_hash TEXT        PRIMARY KEY,
    username    TEXT        NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (username);

CREATE TABLE api_tokens (
    id          BIGSERIAL   PRIMARY KEY,
    username    TEXT        NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    name        TEXT        NOT NULL,
    role        TEXT        NOT NULL CHECK (role IN ('viewer', 'member', 'admin')),
    secret_hash TEXT        NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ
);
CREATE INDEX api_tokens_by_user ON api_tokens (username, id);

-- The one-time code that lets the first visitor set the admin password,
-- when no ADMIN_PASSWORD was given. Hashed, like every secret.
CREATE TABLE setup_codes (
    username   TEXT        PRIMARY KEY,
    code_hash  TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE audit_log (
    id      BIGSERIAL   PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor   TEXT        NOT NULL,
    action  TEXT        NOT NULL,
    target  TEXT        NOT NULL DEFAULT '',
    detail  TEXT        NOT NULL DEFAULT '',
    -- The client's address, for failed logins (their rate limit).
    address TEXT
);
CREATE INDEX audit_log_newest ON audit_log (id DESC);
CREATE INDEX audit_log_by_actor ON audit_log (actor, id DESC);
CREATE INDEX audit_log_by_action ON audit_log (action, at);

ALTER TABLE environments
    ADD COLUMN protected BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN allowed_users TEXT[] NOT NULL DEFAULT '{}';

-- The API token a run was created with, if any (its user is `username`).
ALTER TABLE test_runs ADD COLUMN token_id BIGINT;
