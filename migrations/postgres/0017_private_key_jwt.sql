-- RFC 7523 private_key_jwt client authentication and RFC 9101 request objects (issue 14).
-- A client that authenticates with a signed JWT registers its public keys: a JWK Set as
-- JSON text (`jwks`) or the URL it is fetched from (`jwks_uri`); at most one is set, and
-- `token_endpoint_auth_method` is then 'private_key_jwt'. Assertion `jti`s go to
-- `dpop_proofs` (now every single-use JWT identifier), keyed by a hash that names their kind.
ALTER TABLE oauth_applications ADD COLUMN jwks TEXT;
ALTER TABLE oauth_applications ADD COLUMN jwks_uri TEXT;
