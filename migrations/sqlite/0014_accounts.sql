-- Accounts people can run an instance with (issue 12): confirmed addresses, single-use mailed
-- tokens, the mail queue and audit events.
--
-- users.confirmed_at: when the current address was confirmed (NULL: not yet). Accounts that
-- exist before this migration were made by an administrator, who vouched for the address,
-- so they count as confirmed from their creation.
-- users.unconfirmed_email: a new address waiting for confirmation; the old one stays in use
-- (sign-in, claims, mail) until the link in the mail to the new one is followed.
ALTER TABLE users ADD COLUMN confirmed_at BIGINT;
ALTER TABLE users ADD COLUMN unconfirmed_email TEXT;
UPDATE users SET confirmed_at = created_at;

-- Confirmation and password-reset links. Only SHA-256 of the token is stored; a row is
-- deleted when used, when a newer one of the same purpose is made for the user, and (reset)
-- when the password changes. `email` is the address a confirmation confirms.
CREATE TABLE account_tokens (
    id           INTEGER PRIMARY KEY,
    token_hash   BLOB    NOT NULL UNIQUE,
    user_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose      TEXT    NOT NULL,
    email        TEXT    NOT NULL,
    created_at   BIGINT  NOT NULL,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX account_tokens_user_id ON account_tokens (user_id, purpose);

-- Mail waiting to be sent: the whole RFC 5322 message, made when the request was served. A
-- worker on every node claims due rows one at a time by a conditional UPDATE (as the
-- back-channel logout queue), so no two nodes send the same message; sent rows are deleted.
CREATE TABLE mail_queue (
    id              INTEGER PRIMARY KEY,
    recipient       TEXT    NOT NULL,
    message         TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT
);
CREATE INDEX mail_queue_due ON mail_queue (next_attempt_at);

-- Audit events, written in the same transaction as what they record. `details` is a JSON
-- object (GitLab's shape: action, target, ...); never a secret or token in it.
CREATE TABLE audit_events (
    id           INTEGER PRIMARY KEY,
    author_id    BIGINT,
    entity_type  TEXT    NOT NULL,
    entity_id    BIGINT  NOT NULL,
    action       TEXT    NOT NULL,
    details      TEXT    NOT NULL,
    ip_address   TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT  NOT NULL
);
CREATE INDEX audit_events_created_at ON audit_events (created_at);
CREATE INDEX audit_events_entity ON audit_events (entity_type, entity_id);
