//! One integration-test binary for the audio module (see `common` for the fixtures).

mod codecs;
mod common;
mod decode;
mod isolate;
mod resample;
mod sniff;
