//! IDX files (MNIST, Fashion-MNIST), raw or gzipped.
//!
//! Format: a 4-byte magic `0x00 0x00 type ndims`, then `ndims` big-endian u32 sizes, then the
//! data. contra reads unsigned-byte data (type 0x08): images with 3 dimensions, labels with 1.

use super::ImageDataset;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// Read a whole file, gunzipping it when it starts with the gzip magic.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.len() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::format(path, format!("corrupt or truncated gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// The dimensions and payload of an unsigned-byte IDX file.
pub fn parse_idx(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<u8>)> {
    if bytes.len() < 4 {
        return Err(Error::format(
            path,
            format!("{} bytes is too short for an IDX header", bytes.len()),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(Error::format(
            path,
            "not an IDX file: the magic number must start with two zero bytes",
        ));
    }
    if bytes[2] != 0x08 {
        return Err(Error::format(
            path,
            format!(
                "IDX data type 0x{:02x} is not supported; expected 0x08 (unsigned byte)",
                bytes[2]
            ),
        ));
    }
    let ndims = bytes[3] as usize;
    let header = 4 + 4 * ndims;
    if ndims == 0 || bytes.len() < header {
        return Err(Error::format(
            path,
            format!("truncated IDX header: {ndims} dimensions need {header} bytes"),
        ));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|d| u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().unwrap()) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    let payload = &bytes[header..];
    match expected {
        Some(n) if n == payload.len() => Ok((dims, payload.to_vec())),
        Some(n) => Err(Error::format(
            path,
            format!(
                "dimensions {dims:?} need {n} data bytes, the file has {} (truncated or corrupt)",
                payload.len()
            ),
        )),
        None => Err(Error::format(path, format!("dimensions {dims:?} overflow"))),
    }
}

/// Images from an IDX file of shape `[n, rows, cols]`.
pub fn read_images(path: &Path) -> Result<ImageDataset> {
    let bytes = read_maybe_gzip(path)?;
    let (dims, data) = parse_idx(path, &bytes)?;
    if dims.len() != 3 {
        return Err(Error::format(
            path,
            format!(
                "an image IDX file has 3 dimensions, this one has {}",
                dims.len()
            ),
        ));
    }
    ImageDataset::new(data, 1, dims[1], dims[2], None)
}

/// Labels from an IDX file of shape `[n]`.
pub fn read_labels(path: &Path) -> Result<Vec<u32>> {
    let bytes = read_maybe_gzip(path)?;
    let (dims, data) = parse_idx(path, &bytes)?;
    if dims.len() != 1 {
        return Err(Error::format(
            path,
            format!(
                "a label IDX file has 1 dimension, this one has {}",
                dims.len()
            ),
        ));
    }
    Ok(data.into_iter().map(u32::from).collect())
}

/// An image file and its label file, checked to agree in length.
pub fn read_labelled(images: &Path, labels: &Path) -> Result<ImageDataset> {
    let mut set = read_images(images)?;
    let l = read_labels(labels)?;
    if l.len() != set.len {
        return Err(Error::format(
            labels,
            format!(
                "{} labels, but {} has {} images",
                l.len(),
                images.display(),
                set.len
            ),
        ));
    }
    set.labels = Some(l);
    Ok(set)
}

/// Write an unsigned-byte IDX file (used by tests and tools).
pub fn write_idx(path: &Path, dims: &[usize], data: &[u8]) -> Result<()> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    std::fs::write(path, out).map_err(|e| Error::io(path, e))
}
