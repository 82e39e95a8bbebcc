//! The HTTP API's CORS, from the template's `CorsConfiguration`: API Gateway answers
//! preflights itself and adds the allow headers to every response for an allowed origin.

use axum::http::{HeaderMap, HeaderValue};

use crate::template::Resolver;

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
    pub(super) fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o == "*" || o == origin)
    }
}

pub(super) fn cors_from(resolver: &Resolver<'_>, c: &serde_yaml::Value) -> anyhow::Result<Cors> {
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

pub(super) fn add_cors(h: &mut HeaderMap, cors: &Cors, origin: &str, preflight: bool) {
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
