//! Everything dynamo-consumer reads from the environment, in one typed struct.
//! Each field says its variable and default; `.env.example` repeats them.

use dynamo_broker::Topology;
use dynamo_pipeline::limits::RateSettings;
use dynamo_pipeline::prompt::PromptTemplates;
use dynamo_pipeline::retry::RetryPolicy;
use dynamo_pipeline::settings::ApprovalPolicy;
use dynamo_pipeline::settings::HoldPolicy;
use dynamo_runtime::{BrokerSettings, DatabaseSettings, Env, SettingError};
// `is_openai`: whether the API is OpenAI's own (which needs a key).
use dynamo_upstream::{
    ModelChain, ModelParameters, ModelPrices, OpenAiSettings, SPEECH_FORMATS, SpeechSettings,
    is_openai,
};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    pub database: DatabaseSettings,
    pub broker: BrokerSettings,
    pub topology: Topology,
    /// `AUTH_URL`, default `http://localhost:5002`.
    pub auth_url: String,
    /// `AUTH_SHARED_SECRET`: signs service-token requests. Required unless
    /// `POINTS_COST` is 0 (then the ledger is never called).
    pub auth_shared_secret: Option<SecretString>,
    /// `LEDGER_URL`, default `http://localhost:5003`.
    pub ledger_url: String,
    /// `POINTS_COST`, default 200: points debited per image; 0 makes images free.
    pub points_cost: u32,
    /// `LEDGER`, default `golden-vcr`: who settles points.
    pub ledger: LedgerBackend,
    /// The `TWITCH_*` settings, read when `LEDGER=twitch` or `TWITCH_INTAKE=on`.
    pub twitch: Option<dynamo_twitch::TwitchSettings>,
    /// `TWITCH_INTAKE`, default off: this process takes channel-point
    /// redemptions in over EventSub, whenever it holds the intake lease
    /// (safe on every consumer of the fleet).
    pub twitch_intake: bool,
    pub images: ImageBackend,
    /// `SPEECH_PROVIDER`, default `openai` with `IMAGE_PROVIDER=openai`, else
    /// `none`: who reads captions aloud for styles that ask (issue 30).
    pub speech: SpeechBackend,
    /// `MODERATION`, default on with OpenAI: screen prompts before paying for an image.
    pub moderation: bool,
    pub storage: StorageBackend,
    pub prompts: PromptTemplates,
    /// `DISCORD_GHOSTS_WEBHOOK_URL`, optional.
    pub discord_ghosts_webhook: Option<String>,
    /// `DISCORD_FRIENDS_WEBHOOK_URL`, optional.
    pub discord_friends_webhook: Option<String>,
    /// `DISCORD_STYLES_WEBHOOK_URL`, optional: every other style's images.
    pub discord_styles_webhook: Option<String>,
    /// `CONSUMER_PREFETCH`, default 4: requests processed at once by this process.
    pub prefetch: u16,
    /// `DELIVERY_LIMIT`, default 10: a message delivered this many times
    /// without being settled (it fails each time, or takes its consumer
    /// down) is parked in the dead-letter queue on its next delivery.
    /// Counted by RabbitMQ on quorum queues (`x-delivery-count`), in
    /// PostgreSQL on classic ones.
    pub delivery_limit: u32,
    /// `SHUTDOWN_GRACE`, default 150s: how long in-flight requests may take to
    /// finish after SIGTERM before they are left to the broker to redeliver.
    pub shutdown_grace: Duration,
    pub retry: RetryPolicy,
    /// Fleet-wide OpenAI limits (used with `IMAGE_PROVIDER=openai`).
    pub rates: RateSettings,
    /// `CONSUMER_HEALTH_ADDR`, default `0.0.0.0:8081`: `/healthz`, `/readyz`
    /// and `/metrics`; `off` disables it.
    pub health_addr: Option<SocketAddr>,
    /// `LEASE_TTL`, default 30s: how long this process owns a request it
    /// works on unless it renews the lease (it does, every third of that).
    /// A crashed or frozen process's requests are taken over this long after
    /// it stopped renewing.
    pub lease_ttl: Duration,
    /// `UPSTREAM_PROBE_INTERVAL`, `UPSTREAM_OUTAGE_MAX_WAIT`: holding the
    /// fleet while OpenAI is out (bad key, no credit, every model gone).
    pub holds: HoldPolicy,
    /// `VIEWER_MAX_IN_FLIGHT`, default 2: requests of one viewer in progress
    /// at once, over all processes (0: no cap). The rest wait their turn
    /// without holding a consumer slot.
    pub viewer_max_in_flight: u32,
    /// `APPROVAL`, `APPROVAL_TIMEOUT`, `APPROVAL_TIMEOUT_ACTION`: approval
    /// before air (off by default).
    pub approval: ApprovalPolicy,
}

