//! The steps of the pipeline, as they are named in the database (the
//! `dynamo.step_failure.step` column holds only these, under a CHECK).

use std::fmt;

/// One unit of work on a request. Deferred steps are retried by scheduling;
/// the others are retried in place (see the pipeline's retry policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    Debit,
    Name,
    Moderation,
    Image,
    Upload,
    Alert,
    Accept,
    Refund,
    Result,
}

impl Step {
    pub const ALL: [Step; 9] = [
        Step::Debit,
        Step::Name,
        Step::Moderation,
        Step::Image,
        Step::Upload,
        Step::Alert,
        Step::Accept,
        Step::Refund,
        Step::Result,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Debit => "debit",
            Step::Name => "name",
            Step::Moderation => "moderation",
            Step::Image => "image",
            Step::Upload => "upload",
            Step::Alert => "alert",
            Step::Accept => "accept",
            Step::Refund => "refund",
            Step::Result => "result",
        }
    }

    pub fn parse(raw: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|step| step.as_str() == raw)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Step::parse(&raw).ok_or_else(|| serde::de::Error::custom(format!("unknown step {raw:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert_eq!(Step::parse("finish"), None);
    }
}
