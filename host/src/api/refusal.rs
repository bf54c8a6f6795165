//! A call refused: its [`Kind`] and why — what every door answers with —
//! and the one table ([`Kind::row`]) that says, for each kind, the HTTP
//! status, the MCP error code and the `runway` command line's exit code
//! (the meanings of the codes are in `cli`'s module doc). The HTTP API
//! answers a refusal as its [`ErrorBody`] with the kind's status; MCP as a
//! tool result marked as an error holding the same body, or, where MCP
//! has no result to carry it (reading a resource), as a JSON-RPC error with
//! the kind's code; the CLI reads the body's kind and exits with its code.
//! The OpenAPI description documents each kind's status from the same
//! table (`http::document_refusals`). (Limiting and summing refused
//! requests per peer is [`super::refusals`].)
//!
//! | kind | HTTP | MCP | exit |
//! |---|---|---|---|
//! | `bad_input` | 400 | -32602 invalid params | 2 |
//! | `unauthenticated` | 401 | -32600 invalid request | 5 |
//! | `not_allowed` | 403 | -32600 invalid request | 5 |
//! | `not_found` | 404 | -32002 resource not found | 2 |
//! | `no_such_method` | 405 | -32601 method not found | 2 |
//! | `conflict` | 409 | -32600 invalid request | 2 |
//! | `too_large` | 413 | -32602 invalid params | 2 |
//! | `unsupported_type` | 415 | -32602 invalid params | 2 |
//! | `bad_shape` | 422 | -32602 invalid params | 2 |
//! | `too_many_requests` | 429 | -32600 invalid request | 5 |
//! | `host_fault` | 500 | -32603 internal error | 4 |
//! | `stopping` | 503 | -32603 internal error | 4 |

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{ErrorCode, ErrorData};
use runway_audit::render::escape;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::controller::ControlError;

/// What kind of refusal a call met: one row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The request, its query, path or plan does not parse, or asks for
    /// what cannot be.
    BadInput,
    /// No bearer token, or one nobody holds.
    Unauthenticated,
    /// The caller may not: a right or role not held, or four eyes.
    NotAllowed,
    /// No such runway, record or route.
    NotFound,
    /// No such method on a route.
    NoSuchMethod,
    /// Not in a state for it: ended, not waiting for approval, a trail
    /// that does not verify.
    Conflict,
    /// The body is over the size limit.
    TooLarge,
    /// The body is of a type the route does not take.
    UnsupportedType,
    /// The body is JSON of the wrong shape.
    BadShape,
    /// Refused too often without a known token from one address.
    TooManyRequests,
    /// Something failed inside the host (I/O, the audit writer stopped).
    HostFault,
    /// The controller is stopping.
    Stopping,
}

/// Where the OpenAPI description says an operation may meet a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Every operation.
    Always,
    /// Those that read a query, a path or a body.
    Input,
    /// Those whose path names a runway or record.
    Named,
    /// Those that read a body.
    Body,
    /// Only where the operation says so itself.
    Described,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub http: StatusCode,
    pub mcp: ErrorCode,
    /// The CLI's exit code.
    pub exit: u8,
    /// What the description says of it, on the operations it applies to.
    pub says: &'static str,
    pub applies: Applies,
}

impl Kind {
    pub const ALL: [Kind; 12] = [
        Kind::BadInput,
        Kind::Unauthenticated,
        Kind::NotAllowed,
        Kind::NotFound,
        Kind::NoSuchMethod,
        Kind::Conflict,
        Kind::TooLarge,
        Kind::UnsupportedType,
        Kind::BadShape,
        Kind::TooManyRequests,
        Kind::HostFault,
        Kind::Stopping,
    ];

