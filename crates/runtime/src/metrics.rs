//! Prometheus exposition for both binaries: one `prometheus-client`
//! registry per process (which escapes label values and help texts as the
//! format requires), plus readings of the database and the broker that a
//! scrape takes and shows as gauges.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex, MutexGuard};

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What one scrape read (queue depth, rows by state...), shown as gauges.
/// A reading that did not answer is left out, rather than shown as zero.
pub trait Readings: Default + std::fmt::Debug + Send + Sync + 'static {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error>;
}

/// A process's registry and the readings of its latest scrape.
#[derive(Debug)]
pub struct Exposition<R: Readings> {
    registry: Registry,
    latest: Arc<Latest<R>>,
    /// Held from storing a scrape's readings to rendering them, so that two
    /// scrapes at once each show their own.
    scrape: Mutex<()>,
}

#[derive(Debug, Default)]
struct Latest<R>(Mutex<R>);

impl<R: Readings> Collector for Latest<R> {
    fn encode(&self, encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        lock(&self.0).encode(encoder)
    }
}

impl<R: Readings> Exposition<R> {
    /// Shows `registry`'s metrics and, after them, each scrape's readings.
    pub fn new(mut registry: Registry) -> Self {
        let latest = Arc::new(Latest::<R>::default());
        registry.register_collector(Box::new(latest.clone()));
        Self {
            registry,
            latest,
            scrape: Mutex::new(()),
        }
    }

    /// Every metric in the Prometheus text format, with this scrape's readings.
    pub fn render(&self, readings: R) -> Result<String, std::fmt::Error> {
        let _scrape = lock(&self.scrape);
        *lock(&self.latest.0) = readings;
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// `dynamo_queue_depth`, which both binaries show: the messages waiting in
/// the request queue, left out when the broker did not say (rather than
/// shown as an empty queue).
pub fn encode_queue_depth(
    encoder: &mut DescriptorEncoder,
    depth: Option<u32>,
) -> Result<(), std::fmt::Error> {
    use prometheus_client::encoding::EncodeMetric;
    let Some(depth) = depth else {
        return Ok(());
    };
    let gauge = encoder.encode_descriptor(
        "dynamo_queue_depth",
        "Messages waiting in the request queue.",
        None,
        prometheus_client::metrics::MetricType::Gauge,
    )?;
    prometheus_client::metrics::gauge::ConstGauge::new(i64::from(depth)).encode(gauge)
}

/// A panic elsewhere while holding the lock leaves consistent data behind
/// (each write is a single assignment): keep serving metrics.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::EncodeMetric;
    use prometheus_client::metrics::MetricType;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::gauge::ConstGauge;

    #[derive(Debug, Default)]
    struct Depth(Option<i64>);

    impl Readings for Depth {
        fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
            if let Some(depth) = self.0 {
                let gauge =
                    encoder.encode_descriptor("depth", "A reading.", None, MetricType::Gauge)?;
                ConstGauge::new(depth).encode(gauge)?;
            }
            Ok(())
        }
    }

    #[test]
    fn each_scrape_shows_its_own_readings_after_the_registry() {
        let mut registry = Registry::default();
        let counter = Counter::<u64>::default();
        registry.register("counted", "A counter.", counter.clone());
        let exposition = Exposition::<Depth>::new(registry);
        counter.inc();
        let first = exposition.render(Depth(Some(3))).unwrap_or_default();
        assert!(first.contains("\ncounted_total 1\n"), "{first}");
        assert!(first.contains("\ndepth 3\n"), "{first}");
        assert!(
            first.find("counted_total") < first.find("depth 3"),
            "{first}"
        );
        let second = exposition.render(Depth(None)).unwrap_or_default();
        assert!(!second.contains("depth"), "{second}");
    }
}
