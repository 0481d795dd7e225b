//! The behaviours every `AccountStore` must have. Each test gets a fresh,
//! empty store and speaks to it only through the trait.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use procmon_server::store::accounts::{AccountStore, Role, SessionLifetime, UserRecord};

/// A fresh account store, and whatever must live as long as it.
pub struct Fresh {
    pub accounts: Arc<dyn AccountStore>,
    pub _dir: tempfile::TempDir,
}

/// One `#[tokio::test]` per behaviour below, for the backend `$fresh`.
#[macro_export]
macro_rules! account_tests {
    ($fresh:ident) => {
        $crate::account_tests!(@each $fresh,
            a_user_is_created_once_and_reads_back,
            every_role_is_stored_and_reads_back,
            a_password_is_set_only_for_a_known_user,
            removing_a_user_ends_their_sessions_and_links,
            users_are_listed_by_name,
            a_session_reads_back_with_its_user,
            a_session_for_an_unknown_user_is_refused,
            a_session_ends_when_idle_or_too_old_and_use_keeps_it,
            a_deleted_session_is_gone,
            a_users_sessions_end_but_the_one_kept,
            delete_ended_removes_only_ended_sessions_and_expired_links,
            a_signin_link_is_taken_once_only,
            an_expired_signin_link_signs_nobody_in,
        );
    };
    (@each $fresh:ident, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                // None: the backend is not there to test (and it said so).
                if let Some(fresh) = $fresh().await {
                    $crate::accounts::$name(fresh).await;
                }
            }
        )*
    };
}

const LIFETIME: SessionLifetime = SessionLifetime {
    idle: StdDuration::from_secs(3600),
    absolute: StdDuration::from_secs(4 * 3600),
};

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T23:52:00Z")
        .unwrap()
        .to_utc()
}

fn minutes(m: i64) -> DateTime<Utc> {
    start() + Duration::minutes(m)
}

fn user(name: &str, role: Role) -> UserRecord {
    UserRecord {
        name: name.into(),
        role,
        created_at: start(),
        password_hash: None,
    }
}

async fn with_user(fresh: &Fresh, name: &str) {
    assert!(fresh
        .accounts
        .create_user(&user(name, Role::Viewer))
        .await
        .expect("create_user"));
}

pub async fn a_user_is_created_once_and_reads_back(fresh: Fresh) {
    let a = &fresh.accounts;
    let ada = user("ada", Role::Admin);
    assert!(a.create_user(&ada).await.unwrap());
    let other = UserRecord {
        role: Role::Viewer,
        password_hash: Some("other".into()),
        ..ada.clone()
    };
    assert!(
        !a.create_user(&other).await.unwrap(),
        "a taken name is refused"
    );
    assert_eq!(
        a.find_user("ada").await.unwrap(),
        Some(ada),
        "the refused create changed nothing"
    );
    assert_eq!(a.find_user("bob").await.unwrap(), None);
    assert_eq!(
        a.find_user("Ada").await.unwrap(),
        None,
        "names compare exactly"
    );
}

pub async fn every_role_is_stored_and_reads_back(fresh: Fresh) {
    let a = &fresh.accounts;
    for role in Role::ALL {
        let name = format!("user-{role}");
        assert!(a.create_user(&user(&name, role)).await.unwrap());
        assert_eq!(a.find_user(&name).await.unwrap().unwrap().role, role);
    }
}

pub async fn a_password_is_set_only_for_a_known_user(fresh: Fresh) {
    let a = &fresh.accounts;
    with_user(&fresh, "ada").await;
    assert!(a.set_password("ada", "$argon2id$first").await.unwrap());
    assert!(a.set_password("ada", "$argon2id$second").await.unwrap());
    assert_eq!(
        a.find_user("ada")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("$argon2id$second")
    );
    assert!(!a.set_password("bob", "$argon2id$x").await.unwrap());
    assert_eq!(a.find_user("bob").await.unwrap(), None, "no user is made");
}

pub async fn removing_a_user_ends_their_sessions_and_links(fresh: Fresh) {
    let a = &fresh.accounts;
    with_user(&fresh, "ada").await;
    with_user(&fresh, "bob").await;
    a.create_session(&[1; 32], "ada", minutes(0), false)
        .await
        .unwrap();
    a.create_session(&[2; 32], "bob", minutes(0), false)
        .await
        .unwrap();
    a.create_signin_link(&[3; 32], "ada", minutes(60))
        .await
        .unwrap();
    assert!(a.remove_user("ada").await.unwrap());
    assert!(!a.remove_user("ada").await.unwrap(), "already gone");
    assert_eq!(a.find_user("ada").await.unwrap(), None);
    assert_eq!(
        a.session(&[1; 32], minutes(1), LIFETIME).await.unwrap(),
        None
    );
    assert_eq!(
        a.take_signin_link(&[3; 32], minutes(1)).await.unwrap(),
        None
    );
    // A new user of the same name does not inherit them.
    with_user(&fresh, "ada").await;
    assert_eq!(
        a.session(&[1; 32], minutes(1), LIFETIME).await.unwrap(),
        None
    );
    let bob = a.session(&[2; 32], minutes(1), LIFETIME).await.unwrap();
    assert_eq!(bob.expect("bob's session stays").user.name, "bob");
}

