//! One root store per process: the certificate authorities every outbound TLS connection
//! trusts (the AWS SDK's clients and reqwest), read and checked once from the system bundle.
//!
//! Left to themselves the SDK and reqwest each call `rustls-native-certs`, which reads the
//! bundle *and* every file of the certificate directory (on Debian about 290 files,
//! 2.8 ms per load: docs/benchmarks.md), once for the SDK during init and once more for
//! reqwest's platform verifier at the first outbound call. Here the bundle file alone is
//! read, once; every certificate in it is checked to be a usable trust anchor (the SDK
//! panics on one that is not), and both clients get the same certificates.
//! `SSL_CERT_FILE` overrides the path, as for OpenSSL. Without a bundle (not the case on
//! Lambda's `provided.al2023`) the clients fall back to loading native roots themselves.
//!
//! A function's AWS SDK calls need less: every AWS service endpoint's certificate is issued
//! by Amazon Trust Services, so in Lambda the SDK trusts those five roots alone, embedded
//! ([`AMAZON_ROOTS`]), and the bundle is never read for it (reading and checking its ~140
//! certificates, twice, was about 1.4 ms of the first AWS call: docs/benchmarks.md). See
//! [`sdk_trust`] for when the bundle is used instead.

use std::path::PathBuf;
use std::sync::LazyLock;

use aws_smithy_http_client::tls::{TlsContext, TrustStore};
use base64::Engine;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Where Linux distributions keep the PEM bundle, Amazon Linux (Lambda) first.
const BUNDLE_PATHS: &[&str] = &[
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/cert.pem",
];

/// The process's trust anchors, as DER and as the PEM the SDK takes.
pub struct Roots {
    pub certs: Vec<CertificateDer<'static>>,
    pub pem: Vec<u8>,
}

static ROOTS: LazyLock<Option<Roots>> = LazyLock::new(|| {
    let path = std::env::var_os("SSL_CERT_FILE")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let candidates = path.map_or_else(
        || BUNDLE_PATHS.iter().map(PathBuf::from).collect(),
        |p| vec![p],
    );
    candidates.into_iter().find_map(|path| match std::fs::read(&path) {
        Ok(pem) => {
            let roots = parse(&pem);
            if roots.is_none() {
                tracing::warn!(path = %path.display(), "certificate bundle has no usable certificate");
            }
            roots
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "certificate bundle unreadable");
            None
        }
    })
});

/// The certificates of a PEM bundle that rustls accepts as trust anchors.
fn parse(bundle: &[u8]) -> Option<Roots> {
    let mut certs = Vec::new();
    let mut pem = Vec::new();
    let mut skipped = 0;
    for cert in CertificateDer::pem_slice_iter(bundle) {
        let Ok(cert) = cert else {
            skipped += 1;
            continue;
        };
        if rustls::RootCertStore::empty().add(cert.clone()).is_err() {
            skipped += 1;
            continue;
        }
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in b64.as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
        certs.push(cert);
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            kept = certs.len(),
            "certificates in the bundle that are not trust anchors"
        );
    }
    (!certs.is_empty()).then_some(Roots { certs, pem })
}

/// The process's roots, if the system has a bundle.
pub fn roots() -> Option<&'static Roots> {
    ROOTS.as_ref()
}

/// The root CAs of Amazon Trust Services (Amazon Root CA 1-4 and the Starfield Services
/// G2 root that cross-signs them), which issue every AWS service endpoint's certificate.
pub static AMAZON_ROOTS: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// Which roots the SDK's calls trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkTrust {
    /// [`AMAZON_ROOTS`] alone: a function in Lambda, or one whose endpoint override is
    /// plain HTTP (the local stack: no certificate at all, and the same code path as Lambda).
    Amazon,
    /// The process's bundle: `SSL_CERT_FILE` names one (an operator's choice, honoured
    /// everywhere), an HTTPS endpoint override (an emulator or proxy with its own CA), or a
    /// tool run by an engineer (a corporate proxy's CA may be in the system bundle).
    Process,
}

