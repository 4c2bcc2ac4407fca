//! Counter-based random numbers: every draw is a pure function of (domain, keys, counter), so
//! the sample order, mixup and augmentation of any training step can be recomputed after a
//! resume, the synthetic datasets are the same on every machine, and nothing depends on thread
//! count or on how many draws happened before.
//!
//! It lives here because it is the one crate that both `prep` (synthetic data) and `train`
//! (sample order, augmentation, initialisation) depend on, and it needs no dependency.

/// SplitMix64 finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable 64-bit key of a name (FNV-1a), so that a [`KeyedRng`] stream can be keyed by a
/// variable's or a fold's name.
pub fn name_key(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A SplitMix64 stream seeded from a tuple of integers (e.g. seed, fold, epoch, step, purpose).
#[derive(Debug, Clone)]
pub struct KeyedRng {
    state: u64,
}

impl KeyedRng {
    /// The domain of [`KeyedRng::new`]: training (sample order, mixup, augmentation, init).
    pub const TRAIN: u64 = 0x005e_ed0f_f00d;
    /// The domain of the synthetic dataset generator (`prep synth`).
    pub const SYNTH: u64 = 0x0005_7e70_5eed;

    /// A generator of the [`KeyedRng::TRAIN`] domain for the stream named by `keys`.
    pub fn new(keys: &[u64]) -> KeyedRng {
        Self::in_domain(Self::TRAIN, keys)
    }

    /// A generator for the stream named by `keys` within `domain`: the same keys in different
    /// domains give unrelated streams.
    pub fn in_domain(domain: u64, keys: &[u64]) -> KeyedRng {
        let mut s = domain;
        for &k in keys {
            s = mix(s ^ mix(k));
        }
        KeyedRng { state: s }
    }

    /// The current state, without advancing: a key for a stream derived from this one.
    pub fn state(&self) -> u64 {
        self.state
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [a, b).
    pub fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.uniform()
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Gamma(shape, 1) (Marsaglia–Tsang; shape < 1 by the boost u^(1/shape)).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform().max(1e-300);
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Beta(a, a), the mixup coefficient.
    pub fn beta_symmetric(&mut self, a: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(a);
        if x + y == 0.0 {
            0.5
        } else {
            x / (x + y)
        }
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map(|_| KeyedRng::new(&[1, 2, 3]).next_u64())
            .collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            KeyedRng::new(&[1, 2, 3]).next_u64(),
            KeyedRng::new(&[1, 2, 4]).next_u64()
        );
        let mut v: Vec<u32> = (0..100).collect();
        KeyedRng::new(&[7]).shuffle(&mut v);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_ne!(v, s);
    }

    #[test]
    fn distributions_have_the_right_means() {
        let mut r = KeyedRng::new(&[42]);
        let n = 20000;
        let u: f64 = (0..n).map(|_| r.uniform()).sum::<f64>() / n as f64;
        assert!((u - 0.5).abs() < 0.01, "{u}");
        let g: f64 = (0..n).map(|_| r.gamma(2.5)).sum::<f64>() / n as f64;
        assert!((g - 2.5).abs() < 0.08, "{g}");
        let b: f64 = (0..n).map(|_| r.beta_symmetric(0.4)).sum::<f64>() / n as f64;
        assert!((b - 0.5).abs() < 0.02, "{b}");
        assert!((0..1000).all(|_| r.below(7) < 7));
    }
}

#[cfg(test)]
mod known_answers {
    use super::KeyedRng;

    /// The streams that caches, synthetic datasets and training orders were made with: a change
    /// here changes every synthetic dataset and every run's sample order.
    #[test]
    fn streams_keep_their_values() {
        let mut train = KeyedRng::new(&[1, 2, 3]);
        let mut synth = KeyedRng::in_domain(KeyedRng::SYNTH, &[1, 2, 3]);
        let (t, s) = (train.next_u64(), synth.next_u64());
        assert_ne!(t, s);
        assert_eq!(
            (t, s),
            (0xc533111aa6b580e9, 0xc5f4ff59337c9770),
            "{t:#x} {s:#x}"
        );
    }
}
