//! The API's one error type. Every handler returns it; it becomes `{"error":{"code","message"}}`
//! with the right status. A 5xx is logged with its whole chain once and answered generically.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use scalemesh_core::wire::{ApiErrorBody, ApiErrorDetail};
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<&'static str>,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        field: Option<&'static str>,
    },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The request's body came too slowly.
    #[error("{0}")]
    RequestTimeout(String),
    /// Answered with `Retry-After: <retry_after>` (seconds).
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// Storage failed. What it said (keys, paths, the OS error) is logged, never answered.
    #[error("{0}")]
    StorageUnavailable(String),
    /// Several fields of one request are wrong: answered as the first, with all of them
    /// listed in `errors`, so a form can mark every field at once. Made by [`ApiError::all`].
    #[error("{}", .0.first().map(ToString::to_string).unwrap_or_default())]
    Fields(Vec<ApiError>),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// The same error, said to be about the request field `name`.
    pub fn on_field(mut self, name: &'static str) -> Self {
        if let Self::BadRequest { field, .. } | Self::Conflict { field, .. } = &mut self {
            *field = Some(name);
        }
        self
    }

    /// The errors among `checks`, as one: `Ok` when there are none.
    pub fn all(checks: impl IntoIterator<Item = Option<ApiError>>) -> ApiResult<()> {
        let mut errors: Vec<ApiError> = checks.into_iter().flatten().collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Self::Fields(errors)),
        }
    }

    fn field(&self) -> Option<&'static str> {
        match self {
            Self::BadRequest { field, .. } | Self::Conflict { field, .. } => *field,
            Self::Fields(errors) => errors.first().and_then(Self::field),
            _ => None,
        }
    }

    fn detail(&self) -> ApiErrorDetail {
        ApiErrorDetail {
            code: self.status_and_code().1.to_owned(),
            message: self.to_string(),
            field: self.field().map(str::to_owned),
            errors: Vec::new(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Self::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            Self::StorageUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            Self::Fields(errors) => errors.first().map_or(
                (StatusCode::BAD_REQUEST, "bad_request"),
                Self::status_and_code,
            ),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            Self::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "request failed");
                "the server failed to handle this request; its log has the details".to_owned()
            }
            Self::StorageUnavailable(detail) => {
                tracing::warn!(error = %detail, "storage refused a request");
                "storage is unavailable: what was sent could not be stored, and nothing was \
                 changed; try again in a moment (the server's log has the details)"
                    .to_owned()
            }
            other => other.to_string(),
        };
        let body = ApiErrorBody {
            error: ApiErrorDetail {
                code: code.to_owned(),
                message,
                field: self.field().map(str::to_owned),
                errors: match &self {
                    Self::Fields(errors) => errors.iter().map(Self::detail).collect(),
                    _ => Vec::new(),
                },
            },
        };
        let mut res = (status, Json(body)).into_response();
        if let Self::TooManyRequests { retry_after, .. } = self {
            res.headers_mut()
                .insert(header::RETRY_AFTER, retry_after.into());
        }
        res
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(err: crate::db::DbError) -> Self {
        Self::Internal(err.into())
    }
}

/// A JSON object body, decoded into `T`. Anything else — another content type, malformed JSON,
/// an array, a wrong or unknown field — is answered in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
        if !json {
            return Err(ApiError::bad_request(
                "unsupported_content_type",
                "send the body as JSON, with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| body_error(&rejection, rejection.body_text()))?;
        json_object(&bytes).map(Self)
    }
}

/// What a failure to read a request's body is answered with: 408 when it came too slowly,
/// else 413 (it was too large).
pub fn body_error(err: &(dyn std::error::Error + 'static), message: String) -> ApiError {
    if crate::slow_body::is_too_slow(err) {
        ApiError::RequestTimeout(format!("{message}; send it again, faster"))
    } else {
        ApiError::PayloadTooLarge(message)
    }
}

/// Decodes a JSON object (never an array read by position) into `T`.
pub fn json_object<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(
            "invalid_json",
            "the body must be a JSON object",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let code = match e.classify() {
            serde_json::error::Category::Data => "invalid_field",
            _ => "invalid_json",
        };
        ApiError::bad_request(code, format!("the body is not valid: {e}"))
    })
}

/// Query parameters decoded into `T`, with the API's error shape when they do not fit.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| Self(q))
            .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
    }
}
