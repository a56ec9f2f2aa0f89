//! Image augmentations: each a small type with its parameters and probability, composed into a
//! [`Pipeline`] from a recipe, and a [`loader`] that runs the pipeline in worker threads.

pub mod captions;
pub mod inject;
pub mod loader;
pub mod series;
pub mod text;

use crate::error::{Error, Result};
use crate::image::Image;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// Crop a random box of `scale` times the area and `ratio` aspect, then resize to `size`
/// (torchvision's sampling: 10 tries, then a centre crop clamped to the ratio range).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RandomResizedCrop {
    pub size: usize,
    #[serde(default = "default_scale")]
    pub scale: [f64; 2],
    #[serde(default = "default_ratio")]
    pub ratio: [f64; 2],
}
fn default_scale() -> [f64; 2] {
    [0.08, 1.0]
}
fn default_ratio() -> [f64; 2] {
    [3.0 / 4.0, 4.0 / 3.0]
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Flip {
    #[serde(default = "half")]
    pub p: f64,
}
fn half() -> f64 {
    0.5
}

/// Rotate by an angle uniform in [-degrees, degrees].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    pub degrees: f64,
    #[serde(default = "one")]
    pub p: f64,
}
fn one() -> f64 {
    1.0
}

/// Brightness, contrast and saturation factors uniform in [1-x, 1+x], hue shift uniform in
/// [-hue, hue], applied in a random order (as torchvision), all with probability `p`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ColorJitter {
    #[serde(default)]
    pub brightness: f64,
    #[serde(default)]
    pub contrast: f64,
    #[serde(default)]
    pub saturation: f64,
    #[serde(default)]
    pub hue: f64,
    #[serde(default = "one")]
    pub p: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RandomGrayscale {
    #[serde(default = "default_gray_p")]
    pub p: f64,
}
fn default_gray_p() -> f64 {
    0.2
}