    /// The table: this kind's HTTP status, MCP error code, exit code, and
    /// what the description says of it where.
    #[rustfmt::skip]
    pub const fn row(self) -> Row {
        use Applies::*;
        let (http, mcp, exit, says, applies) = match self {
            Kind::BadInput => (StatusCode::BAD_REQUEST, ErrorCode::INVALID_PARAMS, 2, "The query, path or body does not parse", Input),
            Kind::Unauthenticated => (StatusCode::UNAUTHORIZED, ErrorCode::INVALID_REQUEST, 5, "No bearer token, or one nobody holds (audited)", Always),
            Kind::NotAllowed => (StatusCode::FORBIDDEN, ErrorCode::INVALID_REQUEST, 5, "The token's roles lack the right (audited)", Always),
            Kind::NotFound => (StatusCode::NOT_FOUND, ErrorCode::RESOURCE_NOT_FOUND, 2, "No such runway or record", Named),
            Kind::NoSuchMethod => (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::METHOD_NOT_FOUND, 2, "No such method on this path", Described),
            Kind::Conflict => (StatusCode::CONFLICT, ErrorCode::INVALID_REQUEST, 2, "Not in a state for it", Described),
            Kind::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::INVALID_PARAMS, 2, "The body is over the size limit", Body),
            Kind::UnsupportedType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::INVALID_PARAMS, 2, "The body is of a type this does not take", Body),
            Kind::BadShape => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::INVALID_PARAMS, 2, "The body is JSON of the wrong shape", Body),
            Kind::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::INVALID_REQUEST, 5, "Too many requests without a known token from this address (counted, summed on the trail)", Always),
            Kind::HostFault => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::INTERNAL_ERROR, 4, "Something failed inside the host (I/O, the audit writer stopped)", Always),
            Kind::Stopping => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::INTERNAL_ERROR, 4, "The controller is stopping", Always),
        };
        Row {
            http,
            mcp,
            exit,
            says,
            applies,
        }
    }

    /// The kind answered with HTTP `status`: for an answer without a body
    /// Runway wrote (a proxy's); 4xx not in the table is bad input, the
    /// rest a host fault.
    pub fn of_status(status: u16) -> Kind {
        Kind::ALL
            .into_iter()
            .find(|k| k.row().http.as_u16() == status)
            .unwrap_or(if (400..500).contains(&status) {
                Kind::BadInput
            } else {
                Kind::HostFault
            })
    }
}

/// A call that failed: what kind of refusal, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub kind: Kind,
    pub why: String,
}

/// What a refusal says, at every door: why (escaped as a person reads it:
/// ids and names come from the caller), its kind and its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: String,
    pub kind: Kind,
    /// The HTTP status of its kind.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
}

impl Refusal {
    pub fn new(kind: Kind, why: impl Into<String>) -> Refusal {
        Refusal {
            kind,
            why: why.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        self.kind.row().http
    }

    /// What it says, at every door.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: escape(&self.why).into_owned(),
            kind: self.kind,
            status: self.status().as_u16(),
        }
    }

    /// As a JSON-RPC error, with its kind's MCP code and its body as data.
    pub fn to_mcp(&self) -> ErrorData {
        let body = self.body();
        let data = serde_json::to_value(&body).ok();
        ErrorData::new(self.kind.row().mcp, body.error, data)
    }
}

impl IntoResponse for Refusal {
    /// Its [`ErrorBody`] with its kind's status; a 401 says which scheme
    /// to authenticate with (RFC 6750).
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(self.body())).into_response();
        if self.kind == Kind::Unauthenticated {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"runway\""),
            );
        }
        response
    }
}

impl From<ControlError> for Refusal {
    fn from(e: ControlError) -> Refusal {
        let kind = match e {
            ControlError::Unknown(_) | ControlError::UnknownTrigger(_) => Kind::NotFound,
            ControlError::NotAwaitingApproval { .. } | ControlError::Ended { .. } => Kind::Conflict,
            ControlError::UnknownAfter { .. }
            | ControlError::TooLate { .. }
            | ControlError::TriggerRefused(_) => Kind::BadInput,
            ControlError::OwnFiling { .. }
            | ControlError::Lacks { .. }
            | ControlError::NotTheRole { .. } => Kind::NotAllowed,
            ControlError::Stopping | ControlError::Stopped => Kind::Stopping,
        };
        Refusal::new(kind, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_status_is_one_kinds_and_reads_back() {
        for kind in Kind::ALL {
            assert_eq!(Kind::of_status(kind.row().http.as_u16()), kind);
            let body = Refusal::new(kind, "x").body();
            let text = serde_json::to_string(&body).unwrap();
            assert_eq!(serde_json::from_str::<ErrorBody>(&text).unwrap(), body);
        }
        assert_eq!(Kind::of_status(418), Kind::BadInput);
        assert_eq!(Kind::of_status(502), Kind::HostFault);
    }
}
