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
    /// The Twitch reward made for it (`dynamoctl twitch setup`).
    pub reward_id: Option<String>,
    /// A seeded style still following PROMPT_* and POINTS_COST.
    pub follows_settings: bool,
    pub version: i64,
    pub updated_at: DateTime<Utc>,
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
                 reward_max_per_user_per_stream, reward_id, on_air_duration_ms, sound, speak_caption, enabled,
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

    /// Creates or replaces a style's definition (the API, `styles apply`).
    /// An edit ends a seeded style's following of the settings. Writing the
    /// definition a style already has changes nothing (not even its version).
    pub async fn put_style(&self, style: &StyleDefinition) -> Result<Written, StoreError> {
        self.write_style(style, false).await
    }

    /// Seeds a Golden VCR style from the settings: created if missing, and
    /// brought in line with the settings while it still follows them.
    pub async fn seed_style(&self, style: &StyleDefinition) -> Result<Written, StoreError> {
        self.write_style(style, true).await
    }

    async fn write_style(&self, s: &StyleDefinition, seed: bool) -> Result<Written, StoreError> {
        let r = &s.reward;
        let row = sqlx::query!(
            r#"INSERT INTO dynamo.styles AS s
                 (id, display_name, color_input, prompt_template, output,
                  image_quality, image_size, generate_name, points_cost, reward_title,
                  reward_prompt, reward_cost, reward_cooldown_seconds, reward_max_per_stream,
                  reward_max_per_user_per_stream, on_air_duration_ms, sound, enabled,
                  follows_settings, speak_caption)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                       $17, $18, $19, $20)
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
               -- A seed only touches a style still following the settings;
               -- nobody bumps a version for a write that changes nothing.
               WHERE (NOT $19 OR s.follows_settings)
                 AND (s.display_name, s.color_input, s.prompt_template, s.output,
                      s.image_quality, s.image_size, s.generate_name,
                      s.points_cost, s.reward_title, s.reward_prompt, s.reward_cost,
                      s.reward_cooldown_seconds, s.reward_max_per_stream,
                      s.reward_max_per_user_per_stream, s.on_air_duration_ms, s.sound,
                      s.enabled, s.follows_settings, s.speak_caption)
                     IS DISTINCT FROM
                     (EXCLUDED.display_name, EXCLUDED.color_input, EXCLUDED.prompt_template,
                      EXCLUDED.output, EXCLUDED.image_quality,
                      EXCLUDED.image_size, EXCLUDED.generate_name, EXCLUDED.points_cost,
                      EXCLUDED.reward_title, EXCLUDED.reward_prompt, EXCLUDED.reward_cost,
                      EXCLUDED.reward_cooldown_seconds, EXCLUDED.reward_max_per_stream,
                      EXCLUDED.reward_max_per_user_per_stream, EXCLUDED.on_air_duration_ms,
                      EXCLUDED.sound, EXCLUDED.enabled, EXCLUDED.follows_settings,
                      EXCLUDED.speak_caption)
               RETURNING (xmax = 0) AS "created!""#,
            s.id.as_str(),
            s.display_name.trim(),
            s.color.as_str(),
            s.prompt_template,
            s.output.as_str(),
            s.image_quality,
            s.image_size,
            s.generate_name,
            signed(s.points_cost),
            r.title.trim(),
            r.prompt,
            signed(r.cost),
            r.cooldown_seconds.map(signed),
            r.max_per_stream.map(signed),
            r.max_per_user_per_stream.map(signed),
            signed(s.on_air.duration_ms),
            s.on_air.sound,
            s.enabled,
            seed,
            s.on_air.speak_caption,
        )
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(row) if row.created => Written::Created,
            Some(_) => Written::Updated,
            None => Written::Unchanged,
        })
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

    /// Records the Twitch reward made for a style.
    pub async fn set_style_reward(
        &self,
        id: &StyleId,
        reward_id: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query!(
            "UPDATE dynamo.styles SET reward_id = $2, version = version + 1, updated_at = now()
             WHERE id = $1 AND reward_id IS DISTINCT FROM $2",
            id.as_str(),
            reward_id,
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
