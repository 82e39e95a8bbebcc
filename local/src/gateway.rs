//! The HTTP API, emulated: routes from every function's `HttpApi` events, payload format
//! 2.0 events, the JWT authorizer, CORS from the template, and responses mapped back the
//! way API Gateway maps them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use aws_lambda_events::apigw::{
    ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription,
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription,
};
use aws_lambda_events::query_map::QueryMap;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::jwt::{JwtAuthorizer, JwtSettings};
use crate::runtime::Runtime;
use crate::stack::Stack;
use crate::template::{Authorizer, EventKind};

/// Settings the template cannot know locally.
#[derive(Debug, Clone, Default)]
pub struct GatewaySettings {
    /// Where the authorizer's JWKS is (default: derived from the issuer and the emulator).
    pub jwks_url: Option<String>,
    /// The issuer tokens must carry (default: the template's, resolved locally).
    pub issuer: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Literal(String),
    Param(String),
    Greedy(String),
}

pub struct Route {
    pub method: String,
    pub path: String,
    segments: Vec<Segment>,
    pub function: String,
    pub authorizer: Option<Arc<JwtAuthorizer>>,
}

impl Route {
    /// A route without an authorizer (benchmarks and tests build their own gateway).
    pub fn open(method: &str, path: &str, function: &str) -> Self {
        Self {
            method: method.to_owned(),
            path: path.to_owned(),
            segments: parse_path(path),
            function: function.to_owned(),
            authorizer: None,
        }
    }

    pub fn route_key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Path parameters when `path` matches.
    fn matches(&self, path: &str) -> Option<HashMap<String, String>> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut params = HashMap::new();
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Greedy(name) => {
                    let rest = parts.get(i..)?.join("/");
                    if rest.is_empty() {
                        return None;
                    }
                    params.insert(name.clone(), decode(&rest));
                    return Some(params);
                }
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                }
                Segment::Param(name) => {
                    let value = parts.get(i).filter(|v| !v.is_empty())?;
                    params.insert(name.clone(), decode(value));
                }
            }
        }
        (parts.len() == self.segments.len()).then_some(params)
    }

    /// More specific routes win: no greedy part, more literal segments, exact method.
    fn rank(&self, method: &str) -> (bool, usize, bool) {
        let greedy = self
            .segments
            .iter()
            .any(|s| matches!(s, Segment::Greedy(_)));
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        (!greedy, literals, self.method == method)
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_path(path: &str) -> Vec<Segment> {
    path.trim_start_matches('/')
        .split('/')
        .map(|s| {
            if let Some(inner) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                match inner.strip_suffix('+') {
                    Some(name) => Segment::Greedy(name.to_owned()),
                    None => Segment::Param(inner.to_owned()),
                }
            } else {
                Segment::Literal(s.to_owned())
            }
        })
        .collect()
}

#[derive(Debug, Clone, Default)]
pub struct Cors {
    pub origins: Vec<String>,
    pub methods: Vec<String>,
    pub headers: Vec<String>,
    pub expose: Vec<String>,
    pub max_age: Option<String>,
    pub credentials: bool,
}

impl Cors {
    fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == "*" || o == origin)
    }
}

pub struct Gateway {
    pub routes: Vec<Route>,
    pub cors: Option<Cors>,
    pub runtime: Arc<Runtime>,
}

