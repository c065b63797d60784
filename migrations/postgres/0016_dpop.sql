-- RFC 9449 DPoP (issue 14). A bound access token (and its refresh token, for a public
-- client) carries the RFC 7638 thumbprint of the proof key; a code bound by `dpop_jkt`
-- (§10) carries it too. NULL: an ordinary bearer token, or an unbound code.
ALTER TABLE oauth_access_tokens ADD COLUMN dpop_jkt TEXT;
ALTER TABLE oauth_grants ADD COLUMN dpop_jkt TEXT;
-- Proofs seen (§11.1 replay): SHA-256 of the key thumbprint and the proof's `jti`, kept
-- until the proof's `iat` window has passed. One insert per proof; a second is a replay,
-- on whichever node it arrives.
CREATE TABLE dpop_proofs (
    proof_hash  BYTEA   NOT NULL PRIMARY KEY,
    expires_at  BIGINT  NOT NULL
);
CREATE INDEX dpop_proofs_expires_at ON dpop_proofs (expires_at);
