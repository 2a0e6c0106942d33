//! `GET /instances`: every app and worker that sent a heartbeat in the last few seconds.

use ntex::web::{HttpResponse, types::State};
use serde::Serialize;

use super::{AppState, ok};
use crate::error::ApiError;
use crate::fleet::{self, Instance};

/// The answer of `GET /instances`.
#[derive(Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "InstancesResponse"))]
pub(super) struct Fleet<'a> {
    served_by: &'a str,
    instances: Vec<Instance>,
}

pub async fn instances(state: State<AppState>) -> Result<HttpResponse, ApiError> {
    let instances = fleet::list(&state.store).await?;
    Ok(ok(&Fleet {
        served_by: state.instance(),
        instances,
    }))
}