impl Gateway {
    /// Routes, authorizers and CORS of the template's HTTP API(s).
    pub fn from_stack(
        stack: &Stack,
        settings: &GatewaySettings,
        runtime: Arc<Runtime>,
    ) -> anyhow::Result<Self> {
        let resolver = stack.resolver();
        let template = &stack.template;
        let mut authorizers: HashMap<(String, String), Arc<JwtAuthorizer>> = HashMap::new();
        for api in template.http_apis.values() {
            for (name, def) in &api.authorizers {
                let what = format!("{}.Auth.Authorizers.{name}", api.logical_id);
                let issuer = match &settings.issuer {
                    Some(i) => i.clone(),
                    None => resolver
                        .string(&def.issuer)
                        .with_context(|| format!("{what}: the issuer"))?,
                };
                let audience = resolver
                    .list(&def.audience)
                    .with_context(|| format!("{what}: the audience"))?;
                let jwks_url = settings
                    .jwks_url
                    .clone()
                    .unwrap_or_else(|| default_jwks_url(&issuer, stack.config.endpoint.as_deref()));
                authorizers.insert(
                    (api.logical_id.clone(), name.clone()),
                    Arc::new(JwtAuthorizer::new(JwtSettings {
                        issuer,
                        audience,
                        jwks_url,
                    })),
                );
            }
        }
        let first_api = template.http_apis.keys().next().cloned();
        let mut routes = Vec::new();
        for f in stack.functions()? {
            for ev in &f.events {
                let EventKind::HttpApi {
                    api,
                    method,
                    path,
                    authorizer,
                } = &ev.kind
                else {
                    continue;
                };
                let api_id = api.clone().or_else(|| first_api.clone());
                let api_def = api_id.as_ref().and_then(|a| template.http_apis.get(a));
                let auth_name = match authorizer {
                    Authorizer::None => None,
                    Authorizer::Named(n) => Some(n.clone()),
                    Authorizer::Default => api_def.and_then(|a| a.default_authorizer.clone()),
                };
                let authorizer = match (auth_name, &api_id) {
                    (Some(n), Some(a)) => Some(
                        authorizers
                            .get(&(a.clone(), n.clone()))
                            .cloned()
                            .with_context(|| {
                                format!(
                                    "{}.{}: no JWT authorizer {n} on {a}",
                                    f.logical_id, ev.name
                                )
                            })?,
                    ),
                    _ => None,
                };
                let method = if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" || method == "*" {
                    "ANY".to_owned()
                } else {
                    method.clone()
                };
                routes.push(Route {
                    segments: parse_path(path),
                    method,
                    path: path.clone(),
                    function: f.logical_id.clone(),
                    authorizer,
                });
            }
        }
        let cors = match template.http_apis.values().find_map(|a| a.cors.clone()) {
            None => None,
            Some(c) => Some(cors_from(&resolver, &c).context("the HTTP API's CorsConfiguration")?),
        };
        Ok(Self {
            routes,
            cors,
            runtime,
        })
    }

    fn find(&self, method: &str, path: &str) -> Option<(&Route, HashMap<String, String>)> {
        self.routes
            .iter()
            .filter(|r| r.method == method || r.method == "ANY")
            .filter_map(|r| r.matches(path).map(|p| (r, p)))
            .max_by_key(|(r, _)| r.rank(method))
    }
}

fn cors_from(
    resolver: &crate::template::Resolver<'_>,
    c: &serde_yaml::Value,
) -> anyhow::Result<Cors> {
    let list = |k: &str| -> anyhow::Result<Vec<String>> {
        match c.get(k) {
            Some(v) => Ok(resolver.list(v)?),
            None => Ok(vec![]),
        }
    };
    Ok(Cors {
        origins: list("AllowOrigins")?,
        methods: list("AllowMethods")?,
        headers: list("AllowHeaders")?,
        expose: list("ExposeHeaders")?,
        max_age: c.get("MaxAge").map(|v| resolver.string(v)).transpose()?,
        credentials: c
            .get("AllowCredentials")
            .map(|v| resolver.string(v))
            .transpose()?
            .is_some_and(|v| v == "true"),
    })
}

/// The JWKS of a Cognito issuer is served by the emulator at `<endpoint>/<poolId>/...`;
/// any other issuer serves its own.
pub fn default_jwks_url(issuer: &str, endpoint: Option<&str>) -> String {
    let issuer = issuer.trim_end_matches('/');
    match (endpoint, issuer.strip_prefix("https://cognito-idp.")) {
        (Some(ep), Some(rest)) => {
            let pool = rest.rsplit('/').next().unwrap_or_default();
            format!("{}/{pool}/.well-known/jwks.json", ep.trim_end_matches('/'))
        }
        _ => format!("{issuer}/.well-known/jwks.json"),
    }
}

