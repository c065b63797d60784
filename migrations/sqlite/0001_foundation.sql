-- Foundation: accounts, browser sessions, personal access tokens, sign-in throttling.
-- Times are Unix seconds (BIGINT), computed in Rust; secrets are stored only as SHA-256 hashes.
CREATE TABLE users (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    username           TEXT    NOT NULL,
    email              TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    password_hash      TEXT    NOT NULL,
    is_admin           BOOLEAN NOT NULL DEFAULT FALSE,
    state              TEXT    NOT NULL DEFAULT 'active',
    public_email       TEXT    NOT NULL DEFAULT '',
    website_url        TEXT    NOT NULL DEFAULT '',
    bio                TEXT    NOT NULL DEFAULT '',
    location           TEXT    NOT NULL DEFAULT '',
    organization       TEXT    NOT NULL DEFAULT '',
    job_title          TEXT    NOT NULL DEFAULT '',
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL,
    last_sign_in_at    BIGINT,
    current_sign_in_at BIGINT
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash   BLOB    NOT NULL UNIQUE,
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT  NOT NULL,
    last_seen_at BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL,
    ip           TEXT    NOT NULL DEFAULT '',
    user_agent   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE personal_access_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    token_hash   BLOB    NOT NULL UNIQUE,
    scopes       TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX personal_access_tokens_user_id ON personal_access_tokens (user_id);

CREATE TABLE sign_in_throttles (
    throttle_key      TEXT   PRIMARY KEY,
    failures          BIGINT NOT NULL,
    window_started_at BIGINT NOT NULL,
    locked_until      BIGINT NOT NULL DEFAULT 0
);
