//! Shared enforcement for several ferry nodes on one PostgreSQL database (migration
//! `0006_cluster.sql`): node heartbeats, connection leases per client address and per user, login
//! defender scores, and the notifications that carry ban changes to every node.
//!
//! Each node registers under a name of its own and renews its registration with
//! [`Cluster::heartbeat`]; its leases count only while the registration is fresh, so the connections of
//! a node that crashed or lost the database stop counting after [`NODE_TTL`], and its rows are removed
//! by the next heartbeat of any node after [`NODE_FORGET`]. Taking a lease is one round trip (a
//! function that serialises the leases of one address with an advisory lock).
//!
//! SQLite stores have no [`Cluster`]: one node enforces everything in memory, as before.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sqlx::postgres::{PgListener, PgPool};
use sqlx::Row;

use crate::defender::bans::{unix, BanChange, BAN_CHANNEL};
use crate::defender::canonical;
use crate::error::Error;
use crate::store::UserStore;

/// A node whose registration is older than this no longer counts: its leases stop holding slots.
pub const NODE_TTL: Duration = Duration::from_secs(6);
/// How often a node renews its registration (a third of [`NODE_TTL`], so two missed beats are survived).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A node expired for this long is removed with its leases.
pub const NODE_FORGET: Duration = Duration::from_secs(60);

/// The shared state of the nodes on one PostgreSQL database, as seen by one node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Cluster {
    pool: PgPool,
    node: Arc<str>,
}

impl UserStore {
    /// The cluster coordinated through this store's database, for the node called `node`; `None` for
    /// SQLite (one node, in memory).
    pub fn cluster(&self, node: &str) -> Option<Cluster> {
        self.db.postgres().map(|pool| Cluster {
            pool: pool.clone(),
            node: Arc::from(node),
        })
    }
}

impl Cluster {
    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Registers this node, or renews its registration, for [`NODE_TTL`]; removes nodes expired for
    /// longer than [`NODE_FORGET`] (and so their leases). One round trip.
    pub async fn heartbeat(&self) -> Result<(), Error> {
        sqlx::query(
            "WITH forgotten AS \
             (DELETE FROM cluster_nodes WHERE expires < ferry_now_ms() - $3 AND node <> $1) \
             INSERT INTO cluster_nodes (node, expires) VALUES ($1, ferry_now_ms() + $2) \
             ON CONFLICT (node) DO UPDATE SET expires = EXCLUDED.expires",
        )
        .bind(&*self.node)
        .bind(millis(NODE_TTL))
        .bind(millis(NODE_FORGET))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Removes this node and its leases (at shutdown).
    pub async fn leave(&self) -> Result<(), Error> {
        sqlx::query("DELETE FROM cluster_nodes WHERE node = $1")
            .bind(&*self.node)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A lease for one connection from `ip`, unless the live nodes hold `max` leases for that address
    /// already: the lease id, or `None`. One round trip.
    pub async fn take_lease(&self, ip: IpAddr, max: usize) -> Result<Option<i64>, Error> {
        let row = sqlx::query("SELECT ferry_take_lease($1, $2, $3) AS id")
            .bind(&*self.node)
            .bind(canonical(ip).to_string())
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<i64>, _>("id")?)
    }

    /// Marks lease `lease` as a session of `user`, unless the live nodes hold `max` sessions of that
    /// user already: whether it was marked. One round trip.
    pub async fn claim_user(&self, lease: i64, user: &str, max: usize) -> Result<bool, Error> {
        let row = sqlx::query("SELECT ferry_claim_user($1, $2, $3) AS ok")
            .bind(lease)
            .bind(user)
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<Option<bool>, _>("ok")?.unwrap_or(false))
    }

    /// Gives back leases (of connections that ended). One round trip for any number.
    pub async fn release(&self, leases: &[i64]) -> Result<(), Error> {
        if leases.is_empty() {
            return Ok(());
        }
        sqlx::query("DELETE FROM connection_leases WHERE id = ANY($1)")
            .bind(leases)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Leases held for `ip` by live nodes (for tests and diagnostics).
    pub async fn leases(&self, ip: IpAddr) -> Result<u64, Error> {
        let row = sqlx::query(
            "SELECT count(*) AS n FROM connection_leases l JOIN cluster_nodes n ON n.node = l.node \
             WHERE l.ip = $1 AND n.expires > ferry_now_ms()",
        )
        .bind(canonical(ip).to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0))
    }

    /// Listens for ban changes made by any node or by `ferry ban` on this database.
    pub async fn ban_changes(&self) -> Result<BanChanges, Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(BAN_CHANNEL).await?;
        Ok(BanChanges(listener))
    }
}

/// Ban changes as they are committed (PostgreSQL `LISTEN`).
#[derive(Debug)]
pub struct BanChanges(PgListener);

impl BanChanges {
    /// The next change. `Ok(None)`: the connection was lost and is being made again; changes in
    /// between may have been missed, so reload the bans. Unreadable payloads are skipped.
    pub async fn next(&mut self) -> Result<Option<BanChange>, Error> {
        loop {
            match self.0.try_recv().await? {
                None => return Ok(None),
                Some(n) => {
                    if let Some(change) = BanChange::parse(n.payload()) {
                        return Ok(Some(change));
                    }
                }
            }
        }
    }
}

impl UserStore {
    /// Adds `score` for `ip` at `now` to the scores shared by every node, and returns the address's
    /// total since `since`; `None` on SQLite (scores stay in the node's memory). One round trip.
    pub(crate) async fn add_shared_score(
        &self,
        ip: IpAddr,
        score: u32,
        now: SystemTime,
        since: SystemTime,
    ) -> Option<Result<u32, Error>> {
        let pool = self.db.postgres()?;
        let result = sqlx::query("SELECT ferry_add_score($1, $2, $3, $4) AS total")
            .bind(canonical(ip).to_string())
            .bind(i64::from(score))
            .bind(unix(now))
            .bind(unix(since))
            .fetch_one(pool)
            .await
            .and_then(|row| row.try_get::<Option<i64>, _>("total"))
            .map(|total| u32::try_from(total.unwrap_or(0)).unwrap_or(u32::MAX))
            .map_err(Error::from);
        Some(result)
    }

    /// Forgets the shared scores of `ip` (it was just banned, or unbanned by hand). Nothing on SQLite.
    pub(crate) async fn clear_shared_scores(&self, ip: IpAddr) -> Result<(), Error> {
        if let Some(pool) = self.db.postgres() {
            sqlx::query("DELETE FROM defender_events WHERE ip = $1")
                .bind(canonical(ip).to_string())
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// Removes shared scores older than `before`. Nothing on SQLite.
    pub(crate) async fn prune_shared_scores(&self, before: SystemTime) -> Result<(), Error> {
        if let Some(pool) = self.db.postgres() {
            sqlx::query("DELETE FROM defender_events WHERE at < $1")
                .bind(unix(before))
                .execute(pool)
                .await?;
        }
        Ok(())
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
