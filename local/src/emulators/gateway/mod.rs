//! The HTTP API, emulated: routes from every function's `HttpApi` events, payload format
//! 2.0 events, the JWT authorizer, CORS from the template, and responses mapped back the
//! way API Gateway maps them.
//!
//! This module builds the gateway from the template and serves it; `routes` matches a
//! request to a route, [`jwt`] is the authorizer, `payload` the 2.0 event and the
//! response mapping, `cors` the CORS answers, `limits` what is refused before any route
//! (every answer the gateway gives itself is `{"message": ...}` JSON, as API Gateway's).

mod cors;
pub mod jwt;
mod limits;
mod payload;
mod routes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};

pub use cors::Cors;
use cors::{add_cors, cors_from};
use jwt::{JwtAuthorizer, JwtSettings};
use limits::{JsonErrors, Peer, over_quota};
pub use payload::map_response;
use payload::{build_event, header, message};
pub use routes::Route;

use super::cognito;
use super::runtime::Runtime;
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
                // A Cognito issuer against the emulator: the local issuer signs its tokens too.
                let local_issuer =
                    stack.config.endpoint.is_some() && issuer.starts_with("https://cognito-idp.");
                let mut authorizer = JwtAuthorizer::new(JwtSettings {
                    issuer,
                    audience,
                    jwks_url,
                });
                if local_issuer {
                    let (kid, key) = cognito::Issuer::for_stack(stack)
                        .and_then(|i| i.decoding_key())
                        .with_context(|| format!("{what}: the local token issuer's key"))?;
                    authorizer = authorizer.with_local_key(kid, key);
                }
                authorizers.insert((api.logical_id.clone(), name.clone()), Arc::new(authorizer));
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
                routes.push(Route::new(&method, path, &f.logical_id, authorizer));
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

/// The gateway a server answers with, replaceable while it serves (`start --watch`
/// re-reads the template's routes without closing the listener).
pub struct GatewaySlot(std::sync::RwLock<Arc<Gateway>>);

impl GatewaySlot {
    pub fn new(gateway: Arc<Gateway>) -> Arc<Self> {
        Arc::new(Self(std::sync::RwLock::new(gateway)))
    }

    /// The gateway new requests go to.
    pub fn current(&self) -> Arc<Gateway> {
        self.0.read().expect("not poisoned").clone()
    }

    /// From now on, new requests go to `gateway`; requests in flight finish on the old one.
    pub fn replace(&self, gateway: Arc<Gateway>) {
        *self.0.write().expect("not poisoned") = gateway;
    }
}

/// Serves the gateway until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, gateway: Arc<Gateway>) -> anyhow::Result<()> {
    serve_slot(listener, GatewaySlot::new(gateway)).await
}

/// [`serve`] with the gateway in a [`GatewaySlot`], so that it can be replaced.
pub async fn serve_slot(
    listener: tokio::net::TcpListener,
    slot: Arc<GatewaySlot>,
) -> anyhow::Result<()> {
    let app = axum::Router::new().fallback(handle).with_state(slot);
    axum::serve(
        JsonErrors(listener),
        app.into_make_service_with_connect_info::<Peer>(),
    )
    .await
    .context("serving the HTTP API")
}

async fn handle(
    State(slot): State<Arc<GatewaySlot>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    request: Request<Body>,
) -> Response {
    let gw = slot.current();
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
    if let Some(refused) = over_quota(request.method(), request.uri(), request.headers()) {
        return refused;
    }
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
    let trace_id = header(&parts.headers, "x-amzn-trace-id");
    let event = build_event(&parts, body, route, path_params, jwt, peer, request_id);
    let payload = match serde_json::to_vec(&event) {
        Ok(p) => p,
        Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    };
    match gw
        .runtime
        .invoke_traced(&route.function, Bytes::from(payload), trace_id)
        .await
    {
        Ok(out) => map_response(&out),
        Err(e) => {
            eprintln!("[gateway] {method} {path}: 500 ({e})");
            message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}
