//! Schemas of what clients send, built from the constants the checks use
//! (the wire crate's styles, colours and lengths, the store's states), so
//! the OpenAPI document states every constraint the server enforces and
//! cannot drift from it.

use dynamo_store::RequestState;
use dynamo_wire::{Color, Style, Subject};
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, Type,
};

/// One line of text (no control characters, which PostgreSQL's text
/// cannot all hold) with at least one character that is not whitespace.
const NOT_BLANK: &str = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";

fn string_enum(names: impl IntoIterator<Item = &'static str>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
}

fn text(max_chars: usize, pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(max_chars))
        .pattern(Some(pattern))
}

/// `state`: the request states.
pub fn state_names() -> Schema {
    string_enum(RequestState::ALL.map(RequestState::as_str)).into()
}

/// A list of request states.
pub fn state_list() -> Schema {
    ArrayBuilder::new()
        .items(string_enum(RequestState::ALL.map(RequestState::as_str)))
        .into()
}

fn int64() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
}

fn viewer() -> ObjectBuilder {
    let field = || text(dynamo_wire::MAX_TWITCH_FIELD_CHARS, NOT_BLANK).min_length(Some(1));
    ObjectBuilder::new()
        .property("twitch_user_id", field())
        .property("twitch_display_name", field())
        .required("twitch_user_id")
        .required("twitch_display_name")
}

fn broadcast_state() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .description(Some("where on the stream; every field optional"))
        .property("broadcast_id", int64())
        .property(
            "screening_id",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
        )
        .property("tape_id", int64())
}

fn inputs(style: Style) -> ObjectBuilder {
    let inputs = ObjectBuilder::new()
        .property("subject", subject())
        .required("subject");
    match style {
        Style::Ghost => inputs,
        Style::Friend => inputs.property("color", color()).required("color"),
    }
}

/// The body of `POST /requests`, one shape per style.
pub fn enqueue_body() -> Schema {
    let variant = |style: Style| {
        ObjectBuilder::new()
            .property("viewer", viewer())
            .property("style", string_enum([style.as_str()]))
            .property("inputs", inputs(style))
            .property("state", broadcast_state())
            .property(
                "free_of_charge",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .description(Some("take no points for this request")),
            )
            .property(
                "bypass_rules",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .description(Some(
                        "the content rules do not apply to this request (recorded as `bypassed`)",
                    )),
            )
            .required("viewer")
            .required("style")
            .required("inputs")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
    };
    OneOfBuilder::new()
        .item(variant(Style::Ghost))
        .item(variant(Style::Friend))
        .into()
}

/// The body schema of a type whose schema is one of the functions above.
macro_rules! schema_from {
    ($type:ty, $schema:path) => {
        impl utoipa::PartialSchema for $type {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema().into()
            }
        }
        impl utoipa::ToSchema for $type {}
    };
}
pub(crate) use schema_from;

/// A style id (SPEC §8): a lowercase slug.
const STYLE_ID: &str = "^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$";

/// One line of text, possibly empty.
const ONE_LINE: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";

/// `style`: any style id (ghost, friend, or the streamer's own).
pub fn style_names() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(STYLE_ID))
        .description(Some(
            "a style id: ghost, friend or one of the streamer's own",
        ))
        .into()
}

/// A prompt template: `{subject}` once at least, and only the placeholders
/// `placeholders` (names without braces), as `check_template` takes it.
fn template(placeholders: &[&str]) -> ObjectBuilder {
    let piece = format!(
        r"(?:[^{{\x00-\x1F\x7F-\x9F]|\{{(?:{})\}})",
        placeholders.join("|")
    );
    let pattern = format!(r"^{piece}*\{{subject\}}{piece}*$");
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(dynamo_wire::MAX_TEMPLATE_CHARS))
        .pattern(Some(pattern))
}

fn count(minimum: u32, nullable: bool) -> ObjectBuilder {
    let kind = if nullable {
        SchemaType::from_iter([Type::Integer, Type::Null])
    } else {
        SchemaType::Type(Type::Integer)
    };
    ObjectBuilder::new()
        .schema_type(kind)
        .minimum(Some(minimum))
        .maximum(Some(dynamo_wire::MAX_COUNT))
}

/// A string among `names`, or null.
fn nullable_enum(names: &[&str]) -> ObjectBuilder {
    let mut values: Vec<serde_json::Value> = names.iter().map(|n| (*n).into()).collect();
    values.push(serde_json::Value::Null);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(values))
}

