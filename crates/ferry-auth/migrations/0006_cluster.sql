-- Shared enforcement for several ferry nodes on one database (used with PostgreSQL; created here too
-- so both databases have the same tables).
--   cluster_nodes: each running node, alive while `expires` (milliseconds since 1970, database clock)
--     is ahead; renewed by the node's heartbeat. A node that stops renewing stops counting.
--   connection_leases: one row per open connection of a node (client address, and the user once
--     logged in, for per-user session limits); goes with its node.
--   defender_events: login-defender scores per client address (`at`: unix seconds).
CREATE TABLE cluster_nodes (
    node    TEXT PRIMARY KEY NOT NULL,
    expires INTEGER NOT NULL
);
CREATE TABLE connection_leases (
    id        INTEGER PRIMARY KEY,
    node      TEXT NOT NULL REFERENCES cluster_nodes (node) ON DELETE CASCADE,
    ip        TEXT NOT NULL,
    user_name TEXT,
    created   INTEGER NOT NULL
);
CREATE INDEX connection_leases_ip ON connection_leases (ip);
CREATE INDEX connection_leases_user ON connection_leases (user_name);
CREATE INDEX connection_leases_node ON connection_leases (node);
CREATE TABLE defender_events (
    ip    TEXT NOT NULL,
    at    INTEGER NOT NULL,
    score INTEGER NOT NULL
);
CREATE INDEX defender_events_ip ON defender_events (ip, at);
