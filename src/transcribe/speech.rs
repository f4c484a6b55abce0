//! Speech regions found by VAD, and the mapping between the original timeline and the
//! concatenated speech-only buffer that whisper transcribes.
//!
//! whisper-rs's `state.full()` ignores the VAD settings in `FullParams` (whisper.cpp applies them
//! only in `whisper_full()`), so callgrade runs VAD itself, cuts the speech out, joins it with
//! short gaps (whisper encodes 30 s windows: one window of joined speech is far cheaper than one
//! window per region), and maps every timestamp back to the recording.

/// A stretch of speech on the original timeline, in samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First sample.
    pub start: usize,
    /// One past the last sample.
    pub end: usize,
}

/// One region's place in the joined buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    joined_start: usize,
    original_start: usize,
    len: usize,
}

/// Speech regions joined into one buffer, with the way back to the recording's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Joined {
    /// The speech, with `gap` samples of silence between regions.
    pub samples: Vec<f32>,
    pieces: Vec<Piece>,
    sample_rate: usize,
    /// Who speaks in each piece, when the pieces are separated voices' turns (empty: the
    /// channel's one speaker).
    labels: Vec<crate::domain::Speaker>,
}

/// Pads regions, clamps them to the audio, and merges those that touch or are closer than
/// `merge_gap` samples.
pub fn normalise(regions: &[Region], pad: usize, merge_gap: usize, total: usize) -> Vec<Region> {
    let mut sorted: Vec<Region> = regions
        .iter()
        .map(|r| Region {
            start: r.start.saturating_sub(pad),
            end: (r.end + pad).min(total),
        })
        .filter(|r| r.end > r.start)
        .collect();
    sorted.sort_by_key(|r| r.start);
    let mut out: Vec<Region> = Vec::new();
    for r in sorted {
        match out.last_mut() {
            Some(last) if r.start <= last.end + merge_gap => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// Joins `regions` of `audio` with `gap` samples of silence between them.
pub fn join(audio: &[f32], regions: &[Region], gap: usize, sample_rate: usize) -> Joined {
    let total: usize = regions.iter().map(|r| r.end - r.start).sum::<usize>()
        + gap * regions.len().saturating_sub(1);
    let mut samples = Vec::with_capacity(total);
    let mut pieces = Vec::with_capacity(regions.len());
    for (i, r) in regions.iter().enumerate() {
        if i > 0 {
            samples.extend(std::iter::repeat_n(0.0, gap));
        }
        let (start, end) = (r.start.min(audio.len()), r.end.min(audio.len()));
        pieces.push(Piece {
            joined_start: samples.len(),
            original_start: start,
            len: end - start,
        });
        samples.extend_from_slice(&audio[start..end]);
    }
    Joined {
        samples,
        pieces,
        sample_rate,
        labels: Vec::new(),
    }
}

impl Joined {
    /// The whole audio as one piece (VAD off).
    pub fn whole(audio: Vec<f32>, sample_rate: usize) -> Self {
        let len = audio.len();
        Self {
            samples: audio,
            pieces: vec![Piece {
                joined_start: 0,
                original_start: 0,
                len,
            }],
            sample_rate,
            labels: Vec::new(),
        }
    }

    /// The same pieces, each spoken by the speaker at its index in `labels`.
    pub fn with_labels(mut self, labels: Vec<crate::domain::Speaker>) -> Self {
        self.labels = labels;
        self
    }

    /// Who speaks in piece `index`, when the pieces are labelled.
    pub fn label(&self, index: usize) -> Option<crate::domain::Speaker> {
        self.labels.get(index).copied()
    }

    /// Maps a time in the joined buffer (seconds) to the recording's timeline (seconds). A time
    /// inside a gap maps to the end of the piece before it.
    pub fn to_original(&self, t: f64) -> f64 {
        let sample = (t.max(0.0) * self.sample_rate as f64).round() as usize;
        let piece = self
            .pieces
            .iter()
            .rev()
            .find(|p| p.joined_start <= sample)
            .or_else(|| self.pieces.first());
        match piece {
            Some(p) => {
                let offset = (sample - p.joined_start.min(sample)).min(p.len);
                (p.original_start + offset) as f64 / self.sample_rate as f64
            }
            None => t,
        }
    }

    /// Maps a start time in the joined buffer to the recording's timeline: like
    /// [`Joined::to_original`], but a time inside a gap maps to the start of the piece after it
    /// (speech that starts in a gap starts with the next region).
    pub fn to_original_start(&self, t: f64) -> f64 {
        let sample = (t.max(0.0) * self.sample_rate as f64).round() as usize;
        match self.pieces.get(self.piece_at(t)) {
            Some(p) if sample >= p.joined_start + p.len => {
                match self.pieces.get(self.piece_at(t) + 1) {
                    Some(next) => next.original_start as f64 / self.sample_rate as f64,
                    None => self.to_original(t),
                }
            }
            _ => self.to_original(t),
        }
    }

    /// Index of the piece (speech region) a joined-buffer time falls in or after.
    pub fn piece_at(&self, t: f64) -> usize {
        let sample = (t.max(0.0) * self.sample_rate as f64).round() as usize;
        self.pieces
            .iter()
            .rposition(|p| p.joined_start <= sample)
            .unwrap_or(0)
    }

    /// Index of the piece a word centred at joined time `t` belongs to: the piece it falls in,
    /// or for a time in the silence between two pieces, the nearer of the two (whisper's word
    /// times spill into the silence on both sides of speech).
    pub fn piece_of_word(&self, t: f64) -> usize {
        let sample = (t.max(0.0) * self.sample_rate as f64).round() as usize;
        let i = self.piece_at(t);
        match (self.pieces.get(i), self.pieces.get(i + 1)) {
            (Some(p), Some(next)) if sample >= p.joined_start + p.len => {
                let gap_middle = (p.joined_start + p.len + next.joined_start) / 2;
                if sample >= gap_middle {
                    i + 1
                } else {
                    i
                }
            }
            _ => i,
        }
    }

    /// The piece's span on the recording's timeline, seconds.
    pub fn piece_span(&self, index: usize) -> Option<(f64, f64)> {
        let sr = self.sample_rate as f64;
        self.pieces.get(index).map(|p| {
            (
                p.original_start as f64 / sr,
                (p.original_start + p.len) as f64 / sr,
            )
        })
    }

    /// Seconds of speech in the buffer (without the gaps).
    pub fn speech_seconds(&self) -> f64 {
        self.pieces.iter().map(|p| p.len).sum::<usize>() as f64 / self.sample_rate as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_in_a_gap_move_to_the_next_region_and_ends_stay_with_the_previous() {
        let audio = vec![0.5f32; 100];
        // Regions 10..20 and 50..60, joined with a gap of 5 samples: [0,10) gap [15,25).
        let j = join(
            &audio,
            &[Region { start: 10, end: 20 }, Region { start: 50, end: 60 }],
            5,
            1,
        );
        assert_eq!(j.to_original(12.0), 20.0);
        assert_eq!(j.to_original_start(12.0), 50.0);
        assert_eq!(j.to_original_start(3.0), 13.0);
        assert_eq!((j.piece_at(3.0), j.piece_at(16.0)), (0, 1));
        assert_eq!((j.piece_at(13.0), j.piece_of_word(13.0)), (0, 1));
        assert_eq!(j.piece_of_word(11.0), 0);
    }

    #[test]
    fn regions_are_padded_clamped_and_merged() {
        let r = normalise(
            &[
                Region {
                    start: 100,
                    end: 200,
                },
                Region {
                    start: 230,
                    end: 300,
                },
                Region {
                    start: 900,
                    end: 990,
                },
            ],
            10,
            30,
            1000,
        );
        assert_eq!(
            r,
            vec![
                Region {
                    start: 90,
                    end: 310
                },
                Region {
                    start: 890,
                    end: 1000
                }
            ]
        );
    }

    #[test]
    fn joined_times_map_back_to_the_recording() {
        let audio: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let j = join(
            &audio,
            &[Region { start: 10, end: 20 }, Region { start: 50, end: 60 }],
            5,
            10,
        );
        assert_eq!(j.samples.len(), 25);
        assert_eq!(j.samples[0], 10.0);
        assert_eq!(j.samples[15], 50.0);
        // 0.0 s joined = sample 10 = 1.0 s; 1.5 s joined = sample 15 = start of piece 2 = 5.0 s.
        assert_eq!(j.to_original(0.0), 1.0);
        assert_eq!(j.to_original(0.5), 1.5);
        assert_eq!(j.to_original(1.5), 5.0);
        assert_eq!(j.to_original(2.4), 5.9);
        // Inside the gap: the end of the first piece.
        assert_eq!(j.to_original(1.2), 2.0);
        assert_eq!(j.speech_seconds(), 2.0);
    }
}
