//! The user store: management operations, authentication and persistence.

use ferry_auth::{Error, NewUser, Password, Permissions, UserStore, UserTls};

fn new_user(name: &str, password: &str) -> NewUser {
    NewUser {
        name: name.into(),
        password: Password::new(password.into()),
        home: format!("/{name}"),
        permissions: Permissions::read_only(),
    }
}

fn pw(s: &str) -> Password {
    Password::new(s.into())
}

async fn store() -> UserStore {
    UserStore::open_in_memory().await.expect("in-memory store")
}

#[tokio::test]
async fn new_store_is_empty() {
    let store = store().await;
    assert!(store.is_empty().await.expect("is_empty"));
    assert!(store.list_users().await.expect("list").is_empty());
}

#[tokio::test]
async fn added_user_is_shown_and_listed_by_name() {
    let store = store().await;
    store
        .add_user(new_user("carol", "pw-c"))
        .await
        .expect("add carol");
    store
        .add_user(new_user("alice", "pw-a"))
        .await
        .expect("add alice");
    store.add_user(new_user("bob", "pw-b")).await.expect("add bob");
    assert!(!store.is_empty().await.expect("is_empty"));
    let names: Vec<String> = store
        .list_users()
        .await
        .expect("list")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let alice = store.user("alice").await.expect("show").expect("alice exists");
    assert_eq!(alice.home, "/alice");
    assert_eq!(alice.permissions, Permissions::read_only());
    assert!(alice.enabled);
    assert!(alice.created > 1_600_000_000);
    assert!(store.user("nobody").await.expect("show").is_none());
}

#[tokio::test]
async fn duplicate_user_is_already_exists() {
    let store = store().await;
    store.add_user(new_user("alice", "one")).await.expect("add");
    let err = store
        .add_user(new_user("alice", "two"))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(err, Error::AlreadyExists(ref n) if n == "alice"),
        "{err}"
    );
    assert!(store
        .authenticate("alice", &pw("one"))
        .await
        .expect("auth")
        .into_user()
        .is_some());
}

