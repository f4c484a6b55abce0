//! whisper.cpp's model file: `ggml` magic, eleven i32 hyper-parameters, the mel filterbank,
//! the vocabulary as raw bytes, then the tensors under OpenAI's names. The reader is used by
//! `callgrade models list` (to describe a file) and by the converter's tests (to check every
//! tensor against its source).

use std::io::{self, Read, Write};

use super::ModelError;

/// `ggml` as a little-endian u32.
pub const MAGIC: u32 = 0x6767_6d6c;

/// The hyper-parameters in the order the file stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HParams {
    /// Vocabulary size (51864 English-only, 51865 multilingual, 51866 large-v3).
    pub n_vocab: i32,
    /// Encoder positions (1500).
    pub n_audio_ctx: i32,
    /// Encoder width.
    pub n_audio_state: i32,
    /// Encoder attention heads.
    pub n_audio_head: i32,
    /// Encoder layers.
    pub n_audio_layer: i32,
    /// Decoder positions (448).
    pub n_text_ctx: i32,
    /// Decoder width.
    pub n_text_state: i32,
    /// Decoder attention heads.
    pub n_text_head: i32,
    /// Decoder layers.
    pub n_text_layer: i32,
    /// Mel bands (80, or 128 for large-v3).
    pub n_mels: i32,
    /// 0 = f32, 1 = f16 weights, 7 = Q8_0 (quantised files add 1000 x ggml's quantisation
    /// version, 2: 2007).
    pub ftype: i32,
}

impl HParams {
    fn to_array(self) -> [i32; 11] {
        [
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            self.ftype,
        ]
    }

    /// Whether the vocabulary holds languages beyond English.
    pub fn is_multilingual(&self) -> bool {
        self.n_vocab >= 51_865
    }

    /// OpenAI's size name for these dimensions (`tiny`, `base`, ...), if it is a known one.
    pub fn size_name(&self) -> Option<&'static str> {
        Some(match (self.n_audio_state, self.n_audio_layer) {
            (384, 4) => "tiny",
            (512, 6) => "base",
            (768, 12) => "small",
            (1024, 24) => "medium",
            (1280, 32) => "large",
            (1280, 4) => "large-v3-turbo",
            _ => return None,
        })
    }
}

/// Tensor element type in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    /// f32 (vectors, conv biases, positional embeddings).
    F32,
    /// f16 (matrices, conv kernels).
    F16,
    /// ggml's Q8_0: blocks of 32 values along a row, each an f16 scale and 32 signed bytes.
    Q8_0,
}

/// Values per Q8_0 block.
pub const Q8_0_BLOCK: usize = 32;
/// Bytes per Q8_0 block: the f16 scale and 32 bytes.
const Q8_0_BYTES: usize = 2 + Q8_0_BLOCK;

impl TensorType {
    fn code(self) -> i32 {
        match self {
            TensorType::F32 => 0,
            TensorType::F16 => 1,
            TensorType::Q8_0 => 8,
        }
    }

    /// Bytes `n` elements take.
    fn bytes_for(self, n: usize) -> usize {
        match self {
            TensorType::F32 => n * 4,
            TensorType::F16 => n * 2,
            TensorType::Q8_0 => n / Q8_0_BLOCK * Q8_0_BYTES,
        }
    }
}

/// One tensor as stored: dims outermost first (the file stores them reversed).
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// OpenAI name, e.g. `encoder.blocks.0.attn.query.weight`.
    pub name: String,
    /// Shape, outermost first.
    pub dims: Vec<usize>,
    /// Element type.
    pub ttype: TensorType,
    /// Raw little-endian data.
    pub data: Vec<u8>,
}

impl Tensor {
    /// A tensor of `values`, stored as `ttype`.
    pub fn new(
        name: impl Into<String>,
        dims: Vec<usize>,
        ttype: TensorType,
        values: &[f32],
    ) -> Self {
        let data = match ttype {
            TensorType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            TensorType::F16 => values
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect(),
            TensorType::Q8_0 => values.chunks(Q8_0_BLOCK).flat_map(q8_0_block).collect(),
        };
        Self {
            name: name.into(),
            dims,
            ttype,
            data,
        }
    }

    /// The elements widened to f32.
    pub fn to_f32(&self) -> Vec<f32> {
        match self.ttype {
            TensorType::F32 => self
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            TensorType::F16 => self
                .data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            TensorType::Q8_0 => self
                .data
                .chunks_exact(Q8_0_BYTES)
                .flat_map(|b| {
                    let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
                    b[2..].iter().map(move |&q| f32::from(q as i8) * d)
                })
                .collect(),
        }
    }

    /// Whether whisper.cpp keeps this tensor in the weight type of a quantised model: every
    /// matrix (two dimensions) it stores as f16; vectors, positional embeddings (f32) and
    /// conv kernels (three dimensions, always f16) stay as they are.
    pub fn is_weight_matrix(&self) -> bool {
        self.ttype == TensorType::F16 && self.dims.len() == 2
    }

