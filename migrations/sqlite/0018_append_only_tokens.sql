-- Issue 15: fewer pages written per issued token. Every index entry of a new token goes to
-- the right edge of its index (ordered token keys, `domain::secret::token_key`) or nowhere:
-- `refresh_token_hash`, `grant_id` and `user_id` are NULL for many tokens (client
-- credentials have none of them), and a partial index holds no entry for them. SQLite only:
-- the table is rebuilt without AUTOINCREMENT, whose `sqlite_sequence` row was one more
-- page written by every insert (a deleted newest id may now be reused; nothing refers to
-- token ids but cache invalidations, for which a reuse only evicts an entry early).
DROP TRIGGER oauth_access_tokens_revoked;
DROP TRIGGER oauth_access_tokens_deleted;
CREATE TABLE oauth_access_tokens_rebuilt ( -- backend-specific
    id                 INTEGER PRIMARY KEY,
    token_hash         BLOB    NOT NULL,
    refresh_token_hash BLOB,
    application_id     BIGINT  REFERENCES oauth_applications (id) ON DELETE CASCADE,
    user_id            BIGINT  REFERENCES users (id) ON DELETE CASCADE,
    grant_id           BIGINT,
    family             BLOB    NOT NULL,
    scopes             TEXT    NOT NULL,
    created_at         BIGINT  NOT NULL,
    expires_at         BIGINT  NOT NULL,
    revoked_at         BIGINT,
    resources          TEXT,
    audience           TEXT,
    dpop_jkt           TEXT
);
INSERT INTO oauth_access_tokens_rebuilt
    (id, token_hash, refresh_token_hash, application_id, user_id, grant_id, family, scopes,
     created_at, expires_at, revoked_at, resources, audience, dpop_jkt)
SELECT id, token_hash, refresh_token_hash, application_id, user_id, grant_id, family, scopes,
       created_at, expires_at, revoked_at, resources, audience, dpop_jkt
FROM oauth_access_tokens;
DROP TABLE oauth_access_tokens;
ALTER TABLE oauth_access_tokens_rebuilt RENAME TO oauth_access_tokens; -- backend-specific
CREATE UNIQUE INDEX oauth_access_tokens_token_hash ON oauth_access_tokens (token_hash); -- backend-specific
CREATE UNIQUE INDEX oauth_access_tokens_refresh ON oauth_access_tokens (refresh_token_hash) WHERE refresh_token_hash IS NOT NULL;
CREATE INDEX oauth_access_tokens_user_application ON oauth_access_tokens (user_id, application_id) WHERE user_id IS NOT NULL;
CREATE INDEX oauth_access_tokens_family ON oauth_access_tokens (family); -- backend-specific
CREATE INDEX oauth_access_tokens_grant_id ON oauth_access_tokens (grant_id) WHERE grant_id IS NOT NULL;
CREATE INDEX oauth_access_tokens_expires_at ON oauth_access_tokens (expires_at); -- backend-specific

CREATE TRIGGER oauth_access_tokens_revoked AFTER UPDATE OF revoked_at ON oauth_access_tokens -- backend-specific
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (1, NEW.id, CAST(strftime('%s', 'now') AS INTEGER));
END;

-- Deleting an expired token needs no message: every node checks expiry itself.
CREATE TRIGGER oauth_access_tokens_deleted AFTER DELETE ON oauth_access_tokens -- backend-specific
WHEN OLD.revoked_at IS NULL AND OLD.expires_at > CAST(strftime('%s', 'now') AS INTEGER)
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (1, OLD.id, CAST(strftime('%s', 'now') AS INTEGER));
END;
