//! The one error type of the audio module, worded for the person who uploaded the call.

use serde::{Deserialize, Serialize};

use super::sniff::SniffError;

/// Why a recording could not be turned into audio. Every variant is final for that file: the
/// caller should fail the job as Fatal (retrying the same bytes gives the same answer), except
/// [`DecodeError::Io`] and [`DecodeError::Spawn`], which are about this machine, not the file.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum DecodeError {
    /// The content is not a supported audio file (empty, text, unknown, unsupported codec).
    #[error(transparent)]
    Sniff(#[from] SniffError),
    /// The file looked like audio but its data is damaged beyond decoding.
    #[error("unsupported or corrupt audio: {0}")]
    Corrupt(String),
    /// The container was read but it holds no audio track we can decode.
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    /// Not a single frame of audio could be decoded.
    #[error("no audio could be decoded from the file ({0})")]
    NoAudio(String),
    /// The recording is longer than the configured maximum.
    #[error("the recording is longer than the {} limit", human_duration(*max_s))]
    TooLong {
        /// The limit in seconds.
        max_s: u64,
    },
    /// The file could not be read.
    #[error("could not read the audio file: {0}")]
    Io(String),
    /// The decoder process could not be started.
    #[error("could not start the audio decoder: {0}")]
    Spawn(String),
    /// The decoder process died from a signal (a crash in decoding code).
    #[error("decoder crashed (signal {0})")]
    Crashed(i32),
    /// The decoder process ran out of its memory allowance.
    #[error("decoder exceeded its memory limit")]
    OutOfMemory,
    /// The decoder process ran past its time limit and was killed.
    #[error("decoding took longer than {0} s")]
    TimedOut(u64),
    /// The decoder process failed without a usable explanation.
    #[error("decoder failed: {0}")]
    ChildFailed(String),
}

impl DecodeError {
    /// True when the failure is about this machine rather than the file, so a retry may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DecodeError::Io(_) | DecodeError::Spawn(_))
    }
}

impl From<std::io::Error> for DecodeError {
    fn from(err: std::io::Error) -> Self {
        DecodeError::Io(err.to_string())
    }
}

/// "3 h", "90 min" or "45 s": how a limit reads best to a person.
fn human_duration(secs: u64) -> String {
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_in_the_largest_whole_unit() {
        assert_eq!(
            DecodeError::TooLong { max_s: 10_800 }.to_string(),
            "the recording is longer than the 3 h limit"
        );
        assert_eq!(
            DecodeError::TooLong { max_s: 5_400 }.to_string(),
            "the recording is longer than the 90 min limit"
        );
        assert_eq!(
            DecodeError::TooLong { max_s: 10 }.to_string(),
            "the recording is longer than the 10 s limit"
        );
    }
}
