//! Dropout whose masks come from the rows' identities ([`RowKeys`]) rather than from a
//! process-wide generator: a run resumed from a checkpoint draws exactly the masks the
//! uninterrupted run would have, and a forward pass can be replayed with the same masks.

use crate::rng::RowKeys;
use burn::prelude::*;
use burn::tensor::TensorData;

/// Zeroes each value with probability `prob` and scales the others by `1 / (1 - prob)`, while
/// training (on an autodiff device, with the batch's row keys); the identity otherwise.
#[derive(Module, Debug)]
pub struct KeyedDropout {
    pub prob: f64,
    /// Tells apart several dropout layers of one network.
    pub layer: u64,
}

impl KeyedDropout {
    pub fn new(prob: f64, layer: u64) -> Self {
        assert!(
            prob.is_finite() && (0.0..1.0).contains(&prob),
            "dropout probability {prob} is not in [0, 1)"
        );
        Self { prob, layer }
    }

    /// `x` with its first dimension the batch rows that `keys` name.
    pub fn forward<const D: usize>(&self, x: Tensor<D>, keys: Option<&RowKeys>) -> Tensor<D> {
        let Some(keys) = keys else {
            return x;
        };
        if self.prob == 0.0 || !x.device().is_autodiff() {
            return x;
        }
        let dims = x.dims();
        let rows = dims[0];
        assert_eq!(rows, keys.rows.len(), "one row key per batch row");
        let per_row = dims[1..].iter().product::<usize>();
        let keep = 1.0 - self.prob;
        let scale = (1.0 / keep) as f32;
        let mut mask = Vec::with_capacity(rows * per_row);
        for r in 0..rows {
            let mut rng = keys.rng(r, self.layer);
            mask.extend((0..per_row).map(|_| if rng.bernoulli(keep) { scale } else { 0.0 }));
        }
        let mask = Tensor::<D>::from_data(TensorData::new(mask, dims), &x.device());
        x * mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;

    /// A row's mask follows its key, not its place in the batch; inference is the identity.
    #[test]
    fn masks_follow_the_rows_keys() {
        let device = crate::device::parse("cpu").unwrap();
        let ad = device.clone().autodiff();
        let d = KeyedDropout::new(0.5, 0);
        let x = |dev: &Device| Tensor::<2>::ones([3, 64], dev);
        let keys = RowKeys::view(7, 2, &[10, 11, 12], 0);
        let a = to_vec(d.forward(x(&ad), Some(&keys)));
        assert_eq!(a, to_vec(d.forward(x(&ad), Some(&keys))));
        // Values are 0 or 2, about half each.
        assert!(a.iter().all(|&v| v == 0.0 || v == 2.0));
        let zeros = a.iter().filter(|&&v| v == 0.0).count();
        assert!((60..132).contains(&zeros), "{zeros} of 192 dropped");
        // The same items in another order carry their masks with them.
        let swapped = RowKeys::view(7, 2, &[12, 10, 11], 0);
        let b = to_vec(d.forward(x(&ad), Some(&swapped)));
        assert_eq!(&b[..64], &a[128..]);
        assert_eq!(&b[64..], &a[..128]);
        // Another view, epoch or network draws another mask.
        for other in [
            RowKeys::view(7, 2, &[10, 11, 12], 1),
            RowKeys::view(7, 3, &[10, 11, 12], 0),
            keys.network(1),
        ] {
            assert_ne!(a, to_vec(d.forward(x(&ad), Some(&other))));
        }
        // No keys, or no autodiff: the identity.
        assert!(to_vec(d.forward(x(&ad), None)).iter().all(|&v| v == 1.0));
        assert!(
            to_vec(d.forward(x(&device), Some(&keys)))
                .iter()
                .all(|&v| v == 1.0)
        );
    }
}
