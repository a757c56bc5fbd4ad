//! A small, fully specified pseudo-random generator.
//!
//! catgan needs randomness that is identical on every platform and across releases: the latent
//! for a seed must be the same natively and in the browser, and a resumed training run must draw
//! the same batches as an uninterrupted one. General-purpose RNG crates do not promise either, so
//! the algorithm is written down here: SplitMix64 for bits, Box-Muller (with `libm`, which gives
//! the same results on every target) for normal deviates.

/// SplitMix64 (Steele, Lea and Flood, 2014). Its whole state is one `u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for one independent purpose (a training step, a data epoch) of a run.
    ///
    /// The parts are mixed through the generator itself, so nearby inputs give unrelated streams.
    pub fn derived(seed: u64, stream: u64, index: u64) -> Self {
        let mut mix = Self::new(seed ^ 0x6361_7467_616e_0000);
        let a = mix.next_u64() ^ stream.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let mut mix = Self::new(a);
        let b = mix.next_u64() ^ index.wrapping_mul(0xA076_1D64_78BD_642F);
        Self::new(Self::new(b).next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform deviate in `[0, 1)` with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A uniform integer in `0..n` (`n > 0`), without modulo bias.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no valid result");
        let zone = u64::MAX - u64::MAX % n;
        loop {
            let x = self.next_u64();
            if x < zone {
                return x % n;
            }
        }
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// Two independent standard normal deviates (Box-Muller).
    pub fn normal_pair(&mut self) -> (f64, f64) {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        let radius = libm::sqrt(-2.0 * libm::log(u1));
        let angle = 2.0 * core::f64::consts::PI * u2;
        (radius * libm::cos(angle), radius * libm::sin(angle))
    }

    /// Fills `out` with standard normal deviates rounded to `f32`.
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        for pair in out.chunks_mut(2) {
            let (a, b) = self.normal_pair();
            pair[0] = a as f32;
            if let Some(second) = pair.get_mut(1) {
                *second = b as f32;
            }
        }
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_the_reference_sequence() {
        // First outputs of the reference C implementation seeded with 1234567.
        let mut rng = SplitMix64::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
        assert_eq!(rng.next_u64(), 9817491932198370423);
    }

    #[test]
    fn normal_deviates_have_unit_moments() {
        let mut rng = SplitMix64::new(7);
        let mut values = vec![0f32; 200_000];
        rng.fill_normal(&mut values);
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
    }

    #[test]
    fn derived_streams_differ_and_repeat() {
        let a = SplitMix64::derived(1, 2, 3).next_u64();
        assert_eq!(a, SplitMix64::derived(1, 2, 3).next_u64());
        assert_ne!(a, SplitMix64::derived(1, 2, 4).next_u64());
        assert_ne!(a, SplitMix64::derived(1, 3, 3).next_u64());
        assert_ne!(a, SplitMix64::derived(2, 2, 3).next_u64());
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut items: Vec<u32> = (0..1000).collect();
        SplitMix64::new(3).shuffle(&mut items);
        assert_ne!(items, (0..1000).collect::<Vec<_>>());
        items.sort();
        assert_eq!(items, (0..1000).collect::<Vec<_>>());
    }
}