/// Who settles points (`LEDGER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerBackend {
    /// `golden-vcr`: the Golden VCR ledger service (`LEDGER_URL`).
    GoldenVcr,
    /// `twitch`: channel points, settled on the redemption's status.
    Twitch,
    /// `none`: images are free.
    None,
}

impl LedgerBackend {
    fn from_env(env: &Env) -> Result<Self, SettingError> {
        match env.string("LEDGER", "golden-vcr").as_str() {
            "golden-vcr" => Ok(Self::GoldenVcr),
            "twitch" => Ok(Self::Twitch),
            "none" => Ok(Self::None),
            other => Err(SettingError::new(
                "LEDGER",
                format!("cannot use {other:?}: expected golden-vcr, twitch or none"),
            )),
        }
    }
}

/// Where images come from (`IMAGE_PROVIDER`).
#[derive(Debug, Clone)]
pub enum ImageBackend {
    /// `openai` (the default): needs `OPENAI_API_KEY`. Boxed: the settings
    /// are large next to the empty placeholder variant.
    OpenAi(Box<OpenAiSettings>),
    /// `placeholder`: drawn locally, for demos and development.
    Placeholder,
}

/// Who reads captions aloud (`SPEECH_PROVIDER`).
#[derive(Debug, Clone)]
pub enum SpeechBackend {
    /// `openai`: `POST /audio/speech` at `OPENAI_BASE_URL` (OpenAI or a
    /// compatible server such as LocalAI), with `OPENAI_SPEECH_*`.
    OpenAi(Box<OpenAiSettings>),
    /// `none`: alerts of styles that ask for speech air without it.
    None,
}

pub use dynamo_upstream::StorageBackend;

impl ConsumerConfig {
    /// The settings part of `dynamo-consumer --help`: every section of
    /// `.env.example` but the server's.
    pub fn settings_help() -> String {
        dynamo_runtime::help::settings_help(
            &[
                "PostgreSQL",
                "RabbitMQ",
                "auth and ledger",
                "images",
                "storage",
                "Discord",
                "Twitch",
                "consumer behaviour",
                "logs",
            ],
            &[],
        )
    }

