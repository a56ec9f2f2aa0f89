//! The 8x8 digits set (UCI optdigits test set, as shipped by scikit-learn; CC BY 4.0), bundled
//! inside the crate so that contra's default job needs no download. See
//! `data/DIGITS-ATTRIBUTION.md`.

use super::{ImageDataset, Splits};
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// Parse digits CSV text: 64 pixel values in 0..=16 then the label, per line.
/// Pixels are scaled to 0..=255 (v * 255 / 16, rounded).
pub fn parse_csv(path: &Path, text: &str) -> Result<ImageDataset> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (lineno, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != 65 {
            return Err(Error::format(
                path,
                format!(
                    "line {}: {} fields, expected 65 (64 pixels and a label)",
                    lineno + 1,
                    fields.len()
                ),
            ));
        }
        for (col, f) in fields.iter().enumerate() {
            let v: u32 = f.trim().parse().map_err(|_| {
                Error::format(
                    path,
                    format!(
                        "line {}, field {}: `{f}` is not an integer",
                        lineno + 1,
                        col + 1
                    ),
                )
            })?;
            if col < 64 {
                if v > 16 {
                    return Err(Error::format(
                        path,
                        format!(
                            "line {}, field {}: pixel {v} is above 16",
                            lineno + 1,
                            col + 1
                        ),
                    ));
                }
                pixels.push(((v * 255 + 8) / 16) as u8);
            } else {
                labels.push(v);
            }
        }
    }
    let mut set = ImageDataset::new(pixels, 1, 8, 8, Some(labels))?;
    set.class_names = (0..10).map(|d| d.to_string()).collect();
    Ok(set)
}

/// All 1,797 bundled images with labels.
pub fn load() -> ImageDataset {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .expect("the bundled digits file is valid gzip");
    parse_csv(Path::new("<bundled digits.csv.gz>"), &text)
        .expect("the bundled digits file is valid")
}

/// A fixed split: every fifth image (index % 5 == 0) is a test image, the rest train.
pub fn splits() -> Splits {
    let all = load();
    let (test, train): (Vec<usize>, Vec<usize>) = (0..all.len).partition(|i| i % 5 == 0);
    Splits::new(all.subset(&train), all.subset(&test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_digits_are_complete() {
        let d = load();
        assert_eq!((d.len, d.channels, d.height, d.width), (1797, 1, 8, 8));
        let labels = d.labels.as_ref().unwrap();
        assert_eq!(labels[..3], [0, 1, 2]);
        let mut counts = [0; 10];
        labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts.iter().sum::<usize>(), 1797);
        assert!(counts.iter().all(|&c| (174..=183).contains(&c)));
        // First image, first row: 0,0,5,13,9,1,0,0 scaled by 255/16.
        assert_eq!(d.image(0)[..8], [0, 0, 80, 207, 143, 16, 0, 0]);
        let s = splits();
        assert_eq!((s.train.len, s.test.len), (1437, 360));
    }

    #[test]
    fn bad_csv_names_line_and_field() {
        let p = Path::new("x.csv");
        let e = parse_csv(p, "1,2,3\n").unwrap_err().to_string();
        assert!(
            e.contains("x.csv") && e.contains("line 1") && e.contains("65"),
            "{e}"
        );
        let mut row = vec!["0"; 64];
        row.push("3");
        row[5] = "abc";
        let e = parse_csv(p, &row.join(",")).unwrap_err().to_string();
        assert!(e.contains("field 6") && e.contains("abc"), "{e}");
    }
}
