//! Images as `f32` values in CHW order, and the pixel operations the augmentations are made of.
//!
//! Values are in [0, 1] until normalisation. The operations follow torchvision's definitions
//! (grayscale weights, contrast about the grayscale mean, hue rotation in HSV, reflect-padded
//! Gaussian blur, nearest-neighbour rotation with zero fill) so that recipes carry over.

#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl Image {
    pub fn zeros(channels: usize, height: usize, width: usize) -> Self {
        Self {
            channels,
            height,
            width,
            data: vec![0.0; channels * height * width],
        }
    }

    pub fn from_bytes(bytes: &[u8], channels: usize, height: usize, width: usize) -> Self {
        debug_assert_eq!(bytes.len(), channels * height * width);
        Self {
            channels,
            height,
            width,
            data: bytes.iter().map(|&b| b as f32 * (1.0 / 255.0)).collect(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        self.data
            .iter()
            .map(|&v| (v * 255.0).round().clamp(0.0, 255.0) as u8)
            .collect()
    }

    fn plane(&self) -> usize {
        self.height * self.width
    }

    /// Convert to 1 channel (luma) or 3 channels (gray replicated).
    pub fn to_channels(self, channels: usize) -> Self {
        match (self.channels, channels) {
            (a, b) if a == b => self,
            (3, 1) => self.grayscale_plane(),
            (1, 3) => {
                let mut data = Vec::with_capacity(3 * self.plane());
                for _ in 0..3 {
                    data.extend_from_slice(&self.data);
                }
                Self {
                    channels: 3,
                    data,
                    ..self
                }
            }
            (a, b) => panic!("cannot convert {a} channels to {b}"),
        }
    }

    /// Luma with torchvision's weights (0.2989, 0.587, 0.114), as a 1-channel image.
    fn grayscale_plane(&self) -> Self {
        let n = self.plane();
        let (r, rest) = self.data.split_at(n);
        let (g, b) = rest.split_at(n);
        let data = (0..n)
            .map(|i| 0.2989 * r[i] + 0.587 * g[i] + 0.114 * b[i])
            .collect();
        Self {
            channels: 1,
            height: self.height,
            width: self.width,
            data,
        }
    }

    /// Replace every channel by the luma (a no-op for 1 channel).
    pub fn grayscale(&mut self) {
        if self.channels == 3 {
            let g = self.grayscale_plane().data;
            for c in 0..3 {
                self.data[c * g.len()..(c + 1) * g.len()].copy_from_slice(&g);
            }
        }
    }

    /// Bilinear resize of the whole image (half-pixel centres, as align_corners=False).
    pub fn resize(&self, height: usize, width: usize) -> Self {
        self.crop_resize(
            0.0,
            0.0,
            self.height as f32,
            self.width as f32,
            height,
            width,
        )
    }

    /// Bilinear resample of the box at (`top`, `left`) of size `box_h x box_w` to
    /// `height x width`; samples are clamped to the box, as cropping before resizing does.
    /// Shrinking is antialiased: the triangle filter widens by the shrink factor, as PIL and
    /// PyTorch's `interpolate(..., antialias=True)` do, so a 256-pixel photo cut to 64 keeps
    /// no aliasing; enlarging is plain 2-tap bilinear.
    pub fn crop_resize(
        &self,
        top: f32,
        left: f32,
        box_h: f32,
        box_w: f32,
        height: usize,
        width: usize,
    ) -> Self {
        if box_h > height as f32 || box_w > width as f32 {
            return self.crop_resize_antialiased(top, left, box_h, box_w, height, width);
        }
        let mut out = Image::zeros(self.channels, height, width);
        let (sy, sx) = (box_h / height as f32, box_w / width as f32);
        let (y_lo, y_hi) = (
            top.max(0.0),
            (top + box_h - 1.0).min(self.height as f32 - 1.0),
        );
        let (x_lo, x_hi) = (
            left.max(0.0),
            (left + box_w - 1.0).min(self.width as f32 - 1.0),
        );
        let taps = |o: usize, s: f32, start: f32, lo: f32, hi: f32| {
            let p = (start + (o as f32 + 0.5) * s - 0.5).clamp(lo, hi);
            let i0 = p.floor();
            let f = p - i0;
            let i0 = i0 as usize;
            let i1 = (i0 + 1).min(hi as usize);
            (i0, i1, f)
        };
        let xs: Vec<_> = (0..width).map(|x| taps(x, sx, left, x_lo, x_hi)).collect();
        let plane_in = self.plane();
        for y in 0..height {
            let (y0, y1, fy) = taps(y, sy, top, y_lo, y_hi);
            for c in 0..self.channels {
                let src = &self.data[c * plane_in..(c + 1) * plane_in];
                let row0 = &src[y0 * self.width..(y0 + 1) * self.width];
                let row1 = &src[y1 * self.width..(y1 + 1) * self.width];
                let dst = &mut out.data[(c * height + y) * width..(c * height + y + 1) * width];
                for (d, &(x0, x1, fx)) in dst.iter_mut().zip(&xs) {
                    let a = row0[x0] + (row0[x1] - row0[x0]) * fx;
                    let b = row1[x0] + (row1[x1] - row1[x0]) * fx;
                    *d = a + (b - a) * fy;
                }
            }
        }
        out
    }

    /// The antialiased resample behind [`Image::crop_resize`]: separable, rows first.
    fn crop_resize_antialiased(
        &self,
        top: f32,
        left: f32,
        box_h: f32,
        box_w: f32,
        height: usize,
        width: usize,
    ) -> Self {
        let ys = filter_taps(top, box_h, height, self.height);
        let xs = filter_taps(left, box_w, width, self.width);
        // Horizontal pass over the rows the vertical taps read, then the vertical pass.
        let row_lo = ys.iter().map(|t| t.first).min().unwrap_or(0);
        let row_hi = ys
            .iter()
            .map(|t| t.first + t.weights.len())
            .max()
            .unwrap_or(0);
        let rows = row_hi - row_lo;
        let plane_in = self.plane();
        let mut mid = vec![0f32; self.channels * rows * width];
        for c in 0..self.channels {
            for r in 0..rows {
                let at = c * plane_in + (row_lo + r) * self.width;
                let src = &self.data[at..at + self.width];
                let dst = &mut mid[(c * rows + r) * width..(c * rows + r + 1) * width];
                for (d, t) in dst.iter_mut().zip(&xs) {
                    *d = t
                        .weights
                        .iter()
                        .zip(&src[t.first..])
                        .map(|(w, v)| w * v)
                        .sum();
                }
            }
        }
        let mut out = Image::zeros(self.channels, height, width);
        for c in 0..self.channels {
            let plane = &mid[c * rows * width..(c + 1) * rows * width];
            for (y, t) in ys.iter().enumerate() {
                let dst = &mut out.data[(c * height + y) * width..(c * height + y + 1) * width];
                for (k, w) in t.weights.iter().enumerate() {
                    let r = t.first + k - row_lo;
                    let row = &plane[r * width..(r + 1) * width];
                    dst.iter_mut().zip(row).for_each(|(d, v)| *d += w * v);
                }
            }
        }
        out
    }

    /// Torchvision's `Resize(size)` then `CenterCrop(size)`: the shorter side scaled to
    /// `size` (antialiased when shrinking), then the centre `size x size` cut out (offsets
    /// rounded half to even, as Python rounds).
    pub fn resize_shorter_and_crop(&self, size: usize) -> Self {
        let (h, w) = (self.height, self.width);
        let (rh, rw) = if h <= w {
            (size, ((size * w) as f64 / h as f64) as usize)
        } else {
            (((size * h) as f64 / w as f64) as usize, size)
        };
        let (rh, rw) = (rh.max(size), rw.max(size));
        let resized = if (rh, rw) == (h, w) {
            self.clone()
        } else {
            self.resize(rh, rw)
        };
        let top = ((rh - size) as f64 / 2.0).round_ties_even() as usize;
        let left = ((rw - size) as f64 / 2.0).round_ties_even() as usize;
        let mut out = Image::zeros(self.channels, size, size);
        for c in 0..self.channels {
            for y in 0..size {
                let src = (c * rh + top + y) * rw + left;
                out.data[(c * size + y) * size..(c * size + y + 1) * size]
                    .copy_from_slice(&resized.data[src..src + size]);
            }
        }
        out
    }

    pub fn flip_horizontal(&mut self) {
        let w = self.width;
        for row in self.data.chunks_exact_mut(w) {
            row.reverse();
        }
    }

    pub fn flip_vertical(&mut self) {
        let (h, w) = (self.height, self.width);
        for plane in self.data.chunks_exact_mut(h * w) {
            for y in 0..h / 2 {
                let (a, b) = plane.split_at_mut((h - 1 - y) * w);
                a[y * w..(y + 1) * w].swap_with_slice(&mut b[..w]);
            }
        }
    }

    /// Rotate counter-clockwise by `degrees` about the centre, nearest neighbour, zero fill.
    pub fn rotate(&self, degrees: f32) -> Self {
        let (h, w) = (self.height, self.width);
        let mut out = Image::zeros(self.channels, h, w);
        let (s, c) = degrees.to_radians().sin_cos();
        let (cy, cx) = ((h as f32 - 1.0) * 0.5, (w as f32 - 1.0) * 0.5);
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f32 - cx, y as f32 - cy);
                // Inverse map of a counter-clockwise rotation in image coordinates (y down).
                let sx = c * dx - s * dy + cx;
                let sy = s * dx + c * dy + cy;
                let (ix, iy) = (sx.round(), sy.round());
                if ix >= 0.0 && iy >= 0.0 && (ix as usize) < w && (iy as usize) < h {
                    for ch in 0..self.channels {
                        out.data[(ch * h + y) * w + x] =
                            self.data[(ch * h + iy as usize) * w + ix as usize];
                    }
                }
            }
        }
        out
    }

    fn clamp01(&mut self) {
        self.data.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    }

    pub fn adjust_brightness(&mut self, factor: f32) {
        self.data.iter_mut().for_each(|v| *v *= factor);
        self.clamp01();
    }

    /// Blend with the mean luma of the image.
    pub fn adjust_contrast(&mut self, factor: f32) {
        let gray = if self.channels == 3 {
            self.grayscale_plane().data
        } else {
            self.data.clone()
        };
        let mean = gray.iter().sum::<f32>() / gray.len() as f32;
        self.data
            .iter_mut()
            .for_each(|v| *v = factor * *v + (1.0 - factor) * mean);
        self.clamp01();
    }

    /// Blend with the grayscale image (3 channels only).
    pub fn adjust_saturation(&mut self, factor: f32) {
        if self.channels != 3 {
            return;
        }
        let g = self.grayscale_plane().data;
        let n = g.len();
        for c in 0..3 {
            for (v, &gv) in self.data[c * n..(c + 1) * n].iter_mut().zip(&g) {
                *v = factor * *v + (1.0 - factor) * gv;
            }
        }
        self.clamp01();
    }

    /// Rotate the hue by `shift` turns (in [-0.5, 0.5]), 3 channels only.
    pub fn adjust_hue(&mut self, shift: f32) {
        if self.channels != 3 || shift == 0.0 {
            return;
        }
        let n = self.plane();
        for i in 0..n {
            let (r, g, b) = (self.data[i], self.data[n + i], self.data[2 * n + i]);
            let max = r.max(g).max(b);
            let min = r.min(g).min(b);
            let delta = max - min;
            let v = max;
            let s = if max > 0.0 { delta / max } else { 0.0 };
            let mut h = if delta == 0.0 {
                0.0
            } else if max == r {
                ((g - b) / delta).rem_euclid(6.0) / 6.0
            } else if max == g {
                ((b - r) / delta + 2.0) / 6.0
            } else {
                ((r - g) / delta + 4.0) / 6.0
            };
            h = (h + shift).rem_euclid(1.0);
            let h6 = h * 6.0;
            let sector = (h6.floor() as i32).rem_euclid(6);
            let f = h6 - h6.floor();
            let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
            let (nr, ng, nb) = match sector {
                0 => (v, t, p),
                1 => (q, v, p),
                2 => (p, v, t),
                3 => (p, q, v),
                4 => (t, p, v),
                _ => (v, p, q),
            };
            self.data[i] = nr;
            self.data[n + i] = ng;
            self.data[2 * n + i] = nb;
        }
    }

    /// Separable Gaussian blur with an odd kernel and reflect padding.
    pub fn gaussian_blur(&mut self, kernel_size: usize, sigma: f32) {
        let half = (kernel_size / 2) as isize;
        let kernel: Vec<f32> = (-half..=half)
            .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
            .collect();
        let sum: f32 = kernel.iter().sum();
        let kernel: Vec<f32> = kernel.iter().map(|k| k / sum).collect();
        let (h, w) = (self.height as isize, self.width as isize);
        let reflect = |i: isize, n: isize| -> usize {
            if n == 1 {
                return 0;
            }
            let period = 2 * (n - 1);
            let m = i.rem_euclid(period);
            (if m >= n { period - m } else { m }) as usize
        };
        let mut tmp = vec![0.0f32; self.data.len()];
        let plane = (h * w) as usize;
        for c in 0..self.channels {
            let src = &self.data[c * plane..(c + 1) * plane];
            let dst = &mut tmp[c * plane..(c + 1) * plane];
            for y in 0..h {
                for x in 0..w {
                    let mut acc = 0.0;
                    for (k, &kv) in kernel.iter().enumerate() {
                        acc += kv * src[(y * w) as usize + reflect(x + k as isize - half, w)];
                    }
                    dst[(y * w + x) as usize] = acc;
                }
            }
        }
        for c in 0..self.channels {
            let src = &tmp[c * plane..(c + 1) * plane];
            let dst = &mut self.data[c * plane..(c + 1) * plane];
            for y in 0..h {
                for x in 0..w {
                    let mut acc = 0.0;
                    for (k, &kv) in kernel.iter().enumerate() {
                        acc +=
                            kv * src[reflect(y + k as isize - half, h) * w as usize + x as usize];
                    }
                    dst[(y * w + x) as usize] = acc;
                }
            }
        }
    }

    /// Invert values at or above `threshold`.
    pub fn solarize(&mut self, threshold: f32) {
        self.data.iter_mut().for_each(|v| {
            if *v >= threshold {
                *v = 1.0 - *v
            }
        });
    }

    /// `(x - mean[c]) / std[c]` per channel.
    pub fn normalize(&mut self, mean: &[f32], std: &[f32]) {
        let n = self.plane();
        for c in 0..self.channels {
            let (m, s) = (mean[c.min(mean.len() - 1)], std[c.min(std.len() - 1)]);
            self.data[c * n..(c + 1) * n]
                .iter_mut()
                .for_each(|v| *v = (*v - m) / s);
        }
    }
}

