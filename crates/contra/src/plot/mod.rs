//! Plots written as PNG and SVG from one description: a chart draws itself on a [`Surface`],
//! which is either an anti-aliased raster (encoded as PNG, text from a bundled 7x13 bitmap of
//! DejaVu Sans Mono: `tools/make_font.py`) or an SVG document. No plotting library, no fonts
//! needed at run time.

pub mod chart;

use crate::checkpoint::write_atomic;
use crate::error::{Error, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

pub type Rgb = [u8; 3];

/// Matplotlib's "tab10" colours, for classes and series.
pub const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];
pub const BLACK: Rgb = [0, 0, 0];
pub const GRAY: Rgb = [200, 200, 200];
pub const WHITE: Rgb = [255, 255, 255];

/// Where text sits horizontally relative to its point (it is centred vertically).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// Width of one character of plot text, in pixels.
pub const CHAR_WIDTH: f64 = 7.0;

/// What charts draw on; coordinates in pixels from the top left.
pub trait Surface {
    fn line(&mut self, a: (f64, f64), b: (f64, f64), color: Rgb, width: f64);
    fn dot(&mut self, centre: (f64, f64), radius: f64, color: Rgb);
    fn rect(&mut self, top_left: (f64, f64), size: (f64, f64), color: Rgb);
    fn text(&mut self, at: (f64, f64), s: &str, anchor: Anchor, color: Rgb);

    fn polyline(&mut self, points: &[(f64, f64)], color: Rgb, width: f64) {
        points
            .windows(2)
            .for_each(|w| self.line(w[0], w[1], color, width));
    }
}

/// An RGB raster with anti-aliased shapes.
pub struct Raster {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

static FONT: &[u8] = include_bytes!("font_7x13.bin");
const GLYPH_W: usize = 7;
const GLYPH_H: usize = 13;

impl Raster {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            pixels: vec![255; width * height * 3],
        }
    }

    /// Blend `color` into pixel (x, y) with coverage `alpha` in [0, 1].
    fn blend(&mut self, x: i64, y: i64, color: Rgb, alpha: f64) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height || alpha <= 0.0 {
            return;
        }
        let a = alpha.min(1.0);
        let i = (y as usize * self.width + x as usize) * 3;
        for (p, &c) in self.pixels[i..i + 3].iter_mut().zip(&color) {
            *p = (*p as f64 * (1.0 - a) + c as f64 * a).round() as u8;
        }
    }

    /// Cover every pixel whose centre is within the shape, with one pixel of soft edge:
    /// `distance(px, py)` is the distance from the shape's boundary (negative inside).
    fn fill_by_distance(
        &mut self,
        bounds: (f64, f64, f64, f64),
        color: Rgb,
        distance: impl Fn(f64, f64) -> f64,
    ) {
        let (x0, y0, x1, y1) = bounds;
        let (x0, y0) = ((x0 - 1.0).floor() as i64, (y0 - 1.0).floor() as i64);
        let (x1, y1) = ((x1 + 1.0).ceil() as i64, (y1 + 1.0).ceil() as i64);
        for y in y0.max(0)..=y1.min(self.height as i64 - 1) {
            for x in x0.max(0)..=x1.min(self.width as i64 - 1) {
                let d = distance(x as f64 + 0.5, y as f64 + 0.5);
                self.blend(x, y, color, 0.5 - d);
            }
        }
    }

    pub fn to_png(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc
                .write_header()
                .map_err(|e| Error::other(format!("PNG encoding: {e}")))?;
            w.write_image_data(&self.pixels)
                .map_err(|e| Error::other(format!("PNG encoding: {e}")))?;
        }
        Ok(out)
    }
}

impl Surface for Raster {
    fn line(&mut self, a: (f64, f64), b: (f64, f64), color: Rgb, width: f64) {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = dx * dx + dy * dy;
        let half = width / 2.0;
        let bounds = (
            a.0.min(b.0) - half,
            a.1.min(b.1) - half,
            a.0.max(b.0) + half,
            a.1.max(b.1) + half,
        );
        self.fill_by_distance(bounds, color, |x, y| {
            let t = if len2 > 0.0 {
                (((x - a.0) * dx + (y - a.1) * dy) / len2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let (px, py) = (a.0 + t * dx - x, a.1 + t * dy - y);
            (px * px + py * py).sqrt() - half
        });
    }

    fn dot(&mut self, c: (f64, f64), r: f64, color: Rgb) {
        let bounds = (c.0 - r, c.1 - r, c.0 + r, c.1 + r);
        self.fill_by_distance(bounds, color, |x, y| {
            ((x - c.0).powi(2) + (y - c.1).powi(2)).sqrt() - r
        });
    }

    fn rect(&mut self, (x, y): (f64, f64), (w, h): (f64, f64), color: Rgb) {
        for py in (y.round() as i64)..((y + h).round() as i64) {
            for px in (x.round() as i64)..((x + w).round() as i64) {
                self.blend(px, py, color, 1.0);
            }
        }
    }

    fn text(&mut self, (x, y): (f64, f64), s: &str, anchor: Anchor, color: Rgb) {
        let width = s.chars().count() as f64 * CHAR_WIDTH;
        let left = match anchor {
            Anchor::Start => x,
            Anchor::Middle => x - width / 2.0,
            Anchor::End => x - width,
        }
        .round() as i64;
        // The glyphs' ink spans rows 3..12 of the cell: centre that on y.
        let top = (y - 7.5).round() as i64;
        for (k, ch) in s.chars().enumerate() {
            let code = ch as usize;
            let glyph = if (32..127).contains(&code) {
                code - 32
            } else {
                '?' as usize - 32
            };
            let cell = &FONT[glyph * GLYPH_W * GLYPH_H..(glyph + 1) * GLYPH_W * GLYPH_H];
            for gy in 0..GLYPH_H {
                for gx in 0..GLYPH_W {
                    let a = cell[gy * GLYPH_W + gx] as f64 / 255.0;
                    self.blend(left + (k * GLYPH_W + gx) as i64, top + gy as i64, color, a);
                }
            }
        }
    }
}

/// An SVG document being written.
pub struct Svg {
    pub width: usize,
    pub height: usize,
    body: String,
}

fn hex(c: Rgb) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Svg {
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            body: String::new(),
        }
    }

