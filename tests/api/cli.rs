//! The `callgrade` binary as users run it: tokens from the command line, uploads with the client.

use std::process::Command;

use callgrade::jobs::Registry;

use crate::helpers::{count, spawn_app, Backend};

const BIN: &str = env!("CARGO_BIN_EXE_callgrade");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_command_uploads_each_file_and_reports_failures_per_file() {
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.mp3");
    let b = dir.path().join("b.mp3");
    std::fs::write(&a, crate::helpers::unique_bytes()).expect("write");
    std::fs::write(&b, crate::helpers::unique_bytes()).expect("write");
    let missing = dir.path().join("missing.mp3");
    let base_url = app.base_url.clone();
    let token = app.admin.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["upload", "--manager", "m-7", "--deal", "D-1"])
            .arg(&a)
            .arg(&missing)
            .arg(&b)
            .env("CALLGRADE_SERVER", base_url)
            .env("CALLGRADE_TOKEN", token)
            .output()
            .expect("run callgrade upload")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "one file failed: {stdout}");
    assert!(stdout.contains("a.mp3 -> call"), "{stdout}");
    assert!(stdout.contains("b.mp3 -> call"), "{stdout}");
    assert!(
        stdout.contains("missing.mp3 -> FAILED: cannot open"),
        "{stdout}"
    );
    assert_eq!(
        count(
            &app.store,
            "SELECT COUNT(*) FROM calls WHERE manager_id = 'm-7' AND deal_id = 'D-1'"
        )
        .await,
        2
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_on_the_command_line_works_with_a_warning_and_the_variable_without() {
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, on_command_line) in [true, false].into_iter().enumerate() {
        let file = dir.path().join(format!("{i}.mp3"));
        std::fs::write(&file, crate::helpers::unique_bytes()).expect("write");
        let (base_url, token) = (app.base_url.clone(), app.admin.clone());
        let out = tokio::task::spawn_blocking(move || {
            let mut cmd = Command::new(BIN);
            cmd.args(["upload", "--manager", "m-7"])
                .arg(&file)
                .env("CALLGRADE_SERVER", base_url)
                .env_remove("CALLGRADE_TOKEN");
            if on_command_line {
                cmd.args(["--token", &token]);
            } else {
                cmd.env("CALLGRADE_TOKEN", &token);
            }
            cmd.output().expect("run callgrade upload")
        })
        .await
        .expect("join");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            stderr.contains("--token on the command line is visible to other users"),
            on_command_line,
            "{stderr}"
        );
        if on_command_line {
            assert!(stderr.contains("CALLGRADE_TOKEN"), "{stderr}");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_command_uploads_the_rest_after_a_refused_file_and_says_why() {
    let app = crate::helpers::spawn_app_with(Backend::Sqlite, Registry::new(), |c| {
        c.max_upload_bytes = 50_000
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.wav");
    let big = dir.path().join("big.wav");
    let notes = dir.path().join("notes.mp3");
    let b = dir.path().join("b.wav");
    std::fs::write(&a, crate::helpers::unique_bytes()).expect("write");
    std::fs::write(&big, crate::helpers::wav_of(400_000)).expect("write");
    std::fs::write(&notes, b"meeting notes, not a recording\n".repeat(100)).expect("write");
    std::fs::write(&b, crate::helpers::unique_bytes()).expect("write");
    let (base_url, token) = (app.base_url.clone(), app.admin.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .args(["upload", "--manager", "m-8"])
            .args([&a, &big, &notes, &b])
            .env("CALLGRADE_SERVER", base_url)
            .env("CALLGRADE_TOKEN", token)
            .output()
            .expect("run callgrade upload")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("a.wav -> call"), "{stdout}");
    assert!(stdout.contains("b.wav -> call"), "{stdout}");
    assert!(
        stdout.contains("big.wav -> FAILED: 413") && stdout.contains("larger than"),
        "{stdout}"
    );
    assert!(
        stdout.contains("notes.mp3 -> FAILED: 415") && stdout.contains("looks like text"),
        "{stdout}"
    );
    assert!(stderr.contains("2 of 4 uploads failed"), "{stderr}");
    assert_eq!(
        count(
            &app.store,
            "SELECT COUNT(*) FROM calls WHERE manager_id = 'm-8'"
        )
        .await,
        2
    );
    app.stop().await;
}

#[test]
fn token_commands_create_list_and_revoke() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/cli.db", dir.path().display());
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("CALLGRADE_DATABASE_URL", &db)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run")
    };
    let created = run(&[
        "token",
        "create",
        "--role",
        "manager",
        "--manager",
        "m-1",
        "--name",
        "Jake",
        "--quiet",
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let secret = String::from_utf8_lossy(&created.stdout).trim().to_string();
    assert!(secret.starts_with("cgt_") && secret.len() == 68, "{secret}");

    let bad = run(&[
        "token",
        "create",
        "--role",
        "manager",
        "--name",
        "No manager",
    ]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("needs a manager id"));

    let list = run(&["token", "list"]);
    let listing = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        listing.contains("Jake") && listing.contains("m-1"),
        "{listing}"
    );
    assert!(!listing.contains(&secret), "secrets are never listed");
    let id = listing
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .expect("id")
        .to_string();
    assert!(run(&["token", "revoke", &id]).status.success());
    assert!(
        !run(&["token", "revoke", &id]).status.success(),
        "revoking twice is an error"
    );
}

#[test]
fn a_bad_setting_is_refused_with_its_name() {
    let out = Command::new(BIN)
        .arg("migrate")
        .env("CALLGRADE_DATABASE_URL", "mysql://x")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("database_url must start with sqlite:// or postgres://"));
}

#[test]
fn user_commands_read_the_password_from_stdin_and_explain_refusals() {
    use std::io::Write;
    use std::process::Stdio;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}/cli.db", dir.path().display());
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(BIN)
            .args(args)
            .env("CALLGRADE_DATABASE_URL", &db)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write password");
        child.wait_with_output().expect("output")
    };
    let create = [
        "user",
        "create",
        "--username",
        "Mila",
        "--role",
        "manager",
        "--manager",
        "m-1",
        "--password-stdin",
    ];
    let out = run(&create, "a long enough password\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same name again, a short password, a manager without a manager id: clear refusals.
    for (args, password, says) in [
        (&create[..], "a long enough password\n", "already exists"),
        (
            &[
                "user",
                "create",
                "--username",
                "x",
                "--role",
                "qa",
                "--password-stdin",
            ][..],
            "short\n",
            "at least 10 characters",
        ),
        (
            &[
                "user",
                "create",
                "--username",
                "y",
                "--role",
                "manager",
                "--password-stdin",
            ][..],
            "a long enough password\n",
            "needs --manager",
        ),
    ] {
        let out = run(args, password);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    let out = run(&["user", "list"], "");
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        listing.contains("mila") && listing.contains("m-1"),
        "{listing}"
    );
    assert!(!listing.contains("argon2"), "hashes are never listed");
    assert!(run(&["user", "disable", "mila"], "").status.success());
    assert!(!run(&["user", "disable", "mila"], "").status.success());
    let out = run(
        &["user", "password", "mila", "--password-stdin"],
        "another long one\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
