-- Issue 15: the periodic purge must not scan the token table. It deleted
-- `revoked_at <= cutoff OR (refresh_token_hash IS NULL AND expires_at <= cutoff)` in one
-- statement, which no index serves: on 10^7 rows it held the write lock for over a second,
-- and the token writer waiting behind it answered 503. Now each half has a partial index
-- that holds only the rows it can delete, and the purge deletes in bounded batches.
-- Both indexes grow at their right edge (times), so they cost an issuance or a rotation
-- one appended entry; the full `expires_at` index, used by nothing else, goes.
DROP INDEX oauth_access_tokens_expires_at;
CREATE INDEX oauth_access_tokens_revoked_at ON oauth_access_tokens (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX oauth_access_tokens_expires_without_refresh ON oauth_access_tokens (expires_at) WHERE refresh_token_hash IS NULL;
