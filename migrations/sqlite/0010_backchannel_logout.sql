-- OpenID Connect Back-Channel Logout 1.0. An application may register where to be told
-- that a session it got an id_token in has ended.
ALTER TABLE oauth_applications ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE oauth_applications ADD COLUMN backchannel_logout_session_required BOOLEAN NOT NULL DEFAULT FALSE;
-- The browser session an authorization code or a device approval was made in.
ALTER TABLE oauth_grants ADD COLUMN session_id BIGINT;
ALTER TABLE oauth_device_grants ADD COLUMN session_id BIGINT;

-- Which applications got an id_token in which browser session, under which sid.
CREATE TABLE session_logins (
    session_id     BIGINT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    application_id BIGINT NOT NULL REFERENCES oauth_applications (id) ON DELETE CASCADE,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sid            TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (session_id, application_id, sid)
);

-- Logout tokens still to deliver, written by the trigger below in the same transaction as
-- the end of the session, whichever code path (sign-out, a block, a password change) ended
-- it; a worker on every node claims due rows one at a time, retrying with backoff.
CREATE TABLE backchannel_logouts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    application_id  BIGINT  NOT NULL REFERENCES oauth_applications (id) ON DELETE CASCADE,
    user_id         BIGINT  NOT NULL,
    sid             TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX backchannel_logouts_next_attempt_at ON backchannel_logouts (next_attempt_at);

-- A session that ends before it expires (sign-out, block, password change, idle end) tells
-- every application that got an id_token in it, if the application listens. BEFORE the
-- delete, so the session's logins are still there to read.
CREATE TRIGGER sessions_ended BEFORE DELETE ON sessions
WHEN OLD.expires_at > CAST(strftime('%s', 'now') AS INTEGER)
BEGIN
    INSERT INTO backchannel_logouts (application_id, user_id, sid, attempts, next_attempt_at, created_at)
    SELECT l.application_id, l.user_id, l.sid, 0, 0, CAST(strftime('%s', 'now') AS INTEGER)
    FROM session_logins l JOIN oauth_applications a ON a.id = l.application_id
    WHERE l.session_id = OLD.id AND a.backchannel_logout_uri IS NOT NULL;
END;
