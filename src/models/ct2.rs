//! Reading CTranslate2's `model.bin`: the format faster-whisper models are published in.
//!
//! Layout (little-endian): u32 binary version (6), the spec name, u32 revision, u32 variable
//! count, then per variable its name, u8 rank, u32 dims, u8 dtype, u32 byte count and the raw
//! data; then a u32 alias count and (alias, target) name pairs. Strings are a u16 length that
//! counts a trailing NUL, then the bytes. Nothing here trusts a length: every read is checked
//! against the bytes that are really there.

use std::collections::BTreeMap;

use super::ModelError;

/// Binary versions this reader understands.
const SUPPORTED_VERSIONS: std::ops::RangeInclusive<u32> = 5..=6;

/// A CTranslate2 element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 8-bit integer (quantised weights or small scalars).
    I8,
    /// 16-bit integer (e.g. `num_heads`).
    I16,
    /// 32-bit integer.
    I32,
    /// IEEE half float.
    F16,
    /// bfloat16.
    BF16,
}

impl DType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => DType::F32,
            1 => DType::I8,
            2 => DType::I16,
            3 => DType::I32,
            4 => DType::F16,
            5 => DType::BF16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::I8 => 1,
            DType::I16 | DType::F16 | DType::BF16 => 2,
            DType::F32 | DType::I32 => 4,
        }
    }
}

/// One stored variable.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable {
    /// Shape, outermost first.
    pub dims: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Raw little-endian data.
    pub data: Vec<u8>,
}

impl Variable {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    /// Whether it holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as f32 (floats widened; integers converted), or `None` for quantised int8.
    pub fn to_f32(&self) -> Option<Vec<f32>> {
        let d = &self.data;
        Some(match self.dtype {
            DType::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => d
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::I16 => d
                .chunks_exact(2)
                .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])))
                .collect(),
            DType::I32 => d
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect(),
            DType::I8 => return None,
        })
    }

    /// The elements as IEEE half floats (f32 and bf16 are rounded), or `None` for integers.
    pub fn to_f16(&self) -> Option<Vec<half::f16>> {
        match self.dtype {
            DType::F16 => Some(
                self.data
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]))
                    .collect(),
            ),
            DType::F32 | DType::BF16 => Some(
                self.to_f32()?
                    .into_iter()
                    .map(half::f16::from_f32)
                    .collect(),
            ),
            _ => None,
        }
    }

    /// A scalar integer (e.g. `num_heads`).
    pub fn scalar_int(&self) -> Option<i64> {
        if self.len() != 1 {
            return None;
        }
        let d = &self.data;
        Some(match self.dtype {
            DType::I8 => i64::from(d[0] as i8),
            DType::I16 => i64::from(i16::from_le_bytes([d[0], d[1]])),
            DType::I32 => i64::from(i32::from_le_bytes([d[0], d[1], d[2], d[3]])),
            _ => return None,
        })
    }
}

/// A parsed `model.bin`.
#[derive(Debug, Clone)]
pub struct Ct2Model {
    /// Spec name, e.g. `WhisperSpec`.
    pub spec: String,
    /// Spec revision.
    pub revision: u32,
    /// Variables by name.
    pub variables: BTreeMap<String, Variable>,
    /// Alias name to the variable it stands for.
    pub aliases: BTreeMap<String, String>,
}

