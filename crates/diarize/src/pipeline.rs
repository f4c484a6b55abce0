//! Who speaks when on one channel: segmentation over sliding 10 s windows, one voice print per
//! local speaker of a window, the voice prints clustered into the call's speakers, and the
//! windows' frames added up on the call's timeline.

use crate::segmentation::{
    Segmentation, FRAMES, FRAME_CENTRE, FRAME_STEP, LOCAL_SPEAKERS, SAMPLE_RATE, WINDOW,
};

/// How to separate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Speakers in the call.
    pub speakers: usize,
    /// Samples between two windows' starts.
    pub step: usize,
    /// Least speech a local speaker needs, alone, for its own voice print, in samples.
    pub min_print: usize,
    /// Most speech a voice print is taken from, in samples: the frames nearest the window's
    /// middle.
    pub max_print: usize,
    /// Windows run through the network at once.
    pub batch: usize,
    /// Two clusters whose centres are at least this alike (cosine) are one voice: a call
    /// with one speaker, or a voicemail, is not split in two.
    pub same_voice: f32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            speakers: 2,
            step: 10 * SAMPLE_RATE,
            min_print: SAMPLE_RATE,
            max_print: 2 * SAMPLE_RATE,
            batch: 4,
            // Two prints of one voice score 0.8-0.9 against their centre on the sample calls,
            // two different voices' centres 0.5-0.65, the two synthetic voices of one language
            // being close.
            same_voice: 0.8,
        }
    }
}

/// A stretch of one speaker's speech, in samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn {
    /// Index of the speaker, in order of first speech.
    pub speaker: usize,
    /// First sample.
    pub start: usize,
    /// One past the last sample.
    pub end: usize,
}

/// The result for one channel.
#[derive(Debug, Clone, Default)]
pub struct Diarization {
    /// Every speaker's stretches, by start; two speakers' may overlap.
    pub turns: Vec<Turn>,
    /// Speakers found (at most `Options::speakers`).
    pub speakers: usize,
    /// Mean cosine similarity of each voice print to its own speaker's centre; low values
    /// mean the voices were hard to tell apart.
    pub cohesion: f32,
    /// Cosine similarity of the closest two speakers' centres (1 with one speaker).
    pub separation: f32,
}

/// Turns stretches of single voices into their voice prints, in order.
pub type Embed<'a> = dyn FnMut(&[Vec<f32>]) -> anyhow::Result<Vec<Vec<f32>>> + 'a;

/// A window's local speaker with enough speech alone for a voice print.
struct Print {
    window: usize,
    local: usize,
    frames: usize,
    vector: Vec<f32>,
}

