//! What the API reads from a request — a JSON body, a plan's text, the
//! query, the path — refused, when it does not read, as every other
//! refusal is: a [`Refusal`] of its [`Kind`], answered as its JSON body.
//! (axum's own extractors answer their rejections in plain text.)
//!
//! | refusal | status |
//! |---|---|
//! | a body over the size limit | 413 |
//! | a body of a type the route does not take | 415 |
//! | a body that is not JSON, not UTF-8; a query or path that does not parse | 400 |
//! | JSON of the wrong shape (not an object, a field missing, of the wrong type, unknown) | 422 |
//!
//! A JSON body must be one object: serde would also read a struct from an
//! array of its fields, which the API's description does not allow. Where
//! the body is optional (`JsonBody<Option<T>>`), no body at all and JSON
//! `null` both mean none. A number with no fraction (`48.0`) is an
//! integer, as JSON Schema counts it.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use runway_audit::render::escape;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::refusal::{Kind, Refusal};

/// The content types a plan may be sent as.
pub const PLAN_TYPES: [&str; 3] = ["application/toml", "application/json", "text/plain"];

/// A JSON body, read into `T`.
pub struct JsonBody<T>(pub T);

/// A plan's text: TOML or JSON, sent as one of [`PLAN_TYPES`] (or with no
/// content type).
pub struct PlanText(pub String);

/// The query, read into `T`.
pub struct QueryOf<T>(pub T);

/// The path's parameters, read into `T`.
pub struct PathOf<T>(pub T);

/// The media type of `headers`' `Content-Type`, lowercase and without
/// parameters; `None` when there is none.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?;
    let text = String::from_utf8_lossy(value.as_bytes());
    let media = text.split(';').next().unwrap_or_default();
    Some(media.trim().to_ascii_lowercase())
}

fn is_json(media: &str) -> bool {
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

/// Why `media` (or no content type) is refused, naming what is taken.
fn unsupported(media: Option<&str>, takes: &str) -> Refusal {
    let sent = media.map_or_else(|| "no content type".to_string(), |m| escape(m).into_owned());
    Refusal::new(
        Kind::UnsupportedType,
        format!("the body is {sent}; this takes {takes}"),
    )
}

/// The whole body, within the size limit.
async fn bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, Refusal> {
    Bytes::from_request(request, state)
        .await
        .map_err(|e| framework(e.status(), e.body_text()))
}

/// One of axum's own rejections (`status`, `why`), as the refusal of the
/// kind that has its status.
fn framework(status: StatusCode, why: String) -> Refusal {
    Refusal::new(Kind::of_status(status.as_u16()), why)
}

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request(request: Request, state: &S) -> Result<Self, Refusal> {
        let media = media_type(request.headers());
        let body = bytes(request, state).await?;
        let value = if body.is_empty() {
            Value::Null
        } else {
            if !media.as_deref().is_some_and(is_json) {
                return Err(unsupported(media.as_deref(), "application/json"));
            }
            serde_json::from_slice(&body)
                .map_err(|e| Refusal::new(Kind::BadInput, format!("the body is not JSON: {e}")))?
        };
        let shape = |why: String| Refusal::new(Kind::BadShape, why);
        if !(value.is_object() || value.is_null()) {
            return Err(shape("the body must be a JSON object".into()));
        }
        let none = value.is_null();
        T::deserialize(integers(value)).map(JsonBody).map_err(|e| {
            shape(if none {
                "a JSON object is required as the body".into()
            } else {
                format!("the body: {e}")
            })
        })
    }
}

/// `value` with every float that has no fraction (and fits) made an
/// integer: serde reads `48.0` as no `u64`, JSON Schema as an integer.
fn integers(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let exact = f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0;
            if exact {
                // Exact: |f| < 2^53.
                Value::from(f as i64)
            } else {
                Value::Number(n)
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(integers).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, integers(v))).collect())
        }
        other => other,
    }
}

impl<S: Send + Sync> FromRequest<S> for PlanText {
    type Rejection = Refusal;

    async fn from_request(request: Request, state: &S) -> Result<Self, Refusal> {
        let media = media_type(request.headers());
        if let Some(media) = media.as_deref()
            && !PLAN_TYPES.contains(&media)
        {
            return Err(unsupported(Some(media), &PLAN_TYPES.join(", ")));
        }
        let body = bytes(request, state).await?;
        String::from_utf8(body.to_vec())
            .map(PlanText)
            .map_err(|e| Refusal::new(Kind::BadInput, format!("the plan is not UTF-8: {e}")))
    }
}

impl<T, S> FromRequestParts<S> for QueryOf<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        axum::extract::Query::from_request_parts(parts, state)
            .await
            .map(|q| QueryOf(q.0))
            .map_err(|e| framework(e.status(), e.body_text()))
    }
}

impl<T, S> FromRequestParts<S> for PathOf<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        axum::extract::Path::from_request_parts(parts, state)
            .await
            .map(|p| PathOf(p.0))
            .map_err(|e| framework(e.status(), e.body_text()))
    }
}
