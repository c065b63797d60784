-- Token lifecycle: device authorization grants (RFC 8628), and the two-factor flag on users.
ALTER TABLE users ADD COLUMN two_factor_enabled BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE oauth_device_grants (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    device_code_hash BLOB    NOT NULL UNIQUE,
    user_code_hash   BLOB    NOT NULL UNIQUE,
    application_id   BIGINT  NOT NULL REFERENCES oauth_applications (id) ON DELETE CASCADE,
    scopes           TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL,
    poll_interval    BIGINT  NOT NULL,
    last_polled_at   BIGINT,
    status           TEXT    NOT NULL DEFAULT 'pending',
    user_id          BIGINT  REFERENCES users (id) ON DELETE CASCADE,
    auth_time        BIGINT
);
CREATE INDEX oauth_device_grants_expires_at ON oauth_device_grants (expires_at);
