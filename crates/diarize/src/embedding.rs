//! CAM++ speaker embeddings (3D-Speaker `CAMPPlus`), inference on CPU with candle.
//!
//! The model maps mean-normalised 80-dimensional Kaldi filterbank frames
//! (see [`crate::fbank`]) of one utterance to a 192-dimensional speaker
//! embedding; embeddings of the same speaker have high cosine similarity.
//!
//! Architecture (inference mode, batch norms use their running statistics):
//!
//! * `head` (FCM): a small 2-D ResNet over (frequency, time) that downsamples
//!   the frequency axis 80 → 10 and flattens to 320 channels;
//! * `xvector`: a stride-2 TDNN layer, three densely connected
//!   context-aware (CAM) TDNN blocks with transition layers, a final
//!   batch norm + ReLU, mean/std statistics pooling over time and a linear
//!   projection to 192 dimensions followed by a non-affine batch norm
//!   (3D-Speaker's `batchnorm_` config: no ReLU on the embedding).
//!
//! Implementation notes: every batch norm that directly follows a linear
//! operation is folded into that operation's weights and bias at load time,
//! and the 3×3 convolutions of the head use a dedicated im2col + matrix
//! product (`Conv3x3`) that supports the (2, 1) stride and is several times
//! faster than candle's generic CPU `conv2d` for these shapes.
//!
//! Weights are the original PyTorch state dict (`campplus_cn_en_common.pt`)
//! or the same tensors stored as safetensors; `num_batches_tracked` entries
//! are ignored.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context};
use candle_core::{DType, Device, Tensor, D};

use crate::fbank::{self, Fbank, FbankFrame, NUM_MEL_BINS};

/// Dimension of the speaker embedding produced by [`CamPlus`].
pub const EMBEDDING_DIM: usize = 192;

/// Minimum number of fbank frames accepted by [`CamPlus`] (statistics pooling
/// needs at least two frames after the stride-2 TDNN layer).
pub const MIN_FRAMES: usize = 3;

const BN_EPS: f64 = 1e-5;
/// Channels of the FCM head.
const HEAD_CHANNELS: usize = 32;
/// Frequency rows left after the head's three stride-2 stages (80 / 8).
const HEAD_OUT_ROWS: usize = NUM_MEL_BINS / 8;
/// Segment length (frames) of the CAM layer's segment pooling.
const SEG_LEN: usize = 100;
/// Dense TDNN blocks: (number of layers, dilation).
const BLOCKS: [(usize, usize); 3] = [(12, 1), (24, 2), (16, 2)];
const INIT_CHANNELS: usize = 128;
const GROWTH_RATE: usize = 32;
const BN_CHANNELS: usize = 128;
/// Upper bound on the number of f32 elements of one im2col tile in
/// [`Conv3x3`] (8 MiB); keeps temporaries cache- and allocator-friendly.
const IM2COL_TILE_ELEMS: usize = 2 << 20;

/// Named weight tensors with shape-checked lookup.
struct Weights {
    map: HashMap<String, Tensor>,
}

impl Weights {
    fn get(&self, name: &str, shape: &[usize]) -> anyhow::Result<Tensor> {
        let t = self
            .map
            .get(name)
            .ok_or_else(|| anyhow!("CAM++ weights: missing tensor `{name}`"))?;
        ensure!(
            t.dims() == shape,
            "CAM++ weights: `{name}` has shape {:?}, expected {shape:?}",
            t.dims()
        );
        Ok(t.to_dtype(DType::F32)?
            .to_device(&Device::Cpu)?
            .contiguous()?)
    }
}

/// Inference-mode batch norm as a per-channel affine map `x * scale + shift`
/// (both 1-D tensors of length C).
#[derive(Debug, Clone)]
struct BatchNorm {
    scale: Tensor,
    shift: Tensor,
}

