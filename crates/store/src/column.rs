//! Text columns read as enums. The table keeps names under a CHECK (see the
//! migrations); the checked queries name the enum as the column's type
//! (`state AS "state: RequestState"`), and these impls decode the name.
//! Parameters are bound as `as_str()`, which the macros check against the
//! column's text type.

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef, Postgres};

/// `sqlx::Type` and `sqlx::Decode` for a type read from a text column by a
/// parse function returning `Result<Self, E>` where `E: Error`.
macro_rules! text_column {
    ($type:ty, $parse:expr) => {
        impl sqlx::Type<Postgres> for $type {
            fn type_info() -> PgTypeInfo {
                <&str as sqlx::Type<Postgres>>::type_info()
            }

            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as sqlx::Type<Postgres>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, Postgres> for $type {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let raw = <&str as sqlx::Decode<Postgres>>::decode(value)?;
                Ok($parse(raw)?)
            }
        }
    };
}

text_column!(crate::RequestState, str::parse::<crate::RequestState>);
text_column!(crate::requests::StateColumn, |raw: &str| raw
    .parse::<crate::RequestState>()
    .map(crate::requests::StateColumn));
text_column!(crate::Step, |raw: &str| crate::Step::parse(raw)
    .ok_or_else(|| format!("unknown step {raw:?}")));
text_column!(crate::requests::StyleColumn, |raw: &str| {
    dynamo_wire::StyleId::parse(raw).map(crate::requests::StyleColumn)
});
text_column!(crate::styles::ColorInputColumn, |raw: &str| {
    dynamo_wire::ColorInput::parse(raw)
        .map(crate::styles::ColorInputColumn)
        .ok_or_else(|| format!("unknown colour input {raw:?}"))
});
text_column!(crate::styles::OutputColumn, |raw: &str| {
    dynamo_wire::Output::parse(raw)
        .map(crate::styles::OutputColumn)
        .ok_or_else(|| format!("unknown output {raw:?}"))
});