    pub fn finish(self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\">\n<rect width=\"{w}\" height=\"{h}\" fill=\"#ffffff\"/>\n{}</svg>\n",
            self.body,
            w = self.width,
            h = self.height
        )
    }
}

impl Surface for Svg {
    fn line(&mut self, a: (f64, f64), b: (f64, f64), color: Rgb, width: f64) {
        let _ = writeln!(
            self.body,
            "<line x1=\"{:.2}\" y1=\"{:.2}\" x2=\"{:.2}\" y2=\"{:.2}\" stroke=\"{}\" stroke-width=\"{width}\" stroke-linecap=\"round\"/>",
            a.0,
            a.1,
            b.0,
            b.1,
            hex(color)
        );
    }

    fn polyline(&mut self, points: &[(f64, f64)], color: Rgb, width: f64) {
        let pts: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.2},{y:.2}"))
            .collect();
        let _ = writeln!(
            self.body,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\" stroke-linejoin=\"round\"/>",
            pts.join(" "),
            hex(color)
        );
    }

    fn dot(&mut self, c: (f64, f64), r: f64, color: Rgb) {
        let _ = writeln!(
            self.body,
            "<circle cx=\"{:.2}\" cy=\"{:.2}\" r=\"{r}\" fill=\"{}\"/>",
            c.0,
            c.1,
            hex(color)
        );
    }

    fn rect(&mut self, (x, y): (f64, f64), (w, h): (f64, f64), color: Rgb) {
        let _ = writeln!(
            self.body,
            "<rect x=\"{x:.2}\" y=\"{y:.2}\" width=\"{w:.2}\" height=\"{h:.2}\" fill=\"{}\"/>",
            hex(color)
        );
    }

    fn text(&mut self, (x, y): (f64, f64), s: &str, anchor: Anchor, color: Rgb) {
        let a = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let _ = writeln!(
            self.body,
            "<text x=\"{x:.2}\" y=\"{y:.2}\" font-family=\"DejaVu Sans Mono, monospace\" font-size=\"11.5\" text-anchor=\"{a}\" dominant-baseline=\"central\" fill=\"{}\">{}</text>",
            hex(color),
            escape(s)
        );
    }
}

/// Draw a `width x height` picture twice and write `stem.png` and `stem.svg` (each through a
/// temporary file). Returns the two paths.
pub fn save(
    stem: &Path,
    width: usize,
    height: usize,
    draw: impl Fn(&mut dyn Surface),
) -> Result<(PathBuf, PathBuf)> {
    let mut raster = Raster::new(width, height);
    draw(&mut raster);
    let mut svg = Svg::new(width, height);
    draw(&mut svg);
    let png_path = stem.with_extension("png");
    let svg_path = stem.with_extension("svg");
    write_atomic(&png_path, &raster.to_png()?)?;
    write_atomic(&svg_path, svg.finish().as_bytes())?;
    Ok((png_path, svg_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pixel(r: &Raster, x: usize, y: usize) -> Rgb {
        let i = (y * r.width + x) * 3;
        [r.pixels[i], r.pixels[i + 1], r.pixels[i + 2]]
    }

    #[test]
    fn raster_draws_where_asked_and_nowhere_else() {
        let mut r = Raster::new(40, 30);
        r.line((5.0, 10.5), (35.0, 10.5), [255, 0, 0], 2.0);
        r.dot((20.0, 22.0), 3.0, [0, 0, 255]);
        assert_eq!(pixel(&r, 20, 10), [255, 0, 0]);
        assert_eq!(pixel(&r, 20, 22), [0, 0, 255]);
        assert_eq!(pixel(&r, 20, 2), WHITE);
        assert_eq!(pixel(&r, 2, 22), WHITE);
        // A soft edge: partly covered pixels sit between the colours.
        let edge = pixel(&r, 20, 11);
        assert!(edge[1] > 0 && edge[1] < 255, "{edge:?}");
        let png = r.to_png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn text_is_inked_from_the_font() {
        let mut r = Raster::new(60, 20);
        r.text((30.0, 10.0), "Ab1", Anchor::Middle, BLACK);
        let inked = r.pixels.iter().filter(|&&v| v < 128).count();
        assert!(inked > 20, "{inked}");
        // Centred: nothing left of the three characters' box.
        let left = (30.0 - 1.5 * CHAR_WIDTH) as usize - 1;
        for y in 0..20 {
            for x in 0..left {
                assert_eq!(pixel(&r, x, y), WHITE);
            }
        }
    }

    #[test]
    fn svg_holds_the_same_shapes_escaped() {
        let mut s = Svg::new(10, 10);
        s.line((0.0, 0.0), (5.0, 5.0), PALETTE[0], 1.0);
        s.text((1.0, 1.0), "a<b & c", Anchor::Start, BLACK);
        let doc = s.finish();
        assert!(doc.starts_with("<svg") && doc.contains("#1f77b4"));
        assert!(doc.contains(">a&lt;b &amp; c</text>"));
    }
}
