-- Issue 15: fewer pages written per issued token. Every index entry of a new token goes to
-- the right edge of its index (ordered token keys, `domain::secret::token_key`) or nowhere:
-- `refresh_token_hash`, `grant_id` and `user_id` are NULL for many tokens (client
-- credentials have none of them), and a partial index holds no entry for them. (SQLite
-- also rebuilds the table without AUTOINCREMENT; an identity column needs nothing.)
ALTER TABLE oauth_access_tokens DROP CONSTRAINT oauth_access_tokens_refresh_token_hash_key; -- backend-specific
DROP INDEX oauth_access_tokens_user_application;
DROP INDEX oauth_access_tokens_grant_id;
CREATE UNIQUE INDEX oauth_access_tokens_refresh ON oauth_access_tokens (refresh_token_hash) WHERE refresh_token_hash IS NOT NULL;
CREATE INDEX oauth_access_tokens_user_application ON oauth_access_tokens (user_id, application_id) WHERE user_id IS NOT NULL;
CREATE INDEX oauth_access_tokens_grant_id ON oauth_access_tokens (grant_id) WHERE grant_id IS NOT NULL;