/// Gaussian blur with sigma uniform in `sigma`; the kernel size is odd, by default about a
/// tenth of the image side (as in SimCLR).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GaussianBlur {
    #[serde(default)]
    pub kernel_size: Option<usize>,
    #[serde(default = "default_sigma")]
    pub sigma: [f64; 2],
    #[serde(default = "half")]
    pub p: f64,
}
fn default_sigma() -> [f64; 2] {
    [0.1, 2.0]
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Solarize {
    #[serde(default = "half")]
    pub threshold: f64,
    #[serde(default = "default_solarize_p")]
    pub p: f64,
}
fn default_solarize_p() -> f64 {
    0.2
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Normalize {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// One step of a pipeline, as written in a recipe: `{ op = "horizontal_flip", p = 0.5 }`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Augmentation {
    RandomResizedCrop(RandomResizedCrop),
    HorizontalFlip(Flip),
    VerticalFlip(Flip),
    Rotation(Rotation),
    ColorJitter(ColorJitter),
    RandomGrayscale(RandomGrayscale),
    GaussianBlur(GaussianBlur),
    Solarize(Solarize),
    Normalize(Normalize),
}

impl RandomResizedCrop {
    /// The crop box (top, left, height, width) for an image of `h x w`.
    pub fn sample_box(&self, h: usize, w: usize, rng: &mut Rng) -> (f32, f32, f32, f32) {
        let area = (h * w) as f64;
        let (lr0, lr1) = (self.ratio[0].ln(), self.ratio[1].ln());
        for _ in 0..10 {
            let target = area * rng.range(self.scale[0], self.scale[1]);
            let aspect = rng.range(lr0, lr1).exp();
            let cw = (target * aspect).sqrt().round() as usize;
            let ch = (target / aspect).sqrt().round() as usize;
            if cw > 0 && ch > 0 && cw <= w && ch <= h {
                let top = rng.below(h - ch + 1);
                let left = rng.below(w - cw + 1);
                return (top as f32, left as f32, ch as f32, cw as f32);
            }
        }
        let in_ratio = w as f64 / h as f64;
        let (cw, ch) = if in_ratio < self.ratio[0] {
            (w, (w as f64 / self.ratio[0]).round() as usize)
        } else if in_ratio > self.ratio[1] {
            ((h as f64 * self.ratio[1]).round() as usize, h)
        } else {
            (w, h)
        };
        (
            ((h - ch) / 2) as f32,
            ((w - cw) / 2) as f32,
            ch as f32,
            cw as f32,
        )
    }
}

impl Augmentation {
    pub fn apply(&self, mut img: Image, rng: &mut Rng) -> Image {
        match self {
            Augmentation::RandomResizedCrop(a) => {
                let (t, l, h, w) = a.sample_box(img.height, img.width, rng);
                img.crop_resize(t, l, h, w, a.size, a.size)
            }
            Augmentation::HorizontalFlip(a) => {
                if rng.bernoulli(a.p) {
                    img.flip_horizontal();
                }
                img
            }
            Augmentation::VerticalFlip(a) => {
                if rng.bernoulli(a.p) {
                    img.flip_vertical();
                }
                img
            }
            Augmentation::Rotation(a) => {
                if rng.bernoulli(a.p) {
                    let angle = rng.range(-a.degrees, a.degrees) as f32;
                    img.rotate(angle)
                } else {
                    img
                }
            }
            Augmentation::ColorJitter(a) => {
                if rng.bernoulli(a.p) {
                    let mut order = [0, 1, 2, 3];
                    rng.shuffle(&mut order);
                    let factor =
                        |x: f64, rng: &mut Rng| rng.range((1.0 - x).max(0.0), 1.0 + x) as f32;
                    for op in order {
                        match op {
                            0 if a.brightness > 0.0 => {
                                img.adjust_brightness(factor(a.brightness, rng))
                            }
                            1 if a.contrast > 0.0 => img.adjust_contrast(factor(a.contrast, rng)),
                            2 if a.saturation > 0.0 => {
                                img.adjust_saturation(factor(a.saturation, rng))
                            }
                            3 if a.hue > 0.0 => img.adjust_hue(rng.range(-a.hue, a.hue) as f32),
                            _ => {}
                        }
                    }
                }
                img
            }
            Augmentation::RandomGrayscale(a) => {
                if rng.bernoulli(a.p) {
                    img.grayscale();
                }
                img
            }
            Augmentation::GaussianBlur(a) => {
                if rng.bernoulli(a.p) {
                    let k = a.kernel_size.unwrap_or_else(|| {
                        let k = (img.height.max(img.width) as f64 * 0.1).round() as usize;
                        k.max(3)
                    }) | 1;
                    let sigma = rng.range(a.sigma[0], a.sigma[1]) as f32;
                    img.gaussian_blur(k, sigma);
                }
                img
            }
            Augmentation::Solarize(a) => {
                if rng.bernoulli(a.p) {
                    img.solarize(a.threshold as f32);
                }
                img
            }
            Augmentation::Normalize(a) => {
                img.normalize(&a.mean, &a.std);
                img
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Augmentation::RandomResizedCrop(_) => "random_resized_crop",
            Augmentation::HorizontalFlip(_) => "horizontal_flip",
            Augmentation::VerticalFlip(_) => "vertical_flip",
            Augmentation::Rotation(_) => "rotation",
            Augmentation::ColorJitter(_) => "color_jitter",
            Augmentation::RandomGrayscale(_) => "random_grayscale",
            Augmentation::GaussianBlur(_) => "gaussian_blur",
            Augmentation::Solarize(_) => "solarize",
            Augmentation::Normalize(_) => "normalize",
        }
    }

    fn validate(&self, key: &str) -> Result<()> {
        let prob = |p: f64| -> Result<()> {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(Error::config(
                    format!("{key}.p"),
                    format!("{p} is not a probability in [0, 1]"),
                ))
            }
        };
        let range = |name: &str, r: [f64; 2], lo: f64| -> Result<()> {
            if r[0] >= lo && r[0] <= r[1] {
                Ok(())
            } else {
                Err(Error::config(
                    format!("{key}.{name}"),
                    format!("{r:?} must be an increasing pair above {lo}"),
                ))
            }
        };
        match self {
            Augmentation::RandomResizedCrop(a) => {
                if a.size == 0 {
                    return Err(Error::config(format!("{key}.size"), "must be positive"));
                }
                range("scale", a.scale, 0.0)?;
                if a.scale[1] > 1.0 {
                    return Err(Error::config(
                        format!("{key}.scale"),
                        "the upper bound must be at most 1",
                    ));
                }
                range("ratio", a.ratio, 1e-6)
            }
            Augmentation::HorizontalFlip(a) | Augmentation::VerticalFlip(a) => prob(a.p),
            Augmentation::Rotation(a) => prob(a.p),
            Augmentation::ColorJitter(a) => {
                if a.hue > 0.5 {
                    return Err(Error::config(format!("{key}.hue"), "must be in [0, 0.5]"));
                }
                prob(a.p)
            }
            Augmentation::RandomGrayscale(a) => prob(a.p),
            Augmentation::GaussianBlur(a) => {
                range("sigma", a.sigma, 1e-6)?;
                prob(a.p)
            }
            Augmentation::Solarize(a) => prob(a.p),
            Augmentation::Normalize(a) => {
                if a.mean.is_empty()
                    || a.mean.len() != a.std.len()
                    || a.std.iter().any(|&s| s <= 0.0)
                {
                    return Err(Error::config(
                        key.to_string(),
                        "mean and std need the same non-zero length and std > 0",
                    ));
                }
                Ok(())
            }
        }
    }
}

/// A sequence of augmentations applied in order to make one view.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Pipeline {
    pub steps: Vec<Augmentation>,
}

impl Pipeline {
    pub fn new(steps: Vec<Augmentation>) -> Result<Self> {
        for (i, s) in steps.iter().enumerate() {
            s.validate(&format!("augment[{i}] ({})", s.name()))?;
        }
        Ok(Self { steps })
    }

    /// lightly's SimCLR transform at the strength of its CIFAR-10 benchmark: random resized
    /// crop (scale 0.08-1), horizontal flip 0.5, colour jitter 0.4/0.4/0.4/0.1 with p 0.8,
    /// grayscale 0.2, no blur (small images), then normalisation with the given statistics.
    pub fn simclr(size: usize, mean: Vec<f32>, std: Vec<f32>) -> Self {
        Self {
            steps: vec![
                Augmentation::RandomResizedCrop(RandomResizedCrop {
                    size,
                    scale: [0.08, 1.0],
                    ratio: default_ratio(),
                }),
                Augmentation::HorizontalFlip(Flip { p: 0.5 }),
                Augmentation::ColorJitter(ColorJitter {
                    brightness: 0.4,
                    contrast: 0.4,
                    saturation: 0.4,
                    hue: 0.1,
                    p: 0.8,
                }),
                Augmentation::RandomGrayscale(RandomGrayscale { p: 0.2 }),
                Augmentation::Normalize(Normalize { mean, std }),
            ],
        }
    }

    /// The size of the images this pipeline outputs for inputs of `h x w`.
    pub fn output_size(&self, h: usize, w: usize) -> (usize, usize) {
        self.steps.iter().fold((h, w), |hw, s| match s {
            Augmentation::RandomResizedCrop(a) => (a.size, a.size),
            _ => hw,
        })
    }

    /// The normalisation step, if any: evaluation applies it alone.
    pub fn normalization(&self) -> Option<&Normalize> {
        self.steps.iter().rev().find_map(|s| match s {
            Augmentation::Normalize(n) => Some(n),
            _ => None,
        })
    }

    pub fn apply(&self, img: Image, rng: &mut Rng) -> Image {
        self.steps.iter().fold(img, |img, s| s.apply(img, rng))
    }

    /// Whether the first step is a random resized crop, which takes an image of any size.
    pub fn crops_first(&self) -> bool {
        matches!(self.steps.first(), Some(Augmentation::RandomResizedCrop(_)))
    }
}

/// Images a streamed set's channel statistics are taken from.
pub const STATS_SAMPLE: usize = 2000;

/// Per-channel mean and standard deviation of a data set's pixels in [0, 1]: over every
/// image held in memory; over a seeded sample of [`STATS_SAMPLE`] images of a streamed set
/// (decoding the whole folder first would double the first epoch).
pub fn channel_stats(set: &crate::data::ImageDataset) -> (Vec<f32>, Vec<f32>) {
    use rayon::prelude::*;
    let plane = set.height * set.width;
    let mut sums = vec![(0f64, 0f64); set.channels];
    let rows: Vec<usize> = if set.is_streamed() && set.len > STATS_SAMPLE {
        let mut sample = Rng::derive(0, &[0x5354_4154])
            .permutation(set.len)
            .split_off(set.len - STATS_SAMPLE);
        sample.sort_unstable();
        sample
    } else {
        (0..set.len).collect()
    };
    // In parallel: a streamed image is decoded here.
    let images: Vec<std::borrow::Cow<[u8]>> = rows.par_iter().map(|&i| set.image(i)).collect();
    for image in &images {
        for (c, px) in image.chunks_exact(plane).enumerate() {
            for &p in px {
                let v = p as f64 / 255.0;
                sums[c].0 += v;
                sums[c].1 += v * v;
            }
        }
    }
    let n = (images.len() * plane).max(1) as f64;
    let mean = sums.iter().map(|s| (s.0 / n) as f32).collect();
    let std = sums
        .iter()
        .map(|s| ((s.1 / n - (s.0 / n).powi(2)).max(1e-12).sqrt()) as f32)
        .collect();
    (mean, std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_syntax_parses_and_rejects_unknown_keys() {
        #[derive(Deserialize)]
        struct R {
            augment: Vec<Augmentation>,
        }
        let r: R = toml::from_str(
            "[[augment]]\nop = \"random_resized_crop\"\nsize = 8\nscale = [0.5, 1.0]\n[[augment]]\nop = \"horizontal_flip\"\n",
        )
        .unwrap();
        assert_eq!(r.augment.len(), 2);
        assert_eq!(r.augment[1], Augmentation::HorizontalFlip(Flip { p: 0.5 }));
        let bad = toml::from_str::<R>("[[augment]]\nop = \"horizontal_flip\"\nprob = 0.3\n");
        assert!(bad.err().unwrap().to_string().contains("prob"));
        let e = Pipeline::new(vec![Augmentation::HorizontalFlip(Flip { p: 1.5 })])
            .unwrap_err()
            .to_string();
        assert!(e.contains("augment[0]") && e.contains("1.5"), "{e}");
    }

    #[test]
    fn crop_box_respects_scale_and_bounds() {
        let c = RandomResizedCrop {
            size: 8,
            scale: [0.25, 0.5],
            ratio: [1.0, 1.0],
        };
        let mut rng = Rng::new(1);
        for _ in 0..1000 {
            let (t, l, h, w) = c.sample_box(32, 32, &mut rng);
            assert!(t + h <= 32.0 && l + w <= 32.0);
            let frac = h * w / 1024.0;
            assert!((0.2..=0.56).contains(&frac), "{frac}");
        }
    }

    #[test]
    fn same_seed_same_view() {
        let p = Pipeline::simclr(16, vec![0.5; 3], vec![0.25; 3]);
        let img = Image {
            channels: 3,
            height: 20,
            width: 20,
            data: (0..1200).map(|i| (i % 97) as f32 / 97.0).collect(),
        };
        let a = p.apply(img.clone(), &mut Rng::derive(5, &[1, 2]));
        let b = p.apply(img.clone(), &mut Rng::derive(5, &[1, 2]));
        let c = p.apply(img, &mut Rng::derive(5, &[1, 3]));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!((a.channels, a.height, a.width), (3, 16, 16));
    }
}