    pub fn from_env(env: &Env) -> Result<Self, SettingError> {
        let images = match env.string("IMAGE_PROVIDER", "openai").as_str() {
            "openai" => ImageBackend::OpenAi(Box::new(openai_settings(env)?)),
            "placeholder" => ImageBackend::Placeholder,
            other => {
                return Err(SettingError::new(
                    "IMAGE_PROVIDER",
                    format!("cannot use {other:?}: expected openai or placeholder"),
                ));
            }
        };
        let speech = match env
            .string(
                "SPEECH_PROVIDER",
                match images {
                    ImageBackend::OpenAi(_) => "openai",
                    ImageBackend::Placeholder => "none",
                },
            )
            .as_str()
        {
            "openai" => match &images {
                ImageBackend::OpenAi(settings) => SpeechBackend::OpenAi(settings.clone()),
                ImageBackend::Placeholder => SpeechBackend::OpenAi(Box::new(openai_settings(env)?)),
            },
            "none" => SpeechBackend::None,
            other => {
                return Err(SettingError::new(
                    "SPEECH_PROVIDER",
                    format!("cannot use {other:?}: expected openai or none"),
                ));
            }
        };
        let storage = StorageBackend::from_env(env)?;
        let ledger = LedgerBackend::from_env(env)?;
        // 0 with LEDGER=none: read as the seeded styles read it.
        let points_cost = dynamo_store::golden_vcr::points_cost_from_env(env)?;
        if ledger == LedgerBackend::Twitch && points_cost == 0 {
            return Err(SettingError::new(
                "POINTS_COST",
                "is 0 with LEDGER=twitch: redemptions would never be settled (use LEDGER=none for free images)",
            ));
        }
        let twitch_intake = env.flag("TWITCH_INTAKE", false)?;
        let twitch = if twitch_intake || ledger == LedgerBackend::Twitch {
            Some(dynamo_twitch::TwitchSettings::from_env(env)?)
        } else {
            None
        };
        let auth_shared_secret = env.secret("AUTH_SHARED_SECRET");
        if ledger == LedgerBackend::GoldenVcr && points_cost > 0 && auth_shared_secret.is_none() {
            return Err(SettingError::new(
                "AUTH_SHARED_SECRET",
                "is required to charge points (or set POINTS_COST=0 to make images free)",
            ));
        }
        let prefetch: u16 = env.parse("CONSUMER_PREFETCH", 4)?;
        if prefetch == 0 {
            return Err(SettingError::new("CONSUMER_PREFETCH", "must be at least 1"));
        }
        let delivery_limit: u32 = env.parse("DELIVERY_LIMIT", 10)?;
        if delivery_limit == 0 {
            return Err(SettingError::new("DELIVERY_LIMIT", "must be at least 1"));
        }
        let is_openai = matches!(images, ImageBackend::OpenAi(_));
        Ok(Self {
            database: DatabaseSettings::from_env(env)?,
            broker: BrokerSettings::from_env(env)?,
            topology: Topology::from_env(env)?,
            auth_url: env.http_url("AUTH_URL", "http://localhost:5002")?,
            auth_shared_secret,
            ledger_url: env.http_url("LEDGER_URL", "http://localhost:5003")?,
            points_cost,
            ledger,
            twitch,
            twitch_intake,
            moderation: env.flag("MODERATION", is_openai)? && is_openai,
            images,
            speech,
            storage,
            prompts: PromptTemplates::from_env(env)?,
            discord_ghosts_webhook: env.optional_http_url("DISCORD_GHOSTS_WEBHOOK_URL")?,
            discord_friends_webhook: env.optional_http_url("DISCORD_FRIENDS_WEBHOOK_URL")?,
            discord_styles_webhook: env.optional_http_url("DISCORD_STYLES_WEBHOOK_URL")?,
            prefetch,
            delivery_limit,
            shutdown_grace: env.duration("SHUTDOWN_GRACE", Duration::from_secs(150))?,
            retry: RetryPolicy::from_env(env)?,
            rates: RateSettings::from_env(env)?,
            lease_ttl: lease_ttl(env)?,
            holds: HoldPolicy::from_env(env)?,
            viewer_max_in_flight: env.parse("VIEWER_MAX_IN_FLIGHT", 2)?,
            approval: ApprovalPolicy::from_env(env)?,
            health_addr: match env.string("CONSUMER_HEALTH_ADDR", "0.0.0.0:8081").as_str() {
                "off" => None,
                _ => Some(env.parse(
                    "CONSUMER_HEALTH_ADDR",
                    SocketAddr::from(([0, 0, 0, 0], 8081)),
                )?),
            },
        })
    }
}

/// No shutdown announced on 2026-12-01 for any of them. The 2.6 family draws
/// transparent backgrounds itself, and sunburst is OpenAI's named replacement
/// for the models retired that day; flare is the other 2.6 model; gpt-image-2
/// is the oldest model still current, and friends fall back to chroma keying
/// on it (README: "Choosing models").
pub const DEFAULT_IMAGE_MODEL: &str = "gpt-image-2.6-sunburst,gpt-image-2.6-flare,gpt-image-2";
/// gpt-6-luna is the named replacement for gpt-4.1-mini and gpt-4o-mini;
/// those two stay until their shutdown on 2027-01-14 as a fallback.
/// gpt-5-mini is left out: it shuts down on 2026-12-11.
pub const DEFAULT_CHAT_MODEL: &str = "gpt-6-luna,gpt-4.1-mini";
/// OpenAI's speech models: all three shut down on 2027-01-06 with no
/// successor on `/audio/speech` (its replacement, gpt-realtime-2.1-mini, is a
/// Realtime API model). After that date, point `OPENAI_BASE_URL` at a
/// compatible server or set `SPEECH_PROVIDER=none`.
pub const DEFAULT_SPEECH_MODELS: &str = "gpt-4o-mini-tts,tts-1";
/// A voice every OpenAI speech model has.
pub const DEFAULT_SPEECH_VOICE: &str = "alloy";
/// What to tell an operator whose image models are all gone (SPEC §3:
/// OpenAI's recommended replacement).
pub const REPLACEMENT_IMAGE_MODEL: &str = "gpt-image-2.6-sunburst";
/// The same for chat models.
pub const REPLACEMENT_CHAT_MODEL: &str = "gpt-6-luna";

fn lease_ttl(env: &Env) -> Result<Duration, SettingError> {
    let ttl = env.duration("LEASE_TTL", Duration::from_secs(30))?;
    if ttl < Duration::from_secs(1) {
        return Err(SettingError::new("LEASE_TTL", "must be at least 1s"));
    }
    Ok(ttl)
}