pub async fn users_are_listed_by_name(fresh: Fresh) {
    let a = &fresh.accounts;
    assert_eq!(a.list_users().await.unwrap(), vec![]);
    for name in ["carol", "ada", "bob"] {
        with_user(&fresh, name).await;
    }
    assert!(a.create_user(&user("dan", Role::Admin)).await.unwrap());
    let listed = a.list_users().await.unwrap();
    let names: Vec<_> = listed.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["ada", "bob", "carol", "dan"]);
    assert_eq!(listed[3], user("dan", Role::Admin));
    assert!(a.remove_user("bob").await.unwrap());
    let names: Vec<_> = a
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["ada", "carol", "dan"]);
}

pub async fn a_session_reads_back_with_its_user(fresh: Fresh) {
    let a = &fresh.accounts;
    with_user(&fresh, "ada").await;
    a.set_password("ada", "$argon2id$p").await.unwrap();
    a.create_session(&[1; 32], "ada", minutes(0), false)
        .await
        .unwrap();
    a.create_session(&[2; 32], "ada", minutes(0), true)
        .await
        .unwrap();
    let s = a
        .session(&[1; 32], minutes(0), LIFETIME)
        .await
        .unwrap()
        .expect("live");
    assert_eq!(s.user, a.find_user("ada").await.unwrap().unwrap());
    assert_eq!(
        (s.created_at, s.last_used, s.via_link),
        (minutes(0), minutes(0), false)
    );
    let s = a
        .session(&[2; 32], minutes(0), LIFETIME)
        .await
        .unwrap()
        .expect("live");
    assert!(s.via_link);
    assert_eq!(
        a.session(&[9; 32], minutes(0), LIFETIME).await.unwrap(),
        None
    );
}

pub async fn a_session_for_an_unknown_user_is_refused(fresh: Fresh) {
    let a = &fresh.accounts;
    assert!(a
        .create_session(&[1; 32], "nobody", minutes(0), false)
        .await
        .is_err());
    with_user(&fresh, "nobody").await;
    assert_eq!(
        a.session(&[1; 32], minutes(0), LIFETIME).await.unwrap(),
        None,
        "the refused session was not stored"
    );
}

pub async fn a_session_ends_when_idle_or_too_old_and_use_keeps_it(fresh: Fresh) {
    let a = &fresh.accounts;
    with_user(&fresh, "ada").await;
    // Idle: unused for the idle hour, it has ended.
    a.create_session(&[1; 32], "ada", minutes(0), false)
        .await
        .unwrap();
    assert!(a
        .session(&[1; 32], minutes(59), LIFETIME)
        .await
        .unwrap()
        .is_some());
    // That use counts: an hour after it, not after sign-in, it ends.
    let s = a.session(&[1; 32], minutes(118), LIFETIME).await.unwrap();
    assert_eq!(
        s.expect("used at 59 min, still live").last_used,
        minutes(118)
    );
    assert_eq!(
        a.session(&[1; 32], minutes(178), LIFETIME).await.unwrap(),
        None
    );
    // Once ended it is deleted: not live again at an earlier time.
    assert_eq!(
        a.session(&[1; 32], minutes(120), LIFETIME).await.unwrap(),
        None
    );

    // Too old: used every 50 minutes it still ends 4 hours after sign-in.
    a.create_session(&[2; 32], "ada", minutes(0), false)
        .await
        .unwrap();
    for m in (50..240).step_by(50) {
        assert!(
            a.session(&[2; 32], minutes(m), LIFETIME)
                .await
                .unwrap()
                .is_some(),
            "live at {m} min"
        );
    }
    assert!(a
        .session(&[2; 32], minutes(239), LIFETIME)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        a.session(&[2; 32], minutes(240), LIFETIME).await.unwrap(),
        None
    );
}

pub async fn a_deleted_session_is_gone(fresh: Fresh) {
    let a = &fresh.accounts;
    with_user(&fresh, "ada").await;
    a.create_session(&[1; 32], "ada", minutes(0), false)
        .await
        .unwrap();
    a.create_session(&[2; 32], "ada", minutes(0), false)
        .await
        .unwrap();
    a.delete_session(&[1; 32]).await.unwrap();
    a.delete_session(&[1; 32])
        .await
        .expect("deleting twice is fine");
    a.delete_session(&[7; 32])
        .await
        .expect("deleting an unknown one is fine");
    assert_eq!(
        a.session(&[1; 32], minutes(1), LIFETIME).await.unwrap(),
        None
    );
    assert!(a
        .session(&[2; 32], minutes(1), LIFETIME)
        .await
        .unwrap()
        .is_some());
}

