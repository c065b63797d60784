-- Issue 15: a rotation records its successor's id in the row it revokes, whose page the
-- revocation writes anyway, instead of adding an entry at its chain's place in the index of
-- families: that entry was a page of its own for nearly every rotation (38 % of a rotation's
-- WAL frames). Reuse detection (RFC 9700 §4.14.2) and revocation (RFC 7009 §2.1) walk a
-- chain forward from the presented row by primary key.
--
-- No foreign key: a deleted successor would make SQLite scan the table for the rows naming
-- it. The purge deletes revoked rows oldest first, so what remains of a chain is its tail
-- and the walk from any remaining row still reaches the newest.
ALTER TABLE oauth_access_tokens ADD COLUMN successor_id BIGINT;
-- Chains rotated before this migration: each row's successor is the next row of its
-- family (rotation revokes one row and inserts the next, so ids increase along a chain).
UPDATE oauth_access_tokens SET successor_id = (
    SELECT min(later.id) FROM oauth_access_tokens AS later
    WHERE later.family = oauth_access_tokens.family
      AND later.refresh_token_hash IS NOT NULL
      AND later.id > oauth_access_tokens.id)
WHERE refresh_token_hash IS NOT NULL;
DROP INDEX oauth_access_tokens_family;
