-- SSH public keys that may log in as a user (SFTP). `algorithm` and `key_base64` are the first two
-- fields of an OpenSSH authorized_keys line, `fingerprint` its "SHA256:..." form (computed by the
-- caller, used to name a key in `ferry user key del`); `created` is unix seconds. A user's keys go
-- with the user.
CREATE TABLE user_keys (
    user_name   TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    algorithm   TEXT NOT NULL,
    key_base64  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    comment     TEXT NOT NULL DEFAULT '',
    created     BIGINT NOT NULL,
    PRIMARY KEY (user_name, key_base64)
);
CREATE INDEX user_keys_fingerprint ON user_keys (user_name, fingerprint);
