//! SSH public keys in the user store.

use ferry_auth::{Error, NewUser, Password, Permissions, PublicKeyRecord, UserStore};

fn record(blob: &str, fingerprint: &str) -> PublicKeyRecord {
    PublicKeyRecord {
        algorithm: "ssh-ed25519".into(),
        key_base64: blob.into(),
        fingerprint: fingerprint.into(),
        comment: "alice@laptop".into(),
        created: 0,
    }
}

async fn store_with_alice() -> UserStore {
    let store = UserStore::open_in_memory().await.expect("store");
    store
        .add_user(NewUser {
            name: "alice".into(),
            password: Password::new("pw".into()),
            home: "/".into(),
            permissions: Permissions::all(),
        })
        .await
        .expect("add alice");
    store
}

#[tokio::test]
async fn keys_are_added_listed_authenticated_and_removed() {
    let store = store_with_alice().await;
    store
        .add_key("alice", record("AAAA1", "SHA256:one"))
        .await
        .expect("add");
    store
        .add_key("alice", record("AAAA2", "SHA256:two"))
        .await
        .expect("add");
    assert!(matches!(
        store.add_key("alice", record("AAAA1", "SHA256:one")).await,
        Err(Error::AlreadyExists(_))
    ));
    let keys = store.keys("alice").await.expect("keys");
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].fingerprint, "SHA256:one");
    assert_eq!(keys[0].comment, "alice@laptop");

    let user = store
        .authenticate_key("alice", "AAAA2")
        .await
        .expect("auth")
        .into_user();
    assert_eq!(user.map(|u| u.name), Some("alice".to_owned()));
    assert!(store
        .authenticate_key("alice", "AAAA3")
        .await
        .expect("auth")
        .into_user()
        .is_none());
    assert!(store
        .authenticate_key("bob", "AAAA2")
        .await
        .expect("auth")
        .into_user()
        .is_none());

    store.delete_key("alice", "SHA256:two").await.expect("del");
    assert!(store
        .authenticate_key("alice", "AAAA2")
        .await
        .expect("auth")
        .into_user()
        .is_none());
    assert!(matches!(
        store.delete_key("alice", "SHA256:two").await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn disabled_users_and_unknown_users_cannot_use_keys() {
    let store = store_with_alice().await;
    assert!(matches!(
        store.add_key("nobody", record("AAAA1", "SHA256:one")).await,
        Err(Error::NotFound(_))
    ));
    store
        .add_key("alice", record("AAAA1", "SHA256:one"))
        .await
        .expect("add");
    store.set_enabled("alice", false).await.expect("disable");
    assert!(store
        .authenticate_key("alice", "AAAA1")
        .await
        .expect("auth")
        .into_user()
        .is_none());
}

#[tokio::test]
async fn deleting_a_user_deletes_their_keys() {
    let store = store_with_alice().await;
    store
        .add_key("alice", record("AAAA1", "SHA256:one"))
        .await
        .expect("add");
    store.delete_user("alice").await.expect("delete");
    store
        .add_user(NewUser {
            name: "alice".into(),
            password: Password::new("pw".into()),
            home: "/".into(),
            permissions: Permissions::all(),
        })
        .await
        .expect("re-add");
    assert!(store.keys("alice").await.expect("keys").is_empty());
    assert!(store
        .authenticate_key("alice", "AAAA1")
        .await
        .expect("auth")
        .into_user()
        .is_none());
}

#[tokio::test]
async fn malformed_keys_are_refused() {
    let store = store_with_alice().await;
    for bad in [
        record("", "SHA256:x"),
        record("AAAA with space", "SHA256:x"),
        PublicKeyRecord {
            comment: "line\nbreak".into(),
            ..record("AAAA1", "SHA256:x")
        },
    ] {
        assert!(matches!(
            store.add_key("alice", bad).await,
            Err(Error::InvalidInput(_))
        ));
    }
}
