-- Each node also caches every user's group claims (src/store/cache.rs): a user in a
-- thousand groups would otherwise cost a thousand-row query on every UserInfo answer and
-- refreshed id_token. These triggers log (and NOTIFY, as migration 0007) what makes such an
-- entry wrong, in the same transaction as the change, like migration 0006:
-- kind 4 = the group claims of one user (users.id): a direct membership added, changed or
--          removed (removals by cascade included; an update that changes nothing logs nothing);
-- kind 5 = every user's group claims: a group created (the members of its ancestors inherit
--          it), deleted, or given a new full path (renamed or moved).
CREATE FUNCTION doorward_group_member_invalidation() RETURNS trigger LANGUAGE plpgsql AS $$ -- backend-specific
DECLARE
    subject BIGINT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        subject := OLD.user_id;
    ELSE
        subject := NEW.user_id;
    END IF;
    INSERT INTO cache_invalidations (kind, subject) VALUES (4, subject);
    PERFORM pg_notify('doorward_cache_invalidations', '4:' || subject);
    RETURN NULL;
END
$$;

CREATE TRIGGER group_members_added AFTER INSERT ON group_members
FOR EACH ROW EXECUTE FUNCTION doorward_group_member_invalidation();

CREATE TRIGGER group_members_changed AFTER UPDATE ON group_members
FOR EACH ROW WHEN (OLD.access_level IS DISTINCT FROM NEW.access_level OR OLD.expires_at IS DISTINCT FROM NEW.expires_at)
EXECUTE FUNCTION doorward_group_member_invalidation();

CREATE TRIGGER group_members_removed AFTER DELETE ON group_members
FOR EACH ROW EXECUTE FUNCTION doorward_group_member_invalidation();

CREATE TRIGGER groups_created AFTER INSERT ON groups
FOR EACH ROW EXECUTE FUNCTION doorward_cache_invalidation('5');

CREATE TRIGGER groups_moved AFTER UPDATE OF full_path ON groups
FOR EACH ROW WHEN (OLD.full_path <> NEW.full_path)
EXECUTE FUNCTION doorward_cache_invalidation('5');

CREATE TRIGGER groups_deleted AFTER DELETE ON groups
FOR EACH ROW EXECUTE FUNCTION doorward_cache_invalidation('5');
