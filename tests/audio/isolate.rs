//! The isolated decoder: broken files, crashes, memory and time overruns stay in the child.

use std::time::{Duration, Instant};

use callgrade::audio::{
    decode_file, decode_isolated, DecodeError, DecodeLimits, FaultInjection, SniffError,
};

use crate::common::{bad, call, limits, program};

async fn isolated(
    path: &std::path::Path,
    limits: &DecodeLimits,
) -> Result<callgrade::audio::DecodedAudio, DecodeError> {
    decode_isolated(&program(), path, limits).await
}

#[tokio::test]
async fn an_empty_file_fails_with_empty_file() {
    let err = isolated(&bad("empty.mp3"), &limits())
        .await
        .expect_err("empty");
    assert_eq!(err, DecodeError::Sniff(SniffError::Empty));
    assert_eq!(err.to_string(), "empty file");
}

#[tokio::test]
async fn random_bytes_and_text_are_refused_clearly() {
    let err = isolated(&bad("random_bytes.wav"), &limits())
        .await
        .expect_err("random");
    assert_eq!(err, DecodeError::Sniff(SniffError::Unrecognised));
    let err = isolated(&bad("text_renamed.mp3"), &limits())
        .await
        .expect_err("text");
    assert_eq!(err.to_string(), "not an audio file: looks like text");
}

#[tokio::test]
async fn a_truncated_mp3_decodes_only_what_is_there() {
    let audio = isolated(&bad("truncated_3kb.mp3"), &limits())
        .await
        .expect("partial decode");
    let secs = audio.duration_s();
    assert!(
        secs > 0.3 && secs < 1.0,
        "{secs} s, the header claims 109 s"
    );
    assert!(
        audio.warnings.iter().any(|w| w.contains("incomplete")),
        "a warning should say the upload looks incomplete: {:?}",
        audio.warnings
    );
}

#[tokio::test]
async fn a_wav_claiming_4_gib_decodes_only_its_real_second() {
    let audio = isolated(&bad("huge_header.wav"), &limits())
        .await
        .expect("partial decode");
    assert!(
        (audio.duration_s() - 1.0).abs() < 0.02,
        "{} s",
        audio.duration_s()
    );
    assert!(!audio.warnings.is_empty());
}

#[tokio::test]
async fn a_fifth_of_a_second_is_decoded_not_refused() {
    let audio = isolated(&bad("short_0.2s.wav"), &limits())
        .await
        .expect("short decode");
    assert!(
        (audio.duration_s() - 0.2).abs() < 0.01,
        "{} s",
        audio.duration_s()
    );
}

#[tokio::test]
async fn ten_minutes_of_silence_is_ten_minutes_of_audio() {
    let audio = isolated(&bad("silence_10min.mp3"), &limits())
        .await
        .expect("silence decodes");
    assert!(
        (audio.duration_s() - 600.0).abs() < 0.5,
        "{} s",
        audio.duration_s()
    );
    assert!(
        audio.channels.iter().flatten().all(|s| s.abs() < 1e-4),
        "silence is silent"
    );
}

