-- Applications a group owns (GitLab: group Settings → Applications), managed by any Owner
-- of the group and deleted with it. An application has at most one of owner_id (a user's)
-- and group_id; with neither it is instance-wide.
ALTER TABLE oauth_applications ADD COLUMN group_id BIGINT REFERENCES groups (id) ON DELETE CASCADE;
CREATE INDEX oauth_applications_group_id ON oauth_applications (group_id);
