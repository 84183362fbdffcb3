//! Which models dynamo may call, in which order, and what each accepts.
//!
//! Models retire (SPEC §3). A setting names a chain of models in order of
//! preference; a model the fleet learned is gone is skipped, and when every
//! model of a chain is gone the call fails with [`UpstreamError::ModelsGone`](crate::UpstreamError::ModelsGone),
//! which says nothing about the viewer's request. What the fleet learned is
//! kept behind [`ModelCatalogue`] (PostgreSQL in production) so one process
//! learning it teaches all of them.
//!
//! Which optional image parameters a model takes is [`PARAMETER_TABLE`], the
//! one place that says it, overridable by `OPENAI_MODEL_PARAMETERS`. What an
//! image costs is [`PRICE_TABLE`], overridable by `OPENAI_IMAGE_PRICES`.

use async_trait::async_trait;
use std::collections::HashSet;
use std::sync::Mutex;

/// A setting's models in order of preference (`OPENAI_IMAGE_MODEL=a,b,c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelChain {
    /// The setting, named in every log line and error about the chain.
    pub variable: &'static str,
    pub models: Vec<String>,
}

impl ModelChain {
    /// Parses a comma-separated list; blanks and repeats are dropped.
    pub fn parse(variable: &'static str, text: &str) -> Result<Self, String> {
        let mut models: Vec<String> = Vec::new();
        for model in text.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            if !models.iter().any(|known| known == model) {
                models.push(model.to_owned());
            }
        }
        if models.is_empty() {
            return Err("must name at least one model".to_owned());
        }
        Ok(Self { variable, models })
    }
}

/// A model as `GET /models` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    pub id: String,
    pub shutdown_date: Option<chrono::NaiveDate>,
}

/// Where the fleet keeps what it learned about models.
/// The catalogue's own store failed: dynamo's infrastructure (the fleet's
/// catalogue lives in PostgreSQL), never an answer of the model's server,
/// so it is not an [`UpstreamError`](crate::UpstreamError). The provider carries on without what
/// it could not read or record (trying every model, sending every
/// parameter) and says so in a warning.
#[derive(Debug, thiserror::Error)]
#[error("the model catalogue is unavailable: {0}")]
pub struct CatalogueError(pub String);

#[async_trait]
pub trait ModelCatalogue: Send + Sync {
    /// Records that `chain.variable` names `chain.models`.
    async fn configure(&self, chain: &ModelChain) -> Result<(), CatalogueError>;
    /// True for one caller per `every`: that caller reads `GET /models`.
    async fn claim_check(
        &self,
        every: std::time::Duration,
        owner: &str,
    ) -> Result<bool, CatalogueError>;
    /// A successful `GET /models`: configured models it does not list are gone.
    async fn record_listing(&self, listed: &[ListedModel]) -> Result<(), CatalogueError>;
    /// Every model known to be gone.
    async fn gone(&self) -> Result<Vec<String>, CatalogueError>;
    /// Marks `model` gone; true when this call is the one that learned it.
    async fn mark_gone(&self, model: &str, reason: &str) -> Result<bool, CatalogueError>;
    /// Every (model, parameter) a model refused.
    async fn refused_parameters(&self) -> Result<Vec<(String, String)>, CatalogueError>;
    async fn refuse_parameter(
        &self,
        model: &str,
        parameter: &str,
        detail: &str,
    ) -> Result<(), CatalogueError>;
}

/// A catalogue for one process (no database): what it learns, it alone knows.
#[derive(Debug, Default)]
pub struct MemoryCatalogue {
    state: Mutex<Learned>,
}

/// Configured models, gone models, refused (model, parameter) pairs.
type Learned = (Vec<String>, HashSet<String>, HashSet<(String, String)>);

impl MemoryCatalogue {
    fn with<T>(&self, f: impl FnOnce(&mut Learned) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of
        // plain sets; the data is still usable.
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }
}

