//! Time series augmentations (Um et al. 2017, "Data Augmentation of Wearable Sensor Data";
//! Iwana & Uchida 2021, "An Empirical Survey of Data Augmentation for Time Series"), each a
//! small type with its parameters and probability, composed into a [`SeriesPipeline`] from a
//! recipe; and TS2Vec's overlapping random crops. Random draws come from the caller's
//! generator, which the loader derives from (seed, epoch, item, view), as for images.

use super::loader::{BatchSource, Items, LoaderConfig};
use crate::data::series::SeriesDataset;
use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

const CROPS: u64 = 0x4352_4f50;
const MASK: u64 = 0x4d41_534b;

/// A series being augmented: `channels x len` values, channel after channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub channels: usize,
    pub len: usize,
    pub values: Vec<f32>,
}

impl Series {
    pub fn new(channels: usize, len: usize, values: Vec<f32>) -> Self {
        assert_eq!(values.len(), channels * len);
        Self {
            channels,
            len,
            values,
        }
    }

    pub fn channel(&self, c: usize) -> &[f32] {
        &self.values[c * self.len..(c + 1) * self.len]
    }

    fn channel_mut(&mut self, c: usize) -> &mut [f32] {
        &mut self.values[c * self.len..(c + 1) * self.len]
    }

    /// Every channel resampled to `len` points by linear interpolation at positions
    /// `at(i)` (in source steps, clamped to the series).
    fn resample(&self, len: usize, at: impl Fn(usize) -> f64) -> Series {
        let mut out = Vec::with_capacity(self.channels * len);
        for c in 0..self.channels {
            let x = self.channel(c);
            for i in 0..len {
                out.push(interpolate(x, at(i)));
            }
        }
        Series::new(self.channels, len, out)
    }
}

fn interpolate(x: &[f32], t: f64) -> f32 {
    let t = t.clamp(0.0, (x.len() - 1) as f64);
    let i = t.floor() as usize;
    let f = (t - i as f64) as f32;
    if i + 1 < x.len() {
        x[i] * (1.0 - f) + x[i + 1] * f
    } else {
        x[i]
    }
}

/// A smooth random curve over `len` steps: `knots + 2` values drawn from N(1, sigma²) at
/// equally spaced points, joined by a natural-looking cubic (Catmull-Rom) interpolation.
fn smooth_curve(len: usize, knots: usize, sigma: f64, rng: &mut Rng) -> Vec<f64> {
    let k = knots + 2;
    let y: Vec<f64> = (0..k).map(|_| 1.0 + sigma * rng.normal()).collect();
    let step = (len.max(2) - 1) as f64 / (k - 1) as f64;
    (0..len)
        .map(|i| {
            let t = i as f64 / step;
            let j = (t.floor() as usize).min(k - 2);
            let u = t - j as f64;
            let p0 = y[j.saturating_sub(1)];
            let (p1, p2) = (y[j], y[j + 1]);
            let p3 = y[(j + 2).min(k - 1)];
            0.5 * (2.0 * p1
                + (-p0 + p2) * u
                + (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3) * u * u
                + (-p0 + 3.0 * p1 - 3.0 * p2 + p3) * u * u * u)
        })
        .collect()
}

fn one() -> f64 {
    1.0
}

/// Add Gaussian noise of standard deviation `sigma`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Jitter {
    pub sigma: f64,
    #[serde(default = "one")]
    pub p: f64,
}

/// Multiply each channel by a factor drawn from N(1, sigma²).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scaling {
    pub sigma: f64,
    #[serde(default = "one")]
    pub p: f64,
}

/// Multiply each channel by its own smooth random curve (`knots` inner knots, N(1, sigma²)).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Warp {
    pub sigma: f64,
    #[serde(default = "default_knots")]
    pub knots: usize,
    #[serde(default = "one")]
    pub p: f64,
}
fn default_knots() -> usize {
    4
}

/// Cut the series into 2..=`max_segments` pieces at random points and put them back in a
/// random order.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Permutation {
    #[serde(default = "default_segments")]
    pub max_segments: usize,
    #[serde(default = "one")]
    pub p: f64,
}
fn default_segments() -> usize {
    5
}

