//! CIFAR-10 binary batches (`data_batch_{1..5}.bin`, `test_batch.bin`).
//!
//! Each record is one label byte followed by 3,072 pixel bytes: the 1,024 red, then green, then
//! blue values of a 32x32 image, row by row, which is already CHW order.

use super::{ImageDataset, Splits};
use crate::error::{Error, Result};
use std::path::Path;

const RECORD: usize = 1 + 3 * 32 * 32;
pub const CLASS_NAMES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Read one or more batch files into one data set.
pub fn read_batches(paths: &[&Path]) -> Result<ImageDataset> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        if bytes.is_empty() || bytes.len() % RECORD != 0 {
            return Err(Error::format(
                path,
                format!(
                    "{} bytes is not a whole number of CIFAR-10 records of {RECORD} bytes (truncated or not a CIFAR-10 binary batch)",
                    bytes.len()
                ),
            ));
        }
        for (r, rec) in bytes.chunks_exact(RECORD).enumerate() {
            if rec[0] > 9 {
                return Err(Error::format(
                    path,
                    format!("record {r}: label {} is not in 0..=9", rec[0]),
                ));
            }
            labels.push(rec[0] as u32);
            pixels.extend_from_slice(&rec[1..]);
        }
    }
    let mut set = ImageDataset::new(pixels, 3, 32, 32, Some(labels))?;
    set.class_names = CLASS_NAMES.iter().map(|s| s.to_string()).collect();
    Ok(set)
}

/// The standard train (five data batches) and test split from a `cifar-10-batches-bin` folder.
pub fn read_dir(dir: &Path) -> Result<Splits> {
    let train: Vec<_> = (1..=5)
        .map(|i| dir.join(format!("data_batch_{i}.bin")))
        .collect();
    let refs: Vec<&Path> = train.iter().map(|p| p.as_path()).collect();
    Ok(Splits::new(
        read_batches(&refs)?,
        read_batches(&[&dir.join("test_batch.bin")])?,
    ))
}