fn openai_settings(env: &Env) -> Result<OpenAiSettings, SettingError> {
    let base_url = env.http_url("OPENAI_BASE_URL", OPENAI_API)?;
    // Local OpenAI-compatible servers (sd-server, LocalAI, Ollama) take no key.
    let api_key = match env.secret("OPENAI_API_KEY") {
        Some(key) => key,
        None if !is_openai(&base_url) => SecretString::from(""),
        None => {
            return Err(SettingError::new(
                "OPENAI_API_KEY",
                "is required with IMAGE_PROVIDER=openai at OpenAI (or set IMAGE_PROVIDER=placeholder to draw images locally)",
            ));
        }
    };
    Ok(OpenAiSettings {
        api_key,
        base_url,
        prices: ModelPrices::parse(&env.string("OPENAI_IMAGE_PRICES", ""))
            .map_err(|e| SettingError::new("OPENAI_IMAGE_PRICES", e))?,
        image_models: model_chain("OPENAI_IMAGE_MODEL", env, DEFAULT_IMAGE_MODEL)?,
        chat_models: model_chain("OPENAI_CHAT_MODEL", env, DEFAULT_CHAT_MODEL)?,
        parameters: ModelParameters::parse(&env.string("OPENAI_MODEL_PARAMETERS", ""))
            .map_err(|e| SettingError::new("OPENAI_MODEL_PARAMETERS", e))?,
        moderation_model: env.string("OPENAI_MODERATION_MODEL", "omni-moderation-latest"),
        image_quality: env.optional_string("OPENAI_IMAGE_QUALITY"),
        timeout: env.duration("OPENAI_TIMEOUT", Duration::from_secs(150))?,
        max_download_bytes: env.parse("OPENAI_MAX_DOWNLOAD_BYTES", 20 * 1024 * 1024)?,
        download_hosts: env
            .string("OPENAI_DOWNLOAD_HOSTS", "")
            .split(',')
            .map(str::trim)
            .filter(|host| !host.is_empty())
            .map(str::to_owned)
            .collect(),
        speech: speech_settings(env)?,
    })
}

/// `OPENAI_SPEECH_*` (issue 30). Defaults from OpenAI's API reference:
/// `gpt-4o-mini-tts` first (it takes `instructions`), `tts-1` behind it;
/// `alloy`, a voice every speech model has; `mp3`, the API's default format.
fn speech_settings(env: &Env) -> Result<SpeechSettings, SettingError> {
    let format = env.string("OPENAI_SPEECH_FORMAT", "mp3");
    if !SPEECH_FORMATS.contains(&format.as_str()) {
        return Err(SettingError::new(
            "OPENAI_SPEECH_FORMAT",
            format!(
                "cannot use {format:?}: expected one of {}",
                SPEECH_FORMATS.join(", ")
            ),
        ));
    }
    let voice = env.string("OPENAI_SPEECH_VOICE", DEFAULT_SPEECH_VOICE);
    if voice.trim().is_empty() {
        return Err(SettingError::new(
            "OPENAI_SPEECH_VOICE",
            "must name a voice",
        ));
    }
    let speed = match env.optional_string("OPENAI_SPEECH_SPEED") {
        None => None,
        Some(text) => Some(
            text.trim()
                .parse::<f32>()
                .ok()
                .filter(|speed| (0.25..=4.0).contains(speed))
                .ok_or_else(|| {
                    SettingError::new("OPENAI_SPEECH_SPEED", "must be a number from 0.25 to 4.0")
                })?,
        ),
    };
    Ok(SpeechSettings {
        models: model_chain("OPENAI_SPEECH_MODELS", env, DEFAULT_SPEECH_MODELS)?,
        voice,
        format,
        speed,
        instructions: env.optional_string("OPENAI_SPEECH_INSTRUCTIONS"),
        timeout: env.duration("OPENAI_SPEECH_TIMEOUT", Duration::from_secs(20))?,
    })
}

const OPENAI_API: &str = "https://api.openai.com/v1";

