-- OAuth 2.0: applications (clients), authorization codes, access/refresh token pairs.
-- Secrets, codes and tokens are stored only as SHA-256 hashes.
CREATE TABLE oauth_applications (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    uid           TEXT    NOT NULL UNIQUE,
    secret_hash   BLOB    NOT NULL,
    name          TEXT    NOT NULL,
    redirect_uri  TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,
    confidential  BOOLEAN NOT NULL DEFAULT TRUE,
    trusted       BOOLEAN NOT NULL DEFAULT FALSE,
    require_pkce  BOOLEAN NOT NULL DEFAULT FALSE,
    owner_id      BIGINT  REFERENCES users (id) ON DELETE CASCADE,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX oauth_applications_owner_id ON oauth_applications (owner_id);

CREATE TABLE oauth_grants (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    code_hash             BLOB    NOT NULL UNIQUE,
    application_id        BIGINT  NOT NULL REFERENCES oauth_applications (id) ON DELETE CASCADE,
    user_id               BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri          TEXT    NOT NULL,
    scopes                TEXT    NOT NULL,
    code_challenge        TEXT,
    code_challenge_method TEXT,
    nonce                 TEXT,
    auth_time             BIGINT  NOT NULL,
    created_at            BIGINT  NOT NULL,
    expires_at            BIGINT  NOT NULL,
    consumed_at           BIGINT
);
CREATE INDEX oauth_grants_expires_at ON oauth_grants (expires_at);

CREATE TABLE oauth_access_tokens (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash         BLOB    NOT NULL UNIQUE,
    refresh_token_hash BLOB    UNIQUE,
    application_id     BIGINT  REFERENCES oauth_applications (id) ON DELETE CASCADE,
    user_id            BIGINT  REFERENCES users (id) ON DELETE CASCADE,
    grant_id           BIGINT,
    family             BLOB    NOT NULL,
    scopes             TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL,
    expires_at         BIGINT  NOT NULL,
    revoked_at         BIGINT
);
CREATE INDEX oauth_access_tokens_user_application ON oauth_access_tokens (user_id, application_id);
CREATE INDEX oauth_access_tokens_family ON oauth_access_tokens (family);
CREATE INDEX oauth_access_tokens_grant_id ON oauth_access_tokens (grant_id);
CREATE INDEX oauth_access_tokens_expires_at ON oauth_access_tokens (expires_at);
