//! Frame-sync detection for MPEG audio and ADTS AAC.
//!
//! Both formats are headerless streams of frames that start with a sync word, and an 11- or
//! 12-bit sync word turns up by chance in any binary data. A match only counts when whole
//! frames follow each other back to back with consistent parameters, which random bytes
//! essentially never do.

/// MPEG audio layer of a detected stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MpegLayer {
    Layer1,
    Layer2,
    Layer3,
}

/// Frames that must chain when the buffer is long enough to hold them.
const FRAMES_TO_CONFIRM: usize = 3;
/// Frames that must chain at the very least (a short buffer may not hold three).
const MIN_FRAMES: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MpegHeader {
    version: u8,
    layer: MpegLayer,
    sample_rate: u32,
    frame_len: usize,
}

/// Parse a 4-byte MPEG audio frame header; `None` unless every field is legal.
fn mpeg_header(b: &[u8]) -> Option<MpegHeader> {
    let b = b.get(..4)?;
    if b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (b[1] >> 3) & 0x3; // 0 = 2.5, 1 = reserved, 2 = MPEG-2, 3 = MPEG-1
    let layer = match (b[1] >> 1) & 0x3 {
        1 => MpegLayer::Layer3,
        2 => MpegLayer::Layer2,
        3 => MpegLayer::Layer1,
        _ => return None,
    };
    let bitrate_index = usize::from(b[2] >> 4);
    let rate_index = usize::from((b[2] >> 2) & 0x3);
    // Free-format (index 0) frames have no computable length, so they cannot be chained.
    if version == 1 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    if b[3] & 0x3 == 2 {
        return None; // reserved emphasis
    }
    let mpeg1 = version == 3;
    let kbps: u32 = match (mpeg1, layer) {
        (true, MpegLayer::Layer1) => [
            0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
        ][bitrate_index],
        (true, MpegLayer::Layer2) => [
            0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
        ][bitrate_index],
        (true, MpegLayer::Layer3) => [
            0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ][bitrate_index],
        (false, MpegLayer::Layer1) => [
            0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
        ][bitrate_index],
        (false, _) => [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160][bitrate_index],
    };
    let base_rate = [44_100u32, 48_000, 32_000][rate_index];
    let sample_rate = match version {
        3 => base_rate,
        2 => base_rate / 2,
        _ => base_rate / 4,
    };
    let padding = u32::from((b[2] >> 1) & 0x1);
    let bps = kbps * 1000;
    let frame_len = match layer {
        MpegLayer::Layer1 => (12 * bps / sample_rate + padding) * 4,
        MpegLayer::Layer2 => 144 * bps / sample_rate + padding,
        MpegLayer::Layer3 if mpeg1 => 144 * bps / sample_rate + padding,
        MpegLayer::Layer3 => 72 * bps / sample_rate + padding,
    };
    Some(MpegHeader {
        version,
        layer,
        sample_rate,
        frame_len: frame_len as usize,
    })
}

/// Find a run of chained MPEG audio frames anywhere in `data`; returns its layer.
pub(crate) fn find_mpeg_audio_stream(data: &[u8]) -> Option<MpegLayer> {
    (0..data.len()).find_map(|start| {
        let first = mpeg_header(&data[start..])?;
        let same = |h: &MpegHeader| {
            h.version == first.version
                && h.layer == first.layer
                && h.sample_rate == first.sample_rate
        };
        chained(data, start, |rest| {
            mpeg_header(rest).filter(same).map(|h| h.frame_len)
        })
        .then_some(first.layer)
    })
}

/// Length of the ADTS frame starting at `b`, with its sample-rate index, if the header is legal.
fn adts_header(b: &[u8]) -> Option<(usize, u8)> {
    let b = b.get(..7)?;
    // Sync word, then layer bits that must be 00 (which also tells ADTS from MPEG audio).
    if b[0] != 0xFF || b[1] & 0xF6 != 0xF0 {
        return None;
    }
    let rate_index = (b[2] >> 2) & 0xF;
    if rate_index > 12 {
        return None;
    }
    let len = (usize::from(b[3] & 0x3) << 11) | (usize::from(b[4]) << 3) | usize::from(b[5] >> 5);
    (len >= 7).then_some((len, rate_index))
}

/// True if `data` holds a run of chained ADTS frames.
pub(crate) fn find_adts_stream(data: &[u8]) -> bool {
    (0..data.len()).any(|start| {
        let Some((_, rate)) = adts_header(&data[start..]) else {
            return false;
        };
        chained(data, start, |rest| {
            adts_header(rest).filter(|h| h.1 == rate).map(|h| h.0)
        })
    })
}

/// Do frames chain from `start`: [`FRAMES_TO_CONFIRM`] of them, or at least [`MIN_FRAMES`]
/// when the buffer ends first? `frame_len` parses a header at the given bytes.
fn chained(data: &[u8], start: usize, frame_len: impl Fn(&[u8]) -> Option<usize>) -> bool {
    let mut pos = start;
    for seen in 0..FRAMES_TO_CONFIRM {
        let Some(rest) = data.get(pos..).filter(|r| r.len() >= 4) else {
            return seen >= MIN_FRAMES;
        };
        match frame_len(rest) {
            Some(len) if len > 0 => pos += len,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An MPEG-2.5 layer III, 8 kHz, 32 kbps header: 288-byte frames.
    const HDR_8K: [u8; 4] = [0xFF, 0xE3, 0x48, 0xC4];

    fn stream(frames: usize) -> Vec<u8> {
        let len = mpeg_header(&HDR_8K).map(|h| h.frame_len).unwrap_or(0);
        let mut out = Vec::new();
        for _ in 0..frames {
            out.extend_from_slice(&HDR_8K);
            out.resize(out.len() + len - 4, 0x55);
        }
        out
    }

    #[test]
    fn header_fields_of_8k_telephony_mp3() {
        let h = mpeg_header(&HDR_8K).expect("valid header");
        assert_eq!(
            (h.sample_rate, h.frame_len, h.layer),
            (8000, 288, MpegLayer::Layer3)
        );
    }

    #[test]
    fn chained_frames_are_found() {
        assert_eq!(find_mpeg_audio_stream(&stream(3)), Some(MpegLayer::Layer3));
    }

    #[test]
    fn a_lone_sync_word_is_not_a_stream() {
        let mut data = vec![0x11u8; 2000];
        data[100..104].copy_from_slice(&HDR_8K);
        assert_eq!(find_mpeg_audio_stream(&data), None);
    }
}
