//! What comes down from an image server stays on its host and within its
//! size (issue 23).
//!
//! - An image `url` in an answer is fetched only over https (or the base
//!   URL's own scheme, e.g. http for a local sd-server) from the base URL's
//!   host and port, or from a host on `OPENAI_DOWNLOAD_HOSTS`; a redirect is
//!   checked by the same rule before it is followed.
//! - A listed host must resolve to public addresses (checked on every
//!   connection, by the resolver itself, so a second lookup cannot change
//!   the answer), unless the base URL is itself local: then the server and
//!   what it points to live on the operator's own network anyway.
//! - Every answer body is read against a cap before it is buffered: an
//!   image download at `OPENAI_MAX_DOWNLOAD_BYTES`, an API answer (where a
//!   `b64_json` image travels) at that as base64 plus room for its JSON.

use crate::on_answer::AnswerStep;
use crate::{ServiceId, UpstreamError};
use async_openai::error::OpenAIError;
use futures::future::BoxFuture;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Redirects followed (each one checked) before the download fails.
const MAX_REDIRECTS: usize = 3;
/// Room an API answer needs besides its base64 image: JSON, usage, text.
const ANSWER_SLACK: usize = 1024 * 1024;

/// The largest API answer read when images may be `max_image_bytes`: the
/// image as base64 (4 bytes for every 3) plus its JSON.
pub(crate) fn answer_cap(max_image_bytes: usize) -> usize {
    max_image_bytes
        .saturating_mul(4)
        .div_ceil(3)
        .saturating_add(ANSWER_SLACK)
}

/// Why an answer body was not read whole.
#[derive(Debug)]
pub(crate) enum Capped {
    /// Larger than the cap (said by Content-Length, or found on the way).
    TooLarge { limit: usize },
    /// The connection failed while reading.
    Failed(reqwest::Error),
}

impl Capped {
    pub(crate) fn into_upstream(self, service: ServiceId, what: &str) -> UpstreamError {
        match self {
            Capped::TooLarge { limit } => {
                UpstreamError::permanent(service, format!("{what} is over {limit} bytes"))
            }
            Capped::Failed(error) => UpstreamError::from_reqwest(service, error),
        }
    }
}

/// Reads `response`'s body, never holding more than `limit` bytes of it.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, Capped> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(Capped::TooLarge { limit });
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(Capped::Failed)? {
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(Capped::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads each answer body against the cap and hands on a response holding
/// the bytes read (async-openai buffers the body whole; this way it never
/// sees more). An [`AnswerStep`] of the OpenAI client's chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CapAnswers {
    limit: usize,
}

impl CapAnswers {
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit }
    }
}

impl AnswerStep for CapAnswers {
    fn on_answer(
        &self,
        response: reqwest::Response,
    ) -> BoxFuture<'static, Result<reqwest::Response, OpenAIError>> {
        let limit = self.limit;
        Box::pin(async move {
            let mut head = http::Response::builder()
                .status(response.status())
                .version(response.version());
            if let Some(headers) = head.headers_mut() {
                *headers = response.headers().clone();
            }
            let body = match read_capped(response, limit).await {
                Ok(body) => body,
                // Permanent: the same request would be answered (and paid
                // for) the same way again.
                Err(Capped::TooLarge { limit }) => {
                    return Err(OpenAIError::InvalidArgument(format!(
                        "the answer is over {limit} bytes (OPENAI_MAX_DOWNLOAD_BYTES as base64, plus its JSON)"
                    )));
                }
                Err(Capped::Failed(error)) => return Err(OpenAIError::Reqwest(error)),
            };
            let rebuilt = head
                .body(reqwest::Body::from(body))
                .map_err(|e| OpenAIError::InvalidArgument(format!("answer headers: {e}")))?;
            Ok(reqwest::Response::from(rebuilt))
        })
    }
}

/// Where images may be downloaded from.
#[derive(Debug)]
struct Policy {
    base: Url,
    /// `OPENAI_DOWNLOAD_HOSTS`: `host` or `host:port`, lowercase.
    allowed: Vec<String>,
    /// The base URL's host is loopback, private or link-local (a local
    /// sd-server or LocalAI): listed hosts may be too.
    base_is_local: tokio::sync::OnceCell<bool>,
}

impl Policy {
    /// Scheme and host (and port) of `url`, before anything is resolved.
    fn check(&self, url: &Url) -> Result<(), String> {
        let scheme = url.scheme();
        if scheme != "https" && scheme != self.base.scheme() {
            return Err(format!("its scheme {scheme:?} is not https"));
        }
        let host = url.host_str().unwrap_or("");
        let port = url.port_or_known_default();
        let same_as_base =
            Some(host) == self.base.host_str() && port == self.base.port_or_known_default();
        let listed = self.allowed.iter().any(|allowed| {
            allowed == host || port.is_some_and(|port| *allowed == format!("{host}:{port}"))
        });
        if same_as_base || listed {
            Ok(())
        } else {
            Err(format!(
                "{host}:{} is neither the server's own host and port nor on OPENAI_DOWNLOAD_HOSTS",
                port.unwrap_or(0)
            ))
        }
    }

