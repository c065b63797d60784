-- GitLab's groups (namespaces of kind Group), nested up to 20 levels, and their members.
-- full_path ("acme/infra") is kept on every row so a group is found by its path with one
-- indexed lookup; moving or renaming a group rewrites its subtree's paths in the same
-- transaction.
CREATE TABLE groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id   BIGINT  REFERENCES groups (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    full_path   TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    visibility  TEXT    NOT NULL DEFAULT 'private',
    depth       BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
-- Paths are unique per parent, case-insensitively (GitLab's routes): the same as unique
-- full paths.
CREATE UNIQUE INDEX groups_full_path_key ON groups (lower(full_path));
CREATE INDEX groups_parent_id ON groups (parent_id);

-- Every (ancestor, descendant) pair, and each group with itself at distance 0, so that
-- inherited membership and the OpenID claims are one indexed join, whatever the depth.
CREATE TABLE group_closure (
    ancestor_id   BIGINT  NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    descendant_id BIGINT  NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    distance      BIGINT  NOT NULL,
    PRIMARY KEY (ancestor_id, descendant_id)
);
CREATE INDEX group_closure_descendant_id ON group_closure (descendant_id);

-- Direct memberships; access_level is GitLab's (5, 10, 20, 30, 40, 50); expires_at is
-- 00:00 UTC of the expiry date, from which the membership no longer counts.
CREATE TABLE group_members (
    group_id     BIGINT   NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id      BIGINT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access_level SMALLINT NOT NULL,
    expires_at   BIGINT,
    created_at   BIGINT   NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_id ON group_members (user_id);
