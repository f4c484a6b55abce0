//! A database made by a migration file that was later edited still opens, brought up to date;
//! any other checksum mismatch still stops the start.

use callgrade::store::Store;

use crate::helpers::{Backend, TestDb};
use crate::on_both_backends;

const OLD_0004: [(Backend, &str); 2] = [
    (Backend::Sqlite, "e8eb55faac37b69928c513da4abeec0e1f308e76801f3f669a4809bb8969066a27d7ac39ffc1074c697917e59ba6364e"),
    (Backend::Postgres, "abab3b78fa97e45cf30fdc56a862c218f3646ccf6fec83b23e6cf11b5d1eeab6369c9c6d0ff3f351836a85d61b9a85c2"),
];
const OLD_PG_0005: &str = "3b2942a3829cddc9354d1bce8b7e3de86c52a1ab90ee52861f22499daa9cea3f6668c17bb267642f61b82c85dd845915";

async fn set_checksum(store: &Store, version: i64, hex_sha: &str) {
    sqlx::query("UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2")
        .bind(hex::decode(hex_sha).unwrap())
        .bind(version)
        .execute(store.pool())
        .await
        .unwrap();
}

async fn checksum(store: &Store, version: i64) -> String {
    let sum: Vec<u8> =
        sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = $1")
            .bind(version)
            .fetch_one(store.pool())
            .await
            .unwrap();
    hex::encode(sum)
}

/// Columns carried by a PostgreSQL primary key's index beyond its key columns.
async fn included_columns(store: &Store, table: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(i.indnatts - i.indnkeyatts AS BIGINT) FROM pg_index i \
         JOIN pg_class c ON c.oid = i.indrelid WHERE c.relname = $1 AND i.indisprimary",
    )
    .bind(table)
    .fetch_one(store.pool())
    .await
    .unwrap()
}

async fn a_database_made_before_the_edits_of_0004_and_0005_opens_up_to_date(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = Store::open(&db.url).await.unwrap();
    let current_4 = checksum(&store, 4).await;
    let current_5 = checksum(&store, 5).await;
    let old_4 = OLD_0004.iter().find(|(b, _)| *b == backend).unwrap().1;
    set_checksum(&store, 4, old_4).await;
    if backend == Backend::Postgres {
        // The rollup keys as the first version of 0005 made them: no INCLUDE columns.
        for sql in [
            "ALTER TABLE quality_daily DROP CONSTRAINT quality_daily_pkey, ADD PRIMARY KEY (manager_id, day, criterion_id)",
            "ALTER TABLE conversation_daily DROP CONSTRAINT conversation_daily_pkey, ADD PRIMARY KEY (manager_id, day)",
        ] {
            sqlx::query(sql).execute(store.pool()).await.unwrap();
        }
        set_checksum(&store, 5, OLD_PG_0005).await;
        assert_eq!(included_columns(&store, "quality_daily").await, 0);
    }
    store.close().await;

    let store = Store::open(&db.url).await.expect("an older database opens");
    assert_eq!(checksum(&store, 4).await, current_4);
    assert_eq!(checksum(&store, 5).await, current_5);
    if backend == Backend::Postgres {
        assert_eq!(included_columns(&store, "quality_daily").await, 4);
        assert_eq!(included_columns(&store, "conversation_daily").await, 6);
    }

    // Any other mismatch is a migration edited by mistake: the start stops, as sqlx intends.
    set_checksum(&store, 3, &"00".repeat(48)).await;
    store.close().await;
    let refused = Store::open(&db.url).await;
    assert!(refused.is_err(), "an unknown checksum must stop the start");
}

on_both_backends!(a_database_made_before_the_edits_of_0004_and_0005_opens_up_to_date);

/// SQLite keeps no planner statistics unless asked: the server's start-up refresh gathers them
/// for a table that has rows, and a later refresh runs on a database that has them.
#[tokio::test]
async fn sqlite_statistics_are_gathered_for_the_planner() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = Store::open(&db.url).await.unwrap();
    for i in 0..2000_i64 {
        sqlx::query(
            "INSERT INTO calls (id, manager_id, started_at, size_bytes, sha256, storage_key, \
             status, created_at, updated_at) VALUES ($1, $2, $3, 1, $1, 'k', 'done', $3, $3)",
        )
        .bind(format!("call-{i:05}"))
        .bind(format!("m-{}", i % 20))
        .bind(1_772_445_600_000 + i)
        .execute(store.pool())
        .await
        .unwrap();
    }
    let stats = "SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'";
    let analyzed = "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'calls'";
    let count = |sql: &'static str| {
        let store = store.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(store.pool())
                .await
                .unwrap()
        }
    };
    assert_eq!(count(stats).await, 0, "a new database has no statistics");
    store.refresh_statistics(true).await.unwrap();
    assert!(count(analyzed).await > 0, "the calls table is analyzed");
    store.refresh_statistics(false).await.unwrap();
    assert!(count(analyzed).await > 0);
    store.close().await;
}