impl BatchNorm {
    /// Loads `{prefix}.running_mean/var`, and `.weight/.bias` when `affine`.
    fn load(w: &Weights, prefix: &str, channels: usize, affine: bool) -> anyhow::Result<Self> {
        let mean = w.get(&format!("{prefix}.running_mean"), &[channels])?;
        let var = w.get(&format!("{prefix}.running_var"), &[channels])?;
        let inv_std = (var + BN_EPS)?.sqrt()?.recip()?;
        let (scale, shift) = if affine {
            let gamma = w.get(&format!("{prefix}.weight"), &[channels])?;
            let beta = w.get(&format!("{prefix}.bias"), &[channels])?;
            let scale = (gamma * inv_std)?;
            let shift = (beta - (&mean * &scale)?)?;
            (scale, shift)
        } else {
            let shift = (mean.neg()? * &inv_std)?;
            (inv_std, shift)
        };
        Ok(Self { scale, shift })
    }

    /// Folds this batch norm into a preceding bias-free linear map with
    /// weights `(C_out, ...)`: returns the scaled weights and the bias (C_out).
    fn fold_into(&self, weight: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let mut shape = vec![1; weight.rank()];
        shape[0] = self.scale.dim(0)?;
        let weight = weight.broadcast_mul(&self.scale.reshape(shape)?)?;
        Ok((weight, self.shift.clone()))
    }

    /// Batch norm followed by ReLU over (B, C, T).
    fn forward_relu_1d(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let c = self.scale.dim(0)?;
        x.broadcast_mul(&self.scale.reshape((c, 1))?)?
            .broadcast_add(&self.shift.reshape((c, 1))?)?
            .relu()
    }

    /// Batch norm over (B, C).
    fn forward_2d(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)
    }
}

/// 3×3 `Conv2d` with padding 1, stride (`freq_stride`, 1) and a folded batch
/// norm, over one item (C, H = frequency, W = time).
///
/// The zero-padded input is flattened row-major, so that each of the nine
/// taps of the kernel is a contiguous shifted window of the flattened signal
/// (rows of width W + 2; the two extra output columns per row are dropped).
/// For stride 2 the padded rows are first split into even and odd phases.
/// The im2col matrix, plus a row of ones carrying the bias, is multiplied by
/// the (C_out, 9 C + 1) weights tile by tile along the output rows.
#[derive(Debug, Clone)]
struct Conv3x3 {
    /// (C_out, 9 * C_in + 1): column `(kh * 3 + kw) * C_in + c`, then bias.
    weight: Tensor,
    c_in: usize,
    c_out: usize,
    freq_stride: usize,
}

impl Conv3x3 {
    /// Loads `{name}` (C_out, C_in, 3, 3) and folds the following batch norm.
    fn load(
        w: &Weights,
        name: &str,
        bn: &BatchNorm,
        c_in: usize,
        c_out: usize,
        freq_stride: usize,
    ) -> anyhow::Result<Self> {
        let (weight, bias) = bn.fold_into(&w.get(name, &[c_out, c_in, 3, 3])?)?;
        // (C_out, C_in, kh, kw) -> (C_out, kh, kw, C_in) -> (C_out, 9 C_in)
        let weight = weight.permute((0, 2, 3, 1))?.reshape((c_out, 9 * c_in))?;
        let weight = Tensor::cat(&[weight, bias.reshape((c_out, 1))?], 1)?;
        Ok(Self {
            weight,
            c_in,
            c_out,
            freq_stride,
        })
    }

    /// (C_in, H, W) -> (C_out, (H - 1) / stride + 1, W), contiguous.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (c, h, w) = x.dims3()?;
        if c != self.c_in || h == 0 || w == 0 {
            candle_core::bail!(
                "conv3x3: expected a non-empty input with {} channels, got {:?}",
                self.c_in,
                x.dims()
            );
        }
        let s = self.freq_stride;
        let h_out = (h - 1) / s + 1;
        let row = w + 2;
        // Rows per phase: output rows plus the kernel's reach in that phase,
        // plus one spare row so that the last taps' windows stay in bounds.
        let phase_rows = h_out + 2 / s + 1;
        let padded = x
            .pad_with_zeros(1, 1, s * phase_rows - h - 1)?
            .pad_with_zeros(2, 1, 1)?;
        let phases: Vec<Tensor> = if s == 1 {
            vec![padded.reshape((c, phase_rows * row))?]
        } else {
            let grouped = padded.reshape((c, phase_rows, s, row))?;
            (0..s)
                .map(|p| {
                    grouped
                        .narrow(2, p, 1)?
                        .contiguous()?
                        .reshape((c, phase_rows * row))
                })
                .collect::<candle_core::Result<_>>()?
        };