#[tokio::test]
async fn invalid_names_homes_and_passwords_are_rejected() {
    let store = store().await;
    for name in ["", "-rf", ".x", "with space", "slash/y", &"n".repeat(65)] {
        let err = store.add_user(new_user(name, "pw")).await.expect_err("bad name");
        assert!(matches!(err, Error::InvalidName(_)), "{name:?}: {err}");
    }
    let mut bad_home = new_user("alice", "pw");
    bad_home.home = "/../etc".into();
    assert!(matches!(
        store.add_user(bad_home).await,
        Err(Error::InvalidInput(_))
    ));
    let mut relative_home = new_user("alice", "pw");
    relative_home.home = "alice".into();
    assert!(matches!(
        store.add_user(relative_home).await,
        Err(Error::InvalidInput(_))
    ));
    let empty_pw = new_user("alice", "");
    assert!(matches!(
        store.add_user(empty_pw).await,
        Err(Error::InvalidInput(_))
    ));
    let long_pw = new_user("alice", &"p".repeat(1025));
    assert!(matches!(
        store.add_user(long_pw).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(store.is_empty().await.expect("is_empty"));
}

#[tokio::test]
async fn delete_removes_the_user_and_missing_is_not_found() {
    let store = store().await;
    store.add_user(new_user("alice", "pw")).await.expect("add");
    store.delete_user("alice").await.expect("delete");
    assert!(store.user("alice").await.expect("show").is_none());
    let err = store.delete_user("alice").await.expect_err("gone");
    assert!(matches!(err, Error::NotFound(ref n) if n == "alice"));
}

#[tokio::test]
async fn authenticate_accepts_the_right_password_only() {
    let store = store().await;
    store.add_user(new_user("alice", "s3cret")).await.expect("add");
    let user = store
        .authenticate("alice", &pw("s3cret"))
        .await
        .expect("auth")
        .into_user()
        .expect("accepted");
    assert_eq!(user.name, "alice");
    assert!(store
        .authenticate("alice", &pw("wrong"))
        .await
        .expect("auth")
        .into_user()
        .is_none());
    assert!(store
        .authenticate("alice", &pw(""))
        .await
        .expect("auth")
        .into_user()
        .is_none());
    assert!(store
        .authenticate("ALICE", &pw("s3cret"))
        .await
        .expect("auth")
        .into_user()
        .is_none());
}

#[tokio::test]
async fn authenticate_unknown_or_malformed_user_is_none() {
    let store = store().await;
    assert!(store
        .authenticate("ghost", &pw("anything"))
        .await
        .expect("auth")
        .into_user()
        .is_none());
    assert!(store
        .authenticate("bad name;--", &pw("x"))
        .await
        .expect("auth")
        .into_user()
        .is_none());
    assert!(store
        .authenticate("", &pw("x"))
        .await
        .expect("auth")
        .into_user()
        .is_none());
}

#[tokio::test]
async fn disabled_user_cannot_log_in_until_enabled() {
    let store = store().await;
    store.add_user(new_user("alice", "pw")).await.expect("add");
    store.set_enabled("alice", false).await.expect("disable");
    assert!(!store.user("alice").await.expect("show").expect("exists").enabled);
    assert!(store
        .authenticate("alice", &pw("pw"))
        .await
        .expect("auth")
        .into_user()
        .is_none());
    store.set_enabled("alice", true).await.expect("enable");
    assert!(store
        .authenticate("alice", &pw("pw"))
        .await
        .expect("auth")
        .into_user()
        .is_some());
}

#[tokio::test]
async fn set_password_replaces_the_old_one() {
    let store = store().await;
    store.add_user(new_user("alice", "old")).await.expect("add");
    store.set_password("alice", pw("new")).await.expect("passwd");
    assert!(store
        .authenticate("alice", &pw("old"))
        .await
        .expect("auth")
        .into_user()
        .is_none());
    assert!(store
        .authenticate("alice", &pw("new"))
        .await
        .expect("auth")
        .into_user()
        .is_some());
    let err = store.set_password("ghost", pw("x")).await.expect_err("missing");
    assert!(matches!(err, Error::NotFound(_)));
    let err = store.set_password("alice", pw("")).await.expect_err("empty");
    assert!(matches!(err, Error::InvalidInput(_)));
}

#[tokio::test]
async fn set_permissions_home_and_enabled_update_or_report_not_found() {
    let store = store().await;
    store.add_user(new_user("alice", "pw")).await.expect("add");
    store
        .set_permissions("alice", Permissions::all())
        .await
        .expect("perms");
    store.set_home("alice", "/shared").await.expect("home");
    let alice = store.user("alice").await.expect("show").expect("exists");
    assert_eq!(
        (alice.permissions, alice.home.as_str()),
        (Permissions::all(), "/shared")
    );
    assert!(matches!(
        store.set_home("alice", "/a/../b").await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        store.set_permissions("ghost", Permissions::none()).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.set_home("ghost", "/").await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        store.set_enabled("ghost", true).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn file_database_persists_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("users.db");
    {
        let store = UserStore::open(&path).await.expect("open new");
        store.add_user(new_user("alice", "pw")).await.expect("add");
        store
            .set_permissions("alice", Permissions::all())
            .await
            .expect("perms");
    }
    assert!(path.is_file());
    let store = UserStore::open(&path).await.expect("reopen");
    let alice = store.user("alice").await.expect("show").expect("persisted");
    assert_eq!(alice.permissions, Permissions::all());
    assert!(store
        .authenticate("alice", &pw("pw"))
        .await
        .expect("auth")
        .into_user()
        .is_some());
}

#[tokio::test]
async fn stored_hash_is_argon2id_not_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("users.db");
    let store = UserStore::open(&path).await.expect("open");
    store
        .add_user(new_user("alice", "plain-text-secret"))
        .await
        .expect("add");
    drop(store);
    let bytes = std::fs::read(&path).expect("read db");
    let wal = std::fs::read(dir.path().join("users.db-wal")).unwrap_or_default();
    let haystack = [bytes, wal].concat();
    let contains = |needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(b"plain-text-secret"));
    assert!(contains(b"$argon2id$"));
}

#[test]
fn permissions_parse_and_display_round_trip() {
    for text in ["all", "ro", "none", "write,list", "delete,rename,mkdir"] {
        let parsed: Permissions = text.parse().expect("parse");
        let again: Permissions = parsed.to_string().parse().expect("reparse");
        assert_eq!(parsed, again, "{text}");
    }
    assert_eq!(
        "write,list".parse::<Permissions>().expect("parse").to_string(),
        "list,write"
    );
}

#[test]
fn password_debug_is_redacted() {
    let user = new_user("alice", "hunter2");
    let shown = format!("{user:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("Password(***)"), "{shown}");
}

#[tokio::test]
async fn tls_overrides_default_to_the_listener_and_round_trip() {
    let store = store().await;
    store.add_user(new_user("alice", "pw")).await.expect("add");
    let user = store.user("alice").await.expect("get").expect("alice");
    assert_eq!(user.tls, UserTls::default());
    let tls = UserTls {
        require_tls: true,
        protected_data: Some(false),
        danger_allow_unresumed_data_tls: Some(true),
    };
    store.set_tls("alice", tls).await.expect("set_tls");
    assert_eq!(store.user("alice").await.expect("get").expect("alice").tls, tls);
    // authenticate() returns the same overrides the server applies at login.
    let logged_in = store
        .authenticate("alice", &pw("pw"))
        .await
        .expect("auth")
        .into_user()
        .expect("ok");
    assert_eq!(logged_in.tls, tls);
    store.set_tls("alice", UserTls::default()).await.expect("reset");
    assert_eq!(
        store.user("alice").await.expect("get").expect("alice").tls,
        UserTls::default()
    );
    assert!(matches!(
        store.set_tls("nobody", tls).await,
        Err(Error::NotFound(_))
    ));
}

async fn logs_in(store: &UserStore, name: &str, password: &str) -> bool {
    store
        .authenticate(name, &pw(password))
        .await
        .expect("authenticate")
        .into_user()
        .is_some()
}

#[tokio::test]
async fn a_cached_login_never_accepts_a_wrong_password() {
    let store = store().await;
    store.add_user(new_user("alice", "right pw")).await.expect("add");
    // The first success fills the cache; later logins may come from it.
    assert!(logs_in(&store, "alice", "right pw").await);
    assert!(logs_in(&store, "alice", "right pw").await);
    for wrong in ["wrong", "right p", "right pw ", "RIGHT PW", ""] {
        assert!(!logs_in(&store, "alice", wrong).await, "{wrong:?} accepted");
    }
    // A failed attempt does not spoil the cache for the right password either.
    assert!(logs_in(&store, "alice", "right pw").await);
}

#[tokio::test]
async fn a_cached_login_ends_with_a_password_change_disable_or_delete() {
    let store = store().await;
    store.add_user(new_user("alice", "old pw")).await.expect("add");
    assert!(logs_in(&store, "alice", "old pw").await);
    store.set_password("alice", pw("new pw")).await.expect("passwd");
    assert!(!logs_in(&store, "alice", "old pw").await);
    assert!(logs_in(&store, "alice", "new pw").await);
    store.set_enabled("alice", false).await.expect("disable");
    assert!(!logs_in(&store, "alice", "new pw").await);
    store.set_enabled("alice", true).await.expect("enable");
    assert!(logs_in(&store, "alice", "new pw").await);
    store.delete_user("alice").await.expect("delete");
    assert!(!logs_in(&store, "alice", "new pw").await);
    // A new user of the same name does not inherit the old one's cached password.
    store
        .add_user(new_user("alice", "other pw"))
        .await
        .expect("re-add");
    assert!(!logs_in(&store, "alice", "new pw").await);
    assert!(logs_in(&store, "alice", "other pw").await);
}

#[tokio::test]
async fn a_password_changed_by_another_process_ends_the_cached_login() {
    // The CLI changes passwords in its own process, with its own store (and cache) on the same file.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("users.db");
    let server = UserStore::open(&path).await.expect("open");
    server.add_user(new_user("alice", "old pw")).await.expect("add");
    assert!(logs_in(&server, "alice", "old pw").await);
    let cli = UserStore::open(&path).await.expect("open again");
    cli.set_password("alice", pw("new pw")).await.expect("passwd");
    assert!(!logs_in(&server, "alice", "old pw").await);
    assert!(logs_in(&server, "alice", "new pw").await);
}

#[tokio::test]
async fn concurrent_logins_all_succeed_or_fail_correctly() {
    let store = store().await;
    store.add_user(new_user("alice", "right pw")).await.expect("add");
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let password = if i % 4 == 0 { "wrong" } else { "right pw" };
            (i, logs_in(&store, "alice", password).await)
        }));
    }
    for t in tasks {
        let (i, ok) = t.await.expect("task");
        assert_eq!(ok, i % 4 != 0, "login {i}");
    }
}

