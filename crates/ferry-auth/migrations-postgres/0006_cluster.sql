-- Shared enforcement for several ferry nodes on one database (the same tables as the SQLite
-- migration, plus the functions that take a lease or add a score in one round trip).
--   cluster_nodes: each running node, alive while `expires` (milliseconds since 1970, database clock)
--     is ahead; renewed by the node's heartbeat. A node that stops renewing stops counting.
--   connection_leases: one row per open connection of a node (client address, and the user once
--     logged in, for per-user session limits); goes with its node.
--   defender_events: login-defender scores per client address (`at`: unix seconds).
CREATE TABLE cluster_nodes (
    node    TEXT PRIMARY KEY NOT NULL,
    expires BIGINT NOT NULL
);
CREATE TABLE connection_leases (
    id        BIGSERIAL PRIMARY KEY,
    node      TEXT NOT NULL REFERENCES cluster_nodes (node) ON DELETE CASCADE,
    ip        TEXT NOT NULL,
    user_name TEXT,
    created   BIGINT NOT NULL
);
CREATE INDEX connection_leases_ip ON connection_leases (ip);
CREATE INDEX connection_leases_user ON connection_leases (user_name);
CREATE INDEX connection_leases_node ON connection_leases (node);
CREATE TABLE defender_events (
    ip    TEXT NOT NULL,
    at    BIGINT NOT NULL,
    score BIGINT NOT NULL
);
CREATE INDEX defender_events_ip ON defender_events (ip, at);

-- The database clock in milliseconds since 1970 (one clock for every node).
CREATE FUNCTION ferry_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE AS
$$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT $$;

-- A lease for one connection from `p_ip` on node `p_node`, unless live nodes hold `p_max` leases for
-- that address already: the lease id, or NULL. Leases of one address are taken one at a time (an
-- advisory lock per address), and each statement below sees what the previous holder committed.
CREATE FUNCTION ferry_take_lease(p_node TEXT, p_ip TEXT, p_max BIGINT) RETURNS BIGINT
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    held  BIGINT;
    lease BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('ferry ip ' || p_ip, 0));
    SELECT count(*) INTO held FROM connection_leases l JOIN cluster_nodes n ON n.node = l.node
     WHERE l.ip = p_ip AND n.expires > ferry_now_ms();
    IF held >= p_max THEN
        RETURN NULL;
    END IF;
    INSERT INTO connection_leases (node, ip, created) VALUES (p_node, p_ip, ferry_now_ms())
    RETURNING id INTO lease;
    RETURN lease;
END $$;

-- Marks lease `p_lease` as a session of user `p_user`, unless live nodes hold `p_max` sessions of that
-- user already (then the lease is left as it was): whether it was marked.
CREATE FUNCTION ferry_claim_user(p_lease BIGINT, p_user TEXT, p_max BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    held BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('ferry user ' || p_user, 0));
    SELECT count(*) INTO held FROM connection_leases l JOIN cluster_nodes n ON n.node = l.node
     WHERE l.user_name = p_user AND l.id <> p_lease AND n.expires > ferry_now_ms();
    IF held >= p_max THEN
        RETURN FALSE;
    END IF;
    UPDATE connection_leases SET user_name = p_user WHERE id = p_lease;
    RETURN FOUND;
END $$;

-- Adds `p_score` for `p_ip` at `p_now` and returns the address's total since `p_since`.
CREATE FUNCTION ferry_add_score(p_ip TEXT, p_score BIGINT, p_now BIGINT, p_since BIGINT) RETURNS BIGINT
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO defender_events (ip, at, score) VALUES (p_ip, p_now, p_score);
    RETURN (SELECT COALESCE(sum(score), 0)::BIGINT FROM defender_events WHERE ip = p_ip AND at >= p_since);
END $$;