        let col_rows = 9 * c + 1;
        let tile_rows = (IM2COL_TILE_ELEMS / (col_rows * row)).clamp(1, h_out);
        let ones = Tensor::ones((1, tile_rows * row), DType::F32, x.device())?;
        let mut tiles = Vec::with_capacity(h_out.div_ceil(tile_rows));
        let mut r0 = 0;
        while r0 < h_out {
            let rows = tile_rows.min(h_out - r0);
            let n = rows * row;
            let mut taps = Vec::with_capacity(10);
            for kh in 0..3 {
                let phase = &phases[kh % s];
                for kw in 0..3 {
                    taps.push(phase.narrow(1, (r0 + kh / s) * row + kw, n)?);
                }
            }
            taps.push(ones.narrow(1, 0, n)?);
            let cols = Tensor::cat(&taps, 0)?;
            tiles.push(self.weight.matmul(&cols)?);
            r0 += rows;
        }
        let out = if tiles.len() == 1 {
            tiles.remove(0)
        } else {
            Tensor::cat(&tiles, 1)?
        };
        out.reshape((self.c_out, h_out, row))?
            .narrow(2, 0, w)?
            .contiguous()
    }
}

/// Keeps every second frequency row of (C, H, W): the input positions seen by
/// a 1×1 convolution with stride (2, 1).
fn take_even_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    let (c, h, w) = x.dims3()?;
    let x = if h % 2 == 1 {
        x.pad_with_zeros(1, 0, 1)?
    } else {
        x.clone()
    };
    let h_out = h.div_ceil(2);
    x.reshape((c, h_out, 2, w))?.narrow(2, 0, 1)?.squeeze(2)
}

/// `BasicResBlock` of the FCM head (batch norms folded into the convolutions).
#[derive(Debug, Clone)]
struct ResBlock {
    conv1: Conv3x3,
    conv2: Conv3x3,
    /// Stride-(2, 1) 1×1 projection used when downsampling:
    /// weights (C_out, C_in) and bias (C_out, 1, 1).
    shortcut: Option<(Tensor, Tensor)>,
}

impl ResBlock {
    fn load(
        w: &Weights,
        prefix: &str,
        channels: usize,
        freq_stride: usize,
    ) -> anyhow::Result<Self> {
        let c = channels;
        let bn1 = BatchNorm::load(w, &format!("{prefix}.bn1"), c, true)?;
        let bn2 = BatchNorm::load(w, &format!("{prefix}.bn2"), c, true)?;
        let shortcut = if freq_stride != 1 {
            let bn = BatchNorm::load(w, &format!("{prefix}.shortcut.1"), c, true)?;
            let weight = w
                .get(&format!("{prefix}.shortcut.0.weight"), &[c, c, 1, 1])?
                .reshape((c, c))?;
            let (weight, bias) = bn.fold_into(&weight)?;
            Some((weight, bias.reshape((c, 1, 1))?))
        } else {
            None
        };
        Ok(Self {
            conv1: Conv3x3::load(
                w,
                &format!("{prefix}.conv1.weight"),
                &bn1,
                c,
                c,
                freq_stride,
            )?,
            conv2: Conv3x3::load(w, &format!("{prefix}.conv2.weight"), &bn2, c, c, 1)?,
            shortcut,
        })
    }

    /// (C, H, W) -> (C, H / stride, W)
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let out = self.conv1.forward(x)?.relu()?;
        let out = self.conv2.forward(&out)?;
        let residual = match &self.shortcut {
            Some((weight, bias)) => {
                let sub = take_even_rows(x)?;
                let (c, h, w) = sub.dims3()?;
                weight
                    .matmul(&sub.reshape((c, h * w))?)?
                    .reshape((weight.dim(0)?, h, w))?
                    .broadcast_add(bias)?
            }
            None => x.clone(),
        };
        (out + residual)?.relu()
    }
}

