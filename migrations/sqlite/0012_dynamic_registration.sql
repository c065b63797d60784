-- RFC 7591 dynamic client registration and RFC 7592 management (issue 13). A dynamically
-- registered application keeps the SHA-256 of its registration access token (the bearer
-- credential of `/oauth/register/<client_id>`; NULL for every other application, which
-- is how the two kinds are told apart) and the token endpoint authentication method it
-- asked for, echoed back as RFC 7591 §3.2.1 requires.
ALTER TABLE oauth_applications ADD COLUMN registration_token_hash BLOB; -- backend-specific
ALTER TABLE oauth_applications ADD COLUMN token_endpoint_auth_method TEXT;