    /// This tensor as Q8_0 (its rows must be whole blocks).
    pub fn to_q8_0(&self) -> Option<Tensor> {
        let row = *self.dims.last()?;
        if row % Q8_0_BLOCK != 0 {
            return None;
        }
        Some(Tensor::new(
            self.name.clone(),
            self.dims.clone(),
            TensorType::Q8_0,
            &self.to_f32(),
        ))
    }
}

/// One Q8_0 block as ggml's reference quantiser writes it: scale = max |x| / 127, each value
/// rounded to the nearest multiple of it.
fn q8_0_block(values: &[f32]) -> Vec<u8> {
    let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut out = Vec::with_capacity(Q8_0_BYTES);
    out.extend_from_slice(&half::f16::from_f32(d).to_le_bytes());
    out.extend(values.iter().map(|v| ((v * id).round() as i8) as u8));
    out
}

/// Writes the file header: magic, hyper-parameters, filterbank and vocabulary.
pub fn write_header(
    out: &mut impl Write,
    hp: &HParams,
    mel: (usize, usize, &[f32]),
    tokens: &[Vec<u8>],
) -> io::Result<()> {
    out.write_all(&MAGIC.to_le_bytes())?;
    for v in hp.to_array() {
        out.write_all(&v.to_le_bytes())?;
    }
    let (rows, cols, filters) = mel;
    out.write_all(&(rows as i32).to_le_bytes())?;
    out.write_all(&(cols as i32).to_le_bytes())?;
    for f in filters {
        out.write_all(&f.to_le_bytes())?;
    }
    out.write_all(&(tokens.len() as i32).to_le_bytes())?;
    for t in tokens {
        out.write_all(&(t.len() as i32).to_le_bytes())?;
        out.write_all(t)?;
    }
    Ok(())
}

/// Writes one tensor record.
pub fn write_tensor(out: &mut impl Write, t: &Tensor) -> io::Result<()> {
    out.write_all(&(t.dims.len() as i32).to_le_bytes())?;
    out.write_all(&(t.name.len() as i32).to_le_bytes())?;
    out.write_all(&t.ttype.code().to_le_bytes())?;
    for d in t.dims.iter().rev() {
        out.write_all(&(*d as i32).to_le_bytes())?;
    }
    out.write_all(t.name.as_bytes())?;
    out.write_all(&t.data)
}

/// A whole model file, read back.
#[derive(Debug, Clone)]
pub struct GgmlModel {
    /// Hyper-parameters.
    pub hparams: HParams,
    /// Filterbank rows, columns and weights.
    pub mel: (usize, usize, Vec<f32>),
    /// Vocabulary tokens.
    pub tokens: Vec<Vec<u8>>,
    /// Tensors in file order (empty when only the header was read).
    pub tensors: Vec<Tensor>,
}

/// Reads a model file; with `tensors == false` stops after the header (cheap, for listings).
pub fn read(input: &mut impl Read, tensors: bool) -> Result<GgmlModel, ModelError> {
    let bad = |what: &str| ModelError::Format(format!("not a whisper.cpp model: {what}"));
    let mut r = CountingReader { inner: input };
    if r.u32().map_err(|_| bad("too short"))? != MAGIC {
        return Err(bad("wrong magic"));
    }
    let mut hp = [0i32; 11];
    for v in &mut hp {
        *v = r.i32().map_err(|_| bad("truncated header"))?;
    }
    let hparams = HParams {
        n_vocab: hp[0],
        n_audio_ctx: hp[1],
        n_audio_state: hp[2],
        n_audio_head: hp[3],
        n_audio_layer: hp[4],
        n_text_ctx: hp[5],
        n_text_state: hp[6],
        n_text_head: hp[7],
        n_text_layer: hp[8],
        n_mels: hp[9],
        ftype: hp[10],
    };
    let rows = r.len(1024).map_err(|_| bad("bad filterbank"))?;
    let cols = r.len(4096).map_err(|_| bad("bad filterbank"))?;
    let mut filters = vec![0f32; rows * cols];
    for f in &mut filters {
        *f = f32::from_bits(r.u32().map_err(|_| bad("truncated filterbank"))?);
    }
    let n_tokens = r.len(1 << 20).map_err(|_| bad("bad vocabulary"))?;
    let mut tokens = Vec::with_capacity(n_tokens);
    for _ in 0..n_tokens {
        let len = r.len(1024).map_err(|_| bad("bad token"))?;
        tokens.push(r.bytes(len).map_err(|_| bad("truncated vocabulary"))?);
    }
    let mut out = GgmlModel {
        hparams,
        mel: (rows, cols, filters),
        tokens,
        tensors: vec![],
    };
    if !tensors {
        return Ok(out);
    }
    loop {
        let n_dims = match r.i32() {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(ModelError::Io(e)),
        };
        let n_dims = usize::try_from(n_dims)
            .ok()
            .filter(|n| (1..=4).contains(n))
            .ok_or_else(|| bad("bad tensor rank"))?;
        let name_len = r.len(256).map_err(|_| bad("bad tensor name"))?;
        let ttype = match r.i32().map_err(|_| bad("truncated tensor"))? {
            0 => TensorType::F32,
            1 => TensorType::F16,
            8 => TensorType::Q8_0,
            other => return Err(bad(&format!("tensor type {other} is not f32, f16 or q8_0"))),
        };
        let mut dims = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            dims.push(r.len(1 << 20).map_err(|_| bad("bad tensor dims"))?);
        }
        dims.reverse();
        let name = String::from_utf8(r.bytes(name_len).map_err(|_| bad("truncated name"))?)
            .map_err(|_| bad("tensor name is not UTF-8"))?;
        let n: usize = dims.iter().product();
        let data = r
            .bytes(ttype.bytes_for(n))
            .map_err(|_| bad(&format!("tensor {name} is truncated")))?;
        out.tensors.push(Tensor {
            name,
            dims,
            ttype,
            data,
        });
    }
    Ok(out)
}