/// FCM head: 2-D ResNet front end over (frequency, time).
#[derive(Debug, Clone)]
struct Head {
    conv1: Conv3x3,
    blocks: Vec<ResBlock>,
    conv2: Conv3x3,
}

impl Head {
    fn load(w: &Weights) -> anyhow::Result<Self> {
        let c = HEAD_CHANNELS;
        let mut blocks = Vec::with_capacity(4);
        for layer in ["head.layer1", "head.layer2"] {
            blocks.push(ResBlock::load(w, &format!("{layer}.0"), c, 2)?);
            blocks.push(ResBlock::load(w, &format!("{layer}.1"), c, 1)?);
        }
        let bn1 = BatchNorm::load(w, "head.bn1", c, true)?;
        let bn2 = BatchNorm::load(w, "head.bn2", c, true)?;
        Ok(Self {
            conv1: Conv3x3::load(w, "head.conv1.weight", &bn1, 1, c, 1)?,
            blocks,
            conv2: Conv3x3::load(w, "head.conv2.weight", &bn2, c, c, 2)?,
        })
    }

    /// One item: (80, T) -> (32 * 10, T)
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (f, t) = x.dims2()?;
        let mut out = self.conv1.forward(&x.reshape((1, f, t))?)?.relu()?;
        for block in &self.blocks {
            out = block.forward(&out)?;
        }
        let out = self.conv2.forward(&out)?.relu()?;
        let (c, h, _) = out.dims3()?;
        out.reshape((c * h, t))
    }
}

/// A 1×1 `Conv1d` over (B, C, T), computed as a matrix product.
#[derive(Debug, Clone)]
struct Pointwise {
    /// (1, C_out, C_in)
    weight: Tensor,
    /// (C_out, 1)
    bias: Option<Tensor>,
}

impl Pointwise {
    fn new(weight: Tensor, bias: Option<Tensor>) -> candle_core::Result<Self> {
        let (c_out, c_in) = weight.dims2()?;
        Ok(Self {
            weight: weight.reshape((1, c_out, c_in))?,
            bias: bias.map(|b| b.reshape((c_out, 1))).transpose()?,
        })
    }

    /// Loads `{prefix}.weight` (C_out, C_in, 1) and optionally `{prefix}.bias`.
    fn load(
        w: &Weights,
        prefix: &str,
        c_in: usize,
        c_out: usize,
        bias: bool,
    ) -> anyhow::Result<Self> {
        let weight = w
            .get(&format!("{prefix}.weight"), &[c_out, c_in, 1])?
            .reshape((c_out, c_in))?;
        let bias = if bias {
            Some(w.get(&format!("{prefix}.bias"), &[c_out])?)
        } else {
            None
        };
        Ok(Self::new(weight, bias)?)
    }