/// Keep a random window of `ratio` of the length and stretch it back to the full length
/// (window slicing, Le Guennec et al. 2016).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WindowSlice {
    pub ratio: f64,
    #[serde(default = "one")]
    pub p: f64,
}

/// Keep a random window of `length` steps (shorter series are kept whole).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Crop {
    pub length: usize,
}

/// Set each time step (all channels) to 0 with probability `ratio`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Masking {
    pub ratio: f64,
    #[serde(default = "one")]
    pub p: f64,
}

/// One step of a series pipeline, as written in a recipe: `{ op = "jitter", sigma = 0.03 }`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SeriesAugmentation {
    Jitter(Jitter),
    Scaling(Scaling),
    MagnitudeWarp(Warp),
    TimeWarp(Warp),
    Permutation(Permutation),
    WindowSlice(WindowSlice),
    Crop(Crop),
    Masking(Masking),
}

impl SeriesAugmentation {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Jitter(_) => "jitter",
            Self::Scaling(_) => "scaling",
            Self::MagnitudeWarp(_) => "magnitude_warp",
            Self::TimeWarp(_) => "time_warp",
            Self::Permutation(_) => "permutation",
            Self::WindowSlice(_) => "window_slice",
            Self::Crop(_) => "crop",
            Self::Masking(_) => "masking",
        }
    }

    fn probability(&self) -> f64 {
        match self {
            Self::Jitter(a) => a.p,
            Self::Scaling(a) => a.p,
            Self::MagnitudeWarp(a) | Self::TimeWarp(a) => a.p,
            Self::Permutation(a) => a.p,
            Self::WindowSlice(a) => a.p,
            Self::Crop(_) => 1.0,
            Self::Masking(a) => a.p,
        }
    }

    fn validate(&self, key: &str) -> Result<()> {
        let bad = |m: &str| Err(Error::config(key, m.to_string()));
        let p = self.probability();
        if !(0.0..=1.0).contains(&p) {
            return bad("p must be in [0, 1]");
        }
        match self {
            Self::Jitter(Jitter { sigma, .. })
            | Self::Scaling(Scaling { sigma, .. })
            | Self::MagnitudeWarp(Warp { sigma, .. })
            | Self::TimeWarp(Warp { sigma, .. })
                if !(sigma.is_finite() && *sigma >= 0.0) =>
            {
                bad("sigma must be a non-negative number")
            }
            Self::MagnitudeWarp(w) | Self::TimeWarp(w) if w.knots == 0 => {
                bad("knots must be at least 1")
            }
            Self::Permutation(a) if a.max_segments < 2 => bad("max_segments must be at least 2"),
            Self::WindowSlice(a) if !(a.ratio > 0.0 && a.ratio <= 1.0) => {
                bad("ratio must be in (0, 1]")
            }
            Self::Crop(a) if a.length == 0 => bad("length must be at least 1"),
            Self::Masking(a) if !(0.0..1.0).contains(&a.ratio) => bad("ratio must be in [0, 1)"),
            _ => Ok(()),
        }
    }

    pub fn apply(&self, mut s: Series, rng: &mut Rng) -> Series {
        if !rng.bernoulli(self.probability()) || s.len == 0 {
            return s;
        }
        match self {
            Self::Jitter(a) => {
                s.values
                    .iter_mut()
                    .for_each(|v| *v += (a.sigma * rng.normal()) as f32);
                s
            }
            Self::Scaling(a) => {
                for c in 0..s.channels {
                    let f = (1.0 + a.sigma * rng.normal()) as f32;
                    s.channel_mut(c).iter_mut().for_each(|v| *v *= f);
                }
                s
            }
            Self::MagnitudeWarp(a) => {
                for c in 0..s.channels {
                    let curve = smooth_curve(s.len, a.knots, a.sigma, rng);
                    s.channel_mut(c)
                        .iter_mut()
                        .zip(curve)
                        .for_each(|(v, f)| *v *= f as f32);
                }
                s
            }
            Self::TimeWarp(a) => {
                // Speeds from a smooth positive curve; their running sum, scaled to end at the
                // last step, says where each output step reads the input.
                let speed: Vec<f64> = smooth_curve(s.len, a.knots, a.sigma, rng)
                    .into_iter()
                    .map(|v| v.max(0.05))
                    .collect();
                let mut at = vec![0.0; s.len];
                for i in 1..s.len {
                    at[i] = at[i - 1] + speed[i];
                }
                let scale = if at[s.len - 1] > 0.0 {
                    (s.len - 1) as f64 / at[s.len - 1]
                } else {
                    1.0
                };
                s.resample(s.len, |i| at[i] * scale)
            }
            Self::Permutation(a) => {
                let pieces = 2 + rng.below(a.max_segments - 1);
                let pieces = pieces.min(s.len);
                let mut cuts: Vec<usize> = Vec::new();
                while cuts.len() + 1 < pieces {
                    let c = 1 + rng.below(s.len - 1);
                    if !cuts.contains(&c) {
                        cuts.push(c);
                    }
                }
                cuts.sort_unstable();
                let mut bounds = vec![0];
                bounds.extend(cuts);
                bounds.push(s.len);
                let order = rng.permutation(bounds.len() - 1);
                let mut out = Vec::with_capacity(s.values.len());
                for c in 0..s.channels {
                    let x = s.channel(c);
                    for &k in &order {
                        out.extend_from_slice(&x[bounds[k]..bounds[k + 1]]);
                    }
                }
                Series::new(s.channels, s.len, out)
            }
            Self::WindowSlice(a) => {
                let w = ((a.ratio * s.len as f64).round() as usize).clamp(1, s.len);
                let start = rng.below(s.len - w + 1) as f64;
                let step = if s.len > 1 {
                    (w - 1) as f64 / (s.len - 1) as f64
                } else {
                    0.0
                };
                s.resample(s.len, |i| start + i as f64 * step)
            }
            Self::Crop(a) => {
                if s.len <= a.length {
                    return s;
                }
                let start = rng.below(s.len - a.length + 1);
                let mut out = Vec::with_capacity(s.channels * a.length);
                for c in 0..s.channels {
                    out.extend_from_slice(&s.channel(c)[start..start + a.length]);
                }
                Series::new(s.channels, a.length, out)
            }
            Self::Masking(a) => {
                let len = s.len;
                for t in 0..len {
                    if rng.bernoulli(a.ratio) {
                        (0..s.channels).for_each(|c| s.values[c * len + t] = 0.0);
                    }
                }
                s
            }
        }
    }
}

