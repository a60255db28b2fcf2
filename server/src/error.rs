//! Errors in OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`, with their
//! HTTP status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Seconds a client is told to wait when the queue is full.
const RETRY_AFTER_SECONDS: &str = "1";

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable cause, naming the field.
    pub message: String,
    /// OpenAI's error type (`invalid_request_error`, …).
    pub kind: &'static str,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// A machine-readable code (`model_not_found`, `context_length_exceeded`, …).
    pub code: Option<&'static str>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

impl ApiError {
    /// 400: the request is malformed; `param` names the field.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: Some(param.into()),
            code: None,
        }
    }

    /// 400 for a body that is not JSON at all (no field to name).
    pub fn malformed_body(message: impl Into<String>) -> Self {
        ApiError {
            param: None,
            ..ApiError::invalid("", message)
        }
    }

    /// 404: the model asked for is not the one served.
    pub fn unknown_model(asked: &str, served: &str) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("the model '{asked}' does not exist; this server serves '{served}'"),
            kind: "invalid_request_error",
            param: Some("model".into()),
            code: Some("model_not_found"),
        }
    }

    /// 400: the prompt does not fit the model's context.
    pub fn context_exceeded(param: &str, prompt_tokens: usize, limit: usize) -> Self {
        ApiError {
            code: Some("context_length_exceeded"),
            ..ApiError::invalid(
                param,
                format!(
                    "the prompt has {prompt_tokens} tokens; this model's context is {limit} tokens \
                     (the prompt must be shorter, leaving room for at least one generated token)"
                ),
            )
        }
    }

    /// 503: the engine's queue is full or it is shutting down; retry later.
    pub fn overloaded(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            kind: "server_overloaded",
            param: None,
            code: Some("server_overloaded"),
        }
    }

    /// 500: the engine failed.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
        }
    }

    /// The JSON body (also sent as an SSE event when a stream fails midway).
    pub fn body_json(&self) -> String {
        let body = Body {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: self.code,
            },
        };
        serde_json::to_string(&body).unwrap_or_else(|_| "{}".to_owned())
    }
}

impl From<concord_core::Error> for ApiError {
    fn from(e: concord_core::Error) -> Self {
        match e {
            concord_core::Error::Unavailable { reason, .. } => ApiError::overloaded(reason),
            concord_core::Error::InvalidArgument(m) => ApiError {
                param: None,
                ..ApiError::invalid("", m)
            },
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body_json(),
        )
            .into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// `Json` answers for handlers.
pub type ApiResult<T> = Result<Json<T>, ApiError>;
