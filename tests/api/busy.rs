//! A database that stays locked past its wait is a 503 with `Retry-After`, not a 500: the
//! errors here are real ones from each backend, mapped as every handler maps store errors.

use axum::response::IntoResponse;
use callgrade::http::ApiError;
use callgrade::store::{Store, StoreError};
use sqlx::Connection;

use crate::helpers::{Backend, TestDb};
use crate::on_both_backends;

/// A real lock timeout of `backend`: one connection holds a lock, another gives up waiting.
async fn lock_timeout(backend: Backend) -> sqlx::Error {
    let db = TestDb::new(backend).await;
    Store::open(&db.url).await.expect("open").close().await;
    let mut holder = sqlx::AnyConnection::connect(&db.url).await.expect("holder");
    let mut waiter = sqlx::AnyConnection::connect(&db.url).await.expect("waiter");
    let (lock, wait, write) = match backend {
        Backend::Sqlite => (
            "BEGIN EXCLUSIVE",
            "PRAGMA busy_timeout = 50",
            "DELETE FROM calls",
        ),
        Backend::Postgres => (
            "BEGIN; LOCK TABLE calls IN ACCESS EXCLUSIVE MODE",
            "SET lock_timeout = '50ms'",
            "DELETE FROM calls",
        ),
    };
    sqlx::raw_sql(lock)
        .execute(&mut holder)
        .await
        .expect("lock");
    sqlx::raw_sql(wait)
        .execute(&mut waiter)
        .await
        .expect("set wait");
    let err = sqlx::query(write)
        .execute(&mut waiter)
        .await
        .expect_err("the write must give up waiting");
    drop(holder);
    err
}

async fn a_lock_timeout_is_503_with_retry_after(backend: Backend) {
    let err = lock_timeout(backend).await;
    let answer = ApiError::from(StoreError::Database(err)).into_response();
    assert_eq!(answer.status(), 503);
    assert_eq!(
        answer
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    let body = axum::body::to_bytes(answer.into_body(), 1 << 16)
        .await
        .expect("body");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(body["error"]["code"], "unavailable");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("busy"),
        "{body}"
    );
}

on_both_backends!(a_lock_timeout_is_503_with_retry_after);
