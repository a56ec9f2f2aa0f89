//! Export of embeddings: NumPy `.npy` files (float32 matrices, int64 labels) that any tool
//! reads.

use crate::checkpoint::write_atomic;
use crate::error::Result;
use std::path::Path;

fn npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let shape_txt = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_txt}, }}");
    // Magic (6) + version (2) + length (2) + header + newline, padded to a multiple of 64.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out
}

/// Write a row-major `f32` matrix of `rows x cols` as `.npy`.
pub fn write_npy_f32(path: &Path, data: &[f32], rows: usize, cols: usize) -> Result<()> {
    assert_eq!(data.len(), rows * cols);
    let mut out = npy_header("<f4", &[rows, cols]);
    data.iter()
        .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
    write_atomic(path, &out)
}

/// Write a vector of labels as `.npy` (int64).
pub fn write_npy_labels(path: &Path, labels: &[u32]) -> Result<()> {
    let mut out = npy_header("<i8", &[labels.len()]);
    labels
        .iter()
        .for_each(|&v| out.extend_from_slice(&(v as i64).to_le_bytes()));
    write_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_layout_is_valid() {
        let dir = std::env::temp_dir().join(format!("contra-npy-{}", std::process::id()));
        let p = dir.join("x.npy");
        write_npy_f32(&p, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3).unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (2, 3)") && header.contains("<f4"));
        assert_eq!(b.len(), 10 + hlen + 24);
        assert_eq!(
            f32::from_le_bytes(b[10 + hlen + 20..].try_into().unwrap()),
            6.0
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
