//! sniff: formats are told by content; non-audio is refused with a reason.

use callgrade::audio::{sniff, AudioFormat, SniffError, WavCodec, SNIFF_LEN};

use crate::common::{bad, call, jfk};

fn sniff_file(path: &std::path::Path) -> Result<AudioFormat, SniffError> {
    let mut bytes = std::fs::read(path).expect("read test file");
    bytes.truncate(SNIFF_LEN);
    sniff(&bytes)
}

#[test]
fn every_good_recording_is_recognised_by_its_content() {
    let expected = [
        ("pub01_ru.mp3", AudioFormat::Mp3),
        ("pub02_ru.mp3", AudioFormat::Mp3),
        ("pub03_ru.mp3", AudioFormat::Mp3),
        ("pub04_ru.mp3", AudioFormat::Mp3),
        ("pub05_en.mp3", AudioFormat::Mp3),
        ("pub06_en.mp3", AudioFormat::Mp3),
        ("pub04_ru_mono16k.wav", AudioFormat::Wav(WavCodec::Pcm)),
        ("pub06_en_mono16k.wav", AudioFormat::Wav(WavCodec::Pcm)),
        ("pub06_en_stereo.flac", AudioFormat::Flac),
        ("pub04_ru_stereo.ogg", AudioFormat::OggOpus),
    ];
    for (name, format) in expected {
        assert_eq!(sniff_file(&call(name)), Ok(format), "{name}");
    }
    assert_eq!(sniff_file(&jfk("wav")), Ok(AudioFormat::Wav(WavCodec::Pcm)));
    assert_eq!(sniff_file(&jfk("mp3")), Ok(AudioFormat::Mp3));
}

#[test]
fn broken_but_real_audio_is_still_recognised() {
    assert_eq!(sniff_file(&bad("truncated_3kb.mp3")), Ok(AudioFormat::Mp3));
    assert_eq!(
        sniff_file(&bad("huge_header.wav")),
        Ok(AudioFormat::Wav(WavCodec::Pcm))
    );
    assert_eq!(
        sniff_file(&bad("short_0.2s.wav")),
        Ok(AudioFormat::Wav(WavCodec::Pcm))
    );
    assert_eq!(sniff_file(&bad("silence_10min.mp3")), Ok(AudioFormat::Mp3));
}

#[test]
fn an_empty_file_is_refused_as_empty() {
    let err = sniff_file(&bad("empty.mp3")).expect_err("empty");
    assert_eq!(err, SniffError::Empty);
    assert_eq!(err.to_string(), "empty file");
}

#[test]
fn a_text_file_renamed_to_mp3_is_refused_as_text() {
    let err = sniff_file(&bad("text_renamed.mp3")).expect_err("text");
    assert_eq!(err.to_string(), "not an audio file: looks like text");
}

#[test]
fn random_bytes_named_wav_are_refused() {
    let err = sniff_file(&bad("random_bytes.wav")).expect_err("random");
    assert_eq!(err, SniffError::Unrecognised);
    assert!(
        err.to_string().contains("unsupported or corrupt audio"),
        "{err}"
    );
}

#[test]
fn cyrillic_text_is_text() {
    let text = "Здравствуйте, это отдел продаж. Звонок записан.\n".repeat(20);
    assert_eq!(
        sniff(text.as_bytes()),
        Err(SniffError::NotAudio("text".into()))
    );
}

#[test]
fn stray_mp3_sync_words_in_random_data_are_not_mp3() {
    // Deterministic pseudo-random bytes sprinkled with valid-looking frame headers that do
    // not chain: each one alone would fool a single-header check.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut data: Vec<u8> = (0..SNIFF_LEN)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    for pos in (100..SNIFF_LEN - 4).step_by(997) {
        data[pos..pos + 4].copy_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
    }
    assert_eq!(sniff(&data), Err(SniffError::Unrecognised));
}

#[test]
fn well_known_non_audio_files_are_named() {
    let cases: [(&[u8], &str); 4] = [
        (b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj", "a PDF document"),
        (b"\x89PNG\r\n\x1A\n\0\0\0\rIHDR", "an image (PNG)"),
        (
            b"PK\x03\x04\x14\0\x06\0\x08\0\0\0!\0",
            "a ZIP archive or office document",
        ),
        (b"\xFF\xD8\xFF\xE0\0\x10JFIF\0", "an image (JPEG)"),
    ];
    for (bytes, what) in cases {
        assert_eq!(
            sniff(bytes),
            Err(SniffError::NotAudio(what.into())),
            "{what}"
        );
    }
}

#[test]
fn ogg_vorbis_and_unknown_ogg_are_told_apart_by_the_first_packet() {
    let page = |packet: &[u8]| {
        let mut p = b"OggS\0\x02".to_vec();
        p.resize(26, 0);
        p.push(1); // one segment
        p.push(packet.len() as u8);
        p.extend_from_slice(packet);
        p
    };
    assert_eq!(
        sniff(&page(b"\x01vorbis\0\0\0\0\x01")),
        Ok(AudioFormat::OggVorbis)
    );
    assert_eq!(sniff(&page(b"OpusHead\x01\x02")), Ok(AudioFormat::OggOpus));
    assert!(matches!(
        sniff(&page(b"fishead\0")),
        Err(SniffError::Unsupported(_))
    ));
}

#[test]
fn an_id3_tag_larger_than_the_sniff_window_means_mp3() {
    // ID3v2.4 header announcing a 1 MB tag (cover art), synchsafe size.
    let mut head = b"ID3\x04\x00\x00\x00\x40\x00\x00".to_vec();
    head.resize(4096, 0);
    assert_eq!(sniff(&head), Ok(AudioFormat::Mp3));
}

#[test]
fn mp4_audio_is_recognised_by_its_ftyp_box() {
    let head = b"\0\0\0\x20ftypM4A \0\0\0\0M4A mp42isom\0\0\0\0";
    assert_eq!(sniff(head), Ok(AudioFormat::Mp4));
}