/// Separates the speakers of `audio` (16 kHz mono). `embed` turns a stretch of one voice into
/// its voice print.
pub fn diarize(
    audio: &[f32],
    seg: &Segmentation,
    embed: &mut Embed<'_>,
    options: &Options,
) -> anyhow::Result<Diarization> {
    let step = options.step.max(FRAME_STEP);
    let mut starts = vec![0usize];
    while starts.last().copied().unwrap_or(0) + WINDOW < audio.len() {
        let next = starts[starts.len() - 1] + step;
        starts.push(next);
    }
    // Local activity of every window.
    let mut activity = Vec::with_capacity(starts.len());
    for chunk in starts.chunks(options.batch.max(1)) {
        let windows: Vec<&[f32]> = chunk
            .iter()
            .map(|&s| &audio[s.min(audio.len())..(s + WINDOW).min(audio.len())])
            .collect();
        activity.extend(seg.activity(&windows)?);
    }
    // Frames past the end of the audio say nothing.
    for (w, frames) in activity.iter_mut().enumerate() {
        for (f, on) in frames.iter_mut().enumerate() {
            if starts[w] + FRAME_CENTRE + f * FRAME_STEP >= audio.len() {
                *on = [false; LOCAL_SPEAKERS];
            }
        }
    }
    // A voice print for each local speaker with enough speech alone.
    let mut prints = Vec::new();
    let mut stretches = Vec::new();
    for (w, frames) in activity.iter().enumerate() {
        for local in 0..LOCAL_SPEAKERS {
            let mut alone: Vec<usize> = (0..frames.len())
                .filter(|&f| frames[f][local] && frames[f].iter().filter(|&&o| o).count() == 1)
                .collect();
            if alone.len() * FRAME_STEP < options.min_print {
                continue;
            }
            let weight = alone.len();
            let keep = options.max_print.max(options.min_print) / FRAME_STEP;
            if alone.len() > keep {
                alone.sort_by_key(|&f| f.abs_diff(FRAMES / 2));
                alone.truncate(keep);
                alone.sort_unstable();
            }
            stretches.push(frames_audio(audio, starts[w], &alone));
            prints.push(Print {
                window: w,
                local,
                frames: weight,
                vector: Vec::new(),
            });
        }
    }
    for (print, vector) in prints.iter_mut().zip(embed(&stretches)?) {
        print.vector = normalise(vector);
    }
    if prints.is_empty() {
        return Ok(Diarization::default());
    }
    let mut k = options.speakers.max(1).min(prints.len());
    let (mut centres, mut cohesion) = kmeans(&prints, k);
    // The closest two centres; alike enough, there are fewer voices than asked for.
    let closest = |centres: &[Vec<f32>]| {
        let mut best = f32::MIN;
        for a in 0..centres.len() {
            for b in a + 1..centres.len() {
                best = best.max(dot(&centres[a], &centres[b]));
            }
        }
        best
    };
    let mut separation = closest(&centres);
    while k > 1 && separation >= options.same_voice {
        k -= 1;
        (centres, cohesion) = kmeans(&prints, k);
        separation = if k > 1 { closest(&centres) } else { 1.0 };
    }
    // Each window's local speakers to the call's speakers.
    let mut mapping = vec![[None; LOCAL_SPEAKERS]; starts.len()];
    for w in 0..starts.len() {
        let mut mine: Vec<&Print> = prints.iter().filter(|p| p.window == w).collect();
        mine.sort_by_key(|p| std::cmp::Reverse(p.frames));
        let sim = |p: &Print, c: usize| dot(&p.vector, &centres[c]);
        if mine.len() >= 2 && k == 2 {
            // The two main voices of a window are two people.
            let (a, b) = (mine[0], mine[1]);
            let straight = sim(a, 0) + sim(b, 1);
            let crossed = sim(a, 1) + sim(b, 0);
            let (ca, cb) = if straight >= crossed { (0, 1) } else { (1, 0) };
            mapping[w][a.local] = Some(ca);
            mapping[w][b.local] = Some(cb);
            for p in &mine[2..] {
                mapping[w][p.local] = Some(argmax(k, |c| sim(p, c)));
            }
        } else {
            for p in &mine {
                mapping[w][p.local] = Some(argmax(k, |c| sim(p, c)));
            }
        }
        // With two speakers, a voice too short for its own print is the other one.
        if k == 2 {
            let known: Vec<usize> = mapping[w].iter().flatten().copied().collect();
            if known.len() == 1 {
                let other = 1 - known[0];
                for local in 0..LOCAL_SPEAKERS {
                    let talks = activity[w].iter().any(|on| on[local]);
                    if mapping[w][local].is_none() && talks {
                        mapping[w][local] = Some(other);
                    }
                }
            }
        }
    }
    // Add the windows up on the call's frame grid, each weighted by a Hann window so a frame
    // counts most in the windows it sits in the middle of.
    let total_frames = audio.len() / FRAME_STEP + 1;
    let mut votes = vec![vec![0f32; total_frames]; k];
    let mut weight = vec![0f32; total_frames];
    let hann: Vec<f32> = (0..FRAMES)
        .map(|i| {
            let x = (i as f32 + 0.5) / FRAMES as f32;
            (std::f32::consts::PI * x).sin().powi(2).max(1e-3)
        })
        .collect();
    for (w, frames) in activity.iter().enumerate() {
        for (f, on) in frames.iter().enumerate() {
            let centre = starts[w] + FRAME_CENTRE + f * FRAME_STEP;
            if centre >= audio.len() {
                break;
            }
            let g = centre / FRAME_STEP;
            weight[g] += hann[f];
            for local in 0..LOCAL_SPEAKERS {
                if let (true, Some(c)) = (on[local], mapping[w][local]) {
                    votes[c][g] += hann[f];
                }
            }
        }
    }
    let mut turns = Vec::new();
    for (c, v) in votes.iter().enumerate() {
        let mut run: Option<usize> = None;
        for g in 0..=total_frames {
            let on = g < total_frames && weight[g] > 0.0 && v[g] / weight[g] >= 0.5;
            match (on, run) {
                (true, None) => run = Some(g),
                (false, Some(from)) => {
                    turns.push(Turn {
                        speaker: c,
                        start: from * FRAME_STEP,
                        end: (g * FRAME_STEP).min(audio.len()),
                    });
                    run = None;
                }
                _ => {}
            }
        }
    }
    // Speakers numbered in order of first speech.
    turns.sort_by_key(|t| (t.start, t.speaker));
    let mut order = Vec::new();
    for t in &turns {
        if !order.contains(&t.speaker) {
            order.push(t.speaker);
        }
    }
    for t in &mut turns {
        t.speaker = order
            .iter()
            .position(|&s| s == t.speaker)
            .unwrap_or(t.speaker);
    }
    Ok(Diarization {
        turns,
        speakers: order.len(),
        cohesion,
        separation,
    })
}