/// The trust for this process's environment (see [`SdkTrust`]); `var` reads a variable.
pub fn sdk_trust(var: impl Fn(&str) -> Option<String>) -> SdkTrust {
    let set = |k: &str| var(k).filter(|v| !v.trim().is_empty());
    if set("SSL_CERT_FILE").is_some() {
        return SdkTrust::Process;
    }
    match set("AWS_ENDPOINT_URL") {
        Some(url) if url.trim_start().to_ascii_lowercase().starts_with("http://") => {
            SdkTrust::Amazon
        }
        Some(_) => SdkTrust::Process,
        None if set("AWS_LAMBDA_FUNCTION_NAME").is_some() => SdkTrust::Amazon,
        None => SdkTrust::Process,
    }
}

/// The SDK's TLS settings: the roots [`sdk_trust`] picks, its own native-roots loading off.
pub fn sdk_tls_context() -> TlsContext {
    // `roots()` only on the Process arm: it reads and checks the bundle on first use,
    // which is what the Amazon arm is there to skip.
    let store = match sdk_trust(|k| std::env::var(k).ok()) {
        SdkTrust::Amazon => TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(AMAZON_ROOTS),
        SdkTrust::Process => match roots() {
            Some(r) => TrustStore::empty()
                .with_native_roots(false)
                .with_pem_certificate(r.pem.clone()),
            None => TrustStore::default(),
        },
    };
    TlsContext::builder()
        .with_trust_store(store)
        .build()
        .expect("a TLS context with only a trust store always builds")
}

/// reqwest's roots: the same certificates, and only those.
#[cfg(feature = "outbound")]
pub fn with_process_roots(builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    match roots() {
        Some(r) => builder.tls_certs_only(
            r.certs
                .iter()
                .filter_map(|c| reqwest::Certificate::from_der(c.as_ref()).ok()),
        ),
        None => builder,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_a_bundle_and_every_kept_certificate_round_trips() {
        let r = roots().unwrap_or_else(|| panic!("no CA bundle at {BUNDLE_PATHS:?}"));
        assert!(r.certs.len() > 50, "only {} roots", r.certs.len());
        let again: Vec<_> = CertificateDer::pem_slice_iter(&r.pem)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(again, r.certs);
        let _ = sdk_tls_context();
    }

    #[test]
    fn the_amazon_roots_are_five_trust_anchors_valid_for_years() {
        let r = parse(AMAZON_ROOTS).expect("the embedded roots parse");
        assert_eq!(
            r.certs.len(),
            5,
            "every embedded certificate is a trust anchor"
        );
        // Each block says when it expires; the earliest is Starfield's G2 (2037).
        let years: Vec<u32> = std::str::from_utf8(AMAZON_ROOTS)
            .unwrap()
            .lines()
            .filter_map(|l| l.split(" GMT").next()?.rsplit(' ').next()?.parse().ok())
            .collect();
        assert_eq!(years.len(), 5, "{years:?}");
        assert!(years.iter().all(|y| *y >= 2037), "{years:?}");
    }

    #[test]
    fn lambda_and_plain_http_endpoints_trust_amazon_roots_anything_else_the_bundle() {
        let trust = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            sdk_trust(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        };
        let lambda = ("AWS_LAMBDA_FUNCTION_NAME", "encache-dev-health");
        assert_eq!(trust(&[lambda]), SdkTrust::Amazon);
        assert_eq!(
            trust(&[lambda, ("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")]),
            SdkTrust::Amazon
        );
        assert_eq!(
            trust(&[lambda, ("AWS_ENDPOINT_URL", "https://emulator.internal")]),
            SdkTrust::Process
        );
        assert_eq!(
            trust(&[lambda, ("SSL_CERT_FILE", "/etc/ssl/mine.pem")]),
            SdkTrust::Process
        );
        assert_eq!(trust(&[]), SdkTrust::Process, "a tool an engineer runs");
        assert_eq!(trust(&[lambda, ("SSL_CERT_FILE", " ")]), SdkTrust::Amazon);
    }

    #[test]
    fn what_is_not_a_trust_anchor_is_left_out_not_a_panic() {
        let good = roots()
            .unwrap()
            .pem
            .split_inclusive(|b| *b == b'\n')
            .take_while(|l| !l.starts_with(b"-----END"))
            .flatten()
            .copied()
            .collect::<Vec<_>>();
        let mut bundle = good.clone();
        bundle.extend_from_slice(b"-----END CERTIFICATE-----\n");
        bundle.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        let r = parse(&bundle).expect("the good certificate stays");
        assert_eq!(r.certs.len(), 1);
        assert!(parse(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_none());
        assert!(parse(b"no certificates here").is_none());
    }
}
