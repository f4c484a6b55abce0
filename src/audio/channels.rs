//! Channel policy: two different channels are two speakers; two copies of one signal are mono.
//!
//! Many recorders write "stereo" files that hold the same mono mix on both sides. Sending both
//! to speech recognition would transcribe every word twice and make every turn look like an
//! interruption, so such files are folded to one channel.

/// Normalised correlation at or above which two channels count as the same signal. A gain
/// difference between the sides does not lower it; a second speaker on one side drops it far
/// below (two independent voices correlate near 0).
const SAME_SIGNAL_CORRELATION: f64 = 0.99;

/// Mean energy per sample below which a channel is digital silence (about -100 dBFS).
const SILENT_ENERGY: f64 = 1e-10;

/// Sums over two channels' common samples, from which [`Correlation::same_signal`] decides;
/// fed block by block, so spooled channels are compared without holding them.
#[derive(Debug, Default, Clone, Copy)]
pub struct Correlation {
    aa: f64,
    bb: f64,
    ab: f64,
    n: usize,
}

impl Correlation {
    /// Adds the common part of two aligned blocks.
    pub fn add(&mut self, a: &[f32], b: &[f32]) {
        for (&x, &y) in a.iter().zip(b) {
            let (x, y) = (f64::from(x), f64::from(y));
            self.aa += x * x;
            self.bb += y * y;
            self.ab += x * y;
        }
        self.n += a.len().min(b.len());
    }

    /// True when the two channels carry the same signal: both silent, or correlated at
    /// [`SAME_SIGNAL_CORRELATION`] or above.
    pub fn same_signal(&self) -> bool {
        if self.n == 0 {
            return true;
        }
        let silent_a = self.aa / self.n as f64 <= SILENT_ENERGY;
        let silent_b = self.bb / self.n as f64 <= SILENT_ENERGY;
        if silent_a || silent_b {
            // One idle side and one talking side is the normal two-speaker case, not a copy.
            return silent_a && silent_b;
        }
        self.ab / (self.aa.sqrt() * self.bb.sqrt()) >= SAME_SIGNAL_CORRELATION
    }
}

/// True when `a` and `b` carry the same signal: both silent, or correlated at
/// [`SAME_SIGNAL_CORRELATION`] or above over their common length.
pub fn channels_are_identical(a: &[f32], b: &[f32]) -> bool {
    let mut c = Correlation::default();
    c.add(a, b);
    c.same_signal()
}

/// Fold a two-channel recording whose channels are the same signal into one channel (their
/// average), in place. Returns whether it did.
pub fn merge_identical_channels(channels: &mut Vec<Vec<f32>>) -> bool {
    let [left, right] = channels.as_mut_slice() else {
        return false;
    };
    if !channels_are_identical(left, right) {
        return false;
    }
    for (l, r) in left.iter_mut().zip(right.iter()) {
        *l = 0.5 * (*l + *r);
    }
    channels.truncate(1);
    true
}

/// Average any number of planar channels into `out` (replacing its contents). Used for
/// recordings with more than two channels, which have no speaker-per-channel convention.
pub(crate) fn downmix_into(planes: &[&[f32]], out: &mut Vec<f32>) {
    let frames = planes.iter().map(|p| p.len()).min().unwrap_or(0);
    out.clear();
    out.resize(frames, 0.0);
    let scale = 1.0 / planes.len().max(1) as f32;
    for plane in planes {
        for (o, s) in out.iter_mut().zip(plane.iter()) {
            *o += s * scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(n: usize, freq: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (i as f32 * freq * 0.001).sin() * 0.3)
            .collect()
    }

    #[test]
    fn a_scaled_copy_is_the_same_signal() {
        let a = tone(16_000, 3.0);
        let b: Vec<f32> = a.iter().map(|s| s * 0.5).collect();
        assert!(channels_are_identical(&a, &b));
    }

    #[test]
    fn one_talking_side_and_one_silent_side_are_two_speakers() {
        let a = tone(16_000, 3.0);
        assert!(!channels_are_identical(&a, &vec![0.0; 16_000]));
    }

    #[test]
    fn different_voices_are_two_speakers() {
        assert!(!channels_are_identical(
            &tone(16_000, 3.0),
            &tone(16_000, 7.3)
        ));
    }

    #[test]
    fn merging_leaves_one_averaged_channel() {
        let mut ch = vec![vec![0.2, 0.4], vec![0.2, 0.4]];
        assert!(merge_identical_channels(&mut ch));
        assert_eq!(ch, vec![vec![0.2, 0.4]]);
    }
}
