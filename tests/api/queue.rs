//! The queue and the pipeline, driven by test job kinds through the real server.

use std::sync::atomic::Ordering;
use std::time::Duration;

use callgrade::domain::{CallStatus, JobId, JobState};
use callgrade::jobs::Registry;
use callgrade::store::{ClaimedJob, Fence, NewJob};

use crate::helpers::{count, create_results_table, spawn_app, spawn_app_with, Backend};
use crate::on_both_backends;
use crate::test_jobs::{Behaviour, TestHandler};

const WAIT: Duration = Duration::from_secs(20);

fn pipeline(transcribe: Behaviour, score: Behaviour) -> Registry {
    Registry::new()
        .register(TestHandler::new("transcribe", transcribe).0)
        .register(TestHandler::new("score", score).0)
}

async fn an_uploaded_call_moves_through_every_stage_to_done(backend: Backend) {
    let app = spawn_app(
        backend,
        pipeline(
            Behaviour::Sleep(Duration::from_millis(300)),
            Behaviour::Sleep(Duration::from_millis(300)),
        ),
    )
    .await;
    create_results_table(&app.store).await;
    let id = app.upload_call("m-1").await;
    app.wait_for_status(id, "transcribing", WAIT).await;
    app.wait_for_status(id, "scoring", WAIT).await;
    app.wait_for_status(id, "done", WAIT).await;
    assert_eq!(
        count(&app.store, "SELECT COUNT(*) FROM test_results").await,
        2,
        "one result per stage"
    );
    let (_, jobs) = app.get_json(&app.admin, "/api/v1/jobs").await;
    let states: Vec<&str> = jobs["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|j| j["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(states, vec!["succeeded", "succeeded"]);
    app.stop().await;
}

async fn a_retryable_failure_is_retried_with_backoff_then_succeeds(backend: Backend) {
    let app = spawn_app(
        backend,
        pipeline(Behaviour::FailFirst(2), Behaviour::Succeed),
    )
    .await;
    create_results_table(&app.store).await;
    let id = app.upload_call("m-1").await;
    app.wait_for_status(id, "done", WAIT).await;
    let (_, jobs) = app.get_json(&app.admin, "/api/v1/jobs").await;
    let transcribe = jobs["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|j| j["kind"] == "transcribe")
        .expect("job")
        .clone();
    assert_eq!(transcribe["attempts"], 3);
    assert_eq!(
        transcribe["last_error"], "temporary failure 2",
        "the last error is kept"
    );
    app.stop().await;
}

async fn exhausted_retries_leave_the_job_dead_and_the_call_failed_until_retried(backend: Backend) {
    let app = spawn_app(
        backend,
        pipeline(Behaviour::FailFirst(3), Behaviour::Succeed),
    )
    .await;
    create_results_table(&app.store).await;
    let id = app.upload_call("m-1").await;
    app.wait_for_status(id, "failed", WAIT).await;
    let call = app.store.get_call(id).await.expect("get").expect("call");
    assert_eq!(
        call.failure_reason.as_deref(),
        Some("transcription failed: temporary failure 3")
    );
    let job = app
        .store
        .latest_job_for_call(id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!((job.state, job.attempts), (JobState::Dead, 3));

    // A user retries the call: the fourth run succeeds.
    let r = app
        .client
        .post(app.url(&format!("/api/v1/calls/{id}/retry")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("retry");
    assert_eq!(r.status(), 202);
    app.wait_for_status(id, "done", WAIT).await;
    app.stop().await;
}

async fn a_fatal_error_is_not_retried(backend: Backend) {
    let (handler, probe) = TestHandler::new("transcribe", Behaviour::Fatal);
    let app = spawn_app(backend, Registry::new().register(handler)).await;
    let id = app.upload_call("m-1").await;
    app.wait_for_status(id, "failed", WAIT).await;
    let job = app
        .store
        .latest_job_for_call(id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!((job.state, job.attempts), (JobState::Dead, 1));
    assert_eq!(job.last_error.as_deref(), Some("the recording is corrupt"));
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
    let (_, body) = app
        .get_json(&app.admin, &format!("/api/v1/calls/{id}"))
        .await;
    assert_eq!(
        body["failure_reason"],
        "transcription failed: the recording is corrupt"
    );
    app.stop().await;
}

async fn a_queued_job_can_be_cancelled_and_retried(backend: Backend) {
    // No handler for `transcribe`: the job waits in the queue.
    let app = spawn_app(backend, Registry::new()).await;
    let id = app.upload_call("m-1").await;
    let job = app
        .store
        .latest_job_for_call(id)
        .await
        .expect("get")
        .expect("job");
    let r = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{}/cancel", job.id)))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("cancel");
    assert_eq!(r.status(), 200);
    assert_eq!(app.call_status(id).await, "failed");
    let again = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{}/cancel", job.id)))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("cancel");
    assert_eq!(
        again.status(),
        409,
        "a cancelled job cannot be cancelled twice"
    );
    let r = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{}/retry", job.id)))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("retry");
    assert_eq!(r.status(), 200);
    assert_eq!(app.call_status(id).await, "queued");
    app.stop().await;
}

async fn cancelling_a_running_job_stops_its_handler(backend: Backend) {
    let (handler, probe) =
        TestHandler::new("transcribe", Behaviour::Sleep(Duration::from_secs(60)));
    let app = spawn_app(backend, Registry::new().register(handler)).await;
    create_results_table(&app.store).await;
    let id = app.upload_call("m-1").await;
    app.wait_for_status(id, "transcribing", WAIT).await;
    let job = app
        .store
        .latest_job_for_call(id)
        .await
        .expect("get")
        .expect("job");
    let r = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{}/cancel", job.id)))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("cancel");
    assert_eq!(r.status(), 200);
    // The heartbeat (every lease/3 = ~0.7 s) notices and stops the handler.
    let started = std::time::Instant::now();
    while probe.running.load(Ordering::SeqCst) > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "handler still running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let job = app.store.get_job(job.id).await.expect("get").expect("job");
    assert_eq!(job.state, JobState::Cancelled);
    assert_eq!(
        count(&app.store, "SELECT COUNT(*) FROM test_results").await,
        0
    );
    app.stop().await;
}

async fn a_job_whose_worker_vanished_is_taken_over_and_its_result_written_once(backend: Backend) {
    let (handler, probe) = TestHandler::new("transcribe", Behaviour::Succeed);
    let app = spawn_app(backend, Registry::new()).await;
    create_results_table(&app.store).await;
    let id = app.upload_call("m-1").await;
    // A "ghost" worker claims the job with a lease that expires at once, writes the result,
    // and dies before recording success.
    let claimed = app
        .store
        .claim_jobs("transcribe", "ghost", 1, 1, &[])
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let ghost_job: &ClaimedJob = &claimed[0];
    let ctx = callgrade::jobs::JobContext {
        job: ghost_job.clone(),
        fence: Some(callgrade::store::Fence::of(ghost_job, "ghost")),
        store: app.store.clone(),
        cancel: Default::default(),
    };
    crate::test_jobs::write_result(&ctx, "transcribe")
        .await
        .expect("ghost result");
    tokio::time::sleep(Duration::from_millis(20)).await;
    // A real worker takes over.
    let worker = callgrade::jobs::Worker::new(
        app.store.clone(),
        Registry::new().register(handler),
        app.config.queue.clone(),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(worker.run(stop.clone()));
    let started = std::time::Instant::now();
    while app
        .store
        .get_job(ghost_job.id)
        .await
        .expect("get")
        .expect("job")
        .state
        != JobState::Succeeded
    {
        assert!(started.elapsed() < WAIT, "not taken over");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    stop.cancel();
    task.await.expect("worker");
    assert_eq!(probe.runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        count(&app.store, "SELECT COUNT(*) FROM test_results").await,
        1,
        "written at most once"
    );
    let job = app
        .store
        .get_job(ghost_job.id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(job.attempts, 2);
    // The ghost can no longer record anything about the job.
    assert!(!app
        .store
        .complete_job(ghost_job, "ghost", None, None)
        .await
        .expect("complete"));
    assert_eq!(
        app.call_status(id).await,
        "scoring",
        "moved on to the next stage, which waits for a worker"
    );
    app.stop().await;
}

async fn a_job_that_kills_every_worker_ends_dead(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let id = app.upload_call("m-1").await;
    // Three claims whose leases expire: the job's worker "died" on every attempt.
    for attempt in 1..=3 {
        let claimed = app
            .store
            .claim_jobs("transcribe", &format!("ghost-{attempt}"), 1, 1, &[])
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1, "attempt {attempt} claimable");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        app.store
            .claim_jobs("transcribe", "ghost-4", 1, 1, &[])
            .await
            .expect("claim")
            .is_empty(),
        "no attempts left"
    );
    app.store.reap_exhausted("transcribe").await.expect("reap");
    let job = app
        .store
        .latest_job_for_call(id)
        .await
        .expect("get")
        .expect("job");
    assert_eq!(job.state, JobState::Dead);
    assert_eq!(app.call_status(id).await, "failed");
    app.stop().await;
}

async fn per_kind_concurrency_limits_are_respected(backend: Backend) {
    let (slow, slow_probe) =
        TestHandler::new("transcribe", Behaviour::Sleep(Duration::from_millis(200)));
    let (wide, wide_probe) =
        TestHandler::new("score", Behaviour::Sleep(Duration::from_millis(200)));
    let app = spawn_app_with(
        backend,
        Registry::new().register(slow).register(wide),
        |c| {
            c.queue.concurrency.insert("transcribe".into(), 1);
            c.queue.concurrency.insert("score".into(), 3);
        },
    )
    .await;
    create_results_table(&app.store).await;
    let mut ids = vec![];
    for _ in 0..5 {
        ids.push(app.upload_call("m-1").await);
    }
    for id in &ids {
        app.wait_for_status(*id, "done", Duration::from_secs(30))
            .await;
    }
    assert_eq!(slow_probe.max_running.load(Ordering::SeqCst), 1);
    let wide_max = wide_probe.max_running.load(Ordering::SeqCst);
    assert!(wide_max <= 3, "score ran {wide_max} at once");
    app.stop().await;
}

async fn a_call_is_not_stored_when_its_job_cannot_be(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let first = app.upload_call("m-1").await;
    let existing_job = app
        .store
        .latest_job_for_call(first)
        .await
        .expect("get")
        .expect("job");
    // A job insert that fails (duplicate primary key) must roll back the call with it.
    let call = callgrade::store::NewCall {
        id: callgrade::domain::CallId::new(),
        manager_id: "m-1".parse().expect("manager"),
        deal_id: None,
        customer_id: None,
        direction: None,
        started_at: None,
        language: callgrade::domain::Language::Auto,
        channels: Default::default(),
        first_speaker: None,
        original_filename: None,
        content_type: None,
        size_bytes: 1,
        sha256: "f".repeat(64),
        storage_key: "x".into(),
    };
    let mut job = NewJob::for_call("transcribe", call.id, 3);
    job.id = JobId(existing_job.id.0);
    assert!(app.store.insert_call(&call, &job).await.is_err());
    assert!(
        app.store.get_call(call.id).await.expect("get").is_none(),
        "call rolled back with its job"
    );
    assert_eq!(app.call_status(first).await, CallStatus::Queued.as_str());
    app.stop().await;
}

async fn a_stale_run_cannot_write_over_the_run_that_took_its_lease(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let id = app.upload_call("m-1").await;
    // The first run's lease runs out mid-run (say the database stalled it) and the same worker
    // id claims the job again: two runs of one job, told apart by their claims.
    let first = app
        .store
        .claim_jobs("transcribe", "w", 1, 1, &[])
        .await
        .expect("claim")
        .remove(0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = app
        .store
        .claim_jobs("transcribe", "w", 1, 60_000, &[])
        .await
        .expect("claim")
        .remove(0);
    assert_eq!(first.id, second.id);
    assert_eq!(
        (first.attempt, second.attempt),
        (1, 2),
        "every claim gets a fresh token"
    );
    let stale = Fence::of(&first, "w");
    let fresh = Fence::of(&second, "w");

    // The newest run writes its result; the stale one's heartbeat, result and outcome are
    // refused, whatever order they come in.
    let mut newest = crate::scoring::corpus_transcript(id, "pub06_en");
    newest.model = "newest".into();
    app.store
        .save_transcript(&newest, Some(&fresh))
        .await
        .expect("the holder writes");
    let mut late = newest.clone();
    late.model = "stale".into();
    let refused = app.store.save_transcript(&late, Some(&stale)).await;
    assert!(
        matches!(refused, Err(callgrade::store::StoreError::Fenced)),
        "{refused:?}"
    );
    assert!(!app
        .store
        .heartbeat(&stale, 60_000)
        .await
        .expect("heartbeat"));
    assert!(!app.store.still_holds(&stale).await.expect("read"));
    assert!(!app
        .store
        .complete_job(&first, "w", None, None)
        .await
        .expect("complete"));
    assert!(!app
        .store
        .fail_job(
            &first,
            "w",
            "late",
            &callgrade::store::JobFailure::RetryAt(0)
        )
        .await
        .expect("fail"));
    assert_eq!(
        count(&app.store, "SELECT COUNT(*) FROM transcripts").await,
        1
    );
    let (_, t) = app
        .get_json(&app.admin, &format!("/api/v1/calls/{id}/transcript"))
        .await;
    assert_eq!(t["model"], "newest", "exactly one result, the newest");
    assert!(app
        .store
        .complete_job(&second, "w", None, None)
        .await
        .expect("complete"));
    app.stop().await;
}

async fn a_worker_never_claims_a_job_it_is_still_running(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    app.upload_call("m-1").await;
    let job = app
        .store
        .claim_jobs("transcribe", "w", 1, 1, &[])
        .await
        .expect("claim")
        .remove(0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = app
        .store
        .claim_jobs("transcribe", "w", 1, 60_000, &[job.id])
        .await
        .expect("claim");
    assert!(
        again.is_empty(),
        "its lease ran out, but this worker still runs it"
    );
    let other = app
        .store
        .claim_jobs("transcribe", "other", 1, 60_000, &[])
        .await
        .expect("claim");
    assert_eq!(other.len(), 1, "another worker may take it over");
    app.stop().await;
}

on_both_backends!(
    a_stale_run_cannot_write_over_the_run_that_took_its_lease,
    a_worker_never_claims_a_job_it_is_still_running,
    an_uploaded_call_moves_through_every_stage_to_done,
    a_retryable_failure_is_retried_with_backoff_then_succeeds,
    exhausted_retries_leave_the_job_dead_and_the_call_failed_until_retried,
    a_fatal_error_is_not_retried,
    a_queued_job_can_be_cancelled_and_retried,
    cancelling_a_running_job_stops_its_handler,
    a_job_whose_worker_vanished_is_taken_over_and_its_result_written_once,
    a_job_that_kills_every_worker_ends_dead,
    per_kind_concurrency_limits_are_respected,
    a_call_is_not_stored_when_its_job_cannot_be,
);
