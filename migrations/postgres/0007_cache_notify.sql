-- Pushes each cache invalidation to the nodes as it commits, beside the log row that stays
-- the guarantee (src/store/invalidations.rs): every node LISTENs on this channel and evicts
-- at once, so another node's revocation is seen in milliseconds instead of at the next poll
-- of the log. NOTIFY is transactional: it is delivered at commit, never for a rollback.
-- A node that misses a message (reconnecting, say) still reads the row at its next poll.
CREATE OR REPLACE FUNCTION doorward_cache_invalidation() RETURNS trigger LANGUAGE plpgsql AS $$ -- backend-specific
DECLARE
    subject BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        subject := OLD.id;
    ELSE
        subject := NEW.id;
    END IF;
    INSERT INTO cache_invalidations (kind, subject) VALUES (TG_ARGV[0]::SMALLINT, subject);
    PERFORM pg_notify('doorward_cache_invalidations', TG_ARGV[0] || ':' || subject);
    RETURN NULL;
END
$$;
