-- Each node also caches every user's group claims (src/store/cache.rs): a user in a
-- thousand groups would otherwise cost a thousand-row query on every UserInfo answer and
-- refreshed id_token. These triggers log what makes such an entry wrong, in the same
-- transaction as the change, like migration 0006:
-- kind 4 = the group claims of one user (users.id): a direct membership added, changed or
--          removed (removals by cascade included; an update that changes nothing logs nothing);
-- kind 5 = every user's group claims: a group created (the members of its ancestors inherit
--          it), deleted, or given a new full path (renamed or moved).
CREATE TRIGGER group_members_added AFTER INSERT ON group_members
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (4, NEW.user_id, CAST(strftime('%s', 'now') AS INTEGER));
END;

CREATE TRIGGER group_members_changed AFTER UPDATE ON group_members
WHEN OLD.access_level IS NOT NEW.access_level OR OLD.expires_at IS NOT NEW.expires_at
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (4, NEW.user_id, CAST(strftime('%s', 'now') AS INTEGER));
END;

CREATE TRIGGER group_members_removed AFTER DELETE ON group_members
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (4, OLD.user_id, CAST(strftime('%s', 'now') AS INTEGER));
END;

CREATE TRIGGER groups_created AFTER INSERT ON groups
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (5, NEW.id, CAST(strftime('%s', 'now') AS INTEGER));
END;

CREATE TRIGGER groups_moved AFTER UPDATE OF full_path ON groups
WHEN OLD.full_path <> NEW.full_path
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (5, NEW.id, CAST(strftime('%s', 'now') AS INTEGER));
END;

CREATE TRIGGER groups_deleted AFTER DELETE ON groups
BEGIN
    INSERT INTO cache_invalidations (kind, subject, created_at)
    VALUES (5, OLD.id, CAST(strftime('%s', 'now') AS INTEGER));
END;
