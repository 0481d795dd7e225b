//! The test support's fresh PostgreSQL databases: each is new, empty, its
//! own, and takes connections (the PostgreSQL store's tests rely on it).

use crate::common::postgres::{connect, fresh_database, with_database};

#[tokio::test]
async fn fresh_databases_are_distinct_and_usable() {
    let Some(first) = fresh_database().await else {
        return;
    };
    let second = fresh_database().await.expect("a second database");
    assert_ne!(first, second);

    let (a, b) = (connect(&first).await, connect(&second).await);
    for (client, url) in [(&a, &first), (&b, &second)] {
        let name: String = client
            .query_one("SELECT current_database()", &[])
            .await
            .expect("the database answers")
            .get(0);
        assert!(
            url.ends_with(&format!("/{name}")),
            "{url} is database {name}"
        );
        let tables: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(tables, 0, "{name} is empty");
    }
    // A table made in one is not in the other.
    a.batch_execute("CREATE TABLE only_here (n int); INSERT INTO only_here VALUES (7)")
        .await
        .expect("the first database takes writes");
    let n: i32 = a
        .query_one("SELECT n FROM only_here", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 7);
    let err = b
        .query_one("SELECT n FROM only_here", &[])
        .await
        .expect_err("the second database has no such table");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE),
        "{err:?}"
    );
}

#[test]
fn a_urls_database_is_replaced_keeping_the_rest() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgresql://u:p@h:1?sslmode=disable", "t2"),
        "postgresql://u:p@h:1/t2?sslmode=disable"
    );
}
