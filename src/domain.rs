//! Domain types: identifiers and states, parsed and validated once at the edge.
//!
//! Inside the crate, code trusts these types; they are stored as text and converted with
//! `TryFrom<String>` when read back, so a bad value in the database is an error, not a panic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// Error for a value that failed validation; the message is safe to show to a user.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct ParseError(pub String);

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (UUIDv7) identifier.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s)
                    .map(Self)
                    .map_err(|_| ParseError(format!("not a valid {}: {s:?}", stringify!($name))))
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
    };
}

uuid_id!(
    /// Identifies an uploaded call.
    CallId
);
uuid_id!(
    /// Identifies a job in the queue.
    JobId
);
uuid_id!(
    /// Identifies an API token (not the secret itself).
    TokenId
);
uuid_id!(
    /// Identifies a person who signs in to the web app.
    UserId
);

/// A CRM manager identifier (the salesperson a call belongs to).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "m-miller")]
pub struct ManagerId(String);

impl ManagerId {
    /// Parses a manager id: 1-128 characters, no control characters, trimmed.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseError("manager_id must not be empty".into()));
        }
        if s.chars().count() > 128 {
            return Err(ParseError(
                "manager_id is longer than 128 characters".into(),
            ));
        }
        if s.chars().any(char::is_control) {
            return Err(ParseError("manager_id contains control characters".into()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ManagerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl FromStr for ManagerId {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ManagerId {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ManagerId> for String {
    fn from(m: ManagerId) -> Self {
        m.0
    }
}

/// Declares a text-backed enum with serde, `Display`, `FromStr` and `TryFrom<String>`.
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored / wire form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => {
                        let allowed: Vec<&str> = vec![$($text),+];
                        Err(ParseError(format!(
                            "unknown {} {other:?} (expected one of: {})",
                            stringify!($name), allowed.join(", ")
                        )))
                    }
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
    };
}

pub(crate) use text_enum;

text_enum!(
    /// Where a call is in the pipeline; what a user sees.
    CallStatus {
        /// Accepted and waiting for a worker.
        Queued => "queued",
        /// Being decoded and transcribed.
        Transcribing => "transcribing",
        /// Being scored by the LLM.
        Scoring => "scoring",
        /// Every stage finished.
        Done => "done",
        /// A stage failed for good; `failure_reason` says why.
        Failed => "failed",
    }
);

text_enum!(
    /// The state of a job in the queue.
    JobState {
        /// Waiting until `run_at`.
        Queued => "queued",
        /// Claimed by a worker holding a lease.
        Running => "running",
        /// Finished; its result is stored.
        Succeeded => "succeeded",
        /// Gave up: a fatal error or retries exhausted; `last_error` says why.
        Dead => "dead",
        /// Cancelled by a user.
        Cancelled => "cancelled",
    }
);

text_enum!(
    /// What a token may do.
    Role {
        /// Everything, including token management.
        Admin => "admin",
        /// Uploads, reads every call, corrects scores.
        Qa => "qa",
        /// Reads everything, analytics.
        Head => "head",
        /// Bound to one manager id: only their own calls.
        Manager => "manager",
    }
);

text_enum!(
    /// Call direction as recorded by the telephony system.
    Direction {
        /// The client called in.
        Inbound => "inbound",
        /// The manager called out.
        Outbound => "outbound",
    }
);

text_enum!(
    /// Spoken language of a call.
    Language {
        /// Let the transcriber detect it.
        Auto => "auto",
        /// Russian.
        Ru => "ru",
        /// English.
        En => "en",
    }
);

impl Language {
    /// The language a transcript's language code (whisper's, e.g. `ru`, `de`) is analysed in:
    /// Russian for `ru`, English for anything else, since the analysis rules and prompts exist
    /// in these two.
    pub fn of_code(code: &str) -> Language {
        if code == "ru" {
            Language::Ru
        } else {
            Language::En
        }
    }
}

/// Who speaks on which channel of a recording, e.g. `manager,client` (left, right).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
#[schema(value_type = String, example = "manager,client")]
pub struct ChannelMap(Vec<Speaker>);

text_enum!(
    /// A speaker role in a call.
    Speaker {
        /// The salesperson.
        Manager => "manager",
        /// The customer.
        Client => "client",
        /// Not known (a mono recording not separated: one voice, or no separation models).
        Unknown => "unknown",
        /// The first voice heard on a mono recording whose roles the rule could not tell.
        #[serde(rename = "speaker_1")]
        Speaker1 => "speaker_1",
        /// The second voice heard on a mono recording whose roles the rule could not tell.
        #[serde(rename = "speaker_2")]
        Speaker2 => "speaker_2",
        /// The third voice (`transcribe.speakers` above 2).
        #[serde(rename = "speaker_3")]
        Speaker3 => "speaker_3",
        /// The fourth voice (`transcribe.speakers` = 4).
        #[serde(rename = "speaker_4")]
        Speaker4 => "speaker_4",
    }
);

impl ChannelMap {
    /// Parses `manager,client`-style lists: one or two distinct known speakers.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let speakers = s
            .split(',')
            .map(|p| p.trim().parse::<Speaker>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ParseError(format!("channels: {e}")))?;
        if speakers.is_empty() || speakers.len() > 2 {
            return Err(ParseError("channels must name one or two speakers".into()));
        }
        if speakers.len() == 2 && speakers[0] == speakers[1] && speakers[0] != Speaker::Unknown {
            return Err(ParseError(
                "channels must name two different speakers".into(),
            ));
        }
        Ok(Self(speakers))
    }

    /// The speakers, one per channel.
    pub fn speakers(&self) -> &[Speaker] {
        &self.0
    }

    /// The map with the manager and the client exchanged: for a stereo call with both (QA
    /// found the channels the other way round); `None` for anything else.
    pub fn swapped(&self) -> Option<Self> {
        match self.0.as_slice() {
            [a, b] if a.other().is_some() && b.other() == Some(*a) => Some(Self(vec![*b, *a])),
            _ => None,
        }
    }
}

impl Speaker {
    /// The label of the `index`th voice (0-based) separated from a mono recording whose roles
    /// are not known; `None` past the fourth.
    pub fn voice(index: usize) -> Option<Speaker> {
        [
            Speaker::Speaker1,
            Speaker::Speaker2,
            Speaker::Speaker3,
            Speaker::Speaker4,
        ]
        .get(index)
        .copied()
    }

    /// Whether this is a separated voice whose role is not known.
    pub fn is_voice(self) -> bool {
        matches!(
            self,
            Speaker::Speaker1 | Speaker::Speaker2 | Speaker::Speaker3 | Speaker::Speaker4
        )
    }

    /// The other side of the call: the client for the manager and back; `None` for unknown.
    pub fn other(self) -> Option<Speaker> {
        match self {
            Speaker::Manager => Some(Speaker::Client),
            Speaker::Client => Some(Speaker::Manager),
            _ => None,
        }
    }
}

impl Default for ChannelMap {
    fn default() -> Self {
        Self(vec![Speaker::Manager, Speaker::Client])
    }
}

impl FromStr for ChannelMap {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ChannelMap {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<ChannelMap> for String {
    fn from(c: ChannelMap) -> Self {
        c.to_string()
    }
}

impl fmt::Display for ChannelMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = self.0.iter().map(|s| s.as_str()).collect();
        f.write_str(&parts.join(","))
    }
}

/// Milliseconds since the Unix epoch, UTC: the one timestamp representation in storage.
pub type Millis = i64;

/// The current time in Unix milliseconds.
pub fn now_millis() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Converts stored milliseconds to a UTC timestamp for the API.
pub fn to_datetime(ms: Millis) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

// The one place text becomes a time. Every input that names an instant (an upload's
// `started_at`, a CRM timestamp) is RFC 3339 with an offset; every period bound (`from`, `to`)
// is that or a whole UTC day; every day of a plan is `YYYY-MM-DD`.

/// Parses an RFC 3339 time (any offset) into [`Millis`].
pub fn parse_instant(s: &str) -> Result<Millis, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("not an RFC 3339 time ({e}): {s:?}"))
}

