-- Issue 16: what `doorward import doorkeeper` brought in, keyed by the source's own keys, so
-- that a second import of the same source finds it (`existing`) whatever became of it here
-- since (renamed, re-stored, rotated, revoked, deleted), and the credentials it imported in
-- a stored form Doorward cannot look up by its own hash.
--   kind 1 access token, 2 refresh token: `form` 1 SHA-512 hex or 2 PBKDF2-SHA512 (GitLab's
--     `$pbkdf2-sha512$20000$$…`), `stored` the source's value; or form 0, plaintext, and
--     `stored` the hex SHA-256 of the value (never the value). `token_id` is the row it
--     opens until the value is first presented and the row re-stored under Doorward's key
--     (then NULL); NULL too once that row is gone, so a row id SQLite hands out again later
--     is never opened by an old value.
--   kind 3 application secret: the same forms, `application_id` the application.
--   kind 4 user: `stored` '<source id>:<source username, lowercase>'. kind 5 application:
--     `stored` its uid, with `application_id`. kind 6 access token row of an application:
--     `stored` '<application uid>:<source row id>', with `token_id` while the row exists
--     (GitLab rewrites a PBKDF2 value to SHA-512 when it is used, so a second import may
--     see another value for the same row).
-- A later migration that rebuilds oauth_access_tokens or oauth_applications (drop and
-- rename, as 0018 did) would set these links NULL: carry them over by id around it.
CREATE TABLE imported_credentials (
    id             INTEGER PRIMARY KEY, -- backend-specific
    kind           SMALLINT NOT NULL,
    form           SMALLINT NOT NULL,
    stored         TEXT     NOT NULL,
    token_id       BIGINT   REFERENCES oauth_access_tokens (id) ON DELETE SET NULL,
    application_id BIGINT   REFERENCES oauth_applications (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX imported_credentials_stored ON imported_credentials (kind, form, stored);
-- The foreign keys' own lookups when a token or application is deleted.
CREATE INDEX imported_credentials_token ON imported_credentials (token_id);
CREATE INDEX imported_credentials_application ON imported_credentials (application_id);
-- Whether any credential of a kind still waits in a form: the PBKDF2 of an unknown
-- presented value is spent only then.
CREATE INDEX imported_credentials_waiting ON imported_credentials (kind, form) WHERE token_id IS NOT NULL;