#[tokio::test]
async fn authenticate_says_which_failure_it_was() {
    use ferry_auth::AuthOutcome;
    let store = store().await;
    store.add_user(new_user("alice", "s3cret")).await.expect("add");
    store.add_user(new_user("bob", "bob pw")).await.expect("add");
    store.set_enabled("bob", false).await.expect("disable");
    let outcome = |name: &'static str, password: &'static str| {
        let store = store.clone();
        async move { store.authenticate(name, &pw(password)).await.expect("auth") }
    };
    assert!(outcome("alice", "s3cret").await.is_accepted());
    assert_eq!(outcome("alice", "wrong").await, AuthOutcome::WrongCredentials);
    assert_eq!(outcome("ghost", "x").await, AuthOutcome::UnknownUser);
    assert_eq!(outcome("bad name;--", "x").await, AuthOutcome::UnknownUser);
    assert_eq!(outcome("bob", "bob pw").await, AuthOutcome::Disabled);
    assert_eq!(
        store.authenticate_key("ghost", "AAAA").await.expect("auth"),
        AuthOutcome::UnknownUser
    );
    assert_eq!(
        store.authenticate_key("alice", "AAAA").await.expect("auth"),
        AuthOutcome::WrongCredentials
    );
    assert_eq!(
        store.authenticate_key("bob", "AAAA").await.expect("auth"),
        AuthOutcome::Disabled
    );
}
