//! Domain types decode themselves from the text columns they are stored in, so rows map onto
//! structs with `#[derive(sqlx::FromRow)]`: a value that does not parse is a decode error naming
//! the type (a bad row is an error, not a panic), and no query maps columns by hand.

use crate::analytics::entity::{ActivityType, DealStatus};
use crate::domain::{
    CallId, CallStatus, ChannelMap, Direction, JobId, JobState, Language, ManagerId, Role, TokenId,
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
    ManagerId,
    CallStatus,
    JobState,
    Role,
    Direction,
    Language,
    ChannelMap,
    ActivityType,
    DealStatus,
);