/// A comma-separated model chain; the variable comes first so that the
/// deploy-file test finds it as it finds every other setting.
fn model_chain(
    variable: &'static str,
    env: &Env,
    default: &str,
) -> Result<ModelChain, SettingError> {
    ModelChain::parse(variable, &env.string(variable, default))
        .map_err(|e| SettingError::new(variable, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> Env {
        Env::from_pairs([
            ("IMAGE_PROVIDER", "placeholder"),
            ("STORAGE_BACKEND", "filesystem"),
            ("POINTS_COST", "0"),
        ])
    }

    #[test]
    fn placeholder_and_filesystem_need_nothing_else() {
        let config = ConsumerConfig::from_env(&minimal()).unwrap();
        assert!(matches!(config.images, ImageBackend::Placeholder));
        assert!(!config.moderation, "moderation needs OpenAI");
        assert_eq!(config.prefetch, 4);
    }

    #[test]
    fn openai_without_a_key_names_the_variable() {
        let error =
            ConsumerConfig::from_env(&minimal().with("IMAGE_PROVIDER", "openai")).unwrap_err();
        assert_eq!(error.name, "OPENAI_API_KEY");
    }

    #[test]
    fn a_local_server_needs_no_key() {
        let env = minimal()
            .with("IMAGE_PROVIDER", "openai")
            .with("OPENAI_BASE_URL", "http://127.0.0.1:1234/v1")
            .with("OPENAI_API_KEY", "");
        let config = ConsumerConfig::from_env(&env).unwrap();
        assert!(matches!(config.images, ImageBackend::OpenAi(_)));
        assert!(is_openai("https://api.openai.com/v1"));
        assert!(is_openai("https://API.openai.com:443/v1"));
        assert!(!is_openai("https://api.openai.com.example/v1"));
        let bad = minimal()
            .with("IMAGE_PROVIDER", "openai")
            .with("OPENAI_BASE_URL", "http://127.0.0.1:1234/v1")
            .with("OPENAI_IMAGE_PRICES", "sd-turbo=free");
        assert_eq!(
            ConsumerConfig::from_env(&bad).unwrap_err().name,
            "OPENAI_IMAGE_PRICES"
        );
        let budget = minimal().with("OPENAI_DAILY_BUDGET_USD", "-3");
        assert_eq!(
            ConsumerConfig::from_env(&budget).unwrap_err().name,
            "OPENAI_DAILY_BUDGET_USD"
        );
    }

    #[test]
    fn charging_points_needs_the_auth_secret() {
        let error = ConsumerConfig::from_env(&minimal().with("POINTS_COST", "200")).unwrap_err();
        assert_eq!(error.name, "AUTH_SHARED_SECRET");
    }

    #[test]
    fn s3_needs_its_bucket() {
        let error = ConsumerConfig::from_env(&minimal().with("STORAGE_BACKEND", "s3")).unwrap_err();
        assert_eq!(error.name, "SPACES_BUCKET_NAME");
    }

    #[test]
    fn model_settings_are_chains_in_order() {
        let env = minimal()
            .with("IMAGE_PROVIDER", "openai")
            .with("OPENAI_API_KEY", "sk")
            .with("OPENAI_IMAGE_MODEL", "gpt-image-2, gpt-image-2.6-flare");
        let ImageBackend::OpenAi(settings) = ConsumerConfig::from_env(&env).unwrap().images else {
            panic!("openai expected");
        };
        assert_eq!(
            settings.image_models.models,
            ["gpt-image-2", "gpt-image-2.6-flare"]
        );
        assert_eq!(settings.chat_models.models[0], "gpt-6-luna");
        let error =
            ConsumerConfig::from_env(&env.with("OPENAI_MODEL_PARAMETERS", "x=style")).unwrap_err();
        assert_eq!(error.name, "OPENAI_MODEL_PARAMETERS");
    }

    #[test]
    fn unknown_provider_is_refused() {
        let error =
            ConsumerConfig::from_env(&minimal().with("IMAGE_PROVIDER", "dalle")).unwrap_err();
        assert_eq!(error.name, "IMAGE_PROVIDER");
    }

    #[test]
    fn secrets_are_redacted_in_debug_output() {
        let env = minimal()
            .with("IMAGE_PROVIDER", "openai")
            .with("OPENAI_API_KEY", "sk-very-secret-key")
            .with("AUTH_SHARED_SECRET", "auth-very-secret")
            .with("STORAGE_BACKEND", "s3")
            .with("SPACES_BUCKET_NAME", "b")
            .with("SPACES_ACCESS_KEY_ID", "AKIA")
            .with("SPACES_SECRET_KEY", "spaces-very-secret")
            .with("PGPASSWORD", "pg-very-secret")
            .with("RMQ_PASSWORD", "mq-very-secret");
        let rendered = format!("{:?}", ConsumerConfig::from_env(&env).unwrap());
        assert!(!rendered.contains("very-secret"), "{rendered}");
        assert!(rendered.contains("REDACTED"), "{rendered}");
    }
}
