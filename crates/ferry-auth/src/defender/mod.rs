//! The login defender: scores misbehaviour per client address and bans addresses that score too much.
//!
//! Protocol-neutral (FTP and SFTP front ends share it), in the spirit of SFTPGo's defender and OpenSSH's
//! `PerSourcePenalties`. A front end asks [`Defender::check`] when a connection arrives (a banned address
//! is refused before anything else happens) and reports misbehaviour with [`Defender::record`]: failed
//! logins, logins as unknown users, disconnects before logging in, and connection-limit violations. Each
//! [`Event`] adds its score to the address's total over the last `observation` period; when the total
//! reaches `threshold`, the address is banned. Every further ban of the same address lasts twice as long
//! as the one before, up to `max_ban_time`.
//!
//! Bans are written to the user database (table `bans`), so they survive restarts and every node that
//! shares the database enforces them after its next [`Defender::refresh`] (on PostgreSQL, at once: each
//! change is announced, see [`crate::cluster`], and applied with [`Defender::apply`]). Scores are kept
//! in memory; on PostgreSQL every event is also added to the scores shared by all nodes (one round trip),
//! and the larger of the node's and the shared total decides, so guesses spread over nodes add up.
//! Addresses in the allow-list are never scored or banned, nor are loopback addresses unless
//! [`DefenderConfig::score_loopback`] is set (the host's own monitoring, tests and tunnels). Time comes
//! from a [`Clock`], so tests can move it.
//!
//! What the front ends score (the same on FTP and SFTP): a wrong password, a login as an unknown or
//! disabled user, a disconnect before login *after the client tried to authenticate* (sent `USER`/`PASS`,
//! or an SSH authentication request), and a connection refused by a limit. A connection that never tries
//! to authenticate (a health check that connects and closes, a port scan, a client that gives up on the
//! certificate) scores nothing.

pub(crate) mod bans;
mod net;

pub use bans::{Ban, BanChange};
pub use net::{canonical, Network};

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::store::UserStore;

/// Addresses whose scores or bans are kept in memory at once. When full, stale entries are dropped
/// first, then arbitrary ones (an attacker with this many addresses can only make scores be forgotten,
/// not bans).
pub const MAX_TRACKED_ADDRESSES: usize = 65_536;

/// Something a client did that counts against its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A wrong password for an existing user.
    FailedLogin,
    /// A login attempt as a user that does not exist (or is disabled).
    UnknownUser,
    /// The connection ended before a successful login.
    PreLoginDisconnect,
    /// A connection was refused by a connection limit, or a session broke a rate limit.
    LimitExceeded,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Event::FailedLogin => "failed login",
            Event::UnknownUser => "unknown user",
            Event::PreLoginDisconnect => "disconnect before login",
            Event::LimitExceeded => "limit exceeded",
        })
    }
}

/// What [`Defender::check`] and [`Defender::record`] decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The address may connect.
    Allowed,
    /// The address is banned until this time.
    Banned(SystemTime),
}

/// The score each [`Event`] adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scores {
    /// [`Event::FailedLogin`].
    pub failed_login: u32,
    /// [`Event::UnknownUser`].
    pub unknown_user: u32,
    /// [`Event::PreLoginDisconnect`].
    pub pre_login_disconnect: u32,
    /// [`Event::LimitExceeded`].
    pub limit_exceeded: u32,
}

impl Scores {
    fn of(&self, event: Event) -> u32 {
        match event {
            Event::FailedLogin => self.failed_login,
            Event::UnknownUser => self.unknown_user,
            Event::PreLoginDisconnect => self.pre_login_disconnect,
            Event::LimitExceeded => self.limit_exceeded,
        }
    }
}

impl Default for Scores {
    fn default() -> Self {
        Scores {
            failed_login: 1,
            unknown_user: 2,
            pre_login_disconnect: 1,
            limit_exceeded: 3,
        }
    }
}

