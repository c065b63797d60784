-- What each node's in-process cache of validated tokens and applications must forget.
-- Triggers write a row in the same transaction as every change that can make a cached
-- value wrong (a token revoked or deleted while live, a user or an application changed or
-- deleted), so no code path can forget to; every node polls the rows newer than the last
-- one it applied (see src/store/cache.rs). Rows are purged after an hour.
-- kind: 1 = oauth_access_tokens.id, 2 = users.id, 3 = oauth_applications.id
CREATE TABLE cache_invalidations (
    id         INTEGER PRIMARY KEY,
    kind       SMALLINT NOT NULL,
    subject    BIGINT   NOT NULL,
    created_at BIGINT   NOT NULL
);
CREATE INDEX cache_invalidations_created_at ON cache_invalidations (created_at);

CREATE TRIGGER oauth_access_tokens_revoked AFTER UPDATE OF revoked_at ON oauth_access_tokens
WHEN OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (1, NEW.id, CAST(strftime('%s', 'now') AS INTEGER));
END;

-- Deleting an expired token needs no message: every node checks expiry itself.
CREATE TRIGGER oauth_access_tokens_deleted AFTER DELETE ON oauth_access_tokens
WHEN OLD.revoked_at IS NULL AND OLD.expires_at > CAST(strftime('%s', 'now') AS INTEGER)
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (1, OLD.id, CAST(strftime('%s', 'now') AS INTEGER));
END;

CREATE TRIGGER users_changed AFTER UPDATE ON users
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (2, NEW.id, CAST(strftime('%s', 'now') AS INTEGER));
END;

CREATE TRIGGER users_deleted AFTER DELETE ON users
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (2, OLD.id, CAST(strftime('%s', 'now') AS INTEGER));
END;

CREATE TRIGGER oauth_applications_changed AFTER UPDATE ON oauth_applications
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (3, NEW.id, CAST(strftime('%s', 'now') AS INTEGER));
END;

CREATE TRIGGER oauth_applications_deleted AFTER DELETE ON oauth_applications
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (3, OLD.id, CAST(strftime('%s', 'now') AS INTEGER));
END;
