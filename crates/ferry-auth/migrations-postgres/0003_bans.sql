-- Bans of client addresses by the login defender (or by `ferry ban add`). Kept in the user
-- database so that every node sharing it enforces the same bans, and so bans survive restarts.
-- `ip` is the canonical text form (IPv4-mapped IPv6 addresses are stored as IPv4); `until` and
-- `created` are unix seconds; `count` is how many times the address has been banned (each ban
-- lasts longer than the previous one); `reason` is free text for `ferry ban list`.
CREATE TABLE bans (
    ip      TEXT PRIMARY KEY NOT NULL,
    until   BIGINT NOT NULL,
    count   BIGINT NOT NULL DEFAULT 1,
    reason  TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX bans_until ON bans (until);