    /// Loads a bias-free `{prefix}.weight` and folds the following batch norm.
    fn load_folded(
        w: &Weights,
        prefix: &str,
        bn: &BatchNorm,
        c_in: usize,
        c_out: usize,
    ) -> anyhow::Result<Self> {
        let weight = w
            .get(&format!("{prefix}.weight"), &[c_out, c_in, 1])?
            .reshape((c_out, c_in))?;
        let (weight, bias) = bn.fold_into(&weight)?;
        Ok(Self::new(weight, Some(bias))?)
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = if x.dim(0)? == 1 {
            self.weight.matmul(x)?
        } else {
            self.weight.broadcast_matmul(x)?
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// Context-aware masking layer: a local dilated convolution gated by a
/// sigmoid of global + segment-level (100-frame) context.
#[derive(Debug, Clone)]
struct CamLayer {
    /// (32, 128, 3)
    linear_local: Tensor,
    dilation: usize,
    linear1: Pointwise,
    linear2: Pointwise,
}

impl CamLayer {
    fn load(w: &Weights, prefix: &str, dilation: usize) -> anyhow::Result<Self> {
        let reduced = BN_CHANNELS / 2;
        Ok(Self {
            linear_local: w.get(
                &format!("{prefix}.linear_local.weight"),
                &[GROWTH_RATE, BN_CHANNELS, 3],
            )?,
            dilation,
            linear1: Pointwise::load(w, &format!("{prefix}.linear1"), BN_CHANNELS, reduced, true)?,
            linear2: Pointwise::load(w, &format!("{prefix}.linear2"), reduced, GROWTH_RATE, true)?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _, t) = x.dims3()?;
        let y = x.conv1d(&self.linear_local, self.dilation, 1, self.dilation, 1)?;

        // The context is constant within each 100-frame segment and the gate
        // is pointwise in time, so the gate is computed once per segment and
        // expanded afterwards (same result as PyTorch's per-frame evaluation).
        let context = segment_means(x)?.broadcast_add(&x.mean_keepdim(2)?)?;
        let gate = candle_nn::ops::sigmoid(
            &self
                .linear2
                .forward(&self.linear1.forward(&context)?.relu()?)?,
        )?;
        let (_, c, segs) = gate.dims3()?;
        let gate = gate
            .unsqueeze(3)?
            .broadcast_as((b, c, segs, SEG_LEN))?
            .reshape((b, c, segs * SEG_LEN))?
            .narrow(2, 0, t)?;
        y * gate
    }
}

/// Averages (B, C, T) over consecutive 100-frame segments -> (B, C, ceil(T/100)),
/// like `avg_pool1d(kernel=100, stride=100, ceil_mode=True)`: the last,
/// partial segment is averaged over its own frames only.
fn segment_means(x: &Tensor) -> candle_core::Result<Tensor> {
    let (b, c, t) = x.dims3()?;
    let segs = t.div_ceil(SEG_LEN);
    let padded = segs * SEG_LEN;
    let x = if padded > t {
        x.pad_with_zeros(2, 0, padded - t)?
    } else {
        x.clone()
    };
    let sums = x.reshape((b, c, segs, SEG_LEN))?.sum(3)?;
    let inv_counts: Vec<f32> = (0..segs)
        .map(|s| 1.0 / (t.min((s + 1) * SEG_LEN) - s * SEG_LEN) as f32)
        .collect();
    let inv_counts = Tensor::from_vec(inv_counts, segs, x.device())?;
    sums.broadcast_mul(&inv_counts)
}

/// One layer of a densely connected CAM-TDNN block; returns the 32 new channels.
#[derive(Debug, Clone)]
struct DenseTdnnLayer {
    bn1: BatchNorm,
    /// `linear1` with `nonlinear2`'s batch norm folded in (ReLU applied after).
    linear1: Pointwise,
    cam: CamLayer,
}

impl DenseTdnnLayer {
    fn load(w: &Weights, prefix: &str, c_in: usize, dilation: usize) -> anyhow::Result<Self> {
        let bn2 = BatchNorm::load(
            w,
            &format!("{prefix}.nonlinear2.batchnorm"),
            BN_CHANNELS,
            true,
        )?;
        Ok(Self {
            bn1: BatchNorm::load(w, &format!("{prefix}.nonlinear1.batchnorm"), c_in, true)?,
            linear1: Pointwise::load_folded(
                w,
                &format!("{prefix}.linear1"),
                &bn2,
                c_in,
                BN_CHANNELS,
            )?,
            cam: CamLayer::load(w, &format!("{prefix}.cam_layer"), dilation)?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self
            .linear1
            .forward(&self.bn1.forward_relu_1d(x)?)?
            .relu()?;
        self.cam.forward(&h)
    }
}

/// Dense block followed by its transition layer (BN + ReLU + 1×1 conv).
#[derive(Debug, Clone)]
struct DenseBlock {
    layers: Vec<DenseTdnnLayer>,
    transit_bn: BatchNorm,
    transit: Pointwise,
}

impl DenseBlock {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            let new = layer.forward(&x)?;
            x = Tensor::cat(&[&x, &new], 1)?;
        }
        self.transit.forward(&self.transit_bn.forward_relu_1d(&x)?)
    }
}

/// CAM++ speaker-embedding network (3D-Speaker `CAMPPlus`, 192-d output).
///
/// The model is immutable after loading and can be shared between threads.
/// candle's CPU kernels already use all cores for the large matrix products.
#[derive(Debug, Clone)]
pub struct CamPlus {
    head: Head,
    /// (128, 320, 5) with the TDNN batch norm folded in; stride 2, padding 2.
    tdnn: Tensor,
    /// (128, 1)
    tdnn_bias: Tensor,
    blocks: Vec<DenseBlock>,
    out_bn: BatchNorm,
    /// Dense projection transposed to (1024, 192).
    dense_t: Tensor,
    /// Non-affine batch norm on the embedding.
    dense_bn: BatchNorm,
    fbank: Fbank,
}

impl CamPlus {
    /// Builds the model from a state dict (PyTorch key names, e.g.
    /// `head.conv1.weight`, `xvector.block1.tdnnd1.linear1.weight`).
    /// Tensors are converted to f32 on the CPU; extra keys are ignored and
    /// missing or mis-shaped ones are reported as errors.
    pub fn from_tensors(tensors: HashMap<String, Tensor>) -> anyhow::Result<Self> {
        let w = Weights { map: tensors };
        let head = Head::load(&w)?;
        let head_channels = HEAD_CHANNELS * HEAD_OUT_ROWS;

        let tdnn_bn = BatchNorm::load(&w, "xvector.tdnn.nonlinear.batchnorm", INIT_CHANNELS, true)?;
        let (tdnn, tdnn_bias) = tdnn_bn.fold_into(&w.get(
            "xvector.tdnn.linear.weight",
            &[INIT_CHANNELS, head_channels, 5],
        )?)?;
        let tdnn_bias = tdnn_bias.reshape((INIT_CHANNELS, 1))?;

        let mut channels = INIT_CHANNELS;
        let mut blocks = Vec::with_capacity(BLOCKS.len());
        for (i, &(num_layers, dilation)) in BLOCKS.iter().enumerate() {
            let mut layers = Vec::with_capacity(num_layers);
            for j in 0..num_layers {
                let prefix = format!("xvector.block{}.tdnnd{}", i + 1, j + 1);
                layers.push(DenseTdnnLayer::load(&w, &prefix, channels, dilation)?);
                channels += GROWTH_RATE;
            }
            let transit = format!("xvector.transit{}", i + 1);
            let out_channels = channels / 2;
            blocks.push(DenseBlock {
                layers,
                transit_bn: BatchNorm::load(
                    &w,
                    &format!("{transit}.nonlinear.batchnorm"),
                    channels,
                    true,
                )?,
                transit: Pointwise::load(
                    &w,
                    &format!("{transit}.linear"),
                    channels,
                    out_channels,
                    false,
                )?,
            });
            channels = out_channels;
        }

        let out_bn = BatchNorm::load(&w, "xvector.out_nonlinear.batchnorm", channels, true)?;
        let dense_t = w
            .get(
                "xvector.dense.linear.weight",
                &[EMBEDDING_DIM, 2 * channels, 1],
            )?
            .reshape((EMBEDDING_DIM, 2 * channels))?
            .t()?
            .contiguous()?;
        let dense_bn = BatchNorm::load(
            &w,
            "xvector.dense.nonlinear.batchnorm",
            EMBEDDING_DIM,
            false,
        )?;

        Ok(Self {
            head,
            tdnn,
            tdnn_bias,
            blocks,
            out_bn,
            dense_t,
            dense_bn,
            fbank: Fbank::new(),
        })
    }

    /// Loads the original PyTorch checkpoint (a pickled state dict such as
    /// `campplus_cn_en_common.pt`).
    pub fn load_pt(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let tensors = candle_core::pickle::read_all_with_key(path, None)
            .with_context(|| format!("reading CAM++ checkpoint {}", path.display()))?;
        Self::from_tensors(tensors.into_iter().collect())
            .with_context(|| format!("building CAM++ from {}", path.display()))
    }

    /// Loads the weights from a safetensors file holding the same tensor names
    /// as the PyTorch state dict.
    pub fn load_safetensors(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        let path = path.as_ref();
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)
            .with_context(|| format!("reading CAM++ safetensors {}", path.display()))?;
        Self::from_tensors(tensors)
            .with_context(|| format!("building CAM++ from {}", path.display()))
    }

    /// Runs the network on a batch of mean-normalised fbank features of shape
    /// (B, T, 80) and returns the embeddings, shape (B, 192).
    pub fn forward(&self, feats: &Tensor) -> anyhow::Result<Tensor> {
        let (b, t, d) = feats.dims3()?;
        ensure!(
            d == NUM_MEL_BINS,
            "CAM++: expected {NUM_MEL_BINS} features per frame, got {d}"
        );
        ensure!(
            t >= MIN_FRAMES,
            "CAM++: need at least {MIN_FRAMES} frames, got {t}"
        );
        let x = feats.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;

        // Head, one item at a time: (T, 80) -> (80, T) -> (320, T).
        let heads = (0..b)
            .map(|i| self.head.forward(&x.get(i)?.t()?.contiguous()?))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let x = Tensor::stack(&heads, 0)?;

        let mut x = x
            .conv1d(&self.tdnn, 2, 2, 1, 1)?
            .broadcast_add(&self.tdnn_bias)?
            .relu()?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        let x = self.out_bn.forward_relu_1d(&x)?;

        // Statistics pooling: mean and unbiased standard deviation over time.
        let mean = x.mean_keepdim(D::Minus1)?;
        let std = x.var_keepdim(D::Minus1)?.sqrt()?;
        let stats = Tensor::cat(&[&mean, &std], 1)?.squeeze(D::Minus1)?;

        let emb = stats.matmul(&self.dense_t)?;
        Ok(self.dense_bn.forward_2d(&emb)?)
    }

    /// Embeds one utterance given its mean-normalised fbank frames
    /// (see [`fbank::subtract_mean`]). Returns a 192-d, non-normalised vector.
    pub fn embed(&self, feats: &[FbankFrame]) -> anyhow::Result<Vec<f32>> {
        let mut out = self.embed_batch(&[feats])?;
        out.pop()
            .ok_or_else(|| anyhow!("CAM++: empty batch output"))
    }

    /// Embeds several utterances of equal length (same number of frames) in
    /// one forward pass. Each input must already be mean-normalised.
    pub fn embed_batch(&self, utterances: &[&[FbankFrame]]) -> anyhow::Result<Vec<Vec<f32>>> {
        let Some(first) = utterances.first() else {
            return Ok(Vec::new());
        };
        let t = first.len();
        if utterances.iter().any(|u| u.len() != t) {
            bail!("CAM++: embed_batch needs utterances with equal frame counts");
        }
        let flat: Vec<f32> = utterances
            .iter()
            .flat_map(|u| u.iter().flat_map(|frame| frame.iter().copied()))
            .collect();
        let feats = Tensor::from_vec(flat, (utterances.len(), t, NUM_MEL_BINS), &Device::Cpu)?;
        Ok(self.forward(&feats)?.to_vec2::<f32>()?)
    }

    /// Embeds raw 16 kHz mono samples in `[-1, 1]`: fbank, per-utterance mean
    /// normalisation, then the network. Needs at least 720 samples (3 frames).
    pub fn embed_samples(&self, samples_16k: &[f32]) -> anyhow::Result<Vec<f32>> {
        let mut feats = self.fbank.compute(samples_16k);
        ensure!(
            feats.len() >= MIN_FRAMES,
            "CAM++: audio too short ({} samples) for an embedding",
            samples_16k.len()
        );
        fbank::subtract_mean(&mut feats);
        self.embed(&feats)
    }
}

impl CamPlus {
    /// Embeds stretches of 16 kHz audio of any lengths: those of one length go through the
    /// network together, at most `batch` at a time. The prints come back in input order.
    pub fn embed_many(
        &self,
        stretches: &[Vec<f32>],
        batch: usize,
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        let mut feats = Vec::with_capacity(stretches.len());
        for s in stretches {
            let mut f = self.fbank.compute(s);
            ensure!(
                f.len() >= MIN_FRAMES,
                "CAM++: audio too short ({} samples) for an embedding",
                s.len()
            );
            fbank::subtract_mean(&mut f);
            feats.push(f);
        }
        let mut order: Vec<usize> = (0..feats.len()).collect();
        order.sort_by_key(|&i| feats[i].len());
        let mut out = vec![Vec::new(); feats.len()];
        let mut at = 0;
        while at < order.len() {
            let len = feats[order[at]].len();
            let mut end = at;
            while end < order.len() && end - at < batch.max(1) && feats[order[end]].len() == len {
                end += 1;
            }
            let group: Vec<&[FbankFrame]> = order[at..end]
                .iter()
                .map(|&i| feats[i].as_slice())
                .collect();
            for (&i, print) in order[at..end].iter().zip(self.embed_batch(&group)?) {
                out[i] = print;
            }
            at = end;
        }
        Ok(out)
    }
}

/// Cosine similarity of two embeddings (0 when either has zero norm).
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        dot += f64::from(x) * f64::from(y);
        na += f64::from(x) * f64::from(x);
        nb += f64::from(y) * f64::from(y);
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na.sqrt() * nb.sqrt())) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference 3×3 convolution (padding 1, stride (s, 1)) by direct summation.
    fn conv_ref(
        x: &[f32],
        c: usize,
        h: usize,
        w: usize,
        k: &[f32],
        co: usize,
        s: usize,
    ) -> Vec<f32> {
        let ho = (h - 1) / s + 1;
        let mut out = vec![0.0; co * ho * w];
        for o in 0..co {
            for i in 0..ho {
                for j in 0..w {
                    let mut acc = 0.0;
                    for ci in 0..c {
                        for kh in 0..3 {
                            for kw in 0..3 {
                                let (r, q) = ((i * s + kh) as isize - 1, (j + kw) as isize - 1);
                                if r >= 0 && q >= 0 && (r as usize) < h && (q as usize) < w {
                                    acc += x[(ci * h + r as usize) * w + q as usize]
                                        * k[((o * c + ci) * 3 + kh) * 3 + kw];
                                }
                            }
                        }
                    }
                    out[(o * ho + i) * w + j] = acc;
                }
            }
        }
        out
    }