impl Ct2Model {
    /// Parses `bytes`, the whole `model.bin`.
    pub fn parse(bytes: &[u8]) -> Result<Self, ModelError> {
        let mut r = Reader { bytes, pos: 0 };
        let version = r.u32()?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(ModelError::Format(format!(
                "CTranslate2 binary version {version} is not supported (expected 5 or 6)"
            )));
        }
        let spec = r.string()?;
        let revision = r.u32()?;
        let count = r.u32()?;
        let mut variables = BTreeMap::new();
        for _ in 0..count {
            let name = r.string()?;
            let rank = r.u8()?;
            let dims = (0..rank)
                .map(|_| r.u32().map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let code = r.u8()?;
            let dtype = DType::from_code(code).ok_or_else(|| {
                ModelError::Format(format!("variable {name}: unknown dtype code {code}"))
            })?;
            let nbytes = r.u32()? as usize;
            let elements = dims
                .iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .ok_or_else(|| ModelError::Format(format!("variable {name}: shape overflows")))?;
            if elements.checked_mul(dtype.size()) != Some(nbytes) {
                return Err(ModelError::Format(format!(
                    "variable {name}: {nbytes} bytes do not match shape {dims:?} of {dtype:?}"
                )));
            }
            let data = r.take(nbytes)?.to_vec();
            variables.insert(name, Variable { dims, dtype, data });
        }
        let mut aliases = BTreeMap::new();
        // Version 5 files may end without an alias table.
        if r.remaining() > 0 {
            let count = r.u32()?;
            for _ in 0..count {
                let alias = r.string()?;
                let target = r.string()?;
                aliases.insert(alias, target);
            }
        }
        Ok(Self {
            spec,
            revision,
            variables,
            aliases,
        })
    }

    /// The variable `name`, following an alias.
    pub fn get(&self, name: &str) -> Option<&Variable> {
        self.variables.get(name).or_else(|| {
            self.aliases
                .get(name)
                .and_then(|target| self.variables.get(target))
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        if n > self.remaining() {
            return Err(ModelError::Format(format!(
                "model.bin is truncated: {n} bytes needed at offset {}, {} left",
                self.pos,
                self.remaining()
            )));
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, ModelError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ModelError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, ModelError> {
        let len = usize::from(self.u16()?);
        let raw = self.take(len)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec())
            .map_err(|_| ModelError::Format("a name in model.bin is not UTF-8".into()))
    }
}

/// Writes a CTranslate2 `model.bin` (used by tests to build small models).
pub fn write(
    spec: &str,
    variables: &[(&str, Vec<usize>, DType, Vec<u8>)],
    aliases: &[(&str, &str)],
) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        let len = u16::try_from(s.len() + 1).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&6u32.to_le_bytes());
    string(&mut out, spec);
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&(variables.len() as u32).to_le_bytes());
    for (name, dims, dtype, data) in variables {
        string(&mut out, name);
        out.push(dims.len() as u8);
        for d in dims {
            out.extend_from_slice(&(*d as u32).to_le_bytes());
        }
        out.push(match dtype {
            DType::F32 => 0,
            DType::I8 => 1,
            DType::I16 => 2,
            DType::I32 => 3,
            DType::F16 => 4,
            DType::BF16 => 5,
        });
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
    for (alias, target) in aliases {
        string(&mut out, alias);
        string(&mut out, target);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_model_reads_back_with_aliases() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
            .iter()
            .flat_map(|f| f.to_le_bytes())
            .collect();
        let bytes = write(
            "WhisperSpec",
            &[
                ("a/weight", vec![2, 2], DType::F32, data),
                (
                    "a/num_heads",
                    vec![],
                    DType::I16,
                    6i16.to_le_bytes().to_vec(),
                ),
            ],
            &[("b/weight", "a/weight")],
        );
        let m = Ct2Model::parse(&bytes).expect("parses");
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(
            m.get("b/weight").and_then(Variable::to_f32),
            Some(vec![1.0, 2.0, 3.0, 4.0])
        );
        assert_eq!(m.get("a/num_heads").and_then(Variable::scalar_int), Some(6));
    }

    #[test]
    fn a_truncated_or_lying_file_is_an_error_not_a_panic() {
        let bytes = write(
            "WhisperSpec",
            &[("a", vec![4], DType::F32, vec![0; 16])],
            &[],
        );
        for cut in 0..bytes.len() - 4 {
            assert!(Ct2Model::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut lying = bytes.clone();
        // Claim a huge dimension: must fail on the byte count, not allocate.
        let dim_at = 4 + 2 + "WhisperSpec".len() + 1 + 4 + 4 + 2 + 2 + 1;
        lying[dim_at..dim_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Ct2Model::parse(&lying).is_err());
    }
}
