//! AWS SDK configuration that every function shares, and cached SSM secrets.

use std::collections::HashMap;

use anyhow::Context;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls;
use tokio::sync::Mutex;

use crate::config::Secret;

/// Loads the SDK configuration once per container. `AWS_ENDPOINT_URL` points every
/// client at one endpoint (the local emulator); in AWS it is unset.
pub async fn sdk_config() -> SdkConfig {
    // The same HTTPS client aws-config builds by default (hyper 1, rustls on aws-lc), but
    // trusting the process's one root store (crate::tls) instead of loading its own.
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(crate::tls::sdk_tls_context())
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    if let Some(url) = endpoint_override() {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
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
    client: aws_sdk_ssm::Client,
    values: std::sync::Arc<Mutex<HashMap<String, Secret<String>>>>,
}

impl SecretCache {
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        Self {
            client,
            values: Default::default(),
        }
    }

    pub fn from_sdk(sdk: &SdkConfig) -> Self {
        Self::new(aws_sdk_ssm::Client::new(sdk))
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
