//! The styles requests may name (migration 0020, SPEC §8): read, written and
//! seeded here; every change announces itself on [`STYLES_CHANNEL`].

use crate::requests::StyleColumn;
use crate::{Store, StoreError};
use chrono::{DateTime, Utc};
use dynamo_wire::{ColorInput, OnAirSettings, Output, RewardSettings, StyleDefinition, StyleId};

/// The PostgreSQL channel a style's change is announced on (payload: its id).
pub const STYLES_CHANNEL: &str = "dynamo_styles";

/// A style as stored: its definition and what dynamo keeps beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStyle {
    pub definition: StyleDefinition,
    /// The Twitch reward made for it (`dynamoctl twitch setup`, or
    /// `POST /styles/{style}/reward`).
    pub reward_id: Option<String>,
    /// Where its reward stands (migration 0026).
    pub reward_status: RewardStatus,
    /// Why Twitch refused it, when `reward_status` is `Failed`.
    pub reward_error: Option<String>,
    /// The reward as last sent to Twitch (see [`Store::set_style_reward_state`]).
    pub reward_synced: Option<String>,
    /// A seeded style still following PROMPT_* and POINTS_COST.
    pub follows_settings: bool,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
}

/// Where a style's Twitch reward stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RewardStatus {
    /// No reward made (or asked for).
    None,
    /// Asked for; the consumer running the Twitch intake makes it.
    Requested,
    /// On Twitch, open to viewers.
    Published,
    /// On Twitch, paused: the style is disabled.
    Paused,
    /// Twitch refused it (the reason is kept beside it).
    Failed,
}

impl RewardStatus {
    pub const ALL: [RewardStatus; 5] = [
        RewardStatus::None,
        RewardStatus::Requested,
        RewardStatus::Published,
        RewardStatus::Paused,
        RewardStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RewardStatus::None => "none",
            RewardStatus::Requested => "requested",
            RewardStatus::Published => "published",
            RewardStatus::Paused => "paused",
            RewardStatus::Failed => "failed",
        }
    }

    /// The column's CHECK admits only these; anything else reads as none.
    fn from_column(raw: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == raw)
            .unwrap_or(RewardStatus::None)
    }
}

/// What became of a style's reward, as the reconciler writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewardState<'a> {
    pub reward_id: Option<&'a str>,
    pub status: RewardStatus,
    pub error: Option<&'a str>,
    /// The reward's fields as sent (`None` keeps what was stored).
    pub synced: Option<&'a str>,
}

/// How a write went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    /// The stored style already was this definition: nothing was written.
    Unchanged,
}

