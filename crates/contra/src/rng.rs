//! A small, fast, seedable random number generator whose state can be saved.
//!
//! Every random decision in contra (augmentations, shuffles, few-label samples) draws from a
//! [`Rng`] derived from the run seed and the identity of the thing being randomised (epoch,
//! sample index, view), never from a shared stream. That makes a run independent of the number
//! of worker threads and lets a resumed run regenerate exactly the batches it would have seen.

/// xoshiro256** (Blackman and Vigna), seeded through SplitMix64.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rng {
    state: [u64; 4],
}

fn splitmix64(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded from one 64-bit value.
    pub fn new(seed: u64) -> Self {
        let mut x = seed;
        let state = [
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
            splitmix64(&mut x),
        ];
        Self { state }
    }

    /// A generator for one item of a keyed family: the same keys always give the same stream.
    pub fn derive(seed: u64, keys: &[u64]) -> Self {
        let mut x = seed ^ 0x5851_F42D_4C95_7F2D;
        let mut h = splitmix64(&mut x);
        for &k in keys {
            let mut y = h ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            h = splitmix64(&mut y);
        }
        Self::new(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// True with probability `p`.
    pub fn bernoulli(&mut self, p: f64) -> bool {
        p > 0.0 && self.uniform() < p
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }

    /// A random permutation of `0..n`.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        self.shuffle(&mut p);
        p
    }
}

const DROPOUT: u64 = 0x4452_4f50;

/// Which item and view each row of a batch is, for the random masks drawn inside a network
/// (dropout): a row's mask is a function of (seed, epoch, item, view, network, layer) alone.
/// It does not depend on the row's place in the batch, on how a batch is split into chunks, on
/// threads or processes, and a resumed run draws the masks an uninterrupted one would have.
/// (Each item is drawn once an epoch, so epoch and item name the step.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowKeys {
    pub seed: u64,
    pub epoch: u64,
    /// (item, view) of each row.
    pub rows: Vec<(u64, u64)>,
    /// Tells apart networks that see the same rows (a query and a key encoder).
    pub network: u64,
}

impl RowKeys {
    /// View `view` of the items `items`, drawn in `epoch` of a run seeded with `seed`.
    pub fn view(seed: u64, epoch: u64, items: &[usize], view: usize) -> Self {
        Self {
            seed,
            epoch,
            rows: items.iter().map(|&i| (i as u64, view as u64)).collect(),
            network: 0,
        }
    }

    /// The rows of `parts` one after the other (views passed through a network as one batch).
    pub fn cat<'a>(parts: impl IntoIterator<Item = &'a RowKeys>) -> Self {
        let mut parts = parts.into_iter();
        let first = parts.next().expect("at least one part").clone();
        parts.fold(first, |mut all, p| {
            all.rows.extend_from_slice(&p.rows);
            all
        })
    }

    /// The same items as another view.
    pub fn with_view(&self, view: u64) -> Self {
        Self {
            rows: self.rows.iter().map(|&(item, _)| (item, view)).collect(),
            ..self.clone()
        }
    }

    /// Rows `start..start + len` (a chunk of the batch: GradCache's mini-batches).
    pub fn slice(&self, start: usize, len: usize) -> Self {
        Self {
            rows: self.rows[start..start + len].to_vec(),
            ..self.clone()
        }
    }

    /// The same rows in another network.
    pub fn network(&self, network: u64) -> Self {
        Self {
            network,
            ..self.clone()
        }
    }

    /// The generator of stream `stream` of row `row`'s mask in layer `layer` (one stream a
    /// token position, say).
    pub fn rng_stream(&self, row: usize, layer: u64, stream: u64) -> Rng {
        let (item, view) = self.rows[row];
        Rng::derive(
            self.seed,
            &[DROPOUT, self.epoch, item, view, self.network, layer, stream],
        )
    }

    /// The generator of row `row`'s mask in layer `layer`.
    pub fn rng(&self, row: usize, layer: u64) -> Rng {
        let (item, view) = self.rows[row];
        Rng::derive(
            self.seed,
            &[DROPOUT, self.epoch, item, view, self.network, layer],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_keys_separate_streams() {
        let a: Vec<u64> = (0..4).map(|_| Rng::new(7).next_u64()).collect();
        assert!(a.iter().all(|&x| x == a[0]));
        let mut r1 = Rng::derive(1, &[3, 4]);
        let mut r2 = Rng::derive(1, &[3, 4]);
        let mut r3 = Rng::derive(1, &[4, 3]);
        let x1 = r1.next_u64();
        assert_eq!(x1, r2.next_u64());
        assert_ne!(x1, r3.next_u64());
    }

    #[test]
    fn uniform_and_normal_have_the_right_moments() {
        let mut r = Rng::new(42);
        let n = 200_000;
        let (mut s, mut s2, mut m) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let z = r.normal();
            s += z;
            s2 += z * z;
            m += r.uniform();
        }
        assert!((s / n as f64).abs() < 0.01);
        assert!((s2 / n as f64 - 1.0).abs() < 0.02);
        assert!((m / n as f64 - 0.5).abs() < 0.005);
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = Rng::new(3).permutation(1000);
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<_>>());
    }
}
