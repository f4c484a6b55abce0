//! Domain types decode themselves from the text columns they are stored in, so rows map onto
//! structs with `#[derive(sqlx::FromRow)]`: a value that does not parse is a decode error naming
//! the type (a bad row is an error, not a panic), and no query maps columns by hand.

use crate::analytics::entity::{ActivityType, DealStatus, Entity, PlanMetric};
use crate::domain::{
    CallId, CallStatus, ChannelMap, Direction, JobId, JobState, Language, ManagerId, Role, Speaker,
    TokenId, UserId,
};

macro_rules! text_column {
    ($($t:ty),+ $(,)?) => {$(
        impl sqlx::Type<sqlx::Any> for $t {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <String as sqlx::Type<sqlx::Any>>::type_info()
            }
            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <String as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $t {
            fn decode(
                value: sqlx::any::AnyValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <String as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
                text.parse::<$t>()
                    .map_err(|e| format!("{}: {e}: {text:?}", stringify!($t)).into())
            }
        }
    )+};
}

text_column!(
    CallId,
    JobId,
    TokenId,
    UserId,
    ManagerId,
    CallStatus,
    JobState,
    Role,
    Direction,
    Language,
    ChannelMap,
    Speaker,
    ActivityType,
    DealStatus,
    PlanMetric,
    Entity,
);

// A stored scorecard is its TOML text; a row that no longer parses is a decode error.
impl sqlx::Type<sqlx::Any> for crate::rubric::Rubric {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<sqlx::Any>>::type_info()
    }
    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for crate::rubric::Rubric {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <String as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
        Ok(Self::parse(&text, "stored scorecard")?)
    }
}

/// A JSON document stored as text (a scorecard, a transcript): decoded whole, and a document
/// that no longer parses is a decode error naming the type.
#[derive(Debug)]
pub struct JsonText<T>(pub T);

impl<T> sqlx::Type<sqlx::Any> for JsonText<T> {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <String as sqlx::Type<sqlx::Any>>::type_info()
    }
    fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
        <String as sqlx::Type<sqlx::Any>>::compatible(ty)
    }
}

impl<'r, T: serde::de::DeserializeOwned> sqlx::Decode<'r, sqlx::Any> for JsonText<T> {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<'r, sqlx::Any>>::decode(value)?;
        serde_json::from_str(text)
            .map(JsonText)
            .map_err(|e| format!("{}: {e}", std::any::type_name::<T>()).into())
    }
}

impl From<JsonText<serde_json::Value>> for serde_json::Value {
    fn from(v: JsonText<serde_json::Value>) -> Self {
        v.0
    }
}
