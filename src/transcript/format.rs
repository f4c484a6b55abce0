//! Transcript renderings: plain text, SubRip (SRT) and WebVTT.

use super::Segment;

fn clock(seconds: f64, decimal: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}{decimal}{ms:03}")
}

/// `[mm:ss] Speaker: text` lines.
pub fn text(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        let secs = s.start.max(0.0) as u64;
        out += &format!(
            "[{:02}:{:02}] {}: {}\n",
            secs / 60,
            secs % 60,
            s.speaker,
            s.text.trim()
        );
    }
    out
}

/// SubRip subtitles with the speaker as a prefix.
pub fn srt(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (i, s) in segments.iter().enumerate() {
        out += &format!(
            "{}\n{} --> {}\n{}: {}\n\n",
            i + 1,
            clock(s.start, ','),
            clock(s.end, ','),
            s.speaker,
            s.text.trim()
        );
    }
    out
}

/// WebVTT subtitles with voice tags for the speaker.
pub fn vtt(segments: &[Segment]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for s in segments {
        out += &format!(
            "{} --> {}\n<v {}>{}\n\n",
            clock(s.start, '.'),
            clock(s.end, '.'),
            s.speaker,
            s.text.trim()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Speaker;
    use crate::transcript::tests::seg;

    #[test]
    fn renders_text_srt_and_vtt() {
        let s = vec![seg(Speaker::Manager, 83.5, 3725.25, "Hello there.")];
        assert_eq!(text(&s), "[01:23] manager: Hello there.\n");
        assert_eq!(
            srt(&s),
            "1\n00:01:23,500 --> 01:02:05,250\nmanager: Hello there.\n\n"
        );
        assert_eq!(
            vtt(&s),
            "WEBVTT\n\n00:01:23.500 --> 01:02:05.250\n<v manager>Hello there.\n\n"
        );
    }
}
