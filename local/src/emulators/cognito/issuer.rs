//! The local stack's token issuer: ID and access tokens shaped as Cognito issues them,
//! with the pre-token-generation trigger's response applied, signed RS256 with a key of
//! this machine's dev services.
//!
//! The emulator checks the password but never runs triggers, so its own tokens never
//! carry the claims a trigger adds. This issuer signs for the pool's real issuer string
//! (`https://cognito-idp.<region>.amazonaws.com/<poolId>`), and the local gateway's JWT
//! authorizer knows its key besides the emulator's JWKS.
//!
//! What a trigger may change follows Cognito: claims it adds or overrides land in the
//! token (any JSON value, but `email_verified`, `phone_number_verified`, `updated_at`
//! and `address` only as plain values in the ID token), suppressed claims leave it,
//! `groupOverrideDetails` replaces `cognito:groups` / `cognito:roles` /
//! `cognito:preferred_role`, and scopes change only in the access token. A response that
//! adds, overrides or suppresses a reserved claim (or a `dev:` claim) fails the sign-in,
//! as Cognito refuses it (`InvalidLambdaResponseException`) — never silently ignored.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Map, Value, json};

use crate::stack::Stack;

/// Cognito's default lifetime of ID and access tokens.
pub const TOKEN_LIFETIME_SECS: u64 = 60 * 60;

/// The key's file under the dev services' state folder.
const KEY_FILE: &str = "cognito-issuer-rsa.pem";

/// Claims Cognito owns (the same list as functions/auth's `RESERVED_CLAIMS`): a trigger
/// response naming one of them in `claimsToAddOrOverride` or `claimsToSuppress` fails
/// token generation. Groups and roles change through `groupOverrideDetails` only.
pub const RESERVED_CLAIMS: &[&str] = &[
    "acr",
    "amr",
    "at_hash",
    "aud",
    "auth_time",
    "azp",
    "c_hash",
    "client_id",
    "exp",
    "iat",
    "identities",
    "iss",
    "jti",
    "nbf",
    "nonce",
    "origin_jti",
    "scope",
    "sub",
    "token_use",
    "username",
    "cognito:username",
    "cognito:groups",
    "cognito:roles",
    "cognito:preferred_role",
    "event_id",
    "device_key",
    "version",
];

/// ID-token claims that may only hold a string, number or boolean.
const PLAIN_ID_CLAIMS: &[&str] = &[
    "email_verified",
    "phone_number_verified",
    "updated_at",
    "address",
];

/// The Cognito issuer string of a pool, as the template's JWT authorizer expects it.
pub fn issuer_url(region: &str, user_pool_id: &str) -> String {
    format!("https://cognito-idp.{region}.amazonaws.com/{user_pool_id}")
}

/// Where the key lives: the dev services' state folder (`$ENCACHE_DEV_DIR/services`, by
/// default `.dev/services` in the workspace holding the template, as
/// scripts/dev-services.sh has it), so tokens outlive a restart of the local stack.
pub fn key_dir(stack: &Stack) -> PathBuf {
    let dev_dir = std::env::var_os("ENCACHE_DEV_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let template_dir = stack
                .config
                .template
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or_else(|| Path::new("."));
            template_dir
                .ancestors()
                .find(|d| d.join("Cargo.lock").is_file())
                .unwrap_or(template_dir)
                .join(".dev")
        });
    dev_dir.join("services")
}

/// The signing key and its public JWK (`kid`: the key's RFC 7638 thumbprint).
pub struct Issuer {
    key: EncodingKey,
    jwk: Jwk,
}

