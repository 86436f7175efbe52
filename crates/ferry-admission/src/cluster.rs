//! Limits and bans that hold across every node sharing one PostgreSQL user database.
//!
//! [`ClusterLimits`] makes `max_per_ip` count the connections of every node: each admitted connection
//! holds a lease in the database (one round trip when it arrives; leases of ended connections are given
//! back in batches), and a node's leases count only while its heartbeat is fresh, so a crashed node's
//! slots free themselves within [`NODE_TTL`](ferry_auth::cluster::NODE_TTL). [`run_cluster`] is the
//! node's background task: heartbeats, giving leases back, and applying ban changes announced by other
//! nodes (PostgreSQL `LISTEN`), so a ban decided anywhere refuses the address here within milliseconds.
//!
//! When the database cannot be reached, admission does what [`ClusterLimits::fail_open`] says: refuse
//! new connections (the default; logins need the database anyway) or admit them on this node's own
//! limits and last known bans. Loopback clients and the defender's allow-list are always admitted, so a
//! local health check is never locked out. Nothing here runs per command, and nothing at all for a
//! single node on SQLite.

use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ferry_auth::cluster::{BanChanges, Cluster, HEARTBEAT};
use ferry_auth::defender::{BanChange, Defender};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

/// Longest wait for one cluster query at admission; beyond it the database counts as unreachable.
pub const CLUSTER_QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Lease releases kept for a retry while the database is unreachable; beyond that they are dropped
/// (the node's leases are forgotten anyway if the outage outlasts the node's registration).
const MAX_PENDING_RELEASES: usize = 65_536;

/// Connection limits shared by every node on the database (see the module docs).
#[derive(Debug)]
pub struct ClusterLimits {
    cluster: Cluster,
    max_per_ip: usize,
    max_per_user: usize,
    fail_open: bool,
    healthy: AtomicBool,
    releases: mpsc::UnboundedSender<i64>,
    released: Mutex<Option<mpsc::UnboundedReceiver<i64>>>,
}

/// A connection's lease in the database; given back (asynchronously, by [`run_cluster`]) when dropped.
#[derive(Debug)]
pub struct Lease {
    id: i64,
    releases: mpsc::UnboundedSender<i64>,
}

impl Lease {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = self.releases.send(self.id);
    }
}

/// What [`ClusterLimits::claim_user`] found.
#[derive(Debug)]
pub(crate) enum Claim {
    /// Within the limit (or no limit).
    Granted,
    /// The user has `max_per_user` sessions across the nodes.
    Full,
    /// The database did not answer.
    Unavailable,
}

/// What [`ClusterLimits::take`] found.
#[derive(Debug)]
pub(crate) enum Take {
    /// Within the limit: hold this lease for the connection's lifetime.
    Granted(Lease),
    /// The address holds `max_per_ip` connections across the nodes.
    Full,
    /// The database did not answer.
    Unavailable,
}