/// Defender settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefenderConfig {
    /// Total score within `observation` that bans an address.
    pub threshold: u32,
    /// How long an event counts towards the total.
    pub observation: Duration,
    /// Length of an address's first ban; each later ban lasts twice as long as the one before.
    pub ban_time: Duration,
    /// Longest ban. An address whose last ban ended longer ago than this starts again at `ban_time`.
    pub max_ban_time: Duration,
    /// Score per event.
    pub scores: Scores,
    /// Networks that are never scored or banned (monitoring, load-balancer health checks, the office).
    pub allow_list: Vec<Network>,
    /// Score and ban loopback addresses (127.0.0.0/8, ::1) too. Off by default: the host's own clients
    /// (monitoring, tests, SSH tunnels ending here) are never locked out.
    pub score_loopback: bool,
}

impl Default for DefenderConfig {
    fn default() -> Self {
        DefenderConfig {
            threshold: 15,
            observation: Duration::from_secs(30 * 60),
            ban_time: Duration::from_secs(30 * 60),
            max_ban_time: Duration::from_secs(24 * 60 * 60),
            scores: Scores::default(),
            allow_list: Vec::new(),
            score_loopback: false,
        }
    }
}

/// `t` as `YYYY-MM-DD HH:MM:SS UTC`, for messages that tell a banned client until when.
pub fn utc(t: SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian), by eras of 400 years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A source of wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: SystemTime) -> Self {
        ManualClock(Mutex::new(start))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Scores and bans per client address. Cheap to share behind an `Arc`.
pub struct Defender {
    config: DefenderConfig,
    clock: Arc<dyn Clock>,
    store: Option<UserStore>,
    state: Mutex<State>,
}

impl fmt::Debug for Defender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Defender")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct State {
    /// Recent events per address: (time, score), oldest first.
    scores: HashMap<IpAddr, VecDeque<(SystemTime, u32)>>,
    /// Bans, active and recently expired (for escalation).
    bans: HashMap<IpAddr, BanState>,
}

#[derive(Debug, Clone, Copy)]
struct BanState {
    until: SystemTime,
    count: u32,
}

impl Defender {
    /// A defender that keeps its bans in `store` (if given; in memory only otherwise), on the system clock.
    pub fn new(config: DefenderConfig, store: Option<UserStore>) -> Self {
        Defender {
            config,
            clock: Arc::new(SystemClock),
            store,
            state: Mutex::default(),
        }
    }

    /// The same defender on another clock.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The settings in force.
    pub fn config(&self) -> &DefenderConfig {
        &self.config
    }

    /// Whether `ip` is in the allow-list.
    pub fn is_allow_listed(&self, ip: IpAddr) -> bool {
        self.config.allow_list.iter().any(|n| n.contains(ip))
    }