/// Serves the gateway until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, gateway: Arc<Gateway>) -> anyhow::Result<()> {
    let app = axum::Router::new().fallback(handle).with_state(gateway);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .context("serving the HTTP API")
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, axum::Json(json!({ "message": text }))).into_response()
}

async fn handle(
    State(gw): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let origin = header(request.headers(), "origin");
    let mut response = route(&gw, peer, request, &request_id).await;
    if let (Some(cors), Some(origin)) = (&gw.cors, origin) {
        add_cors(response.headers_mut(), cors, &origin, false);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("apigw-requestid", v);
    }
    response
}

async fn route(
    gw: &Gateway,
    peer: SocketAddr,
    request: Request<Body>,
    request_id: &str,
) -> Response {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    // CORS preflight: API Gateway answers it itself, without auth or integration.
    if request.method() == Method::OPTIONS
        && gw.cors.is_some()
        && request
            .headers()
            .contains_key("access-control-request-method")
    {
        let mut r = StatusCode::NO_CONTENT.into_response();
        if let (Some(cors), Some(origin)) = (&gw.cors, header(request.headers(), "origin")) {
            add_cors(r.headers_mut(), cors, &origin, true);
        }
        return r;
    }
    let Some((route, path_params)) = gw.find(&method, &path) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let mut jwt = None;
    if let Some(auth) = &route.authorizer {
        match auth
            .authorize(header(request.headers(), "authorization").as_deref())
            .await
        {
            Ok(accepted) => jwt = Some(accepted),
            Err(why) => {
                eprintln!("[gateway] {method} {path}: 401 ({why})");
                return message(StatusCode::UNAUTHORIZED, "Unauthorized");
            }
        }
    }
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 10 * 1024 * 1024).await {
        Ok(b) => b,
        Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
    };
    let event = build_event(&parts, body, route, path_params, jwt, peer, request_id);
    let payload = match serde_json::to_vec(&event) {
        Ok(p) => p,
        Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    };
    match gw
        .runtime
        .invoke(&route.function, Bytes::from(payload))
        .await
    {
        Ok(out) => map_response(&out),
        Err(e) => {
            eprintln!("[gateway] {method} {path}: 500 ({e})");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn add_cors(h: &mut HeaderMap, cors: &Cors, origin: &str, preflight: bool) {
    if !cors.allows(origin) {
        return;
    }
    let mut set = |k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    let allow_origin = if cors.origins.iter().any(|o| o == "*") && !cors.credentials {
        "*".to_owned()
    } else {
        origin.to_owned()
    };
    set("access-control-allow-origin", allow_origin);
    if cors.credentials {
        set("access-control-allow-credentials", "true".into());
    }
    if preflight {
        set("access-control-allow-methods", cors.methods.join(","));
        set("access-control-allow-headers", cors.headers.join(","));
        if let Some(age) = &cors.max_age {
            set("access-control-max-age", age.clone());
        }
    } else if !cors.expose.is_empty() {
        set("access-control-expose-headers", cors.expose.join(","));
    }
}

fn is_text(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.starts_with("text/")
            || ct.contains("json")
            || ct.contains("xml")
            || ct.contains("javascript")
            || ct.contains("x-www-form-urlencoded")
    })
}

