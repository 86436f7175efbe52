//! The login defender: scoring, bans, escalation, the allow-list, persistence across restarts.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ferry_auth::defender::{Defender, DefenderConfig, Event, ManualClock, Verdict};
use ferry_auth::UserStore;

const MIN: Duration = Duration::from_secs(60);

fn ip(s: &str) -> IpAddr {
    s.parse().expect(s)
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ))
}

fn config() -> DefenderConfig {
    DefenderConfig {
        threshold: 10,
        observation: 10 * MIN,
        ban_time: 30 * MIN,
        max_ban_time: 4 * 60 * MIN,
        ..DefenderConfig::default()
    }
}

fn defender(store: Option<UserStore>, clock: &Arc<ManualClock>) -> Defender {
    Defender::new(config(), store).with_clock(clock.clone())
}

fn banned(v: Verdict) -> bool {
    matches!(v, Verdict::Banned(_))
}

#[tokio::test]
async fn failed_logins_past_the_threshold_ban_the_address_only() {
    let clock = clock();
    let d = defender(None, &clock);
    let bad = ip("192.0.2.1");
    for i in 0..9 {
        assert_eq!(
            d.record(bad, Event::FailedLogin).await,
            Verdict::Allowed,
            "event {i}"
        );
    }
    assert_eq!(d.check(bad), Verdict::Allowed);
    let v = d.record(bad, Event::FailedLogin).await;
    assert_eq!(v, Verdict::Banned(clock_now(&clock) + 30 * MIN));
    assert!(banned(d.check(bad)));
    assert_eq!(
        d.check(ip("192.0.2.2")),
        Verdict::Allowed,
        "other addresses are not affected"
    );
    // IPv4-mapped IPv6 is the same address.
    assert!(banned(d.check(ip("::ffff:192.0.2.1"))));
}

#[tokio::test]
async fn events_weigh_their_scores() {
    let clock = clock();
    let d = defender(None, &clock);
    let a = ip("192.0.2.10");
    // 3 + 3 + 2 + 1 = 9: not yet.
    d.record(a, Event::LimitExceeded).await;
    d.record(a, Event::LimitExceeded).await;
    d.record(a, Event::UnknownUser).await;
    assert_eq!(d.record(a, Event::PreLoginDisconnect).await, Verdict::Allowed);
    assert!(
        banned(d.record(a, Event::FailedLogin).await),
        "10 reaches the threshold"
    );
}

#[tokio::test]
async fn scores_older_than_the_observation_period_are_forgotten() {
    let clock = clock();
    let d = defender(None, &clock);
    let a = ip("192.0.2.20");
    for _ in 0..9 {
        d.record(a, Event::FailedLogin).await;
    }
    clock.advance(11 * MIN);
    for _ in 0..9 {
        assert_eq!(d.record(a, Event::FailedLogin).await, Verdict::Allowed);
    }
    assert!(banned(d.record(a, Event::FailedLogin).await));
}

#[tokio::test]
async fn bans_expire_and_repeat_bans_last_twice_as_long_up_to_the_cap() {
    let clock = clock();
    let d = defender(None, &clock);
    let a = ip("192.0.2.30");
    let mut expected = [30, 60, 120, 240, 240].map(|m| m * MIN).into_iter();
    for round in 0..5 {
        let start = clock_now(&clock);
        let mut verdict = Verdict::Allowed;
        for _ in 0..10 {
            verdict = d.record(a, Event::FailedLogin).await;
        }
        let length = expected.next().expect("round");
        assert_eq!(verdict, Verdict::Banned(start + length), "round {round}");
        // While banned, further events do not extend the ban.
        assert_eq!(
            d.record(a, Event::FailedLogin).await,
            Verdict::Banned(start + length)
        );
        clock.advance(length - Duration::from_secs(1));
        assert!(
            banned(d.check(a)),
            "round {round}: still banned one second before the end"
        );
        clock.advance(Duration::from_secs(1));
        assert_eq!(d.check(a), Verdict::Allowed, "round {round}: ban over");
    }
    // After max_ban_time without a ban, the next one starts again at ban_time.
    clock.advance(4 * 60 * MIN + MIN);
    let start = clock_now(&clock);
    let mut verdict = Verdict::Allowed;
    for _ in 0..10 {
        verdict = d.record(a, Event::FailedLogin).await;
    }
    assert_eq!(verdict, Verdict::Banned(start + 30 * MIN));
}

#[tokio::test]
async fn allow_listed_networks_are_never_banned() {
    let clock = clock();
    let config = DefenderConfig {
        allow_list: vec!["198.51.100.0/24".parse().expect("net")],
        ..config()
    };
    let d = Defender::new(config, None).with_clock(clock.clone());
    let friend = ip("198.51.100.77");
    for _ in 0..100 {
        assert_eq!(d.record(friend, Event::UnknownUser).await, Verdict::Allowed);
    }
    d.ban(friend, MIN, "by hand").await.expect("ban");
    assert_eq!(
        d.check(friend),
        Verdict::Allowed,
        "the allow-list wins over a manual ban"
    );
}