/// Augmentations applied in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesPipeline {
    pub steps: Vec<SeriesAugmentation>,
}

impl SeriesPipeline {
    pub fn new(steps: Vec<SeriesAugmentation>) -> Result<Self> {
        for (i, s) in steps.iter().enumerate() {
            s.validate(&format!("augment.series[{i}] ({})", s.name()))?;
        }
        Ok(Self { steps })
    }

    pub fn apply(&self, s: Series, rng: &mut Rng) -> Series {
        self.steps.iter().fold(s, |s, a| a.apply(s, rng))
    }

    /// The length of the views for inputs of length `len`.
    pub fn output_len(&self, len: usize) -> usize {
        self.steps.iter().fold(len, |l, s| match s {
            SeriesAugmentation::Crop(c) => l.min(c.length),
            _ => l,
        })
    }
}

/// TS2Vec's two overlapping crops of a batch of series of length `len` (Yue et al. 2022,
/// "TS2Vec: Towards Universal Representation of Time Series"): one overlap length for the
/// batch, at least `min_overlap`; view 1 covers `[start + left_extra_start, start +
/// overlap_end)`, view 2 `[start + overlap_start, start + right_extra_end)`, so the last
/// `overlap` steps of view 1 and the first `overlap` steps of view 2 are the same time steps.
/// `offsets` shift each item's crops, keeping both inside the series.
#[derive(Clone, Debug, PartialEq)]
pub struct OverlappingCrops {
    /// Length of the shared segment.
    pub overlap: usize,
    /// View 1: `[extended_left, overlap_right)`; view 2: `[overlap_left, extended_right)`.
    pub extended_left: usize,
    pub overlap_left: usize,
    pub overlap_right: usize,
    pub extended_right: usize,
    /// Per item.
    pub offsets: Vec<i64>,
}

