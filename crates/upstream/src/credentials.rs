//! The `Authorization` header dynamo sends to the image API: the key as
//! given, or no header at all when there is none. async-openai's
//! `OpenAIConfig` always sends `Bearer <key>`, an empty token when the key
//! is empty, which proxies in front of local servers refuse as malformed.

use async_openai::config::{Config, OpenAIConfig};
use reqwest::header::{AUTHORIZATION, HeaderMap};
use secrecy::{ExposeSecret, SecretString};

/// `OpenAIConfig`, minus the header when the key is empty.
#[derive(Debug, Clone)]
pub struct ApiConfig(OpenAIConfig);

impl ApiConfig {
    pub fn new(base_url: &str, api_key: &SecretString) -> Self {
        Self(
            OpenAIConfig::new()
                .with_api_base(base_url)
                .with_api_key(api_key.expose_secret()),
        )
    }
}

impl Config for ApiConfig {
    fn headers(&self) -> HeaderMap {
        let mut headers = self.0.headers();
        if self.0.api_key().expose_secret().is_empty() {
            headers.remove(AUTHORIZATION);
        }
        headers
    }
    fn url(&self, path: &str) -> String {
        self.0.url(path)
    }
    fn query(&self) -> Vec<(&str, &str)> {
        self.0.query()
    }
    fn api_base(&self) -> &str {
        self.0.api_base()
    }
    fn api_key(&self) -> &SecretString {
        self.0.api_key()
    }
}

/// `request` with the key as its bearer token, when there is one: for the
/// calls dynamo makes without async-openai (`GET /models`).
pub fn authorize(
    request: reqwest::RequestBuilder,
    api_key: &SecretString,
) -> reqwest::RequestBuilder {
    match api_key.expose_secret() {
        "" => request,
        key => request.bearer_auth(key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_no_header_and_a_key_as_given() {
        let none = ApiConfig::new("http://127.0.0.1:11434/v1", &SecretString::from(""));
        assert!(none.headers().get(AUTHORIZATION).is_none());
        let some = ApiConfig::new("http://127.0.0.1:11434/v1", &SecretString::from("ollama"));
        assert_eq!(some.headers()[AUTHORIZATION], "Bearer ollama");
        assert_eq!(
            some.url("/images/generations"),
            "http://127.0.0.1:11434/v1/images/generations"
        );
    }
}