/// Why a style could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    #[error("no style {0}")]
    NotFound(String),
    #[error("{count} requests of style {style} are in progress")]
    InUse { style: String, count: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Column adapters: the table holds text, the code holds enums.
pub(crate) struct ColorInputColumn(pub(crate) ColorInput);
pub(crate) struct OutputColumn(pub(crate) Output);

struct StyleRow {
    id: StyleColumn,
    display_name: String,
    color_input: ColorInputColumn,
    prompt_template: String,
    output: OutputColumn,
    image_quality: Option<String>,
    image_size: Option<String>,
    generate_name: bool,
    points_cost: i32,
    reward_title: String,
    reward_prompt: String,
    reward_cost: i32,
    reward_cooldown_seconds: Option<i32>,
    reward_max_per_stream: Option<i32>,
    reward_max_per_user_per_stream: Option<i32>,
    reward_id: Option<String>,
    reward_status: String,
    reward_error: Option<String>,
    reward_synced: Option<String>,
    on_air_duration_ms: i32,
    sound: Option<String>,
    speak_caption: bool,
    enabled: bool,
    follows_settings: bool,
    version: i64,
    updated_at: DateTime<Utc>,
}

/// The one checked SELECT of [`StyleRow`]s, followed by the caller's
/// condition (a string literal) and its arguments.
macro_rules! select_styles {
    ($condition:tt $(, $arg:expr)* $(,)?) => {
        sqlx::query_as!(
            StyleRow,
            r#"SELECT id AS "id: StyleColumn", display_name,
                 color_input AS "color_input: ColorInputColumn", prompt_template,
                 output AS "output: OutputColumn",
                 image_quality, image_size, generate_name, points_cost, reward_title,
                 reward_prompt, reward_cost, reward_cooldown_seconds, reward_max_per_stream,
                 reward_max_per_user_per_stream, reward_id, reward_status, reward_error,
                 reward_synced, on_air_duration_ms, sound, speak_caption, enabled,
                 follows_settings, version, updated_at
             FROM dynamo.styles "#
                + $condition
            $(, $arg)*
        )
    };
}

/// A count or limit as the table holds it (an `integer` under a CHECK).
fn unsigned(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

fn signed(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

impl From<StyleRow> for StoredStyle {
    fn from(row: StyleRow) -> Self {
        let definition = StyleDefinition {
            id: row.id.0,
            display_name: row.display_name,
            color: row.color_input.0,
            prompt_template: row.prompt_template,
            output: row.output.0,
            image_quality: row.image_quality,
            image_size: row.image_size,
            generate_name: row.generate_name,
            points_cost: unsigned(row.points_cost),
            reward: RewardSettings {
                title: row.reward_title,
                prompt: row.reward_prompt,
                cost: unsigned(row.reward_cost),
                cooldown_seconds: row.reward_cooldown_seconds.map(unsigned),
                max_per_stream: row.reward_max_per_stream.map(unsigned),
                max_per_user_per_stream: row.reward_max_per_user_per_stream.map(unsigned),
            },
            on_air: OnAirSettings {
                duration_ms: unsigned(row.on_air_duration_ms),
                sound: row.sound,
                speak_caption: row.speak_caption,
            },
            enabled: row.enabled,
        };
        Self {
            definition,
            reward_id: row.reward_id,
            reward_status: RewardStatus::from_column(&row.reward_status),
            reward_error: row.reward_error,
            reward_synced: row.reward_synced,
            follows_settings: row.follows_settings,
            version: row.version,
            updated_at: row.updated_at,
        }
    }
}

impl Store {
    /// Every style, by id.
    pub async fn styles(&self) -> Result<Vec<StoredStyle>, StoreError> {
        let rows = select_styles!("ORDER BY id").fetch_all(self.pool()).await?;
        Ok(rows.into_iter().map(StoredStyle::from).collect())
    }

    pub async fn style(&self, id: &StyleId) -> Result<Option<StoredStyle>, StoreError> {
        let row = select_styles!("WHERE id = $1", id.as_str())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(StoredStyle::from))
    }

    /// A fingerprint of the whole table (count and versions): a consumer
    /// whose copy has the same one is current.
    pub async fn styles_version(&self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query!(
            r#"SELECT count(*) AS "count!", coalesce(sum(version), 0)::bigint AS "versions!"
               FROM dynamo.styles"#
        )
        .fetch_one(self.pool())
        .await?;
        Ok((row.count, row.versions))
    }

    /// Creates or replaces a style's definition (the API). Writing the
    /// definition a style already has changes nothing (not its version, nor
    /// a seeded style's following of the settings); any other write ends it.
    pub async fn put_style(&self, style: &StyleDefinition) -> Result<Written, StoreError> {
        write_style(self.pool(), style, Mode::Put).await
    }

    /// Writes every definition of a styles file in one transaction
    /// (`dynamoctl styles apply`): all or nothing, each as [`Store::put_style`]
    /// would. With `prune`, the enabled styles the file does not name are
    /// disabled (their ids returned); otherwise they are left alone.
    pub async fn apply_styles(
        &self,
        styles: &[StyleDefinition],
        prune: bool,
    ) -> Result<(Vec<Written>, Vec<StyleId>), StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut written = Vec::with_capacity(styles.len());
        for style in styles {
            written.push(write_style(&mut *tx, style, Mode::Put).await?);
        }
        let mut pruned = Vec::new();
        if prune {
            let named: Vec<String> = styles.iter().map(|s| s.id.to_string()).collect();
            pruned = sqlx::query_scalar!(
                r#"UPDATE dynamo.styles SET enabled = false, follows_settings = false,
                       version = version + 1, updated_at = now()
                   WHERE enabled AND id <> ALL($1::text[])
                   RETURNING id AS "id: StyleColumn""#,
                &named,
            )
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|column| column.0)
            .collect();
            pruned.sort();
        }
        tx.commit().await?;
        Ok((written, pruned))
    }

    /// Seeds a Golden VCR style from the settings: created if missing, and
    /// brought in line with the settings while it still follows them.
    pub async fn seed_style(&self, style: &StyleDefinition) -> Result<Written, StoreError> {
        write_style(self.pool(), style, Mode::Seed).await
    }

    /// Seeds a Golden VCR style only if it is missing (dynamo-server, which
    /// leaves keeping it in line with the settings to the consumers).
    pub async fn seed_missing_style(&self, style: &StyleDefinition) -> Result<Written, StoreError> {
        write_style(self.pool(), style, Mode::SeedIfMissing).await
    }

    /// Enables or disables a style; false when there is no such style.
    pub async fn set_style_enabled(&self, id: &StyleId, enabled: bool) -> Result<bool, StoreError> {
        let done = sqlx::query!(
            "UPDATE dynamo.styles SET enabled = $2, follows_settings = false,
                 version = version + 1, updated_at = now()
             WHERE id = $1",
            id.as_str(),
            enabled,
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records what became of a style's Twitch reward; false when nothing
    /// changed (or there is no such style). A change bumps the version, so
    /// every consumer's copy (and its reward map) is refreshed.
    pub async fn set_style_reward_state(
        &self,
        id: &StyleId,
        state: RewardState<'_>,
    ) -> Result<bool, StoreError> {
        // The reason is shown on the page: capped like the column.
        let error: Option<String> = state.error.map(|e| e.chars().take(500).collect());
        let done = sqlx::query!(
            "UPDATE dynamo.styles SET reward_id = $2, reward_status = $3, reward_error = $4,
                 reward_synced = coalesce($5, reward_synced),
                 version = version + 1, updated_at = now()
             WHERE id = $1
               AND (reward_id, reward_status, reward_error, coalesce($5, reward_synced))
                   IS DISTINCT FROM ($2, $3, $4, reward_synced)",
            id.as_str(),
            state.reward_id,
            state.status.as_str(),
            error,
            state.synced,
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Asks for a style's reward to be published (`POST /styles/{style}/reward`):
    /// the consumer running the Twitch intake hears of it (the styles
    /// notification) and makes it. False when there is no such style.
    pub async fn request_style_reward(&self, id: &StyleId) -> Result<bool, StoreError> {
        let done = sqlx::query!(
            "UPDATE dynamo.styles SET reward_status = 'requested', reward_error = NULL,
                 version = version + 1, updated_at = now()
             WHERE id = $1",
            id.as_str(),
        )
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a style, refused while requests of it are in progress (they
    /// carry their settings, but the page and the overlay still name it).
    /// One statement, so a request recorded meanwhile is seen.
    pub async fn delete_style(&self, id: &StyleId) -> Result<(), DeleteError> {
        let row = sqlx::query!(
            r#"WITH busy AS (SELECT count(*) AS n FROM dynamo.image_request
                             WHERE style = $1 AND finished_at IS NULL),
                    gone AS (DELETE FROM dynamo.styles WHERE id = $1
                             AND (SELECT n FROM busy) = 0 RETURNING id)
               SELECT (SELECT n FROM busy) AS "busy!",
                      EXISTS (SELECT 1 FROM gone) AS "deleted!",
                      EXISTS (SELECT 1 FROM dynamo.styles WHERE id = $1) AS "exists!""#,
            id.as_str(),
        )
        .fetch_one(self.pool())
        .await
        .map_err(StoreError::from)?;
        match (row.deleted, row.exists, row.busy) {
            (true, _, _) => Ok(()),
            (false, true, count) => Err(DeleteError::InUse {
                style: id.to_string(),
                count,
            }),
            (false, false, _) => Err(DeleteError::NotFound(id.to_string())),
        }
    }
}

/// Who writes a definition, and so what may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The API or a styles file: the definition as given.
    Put,
    /// A consumer's seed: kept in line with the settings while followed.
    Seed,
    /// A server's seed: created if missing, never changed.
    SeedIfMissing,
}

/// The definition exactly as [`write_style`] stores it (the two titles
/// trimmed), so that comparing a file with the table compares like with like.
pub fn stored_form(style: &StyleDefinition) -> StyleDefinition {
    let mut stored = style.clone();
    stored.display_name = stored.display_name.trim().to_owned();
    stored.reward.title = stored.reward.title.trim().to_owned();
    stored
}

async fn write_style<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    style: &StyleDefinition,
    mode: Mode,
) -> Result<Written, StoreError> {
    let s = &stored_form(style);
    let r = &s.reward;
    let seed = mode != Mode::Put;
    let may_update = mode != Mode::SeedIfMissing;
    let row = sqlx::query!(
        r#"INSERT INTO dynamo.styles AS s
             (id, display_name, color_input, prompt_template, output,
              image_quality, image_size, generate_name, points_cost, reward_title,
              reward_prompt, reward_cost, reward_cooldown_seconds, reward_max_per_stream,
              reward_max_per_user_per_stream, on_air_duration_ms, sound, enabled,
              follows_settings, speak_caption)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                   $17, $18, $19, $21)
           ON CONFLICT (id) DO UPDATE SET
               display_name = EXCLUDED.display_name, color_input = EXCLUDED.color_input,
               prompt_template = EXCLUDED.prompt_template, output = EXCLUDED.output,
               image_quality = EXCLUDED.image_quality,
               image_size = EXCLUDED.image_size, generate_name = EXCLUDED.generate_name,
               points_cost = EXCLUDED.points_cost, reward_title = EXCLUDED.reward_title,
               reward_prompt = EXCLUDED.reward_prompt, reward_cost = EXCLUDED.reward_cost,
               reward_cooldown_seconds = EXCLUDED.reward_cooldown_seconds,
               reward_max_per_stream = EXCLUDED.reward_max_per_stream,
               reward_max_per_user_per_stream = EXCLUDED.reward_max_per_user_per_stream,
               on_air_duration_ms = EXCLUDED.on_air_duration_ms, sound = EXCLUDED.sound,
               enabled = EXCLUDED.enabled,
               follows_settings = EXCLUDED.follows_settings,
               speak_caption = EXCLUDED.speak_caption,
               version = s.version + 1, updated_at = now()
           -- A seed only touches a style still following the settings
           -- (and a server's seed none); nobody bumps a version (or
           -- ends a seeded style's following) for a write that changes
           -- nothing of the definition.
           WHERE $20 AND (NOT $19 OR s.follows_settings)
             AND (s.display_name, s.color_input, s.prompt_template, s.output,
                  s.image_quality, s.image_size, s.generate_name,
                  s.points_cost, s.reward_title, s.reward_prompt, s.reward_cost,
                  s.reward_cooldown_seconds, s.reward_max_per_stream,
                  s.reward_max_per_user_per_stream, s.on_air_duration_ms, s.sound,
                  s.enabled, s.speak_caption)
                 IS DISTINCT FROM
                 (EXCLUDED.display_name, EXCLUDED.color_input, EXCLUDED.prompt_template,
                  EXCLUDED.output, EXCLUDED.image_quality,
                  EXCLUDED.image_size, EXCLUDED.generate_name, EXCLUDED.points_cost,
                  EXCLUDED.reward_title, EXCLUDED.reward_prompt, EXCLUDED.reward_cost,
                  EXCLUDED.reward_cooldown_seconds, EXCLUDED.reward_max_per_stream,
                  EXCLUDED.reward_max_per_user_per_stream, EXCLUDED.on_air_duration_ms,
                  EXCLUDED.sound, EXCLUDED.enabled, EXCLUDED.speak_caption)
           RETURNING (xmax = 0) AS "created!""#,
        s.id.as_str(),
        s.display_name,
        s.color.as_str(),
        s.prompt_template,
        s.output.as_str(),
        s.image_quality,
        s.image_size,
        s.generate_name,
        signed(s.points_cost),
        r.title,
        r.prompt,
        signed(r.cost),
        r.cooldown_seconds.map(signed),
        r.max_per_stream.map(signed),
        r.max_per_user_per_stream.map(signed),
        signed(s.on_air.duration_ms),
        s.on_air.sound,
        s.enabled,
        seed,
        may_update,
        s.on_air.speak_caption,
    )
    .fetch_optional(executor)
    .await?;
    Ok(match row {
        Some(row) if row.created => Written::Created,
        Some(_) => Written::Updated,
        None => Written::Unchanged,
    })
}