#[tokio::test]
async fn the_isolated_result_equals_the_in_process_result() {
    let path = call("pub04_ru_stereo.ogg");
    let here = decode_file(&path, &limits()).expect("in process");
    let there = isolated(&path, &limits()).await.expect("isolated");
    assert_eq!(here, there);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_bad_files_does_not_stop_the_good_one_beside_them() {
    let mut jobs = tokio::task::JoinSet::new();
    let files = [
        bad("empty.mp3"),
        bad("random_bytes.wav"),
        bad("text_renamed.mp3"),
        bad("truncated_3kb.mp3"),
        bad("huge_header.wav"),
        call("pub06_en.mp3"),
    ];
    for (i, path) in files.into_iter().enumerate() {
        jobs.spawn(async move { (i, decode_isolated(&program(), &path, &limits()).await) });
    }
    let mut good = None;
    while let Some(joined) = jobs.join_next().await {
        let (i, result) = joined.expect("task");
        if i == 5 {
            good = Some(result);
        }
    }
    let good = good.expect("good file ran").expect("good file decoded");
    assert!((good.duration_s() - 68.656).abs() < 0.1);
}

#[tokio::test]
async fn a_call_longer_than_the_limit_is_refused_as_too_long() {
    let limits = DecodeLimits {
        max_duration: Duration::from_secs(10),
        ..limits()
    };
    let err = isolated(&call("pub04_ru.mp3"), &limits)
        .await
        .expect_err("too long");
    assert_eq!(err, DecodeError::TooLong { max_s: 10 });
    assert_eq!(
        err.to_string(),
        "the recording is longer than the 10 s limit"
    );
}

#[tokio::test]
async fn a_decoder_that_wants_too_much_memory_is_stopped_and_reported() {
    let limits = DecodeLimits {
        memory_bytes: 512 << 20,
        fault: Some(FaultInjection::Allocate(4 << 30)),
        ..limits()
    };
    let err = isolated(&call("pub04_ru.mp3"), &limits)
        .await
        .expect_err("oom");
    assert_eq!(err, DecodeError::OutOfMemory);
    assert_eq!(err.to_string(), "decoder exceeded its memory limit");
}

#[tokio::test]
async fn a_tiny_memory_limit_fails_the_job_not_the_worker() {
    // 8 MiB of address space is too little even to map the decoder's buffers.
    let limits = DecodeLimits {
        memory_bytes: 8 << 20,
        ..limits()
    };
    let err = isolated(&call("pub04_ru.mp3"), &limits)
        .await
        .expect_err("must fail");
    assert!(
        matches!(
            err,
            DecodeError::OutOfMemory | DecodeError::Crashed(_) | DecodeError::ChildFailed(_)
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_decoder_that_hangs_is_killed_at_the_time_limit() {
    let limits = DecodeLimits {
        timeout: Duration::from_secs(2),
        fault: Some(FaultInjection::Sleep(Duration::from_secs(60))),
        ..limits()
    };
    let started = Instant::now();
    let err = isolated(&call("pub04_ru.mp3"), &limits)
        .await
        .expect_err("timeout");
    assert_eq!(err, DecodeError::TimedOut(2));
    assert_eq!(err.to_string(), "decoding took longer than 2 s");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_decoder_that_aborts_is_reported_as_a_crash() {
    let limits = DecodeLimits {
        fault: Some(FaultInjection::Abort),
        ..limits()
    };
    let err = isolated(&call("pub04_ru.mp3"), &limits)
        .await
        .expect_err("crash");
    assert_eq!(err, DecodeError::Crashed(6));
    assert_eq!(err.to_string(), "decoder crashed (signal 6)");
}

#[tokio::test]
async fn a_missing_decoder_program_is_a_retryable_spawn_error() {
    let program =
        callgrade::audio::DecoderProgram::new("/nonexistent/callgrade", ["audio-decode-child"]);
    let err = decode_isolated(&program, &call("pub04_ru.mp3"), &limits())
        .await
        .expect_err("spawn");
    assert!(matches!(err, DecodeError::Spawn(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn the_decoder_child_sees_no_secrets_and_cannot_reach_the_network_files_or_programs() {
    // What the server's environment holds: the child must not inherit any of it.
    std::env::set_var("CALLGRADE_LLM__API_KEY", "sk-must-not-leak");
    std::env::set_var(
        "CALLGRADE_DATABASE_URL",
        "postgres://cg:hunter2@db/callgrade",
    );
    let limits = DecodeLimits {
        fault: Some(FaultInjection::Escape),
        ..limits()
    };
    let err = isolated(&call("pub04_ru.mp3"), &limits)
        .await
        .expect_err("the escape probe exits as a failure");
    let report = err.to_string();
    assert!(report.contains("escape: env=0 "), "{report}");
    // Denied by the sandbox, not refused by an empty port: the socket is never created.
    assert!(
        report.contains("socket=refused (permission denied)"),
        "{report}"
    );
    assert!(report.contains("read=refused"), "{report}");
    assert!(report.contains("exec=refused"), "{report}");
}