    /// Whether `ip` is never scored or banned: in the allow-list, or on loopback while
    /// [`DefenderConfig::score_loopback`] is off.
    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.is_allow_listed(ip) || (!self.config.score_loopback && ip.is_loopback())
    }

    /// The score of `ip` now: the sum of its events within the observation period.
    pub fn score(&self, ip: IpAddr) -> u32 {
        let ip = canonical(ip);
        let horizon = self.clock.now().checked_sub(self.config.observation);
        self.lock().scores.get(&ip).map_or(0, |events| {
            events
                .iter()
                .filter(|(t, _)| horizon.is_none_or(|h| *t >= h))
                .map(|(_, s)| *s)
                .fold(0, u32::saturating_add)
        })
    }

    /// Whether `ip` may connect now. Memory only: cheap enough for every accepted connection.
    pub fn check(&self, ip: IpAddr) -> Verdict {
        let ip = canonical(ip);
        if self.is_exempt(ip) {
            return Verdict::Allowed;
        }
        let now = self.clock.now();
        match self.lock().bans.get(&ip) {
            Some(b) if now < b.until => Verdict::Banned(b.until),
            _ => Verdict::Allowed,
        }
    }

    /// Counts `event` against `ip`; bans the address (and stores the ban) when its score reaches the
    /// threshold. Returns whether the address is banned now.
    pub async fn record(&self, ip: IpAddr, event: Event) -> Verdict {
        let ip = canonical(ip);
        if self.is_exempt(ip) {
            return Verdict::Allowed;
        }
        let now = self.clock.now();
        let score = self.config.scores.of(event);
        let local = match self.count(ip, score, now) {
            Ok(total) => total,
            Err(verdict) => return verdict,
        };
        let total = match self.shared_total(ip, score, now).await {
            Some(shared) => local.max(shared),
            None => local,
        };
        if total < self.config.threshold {
            return Verdict::Allowed;
        }
        let ban = {
            let mut st = self.lock();
            // Another event of the same address may have banned it while the shared score was read.
            if let Some(b) = st.bans.get(&ip).filter(|b| now < b.until) {
                return Verdict::Banned(b.until);
            }
            st.scores.remove(&ip);
            let previous = st
                .bans
                .get(&ip)
                .filter(|b| self.remembered(b.until, now))
                .map_or(0, |b| b.count);
            let count = previous.saturating_add(1);
            let until = now + self.escalated(count);
            self.insert_ban(&mut st, ip, BanState { until, count }, now);
            Ban {
                ip,
                until,
                count,
                reason: format!("score {total} reached {} (last: {event})", self.config.threshold),
                created: now,
            }
        };
        tracing::warn!(%ip, count = ban.count, secs = self.escalated(ban.count).as_secs(), reason = %ban.reason, "address banned");
        self.persist(&ban).await;
        Verdict::Banned(ban.until)
    }

    /// Adds `score` to the address's events in memory and returns its total within the observation
    /// period, or the verdict to return at once (banned already, or nothing to count).
    fn count(&self, ip: IpAddr, score: u32, now: SystemTime) -> Result<u32, Verdict> {
        let mut st = self.lock();
        if let Some(b) = st.bans.get(&ip).filter(|b| now < b.until) {
            return Err(Verdict::Banned(b.until));
        }
        if score == 0 {
            return Err(Verdict::Allowed);
        }
        if !st.scores.contains_key(&ip) && st.scores.len() >= MAX_TRACKED_ADDRESSES {
            let horizon = now.checked_sub(self.config.observation).unwrap_or(now);
            st.scores
                .retain(|_, events| events.back().is_some_and(|(t, _)| *t >= horizon));
            // Still crowded: forget arbitrary addresses down to three quarters, so that this
            // O(n) clean-up runs at most once per quarter of the table (amortised O(1)).
            let excess = st.scores.len().saturating_sub(MAX_TRACKED_ADDRESSES / 4 * 3);
            let victims: Vec<IpAddr> = st.scores.keys().take(excess).copied().collect();
            for victim in victims {
                st.scores.remove(&victim);
            }
        }
        let events = st.scores.entry(ip).or_default();
        events.push_back((now, score));
        let horizon = now.checked_sub(self.config.observation);
        while events
            .front()
            .is_some_and(|(t, _)| horizon.is_some_and(|h| *t < h))
        {
            events.pop_front();
        }
        // Every event scores at least 1, so `threshold` entries always suffice to reach it.
        let cap = usize::try_from(self.config.threshold)
            .unwrap_or(usize::MAX)
            .max(1);
        while events.len() > cap {
            events.pop_front();
        }
        Ok(events.iter().map(|(_, s)| *s).fold(0, u32::saturating_add))
    }

    /// The address's total in the scores shared by every node, after adding `score` (PostgreSQL only;
    /// `None` on SQLite, without a store, or when the database fails: then this node's total decides).
    async fn shared_total(&self, ip: IpAddr, score: u32, now: SystemTime) -> Option<u32> {
        let store = self.store.as_ref()?;
        let since = now.checked_sub(self.config.observation).unwrap_or(now);
        match store.add_shared_score(ip, score, now, since).await? {
            Ok(total) => Some(total),
            Err(e) => {
                tracing::warn!(%ip, error = %e, "cannot add to the shared defender score; this node's score decides");
                None
            }
        }
    }

    /// Applies a ban change made by another node or by `ferry ban` (announced by the database).
    pub fn apply(&self, change: BanChange) {
        let now = self.clock.now();
        let mut st = self.lock();
        match change {
            BanChange::Banned { ip, until, count } => {
                st.scores.remove(&ip);
                self.insert_ban(&mut st, ip, BanState { until, count }, now);
            }
            BanChange::Lifted { ip } => {
                st.scores.remove(&ip);
                st.bans.remove(&ip);
            }
        }
    }

    /// Bans `ip` for `duration` by hand (e.g. `ferry ban add`), whatever its score.
    pub async fn ban(&self, ip: IpAddr, duration: Duration, reason: &str) -> Result<Ban, Error> {
        let ip = canonical(ip);
        let now = self.clock.now();
        let previous = match &self.store {
            Some(store) => store.ban(ip).await?.map(|b| (b.count, b.created)),
            None => self.lock().bans.get(&ip).map(|b| (b.count, now)),
        };
        let ban = Ban {
            ip,
            until: now + duration,
            count: previous.map_or(1, |(c, _)| c.saturating_add(1)),
            reason: reason.to_owned(),
            created: previous.map_or(now, |(_, created)| created),
        };
        if let Some(store) = &self.store {
            store.put_ban(&ban).await?;
        }
        let mut st = self.lock();
        st.scores.remove(&ip);
        self.insert_ban(
            &mut st,
            ip,
            BanState {
                until: ban.until,
                count: ban.count,
            },
            now,
        );
        Ok(ban)
    }

    /// Lifts the ban on `ip` and forgets its history and score; false if there was no ban record.
    pub async fn unban(&self, ip: IpAddr) -> Result<bool, Error> {
        let ip = canonical(ip);
        let stored = match &self.store {
            Some(store) => {
                store.clear_shared_scores(ip).await?;
                store.delete_ban(ip).await?
            }
            None => false,
        };
        let mut st = self.lock();
        st.scores.remove(&ip);
        Ok(st.bans.remove(&ip).is_some() || stored)
    }

    /// Bans in force now, by address.
    pub async fn active_bans(&self) -> Result<Vec<Ban>, Error> {
        let now = self.clock.now();
        match &self.store {
            Some(store) => Ok(store
                .bans()
                .await?
                .into_iter()
                .filter(|b| b.active_at(now))
                .collect()),
            None => {
                let mut bans: Vec<Ban> = self
                    .lock()
                    .bans
                    .iter()
                    .filter(|(_, b)| now < b.until)
                    .map(|(ip, b)| Ban {
                        ip: *ip,
                        until: b.until,
                        count: b.count,
                        reason: String::new(),
                        created: now,
                    })
                    .collect();
                bans.sort_by_key(|b| b.ip);
                Ok(bans)
            }
        }
    }

    /// Reloads the bans from the database (bans added by `ferry ban add` or by other nodes, lifted by
    /// `ferry ban del`) and removes records expired for longer than `max_ban_time`. Nothing to do
    /// without a store.
    pub async fn refresh(&self) -> Result<(), Error> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let now = self.clock.now();
        if let Some(before) = now.checked_sub(self.config.max_ban_time) {
            store.prune_bans(before).await?;
        }
        if let Some(before) = now.checked_sub(self.config.observation) {
            store.prune_shared_scores(before).await?;
        }
        let rows = store.bans().await?;
        let mut st = self.lock();
        st.bans = rows
            .into_iter()
            .take(MAX_TRACKED_ADDRESSES)
            .map(|b| {
                (
                    canonical(b.ip),
                    BanState {
                        until: b.until,
                        count: b.count,
                    },
                )
            })
            .collect();
        Ok(())
    }

    /// The length of ban number `count` (1-based): `ban_time`, doubled for each earlier ban, capped.
    fn escalated(&self, count: u32) -> Duration {
        let doublings = count.saturating_sub(1).min(32);
        self.config
            .ban_time
            .checked_mul(1u32 << doublings.min(31))
            .unwrap_or(self.config.max_ban_time)
            .min(self.config.max_ban_time)
    }

    /// Whether a ban that ended (or ends) at `until` still counts for escalation at `now`.
    fn remembered(&self, until: SystemTime, now: SystemTime) -> bool {
        until + self.config.max_ban_time >= now
    }

    fn insert_ban(&self, st: &mut State, ip: IpAddr, ban: BanState, now: SystemTime) {
        if !st.bans.contains_key(&ip) && st.bans.len() >= MAX_TRACKED_ADDRESSES {
            st.bans.retain(|_, b| now < b.until);
        }
        st.bans.insert(ip, ban);
    }

    async fn persist(&self, ban: &Ban) {
        if let Some(store) = &self.store {
            if let Err(e) = store.put_ban(ban).await {
                tracing::warn!(ip = %ban.ip, error = %e, "cannot store ban; it holds on this node only");
            }
            if let Err(e) = store.clear_shared_scores(ban.ip).await {
                tracing::debug!(ip = %ban.ip, error = %e, "cannot clear the shared defender score");
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
