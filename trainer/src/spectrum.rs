//! How far the power spectra of generated images lie from those of real ones: the measurement
//! behind the residual discriminator's spectrum feature (`--spectrum-feature`, docs/MODELS.md).
//!
//! Each image's grey levels are transformed, their log power averaged over a 16x16 grid of
//! cells of frequencies and centred on the image's own mean ([`log_spectrum`], the same
//! function the discriminator uses); a set of images is summarised by the mean over its images
//! of each cell. Two sets are compared cell by cell: the *gap* is the mean absolute difference
//! in nats (0.1 is about 10% more or less power), and the cell furthest apart is named with
//! its power ratio. A generator that paints a texture of a period or direction real cats lack
//! shows a large ratio at that texture's frequencies, however its cats are laid out.

use anyhow::{Result, anyhow};
use burn::prelude::*;
use catgan_model::blocks::log_spectrum;
use serde::{Deserialize, Serialize};

use crate::swd::{CHANNELS, Images};

/// Cells a side of the grid the spectrum is averaged over.
pub const CELLS: usize = 16;

/// Images transformed together.
const BATCH: usize = 256;

/// The mean pooled, centred log power spectrum of a set of images: `CELLS * CELLS` values,
/// vertical frequency major, frequencies in the transform's order (0 up to half the side, then
/// the negative ones). Computed on the CPU backend, where the images already are: a few
/// matrix products per batch.
pub fn mean_log_spectrum(images: &Images) -> Result<Vec<f64>> {
    let device = &Device::flex();
    anyhow::ensure!(images.count > 0, "no images to take the spectrum of");
    anyhow::ensure!(
        images.side.is_multiple_of(CELLS),
        "a {}x{} image cannot be divided into {CELLS}x{CELLS} cells of frequencies",
        images.side,
        images.side
    );
    let pool = images.side / CELLS;
    let image_len = CHANNELS * images.side * images.side;
    let mut sum = vec![0.0f64; CELLS * CELLS];
    for chunk in images.pixels.chunks(BATCH * image_len) {
        let count = chunk.len() / image_len;
        let shape = [count, CHANNELS, images.side, images.side];
        let batch = Tensor::<4>::from_data(TensorData::new(chunk.to_vec(), shape), device);
        let values = log_spectrum(batch, pool)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow!("cannot read the spectra: {e:?}"))?;
        for image in values.chunks_exact(CELLS * CELLS) {
            sum.iter_mut()
                .zip(image)
                .for_each(|(s, &v)| *s += f64::from(v));
        }
    }
    Ok(sum.iter().map(|s| s / images.count as f64).collect())
}

/// How one set's mean spectrum differs from a reference set's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectrumGap {
    /// Mean over cells of the absolute difference of mean log power, in nats.
    pub mean: f64,
    /// Frequencies (cycles per image side) of the cell furthest apart: the first of its
    /// vertical and of its horizontal ones, negative for frequencies past half the side. The
    /// cell spans as many frequencies as the side has per cell.
    pub worst_cell: [i64; 2],
    /// Power in that cell over the reference's (below 1 where the set has too little).
    pub worst_ratio: f64,
}

/// Compares `set` with `reference`, both from [`mean_log_spectrum`] of images of side `side`.
pub fn gap(set: &[f64], reference: &[f64], side: usize) -> SpectrumGap {
    assert_eq!(set.len(), reference.len(), "spectra of different sizes");
    let differences: Vec<f64> = set.iter().zip(reference).map(|(s, r)| s - r).collect();
    let (worst, difference) = differences
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .unwrap_or((0, 0.0));
    let pool = side / CELLS;
    let frequency = |cell: usize| {
        let first = (cell * pool) as i64;
        if first >= side as i64 / 2 {
            first - side as i64
        } else {
            first
        }
    };
    SpectrumGap {
        mean: differences.iter().map(|d| d.abs()).sum::<f64>() / differences.len().max(1) as f64,
        worst_cell: [frequency(worst / CELLS), frequency(worst % CELLS)],
        worst_ratio: difference.exp(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catgan_model::rng::SplitMix64;

    /// `count` images of uniform noise, plus, where `period` is given, vertical stripes of that
    /// period (in pixels) in every image.
    fn images(count: usize, seed: u64, period: Option<usize>) -> Images {
        let side = 32;
        let mut rng = SplitMix64::new(seed);
        let pixels = (0..count * CHANNELS * side * side)
            .map(|i| {
                let noise = (rng.next_u64() % 1000) as f32 / 1000.0 - 0.5;
                let stripe =
                    period.map_or(0.0, |p| if (i % side) % p < p / 2 { 0.5 } else { -0.5 });
                noise + stripe
            })
            .collect();
        Images::new(count, side, pixels).unwrap()
    }

    #[test]
    fn the_gap_finds_a_texture_real_images_lack_by_its_frequency() {
        let real = mean_log_spectrum(&images(40, 1, None)).unwrap();
        let other = mean_log_spectrum(&images(40, 2, None)).unwrap();
        // Stripes 4 pixels wide in a 32-pixel image: 8 cycles across, none down.
        let striped = mean_log_spectrum(&images(40, 3, Some(4))).unwrap();
        assert_eq!(gap(&real, &real, 32).mean, 0.0);
        let floor = gap(&other, &real, 32);
        let found = gap(&striped, &real, 32);
        // Two sets of 40 noise images differ by sampling alone: no cell by as much as 2x.
        assert!(floor.mean < 0.15, "two noise sets differ by {}", floor.mean);
        assert!((0.5..2.0).contains(&floor.worst_ratio), "{floor:?}");
        assert!(found.mean > floor.mean, "{found:?} against {floor:?}");
        // The grid's cells are 2 frequencies wide here; the stripes' power is at +8 and -8.
        assert!(
            found.worst_cell == [0, 8] || found.worst_cell == [0, -8],
            "{found:?}"
        );
        assert!(found.worst_ratio > 10.0, "{found:?}");
        // Too little power shows as a ratio below one.
        assert!(gap(&real, &striped, 32).worst_ratio < 0.1);
    }

    #[test]
    fn sides_the_grid_does_not_divide_are_refused() {
        let images = Images::new(1, 24, vec![0.0; CHANNELS * 24 * 24]).unwrap();
        let error = mean_log_spectrum(&images).unwrap_err();
        assert!(error.to_string().contains("24x24"), "{error}");
    }
}
