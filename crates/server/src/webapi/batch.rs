//! `$batch`: multipart/mixed requests with change sets.

use super::{Call, WebResult, bad};

/// Runs a `$batch` request.
pub(crate) async fn run(_call: &Call<'_>) -> WebResult {
    Err(bad("odata_unsupported", "$batch is not answered yet"))
}
