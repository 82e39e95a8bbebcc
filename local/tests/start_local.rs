//! scripts/start-local.sh, every path of its contract. The failure paths stop before the
//! shared dev services are touched (or use a state folder of their own); the success path
//! reuses the running services with a database of its own.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

fn script() -> PathBuf {
    encache_testkit::repo_root().join("scripts/start-local.sh")
}

/// The script with the fixture stack, in a scratch folder, without building.
fn start_local(dir: &Path) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(script());
    // Its own stack in the emulator: `encache-local` is the samples' (stack_sync_sample.rs).
    stack_env(
        &mut cmd,
        &fixtures().join("template.yaml"),
        dir,
        &unique("enclocal"),
    )
    .env("START_LOCAL_SKIP_BUILD", "1")
    .env("ENCACHE_LOCAL_BIN", env!("CARGO_BIN_EXE_encache-local"))
    .stdin(Stdio::null());
    cmd
}

fn write_env_files(dir: &Path, env: serde_json::Value) {
    std::fs::write(dir.join("sam-env.local.json"), env.to_string()).expect("env");
    std::fs::write(
        dir.join("sam-container-env.local.json"),
        r#"{"Parameters": {}}"#,
    )
    .expect("container env");
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_missing_env_file_stops_before_anything_is_started_or_built() {
    let dir = scratch();
    let out = start_local(&dir).output().expect("runs");

    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("missing sam-env.local.json: run scripts/start-local.sh --init"),
        "{err}"
    );
    assert!(
        !err.contains("starting the local database") && !err.contains("building"),
        "{err}"
    );
}

#[test]
fn a_missing_container_env_file_stops_before_anything_is_started_or_built() {
    let dir = scratch();
    std::fs::write(dir.join("sam-env.local.json"), default_env().to_string()).expect("env");

    let out = start_local(&dir).output().expect("runs");

    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("missing sam-container-env.local.json"),
        "{err}"
    );
    assert!(!err.contains("starting the local database"), "{err}");
}

#[test]
fn placeholder_cognito_ids_are_a_clear_error() {
    for (key, name) in [
        ("CognitoUserPoolId", "COGNITO_USER_POOL_ID"),
        ("COGNITO_APP_CLIENT_ID", "COGNITO_APP_CLIENT_ID"),
    ] {
        let dir = scratch();
        write_env_files(
            &dir,
            json!({"Parameters": {"PoolId": "p", "ClientId": "c", key: format!("REPLACE_WITH_{name}")}}),
        );

        let out = start_local(&dir).output().expect("runs");

        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{name} (")) && err.contains("is still a placeholder"),
            "{err}"
        );
        assert!(!err.contains("starting the local database"), "{err}");
    }
}

#[test]
fn a_database_that_fails_its_health_check_in_time_is_a_clear_error() {
    // given PostgreSQL binaries that never come up, and a services folder of its own
    let dir = scratch();
    write_env_files(&dir, default_env());
    let pg_bin = dir.join("pg-bin");
    std::fs::create_dir_all(&pg_bin).expect("pg bin");
    for (tool, body) in [
        ("initdb", "exit 0"),
        ("pg_ctl", "exit 1"),
        ("pg_isready", "exit 2"),
    ] {
        let path = pg_bin.join(tool);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("fake tool");
        Command::new("chmod")
            .arg("755")
            .arg(&path)
            .status()
            .expect("chmod");
    }

    let out = start_local(&dir)
        .env("PG_BIN", &pg_bin)
        .env("ENCACHE_DEV_DIR", dir.join("dev"))
        .env("DEV_SERVICES_WAIT_SECONDS", "1")
        .output()
        .expect("runs");

    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("did not pass their health checks in time"),
        "{err}"
    );
    assert!(!err.contains("applying database migrations"), "{err}");
}

#[tokio::test]
async fn with_the_files_in_place_it_migrates_starts_the_api_and_prints_its_url() {
    // given valid env files and a database of its own
    let db = encache_testkit::TestDb::new().await;
    let dir = scratch();
    write_env_files(&dir, default_env());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();

    // when
    let mut child = start_local(&dir)
        .env("ENCACHE_API_ADDR", format!("127.0.0.1:{port}"))
        .env("ENCACHE_LOCAL_DATABASE_URL", &db.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut url_line = None;
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200))
            && line.contains("listening on")
        {
            url_line = Some(line);
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).ok();
            panic!("start-local exited early ({status}):\n{err}");
        }
    }

    // then it printed the URL, and the API answers there
    let url_line = url_line.expect("the URL within 60 s");
    assert!(
        url_line.contains(&format!("http://127.0.0.1:{port}")),
        "{url_line}"
    );
    let resp = client()
        .get(format!("http://127.0.0.1:{port}/v1/public"))
        .send()
        .await
        .expect("request");
    let status = resp.status();
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    let _ = child.wait();
    assert_eq!(status, 200);
}
