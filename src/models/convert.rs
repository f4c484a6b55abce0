//! CTranslate2 Whisper model -> whisper.cpp ggml file.
//!
//! The two formats hold the same weights under different names and layouts:
//! - CTranslate2 fuses self-attention Q/K/V into one `linear_0` matrix and cross-attention K/V
//!   into one `linear_1`; whisper.cpp wants them apart (and has no key bias: CTranslate2 stores
//!   zeros there).
//! - Layer norms are `gamma`/`beta` in CTranslate2, `weight`/`bias` in OpenAI's names.
//! - whisper.cpp stores conv biases as `[n, 1]`, matrices and conv kernels in f16, vectors and
//!   positional embeddings in f32 (what its `convert-pt-to-ggml.py` writes).
//! - The decoder's output projection is tied to the token embedding, so it is not written.

use std::collections::BTreeSet;
use std::io::{BufWriter, Write};
use std::path::Path;

use super::ct2::{Ct2Model, Variable};
use super::ggml::{self, HParams, Tensor, TensorType};
use super::{mel, vocab, ModelError};

/// The CTranslate2 files a conversion reads.
pub struct Ct2Files<'a> {
    /// `model.bin`.
    pub model: &'a [u8],
    /// `vocabulary.txt`.
    pub vocabulary: &'a str,
}

/// What a conversion produced.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The model's dimensions.
    pub hparams: HParams,
    /// Tensors written.
    pub tensors: usize,
}

/// Converts CTranslate2 files into a whisper.cpp model written to `out`.
pub fn convert(files: &Ct2Files<'_>, out: &mut impl Write) -> Result<Converted, ModelError> {
    let model = Ct2Model::parse(files.model)?;
    if !model.spec.to_ascii_lowercase().contains("whisper") {
        return Err(ModelError::Format(format!(
            "model.bin holds a {} model, not Whisper",
            model.spec
        )));
    }
    let tokens = vocab::tokens_from_vocabulary(files.vocabulary)?;
    let hparams = hparams(&model)?;
    let tensors = tensors(&model, &hparams)?;
    let filters = mel::filterbank();
    ggml::write_header(out, &hparams, (mel::N_MELS, mel::N_BINS, &filters), &tokens)?;
    for t in &tensors {
        ggml::write_tensor(out, t)?;
    }
    out.flush()?;
    Ok(Converted {
        hparams,
        tensors: tensors.len(),
    })
}

/// Converts the CTranslate2 model in `dir` (model.bin, vocabulary.txt) into the file `out`.
pub fn convert_dir(dir: &Path, out: &Path) -> Result<Converted, ModelError> {
    let model = std::fs::read(dir.join("model.bin"))?;
    let vocabulary = std::fs::read_to_string(dir.join("vocabulary.txt"))?;
    convert_to_file(
        &Ct2Files {
            model: &model,
            vocabulary: &vocabulary,
        },
        out,
    )
}

/// Converts into the file `out`, written atomically (a failed conversion leaves nothing).
pub fn convert_to_file(files: &Ct2Files<'_>, out: &Path) -> Result<Converted, ModelError> {
    super::atomic_write(out, |file| {
        let mut w = BufWriter::new(file);
        let converted = convert(files, &mut w)?;
        w.flush()?;
        Ok(converted)
    })
}

fn var<'a>(m: &'a Ct2Model, name: &str) -> Result<&'a Variable, ModelError> {
    m.get(name)
        .ok_or_else(|| ModelError::Format(format!("model.bin has no variable {name}")))
}

fn dim(v: &Variable, i: usize) -> i32 {
    v.dims.get(i).copied().unwrap_or(0) as i32
}

fn count_layers(m: &Ct2Model, prefix: &str) -> i32 {
    (0..)
        .take_while(|i| {
            m.variables
                .keys()
                .any(|k| k.starts_with(&format!("{prefix}/layer_{i}/")))
        })
        .count() as i32
}

