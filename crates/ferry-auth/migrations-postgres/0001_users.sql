-- Users of the ferry server. `permissions` holds the canonical text form of
-- `ferry_auth::Permissions` (e.g. "list,read"); `created` is unix seconds.
CREATE TABLE users (
    name          TEXT PRIMARY KEY NOT NULL,
    password_hash TEXT NOT NULL,
    home          TEXT NOT NULL,
    permissions   TEXT NOT NULL,
    enabled       BIGINT NOT NULL DEFAULT 1,
    created       BIGINT NOT NULL
);
