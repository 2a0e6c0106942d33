//! `GET /instances`: every app and worker that sent a heartbeat in the last few seconds.

use ntex::web::{HttpResponse, types::State};
use serde_json::json;

use super::{AppState, ok};
use crate::error::ApiError;
use crate::fleet;

pub async fn instances(state: State<AppState>) -> Result<HttpResponse, ApiError> {
    let instances = fleet::list(&state.store).await?;
    Ok(ok(&json!({
        "served_by": state.instance(),
        "instances": instances,
    })))
}