    async fn base_is_local(&self) -> bool {
        *self
            .base_is_local
            .get_or_init(|| async {
                let Some(host) = self.base.host_str() else {
                    return false;
                };
                let port = self.base.port_or_known_default().unwrap_or(443);
                match tokio::net::lookup_host((host.trim_matches(['[', ']']), port)).await {
                    Ok(addresses) => addresses.into_iter().any(|a| !is_public(a.ip())),
                    Err(_) => false,
                }
            })
            .await
    }
}

/// Resolves names for downloads, keeping only the addresses the policy
/// allows: the base URL's host resolves as it likes (it is the configured
/// server); any other name only to public addresses unless the base is local.
struct GuardedResolver {
    policy: Arc<Policy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let trusted =
                Some(host.as_str()) == policy.base.host_str() || policy.base_is_local().await;
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|address| trusted || is_public(address.ip()))
                .collect();
            if kept.is_empty() {
                return Err(format!(
                    "{host} resolves only to loopback, private or link-local addresses; \
                     images are not fetched from there"
                )
                .into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addresses)
        })
    }
}

/// Fetches images named by `url` answers, under the [`Policy`].
#[derive(Clone)]
pub(crate) struct Downloader {
    /// The provider whose answers name the images: its failures are its own.
    service: ServiceId,
    http: reqwest::Client,
    policy: Arc<Policy>,
    max_bytes: usize,
}

impl std::fmt::Debug for Downloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downloader")
            .field("policy", &self.policy)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl Downloader {
    pub(crate) fn new(
        service: ServiceId,
        base_url: &str,
        allowed_hosts: &[String],
        max_bytes: usize,
        timeout: Duration,
    ) -> Result<Self, UpstreamError> {
        let base = Url::parse(base_url)
            .map_err(|e| UpstreamError::permanent(service, format!("OPENAI_BASE_URL: {e}")))?;
        let policy = Arc::new(Policy {
            base,
            allowed: allowed_hosts.iter().map(|h| h.to_lowercase()).collect(),
            base_is_local: tokio::sync::OnceCell::new(),
        });
        let redirects = policy.clone();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
                }
                match redirects.check(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(why) => attempt.error(format!("redirect refused: {why}")),
                }
            }))
            .build()
            .map_err(|e| UpstreamError::permanent(service, e))?;
        Ok(Self {
            service,
            http,
            policy,
            max_bytes,
        })
    }

    /// The image at `url`, checked by the policy, its type and its size.
    pub(crate) async fn image(&self, url: &str) -> Result<Vec<u8>, UpstreamError> {
        let shown = crate::redact::redact_url(url);
        let parsed = Url::parse(url).map_err(|e| {
            UpstreamError::permanent(
                self.service,
                format!("the image URL {shown} is not a URL: {e}"),
            )
        })?;
        self.policy.check(&parsed).map_err(|why| {
            UpstreamError::permanent(
                self.service,
                format!("refused the image URL {shown}: {why}"),
            )
        })?;
        // An address in the URL itself is never looked up: check it here.
        if let Some(ip) = literal_ip(&parsed)
            && !is_public(ip)
            && !self.policy.base_is_local().await
        {
            return Err(UpstreamError::permanent(
                self.service,
                format!("refused the image URL {shown}: {ip} is not a public address"),
            ));
        }
        let response = self
            .http
            .get(parsed)
            .send()
            .await
            .map_err(|e| UpstreamError::from_reqwest(self.service, e))?;
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            return Err(UpstreamError::from_status(
                self.service,
                status,
                &headers,
                "image download failed",
            ));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        if !content_type.starts_with("image/") {
            return Err(UpstreamError::permanent(
                self.service,
                format!("the image URL answered {content_type:?}, not an image"),
            ));
        }
        let bytes = read_capped(response, self.max_bytes)
            .await
            .map_err(|e| e.into_upstream(self.service, "the image"))?;
        Ok(bytes.to_vec())
    }
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Reachable on the internet: not loopback, private, link-local, shared
/// (CGNAT), unspecified, broadcast, documentation or multicast.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(base: &str, allowed: &[&str]) -> Policy {
        Policy {
            base: Url::parse(base).unwrap(),
            allowed: allowed.iter().map(|h| h.to_string()).collect(),
            base_is_local: tokio::sync::OnceCell::new(),
        }
    }

    fn check(policy: &Policy, url: &str) -> Result<(), String> {
        policy.check(&Url::parse(url).unwrap())
    }

    #[test]
    fn images_come_from_the_servers_own_host_and_port() {
        let local = policy("http://127.0.0.1:7860/v1", &[]);
        assert!(check(&local, "http://127.0.0.1:7860/images/a.png").is_ok());
        assert!(check(&local, "http://127.0.0.1:7861/a.png").is_err());
        assert!(check(&local, "http://169.254.169.254/latest/meta-data").is_err());
        assert!(check(&local, "file:///etc/passwd").is_err());
        let openai = policy("https://api.openai.com/v1", &["files.example.com"]);
        assert!(
            check(&openai, "http://api.openai.com/x.png").is_err(),
            "not https"
        );
        assert!(check(&openai, "https://api.openai.com.evil.example/x.png").is_err());
        assert!(check(&openai, "https://files.example.com/x.png").is_ok());
        assert!(check(&openai, "https://files.example.com:8443/x.png").is_ok());
    }

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["1.1.1.1", "140.82.112.3", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn an_answer_may_hold_the_largest_image_as_base64() {
        assert_eq!(answer_cap(3 * 1024), 4 * 1024 + ANSWER_SLACK);
    }
}
