//! `/steps`: the stages of a request's way in the order the pipeline runs
//! them, with the labels the page's timeline shows, from the one list the
//! pipeline names its stages from ([`dynamo_store::STAGES`]): the page keeps
//! no copy.

use axum::Json;
use dynamo_store::{STAGES, StageInfo};
use serde::Serialize;
use utoipa::ToSchema;

/// One stage of a request's way.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// As metrics, timings and traces name it: debit, name, image, alert,
    /// approval, accept.
    pub name: &'static str,
    /// What the page's timeline says once it is done.
    pub label: &'static str,
    /// The states it runs from.
    #[schema(schema_with = crate::schemas::state_list)]
    pub from: Vec<&'static str>,
    /// The state it moves the request to when it goes well.
    #[schema(schema_with = crate::schemas::state_names)]
    pub to: &'static str,
    /// The time in a request's `steps` (`GET /requests/{id}`) its commit
    /// stamps; null when it stamps none of its own.
    pub at: Option<&'static str>,
}

impl From<&StageInfo> for StepView {
    fn from(stage: &StageInfo) -> Self {
        Self {
            name: stage.name,
            label: stage.label,
            from: stage.from.iter().map(|state| state.as_str()).collect(),
            to: stage.to.as_str(),
            at: stage.at,
        }
    }
}

/// The stages of a request, in the order they run. Needs no token: it says
/// nothing about any request.
#[utoipa::path(get, path = "/steps", tag = "requests",
    responses((status = 200, body = Vec<StepView>)))]
pub async fn list_steps() -> Json<Vec<StepView>> {
    Json(STAGES.iter().map(StepView::from).collect())
}
