//! The name stage: a friend gets a name from the chat model before its
//! picture (styles whose settings ask for one).

use crate::limits::Endpoint;
use crate::request::{Pipeline, Run};
use crate::run::{Attempted, Current, Next, StepResult};
use dynamo_store::{RequestState, Step};

impl Pipeline {
    /// Friends get a name from the chat model before their picture.
    pub(crate) async fn name(&self, run: &Run<'_>, current: &mut Current) -> StepResult {
        let job = run.job;
        let subject = job.request.subject().as_str();
        let user = job.request.viewer.twitch_user_id.as_str();
        let names = &self.services.names;
        let name = match self
            .attempt(run, Step::Name, || {
                self.limited(names.service(), Endpoint::Chat, names.name(subject, user))
            })
            .await?
        {
            Attempted::Done(name) => name,
            Attempted::Failed(error) => {
                return self.end(run, current, "naming the friend", error).await;
            }
            Attempted::Deferred(until, why) => return Ok(Next::Wait(until, why)),
        };
        let (progress, name) = self
            .store
            .record_name(run.lease(), &names.prompt(subject), &name)
            .await?;
        current.apply(progress);
        current.record.name = Some(name);
        Ok(Next::To(RequestState::Named))
    }
}