impl Issuer {
    /// The key in `dir`, generated (RSA 2048) the first time. Concurrent first calls agree
    /// on one key: each writes a private temporary file and links it into place, and the
    /// link that loses reads the winner's.
    pub fn load_or_create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(KEY_FILE);
        if !path.exists() {
            create_key(dir, &path)?;
        }
        let pem = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let key = EncodingKey::from_rsa_pem(&pem)
            .with_context(|| format!("{} is not an RSA private key", path.display()))?;
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256)
            .context("the public half of the issuer's key")?;
        jwk.common.key_id = Some(
            jwk.thumbprint(ThumbprintHash::SHA256)
                .context("the issuer key's thumbprint")?,
        );
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self { key, jwk })
    }

    /// For a stack: the key under [`key_dir`].
    pub fn for_stack(stack: &Stack) -> anyhow::Result<Self> {
        Self::load_or_create(&key_dir(stack))
    }

    pub fn kid(&self) -> &str {
        self.jwk.common.key_id.as_deref().unwrap_or_default()
    }

    /// The public key as a JWKS, as Cognito serves `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.jwk.clone()],
        }
    }

    /// `(kid, key)` for a verifier.
    pub fn decoding_key(&self) -> anyhow::Result<(String, DecodingKey)> {
        Ok((
            self.kid().to_owned(),
            DecodingKey::from_jwk(&self.jwk).context("the issuer's public key")?,
        ))
    }

    /// Signs `claims` RS256 with this key's `kid`.
    pub fn sign(&self, claims: &Map<String, Value>) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid().to_owned());
        jsonwebtoken::encode(&header, claims, &self.key).context("signing a token")
    }

    /// The claims of a token this issuer signed, its signature and expiry checked
    /// (audience and issuer are the verifier's to check).
    pub fn verify(&self, token: &str) -> anyhow::Result<Map<String, Value>> {
        let header = jsonwebtoken::decode_header(token).context("not a JWT")?;
        if header.kid.as_deref() != Some(self.kid()) {
            bail!("the token's kid {:?} is not this issuer's", header.kid);
        }
        let (_, key) = self.decoding_key()?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        Ok(
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
                .context("the token does not verify")?
                .claims,
        )
    }

    /// The ID and access tokens of one sign-in, with the trigger's response applied.
    pub fn issue(&self, sign_in: &SignIn, response: &Value) -> anyhow::Result<Tokens> {
        let (id, access) = claims(sign_in, response)?;
        Ok(Tokens {
            id_token: self.sign(&id)?,
            access_token: self.sign(&access)?,
        })
    }
}

