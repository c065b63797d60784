-- OpenID Connect signing keys, shared by every node. `generation` is unique, so two nodes
-- generating the first key (or two rotations) at once cannot both win: the newest
-- generation signs, older ones stay published until their tokens have expired. The
-- private key is stored only encrypted (AES-256-GCM under a subkey of the master key).
CREATE TABLE signing_keys (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    generation            BIGINT  NOT NULL UNIQUE,
    kid                   TEXT    NOT NULL UNIQUE,
    alg                   TEXT    NOT NULL,
    private_key_encrypted BLOB    NOT NULL,
    created_at            BIGINT  NOT NULL
);