fn reward() -> ObjectBuilder {
    ObjectBuilder::new()
        .property(
            "title",
            text(dynamo_wire::MAX_REWARD_TITLE_CHARS, NOT_BLANK).min_length(Some(1)),
        )
        .property(
            "prompt",
            text(dynamo_wire::MAX_REWARD_PROMPT_CHARS, ONE_LINE)
                .description(Some("what the viewer is asked to type")),
        )
        .property("cost", count(1, false).description(Some("channel points")))
        .property("cooldown_seconds", count(1, true))
        .property("max_per_stream", count(1, true))
        .property("max_per_user_per_stream", count(1, true))
        .required("title")
        .required("prompt")
        .required("cost")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

fn on_air() -> ObjectBuilder {
    let sound = text(dynamo_wire::MAX_SOUND_CHARS, NOT_BLANK)
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]));
    ObjectBuilder::new()
        .property(
            "duration_ms",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1000))
                .maximum(Some(60_000)),
        )
        .property("sound", sound)
        .property(
            "speak_caption",
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .description(Some("read the alert's caption aloud before air (issue 30)")),
        )
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

/// A style definition (SPEC §8) as `POST /styles` takes it and every
/// answer shows it; `with_id: false` for `PUT /styles/{style}`, whose path
/// names it. One shape per kind of colour input, as the placeholders a
/// template may use depend on it.
fn definition(with_id: bool) -> Schema {
    let variant = |colors: &[&'static str], placeholders: &[&str]| {
        let mut object = ObjectBuilder::new();
        if with_id {
            object = object.property("id", text(32, STYLE_ID)).required("id");
        }
        object = object
            .property(
                "display_name",
                text(dynamo_wire::MAX_DISPLAY_NAME_CHARS, NOT_BLANK).min_length(Some(1)),
            )
            .property("color", string_enum(colors.iter().copied()))
            .property("prompt_template", template(placeholders))
            .property("output", string_enum(["photo", "cutout"]))
            .property(
                "image_quality",
                nullable_enum(&dynamo_wire::IMAGE_QUALITIES),
            )
            .property("image_size", nullable_enum(&dynamo_wire::IMAGE_SIZES))
            .property(
                "generate_name",
                ObjectBuilder::new().schema_type(Type::Boolean),
            )
            .property("points_cost", count(0, false))
            .property("reward", reward())
            .property("on_air", on_air())
            .property("enabled", ObjectBuilder::new().schema_type(Type::Boolean))
            .required("display_name")
            .required("prompt_template")
            .required("output")
            .required("points_cost")
            .required("reward")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        if colors.contains(&"none") {
            object
        } else {
            object.required("color")
        }
    };
    let every = every_placeholder();
    OneOfBuilder::new()
        .item(variant(&["none"], &["subject"]))
        .item(variant(&["optional", "required"], &every))
        .into()
}

/// `sample.color` / a try's `color`: one of the 13 colours.
fn color() -> ObjectBuilder {
    string_enum(Color::ALL.map(Color::name))
}

fn subject() -> ObjectBuilder {
    text(Subject::MAX_CHARS, NOT_BLANK).min_length(Some(1))
}

/// The placeholders a template may use when its style takes a colour.
fn every_placeholder() -> Vec<&'static str> {
    dynamo_wire::PLACEHOLDERS
        .iter()
        .chain([&dynamo_wire::LEGACY_COMPLEMENT])
        .map(|p| p.trim_matches(|c| c == '{' || c == '}'))
        .collect()
}

/// The body of `POST /style-preview`: a template as a definition has it
/// (one shape per kind of colour input) and a sample to render it for.
pub fn style_preview_body() -> Schema {
    // The sample's colour as the style's colour input has it: none (no
    // colour), optional, or required.
    let variant = |input: &'static str, placeholders: &[&str]| {
        let mut sample = ObjectBuilder::new()
            .property("subject", subject())
            .required("subject")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        if input != "none" {
            sample = sample.property("color", color());
        }
        if input == "required" {
            sample = sample.required("color");
        }
        let object = ObjectBuilder::new()
            .property("prompt_template", template(placeholders))
            .property("color", string_enum([input]))
            .property("sample", sample)
            .required("prompt_template")
            .required("sample")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        if input == "none" {
            object
        } else {
            object.required("color")
        }
    };
    let every = every_placeholder();
    OneOfBuilder::new()
        .item(variant("none", &["subject"]))
        .item(variant("optional", &every))
        .item(variant("required", &every))
        .into()
}

/// The body of `POST /styles/{style}/try`.
pub fn try_body() -> Schema {
    ObjectBuilder::new()
        .property("subject", subject())
        .property("color", color())
        .required("subject")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

/// The body of `POST /styles`.
pub fn style_definition() -> Schema {
    definition(true)
}

/// The body of `PUT /styles/{style}`: the definition; its id is the path's.
pub fn style_definition_without_id() -> Schema {
    definition(false)
}
