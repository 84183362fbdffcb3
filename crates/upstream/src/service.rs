//! Which service a call went to, as a type: the id that keys the service's
//! holds, its fleet-wide rate limits and its metrics labels. Each provider
//! names its own (`const SERVICE` beside its implementation, returned by
//! its trait's `service()`), so a second provider of the same kind holds
//! and limits on its own, and no code outside a provider spells its name.

use std::fmt;

/// A service's id. The text is what is stored and exported (rows of
/// `dynamo.upstream_holds`, rate limiter names, metric label values), so it
/// never changes for a provider once a fleet runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(&'static str);

impl ServiceId {
    /// A provider's id, declared once beside it.
    pub const fn new(id: &'static str) -> Self {
        Self(id)
    }

    /// The id as stored and exported.
    pub const fn as_str(self) -> &'static str {
        self.0
    }

    /// The name of one of this service's fleet-wide rate limiters
    /// (`openai-requests`, `openai-images`).
    pub fn limiter(self, endpoint: &str) -> String {
        format!("{}-{endpoint}", self.0)
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl PartialEq<str> for ServiceId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<String> for ServiceId {
    fn eq(&self, other: &String) -> bool {
        self.0 == other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_name_is_the_id() {
        let id = ServiceId::new("openai");
        assert_eq!(id.to_string(), "openai");
        assert_eq!(id.limiter("images"), "openai-images");
        assert!(id == *"openai" && id != ServiceId::new("placeholder"));
    }
}