/// Parses a `YYYY-MM-DD` day.
pub fn parse_day(s: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("not a YYYY-MM-DD date: {s:?}"))
}

/// 00:00 UTC of a day.
pub fn day_start(d: chrono::NaiveDate) -> Millis {
    d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or_default()
}

/// Parses a period bound: a day (its 00:00 UTC) or an RFC 3339 time.
pub fn parse_bound(s: &str) -> Result<Millis, String> {
    if let Ok(d) = parse_day(s) {
        return Ok(day_start(d));
    }
    parse_instant(s).map_err(|_| format!("expected YYYY-MM-DD or an RFC 3339 time, got {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_speaker_is_written_as_it_is_stored() {
        for s in Speaker::ALL {
            assert_eq!(
                serde_json::to_value(s).expect("serialises"),
                serde_json::Value::String(s.as_str().into())
            );
            assert_eq!(s.as_str().parse::<Speaker>().ok(), Some(*s));
        }
    }

    #[test]
    fn times_parse_from_rfc3339_and_days_in_utc() {
        assert_eq!(
            parse_instant("2026-03-01T02:30:00+03:00"),
            Ok(1_772_321_400_000)
        );
        assert!(parse_instant("2026-03-01 10:00").is_err());
        assert!(parse_instant("2026-03-01").is_err());
        assert_eq!(parse_bound("2026-03-01"), Ok(1_772_323_200_000));
        assert_eq!(
            parse_bound("2026-03-01T03:00:00+03:00"),
            Ok(1_772_323_200_000)
        );
        let err = parse_bound("March").unwrap_err();
        assert!(
            err.contains("YYYY-MM-DD") && err.contains("RFC 3339"),
            "{err}"
        );
        assert!(parse_day("2026-02-30").is_err());
    }

    #[test]
    fn manager_id_rejects_empty_and_control_characters() {
        assert!(ManagerId::parse("  ").is_err());
        assert!(ManagerId::parse("a\u{0}b").is_err());
        assert_eq!(
            ManagerId::parse(" m-1 ").map(|m| m.0),
            Ok("m-1".to_string())
        );
    }

    #[test]
    fn channel_map_parses_stereo_and_mono() {
        assert_eq!(
            ChannelMap::parse("client,manager").map(|c| c.to_string()),
            Ok("client,manager".into())
        );
        assert_eq!(ChannelMap::parse("manager").map(|c| c.0.len()), Ok(1));
        assert!(ChannelMap::parse("manager,manager").is_err());
        assert!(ChannelMap::parse("left,right").is_err());
        assert!(ChannelMap::parse("manager,client,unknown").is_err());
    }

    #[test]
    fn enums_round_trip_and_explain_bad_values() {
        for s in CallStatus::ALL {
            assert_eq!(s.as_str().parse::<CallStatus>(), Ok(*s));
        }
        let err = "nope".parse::<Role>().expect_err("must fail");
        assert!(err.0.contains("admin, qa, head, manager"), "{err}");
    }
}