struct CountingReader<'a, R> {
    inner: &'a mut R,
}

impl<R: Read> CountingReader<'_, R> {
    fn u32(&mut self) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.inner.read_exact(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn i32(&mut self) -> io::Result<i32> {
        self.u32().map(|v| v as i32)
    }

    /// A non-negative length no larger than `max` (so a corrupt file cannot ask for gigabytes).
    fn len(&mut self, max: usize) -> io::Result<usize> {
        let v = self.i32()?;
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "length out of range"))
    }

    fn bytes(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.inner.take(n as u64).read_to_end(&mut buf)?;
        if buf.len() != n {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "truncated"));
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> HParams {
        HParams {
            n_vocab: 4,
            n_audio_ctx: 1,
            n_audio_state: 64,
            n_audio_head: 1,
            n_audio_layer: 1,
            n_text_ctx: 1,
            n_text_state: 64,
            n_text_head: 1,
            n_text_layer: 1,
            n_mels: 1,
            ftype: 2007,
        }
    }

    #[test]
    fn q8_0_blocks_keep_each_value_within_half_a_step() {
        let values: Vec<f32> = (0..128)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let t = Tensor::new("m", vec![2, 64], TensorType::F16, &values);
        let q = t.to_q8_0().expect("rows of 64 are whole blocks");
        assert_eq!(q.data.len(), 4 * 34, "four blocks of scale + 32 bytes");
        for (block, (a, b)) in t.to_f32().chunks(32).zip(q.to_f32().chunks(32)).enumerate() {
            let step = a.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= step * 0.51 + 1e-6,
                    "block {block}: {x} -> {y}"
                );
            }
        }
        let zeros = Tensor::new("z", vec![1, 32], TensorType::F16, &[0.0; 32]);
        assert_eq!(zeros.to_q8_0().unwrap().to_f32(), vec![0.0; 32]);
        let ragged = Tensor::new("r", vec![1, 48], TensorType::F16, &[1.0; 48]);
        assert!(ragged.to_q8_0().is_none(), "48 is not whole blocks");
    }

    #[test]
    fn only_f16_matrices_are_weights_to_quantise() {
        let m = Tensor::new("w", vec![2, 32], TensorType::F16, &[0.5; 64]);
        let pos = Tensor::new(
            "decoder.positional_embedding",
            vec![2, 32],
            TensorType::F32,
            &[0.5; 64],
        );
        let conv = Tensor::new(
            "encoder.conv1.weight",
            vec![2, 1, 32],
            TensorType::F16,
            &[0.5; 64],
        );
        let bias = Tensor::new("b", vec![32], TensorType::F32, &[0.5; 32]);
        assert!(m.is_weight_matrix());
        assert!(!pos.is_weight_matrix() && !conv.is_weight_matrix() && !bias.is_weight_matrix());
    }

    #[test]
    fn a_q8_0_file_reads_back_tensor_for_tensor() {
        let mut file = vec![];
        write_header(&mut file, &header(), (1, 2, &[0.25, 0.5]), &[b"a".to_vec()]).unwrap();
        let values: Vec<f32> = (0..64).map(|i| i as f32 / 10.0).collect();
        let q = Tensor::new("w", vec![2, 32], TensorType::Q8_0, &values);
        let v = Tensor::new("b", vec![32], TensorType::F32, &values[..32]);
        write_tensor(&mut file, &q).unwrap();
        write_tensor(&mut file, &v).unwrap();
        let back = read(&mut file.as_slice(), true).expect("reads");
        assert_eq!(back.hparams.ftype, 2007);
        assert_eq!(back.tensors, vec![q, v]);
    }
}
