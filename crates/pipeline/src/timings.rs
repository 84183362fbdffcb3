//! Time spent in each step of one request, for its outcome log line.

use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Timings {
    steps: Vec<(&'static str, Duration)>,
}

impl Timings {
    pub fn record(&mut self, step: &'static str, took: Duration) {
        self.steps.push((step, took));
    }

    pub fn total(&self) -> Duration {
        self.steps.iter().map(|(_, took)| *took).sum()
    }
}

/// `debit=12ms name=800ms image=14s alert=3ms accept=9ms`
impl fmt::Display for Timings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, (step, took)) in self.steps.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{step}={took:.0?}")?;
        }
        Ok(())
    }
}