impl OverlappingCrops {
    pub fn sample(len: usize, batch: usize, min_overlap: usize, rng: &mut Rng) -> Self {
        let min_overlap = min_overlap.clamp(1, len);
        let overlap = min_overlap + rng.below(len - min_overlap + 1);
        let overlap_left = rng.below(len - overlap + 1);
        let overlap_right = overlap_left + overlap;
        let extended_left = rng.below(overlap_left + 1);
        let extended_right = overlap_right + rng.below(len - overlap_right + 1);
        let lo = -(extended_left as i64);
        let hi = (len - extended_right) as i64;
        let offsets = (0..batch)
            .map(|_| lo + rng.below((hi - lo + 1) as usize) as i64)
            .collect();
        Self {
            overlap,
            extended_left,
            overlap_left,
            overlap_right,
            extended_right,
            offsets,
        }
    }

    /// The two views of `s` (item `item` of the batch); a step outside a shorter series is NaN.
    pub fn views(&self, s: &Series, item: usize) -> (Series, Series) {
        let take = |from: usize, to: usize| {
            let shift = self.offsets[item];
            let mut out = Vec::with_capacity(s.channels * (to - from));
            for c in 0..s.channels {
                let x = s.channel(c);
                for t in from..to {
                    let i = t as i64 + shift;
                    out.push(if i >= 0 && (i as usize) < s.len {
                        x[i as usize]
                    } else {
                        f32::NAN
                    });
                }
            }
            Series::new(s.channels, to - from, out)
        };
        (
            take(self.extended_left, self.overlap_right),
            take(self.overlap_left, self.extended_right),
        )
    }
}

/// One series (`channels x len` values, channel after channel, NaN where missing) as the
/// encoder's input: time-major values with missing ones 0, and the keep mask of its steps
/// (1 where no channel is missing and `mask`, if given, keeps the step).
pub fn time_major(
    values: &[f32],
    channels: usize,
    len: usize,
    mask: Option<&[bool]>,
) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(values.len(), channels * len);
    let mut x = vec![0f32; len * channels];
    let mut keep: Vec<f32> = (0..len)
        .map(|t| if mask.is_none_or(|m| m[t]) { 1.0 } else { 0.0 })
        .collect();
    for c in 0..channels {
        for t in 0..len {
            let v = values[c * len + t];
            if v.is_nan() {
                keep[t] = 0.0;
            } else {
                x[t * channels + c] = v;
            }
        }
    }
    (x, keep)
}

/// Two cropped, masked views of a batch of series, time-major (`[items, steps, channels]`),
/// missing values as 0; `keep` is 1 where a step is observed and not masked.
#[derive(Clone, Debug)]
pub struct CropBatch {
    pub items: usize,
    pub channels: usize,
    pub view1: Vec<f32>,
    pub keep1: Vec<f32>,
    pub len1: usize,
    pub view2: Vec<f32>,
    pub keep2: Vec<f32>,
    pub len2: usize,
    /// The last `overlap` steps of view 1 are the first `overlap` of view 2.
    pub overlap: usize,
    /// The rows of view 1 (view 2: the same items as view 1 of `RowKeys`).
    pub keys: crate::rng::RowKeys,
}

/// Series padded (NaN) to one length, as TS2Vec pads unequal ones, with its crop settings.
pub struct SeriesCrops {
    pub data: SeriesDataset,
    /// The padded length.
    pub len: usize,
    /// Shortest shared segment: `2^(temporal_unit + 1)`.
    pub min_overlap: usize,
    /// Probability of keeping a time step in a view's random mask (TS2Vec: 0.5).
    pub keep: f64,
}

impl SeriesCrops {
    pub fn new(data: SeriesDataset, temporal_unit: usize) -> Self {
        let len = data.lengths.iter().copied().max().unwrap_or(0);
        Self {
            data,
            len,
            min_overlap: 1 << (temporal_unit + 1),
            keep: 0.5,
        }
    }

    /// Series `i` padded to the common length.
    pub fn padded(&self, i: usize) -> Series {
        Series::new(self.data.channels, self.len, self.data.padded(i, self.len))
    }
}