fn build_event(
    parts: &http::request::Parts,
    body: Bytes,
    route: &Route,
    path_params: HashMap<String, String>,
    jwt: Option<crate::jwt::Accepted>,
    peer: SocketAddr,
    request_id: &str,
) -> ApiGatewayV2httpRequest {
    let mut headers = HeaderMap::new();
    let mut cookies = Vec::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if name == "cookie" {
            cookies.extend(
                values
                    .iter()
                    .flat_map(|v| v.split(';'))
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_str(&values.join(",")),
        ) {
            headers.insert(n, v);
        }
    }
    let raw_query = parts.uri.query().unwrap_or_default().to_owned();
    let mut query: HashMap<String, Vec<String>> = HashMap::new();
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        query
            .entry(decode(&k.replace('+', " ")))
            .or_default()
            .push(decode(&v.replace('+', " ")));
    }
    let content_type = header(&parts.headers, "content-type");
    let (body, is_base64) = if body.is_empty() {
        (None, false)
    } else if is_text(content_type.as_deref()) && std::str::from_utf8(&body).is_ok() {
        (Some(String::from_utf8_lossy(&body).into_owned()), false)
    } else {
        (Some(B64.encode(&body)), true)
    };
    let now = time::OffsetDateTime::now_utc();
    let time_text = now
        .format(time::macros::format_description!(
            "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000"
        ))
        .unwrap_or_default();

    let mut http_ctx = ApiGatewayV2httpRequestContextHttpDescription::default();
    http_ctx.method = parts.method.clone();
    http_ctx.path = Some(parts.uri.path().to_owned());
    http_ctx.protocol = Some(format!("{:?}", parts.version));
    http_ctx.source_ip = Some(peer.ip().to_string());
    http_ctx.user_agent = header(&parts.headers, "user-agent");

    let mut ctx = ApiGatewayV2httpRequestContext::default();
    ctx.route_key = Some(route.route_key());
    ctx.account_id = Some(crate::template::LOCAL_ACCOUNT_ID.into());
    ctx.stage = Some("$default".into());
    ctx.request_id = Some(request_id.to_owned());
    ctx.apiid = Some("local".into());
    let host = header(&parts.headers, "host").unwrap_or_else(|| "localhost".into());
    ctx.domain_prefix = host.split('.').next().map(str::to_owned);
    ctx.domain_name = Some(host);
    ctx.time = Some(time_text);
    ctx.time_epoch = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    ctx.http = http_ctx;
    if let Some(accepted) = jwt {
        let mut desc = ApiGatewayRequestAuthorizerJwtDescription::default();
        desc.claims = accepted.claims;
        desc.scopes = accepted.scopes;
        let mut auth = ApiGatewayRequestAuthorizer::default();
        auth.jwt = Some(desc);
        ctx.authorizer = Some(auth);
    }

    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some(route.route_key());
    event.raw_path = Some(parts.uri.path().to_owned());
    event.raw_query_string = Some(raw_query);
    event.cookies = (!cookies.is_empty()).then_some(cookies);
    event.headers = headers;
    event.query_string_parameters = QueryMap::from(query);
    event.path_parameters = path_params;
    event.request_context = ctx;
    event.body = body;
    event.is_base64_encoded = is_base64;
    event
}

/// API Gateway's mapping of a payload 2.0 response: a `statusCode` object is taken
/// apart; any other valid JSON is a 200 `application/json` body, as is.
pub fn map_response(out: &[u8]) -> Response {
    let Ok(value) = serde_json::from_slice::<Value>(out) else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let Some(status) = value.get("statusCode").and_then(|s| {
        s.as_u64()
            .or_else(|| s.as_str().and_then(|t| t.parse().ok()))
    }) else {
        return (
            StatusCode::OK,
            [("content-type", "application/json")],
            out.to_vec(),
        )
            .into_response();
    };
    let Some(status) = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    let text = value.get("body").map(|b| match b {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let body = match (text, value.get("isBase64Encoded").and_then(Value::as_bool)) {
        (None, _) => Vec::new(),
        (Some(t), Some(true)) => match B64.decode(t.as_bytes()) {
            Ok(b) => b,
            Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        },
        (Some(t), _) => t.into_bytes(),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if let Some(map) = value.get("headers").and_then(Value::as_object) {
        for (k, v) in map {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                headers.insert(n, v);
            }
        }
    }
    if let Some(cookies) = value.get("cookies").and_then(Value::as_array) {
        for c in cookies.iter().filter_map(Value::as_str) {
            if let Ok(v) = HeaderValue::from_str(c) {
                headers.append("set-cookie", v);
            }
        }
    }
    response
}
