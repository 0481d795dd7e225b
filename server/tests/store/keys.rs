//! The behaviours every `KeyStore` must have. Each test gets a fresh,
//! empty store and speaks to it only through the trait.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use procmon_server::store::keys::{AgentKeyRecord, Binding, KeyStore};

/// A fresh key store, and whatever must live as long as it.
pub struct Fresh {
    pub keys: Arc<dyn KeyStore>,
    pub _dir: tempfile::TempDir,
}

/// One `#[tokio::test]` per behaviour below, for the backend `$fresh`.
#[macro_export]
macro_rules! key_tests {
    ($fresh:ident) => {
        $crate::key_tests!(@each $fresh,
            a_key_reads_back_with_its_secret_hash,
            keys_are_listed_newest_first,
            a_key_binds_to_its_first_host_only,
            a_revoked_key_is_kept_but_binds_nobody,
            revoking_a_hosts_keys_spares_the_one_kept,
            revoking_by_label_spares_other_labels,
            revoking_keys_needs_a_host_or_a_label,
            a_new_enrollment_secret_replaces_the_old,
            revoked_enrollment_secrets_were_still_made,
        );
    };
    (@each $fresh:ident, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                // None: the backend is not there to test (and it said so).
                if let Some(fresh) = $fresh().await {
                    $crate::keys::$name(fresh).await;
                }
            }
        )*
    };
}

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T23:52:00Z")
        .unwrap()
        .to_utc()
}

fn minutes(m: i64) -> DateTime<Utc> {
    start() + Duration::minutes(m)
}

fn key(id: &str, host_id: Option<&str>, label: &str, created: i64) -> AgentKeyRecord {
    AgentKeyRecord {
        id: id.into(),
        host_id: host_id.map(Into::into),
        label: label.into(),
        created_at: minutes(created),
        revoked_at: None,
    }
}

async fn create(keys: &dyn KeyStore, record: &AgentKeyRecord) {
    let hash = [record.id.len() as u8; 32];
    keys.create_key(record, hash).await.expect("create_key");
}

/// Which of `ids` are revoked, in order.
async fn revoked(keys: &dyn KeyStore, ids: &[&str]) -> Vec<bool> {
    let mut out = Vec::new();
    for id in ids {
        let (record, _) = keys.key(id).await.unwrap().expect("the key is kept");
        out.push(record.revoked_at.is_some());
    }
    out
}

pub async fn a_key_reads_back_with_its_secret_hash(fresh: Fresh) {
    let k = fresh.keys.as_ref();
    let bound = key("pk_bound", Some("host-a"), "enrolled", 0);
    let unbound = key("pk_free", None, "for the lab", 1);
    k.create_key(&bound, [7; 32]).await.unwrap();
    k.create_key(&unbound, [8; 32]).await.unwrap();
    assert_eq!(k.key("pk_bound").await.unwrap(), Some((bound, [7; 32])));
    assert_eq!(k.key("pk_free").await.unwrap(), Some((unbound, [8; 32])));
    assert_eq!(k.key("pk_none").await.unwrap(), None);
    assert!(
        k.create_key(&key("pk_free", None, "again", 2), [9; 32])
            .await
            .is_err(),
        "an id is one key's"
    );
    assert_eq!(k.key("pk_free").await.unwrap().unwrap().1, [8; 32]);
}

pub async fn keys_are_listed_newest_first(fresh: Fresh) {
    let k = fresh.keys.as_ref();
    assert_eq!(k.keys().await.unwrap(), vec![]);
    let (a, b, c) = (
        key("pk_a", Some("host-a"), "enrolled", 5),
        key("pk_b", None, "note", 10),
        key("pk_c", Some("host-c"), "enrolled", 1),
    );
    for record in [&a, &b, &c] {
        create(k, record).await;
    }
    k.revoke_key("pk_a", minutes(20)).await.unwrap();
    let a = AgentKeyRecord {
        revoked_at: Some(minutes(20)),
        ..a
    };
    assert_eq!(
        k.keys().await.unwrap(),
        vec![b, a, c],
        "revoked ones included"
    );
}

pub async fn a_key_binds_to_its_first_host_only(fresh: Fresh) {
    let k = fresh.keys.as_ref();
    create(k, &key("pk_new", None, "enrolled", 0)).await;
    assert_eq!(
        k.bind_key("pk_new", "host-a").await.unwrap(),
        Binding::Bound
    );
    assert_eq!(
        k.bind_key("pk_new", "host-a").await.unwrap(),
        Binding::Bound,
        "again: still its host"
    );
    assert_eq!(
        k.bind_key("pk_new", "host-b").await.unwrap(),
        Binding::OtherHost("host-a".into())
    );
    assert_eq!(
        k.key("pk_new").await.unwrap().unwrap().0.host_id.as_deref(),
        Some("host-a")
    );
    create(k, &key("pk_made_bound", Some("host-c"), "admin", 0)).await;
    assert_eq!(
        k.bind_key("pk_made_bound", "host-a").await.unwrap(),
        Binding::OtherHost("host-c".into())
    );
    assert_eq!(
        k.bind_key("pk_made_bound", "host-c").await.unwrap(),
        Binding::Bound
    );
    assert_eq!(
        k.bind_key("pk_unknown", "host-a").await.unwrap(),
        Binding::Invalid
    );
}

