//! The stages a call goes through, in order, and what a user sees during each.
//!
//! Each stage is a job kind; when a stage's job succeeds, the worker queues the next stage in
//! the same transaction. A call is `done` when the last stage succeeds.

use crate::domain::CallStatus;

/// A stage of the call pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Decode the recording and transcribe it speaker by speaker.
    Transcribe,
    /// Score the transcript against the team's scorecard.
    Score,
}

impl Stage {
    /// Every stage, in pipeline order.
    pub const ALL: [Stage; 2] = [Stage::Transcribe, Stage::Score];

    /// The first stage of a new call.
    pub const FIRST: Stage = Stage::Transcribe;

    /// The job kind that runs this stage.
    pub fn kind(self) -> &'static str {
        match self {
            Stage::Transcribe => "transcribe",
            Stage::Score => "score",
        }
    }

    /// The stage whose job kind is `kind`.
    pub fn from_kind(kind: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.kind() == kind)
    }

    /// What the call shows while this stage waits or runs.
    pub fn call_status(self) -> CallStatus {
        match self {
            Stage::Transcribe => CallStatus::Transcribing,
            Stage::Score => CallStatus::Scoring,
        }
    }

    /// The stage after this one.
    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Transcribe => Some(Stage::Score),
            Stage::Score => None,
        }
    }

    /// What the call shows when it is queued again for this stage.
    pub fn waiting_status(self) -> CallStatus {
        match self {
            Stage::Transcribe => CallStatus::Queued,
            Stage::Score => CallStatus::Scoring,
        }
    }

    /// A short label for failure messages shown to users.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Transcribe => "transcription",
            Stage::Score => "scoring",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_chain_from_first_to_last() {
        let mut stage = Some(Stage::FIRST);
        let mut seen = vec![];
        while let Some(s) = stage {
            assert_eq!(Stage::from_kind(s.kind()), Some(s));
            seen.push(s);
            stage = s.next();
        }
        assert_eq!(seen, Stage::ALL);
    }
}
