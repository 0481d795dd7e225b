//! A database of layout 5, whose accounts could be viewers or admins only,
//! lets them be operators from its next start on, keeping every user and
//! their sessions.

use chrono::Utc;
use procmon_server::store::accounts::{AccountStore, Role, UserRecord};
use procmon_server::store::{SqliteStore, Store};
use rusqlite::Connection;

/// The account table as layout 5 made it.
const LAYOUT_5_ACCOUNT: &str = "
CREATE TABLE account (
    name TEXT PRIMARY KEY NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('viewer', 'admin')),
    created_at INTEGER NOT NULL,
    password_hash TEXT
) STRICT;";

fn user(name: &str, role: Role) -> UserRecord {
    UserRecord {
        name: name.into(),
        role,
        created_at: Utc::now(),
        password_hash: Some(format!("$argon2id${name}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_layout_5_database_lets_accounts_be_operators() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("procmon.db");
    let admin = user("ada", Role::Admin);
    {
        let store = SqliteStore::open(&path).await.unwrap();
        assert!(store.create_user(&admin).await.unwrap());
        store.close().await;
    }
    // Back to layout 5: the same rows under the old CHECK.
    {
        let db = Connection::open(&path).unwrap();
        db.execute_batch(&format!(
            "ALTER TABLE account RENAME TO account_now;
             {LAYOUT_5_ACCOUNT}
             INSERT INTO account SELECT * FROM account_now;
             DROP TABLE account_now;"
        ))
        .unwrap();
        let refused = db.execute("INSERT INTO account VALUES ('op', 'operator', 0, NULL)", []);
        assert!(refused.is_err(), "layout 5 has no operators");
        db.pragma_update(None, "user_version", 5).unwrap();
    }

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.find_user("ada").await.unwrap(), Some(admin));
    let operator = user("otto", Role::Operator);
    assert!(store.create_user(&operator).await.unwrap());
    assert_eq!(store.find_user("otto").await.unwrap(), Some(operator));
    store.close().await;
    // And again: a database already at layout 6 is left as it is.
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.list_users().await.unwrap().len(), 2);
}