fn create_key(dir: &Path, path: &Path) -> anyhow::Result<()> {
    use aws_lc_rs::encoding::AsDer;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|e| anyhow::anyhow!("generating the issuer's RSA key: {e}"))?;
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
        .map_err(|e| anyhow::anyhow!("encoding the issuer's RSA key: {e}"))?;
    let pkcs1 = pkcs1_of(pkcs8.as_ref())?;
    let text = pem::encode(&pem::Pem::new("RSA PRIVATE KEY", pkcs1));

    let tmp = dir.join(format!("{KEY_FILE}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()));
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

/// The `RSAPrivateKey` (PKCS#1) inside a PKCS#8 `PrivateKeyInfo`: jsonwebtoken's aws-lc
/// backend signs with PKCS#1, aws-lc-rs exports PKCS#8.
fn pkcs1_of(pkcs8: &[u8]) -> anyhow::Result<Vec<u8>> {
    use simple_asn1::ASN1Block;
    let blocks = simple_asn1::from_der(pkcs8).context("parsing the PKCS#8 key")?;
    match blocks.as_slice() {
        [ASN1Block::Sequence(_, items)] => match items.as_slice() {
            [
                ASN1Block::Integer(..),
                ASN1Block::Sequence(..),
                ASN1Block::OctetString(_, key),
                ..,
            ] => Ok(key.clone()),
            _ => bail!("the PKCS#8 key is not a PrivateKeyInfo"),
        },
        _ => bail!("the PKCS#8 key is not one DER sequence"),
    }
}

/// The ID and access tokens of a sign-in.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub id_token: String,
    pub access_token: String,
}

/// What the pool knows of a sign-in (the user as the emulator has it).
#[derive(Debug, Clone)]
pub struct SignIn {
    pub issuer: String,
    pub client_id: String,
    /// `cognito:username` / `username` (for an email-username pool, the user's UUID).
    pub username: String,
    /// Every attribute of the user, as strings (`sub` included).
    pub attributes: Map<String, Value>,
    /// Attributes the app client may read (the ID token's); `None`: all of them.
    pub readable: Option<BTreeSet<String>>,
    /// The user's groups, best precedence first, with their IAM roles.
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub preferred_role: Option<String>,
    /// Scopes of the access token before the trigger (`USER_PASSWORD_AUTH`:
    /// `aws.cognito.signin.user.admin`).
    pub scopes: Vec<String>,
    /// Seconds since the epoch.
    pub now: u64,
}

impl SignIn {
    pub fn sub(&self) -> anyhow::Result<&str> {
        self.attributes
            .get("sub")
            .and_then(Value::as_str)
            .context("the user has no sub")
    }

    /// `request.groupConfiguration` of the trigger's event.
    pub fn group_configuration(&self) -> Value {
        json!({
            "groupsToOverride": self.groups,
            "iamRolesToOverride": self.roles,
            "preferredRole": self.preferred_role,
        })
    }
}

/// `(ID token claims, access token claims)`: Cognito's standard claims, then the trigger's
/// response (`response.claimsAndScopeOverrideDetails`, null when it changed nothing).
pub fn claims(
    sign_in: &SignIn,
    response: &Value,
) -> anyhow::Result<(Map<String, Value>, Map<String, Value>)> {
    let details = &response["claimsAndScopeOverrideDetails"];
    let (groups, roles, preferred) = match &details["groupOverrideDetails"] {
        Value::Null => (
            sign_in.groups.clone(),
            sign_in.roles.clone(),
            sign_in.preferred_role.clone(),
        ),
        o => (
            strings(
                &o["groupsToOverride"],
                "groupOverrideDetails.groupsToOverride",
            )?,
            strings(
                &o["iamRolesToOverride"],
                "groupOverrideDetails.iamRolesToOverride",
            )?,
            match &o["preferredRole"] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => bail!(invalid(&format!(
                    "groupOverrideDetails.preferredRole is not a string: {other}"
                ))),
            },
        ),
    };

    let sub = sign_in.sub()?;
    let origin_jti = uuid::Uuid::new_v4().to_string();
    let event_id = uuid::Uuid::new_v4().to_string();
    let exp = sign_in.now + TOKEN_LIFETIME_SECS;

    let mut id = Map::new();
    for (name, value) in &sign_in.attributes {
        let readable = sign_in.readable.as_ref().is_none_or(|r| r.contains(name));
        if name == "sub" || name.starts_with("cognito:") || !readable {
            continue;
        }
        id.insert(name.clone(), attribute_claim(name, value));
    }
    id.insert("sub".into(), json!(sub));
    if !groups.is_empty() {
        id.insert("cognito:groups".into(), json!(groups));
    }
    if !roles.is_empty() {
        id.insert("cognito:roles".into(), json!(roles));
    }
    if let Some(role) = &preferred {
        id.insert("cognito:preferred_role".into(), json!(role));
    }
    id.insert("iss".into(), json!(sign_in.issuer));
    id.insert("cognito:username".into(), json!(sign_in.username));
    id.insert("origin_jti".into(), json!(origin_jti));
    id.insert("aud".into(), json!(sign_in.client_id));
    id.insert("event_id".into(), json!(event_id));
    id.insert("token_use".into(), json!("id"));
    id.insert("auth_time".into(), json!(sign_in.now));
    id.insert("exp".into(), json!(exp));
    id.insert("iat".into(), json!(sign_in.now));
    id.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));

    let mut access = Map::new();
    access.insert("sub".into(), json!(sub));
    if !groups.is_empty() {
        access.insert("cognito:groups".into(), json!(groups));
    }
    access.insert("iss".into(), json!(sign_in.issuer));
    access.insert("client_id".into(), json!(sign_in.client_id));
    access.insert("origin_jti".into(), json!(origin_jti));
    access.insert("event_id".into(), json!(event_id));
    access.insert("token_use".into(), json!("access"));
    access.insert("auth_time".into(), json!(sign_in.now));
    access.insert("exp".into(), json!(exp));
    access.insert("iat".into(), json!(sign_in.now));
    access.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
    access.insert("username".into(), json!(sign_in.username));

    let id_details = &details["idTokenGeneration"];
    apply(&mut id, id_details, "idTokenGeneration", true)?;

    let access_details = &details["accessTokenGeneration"];
    apply(&mut access, access_details, "accessTokenGeneration", false)?;
    let mut scopes = sign_in.scopes.clone();
    for s in strings(
        &access_details["scopesToAdd"],
        "accessTokenGeneration.scopesToAdd",
    )? {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    let suppressed = strings(
        &access_details["scopesToSuppress"],
        "accessTokenGeneration.scopesToSuppress",
    )?;
    scopes.retain(|s| !suppressed.contains(s));
    if !scopes.is_empty() {
        access.insert("scope".into(), json!(scopes.join(" ")));
    }
    Ok((id, access))
}

