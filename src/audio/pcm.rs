//! One decoded channel: in memory, or spooled to an unnamed temporary file so that the server's
//! memory does not grow with the recording's length (issue 14, item 6: a 10 MB MP3 of three
//! hours of stereo silence is 1.4 GB of 16 kHz f32 samples).

use std::io;
use std::os::unix::fs::FileExt;

use tokio::io::AsyncWriteExt;

/// 16 kHz mono samples of one channel.
#[derive(Debug)]
pub enum Pcm {
    /// Held in memory (tests, tools, short files).
    Memory(Vec<f32>),
    /// f32 little-endian samples in a file that disappears when this value is dropped.
    File {
        /// The samples.
        file: std::fs::File,
        /// How many.
        frames: usize,
    },
}

impl Pcm {
    /// Number of samples.
    pub fn frames(&self) -> usize {
        match self {
            Pcm::Memory(samples) => samples.len(),
            Pcm::File { frames, .. } => *frames,
        }
    }

    /// Samples `start..start + len` (cut at the end). Blocking for a file: call it off the
    /// async runtime.
    pub fn read(&self, start: usize, len: usize) -> io::Result<Vec<f32>> {
        let end = start.saturating_add(len).min(self.frames());
        let start = start.min(end);
        match self {
            Pcm::Memory(samples) => Ok(samples[start..end].to_vec()),
            Pcm::File { file, .. } => {
                let mut bytes = vec![0u8; (end - start) * 4];
                file.read_exact_at(&mut bytes, (start * 4) as u64)?;
                Ok(bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect())
            }
        }
    }

    /// The whole channel in memory (for tests and tools that want a `Vec`).
    pub fn into_vec(self) -> io::Result<Vec<f32>> {
        match self {
            Pcm::Memory(samples) => Ok(samples),
            file => file.read(0, file.frames()),
        }
    }
}

/// Where the samples of one channel go while the decoder child sends them.
#[derive(Debug)]
pub(crate) enum PcmWriter {
    Memory(Vec<f32>),
    File {
        out: tokio::io::BufWriter<tokio::fs::File>,
        frames: usize,
    },
}

impl PcmWriter {
    /// An in-memory channel.
    pub fn memory() -> Self {
        PcmWriter::Memory(Vec::new())
    }

    /// A channel spooled to an unnamed temporary file (mode 0600, gone once closed).
    pub fn spooled() -> io::Result<Self> {
        let file = tempfile::tempfile()?;
        Ok(PcmWriter::File {
            out: tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file)),
            frames: 0,
        })
    }

    pub fn frames(&self) -> usize {
        match self {
            PcmWriter::Memory(samples) => samples.len(),
            PcmWriter::File { frames, .. } => *frames,
        }
    }

    /// Appends little-endian f32 bytes.
    pub async fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            PcmWriter::Memory(samples) => {
                samples.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                );
                Ok(())
            }
            PcmWriter::File { out, frames } => {
                out.write_all(bytes).await?;
                *frames += bytes.len() / 4;
                Ok(())
            }
        }
    }

    /// The finished channel, cut to `frames` samples.
    pub async fn finish(self, frames: usize) -> io::Result<Pcm> {
        match self {
            PcmWriter::Memory(mut samples) => {
                samples.truncate(frames);
                Ok(Pcm::Memory(samples))
            }
            PcmWriter::File {
                mut out,
                frames: written,
            } => {
                out.flush().await?;
                let file = out.into_inner().into_std().await;
                Ok(Pcm::File {
                    file,
                    frames: frames.min(written),
                })
            }
        }
    }
}

/// Averages two spooled channels into a new one, a block at a time (blocking).
pub(crate) fn average(a: &Pcm, b: &Pcm) -> io::Result<Pcm> {
    const BLOCK: usize = 1 << 20;
    let frames = a.frames().min(b.frames());
    if let (Pcm::Memory(x), Pcm::Memory(y)) = (a, b) {
        return Ok(Pcm::Memory(
            x.iter().zip(y).map(|(l, r)| 0.5 * (l + r)).collect(),
        ));
    }
    let file = tempfile::tempfile()?;
    let mut at = 0;
    while at < frames {
        let (x, y) = (a.read(at, BLOCK)?, b.read(at, BLOCK)?);
        let bytes: Vec<u8> = x
            .iter()
            .zip(&y)
            .flat_map(|(l, r)| (0.5 * (l + r)).to_le_bytes())
            .collect();
        file.write_all_at(&bytes, (at * 4) as u64)?;
        at += x.len().min(y.len()).max(1);
    }
    Ok(Pcm::File { file, frames })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spooled_channel_reads_back_what_was_written() {
        let samples: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0).collect();
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut w = PcmWriter::spooled().expect("spool");
        for chunk in bytes.chunks(4 * 333) {
            w.append(chunk).await.expect("append");
        }
        let pcm = w.finish(9_000).await.expect("finish");
        assert_eq!(pcm.frames(), 9_000);
        assert_eq!(pcm.read(100, 5).expect("read"), samples[100..105].to_vec());
        assert_eq!(
            pcm.read(8_998, 10).expect("read"),
            samples[8_998..9_000].to_vec()
        );
        let both = average(&pcm, &Pcm::Memory(vec![1.0; 9_000])).expect("average");
        assert_eq!(both.frames(), 9_000);
        assert_eq!(both.read(0, 1).expect("read"), vec![0.5]);
    }
}