pub async fn a_revoked_key_is_kept_but_binds_nobody(fresh: Fresh) {
    let k = fresh.keys.as_ref();
    create(k, &key("pk_bound", Some("host-a"), "enrolled", 0)).await;
    create(k, &key("pk_free", None, "enrolled", 0)).await;
    assert!(k.revoke_key("pk_bound", minutes(3)).await.unwrap());
    assert!(
        !k.revoke_key("pk_bound", minutes(4)).await.unwrap(),
        "already revoked"
    );
    assert!(!k.revoke_key("pk_unknown", minutes(4)).await.unwrap());
    let (record, _) = k.key("pk_bound").await.unwrap().unwrap();
    assert_eq!(
        record.revoked_at,
        Some(minutes(3)),
        "the first revocation's time stays"
    );
    assert_eq!(
        k.bind_key("pk_bound", "host-a").await.unwrap(),
        Binding::Invalid
    );
    assert!(k.revoke_key("pk_free", minutes(5)).await.unwrap());
    assert_eq!(
        k.bind_key("pk_free", "host-a").await.unwrap(),
        Binding::Invalid
    );
    assert_eq!(
        k.key("pk_free").await.unwrap().unwrap().0.host_id,
        None,
        "a revoked key is not bound"
    );
}

pub async fn revoking_a_hosts_keys_spares_the_one_kept(fresh: Fresh) {
    let k = fresh.keys.as_ref();
    for record in [
        key("pk_a1", Some("host-a"), "enrolled", 0),
        key("pk_a2", Some("host-a"), "enrolled", 1),
        key("pk_a3", Some("host-a"), "enrolled", 2),
        key("pk_b1", Some("host-b"), "enrolled", 0),
        key("pk_free", None, "enrolled", 0),
    ] {
        create(k, &record).await;
    }
    k.revoke_key("pk_a1", minutes(5)).await.unwrap();
    assert_eq!(
        k.revoke_keys_of(Some("host-a"), None, "pk_a3", minutes(10))
            .await
            .unwrap(),
        1,
        "only active keys count"
    );
    let ids = ["pk_a1", "pk_a2", "pk_a3", "pk_b1", "pk_free"];
    assert_eq!(revoked(k, &ids).await, [true, true, false, false, false]);
    assert_eq!(
        k.key("pk_a1").await.unwrap().unwrap().0.revoked_at,
        Some(minutes(5))
    );
    assert_eq!(
        k.key("pk_a2").await.unwrap().unwrap().0.revoked_at,
        Some(minutes(10))
    );
    // Nothing kept: every key of the host (a removed host).
    assert_eq!(
        k.revoke_keys_of(Some("host-a"), None, "", minutes(11))
            .await
            .unwrap(),
        1
    );
    assert_eq!(revoked(k, &ids).await, [true, true, true, false, false]);
    assert_eq!(
        k.revoke_keys_of(Some("host-z"), None, "", minutes(11))
            .await
            .unwrap(),
        0
    );
}

pub async fn revoking_by_label_spares_other_labels(fresh: Fresh) {
    let k = fresh.keys.as_ref();
    for record in [
        key("pk_emb1", None, "embedded agent", 0),
        key("pk_emb2", Some("server-host"), "embedded agent", 1),
        key("pk_emb3", None, "embedded agent", 2),
        key("pk_enr", None, "enrolled", 0),
        key("pk_srv", Some("server-host"), "enrolled", 0),
    ] {
        create(k, &record).await;
    }
    // The keys earlier versions made for the embedded agent, bound or not
    // (as the server's start revokes them).
    assert_eq!(
        k.revoke_keys_of(None, Some("embedded agent"), "pk_emb3", minutes(1))
            .await
            .unwrap(),
        2
    );
    let ids = ["pk_emb1", "pk_emb2", "pk_emb3", "pk_enr", "pk_srv"];
    assert_eq!(revoked(k, &ids).await, [true, true, false, false, false]);
}

pub async fn revoking_keys_needs_a_host_or_a_label(fresh: Fresh) {
    let k = fresh.keys.as_ref();
    create(k, &key("pk_a", Some("host-a"), "enrolled", 0)).await;
    assert!(k.revoke_keys_of(None, None, "", minutes(1)).await.is_err());
    assert_eq!(revoked(k, &["pk_a"]).await, [false], "nothing was revoked");
}

pub async fn a_new_enrollment_secret_replaces_the_old(fresh: Fresh) {
    let k = fresh.keys.as_ref();
    assert_eq!(k.enroll_secrets().await.unwrap(), Vec::<[u8; 32]>::new());
    assert!(!k.enroll_secret_made().await.unwrap());
    k.set_enroll_secret([1; 32], minutes(0)).await.unwrap();
    assert_eq!(k.enroll_secrets().await.unwrap(), vec![[1; 32]]);
    assert!(k.enroll_secret_made().await.unwrap());
    k.set_enroll_secret([2; 32], minutes(1)).await.unwrap();
    assert_eq!(
        k.enroll_secrets().await.unwrap(),
        vec![[2; 32]],
        "the old one is revoked"
    );
}

pub async fn revoked_enrollment_secrets_were_still_made(fresh: Fresh) {
    let k = fresh.keys.as_ref();
    assert_eq!(k.revoke_enroll_secrets(minutes(0)).await.unwrap(), 0);
    k.set_enroll_secret([1; 32], minutes(0)).await.unwrap();
    k.set_enroll_secret([2; 32], minutes(1)).await.unwrap();
    assert_eq!(
        k.revoke_enroll_secrets(minutes(2)).await.unwrap(),
        1,
        "one was in force"
    );
    assert_eq!(k.enroll_secrets().await.unwrap(), Vec::<[u8; 32]>::new());
    assert!(
        k.enroll_secret_made().await.unwrap(),
        "made, though revoked"
    );
    assert_eq!(k.revoke_enroll_secrets(minutes(3)).await.unwrap(), 0);
    k.set_enroll_secret([3; 32], minutes(4)).await.unwrap();
    assert_eq!(
        k.enroll_secrets().await.unwrap(),
        vec![[3; 32]],
        "a new one opens enrollment again"
    );
}