    #[test]
    fn conv3x3_matches_direct_convolution() -> anyhow::Result<()> {
        let dev = Device::Cpu;
        for &(c, co, h, w, s) in &[
            (1, 4, 8, 7, 1),
            (3, 5, 8, 6, 2),
            (2, 3, 7, 5, 2),
            (3, 2, 5, 4, 1),
        ] {
            let x = Tensor::randn(0f32, 1.0, (c, h, w), &dev)?;
            let k = Tensor::randn(0f32, 1.0, (co, c, 3, 3), &dev)?;
            let mut map = HashMap::new();
            map.insert("k".to_string(), k.clone());
            map.insert(
                "bn.running_mean".to_string(),
                Tensor::zeros(co, DType::F32, &dev)?,
            );
            map.insert(
                "bn.running_var".to_string(),
                Tensor::ones(co, DType::F32, &dev)?,
            );
            let weights = Weights { map };
            let bn = BatchNorm::load(&weights, "bn", co, false)?;
            let conv = Conv3x3::load(&weights, "k", &bn, c, co, s)?;
            let got = conv.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
            let scale = (1.0 + BN_EPS).sqrt().recip() as f32;
            let want = conv_ref(
                &x.flatten_all()?.to_vec1()?,
                c,
                h,
                w,
                &k.flatten_all()?.to_vec1()?,
                co,
                s,
            );
            assert_eq!(got.len(), want.len());
            for (g, r) in got.iter().zip(&want) {
                assert!((g - r * scale).abs() < 1e-4, "{g} vs {}", r * scale);
            }
        }
        Ok(())
    }

    #[test]
    fn segment_means_average_partial_last_segment() -> anyhow::Result<()> {
        let x = Tensor::arange(0f32, 250.0, &Device::Cpu)?.reshape((1, 1, 250))?;
        let m = segment_means(&x)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(m, vec![49.5, 149.5, 224.5]);
        Ok(())
    }
}
