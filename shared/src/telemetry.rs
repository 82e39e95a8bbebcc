//! `tracing` set up the way Lambda expects: JSON lines when the function's log format
//! is JSON, the level from `AWS_LAMBDA_LOG_LEVEL` (or `RUST_LOG`), no timestamps of our
//! own (CloudWatch stamps every line).
//!
//! The filter is `Targets` (`info`, `sqlx=warn,info`), not `EnvFilter`: EnvFilter's span
//! field matching needs the regex engine, which every function would link for a feature
//! none of them uses (docs/benchmarks.md, "Packaging").

use std::future::Future;
use std::pin::Pin;

use tracing::Instrument;
use tracing::instrument::Instrumented;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter for a Lambda log level (`TRACE`..`FATAL`) or a `RUST_LOG`-style list of
/// `target=level` directives; `info` when neither is set or the value does not parse.
pub fn filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> Targets {
    let info = Targets::new().with_default(LevelFilter::INFO);
    match lambda_level {
        // Lambda's FATAL has no tracing level: errors are the closest.
        Some(level) if level.eq_ignore_ascii_case("fatal") => {
            Targets::new().with_default(LevelFilter::ERROR)
        }
        Some(level) => level
            .parse::<LevelFilter>()
            .map_or(info, |l| Targets::new().with_default(l)),
        None => rust_log.and_then(|s| s.parse().ok()).unwrap_or(info),
    }
}

/// Runs one invocation inside a span naming the function and the request id, so every
/// line it logs carries both (all functions share one log group; the saved Logs Insights
/// queries group by `span.function`). Each `main` wraps its handler:
/// `run(service_fn(|event| telemetry::traced(event, |e| handle(&deps, e))))`.
///
/// The handler's future is boxed here, at the runtime boundary: its type would otherwise
/// be nested into `main`'s, and for the deeper handlers (db-migrate's, in a release build
/// from its own package) rustc's layout computation overflowed its depth limit.
pub fn traced<'a, T, F, Fut>(
    event: lambda_runtime::LambdaEvent<T>,
    handle: F,
) -> Instrumented<Pin<Box<dyn Future<Output = Fut::Output> + 'a>>>
where
    F: FnOnce(lambda_runtime::LambdaEvent<T>) -> Fut,
    Fut: Future + 'a,
{
    let span = tracing::info_span!(
        "invocation",
        function = %event.context.env_config.function_name,
        request_id = %event.context.request_id,
    );
    let boxed: Pin<Box<dyn Future<Output = Fut::Output> + 'a>> = Box::pin(handle(event));
    boxed.instrument(span)
}

/// Installs the global subscriber; a second call is a no-op.
pub fn init() {
    let filter = filter(
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
        std::env::var("RUST_LOG").ok().as_deref(),
    );
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT")
        .map(|f| f.eq_ignore_ascii_case("json"))
        .unwrap_or(false);
    let builder = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_ansi(false);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .finish()
            .with(filter)
            .try_init()
    } else {
        builder.finish().with(filter).try_init()
    };
}

#[cfg(test)]
mod tests {
    use tracing::Level;
    use tracing_subscriber::filter::LevelFilter;

    use super::filter;

    #[test]
    fn lambda_levels_win_over_rust_log_and_fatal_means_error() {
        assert_eq!(
            filter(Some("DEBUG"), Some("warn")).default_level(),
            Some(LevelFilter::DEBUG)
        );
        assert_eq!(
            filter(Some("FATAL"), None).default_level(),
            Some(LevelFilter::ERROR)
        );
        assert_eq!(filter(None, None).default_level(), Some(LevelFilter::INFO));
        assert_eq!(
            filter(Some("loud"), None).default_level(),
            Some(LevelFilter::INFO)
        );
    }

    #[test]
    fn rust_log_directives_are_per_target() {
        let f = filter(None, Some("sqlx=warn,info"));
        assert!(f.would_enable("encache_health", &Level::INFO));
        assert!(!f.would_enable("sqlx::query", &Level::INFO));
        assert!(f.would_enable("sqlx::query", &Level::WARN));
    }
}
