-- Issue 16: credentials imported from a doorkeeper database (GitLab) in the stored form the
-- source kept them: SHA-512 hex, PBKDF2-SHA512 (passlib's `$pbkdf2-sha512$20000$$…`), or
-- for plaintext sources the hex SHA-256 of the value (the value itself is never stored).
-- `kind`: 1 access token, 2 refresh token, 3 application secret; `target_id` is the
-- Doorward row (oauth_access_tokens.id or oauth_applications.id) it opens. A presented value
-- that no native lookup finds is hashed the source's ways and looked up here; on a match the
-- target row is re-stored in Doorward's own form, and this row stays as the import's record
-- of the source key, so a second import of the same source finds it `existing`.
CREATE TABLE imported_credentials (
    id        INTEGER PRIMARY KEY, -- backend-specific
    kind      SMALLINT NOT NULL,
    form      SMALLINT NOT NULL,
    stored    TEXT     NOT NULL,
    target_id BIGINT   NOT NULL
);
CREATE UNIQUE INDEX imported_credentials_stored ON imported_credentials (kind, form, stored);
CREATE INDEX imported_credentials_target ON imported_credentials (kind, target_id);
