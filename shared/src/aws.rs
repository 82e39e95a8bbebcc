//! The AWS SDK configuration and clients every function shares, and cached SSM secrets.
//!
//! A function builds its SDK configuration and clients on first use, not at init
//! ([`function_sdk`], [`Lazy`]): what Lambda needs from them is in the environment it
//! sets (the region, the execution role's credentials), so building them takes no I/O,
//! and a function whose event needs no AWS call never builds them. The numbers that
//! decided it are in docs/benchmarks.md ("Cold start: what runs before the first `next`").

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock};

use anyhow::Context;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::{Connector, tls};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use tokio::sync::Mutex;

use crate::config::Secret;

/// The process's one HTTPS client for the SDK: hyper 1 and rustls on aws-lc, as
/// aws-config builds by default, trusting the roots `crate::tls::sdk_tls_context` picks
/// (in Lambda Amazon Trust Services' alone; a tool, the system bundle).
///
/// Its connector is built, and its roots read, when the first request needs one.
/// The SDK also asks the client for a connector while it builds every service client,
/// only "so that native certs load at client initialization time", and drops it: that
/// call (the one without settings) gets a plain connector, so a function does not parse
/// the certificate bundle once per client it builds (0.6-1 ms each, docs/benchmarks.md).
pub fn http_client() -> SharedHttpClient {
    static CLIENT: LazyLock<SharedHttpClient> = LazyLock::new(|| {
        aws_smithy_http_client::Builder::new().build_with_connector_fn(|settings, components| {
            let mut builder = Connector::builder();
            let Some(settings) = settings else {
                return builder.build_http();
            };
            builder.set_connector_settings(Some(settings.clone()));
            if let Some(components) = components {
                builder.set_sleep_impl(components.sleep_impl());
            }
            builder
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(crate::tls::sdk_tls_context())
                .build()
        })
    });
    CLIENT.clone()
}

/// A Lambda function's SDK configuration, built once per process on first use from the
/// environment the Lambda runtime sets: `AWS_REGION`, the execution role's credentials
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) and, locally,
/// `AWS_ENDPOINT_URL`. No profile files, no IMDS, no SSO: none of them exists in
/// Lambda, and looking for them is `aws_config::load`'s millisecond. Retries, timeouts
/// and stalled-stream protection are the SDK's defaults for [`BehaviorVersion::latest`],
/// as with `aws_config::load`.
pub fn function_sdk() -> &'static SdkConfig {
    static SDK: OnceLock<SdkConfig> = OnceLock::new();
    SDK.get_or_init(|| {
        let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
            .map(Region::new);
        let credentials = SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
        let mut sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region)
            .credentials_provider(credentials)
            .http_client(http_client());
        if let Some(url) = endpoint_override() {
            sdk = sdk.endpoint_url(url);
        }
        sdk.build()
    })
}

/// The SDK configuration for tools an engineer runs (`stack-sync-cli`, `encache-local`)
/// and for tests: aws-config's whole default chain (profiles and the rest), with the
/// same HTTPS client. Functions use [`function_sdk`].
pub async fn sdk_config() -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client());
    if let Some(url) = endpoint_override() {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

/// A client (or a set of them) built from [`function_sdk`] on its first use, then kept:
/// a function's dependencies hold these, so its init builds no SDK client. Clones share
/// the one client. It dereferences to the client.
pub struct Lazy<C> {
    cell: Arc<OnceLock<C>>,
    make: fn(&SdkConfig) -> C,
}

impl<C> Lazy<C> {
    /// Built by `make` from the function's SDK configuration when first used.
    pub fn new(make: fn(&SdkConfig) -> C) -> Self {
        Self {
            cell: Arc::new(OnceLock::new()),
            make,
        }
    }

    /// One already built (tests, tools with their own configuration).
    pub fn ready(client: C) -> Self {
        Self {
            cell: Arc::new(OnceLock::from(client)),
            make: |_| unreachable!("a ready client is never made"),
        }
    }

    pub fn get(&self) -> &C {
        self.cell.get_or_init(|| (self.make)(function_sdk()))
    }
}

impl<C> From<C> for Lazy<C> {
    fn from(client: C) -> Self {
        Self::ready(client)
    }
}

impl<C> Clone for Lazy<C> {
    fn clone(&self) -> Self {
        Self {
            cell: self.cell.clone(),
            make: self.make,
        }
    }
}

impl<C> std::ops::Deref for Lazy<C> {
    type Target = C;
    fn deref(&self) -> &C {
        self.get()
    }
}

impl<C> std::fmt::Debug for Lazy<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.cell.get().is_some() {
            "built"
        } else {
            "not built yet"
        };
        f.debug_tuple("Lazy").field(&state).finish()
    }
}

/// The endpoint override, if any (blank counts as none).
pub fn endpoint_override() -> Option<String> {
    std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
}

