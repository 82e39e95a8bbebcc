//! Upload benchmarks: presign latency in process, and completion throughput for a
//! 100-record S3 event against the dev PostgreSQL and the moto S3 emulator.
//!
//!   eval "$(scripts/dev-services.sh env)"
//!   nice -n 10 cargo run -p encache-testkit --example upload_bench [--release]

use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::s3::S3Event;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use encache_shared::http::Caller;
use encache_shared::users;
use encache_testkit::{TestDb, sample_event};
use encache_upload::complete::{self, Outcome};
use encache_upload::keys::object_key;
use encache_upload::store::{self, NewMemory};
use encache_upload::{CompleteSettings, api};
use uuid::Uuid;

const PRESIGNS: usize = 5_000;
const RECORDS: usize = 100;

#[tokio::main]
async fn main() {
    presign_latency().await;
    for concurrency in [1, 2, 8] {
        completion_throughput(concurrency).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn presign_latency() {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDEXAMPLE", "secret", None, None, "b"))
        .build();
    let s3 = aws_sdk_s3::Client::from_conf(config);
    let user = Uuid::new_v4();
    let mut samples = Vec::with_capacity(PRESIGNS);
    for i in 0..PRESIGNS + 200 {
        let key = object_key(user, Uuid::new_v4());
        let started = Instant::now();
        let p = api::presign_put(
            &s3,
            "encache-dev-uploads",
            &key,
            "image/jpeg",
            2_048_576,
            SystemTime::now(),
            Duration::from_secs(900),
        )
        .await
        .expect("presign");
        let took = started.elapsed();
        assert!(p.uri().contains("X-Amz-Signature"));
        if i >= 200 {
            samples.push(took); // the first 200 are warm-up
        }
    }
    samples.sort();
    println!(
        "presign: n={} p50={:?} p99={:?} max={:?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
}

async fn completion_throughput(concurrency: usize) {
    let db = TestDb::new().await;
    let (s3, bucket) = encache_testkit::fresh_bucket("encache-bench").await;
    let caller = Caller {
        sub: format!("bench-{}", Uuid::new_v4()),
        email: Some("bench@example.com".into()),
        email_verified: true,
        username: None,
        groups: vec![],
    };
    let user_id = users::for_caller(&db.pool, &caller)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .id;

    // Setup, not timed: 100 pending memories and their objects.
    let mut event: S3Event = sample_event("s3-object-created.json");
    let template = event.records[0].clone();
    event.records.clear();
    for i in 0..RECORDS {
        let id = Uuid::new_v4();
        let key = object_key(user_id, id);
        store::insert_pending(
            &db.pool,
            &NewMemory {
                id,
                user_id,
                s3_key: &key,
                title: None,
                file_name: None,
                content_type: "text/plain",
                size_bytes: 5,
                captured_at: None,
                upload_expires_at: time::OffsetDateTime::now_utc() + time::Duration::minutes(15),
            },
        )
        .await
        .unwrap();
        s3.put_object()
            .bucket(&bucket)
            .key(&key)
            .content_type("text/plain")
            .body(ByteStream::from_static(b"hello"))
            .send()
            .await
            .unwrap();
        let mut r = template.clone();
        r.s3.bucket.name = Some(bucket.clone());
        r.s3.object.key = Some(key);
        r.s3.object.sequencer = Some(format!("{:018X}", 0x55AE_D6DC_D902_81E5u64 + i as u64));
        event.records.push(r);
    }
    let deps = complete::Deps {
        db: std::sync::Arc::new(db.pool.clone().into()),
        s3: s3.clone().into(),
        settings: CompleteSettings {
            bucket: bucket.clone(),
            concurrency,
        },
    };

    let started = Instant::now();
    let report = complete::process(&deps, event.clone()).await;
    let first = started.elapsed();
    let ready = report
        .results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Ready { .. }))
        .count();
    assert_eq!(ready, RECORDS, "{report:?}");

    let started = Instant::now();
    let again = complete::process(&deps, event).await;
    let redelivery = started.elapsed();
    assert!(
        again
            .results
            .iter()
            .all(|r| matches!(r.outcome, Outcome::AlreadyApplied { .. }))
    );

    println!(
        "completion: records={RECORDS} concurrency={concurrency} first={first:?} ({:.0} records/s) redelivery={redelivery:?} ({:.0} records/s)",
        RECORDS as f64 / first.as_secs_f64(),
        RECORDS as f64 / redelivery.as_secs_f64(),
    );
}
