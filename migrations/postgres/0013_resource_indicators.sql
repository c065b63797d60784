-- RFC 8707 resource indicators (issue 13). Space-separated absolute URIs (a URI holds no
-- space); NULL when the authorization named none, which behaves as before.
-- oauth_grants.resources: what the user authorized at /oauth/authorize.
-- oauth_access_tokens.resources: the same, carried along a refresh chain, so that every
--   refresh may name any subset of it (RFC 8707 §2.2);
-- oauth_access_tokens.audience: the resources this access token is for (its `aud`).
ALTER TABLE oauth_grants ADD COLUMN resources TEXT;
ALTER TABLE oauth_access_tokens ADD COLUMN resources TEXT;
ALTER TABLE oauth_access_tokens ADD COLUMN audience TEXT;
-- When a dynamically registered application first got a code: registrations never used
-- are purged after DOORWARD_DYNAMIC_CLIENT_PURGE_AFTER_DAYS (codes and tokens themselves
-- are purged after a week, so their absence cannot tell).
ALTER TABLE oauth_applications ADD COLUMN first_used_at BIGINT;
