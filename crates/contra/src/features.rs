//! Features: one row of numbers per item, the currency between encoders and every
//! evaluation, export and search.

/// Row-major feature matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    pub data: Vec<f32>,
    pub rows: usize,
    pub dim: usize,
}

impl Features {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    pub fn select(&self, idx: &[usize]) -> Features {
        let mut data = Vec::with_capacity(idx.len() * self.dim);
        idx.iter()
            .for_each(|&i| data.extend_from_slice(self.row(i)));
        Features {
            data,
            rows: idx.len(),
            dim: self.dim,
        }
    }
}
