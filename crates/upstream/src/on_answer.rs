//! One tower service between async-openai and reqwest for every look we
//! take at an answer before async-openai reads it (the body read against
//! its cap, the retry hints in its headers): each look is an [`AnswerStep`],
//! and [`OnAnswer`] puts it in the chain.

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use futures::future::BoxFuture;
use std::task::{Context, Poll};

/// What is done with each answer on its way to async-openai.
pub(crate) trait AnswerStep: Clone + Send + Sync + 'static {
    fn on_answer(
        &self,
        response: reqwest::Response,
    ) -> BoxFuture<'static, Result<reqwest::Response, OpenAIError>>;
}

/// `inner`, with `step` applied to each of its answers.
#[derive(Debug, Clone)]
pub(crate) struct OnAnswer<S, A> {
    inner: S,
    step: A,
}

impl<S, A> OnAnswer<S, A> {
    pub(crate) fn new(inner: S, step: A) -> Self {
        Self { inner, step }
    }
}

impl<S, A> tower::Service<HttpRequestFactory> for OnAnswer<S, A>
where
    S: tower::Service<HttpRequestFactory, Response = reqwest::Response, Error = OpenAIError>,
    S::Future: Send + 'static,
    A: AnswerStep,
{
    type Response = reqwest::Response;
    type Error = OpenAIError;
    type Future = BoxFuture<'static, Result<reqwest::Response, OpenAIError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequestFactory) -> Self::Future {
        let response = self.inner.call(request);
        let step = self.step.clone();
        Box::pin(async move { step.on_answer(response.await?).await })
    }
}
