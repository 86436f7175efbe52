-- SSH local port forwarding (`direct-tcpip`) targets a user may open, with OpenSSH `PermitOpen`
-- semantics: `host` is compared as written (no name resolution) and `*` matches any host; `port` is a
-- TCP port, or 0 for any port (`*`). No rows: no forwarding. A user's targets go with the user.
CREATE TABLE user_forwards (
    user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    host      TEXT NOT NULL,
    port      BIGINT NOT NULL,
    PRIMARY KEY (user_name, host, port)
);
