//! Memory-feed latency: the first page against a page deep in one big feed, through the
//! handler (keyset) and through the local stack's HTTP API (the real template's gateway
//! with its Cognito JWT authorizer, the function's own binary), beside the same pages
//! fetched with LIMIT/OFFSET.
//!
//! Builds its own database on the dev services' PostgreSQL, fills it, measures, drops it.
//! The gateway rows sign a user up in the emulator's Cognito and give them the big feed:
//!
//! ```sh
//! eval "$(scripts/dev-services.sh env)"
//! cargo build -p encache-auth -p encache-memory-feed --bins   # the functions the gateway runs
//! nice -n 10 cargo run -p encache-testkit --example feed_bench -- \
//!     --users 10000 --per-user 200 --heavy 200000 --depth 100000 --runs 200
//! ```

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use encache_memory_feed::{Deps, FeedFilter, Settings, list};
use encache_shared::aws::{s3_client, sdk_config};
use encache_shared::config::Secret;
use encache_shared::pagination::{CursorSigner, Keyset};
use encache_testkit::HttpEvent;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool, Row};

const HEAVY_SUB: &str = "bench-heavy";
const PAGE: i64 = 20;
const CURSOR_KEY: &str = "bench-cursor-key-0123456789abcdefghij";
const PASSWORD: &str = "Passw0rd!long";

struct Args {
    users: i64,
    per_user: i64,
    heavy: i64,
    depth: i64,
    runs: usize,
}