/// The input pixels one output pixel of a filtered resample reads, and their weights.
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// PIL's and PyTorch's antialiased bilinear taps along one axis: output pixel `o` of `out`
/// centred at `start + (o + 0.5) * scale` in input coordinates, a triangle filter of
/// half-width `max(scale, 1)`, restricted to the box `[start, start + len)` and the image,
/// weights normalised to sum to one.
fn filter_taps(start: f32, len: f32, out: usize, size: usize) -> Vec<Taps> {
    let scale = (len / out as f32) as f64;
    let support = scale.max(1.0);
    let lo = (start.max(0.0) as f64).floor();
    let hi = ((start + len) as f64).min(size as f64);
    (0..out)
        .map(|o| {
            let centre = start as f64 + (o as f64 + 0.5) * scale;
            let first = ((centre - support + 0.5).floor()).max(lo) as usize;
            let last = ((centre + support + 0.5).floor()).min(hi) as usize;
            let mut weights: Vec<f64> = (first..last.max(first + 1))
                .map(|j| (1.0 - ((j as f64 - centre + 0.5) / support).abs()).max(0.0))
                .collect();
            let total: f64 = weights.iter().sum();
            if total > 0.0 {
                weights.iter_mut().for_each(|w| *w /= total);
            }
            Taps {
                first,
                weights: weights.into_iter().map(|w| w as f32).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(c: usize, h: usize, w: usize) -> Image {
        let data = (0..c * h * w)
            .map(|i| i as f32 / (c * h * w) as f32)
            .collect();
        Image {
            channels: c,
            height: h,
            width: w,
            data,
        }
    }

    #[test]
    fn resize_to_same_size_is_identity_and_crop_picks_the_box() {
        let img = ramp(2, 5, 7);
        assert_eq!(img.resize(5, 7), img);
        let crop = img.crop_resize(1.0, 2.0, 3.0, 4.0, 3, 4);
        for y in 0..3 {
            for x in 0..4 {
                assert_eq!(crop.data[y * 4 + x], img.data[(y + 1) * 7 + x + 2]);
            }
        }
        // Downscaling 2x widens the triangle to 4 taps (3 inside the image at each end):
        // weights 0.75, 0.75, 0.25 over 1.75.
        let half = Image {
            channels: 1,
            height: 1,
            width: 4,
            data: vec![0.0, 1.0, 2.0, 3.0],
        }
        .resize(1, 2);
        for (a, b) in half.data.iter().zip([1.25 / 1.75, 4.0 / 1.75]) {
            assert!((a - b).abs() < 1e-6, "{:?}", half.data);
        }
    }

    #[test]
    fn flips_and_rotations_move_pixels() {
        let img = ramp(1, 3, 3);
        let mut f = img.clone();
        f.flip_horizontal();
        assert_eq!(f.data[0], img.data[2]);
        let mut v = img.clone();
        v.flip_vertical();
        assert_eq!(v.data[0], img.data[6]);
        assert_eq!(img.rotate(0.0), img);
        // 90 degrees counter-clockwise: the top-right pixel goes to the top-left.
        let r = img.rotate(90.0);
        assert_eq!(r.data[0], img.data[2]);
        assert_eq!(r.data[4], img.data[4]);
        assert_eq!(img.rotate(360.0), img);
    }

    #[test]
    fn colour_ops_follow_their_definitions() {
        let mut img = Image {
            channels: 3,
            height: 1,
            width: 2,
            data: vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        };
        let mut hue = img.clone();
        hue.adjust_hue(1.0 / 3.0); // red -> green, green -> blue
        let expect = [0.0, 0.0, 1.0, 0.0, 0.0, 1.0];
        hue.data
            .iter()
            .zip(expect)
            .for_each(|(a, b)| assert!((a - b).abs() < 1e-6, "{:?}", hue.data));
        let mut sat = img.clone();
        sat.adjust_saturation(0.0);
        assert!((sat.data[0] - 0.2989).abs() < 1e-6 && (sat.data[2] - 0.2989).abs() < 1e-6);
        img.adjust_brightness(0.5);
        assert_eq!(img.data[0], 0.5);
        let mut s = ramp(1, 2, 2);
        s.solarize(0.5);
        assert_eq!(s.data, vec![0.0, 0.25, 0.5, 0.25]);
        let mut b = Image {
            channels: 1,
            height: 1,
            width: 5,
            data: vec![0.0, 0.0, 1.0, 0.0, 0.0],
        };
        b.gaussian_blur(3, 1.0);
        let total: f32 = b.data.iter().sum();
        assert!((total - 1.0).abs() < 1e-6 && b.data[1] == b.data[3] && b.data[2] < 1.0);
    }
}