pub async fn a_users_sessions_end_but_the_one_kept(fresh: Fresh) {
    let a = &fresh.accounts;
    with_user(&fresh, "ada").await;
    with_user(&fresh, "bob").await;
    for t in 1..=3u8 {
        a.create_session(&[t; 32], "ada", minutes(0), false)
            .await
            .unwrap();
    }
    a.create_session(&[9; 32], "bob", minutes(0), false)
        .await
        .unwrap();
    assert_eq!(
        a.delete_sessions_of_user("ada", Some(&[2; 32]))
            .await
            .unwrap(),
        2
    );
    let live = |t: u8| async move {
        a.session(&[t; 32], minutes(1), LIFETIME)
            .await
            .unwrap()
            .is_some()
    };
    assert_eq!(
        (live(1).await, live(2).await, live(3).await, live(9).await),
        (false, true, false, true)
    );
    assert_eq!(a.delete_sessions_of_user("ada", None).await.unwrap(), 1);
    assert!(!live(2).await);
    assert!(live(9).await, "another user's session stays");
    assert_eq!(a.delete_sessions_of_user("nobody", None).await.unwrap(), 0);
}

pub async fn delete_ended_removes_only_ended_sessions_and_expired_links(fresh: Fresh) {
    let a = &fresh.accounts;
    with_user(&fresh, "ada").await;
    // Idle since 0, used at 100 (live), signed in at 0 and used at 200
    // (too old at 240), new at 200.
    a.create_session(&[1; 32], "ada", minutes(0), false)
        .await
        .unwrap();
    a.create_session(&[2; 32], "ada", minutes(0), false)
        .await
        .unwrap();
    a.create_session(&[3; 32], "ada", minutes(0), false)
        .await
        .unwrap();
    for m in [50, 100, 150, 200] {
        a.session(&[3; 32], minutes(m), LIFETIME)
            .await
            .unwrap()
            .expect("live");
    }
    a.session(&[2; 32], minutes(50), LIFETIME)
        .await
        .unwrap()
        .expect("live");
    a.session(&[2; 32], minutes(100), LIFETIME)
        .await
        .unwrap()
        .expect("live");
    a.create_session(&[4; 32], "ada", minutes(200), false)
        .await
        .unwrap();
    a.create_signin_link(&[5; 32], "ada", minutes(120))
        .await
        .unwrap();
    a.create_signin_link(&[6; 32], "ada", minutes(300))
        .await
        .unwrap();

    // At 150: session 1 (idle since 0) and link 5 (expired at 120) have ended.
    assert_eq!(a.delete_ended(minutes(150), LIFETIME).await.unwrap(), 2);
    assert_eq!(
        a.delete_ended(minutes(150), LIFETIME).await.unwrap(),
        0,
        "nothing left to end"
    );
    // At 245: session 3 is over 4 hours old, session 2 idle since 100.
    assert_eq!(a.delete_ended(minutes(245), LIFETIME).await.unwrap(), 2);
    assert!(a
        .session(&[4; 32], minutes(245), LIFETIME)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        a.take_signin_link(&[6; 32], minutes(245))
            .await
            .unwrap()
            .as_deref(),
        Some("ada")
    );
}

pub async fn a_signin_link_is_taken_once_only(fresh: Fresh) {
    let a = &fresh.accounts;
    with_user(&fresh, "ada").await;
    with_user(&fresh, "bob").await;
    a.create_signin_link(&[1; 32], "ada", minutes(60))
        .await
        .unwrap();
    a.create_signin_link(&[2; 32], "bob", minutes(60))
        .await
        .unwrap();
    assert_eq!(
        a.take_signin_link(&[1; 32], minutes(10))
            .await
            .unwrap()
            .as_deref(),
        Some("ada")
    );
    assert_eq!(
        a.take_signin_link(&[1; 32], minutes(11)).await.unwrap(),
        None,
        "used up"
    );
    assert_eq!(
        a.take_signin_link(&[9; 32], minutes(11)).await.unwrap(),
        None
    );
    assert_eq!(
        a.take_signin_link(&[2; 32], minutes(12))
            .await
            .unwrap()
            .as_deref(),
        Some("bob")
    );
}

pub async fn an_expired_signin_link_signs_nobody_in(fresh: Fresh) {
    let a = &fresh.accounts;
    with_user(&fresh, "ada").await;
    a.create_signin_link(&[1; 32], "ada", minutes(60))
        .await
        .unwrap();
    assert_eq!(
        a.take_signin_link(&[1; 32], minutes(60)).await.unwrap(),
        None,
        "expired at 60"
    );
    // Tried too late it is gone, so an earlier clock does not bring it back.
    assert_eq!(
        a.take_signin_link(&[1; 32], minutes(30)).await.unwrap(),
        None
    );
}