#[async_trait]
impl ModelCatalogue for MemoryCatalogue {
    async fn configure(&self, chain: &ModelChain) -> Result<(), CatalogueError> {
        self.with(|(configured, _, _)| configured.extend(chain.models.iter().cloned()));
        Ok(())
    }
    async fn claim_check(
        &self,
        _every: std::time::Duration,
        _owner: &str,
    ) -> Result<bool, CatalogueError> {
        Ok(true)
    }
    async fn record_listing(&self, listed: &[ListedModel]) -> Result<(), CatalogueError> {
        self.with(|(configured, gone, _)| {
            for model in configured.iter() {
                if listed.iter().any(|l| &l.id == model) {
                    gone.remove(model);
                } else {
                    gone.insert(model.clone());
                }
            }
        });
        Ok(())
    }
    async fn gone(&self) -> Result<Vec<String>, CatalogueError> {
        Ok(self.with(|(_, gone, _)| gone.iter().cloned().collect()))
    }
    async fn mark_gone(&self, model: &str, _reason: &str) -> Result<bool, CatalogueError> {
        Ok(self.with(|(_, gone, _)| gone.insert(model.to_owned())))
    }
    async fn refused_parameters(&self) -> Result<Vec<(String, String)>, CatalogueError> {
        Ok(self.with(|(_, _, refused)| refused.iter().cloned().collect()))
    }
    async fn refuse_parameter(
        &self,
        model: &str,
        parameter: &str,
        _detail: &str,
    ) -> Result<(), CatalogueError> {
        self.with(|(_, _, refused)| refused.insert((model.to_owned(), parameter.to_owned())));
        Ok(())
    }
}

/// An optional parameter of `POST /images/generations` (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageParameter {
    /// `response_format: b64_json` (DALL-E and some compatible servers).
    ResponseFormat,
    /// `quality` (`OPENAI_IMAGE_QUALITY`).
    Quality,
    /// `output_format` with `output_compression`: ghosts ask for JPEG.
    OutputFormat,
    /// `background: transparent`: friends need no chroma keying.
    Background,
}

impl ImageParameter {
    pub const ALL: [ImageParameter; 4] = [
        ImageParameter::ResponseFormat,
        ImageParameter::Quality,
        ImageParameter::OutputFormat,
        ImageParameter::Background,
    ];

    /// The name the API uses (and `OPENAI_MODEL_PARAMETERS` takes).
    pub fn name(self) -> &'static str {
        match self {
            ImageParameter::ResponseFormat => "response_format",
            ImageParameter::Quality => "quality",
            ImageParameter::OutputFormat => "output_format",
            ImageParameter::Background => "background",
        }
    }

    /// The parameter an API error's `param` blames (`output_compression`
    /// travels with `output_format`).
    pub fn from_error_param(param: &str) -> Option<Self> {
        match param {
            "output_compression" => Some(ImageParameter::OutputFormat),
            other => Self::ALL.into_iter().find(|p| p.name() == other),
        }
    }
}

use ImageParameter::{Background, OutputFormat, Quality, ResponseFormat};

/// Which model takes which optional parameter, by model-id prefix, first
/// match wins (SPEC §3). A model matching no row — an OpenAI-compatible
/// server's own model — is sent none: the plain request every server takes.
pub const PARAMETER_TABLE: &[(&str, &[ImageParameter])] = &[
    ("dall-e", &[ResponseFormat]),
    // The 2.6 family draws transparent backgrounds itself.
    ("gpt-image-2.6", &[Quality, OutputFormat, Background]),
    ("gpt-image", &[Quality, OutputFormat]),
    ("chatgpt-image", &[Quality, OutputFormat]),
];

/// The table with `OPENAI_MODEL_PARAMETERS` rows in front of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelParameters {
    overrides: Vec<(String, Vec<ImageParameter>)>,
}