impl ClusterLimits {
    /// Limits over `cluster`: at most `max_per_ip` connections per client address and `max_per_user`
    /// sessions per user (0: no limit) on all nodes together; `fail_open` admits connections on this
    /// node's own limits while the database cannot be reached (otherwise they are refused).
    pub fn new(cluster: Cluster, max_per_ip: usize, max_per_user: usize, fail_open: bool) -> Arc<Self> {
        let (releases, released) = mpsc::unbounded_channel();
        Arc::new(ClusterLimits {
            cluster,
            max_per_ip,
            max_per_user,
            fail_open,
            healthy: AtomicBool::new(true),
            releases,
            released: Mutex::new(Some(released)),
        })
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Whether connections are admitted while the database cannot be reached.
    pub fn fail_open(&self) -> bool {
        self.fail_open
    }

    /// Whether the last heartbeat or lease reached the database.
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Registers this node (before the first connection is admitted). An error if the database does
    /// not answer.
    pub async fn register(&self) -> Result<(), ferry_auth::Error> {
        self.cluster.heartbeat().await?;
        self.healthy.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// A lease for a connection from `ip`. Known unreachable: no query, `Unavailable` at once (the next
    /// heartbeat finds out when it is back).
    pub(crate) async fn take(&self, ip: IpAddr) -> Take {
        if !self.healthy() {
            return Take::Unavailable;
        }
        let taken = tokio::time::timeout(
            CLUSTER_QUERY_TIMEOUT,
            self.cluster.take_lease(ip, self.max_per_ip),
        )
        .await;
        match taken {
            Ok(Ok(Some(id))) => Take::Granted(Lease {
                id,
                releases: self.releases.clone(),
            }),
            Ok(Ok(None)) => Take::Full,
            Ok(Err(e)) => {
                self.unreachable(&e.to_string());
                Take::Unavailable
            }
            Err(_) => {
                self.unreachable("no answer in time");
                Take::Unavailable
            }
        }
    }

    /// Counts lease `lease` as a session of `user` unless the nodes hold `max_per_user` of them already
    /// (`Granted` at once when there is no per-user limit).
    pub(crate) async fn claim_user(&self, lease: i64, user: &str) -> Claim {
        if self.max_per_user == 0 {
            return Claim::Granted;
        }
        if !self.healthy() {
            return Claim::Unavailable;
        }
        let claimed = tokio::time::timeout(
            CLUSTER_QUERY_TIMEOUT,
            self.cluster.claim_user(lease, user, self.max_per_user),
        )
        .await;
        match claimed {
            Ok(Ok(true)) => Claim::Granted,
            Ok(Ok(false)) => Claim::Full,
            Ok(Err(e)) => {
                self.unreachable(&e.to_string());
                Claim::Unavailable
            }
            Err(_) => {
                self.unreachable("no answer in time");
                Claim::Unavailable
            }
        }
    }

    fn unreachable(&self, why: &str) {
        if self.healthy.swap(false, Ordering::Relaxed) {
            let then = if self.fail_open {
                "admitting on this node's own limits"
            } else {
                "refusing new connections except from loopback and the allow-list"
            };
            warn!(
                error = why,
                "the user database cannot be reached for cluster limits; {then}"
            );
        }
    }

    fn reachable(&self) {
        if !self.healthy.swap(true, Ordering::Relaxed) {
            info!("the user database is reachable again; cluster limits are in force");
        }
    }
}

/// The node's cluster task, until `shutdown` completes: a heartbeat every
/// [`HEARTBEAT`], leases of ended connections given back, and ban
/// changes from other nodes (and `ferry ban`) applied to `defender` as they are announced (after a lost
/// connection to the database, every ban is reloaded). At shutdown the node leaves the cluster, which
/// frees its leases at once. Run once per process, beside the listeners.
pub async fn run_cluster(
    limits: Arc<ClusterLimits>,
    defender: Arc<Defender>,
    shutdown: impl Future<Output = ()>,
) {
    let Some(mut released) = limits
        .released
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    else {
        warn!("the cluster task runs once per process");
        return;
    };
    tokio::pin!(shutdown);
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: Vec<i64> = Vec::new();
    let mut changes: Option<BanChanges> = None;
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = beat.tick() => {
                heartbeat(&limits, &mut pending).await;
                if changes.is_none() && limits.healthy() {
                    changes = listen(&limits, &defender).await;
                }
            }
            Some(id) = released.recv() => {
                pending.push(id);
                while let Ok(id) = released.try_recv() {
                    pending.push(id);
                }
                give_back(&limits, &mut pending).await;
            }
            change = next_change(&mut changes) => match change {
                Ok(Some(change)) => {
                    debug!(?change, "ban change from the cluster");
                    defender.apply(change);
                }
                Ok(None) => {
                    // Reconnected: changes made meanwhile were not announced to this node.
                    if let Err(e) = defender.refresh().await {
                        warn!(error = %e, "cannot reload bans from the user database");
                    }
                }
                Err(e) => {
                    warn!(error = %e, "lost the ban announcements of the user database; listening again at the next heartbeat");
                    changes = None;
                }
            },
        }
    }
    while let Ok(id) = released.try_recv() {
        pending.push(id);
    }
    give_back(&limits, &mut pending).await;
    match tokio::time::timeout(CLUSTER_QUERY_TIMEOUT, limits.cluster.leave()).await {
        Ok(Ok(())) => debug!("left the cluster"),
        Ok(Err(e)) => warn!(error = %e, "cannot leave the cluster; this node's leases expire on their own"),
        Err(_) => warn!("cannot leave the cluster in time; this node's leases expire on their own"),
    }
}

async fn heartbeat(limits: &ClusterLimits, pending: &mut Vec<i64>) {
    match tokio::time::timeout(CLUSTER_QUERY_TIMEOUT, limits.cluster.heartbeat()).await {
        Ok(Ok(())) => {
            limits.reachable();
            give_back(limits, pending).await;
        }
        Ok(Err(e)) => limits.unreachable(&e.to_string()),
        Err(_) => limits.unreachable("no answer in time"),
    }
}

/// Gives back the leases in `pending`; on failure keeps them (bounded) for the next heartbeat.
async fn give_back(limits: &ClusterLimits, pending: &mut Vec<i64>) {
    if pending.is_empty() || !limits.healthy() {
        pending.truncate(MAX_PENDING_RELEASES);
        return;
    }
    match tokio::time::timeout(CLUSTER_QUERY_TIMEOUT, limits.cluster.release(pending)).await {
        Ok(Ok(())) => pending.clear(),
        Ok(Err(e)) => {
            limits.unreachable(&e.to_string());
            pending.truncate(MAX_PENDING_RELEASES);
        }
        Err(_) => {
            limits.unreachable("no answer in time");
            pending.truncate(MAX_PENDING_RELEASES);
        }
    }
}

/// Starts listening for ban changes, then reloads every ban (changes made before the listener was in
/// place were not announced to it).
async fn listen(limits: &ClusterLimits, defender: &Defender) -> Option<BanChanges> {
    match tokio::time::timeout(CLUSTER_QUERY_TIMEOUT, limits.cluster.ban_changes()).await {
        Ok(Ok(changes)) => {
            if let Err(e) = defender.refresh().await {
                warn!(error = %e, "cannot reload bans from the user database");
            }
            Some(changes)
        }
        Ok(Err(e)) => {
            warn!(error = %e, "cannot listen for ban changes; bans are reloaded every few seconds instead");
            None
        }
        Err(_) => None,
    }
}

async fn next_change(changes: &mut Option<BanChanges>) -> Result<Option<BanChange>, ferry_auth::Error> {
    match changes {
        Some(changes) => changes.next().await,
        None => std::future::pending().await,
    }
}
