//! An error answer of OpenAI or an OpenAI-compatible server, read whatever
//! its shape. OpenAI answers `{"error":{"message","type","param","code"}}`;
//! stable-diffusion.cpp's sd-server answers `{"error":"<text>"}` (and
//! `{"error":"server_error","message":"<text>"}` on a 500); LocalAI's `code`
//! is a number; a route a server lacks may answer 404 with no JSON at all.
//! async-openai reads only the first, so everything else is read here.

use async_openai::error::OpenAIError;
use serde_json::Value;

/// An error answer, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiFailure {
    pub status: u16,
    pub message: String,
    pub kind: Option<String>,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ApiFailure {
    /// The error async-openai returned, as a failure of the API, when it is
    /// one: `status` is the answer's, captured on the way in. Anything else
    /// (no answer, a bad request of ours) is handed back.
    pub fn from_openai(error: OpenAIError, status: Option<u16>) -> Result<Self, OpenAIError> {
        match error {
            OpenAIError::ApiError(response) => {
                let status = response.status_code.as_u16();
                let api = response.api_error;
                // A 5xx body is passed on raw: it may still be JSON.
                if api.r#type.is_none() && api.code.is_none() && api.param.is_none() {
                    return Ok(Self::from_body(status, &api.message));
                }
                Ok(Self {
                    status,
                    message: api.message,
                    kind: api.r#type,
                    param: api.param,
                    code: api.code,
                })
            }
            OpenAIError::JSONDeserialize(_, body) if status.is_some_and(|s| s >= 400) => {
                Ok(Self::from_body(status.unwrap_or_default(), &body))
            }
            other => Err(other),
        }
    }

    /// Reads an error body in any of the shapes above.
    pub fn from_body(status: u16, body: &str) -> Self {
        let mut failure = Self {
            status,
            message: String::new(),
            kind: None,
            param: None,
            code: None,
        };
        let json: Option<Value> = serde_json::from_str(body).ok();
        let text = |v: &Value| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        match json.as_ref().and_then(|j| j.get("error")) {
            Some(Value::Object(error)) => {
                failure.message = error.get("message").and_then(text).unwrap_or_default();
                failure.kind = error.get("type").and_then(text).filter(|t| !t.is_empty());
                failure.param = error.get("param").and_then(text);
                failure.code = error.get("code").and_then(text);
            }
            Some(Value::String(error)) => {
                // sd-server: the text itself, or a kind with the text beside it.
                match json.as_ref().and_then(|j| j.get("message")).and_then(text) {
                    Some(message) => {
                        failure.kind = Some(error.clone());
                        failure.message = message;
                    }
                    None => failure.message = error.clone(),
                }
            }
            _ => {
                failure.message = json
                    .as_ref()
                    .and_then(|j| j.get("message").or_else(|| j.get("detail")))
                    .and_then(text)
                    .unwrap_or_else(|| crate::error::truncate(body.trim(), 300).to_owned());
            }
        }
        if failure.message.is_empty() {
            failure.message = format!("HTTP {status} with no explanation");
        }
        failure
    }

    /// `404 model_not_found`, or a compatible server's 404 saying so in
    /// words (Ollama: `model "x" not found, try pulling it first`).
    pub fn is_model_not_found(&self) -> bool {
        if self.status != 404 {
            return false;
        }
        if self.code.as_deref() == Some("model_not_found") {
            return true;
        }
        let message = self.message.to_lowercase();
        message.contains("not found")
            && ["model \"", "model '", "model:", "model "]
                .iter()
                .any(|m| message.contains(m))
    }

    /// The server has no such route: a 404 that is not about a model.
    pub fn is_missing_endpoint(&self) -> bool {
        matches!(self.status, 404 | 405 | 501) && !self.is_model_not_found()
    }
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.message)?;
        if let Some(code) = &self.code {
            write!(f, " (code {code})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_servers_error_shape_is_read() {
        let openai = ApiFailure::from_body(
            400,
            r#"{"error":{"message":"Transparent background is not supported.","type":"invalid_request_error","param":"background","code":null}}"#,
        );
        assert_eq!(openai.param.as_deref(), Some("background"));
        assert_eq!(openai.kind.as_deref(), Some("invalid_request_error"));

        let sd = ApiFailure::from_body(400, r#"{"error":"prompt required"}"#);
        assert_eq!(sd.message, "prompt required");
        assert_eq!(sd.code, None);
        let sd500 = ApiFailure::from_body(
            500,
            r#"{"error":"server_error","message":"failed to load model"}"#,
        );
        assert_eq!(sd500.message, "failed to load model");

        let local = ApiFailure::from_body(
            500,
            r#"{"error":{"code":500,"message":"could not load model","type":""}}"#,
        );
        assert_eq!(local.code.as_deref(), Some("500"));
        assert_eq!(local.kind, None);

        let ollama = ApiFailure::from_body(
            404,
            r#"{"error":{"message":"model \"llama9\" not found, try pulling it first","type":"api_error","param":null,"code":null}}"#,
        );
        assert!(ollama.is_model_not_found());
        assert!(!ollama.is_missing_endpoint());

        let empty = ApiFailure::from_body(404, "");
        assert!(empty.is_missing_endpoint());
        assert!(empty.message.contains("404"));
        let gin = ApiFailure::from_body(404, "404 page not found");
        assert!(gin.is_missing_endpoint());
    }
}
