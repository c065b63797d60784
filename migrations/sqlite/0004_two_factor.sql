-- Two-factor authentication (TOTP, RFC 6238): the encrypted shared secret, recovery codes
-- (SHA-256 only), and the sign-ins whose password passed but whose second factor is pending.
CREATE TABLE user_two_factor (
    user_id          INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_encrypted BLOB    NOT NULL,
    created_at       BIGINT  NOT NULL,
    confirmed_at     BIGINT,
    last_used_step   BIGINT  NOT NULL DEFAULT 0
);

CREATE TABLE two_factor_recovery_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB    NOT NULL,
    created_at BIGINT  NOT NULL,
    used_at    BIGINT
);
CREATE INDEX two_factor_recovery_codes_user_id ON two_factor_recovery_codes (user_id);

CREATE TABLE two_factor_challenges (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash BLOB    NOT NULL UNIQUE,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    return_to  TEXT,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    attempts   BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX two_factor_challenges_expires_at ON two_factor_challenges (expires_at);