/// The audio under a window's `frames`, each frame one step wide, joined.
fn frames_audio(audio: &[f32], start: usize, frames: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(frames.len() * FRAME_STEP);
    for &f in frames {
        let from = (start + FRAME_CENTRE + f * FRAME_STEP).saturating_sub(FRAME_STEP / 2);
        let to = (from + FRAME_STEP).min(audio.len());
        if from < to {
            out.extend_from_slice(&audio[from..to]);
        }
    }
    out
}

fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn argmax(k: usize, f: impl Fn(usize) -> f32) -> usize {
    (0..k).max_by(|&a, &b| f(a).total_cmp(&f(b))).unwrap_or(0)
}

/// Spherical k-means over the voice prints, weighted by their speech, seeded with the heaviest
/// print and then each time the print least like the centres so far. Returns the unit centres
/// and the mean similarity of a print to its centre.
fn kmeans(prints: &[Print], k: usize) -> (Vec<Vec<f32>>, f32) {
    let heaviest = (0..prints.len())
        .max_by_key(|&i| prints[i].frames)
        .unwrap_or(0);
    let mut centres = vec![prints[heaviest].vector.clone()];
    while centres.len() < k {
        let far = (0..prints.len())
            .min_by(|&a, &b| {
                let sa = centres
                    .iter()
                    .map(|c| dot(&prints[a].vector, c))
                    .fold(f32::MIN, f32::max);
                let sb = centres
                    .iter()
                    .map(|c| dot(&prints[b].vector, c))
                    .fold(f32::MIN, f32::max);
                sa.total_cmp(&sb)
            })
            .unwrap_or(0);
        centres.push(prints[far].vector.clone());
    }
    let dim = prints[0].vector.len();
    let mut assigned = vec![0usize; prints.len()];
    for _ in 0..50 {
        let next: Vec<usize> = prints
            .iter()
            .map(|p| argmax(k, |c| dot(&p.vector, &centres[c])))
            .collect();
        let changed = next != assigned;
        assigned = next;
        for (c, centre) in centres.iter_mut().enumerate() {
            let mut sum = vec![0f32; dim];
            for (p, _) in prints.iter().zip(&assigned).filter(|(_, &a)| a == c) {
                for (s, v) in sum.iter_mut().zip(&p.vector) {
                    *s += v * p.frames as f32;
                }
            }
            if sum.iter().any(|&s| s != 0.0) {
                *centre = normalise(sum);
            }
        }
        if !changed {
            break;
        }
    }
    let cohesion = prints
        .iter()
        .zip(&assigned)
        .map(|(p, &c)| dot(&p.vector, &centres[c]))
        .sum::<f32>()
        / prints.len() as f32;
    (centres, cohesion)
}
