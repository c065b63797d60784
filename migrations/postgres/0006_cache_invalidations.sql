-- What each node's in-process cache of validated tokens and applications must forget.
-- Triggers write a row in the same transaction as every change that can make a cached
-- value wrong (a token revoked or deleted while live, a user or an application changed or
-- deleted), so no code path can forget to; every node polls the rows it has not applied
-- yet (see src/store/cache.rs). Rows are purged after an hour.
-- kind: 1 = oauth_access_tokens.id, 2 = users.id, 3 = oauth_applications.id
--
-- `txid` is the writing transaction's id. Sequence values are not committed in order, so
-- polling by `id` could skip a row whose transaction commits after a later one; instead a
-- node reads every row whose transaction was not yet finished at its previous poll
-- (`txid >=` that poll's snapshot xmin), which misses nothing.
CREATE TABLE cache_invalidations (
    id         BIGSERIAL PRIMARY KEY,
    kind       SMALLINT NOT NULL,
    subject    BIGINT   NOT NULL,
    created_at BIGINT   NOT NULL DEFAULT (EXTRACT(EPOCH FROM now())::BIGINT),
    txid       BIGINT   NOT NULL DEFAULT (pg_current_xact_id()::TEXT::BIGINT)
);
CREATE INDEX cache_invalidations_created_at ON cache_invalidations (created_at);
CREATE INDEX cache_invalidations_txid ON cache_invalidations (txid); -- backend-specific

CREATE FUNCTION doorward_cache_invalidation() RETURNS trigger LANGUAGE plpgsql AS $$ -- backend-specific
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO cache_invalidations (kind, subject) VALUES (TG_ARGV[0]::SMALLINT, OLD.id);
    ELSE
        INSERT INTO cache_invalidations (kind, subject) VALUES (TG_ARGV[0]::SMALLINT, NEW.id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER oauth_access_tokens_revoked AFTER UPDATE OF revoked_at ON oauth_access_tokens
FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
EXECUTE FUNCTION doorward_cache_invalidation('1');

-- Deleting an expired token needs no message: every node checks expiry itself.
CREATE TRIGGER oauth_access_tokens_deleted AFTER DELETE ON oauth_access_tokens
FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND OLD.expires_at > EXTRACT(EPOCH FROM now())::BIGINT)
EXECUTE FUNCTION doorward_cache_invalidation('1');

CREATE TRIGGER users_changed AFTER UPDATE ON users
FOR EACH ROW EXECUTE FUNCTION doorward_cache_invalidation('2');

CREATE TRIGGER users_deleted AFTER DELETE ON users
FOR EACH ROW EXECUTE FUNCTION doorward_cache_invalidation('2');

CREATE TRIGGER oauth_applications_changed AFTER UPDATE ON oauth_applications
FOR EACH ROW EXECUTE FUNCTION doorward_cache_invalidation('3');

CREATE TRIGGER oauth_applications_deleted AFTER DELETE ON oauth_applications
FOR EACH ROW EXECUTE FUNCTION doorward_cache_invalidation('3');
