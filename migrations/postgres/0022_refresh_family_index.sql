-- Issue 15: a refresh chain is only ever looked up from one of its refresh tokens (reuse
-- detection, RFC 9700 §4.14.2; revocation, RFC 7009 §2.1), and every row of a chain
-- carries a refresh token: rotation always issues one. A token issued without one (client
-- credentials, the implicit grant) begins a chain no lookup can reach, so its `family` needs
-- no index entry: one page fewer written by every such issuance.
DROP INDEX oauth_access_tokens_family;
CREATE INDEX oauth_access_tokens_family ON oauth_access_tokens (family) WHERE refresh_token_hash IS NOT NULL;
