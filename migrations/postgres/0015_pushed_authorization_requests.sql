-- RFC 9126 pushed authorization requests (issue 14). A client pushes its authorization
-- parameters to /oauth/par and gets a one-time `request_uri`; only SHA-256 of its random
-- part is stored. `params` is the validated request, form-encoded; `used_at` is set when the
-- request's code is issued, so a request_uri yields at most one code.
CREATE TABLE pushed_authorization_requests (
    id             BIGSERIAL PRIMARY KEY,
    handle_hash    BYTEA   NOT NULL UNIQUE,
    application_id BIGINT  NOT NULL REFERENCES oauth_applications (id) ON DELETE CASCADE,
    params         TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    used_at        BIGINT
);
CREATE INDEX pushed_authorization_requests_expires_at ON pushed_authorization_requests (expires_at);
-- RFC 9126 §6: the client's `require_pushed_authorization_requests` metadata; set, its plain
-- (unpushed) authorization requests are refused.
ALTER TABLE oauth_applications ADD COLUMN require_par BOOLEAN NOT NULL DEFAULT FALSE;