/// One token's `claimsToAddOrOverride` then `claimsToSuppress` (a claim both added and
/// suppressed leaves the token).
fn apply(
    claims: &mut Map<String, Value>,
    details: &Value,
    what: &str,
    id_token: bool,
) -> anyhow::Result<()> {
    match &details["claimsToAddOrOverride"] {
        Value::Null => {}
        Value::Object(add) => {
            for (name, value) in add {
                refuse_reserved(name, what)?;
                if id_token && PLAIN_ID_CLAIMS.contains(&name.as_str()) && !is_plain(value) {
                    bail!(invalid(&format!(
                        "{what} may not set {name} to a list or an object"
                    )));
                }
                claims.insert(name.clone(), value.clone());
            }
        }
        other => bail!(invalid(&format!(
            "{what}.claimsToAddOrOverride is not an object: {other}"
        ))),
    }
    for name in strings(
        &details["claimsToSuppress"],
        &format!("{what}.claimsToSuppress"),
    )? {
        refuse_reserved(&name, what)?;
        claims.remove(&name);
    }
    Ok(())
}

fn refuse_reserved(name: &str, what: &str) -> anyhow::Result<()> {
    if RESERVED_CLAIMS.contains(&name) || name.starts_with("dev:") {
        bail!(invalid(&format!(
            "{what} may not add, override or suppress the reserved claim {name}"
        )));
    }
    Ok(())
}

fn invalid(why: &str) -> String {
    format!("PreTokenGeneration failed: InvalidLambdaResponseException: {why}")
}

fn is_plain(v: &Value) -> bool {
    matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

fn strings(v: &Value, what: &str) -> anyhow::Result<Vec<String>> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .with_context(|| invalid(&format!("{what} holds a non-string: {i}")))
            })
            .collect(),
        other => bail!(invalid(&format!("{what} is not a list: {other}"))),
    }
}

