//! What handlers read from a request before anything else: a project's name from the path, and
//! how large a JSON body may be.

use scalemesh_core::ProjectName;

use crate::error::{ApiError, ApiResult};

/// Largest JSON body (builder log batches are the big ones).
pub const JSON_LIMIT: usize = 8 * 1024 * 1024;

pub fn parse_project_name(raw: &str) -> ApiResult<ProjectName> {
    ProjectName::parse(raw).map_err(|e| ApiError::bad_request("invalid_name", e.to_string()))
}
