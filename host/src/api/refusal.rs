//! A call refused: its status and why — what every door answers with
//! (HTTP as `{"error": …}`, MCP as a tool error), and how a controller's
//! refusal becomes one. (Limiting and summing refused requests per peer is
//! [`super::refusals`].)

use axum::http::StatusCode;

use crate::controller::ControlError;

/// A call that failed: its status and why.
#[derive(Debug)]
pub struct Refusal(pub StatusCode, pub String);

impl From<ControlError> for Refusal {
    fn from(e: ControlError) -> Refusal {
        let status = match e {
            ControlError::Unknown(_) => StatusCode::NOT_FOUND,
            ControlError::NotAwaitingApproval { .. } | ControlError::Ended { .. } => {
                StatusCode::CONFLICT
            }
            ControlError::UnknownAfter { .. } | ControlError::TooLate { .. } => {
                StatusCode::BAD_REQUEST
            }
            ControlError::OwnFiling { .. } => StatusCode::FORBIDDEN,
            ControlError::Stopping | ControlError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
        };
        Refusal(status, e.to_string())
    }
}