/// An attribute as Cognito writes it into the ID token: the `*_verified` flags as
/// booleans, `updated_at` as a number, everything else as the stored string.
fn attribute_claim(name: &str, value: &Value) -> Value {
    let Some(s) = value.as_str() else {
        return value.clone();
    };
    match name {
        "email_verified" | "phone_number_verified" => json!(s == "true"),
        "updated_at" => s.parse::<u64>().map_or_else(|_| json!(s), |n| json!(n)),
        _ => json!(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign_in() -> SignIn {
        SignIn {
            issuer: issuer_url("us-east-1", "us-east-1_abc"),
            client_id: "client".into(),
            username: "u-1".into(),
            attributes: json!({"sub": "u-1", "email": "a@example.test", "email_verified": "true",
                               "cognito:user_status": "CONFIRMED"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
            readable: None,
            groups: vec!["admins".into()],
            roles: vec![],
            preferred_role: None,
            scopes: vec!["aws.cognito.signin.user.admin".into()],
            now: 1_000,
        }
    }

    #[test]
    fn standard_claims_are_cognitos() {
        let (id, access) = claims(&sign_in(), &Value::Null).expect("claims");
        assert_eq!(id["aud"], "client");
        assert_eq!(id["token_use"], "id");
        assert_eq!(id["email_verified"], true);
        assert_eq!(id["exp"], 1_000 + 3_600);
        assert_eq!(id["cognito:groups"], json!(["admins"]));
        assert!(id.get("cognito:user_status").is_none());
        assert_eq!(id["origin_jti"], access["origin_jti"]);
        assert_ne!(id["jti"], access["jti"]);
        assert!(access.get("aud").is_none());
        assert_eq!(access["client_id"], "client");
        assert_eq!(access["token_use"], "access");
        assert_eq!(access["scope"], "aws.cognito.signin.user.admin");
        assert_eq!(access["username"], "u-1");
    }

    #[test]
    fn the_response_adds_overrides_suppresses_and_replaces_groups() {
        let response = json!({"claimsAndScopeOverrideDetails": {
            "idTokenGeneration": {"claimsToAddOrOverride": {"x": {"a": [1]}, "email": "b@example.test"},
                                  "claimsToSuppress": ["email_verified"]},
            "accessTokenGeneration": {"claimsToAddOrOverride": {"y": 1},
                                      "scopesToAdd": ["api/read"],
                                      "scopesToSuppress": ["aws.cognito.signin.user.admin"]},
            "groupOverrideDetails": {"groupsToOverride": [], "iamRolesToOverride": ["arn:r"],
                                     "preferredRole": "arn:r"}
        }});
        let (id, access) = claims(&sign_in(), &response).expect("claims");
        assert_eq!(id["x"], json!({"a": [1]}));
        assert_eq!(id["email"], "b@example.test");
        assert!(id.get("email_verified").is_none());
        assert!(id.get("cognito:groups").is_none(), "replaced by []");
        assert_eq!(id["cognito:roles"], json!(["arn:r"]));
        assert_eq!(id["cognito:preferred_role"], "arn:r");
        assert_eq!(access["y"], 1);
        assert_eq!(access["scope"], "api/read");
        assert!(access.get("cognito:groups").is_none());
    }

    #[test]
    fn reserved_claims_fail_the_sign_in() {
        for response in [
            json!({"claimsAndScopeOverrideDetails": {"idTokenGeneration": {"claimsToAddOrOverride": {"sub": "x"}}}}),
            json!({"claimsAndScopeOverrideDetails": {"accessTokenGeneration": {"claimsToSuppress": ["client_id"]}}}),
            json!({"claimsAndScopeOverrideDetails": {"idTokenGeneration": {"claimsToAddOrOverride": {"dev:x": "x"}}}}),
            json!({"claimsAndScopeOverrideDetails": {"idTokenGeneration": {"claimsToAddOrOverride": {"email_verified": [true]}}}}),
        ] {
            let err = claims(&sign_in(), &response).expect_err("refused");
            assert!(
                err.to_string().contains("InvalidLambdaResponseException"),
                "{err}"
            );
        }
    }

    #[test]
    fn one_key_is_generated_and_reused() {
        let dir = std::env::temp_dir().join(format!("enc-issuer-{}", uuid::Uuid::new_v4()));
        let a = Issuer::load_or_create(&dir).expect("created");
        let b = Issuer::load_or_create(&dir).expect("loaded");
        assert_eq!(a.kid(), b.kid());
        let token = a.sign(&claims(&sign_in(), &Value::Null).expect("claims").0);
        let token = token.expect("signed");
        let (kid, key) = b.decoding_key().expect("key");
        assert_eq!(
            jsonwebtoken::decode_header(&token).expect("header").kid,
            Some(kid)
        );
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.validate_exp = false;
        validation.set_audience(&["client"]);
        jsonwebtoken::decode::<Map<String, Value>>(&token, &key, &validation).expect("verifies");
        let _ = std::fs::remove_dir_all(dir);
    }
}