fn hparams(m: &Ct2Model) -> Result<HParams, ModelError> {
    let heads = |prefix: &str| -> Result<i32, ModelError> {
        var(m, &format!("{prefix}/num_heads"))?
            .scalar_int()
            .map(|h| h as i32)
            .ok_or_else(|| ModelError::Format(format!("{prefix}/num_heads is not an integer")))
    };
    let conv1 = var(m, "encoder/conv1/weight")?;
    let enc_pos = var(m, "encoder/position_encodings/encodings")?;
    let dec_pos = var(m, "decoder/position_encodings/encodings")?;
    let embed = var(m, "decoder/embeddings/weight")?;
    Ok(HParams {
        n_vocab: dim(embed, 0),
        n_audio_ctx: dim(enc_pos, 0),
        n_audio_state: dim(enc_pos, 1),
        n_audio_head: heads("encoder")?,
        n_audio_layer: count_layers(m, "encoder"),
        n_text_ctx: dim(dec_pos, 0),
        n_text_state: dim(dec_pos, 1),
        n_text_head: heads("decoder")?,
        n_text_layer: count_layers(m, "decoder"),
        n_mels: dim(conv1, 1),
        ftype: 1,
    })
}

/// Collects the output tensors in whisper.cpp's order, checking every float variable of the
/// source is used (a name this converter does not know is an error, not a silent gap).
fn tensors(m: &Ct2Model, hp: &HParams) -> Result<Vec<Tensor>, ModelError> {
    let mut b = Builder {
        m,
        out: vec![],
        used: BTreeSet::new(),
    };
    b.copy(
        "encoder/position_encodings/encodings",
        "encoder.positional_embedding",
        Kind::Vector,
    )?;
    for n in [1, 2] {
        b.copy(
            &format!("encoder/conv{n}/weight"),
            &format!("encoder.conv{n}.weight"),
            Kind::Matrix,
        )?;
        b.copy(
            &format!("encoder/conv{n}/bias"),
            &format!("encoder.conv{n}.bias"),
            Kind::ConvBias,
        )?;
    }
    for i in 0..hp.n_audio_layer {
        let (src, dst) = (format!("encoder/layer_{i}"), format!("encoder.blocks.{i}"));
        b.self_attention(&src, &dst)?;
        b.ffn(&src, &dst)?;
    }
    b.norm("encoder/layer_norm", "encoder.ln_post")?;
    b.copy(
        "decoder/position_encodings/encodings",
        "decoder.positional_embedding",
        Kind::Vector,
    )?;
    b.copy(
        "decoder/embeddings/weight",
        "decoder.token_embedding.weight",
        Kind::Matrix,
    )?;
    for i in 0..hp.n_text_layer {
        let (src, dst) = (format!("decoder/layer_{i}"), format!("decoder.blocks.{i}"));
        b.self_attention(&src, &dst)?;
        b.cross_attention(&src, &dst)?;
        b.ffn(&src, &dst)?;
    }
    b.norm("decoder/layer_norm", "decoder.ln")?;
    // Tied to the token embedding (an alias, or a copy in older files).
    b.used.insert("decoder/projection/weight".into());
    let unused: Vec<&String> = m
        .variables
        .iter()
        .filter(|(name, v)| v.len() > 1 && !b.used.contains(*name))
        .map(|(name, _)| name)
        .collect();
    if !unused.is_empty() {
        return Err(ModelError::Format(format!(
            "model.bin has weights this converter does not know: {unused:?}"
        )));
    }
    Ok(b.out)
}

#[derive(Clone, Copy)]
enum Kind {
    /// f16, shape as is.
    Matrix,
    /// f32: norms, biases, positional embeddings.
    Vector,
    /// f32 `[n, 1]`.
    ConvBias,
}

struct Builder<'a> {
    m: &'a Ct2Model,
    out: Vec<Tensor>,
    used: BTreeSet<String>,
}