#[tokio::test]
async fn bans_are_stored_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("users.db");
    let clock = clock();
    let a = ip("203.0.113.5");
    {
        let store = UserStore::open(&db).await.expect("open");
        let d = defender(Some(store), &clock);
        for _ in 0..10 {
            d.record(a, Event::FailedLogin).await;
        }
        assert!(banned(d.check(a)));
    }
    // A new process on the same database: banned after loading, with the escalation remembered.
    let store = UserStore::open(&db).await.expect("reopen");
    let d = defender(Some(store.clone()), &clock);
    assert_eq!(d.check(a), Verdict::Allowed, "nothing loaded before refresh");
    d.refresh().await.expect("refresh");
    assert!(banned(d.check(a)));
    let stored = store.ban(a).await.expect("read").expect("stored ban");
    assert_eq!(stored.count, 1);
    assert!(stored.reason.contains("failed login"), "{}", stored.reason);
    clock.advance(31 * MIN);
    assert_eq!(d.check(a), Verdict::Allowed);
    for _ in 0..10 {
        d.record(a, Event::FailedLogin).await;
    }
    let stored = store.ban(a).await.expect("read").expect("stored ban");
    assert_eq!(stored.count, 2, "second ban");
}

#[tokio::test]
async fn manual_bans_and_unbans_reach_other_nodes_on_refresh() {
    let store = UserStore::open_in_memory().await.expect("store");
    let clock = clock();
    let admin = defender(Some(store.clone()), &clock);
    let node = defender(Some(store.clone()), &clock);
    let a = ip("2001:db8::1");
    let ban = admin.ban(a, 5 * MIN, "manual").await.expect("ban");
    assert_eq!(ban.reason, "manual");
    assert_eq!(
        admin.active_bans().await.expect("list"),
        vec![store.ban(a).await.expect("r").expect("row")]
    );
    assert_eq!(node.check(a), Verdict::Allowed);
    node.refresh().await.expect("refresh");
    assert_eq!(node.check(a), Verdict::Banned(clock_now(&clock) + 5 * MIN));
    assert!(admin.unban(a).await.expect("unban"));
    assert!(
        !admin.unban(a).await.expect("unban again"),
        "nothing left to lift"
    );
    node.refresh().await.expect("refresh");
    assert_eq!(node.check(a), Verdict::Allowed);
}

#[tokio::test]
async fn refresh_prunes_records_expired_for_longer_than_the_longest_ban() {
    let store = UserStore::open_in_memory().await.expect("store");
    let clock = clock();
    let d = defender(Some(store.clone()), &clock);
    let a = ip("192.0.2.40");
    d.ban(a, MIN, "short").await.expect("ban");
    clock.advance(4 * 60 * MIN + 2 * MIN);
    d.refresh().await.expect("refresh");
    assert!(store.bans().await.expect("list").is_empty());
}

#[tokio::test]
async fn memory_stays_bounded_under_many_addresses() {
    let clock = clock();
    let d = defender(None, &clock);
    // More distinct addresses than are tracked: no growth past the bound, no panic.
    for i in 0..(ferry_auth::defender::MAX_TRACKED_ADDRESSES as u32 + 1000) {
        let a = IpAddr::from((0x0a00_0000u32 + i).to_be_bytes());
        d.record(a, Event::PreLoginDisconnect).await;
    }
    assert_eq!(d.check(ip("10.0.0.1")), Verdict::Allowed);
}

fn clock_now(c: &ManualClock) -> SystemTime {
    use ferry_auth::defender::Clock;
    c.now()
}

#[tokio::test]
async fn loopback_is_never_scored_or_banned_unless_configured() {
    let clock = clock();
    let d = defender(None, &clock);
    for lo in [
        ip("127.0.0.1"),
        ip("127.3.2.1"),
        ip("::1"),
        ip("::ffff:127.0.0.1"),
    ] {
        for _ in 0..50 {
            assert_eq!(d.record(lo, Event::UnknownUser).await, Verdict::Allowed, "{lo}");
        }
        assert_eq!(d.score(lo), 0, "{lo} scored");
        assert_eq!(d.check(lo), Verdict::Allowed);
        assert!(d.is_exempt(lo));
    }
    // Switched on, loopback is scored like any address: a guesser on the host is banned.
    let d = Defender::new(
        DefenderConfig {
            score_loopback: true,
            ..config()
        },
        None,
    )
    .with_clock(clock.clone());
    let lo = ip("127.0.0.1");
    assert!(!d.is_exempt(lo));
    for _ in 0..9 {
        assert_eq!(d.record(lo, Event::FailedLogin).await, Verdict::Allowed);
    }
    assert_eq!(d.score(lo), 9);
    assert!(banned(d.record(lo, Event::FailedLogin).await));
    assert!(banned(d.check(ip("::ffff:127.0.0.1"))));
}

#[tokio::test]
async fn score_reports_the_events_within_the_observation_period() {
    let clock = clock();
    let d = defender(None, &clock);
    let a = ip("192.0.2.9");
    assert_eq!(d.score(a), 0);
    d.record(a, Event::UnknownUser).await;
    clock.advance(6 * MIN);
    d.record(a, Event::FailedLogin).await;
    assert_eq!(d.score(a), 3);
    clock.advance(5 * MIN);
    assert_eq!(
        d.score(a),
        1,
        "the first event is older than the observation period"
    );
}

#[test]
fn ban_ends_are_shown_in_utc() {
    use ferry_auth::defender::utc;
    let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    assert_eq!(utc(at(0)), "1970-01-01 00:00:00 UTC");
    assert_eq!(utc(at(951_782_400)), "2000-02-29 00:00:00 UTC");
    assert_eq!(utc(at(1_700_000_000)), "2023-11-14 22:13:20 UTC");
    assert_eq!(utc(at(4_102_444_799)), "2099-12-31 23:59:59 UTC");
}