impl ModelParameters {
    /// `model=param+param;prefix*=param;model=` — a `*` makes the row a
    /// prefix, an empty list sends nothing optional.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut overrides = Vec::new();
        for row in text.split(';').map(str::trim).filter(|r| !r.is_empty()) {
            let (model, params) = row
                .split_once('=')
                .ok_or_else(|| format!("{row:?} is not model=param+param"))?;
            let mut list = Vec::new();
            for name in params.split('+').map(str::trim).filter(|p| !p.is_empty()) {
                let parameter = ImageParameter::ALL
                    .into_iter()
                    .find(|p| p.name() == name)
                    .ok_or_else(|| {
                        format!("unknown parameter {name:?}: expected response_format, quality, output_format or background")
                    })?;
                list.push(parameter);
            }
            overrides.push((model.trim().to_owned(), list));
        }
        Ok(Self { overrides })
    }

    /// The parameters `model` takes.
    pub fn for_model(&self, model: &str) -> Vec<ImageParameter> {
        let matches = |pattern: &str, exact: bool| match pattern.strip_suffix('*') {
            Some(prefix) => model.starts_with(prefix),
            None if exact => model == pattern,
            None => model.starts_with(pattern),
        };
        if let Some((_, list)) = self.overrides.iter().find(|(p, _)| matches(p, true)) {
            return list.clone();
        }
        PARAMETER_TABLE
            .iter()
            .find(|(prefix, _)| matches(prefix, false))
            .map(|(_, list)| list.to_vec())
            .unwrap_or_default()
    }
}

/// What a model charges (SPEC §3: OpenAI's prices, via secondary sources).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelPrice {
    /// USD per 1024x1024 image at quality low, medium and high (medium is
    /// used when the quality is `auto` or unset).
    pub per_image: [f64; 3],
    /// USD per million text input and image output tokens: when the answer
    /// carries `usage`, the cost is computed from it instead.
    pub per_million_tokens: Option<(f64, f64)>,
}

/// Image prices by model-id prefix, first match wins. A model matching no
/// row (an OpenAI-compatible server's own model) costs nothing: it runs on
/// the streamer's machine.
pub const PRICE_TABLE: &[(&str, ModelPrice)] = &[
    // The 2.x families share gpt-image-2's token prices; their per-image
    // prices are not published, so gpt-image-2's stand in when there is no usage.
    (
        "gpt-image-2",
        ModelPrice {
            per_image: [0.006, 0.053, 0.211],
            per_million_tokens: Some((5.0, 30.0)),
        },
    ),
];

/// Token counts of one image answer (`usage`, GPT-image models only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImageUsage {
    /// Text input tokens (`input_tokens_details.text_tokens`, else `input_tokens`).
    pub input_tokens: u32,
    pub output_tokens: u32,
}

/// How an image's cost was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PricedBy {
    /// From the answer's `usage` and the model's token prices.
    Usage,
    /// The model's per-image price.
    PerImage,
    /// No price known: a local model.
    Free,
}

impl PricedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            PricedBy::Usage => "usage",
            PricedBy::PerImage => "price",
            PricedBy::Free => "free",
        }
    }
}

/// The table with `OPENAI_IMAGE_PRICES` rows in front of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelPrices {
    /// (model or `prefix*`, USD per image, whatever the quality or usage).
    overrides: Vec<(String, f64)>,
}