fn args() -> Result<Args> {
    let mut a = Args {
        users: 10_000,
        per_user: 200,
        heavy: 200_000,
        depth: 100_000,
        runs: 200,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--users" => a.users = value.parse()?,
            "--per-user" => a.per_user = value.parse()?,
            "--heavy" => a.heavy = value.parse()?,
            "--depth" => a.depth = value.parse()?,
            "--runs" => a.runs = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if a.depth >= a.heavy {
        bail!("--depth must be below --heavy");
    }
    Ok(a)
}

/// The sample `GET /v1/memories` event, as the heavy user, with `query`.
fn request(query: &[(&str, &str)]) -> ApiGatewayV2httpRequest {
    HttpEvent::sample("memory-feed-list.json")
        .caller(HEAVY_SUB)
        .query(query)
        .build()
}

async fn seed(pool: &PgPool, a: &Args) -> Result<()> {
    let t = Instant::now();
    sqlx::query(
        "INSERT INTO users (cognito_sub, email)
         SELECT 'bench-' || g, 'bench-' || g || '@example.com' FROM generate_series(1, $1) g",
    )
    .bind(a.users)
    .execute(pool)
    .await?;
    sqlx::query("INSERT INTO users (cognito_sub, email) VALUES ($1, 'heavy@example.com')")
        .bind(HEAVY_SUB)
        .execute(pool)
        .await?;
    // Everyone's memories in one statement; 3/4 ready, the rest spread over other states.
    sqlx::query(
        "INSERT INTO memories (user_id, s3_key, declared_content_type, declared_size_bytes,
                               status, upload_expires_at, created_at)
         SELECT u.id, 'users/' || u.id || '/memories/' || gen_random_uuid(), 'image/jpeg', 1000,
                (ARRAY['ready','ready','ready','failed'])[1 + g % 4], now(),
                now() - make_interval(secs => g * 37 + random() * 30)
         FROM users u CROSS JOIN generate_series(1, $1) g
         WHERE u.cognito_sub <> $2",
    )
    .bind(a.per_user)
    .bind(HEAVY_SUB)
    .execute(pool)
    .await?;
    sqlx::query(
        "INSERT INTO memories (user_id, s3_key, declared_content_type, declared_size_bytes,
                               status, upload_expires_at, created_at)
         SELECT u.id, 'users/' || u.id || '/memories/' || gen_random_uuid(), 'image/jpeg', 1000,
                'ready', now(), now() - make_interval(secs => g)
         FROM users u CROSS JOIN generate_series(1, $1) g
         WHERE u.cognito_sub = $2",
    )
    .bind(a.heavy)
    .bind(HEAVY_SUB)
    .execute(pool)
    .await?;
    sqlx::query("VACUUM ANALYZE memories").execute(pool).await?;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM memories")
        .fetch_one(pool)
        .await?;
    eprintln!("seeded {rows} memories in {:.1?}", t.elapsed());
    Ok(())
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |p: f64| {
        let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

async fn time_it<F, Fut>(runs: usize, mut f: F) -> Result<(f64, f64)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize>>,
{
    for _ in 0..runs.div_ceil(10) {
        f().await?; // warm-up: plans cached, pages in memory
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let n = f().await?;
        samples.push(t.elapsed());
        if n != PAGE as usize {
            bail!("expected a full page, got {n} items");
        }
    }
    Ok(percentiles(samples))
}

const OFFSET_SQL: &str = "
    SELECT m.id, m.created_at FROM memories m
    WHERE m.user_id = (SELECT u.id FROM users u WHERE u.cognito_sub = $1) AND m.status = 'ready'
    ORDER BY m.created_at DESC, m.id DESC LIMIT $2 OFFSET $3";

async fn offset_page(pool: &PgPool, offset: i64) -> Result<usize> {
    Ok(sqlx::query(OFFSET_SQL)
        .bind(HEAVY_SUB)
        .bind(PAGE)
        .bind(offset)
        .fetch_all(pool)
        .await?
        .len())
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let admin = std::env::var("DATABASE_URL").context("DATABASE_URL (dev services)")?;
    let base = admin
        .rsplit_once('/')
        .context("DATABASE_URL has a database")?
        .0;
    let name = format!("bench_feed_{}", std::process::id());
    let mut conn = PgConnection::connect(&admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await?;
    let url = format!("{base}/{name}");
    let result = run(&a, &url).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await?;
    result
}

async fn run(a: &Args, url: &str) -> Result<()> {
    let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
    encache_shared::db::MIGRATOR.run(&pool).await?;
    seed(&pool, a).await?;

    let signer = CursorSigner::new(&Secret::new(CURSOR_KEY.into()))?;
    let deps = Deps {
        db: pool.clone().into(),
        s3: s3_client(&sdk_config().await).into(),
        cursors: signer.clone().into(),
        settings: Settings {
            bucket: "bench".into(),
            download_ttl: Duration::from_secs(300),
            db_timeout: Duration::from_secs(5),
        },
    };
    // The cursor a client holds after walking `depth` items: the key of the depth-th one.
    let row = sqlx::query(OFFSET_SQL)
        .bind(HEAVY_SUB)
        .bind(1i64)
        .bind(a.depth - 1)
        .fetch_one(&pool)
        .await?;
    let at = Keyset {
        time: row.try_get("created_at")?,
        id: row.try_get("id")?,
    };
    let first_req = request(&[("limit", "20")]);
    let filter = FeedFilter::from_query(&first_req).map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(filter.status, "ready");
    let cursor = signer.encode(&filter.scope(HEAVY_SUB), at);
    let deep_req = request(&[("limit", "20"), ("cursor", &cursor)]);
    let deep_first = list(&deep_req, &deps)
        .await
        .map_err(|e| anyhow::anyhow!("deep page: {e}"))?;
    let offset_first: uuid::Uuid = sqlx::query(OFFSET_SQL)
        .bind(HEAVY_SUB)
        .bind(1i64)
        .bind(a.depth)
        .fetch_one(&pool)
        .await?
        .try_get("id")?;
    if deep_first.items[0].id != offset_first {
        bail!(
            "keyset and offset disagree about the page at depth {}",
            a.depth
        );
    }

    let handler = |req: ApiGatewayV2httpRequest| {
        let deps = &deps;
        move || {
            let req = req.clone();
            async move {
                let page = list(&req, deps).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok(page.items.len())
            }
        }
    };
    let kf = time_it(a.runs, handler(first_req.clone())).await?;
    let kd = time_it(a.runs, handler(deep_req.clone())).await?;
    let of = time_it(a.runs, || offset_page(&pool, 0)).await?;
    let od = time_it(a.runs, || offset_page(&pool, a.depth)).await?;
    let (gf, gd) = gateway::measure(a, url, &pool, &signer, &filter, at, offset_first).await?;

    println!(
        "dataset: {} users x {} memories + 1 user x {}; page {PAGE}; {} runs each",
        a.users, a.per_user, a.heavy, a.runs
    );
    println!(
        "| fetch | first page p50 / p99 (ms) | page at {} p50 / p99 (ms) | deep / first (p50) |",
        a.depth
    );
    println!("| --- | --- | --- | --- |");
    println!(
        "| handler, keyset cursor | {:.2} / {:.2} | {:.2} / {:.2} | {:.2}x |",
        kf.0,
        kf.1,
        kd.0,
        kd.1,
        kd.0 / kf.0
    );
    println!(
        "| local gateway (JWT + HTTP + function process), keyset cursor | {:.2} / {:.2} | {:.2} / {:.2} | {:.2}x |",
        gf.0,
        gf.1,
        gd.0,
        gd.1,
        gd.0 / gf.0
    );
    println!(
        "| SQL, LIMIT/OFFSET | {:.2} / {:.2} | {:.2} / {:.2} | {:.1}x |",
        of.0,
        of.1,
        od.0,
        od.1,
        od.0 / of.0
    );
    Ok(())
}

/// The same two pages as a client fetches them: `GET /v1/memories` on the local stack of
/// `template.yaml`, with a Cognito ID token from the emulator.
mod gateway {
    use std::time::Duration;

    use anyhow::{Context, Result, bail};
    use encache_local::commands::setup::database_parameters;
    use encache_local::emulators::cognito::{self, Pool};
    use encache_local::emulators::gateway::GatewaySettings;
    use encache_local::emulators::{self, StartOptions};
    use encache_local::stack::{Config, Stack};
    use encache_memory_feed::FeedFilter;
    use encache_shared::pagination::{CursorSigner, Keyset};
    use encache_testkit::{profile_dir, repo_root};
    use sqlx::PgPool;

    use super::{Args, CURSOR_KEY, HEAVY_SUB, PASSWORD, time_it};

    pub async fn measure(
        a: &Args,
        db_url: &str,
        db: &PgPool,
        signer: &CursorSigner,
        filter: &FeedFilter,
        at: Keyset,
        offset_first: uuid::Uuid,
    ) -> Result<((f64, f64), (f64, f64))> {
        let sdk = encache_shared::aws::sdk_config().await;
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let (pool_id, client_id) =
            cognito::create_pool(&sdk, &format!("enc-bench-{suffix}")).await?;
        let scratch = std::env::temp_dir().join(format!("encache-feed-bench-{suffix}"));
        std::fs::create_dir_all(&scratch)?;
        let mut parameters = serde_json::json!({
            "Env": format!("bench{suffix}"),
            "CognitoUserPoolId": pool_id,
            "CognitoAppClientId": client_id,
            "AutoConfirmUsers": "true",
            "AutoVerifyEmail": "true",
            "CURSOR_SIGNING_KEY": CURSOR_KEY,
        });
        for (k, v) in database_parameters(db_url) {
            parameters[k] = serde_json::json!(v);
        }
        let mut config = Config::for_root(&repo_root(), profile_dir()).env_files_in(&scratch);
        config.stack_name = format!("encache-bench{suffix}");
        std::fs::write(
            &config.env_vars,
            serde_json::json!({ "Parameters": parameters }).to_string(),
        )?;
        let stack = Stack::load(config)?;
        let missing: Vec<_> = ["memory-feed", "auth-pre-sign-up", "auth-post-confirmation"]
            .into_iter()
            .filter(|b| !stack.config.bin_dir.join(b).exists())
            .collect();
        if !missing.is_empty() {
            bail!(
                "no {missing:?} in {}: cargo build -p encache-auth -p encache-memory-feed --bins",
                stack.config.bin_dir.display()
            );
        }

        // A local sign-up (the triggers run, post-confirmation creates the users row), then
        // the big feed becomes this user's: the row's Cognito sub moves onto the heavy one.
        let pool = Pool::from_stack(&stack)?;
        let email = format!("bench-{suffix}@example.com");
        cognito::create(&stack, &pool, &email, PASSWORD).await?;
        let token = cognito::token(&pool, &email, PASSWORD).await?;
        let sub: String = sqlx::query_scalar("SELECT cognito_sub FROM users WHERE email = $1")
            .bind(&email)
            .fetch_one(db)
            .await
            .context("post-confirmation created no users row")?;
        let mut tx = db.begin().await?;
        sqlx::query("DELETE FROM users WHERE cognito_sub = $1")
            .bind(&sub)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE users SET cognito_sub = $1 WHERE cognito_sub = $2")
            .bind(&sub)
            .bind(HEAVY_SUB)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;

        let running = emulators::start(
            &stack,
            &StartOptions {
                addr: "127.0.0.1:0".into(),
                gateway: GatewaySettings::default(),
                event_sources: false,
            },
        )
        .await?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let cursor = signer.encode(&filter.scope(&sub), at);
        let first_url = format!("{}/v1/memories?limit=20", running.url);
        let deep_url = format!("{first_url}&cursor={cursor}");
        let page = |url: String| {
            let http = http.clone();
            let token = token.clone();
            move || {
                let (http, token, url) = (http.clone(), token.clone(), url.clone());
                async move {
                    let resp = http.get(&url).bearer_auth(&token).send().await?;
                    let status = resp.status();
                    let body: serde_json::Value = serde_json::from_slice(&resp.bytes().await?)?;
                    if !status.is_success() {
                        bail!("{status}: {body}");
                    }
                    Ok(body["items"].as_array().map_or(0, Vec::len))
                }
            }
        };
        let result = async {
            let body: serde_json::Value = http
                .get(&deep_url)
                .bearer_auth(&token)
                .send()
                .await?
                .json()
                .await?;
            if body["items"][0]["id"] != serde_json::json!(offset_first) {
                bail!("the gateway's deep page does not start at the offset's item: {body}");
            }
            let first = time_it(a.runs, page(first_url.clone())).await?;
            let deep = time_it(a.runs, page(deep_url.clone())).await?;
            Ok((first, deep))
        }
        .await;
        running.stop().await;
        result
    }
}
