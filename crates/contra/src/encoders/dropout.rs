//! Dropout whose masks come from the rows' identities ([`RowKeys`]) rather than from a
//! process-wide generator: a run resumed from a checkpoint draws exactly the masks the
//! uninterrupted run would have, and a forward pass can be replayed with the same masks.

use crate::rng::RowKeys;
use burn::prelude::*;
use burn::tensor::TensorData;

/// Zeroes each value with probability `prob` and scales the others by `1 / (1 - prob)` when
/// the batch's row keys are given (training: methods pass them, evaluation does not); the
/// identity otherwise. The keys, not the device, say whether it is training, so that a pass
/// without a graph (GradCache's first) draws the masks of the pass with one.
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

    /// Like [`forward`](Self::forward), with one stream of random draws for each index of the
    /// dimensions `1..=streams` of a row (a token position; a head and query position), each
    /// drawn along the remaining dimensions in order. A stream's first values do not depend on
    /// how long the last dimension is, so a sequence padded to another length keeps the masks
    /// of its real tokens: GradCache's mini-batches, padded to their own longest, replay the
    /// masks of the whole batch.
    pub fn forward_streams<const D: usize>(
        &self,
        x: Tensor<D>,
        keys: Option<&RowKeys>,
        streams: usize,
    ) -> Tensor<D> {
        let Some(keys) = keys else {
            return x;
        };
        if self.prob == 0.0 {
            return x;
        }
        let dims = x.dims();
        assert!(streams < D, "streams index dimensions 1..D");
        assert!(
            dims[1..=streams].iter().all(|&n| n < 1 << 20),
            "a stream dimension of 2^20 or more"
        );
        let rows = dims[0];
        assert_eq!(rows, keys.rows.len(), "one row key per batch row");
        let per_row = dims[1..].iter().product::<usize>();
        let per_stream = dims[1 + streams..].iter().product::<usize>();
        let keep = 1.0 - self.prob;
        let scale = (1.0 / keep) as f32;
        let mut mask = Vec::with_capacity(rows * per_row);
        let stream_dims = &dims[1..=streams];
        for r in 0..rows {
            for stream in 0..per_row / per_stream.max(1) {
                // The stream's key is its index in each dimension (2^20 apart), not its place
                // in the row, which would change with the lengths.
                let (mut rest, mut key) = (stream, 0u64);
                for (d, &n) in stream_dims.iter().enumerate().rev() {
                    key |= ((rest % n) as u64) << (20 * (streams - 1 - d));
                    rest /= n;
                }
                let mut rng = match streams {
                    0 => keys.rng(r, self.layer),
                    _ => keys.rng_stream(r, self.layer, key),
                };
                mask.extend((0..per_stream).map(|_| if rng.bernoulli(keep) { scale } else { 0.0 }));
            }
        }
        let mask = Tensor::<D>::from_data(TensorData::new(mask, dims), &x.device());
        x * mask
    }

    /// `x` with its first dimension the batch rows that `keys` name: one stream of draws a
    /// row.
    pub fn forward<const D: usize>(&self, x: Tensor<D>, keys: Option<&RowKeys>) -> Tensor<D> {
        self.forward_streams(x, keys, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor_util::to_vec;

    /// With streams, a sequence padded to another length keeps its real positions' masks:
    /// per position along the hidden units, per head and query along the keys.
    #[test]
    fn padded_sequences_keep_their_masks() {
        let device = crate::device::parse("cpu").unwrap();
        let d = KeyedDropout::new(0.5, 3);
        let keys = RowKeys::view(1, 0, &[4, 9], 0);
        let hidden = |len: usize| {
            to_vec(d.forward_streams(Tensor::<3>::ones([2, len, 4], &device), Some(&keys), 1))
        };
        let (short, long) = (hidden(5), hidden(8));
        for r in 0..2 {
            assert_eq!(short[r * 20..r * 20 + 20], long[r * 32..r * 32 + 20]);
        }
        let probs = |len: usize| {
            to_vec(d.forward_streams(Tensor::<4>::ones([2, 2, len, len], &device), Some(&keys), 2))
        };
        let (short, long) = (probs(3), probs(5));
        for r in 0..2 {
            for h in 0..2 {
                for q in 0..3 {
                    let at = |len: usize| ((r * 2 + h) * len + q) * len;
                    assert_eq!(short[at(3)..at(3) + 3], long[at(5)..at(5) + 3]);
                }
            }
        }
        assert!(short.contains(&0.0) && short.contains(&2.0));
    }

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
        // No keys: the identity. The same masks without autodiff.
        assert!(to_vec(d.forward(x(&ad), None)).iter().all(|&v| v == 1.0));
        assert_eq!(to_vec(d.forward(x(&device), Some(&keys))), a);
    }
}