impl Items for SeriesCrops {
    fn count(&self) -> usize {
        self.data.len()
    }
    fn item_labels(&self) -> Option<&[u32]> {
        self.data.labels.as_deref()
    }
}

impl BatchSource for SeriesCrops {
    type Batch = CropBatch;

    fn make_batch(&self, cfg: &LoaderConfig, epoch: u64, indices: &[usize]) -> Result<CropBatch> {
        // One crop geometry per batch: drawn from its first item, which no other batch of the
        // epoch starts with.
        let first = indices.first().copied().unwrap_or(0) as u64;
        let crops = OverlappingCrops::sample(
            self.len,
            indices.len(),
            self.min_overlap,
            &mut Rng::derive(cfg.seed, &[CROPS, epoch, first]),
        );
        let (len1, len2) = (
            crops.overlap_right - crops.extended_left,
            crops.extended_right - crops.overlap_left,
        );
        let c = self.data.channels;
        let mut b = CropBatch {
            items: indices.len(),
            channels: c,
            view1: Vec::with_capacity(indices.len() * len1 * c),
            keep1: Vec::with_capacity(indices.len() * len1),
            len1,
            view2: Vec::with_capacity(indices.len() * len2 * c),
            keep2: Vec::with_capacity(indices.len() * len2),
            len2,
            overlap: crops.overlap,
            keys: crate::rng::RowKeys::view(cfg.seed, epoch, indices, 0),
        };
        for (k, &i) in indices.iter().enumerate() {
            let (a, v) = crops.views(&self.padded(i), k);
            let mut rng = Rng::derive(cfg.seed, &[MASK, epoch, i as u64]);
            let m1: Vec<bool> = (0..len1).map(|_| rng.bernoulli(self.keep)).collect();
            let m2: Vec<bool> = (0..len2).map(|_| rng.bernoulli(self.keep)).collect();
            let (x, keep) = time_major(&a.values, c, len1, Some(&m1));
            b.view1.extend(x);
            b.keep1.extend(keep);
            let (x, keep) = time_major(&v.values, c, len2, Some(&m2));
            b.view2.extend(x);
            b.keep2.extend(keep);
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(channels: usize, len: usize) -> Series {
        let values = (0..channels * len).map(|i| i as f32).collect();
        Series::new(channels, len, values)
    }

    fn apply(a: SeriesAugmentation, s: Series, seed: u64) -> Series {
        a.apply(s, &mut Rng::new(seed))
    }

    #[test]
    fn jitter_and_scaling_have_the_asked_spread() {
        let flat = Series::new(1, 20_000, vec![1.0; 20_000]);
        let j = apply(
            SeriesAugmentation::Jitter(Jitter { sigma: 0.1, p: 1.0 }),
            flat.clone(),
            1,
        );
        let m = j.values.iter().map(|&v| v as f64).sum::<f64>() / 20_000.0;
        let sd = (j
            .values
            .iter()
            .map(|&v| (v as f64 - m).powi(2))
            .sum::<f64>()
            / 20_000.0)
            .sqrt();
        assert!(
            (m - 1.0).abs() < 0.005 && (sd - 0.1).abs() < 0.005,
            "{m} {sd}"
        );
        // Scaling: one factor per channel.
        let two = Series::new(2, 50, vec![2.0; 100]);
        let s = apply(
            SeriesAugmentation::Scaling(Scaling { sigma: 0.2, p: 1.0 }),
            two,
            2,
        );
        assert!(s.channel(0).iter().all(|&v| v == s.channel(0)[0]));
        assert_ne!(s.channel(0)[0], s.channel(1)[0]);
        // p = 0 leaves the series alone.
        let same = apply(
            SeriesAugmentation::Jitter(Jitter { sigma: 1.0, p: 0.0 }),
            flat.clone(),
            3,
        );
        assert_eq!(same, flat);
    }

    #[test]
    fn warps_are_smooth_and_keep_the_ends() {
        let s = ramp(1, 200);
        let t = apply(
            SeriesAugmentation::TimeWarp(Warp {
                sigma: 0.2,
                knots: 4,
                p: 1.0,
            }),
            s.clone(),
            4,
        );
        // A time warp of a ramp stays increasing from the first value to the last.
        assert_eq!((t.values[0], t.values[199]), (0.0, 199.0));
        assert!(t.values.windows(2).all(|w| w[1] > w[0]));
        assert_ne!(t, s);
        let flat = Series::new(1, 200, vec![1.0; 200]);
        let m = apply(
            SeriesAugmentation::MagnitudeWarp(Warp {
                sigma: 0.2,
                knots: 4,
                p: 1.0,
            }),
            flat,
            5,
        );
        // Smooth: neighbouring factors differ little.
        assert!(m.values.windows(2).all(|w| (w[1] - w[0]).abs() < 0.05));
        assert!(m.values.iter().any(|&v| (v - 1.0).abs() > 0.02));
    }

    #[test]
    fn permutation_slicing_cropping_and_masking() {
        let s = ramp(2, 30);
        let p = apply(
            SeriesAugmentation::Permutation(Permutation {
                max_segments: 5,
                p: 1.0,
            }),
            s.clone(),
            6,
        );
        // The same values per channel, in another order, the channels moved together.
        let mut c0: Vec<f32> = p.channel(0).to_vec();
        c0.sort_by(f32::total_cmp);
        assert_eq!(c0, s.channel(0));
        assert!(
            p.channel(0)
                .iter()
                .zip(p.channel(1))
                .all(|(a, b)| b - a == 30.0)
        );
        let w = apply(
            SeriesAugmentation::WindowSlice(WindowSlice { ratio: 0.5, p: 1.0 }),
            s.clone(),
            7,
        );
        assert_eq!(w.len, 30);
        let span = w.channel(0)[29] - w.channel(0)[0];
        assert!((span - 14.0).abs() < 1e-4, "{span}");
        let c = apply(SeriesAugmentation::Crop(Crop { length: 10 }), s.clone(), 8);
        assert_eq!((c.len, c.channel(1)[0] - c.channel(0)[0]), (10, 30.0));
        assert!(c.channel(0).windows(2).all(|w| w[1] - w[0] == 1.0));
        let m = apply(
            SeriesAugmentation::Masking(Masking { ratio: 0.5, p: 1.0 }),
            ramp(2, 1000),
            9,
        );
        let masked: Vec<usize> = (0..1000)
            .filter(|&t| m.channel(0)[t] == 0.0 && t > 0)
            .collect();
        assert!((400..600).contains(&masked.len()), "{}", masked.len());
        assert!(masked.iter().all(|&t| m.channel(1)[t] == 0.0));
    }

    #[test]
    fn recipes_parse_and_bad_values_are_named() {
        let steps: Vec<SeriesAugmentation> = toml::from_str::<toml::Table>(
            "steps = [{ op = \"jitter\", sigma = 0.03 }, { op = \"time_warp\", sigma = 0.2 }, { op = \"crop\", length = 64 }]",
        )
        .unwrap()["steps"]
            .clone()
            .try_into()
            .unwrap();
        let p = SeriesPipeline::new(steps).unwrap();
        assert_eq!(
            (p.steps.len(), p.output_len(100), p.output_len(50)),
            (3, 64, 50)
        );
        let e = SeriesPipeline::new(vec![SeriesAugmentation::Permutation(Permutation {
            max_segments: 1,
            p: 1.0,
        })])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("augment.series[0] (permutation)") && e.contains("max_segments"),
            "{e}"
        );
    }

    #[test]
    fn overlapping_crops_share_their_overlap() {
        let s = ramp(1, 100);
        let mut rng = Rng::new(10);
        for _ in 0..50 {
            let c = OverlappingCrops::sample(100, 4, 8, &mut rng);
            assert!(c.overlap >= 8 && c.overlap_right - c.overlap_left == c.overlap);
            assert!(c.extended_left <= c.overlap_left && c.extended_right >= c.overlap_right);
            for item in 0..4 {
                let (a, b) = c.views(&s, item);
                let tail = &a.values[a.len - c.overlap..];
                let head = &b.values[..c.overlap];
                // The same time steps, padding (NaN) included.
                assert!(
                    tail.iter()
                        .zip(head)
                        .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
                );
                assert!(a.values.iter().any(|v| !v.is_nan()));
            }
        }
    }
}