impl ModelPrices {
    /// `model=usd;prefix*=usd`: a flat price per image for those models.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut overrides = Vec::new();
        for row in text.split(';').map(str::trim).filter(|r| !r.is_empty()) {
            let (model, price) = row
                .split_once('=')
                .ok_or_else(|| format!("{row:?} is not model=usd"))?;
            let price: f64 = price
                .trim()
                .parse()
                .ok()
                .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                .ok_or_else(|| {
                    format!("{price:?} is not a price in USD (like 0.053) for {model}")
                })?;
            overrides.push((model.trim().to_owned(), price));
        }
        Ok(Self { overrides })
    }

    /// What one image of `model` cost, given the quality asked and the
    /// answer's usage, and how that was found.
    pub fn cost(
        &self,
        model: &str,
        quality: Option<&str>,
        usage: Option<ImageUsage>,
    ) -> (f64, PricedBy) {
        let overridden = self
            .overrides
            .iter()
            .find(|(p, _)| match p.strip_suffix('*') {
                Some(prefix) => model.starts_with(prefix),
                None => model == p,
            });
        if let Some((_, price)) = overridden {
            return (*price, PricedBy::PerImage);
        }
        let Some((_, price)) = PRICE_TABLE.iter().find(|(p, _)| model.starts_with(p)) else {
            return (0.0, PricedBy::Free);
        };
        if let (Some(usage), Some((input, output))) = (usage, price.per_million_tokens) {
            let usd = (f64::from(usage.input_tokens) * input
                + f64::from(usage.output_tokens) * output)
                / 1_000_000.0;
            return (usd, PricedBy::Usage);
        }
        let index = match quality {
            Some("low") => 0,
            Some("high") => 2,
            _ => 1,
        };
        (price.per_image[index], PricedBy::PerImage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_priced_from_usage_then_the_table_then_the_setting() {
        let prices = ModelPrices::default();
        let usage = ImageUsage {
            input_tokens: 40,
            output_tokens: 1756,
        };
        let (usd, by) = prices.cost("gpt-image-2.6-sunburst", None, Some(usage));
        assert_eq!(by, PricedBy::Usage);
        assert!((usd - (40.0 * 5.0 + 1756.0 * 30.0) / 1e6).abs() < 1e-12);
        assert_eq!(
            prices.cost("gpt-image-2", Some("low"), None),
            (0.006, PricedBy::PerImage)
        );
        assert_eq!(
            prices.cost("gpt-image-2", Some("auto"), None),
            (0.053, PricedBy::PerImage)
        );
        assert_eq!(prices.cost("sd-turbo", None, None), (0.0, PricedBy::Free));
        let set = ModelPrices::parse("sd-*=0.002; gpt-image-2=0.1").unwrap();
        assert_eq!(
            set.cost("sd-turbo", None, None),
            (0.002, PricedBy::PerImage)
        );
        assert_eq!(
            set.cost("gpt-image-2", None, Some(usage)),
            (0.1, PricedBy::PerImage)
        );
        assert!(ModelPrices::parse("x=cheap").is_err());
        assert!(ModelPrices::parse("x=-1").is_err());
        assert!(ModelPrices::parse("x").is_err());
    }

    #[test]
    fn a_chain_keeps_its_order_and_drops_blanks_and_repeats() {
        let chain = ModelChain::parse("OPENAI_IMAGE_MODEL", " a, b ,,a,c ").unwrap();
        assert_eq!(chain.models, ["a", "b", "c"]);
        assert!(ModelChain::parse("OPENAI_IMAGE_MODEL", " , ").is_err());
    }

    #[test]
    fn the_table_gives_transparency_to_the_2_6_family_only() {
        let table = ModelParameters::default();
        assert!(table.for_model("gpt-image-2.6-flare").contains(&Background));
        assert!(!table.for_model("gpt-image-2").contains(&Background));
        assert!(table.for_model("gpt-image-2").contains(&OutputFormat));
        assert_eq!(table.for_model("dall-e-3"), [ResponseFormat]);
        assert!(table.for_model("sd-turbo").is_empty());
    }

    #[test]
    fn overrides_come_before_the_table() {
        let table = ModelParameters::parse("sd-*=output_format; gpt-image-2=background").unwrap();
        assert_eq!(table.for_model("sd-turbo"), [OutputFormat]);
        assert_eq!(table.for_model("gpt-image-2"), [Background]);
        assert_eq!(
            table.for_model("gpt-image-2.5-flare"),
            [Quality, OutputFormat]
        );
        assert!(ModelParameters::parse("x=style").is_err());
        assert!(ModelParameters::parse("x").is_err());
    }
}
