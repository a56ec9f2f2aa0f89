//! Charts: line panels (training curves) and a labelled scatter (a 2-D map of embeddings).

use super::{Anchor, BLACK, GRAY, PALETTE, Rgb, Surface};

/// One line of a panel.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub color: Rgb,
    /// Mark each point with a dot (for sparse series).
    pub markers: bool,
}

/// One panel: axes with a title and its series.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub series: Vec<Series>,
}

/// About five round tick values (1, 2 or 5 times a power of ten) covering [lo, hi].
pub fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick label: few digits, scientific for very small or large values.
pub fn tick_label(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e5).contains(&a) {
        format!("{v:.0e}")
    } else if a >= 100.0 || (v.fract() == 0.0) {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn bounds(points: impl Iterator<Item = (f64, f64)>) -> Option<(f64, f64, f64, f64)> {
    points
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .fold(None, |b, (x, y)| {
            Some(match b {
                None => (x, x, y, y),
                Some((x0, x1, y0, y1)) => (x0.min(x), x1.max(x), y0.min(y), y1.max(y)),
            })
        })
}

/// Padded data range, never empty.
fn range(lo: f64, hi: f64) -> (f64, f64) {
    if hi - lo < 1e-12 {
        let pad = lo.abs().max(1.0) * 0.05;
        (lo - pad, hi + pad)
    } else {
        let pad = (hi - lo) * 0.04;
        (lo - pad, hi + pad)
    }
}

/// The outline of the box (left, top, width, height).
fn frame(s: &mut dyn Surface, (left, top, w, h): (f64, f64, f64, f64), color: Rgb) {
    let corners = [
        (left, top),
        (left + w, top),
        (left + w, top + h),
        (left, top + h),
        (left, top),
    ];
    s.polyline(&corners, color, 1.0);
}

/// Axes in the box (left, top, width, height): frame, grid, ticks; returns the data-to-pixel
/// map.
fn axes(
    s: &mut dyn Surface,
    area: (f64, f64, f64, f64),
    xr: (f64, f64),
    yr: (f64, f64),
    title: &str,
    x_label: &str,
) -> impl Fn((f64, f64)) -> (f64, f64) + use<> {
    let (left, top, w, h) = area;
    let map = move |(x, y): (f64, f64)| {
        (
            left + (x - xr.0) / (xr.1 - xr.0) * w,
            top + h - (y - yr.0) / (yr.1 - yr.0) * h,
        )
    };
    for t in ticks(xr.0, xr.1) {
        let (px, _) = map((t, yr.0));
        s.line((px, top), (px, top + h), GRAY, 0.6);
        s.text((px, top + h + 12.0), &tick_label(t), Anchor::Middle, BLACK);
    }
    for t in ticks(yr.0, yr.1) {
        let (_, py) = map((xr.0, t));
        s.line((left, py), (left + w, py), GRAY, 0.6);
        s.text((left - 5.0, py), &tick_label(t), Anchor::End, BLACK);
    }
    frame(s, area, BLACK);
    s.text((left + w / 2.0, top - 14.0), title, Anchor::Middle, BLACK);
    s.text(
        (left + w / 2.0, top + h + 30.0),
        x_label,
        Anchor::Middle,
        BLACK,
    );
    map
}

/// Panels side by side on a `width x height` picture, each with its legend.
pub fn draw_panels(s: &mut dyn Surface, panels: &[Panel], width: f64, height: f64) {
    let n = panels.len().max(1) as f64;
    let pw = width / n;
    for (i, p) in panels.iter().enumerate() {
        let area = (i as f64 * pw + 62.0, 34.0, pw - 80.0, height - 80.0);
        let Some((x0, x1, y0, y1)) = bounds(p.series.iter().flat_map(|s| s.points.clone())) else {
            let _ = axes(s, area, (0.0, 1.0), (0.0, 1.0), &p.title, &p.x_label);
            s.text(
                (area.0 + area.2 / 2.0, area.1 + area.3 / 2.0),
                "(no data)",
                Anchor::Middle,
                BLACK,
            );
            continue;
        };
        let map = axes(s, area, range(x0, x1), range(y0, y1), &p.title, &p.x_label);
        for (k, series) in p.series.iter().enumerate() {
            let pts: Vec<(f64, f64)> = series
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&p| map(p))
                .collect();
            s.polyline(&pts, series.color, 1.5);
            if series.markers {
                pts.iter().for_each(|&p| s.dot(p, 2.5, series.color));
            }
            if p.series.len() > 1 {
                let y = area.1 + 12.0 + 16.0 * k as f64;
                let x = area.0 + area.2 - 8.0;
                s.line((x - 16.0, y), (x - 4.0, y), series.color, 2.0);
                s.text((x - 20.0, y), &series.name, Anchor::End, BLACK);
            }
        }
    }
}

/// A scatter of 2-D points coloured by label, with a legend of `names` (or the label numbers).
pub fn draw_scatter(
    s: &mut dyn Surface,
    title: &str,
    points: &[(f64, f64)],
    labels: Option<&[u32]>,
    names: &[String],
    width: f64,
    height: f64,
) {
    let legend_w = 130.0;
    let area = (20.0, 34.0, width - legend_w - 30.0, height - 54.0);
    let (x0, x1, y0, y1) = bounds(points.iter().copied()).unwrap_or((0.0, 1.0, 0.0, 1.0));
    let (xr, yr) = (range(x0, x1), range(y0, y1));
    let (left, top, w, h) = area;
    let map = |(x, y): (f64, f64)| {
        (
            left + (x - xr.0) / (xr.1 - xr.0) * w,
            top + h - (y - yr.0) / (yr.1 - yr.0) * h,
        )
    };
    frame(s, area, GRAY);
    s.text((left + w / 2.0, top - 14.0), title, Anchor::Middle, BLACK);
    let color = |l: u32| PALETTE[l as usize % PALETTE.len()];
    for (i, &p) in points.iter().enumerate() {
        let c = labels.map_or(PALETTE[0], |l| color(l[i]));
        s.dot(map(p), 2.0, c);
    }
    if let Some(l) = labels {
        let classes = l.iter().copied().max().map_or(0, |m| m as usize + 1);
        for c in 0..classes {
            let y = top + 10.0 + 18.0 * c as f64;
            let x = left + w + 20.0;
            s.dot((x, y), 4.0, color(c as u32));
            let name = names.get(c).cloned().unwrap_or_else(|| c.to_string());
            s.text((x + 10.0, y), &name, Anchor::Start, BLACK);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        let t = ticks(0.0, 1.0);
        assert_eq!(t.len(), 6);
        assert!(
            t.iter()
                .enumerate()
                .all(|(i, v)| (v - 0.2 * i as f64).abs() < 1e-12)
        );
        let t = ticks(3.7, 812.0);
        assert_eq!(t, vec![200.0, 400.0, 600.0, 800.0]);
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(400.0), "400");
        assert_eq!(tick_label(2e-5), "2e-5");
    }
}
