//! Schemas of what clients send, built from the constants the checks use
//! (the wire crate's styles, colours and lengths, the store's states), so
//! the OpenAPI document states every constraint the server enforces and
//! cannot drift from it.

use dynamo_store::RequestState;
use dynamo_wire::{Color, Style, Subject};
use utoipa::openapi::schema::SchemaType;
use utoipa::openapi::schema::{
    AdditionalProperties, KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
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

/// `style`: ghost or friend.
pub fn style_names() -> Schema {
    string_enum(Style::ALL.map(Style::as_str)).into()
}

/// `state`: the request states.
pub fn state_names() -> Schema {
    string_enum(RequestState::ALL.map(RequestState::as_str)).into()
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
    let subject = text(Subject::MAX_CHARS, NOT_BLANK).min_length(Some(1));
    let inputs = ObjectBuilder::new()
        .property("subject", subject)
        .required("subject");
    match style {
        Style::Ghost => inputs,
        Style::Friend => inputs
            .property("color", string_enum(Color::ALL.map(Color::name)))
            .required("color"),
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