impl Builder<'_> {
    fn source(&mut self, name: &str) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
        let v = var(self.m, name)?;
        self.used.insert(name.to_string());
        let values = v.to_f32().ok_or_else(|| {
            ModelError::Format(format!(
                "{name} is {:?}; only float models (f16, f32, bf16) can be converted",
                v.dtype
            ))
        })?;
        Ok((v.dims.clone(), values))
    }

    fn push(&mut self, name: String, dims: Vec<usize>, kind: Kind, values: &[f32]) {
        let (dims, ttype) = match kind {
            Kind::Matrix => (dims, TensorType::F16),
            Kind::Vector => (dims, TensorType::F32),
            Kind::ConvBias => (vec![values.len(), 1], TensorType::F32),
        };
        self.out.push(Tensor::new(name, dims, ttype, values));
    }

    fn copy(&mut self, src: &str, dst: &str, kind: Kind) -> Result<(), ModelError> {
        let (dims, values) = self.source(src)?;
        self.push(dst.to_string(), dims, kind, &values);
        Ok(())
    }

    fn norm(&mut self, src: &str, dst: &str) -> Result<(), ModelError> {
        self.copy(
            &format!("{src}/gamma"),
            &format!("{dst}.weight"),
            Kind::Vector,
        )?;
        self.copy(&format!("{src}/beta"), &format!("{dst}.bias"), Kind::Vector)
    }

    fn linear(&mut self, src: &str, dst: &str) -> Result<(), ModelError> {
        self.copy(
            &format!("{src}/weight"),
            &format!("{dst}.weight"),
            Kind::Matrix,
        )?;
        self.copy(&format!("{src}/bias"), &format!("{dst}.bias"), Kind::Vector)
    }

    /// Splits a fused linear layer into `parts` equal row blocks named `names`; a part named
    /// `key` gets no bias (whisper's key projection has none).
    fn split(&mut self, src: &str, dst: &str, names: &[&str]) -> Result<(), ModelError> {
        let (wdims, w) = self.source(&format!("{src}/weight"))?;
        let (_, bias) = self.source(&format!("{src}/bias"))?;
        let parts = names.len();
        let (rows, cols) = (
            wdims.first().copied().unwrap_or(0),
            wdims.get(1).copied().unwrap_or(0),
        );
        if wdims.len() != 2 || rows % parts != 0 || bias.len() != rows {
            return Err(ModelError::Format(format!(
                "{src}: fused shape {wdims:?} cannot be split in {parts}"
            )));
        }
        let n = rows / parts;
        for (p, name) in names.iter().enumerate() {
            let rows_p = &w[p * n * cols..(p + 1) * n * cols];
            self.push(
                format!("{dst}.{name}.weight"),
                vec![n, cols],
                Kind::Matrix,
                rows_p,
            );
            if *name != "key" {
                self.push(
                    format!("{dst}.{name}.bias"),
                    vec![n],
                    Kind::Vector,
                    &bias[p * n..(p + 1) * n],
                );
            }
        }
        Ok(())
    }

    fn self_attention(&mut self, src: &str, dst: &str) -> Result<(), ModelError> {
        self.norm(
            &format!("{src}/self_attention/layer_norm"),
            &format!("{dst}.attn_ln"),
        )?;
        self.split(
            &format!("{src}/self_attention/linear_0"),
            &format!("{dst}.attn"),
            &["query", "key", "value"],
        )?;
        self.linear(
            &format!("{src}/self_attention/linear_1"),
            &format!("{dst}.attn.out"),
        )
    }

    fn cross_attention(&mut self, src: &str, dst: &str) -> Result<(), ModelError> {
        self.norm(
            &format!("{src}/attention/layer_norm"),
            &format!("{dst}.cross_attn_ln"),
        )?;
        self.linear(
            &format!("{src}/attention/linear_0"),
            &format!("{dst}.cross_attn.query"),
        )?;
        self.split(
            &format!("{src}/attention/linear_1"),
            &format!("{dst}.cross_attn"),
            &["key", "value"],
        )?;
        self.linear(
            &format!("{src}/attention/linear_2"),
            &format!("{dst}.cross_attn.out"),
        )
    }

    fn ffn(&mut self, src: &str, dst: &str) -> Result<(), ModelError> {
        self.norm(&format!("{src}/ffn/layer_norm"), &format!("{dst}.mlp_ln"))?;
        self.linear(&format!("{src}/ffn/linear_0"), &format!("{dst}.mlp.0"))?;
        self.linear(&format!("{src}/ffn/linear_1"), &format!("{dst}.mlp.2"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ct2::{self, DType};
    use crate::models::ggml::GgmlModel;

    const STATE: usize = 8;
    const VOCAB: usize = 51_865;

    /// A whisper-shaped CTranslate2 model with small dimensions and distinct values everywhere.
    fn tiny_ct2() -> Vec<u8> {
        let mut vars: Vec<(String, Vec<usize>, DType, Vec<u8>)> = vec![];
        let mut counter = 0u32;
        let mut f16 = |name: &str, dims: Vec<usize>| {
            let n: usize = dims.iter().product();
            let data = (0..n)
                .flat_map(|_| {
                    counter += 1;
                    half::f16::from_f32((counter % 2000) as f32 / 1000.0 - 1.0).to_le_bytes()
                })
                .collect();
            (name.to_string(), dims, DType::F16, data)
        };
        let s = STATE;
        let mut add = |v: (String, Vec<usize>, DType, Vec<u8>)| vars.push(v);
        add(f16("encoder/conv1/weight", vec![s, 80, 3]));
        add(f16("encoder/conv1/bias", vec![s]));
        add(f16("encoder/conv2/weight", vec![s, s, 3]));
        add(f16("encoder/conv2/bias", vec![s]));
        add(f16("encoder/position_encodings/encodings", vec![1500, s]));
        add(f16("decoder/position_encodings/encodings", vec![448, s]));
        add(f16("decoder/embeddings/weight", vec![VOCAB, s]));
        for side in ["encoder", "decoder"] {
            add(f16(&format!("{side}/layer_norm/gamma"), vec![s]));
            add(f16(&format!("{side}/layer_norm/beta"), vec![s]));
            let l = format!("{side}/layer_0");
            for norm in ["self_attention", "ffn"] {
                add(f16(&format!("{l}/{norm}/layer_norm/gamma"), vec![s]));
                add(f16(&format!("{l}/{norm}/layer_norm/beta"), vec![s]));
            }
            add(f16(
                &format!("{l}/self_attention/linear_0/weight"),
                vec![3 * s, s],
            ));
            add(f16(
                &format!("{l}/self_attention/linear_0/bias"),
                vec![3 * s],
            ));
            add(f16(
                &format!("{l}/self_attention/linear_1/weight"),
                vec![s, s],
            ));
            add(f16(&format!("{l}/self_attention/linear_1/bias"), vec![s]));
            add(f16(&format!("{l}/ffn/linear_0/weight"), vec![4 * s, s]));
            add(f16(&format!("{l}/ffn/linear_0/bias"), vec![4 * s]));
            add(f16(&format!("{l}/ffn/linear_1/weight"), vec![s, 4 * s]));
            add(f16(&format!("{l}/ffn/linear_1/bias"), vec![s]));
        }
        let l = "decoder/layer_0/attention";
        add(f16(&format!("{l}/layer_norm/gamma"), vec![s]));
        add(f16(&format!("{l}/layer_norm/beta"), vec![s]));
        add(f16(&format!("{l}/linear_0/weight"), vec![s, s]));
        add(f16(&format!("{l}/linear_0/bias"), vec![s]));
        add(f16(&format!("{l}/linear_1/weight"), vec![2 * s, s]));
        add(f16(&format!("{l}/linear_1/bias"), vec![2 * s]));
        add(f16(&format!("{l}/linear_2/weight"), vec![s, s]));
        add(f16(&format!("{l}/linear_2/bias"), vec![s]));
        for side in ["encoder", "decoder"] {
            add((
                format!("{side}/num_heads"),
                vec![],
                DType::I16,
                2i16.to_le_bytes().to_vec(),
            ));
        }
        let borrowed: Vec<(&str, Vec<usize>, DType, Vec<u8>)> = vars
            .iter()
            .map(|(n, d, t, b)| (n.as_str(), d.clone(), *t, b.clone()))
            .collect();
        ct2::write(
            "WhisperSpec",
            &borrowed,
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        )
    }

    fn vocabulary() -> String {
        (0..VOCAB).map(|i| format!("Ġt{i}\n")).collect()
    }

    /// Where each whisper.cpp tensor must come from, worked out from the name alone: the CT2
    /// variable, the block of rows (for fused matrices) and the stored type.
    fn expected_source(name: &str, state: usize) -> (String, Option<(usize, usize)>, TensorType) {
        let parts: Vec<&str> = name.split('.').collect();
        let (side, rest) = (parts[0], &parts[1..]);
        let field = |f: &str| if f == "weight" { "gamma" } else { "beta" };
        let matrix_or_vector = |field: &str| {
            if field == "weight" {
                TensorType::F16
            } else {
                TensorType::F32
            }
        };
        match rest {
            ["positional_embedding"] => (
                format!("{side}/position_encodings/encodings"),
                None,
                TensorType::F32,
            ),
            ["token_embedding", "weight"] => {
                ("decoder/embeddings/weight".into(), None, TensorType::F16)
            }
            [conv, f] if conv.starts_with("conv") => (
                format!("encoder/{conv}/{f}"),
                None,
                if *f == "weight" {
                    TensorType::F16
                } else {
                    TensorType::F32
                },
            ),
            ["ln_post", f] | ["ln", f] => (
                format!("{side}/layer_norm/{}", field(f)),
                None,
                TensorType::F32,
            ),
            ["blocks", i, module, f] => {
                let l = format!("{side}/layer_{i}");
                let src = match *module {
                    "attn_ln" => format!("{l}/self_attention/layer_norm/{}", field(f)),
                    "cross_attn_ln" => format!("{l}/attention/layer_norm/{}", field(f)),
                    "mlp_ln" => format!("{l}/ffn/layer_norm/{}", field(f)),
                    other => panic!("unexpected module {other}"),
                };
                (src, None, TensorType::F32)
            }
            ["blocks", i, "mlp", n, f] => {
                let k = if *n == "0" { 0 } else { 1 };
                (
                    format!("{side}/layer_{i}/ffn/linear_{k}/{f}"),
                    None,
                    matrix_or_vector(f),
                )
            }
            ["blocks", i, attn, proj, f] => {
                let l = format!("{side}/layer_{i}");
                let s = state;
                let (src, rows) = match (*attn, *proj) {
                    ("attn", "query") => (format!("{l}/self_attention/linear_0/{f}"), Some((0, s))),
                    ("attn", "key") => {
                        (format!("{l}/self_attention/linear_0/{f}"), Some((s, 2 * s)))
                    }
                    ("attn", "value") => (
                        format!("{l}/self_attention/linear_0/{f}"),
                        Some((2 * s, 3 * s)),
                    ),
                    ("attn", "out") => (format!("{l}/self_attention/linear_1/{f}"), None),
                    ("cross_attn", "query") => (format!("{l}/attention/linear_0/{f}"), None),
                    ("cross_attn", "key") => (format!("{l}/attention/linear_1/{f}"), Some((0, s))),
                    ("cross_attn", "value") => {
                        (format!("{l}/attention/linear_1/{f}"), Some((s, 2 * s)))
                    }
                    ("cross_attn", "out") => (format!("{l}/attention/linear_2/{f}"), None),
                    other => panic!("unexpected projection {other:?}"),
                };
                (src, rows, matrix_or_vector(f))
            }
            other => panic!("unexpected tensor {other:?}"),
        }
    }

    /// Checks every tensor of `out` against `source`; returns how many were checked.
    pub(crate) fn check_every_tensor(source: &Ct2Model, out: &GgmlModel, state: usize) -> usize {
        for t in &out.tensors {
            let (src_name, rows, ttype) = expected_source(&t.name, state);
            let src = source
                .get(&src_name)
                .unwrap_or_else(|| panic!("{src_name} missing"));
            let values = src.to_f32().expect("float source");
            let cols = if src.dims.len() >= 2 {
                src.dims[1..].iter().product()
            } else {
                1
            };
            let want: Vec<f32> = match rows {
                Some((a, b)) => values[a * cols..b * cols].to_vec(),
                None => values,
            };
            assert_eq!(t.ttype, ttype, "{}: stored type", t.name);
            assert_eq!(t.to_f32(), want, "{}: values", t.name);
            assert_eq!(
                t.dims.iter().product::<usize>(),
                want.len(),
                "{}: size",
                t.name
            );
            if t.name.starts_with("encoder.conv") && t.name.ends_with("bias") {
                assert_eq!(t.dims, vec![state, 1], "conv bias is [n, 1]");
            }
        }
        let names: BTreeSet<&str> = out.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), out.tensors.len(), "no tensor twice");
        assert!(
            !names.iter().any(|n| n.ends_with("key.bias")),
            "whisper.cpp has no key bias"
        );
        out.tensors.len()
    }

    #[test]
    fn every_tensor_matches_its_source_and_the_header_describes_the_model() {
        let model = tiny_ct2();
        let vocab = vocabulary();
        let mut out = Vec::new();
        let converted = convert(
            &Ct2Files {
                model: &model,
                vocabulary: &vocab,
            },
            &mut out,
        )
        .expect("converts");
        let back = ggml::read(&mut out.as_slice(), true).expect("reads back");
        assert_eq!(back.hparams, converted.hparams);
        let hp = back.hparams;
        assert_eq!(
            (
                hp.n_vocab,
                hp.n_audio_ctx,
                hp.n_audio_state,
                hp.n_audio_head,
                hp.n_audio_layer
            ),
            (VOCAB as i32, 1500, STATE as i32, 2, 1)
        );
        assert_eq!(
            (
                hp.n_text_ctx,
                hp.n_text_state,
                hp.n_text_head,
                hp.n_text_layer,
                hp.n_mels,
                hp.ftype
            ),
            (448, STATE as i32, 2, 1, 80, 1)
        );
        assert_eq!(back.tokens.len(), vocab::TEXT_TOKENS);
        assert_eq!(back.tokens[7], b" t7");
        assert_eq!((back.mel.0, back.mel.1), (80, 201));
        let source = Ct2Model::parse(&model).expect("parses");
        // Encoder: 5 + 15 per layer + ln_post (2); decoder: 2 + 24 per layer + ln (2).
        let checked = check_every_tensor(&source, &back, STATE);
        assert_eq!(checked, 5 + 15 + 2 + 2 + 15 + 9 + 2);
    }

    #[test]
    fn an_unknown_weight_is_an_error_not_a_silent_gap() {
        let mut model = tiny_ct2();
        // Rename a layer-norm gamma: the converter must notice both the missing and the extra name.
        let needle = b"encoder/layer_norm/gamma";
        let at = model
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("present");
        model[at..at + 7].copy_from_slice(b"encodes");
        let err = convert(
            &Ct2Files {
                model: &model,
                vocabulary: &vocabulary(),
            },
            &mut Vec::new(),
        )
        .expect_err("must fail");
        assert!(
            err.to_string().contains("encoder/layer_norm/gamma"),
            "{err}"
        );
    }

    /// The real thing: the installed `tiny.en` against the `model.bin` in its wheel, every
    /// tensor compared value by value (`make test` installs it and sets TEST_REQUIRE_MODELS).
    #[test]
    fn the_installed_tiny_en_matches_its_wheel_tensor_by_tensor() {
        let dir = crate::models::ModelDir::from_config(Path::new(""));
        let known = crate::models::catalog::find("tiny.en").expect("in the catalog");
        let wheel = dir.root().join(".downloads").join(known.packages[0].wheel);
        let (Ok(installed), true) = (dir.resolve("tiny.en"), wheel.is_file()) else {
            assert!(
                std::env::var("TEST_REQUIRE_MODELS").as_deref() != Ok("1"),
                "TEST_REQUIRE_MODELS=1 but tiny.en is not installed"
            );
            eprintln!("skipping: tiny.en is not installed");
            return;
        };
        let wheels = vec![wheel];
        let model =
            crate::models::install::read_member(&wheels, known.model_bin[0]).expect("model.bin");
        let vocab_text = String::from_utf8(
            crate::models::install::read_member(&wheels, known.vocabulary).expect("vocabulary"),
        )
        .expect("utf-8");
        let source = Ct2Model::parse(&model).expect("parses");
        let file = std::fs::read(installed).expect("ggml file");
        let back = ggml::read(&mut file.as_slice(), true).expect("reads");
        assert_eq!(
            back.tokens,
            vocab::tokens_from_vocabulary(&vocab_text).expect("vocab")
        );
        let checked = check_every_tensor(&source, &back, 384);
        // 5 + 4 x 15 + 2 (encoder) + 2 + 4 x 24 + 2 (decoder)
        assert_eq!(checked, 167);
    }
}