#[cfg(feature = "s3")]
/// An S3 client. Behind an endpoint override it uses path-style addressing, because
/// virtual-host bucket names do not resolve on loopback.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let path_style = sdk.endpoint_url().is_some();
    let config = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// SSM SecureString values, fetched with decryption once per container and cached.
/// Clones share one cache (the database's password and a feed's cursor key, say).
#[derive(Clone)]
pub struct SecretCache {
    client: Lazy<aws_sdk_ssm::Client>,
    values: std::sync::Arc<Mutex<HashMap<String, Secret<String>>>>,
}

impl SecretCache {
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        Self::with(Lazy::ready(client))
    }

    pub fn from_sdk(sdk: &SdkConfig) -> Self {
        Self::new(aws_sdk_ssm::Client::new(sdk))
    }

    /// A function's cache: its SSM client is built on the first read.
    pub fn lazy() -> Self {
        Self::with(Lazy::new(aws_sdk_ssm::Client::new))
    }

    fn with(client: Lazy<aws_sdk_ssm::Client>) -> Self {
        Self {
            client,
            values: Default::default(),
        }
    }

    /// The value if this container has already read it (no SSM call).
    pub async fn cached(&self, name: &str) -> Option<Secret<String>> {
        self.values.lock().await.get(name).cloned()
    }

    /// The parameter's decrypted value. The error names the parameter, never the value.
    pub async fn get(&self, name: &str) -> anyhow::Result<Secret<String>> {
        // The lock is not held across the SSM call, so different secrets load side by
        // side at cold start (two callers of one name may both fetch it; same value).
        if let Some(v) = self.values.lock().await.get(name) {
            return Ok(v.clone());
        }
        let out = self
            .client
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .with_context(|| format!("reading SSM parameter {name}"))?;
        let value = out
            .parameter
            .and_then(|p| p.value)
            .with_context(|| format!("SSM parameter {name} has no value"))?;
        let secret = Secret::new(value);
        self.values
            .lock()
            .await
            .insert(name.to_owned(), secret.clone());
        Ok(secret)
    }

    /// Reads `names` from SSM again in one `GetParameters` call (with decryption), past the
    /// cache, and caches what it found: for values the far side has just refused. A name
    /// SSM does not have is absent from the answer (and from the cache), not an error.
    /// The error names the parameters, never a value.
    pub async fn reread(&self, names: &[&str]) -> anyhow::Result<HashMap<String, Secret<String>>> {
        let out = self
            .client
            .get_parameters()
            .set_names(Some(names.iter().map(|n| (*n).to_owned()).collect()))
            .with_decryption(true)
            .send()
            .await
            .with_context(|| format!("reading SSM parameters {}", names.join(", ")))?;
        let found: HashMap<String, Secret<String>> = out
            .parameters
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| Some((p.name?, Secret::new(p.value?))))
            .collect();
        let mut values = self.values.lock().await;
        for name in names {
            match found.get(*name) {
                Some(value) => values.insert((*name).to_owned(), value.clone()),
                None => values.remove(*name),
            };
        }
        Ok(found)
    }

    /// Drops the cached value, so the next [`get`](Self::get) reads SSM again: for a
    /// value the far side has just refused (a rotated or replaced secret).
    pub async fn forget(&self, name: &str) {
        self.values.lock().await.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    static MADE: AtomicUsize = AtomicUsize::new(0);

    fn counted(sdk: &SdkConfig) -> Option<Region> {
        MADE.fetch_add(1, Ordering::SeqCst);
        sdk.region().cloned()
    }

    #[test]
    fn a_lazy_client_is_built_on_first_use_once_and_shared_by_its_clones() {
        let lazy = Lazy::new(counted);
        let clone = lazy.clone();
        assert_eq!(MADE.load(Ordering::SeqCst), 0, "built before its first use");
        assert!(format!("{lazy:?}").contains("not built yet"));
        let first = lazy.get().clone();
        let again = clone.get().clone();
        assert_eq!(MADE.load(Ordering::SeqCst), 1, "built more than once");
        assert_eq!(first, again);
        assert_eq!(first.as_ref(), function_sdk().region());
        assert!(format!("{clone:?}").contains("built"));
        let ready: Lazy<u8> = 7.into();
        assert_eq!(*ready, 7);
    }

    #[test]
    fn the_function_config_comes_from_the_lambda_environment_alone() {
        let sdk = function_sdk();
        assert!(std::ptr::eq(sdk, function_sdk()), "built twice");
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .ok();
        assert_eq!(sdk.region().map(|r| r.as_ref().to_owned()), region);
        assert_eq!(sdk.endpoint_url().map(str::to_owned), endpoint_override());
        assert!(sdk.credentials_provider().is_some());
        assert!(sdk.http_client().is_some());
        assert_eq!(sdk.behavior_version(), Some(BehaviorVersion::latest()));
    }
}
