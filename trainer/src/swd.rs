//! Sliced Wasserstein distance (SWD) between two sets of images, following appendix D of the
//! Progressive GAN paper (Karras et al. 2018). Every image becomes a Laplacian pyramid down to
//! 16x16; random 7x7 neighbourhoods cut from each level form one descriptor set per level; two
//! sets are compared through many random 1-D projections. Descriptors of a fixed reference set
//! (held-out real cats) are computed once with [`descriptors`] and reused by [`distance`].

use image::RgbImage;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use catgan_model::rng::SplitMix64;

/// Colour channels per image (RGB).
pub const CHANNELS: usize = 3;
/// The coarsest pyramid level; images must be at least this large.
pub const MIN_SIDE: usize = 16;
/// Side of one neighbourhood cut from a pyramid level.
pub const NEIGHBOURHOOD: usize = 7;
/// Neighbourhoods cut from each image at each level.
pub const NEIGHBOURHOODS_PER_IMAGE: usize = 128;
/// Values in one descriptor: every channel of a 7x7 neighbourhood.
pub const DESCRIPTOR_LEN: usize = CHANNELS * NEIGHBOURHOOD * NEIGHBOURHOOD;
/// Independent batches of random directions per level.
pub const DIRECTION_REPEATS: usize = 4;
/// Random directions in each batch.
pub const DIRECTIONS_PER_REPEAT: usize = 128;
/// The paper reports SWD multiplied by this factor.
pub const SCALE: f64 = 1e3;

/// Directions projected together by the kernel; 16 floats fill four SSE or two AVX registers.
const LANES: usize = 16;
/// Directions projected per pass over the descriptors: enough to reuse each row many times
/// while it sits in cache, few enough that the projections of one pass stay modest in memory.
const DIRECTION_GROUP: usize = 64;
/// 1-D binomial taps; the 5x5 filter is their outer product divided by 256.
const TAPS: [f32; 5] = [1.0, 4.0, 6.0, 4.0, 1.0];

const STREAM_NEIGHBOURHOODS: u64 = 1;
const STREAM_DIRECTIONS: u64 = 2;

/// What can go wrong when measuring SWD; every variant says which input was wrong.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum SwdError {
    /// `pixels` does not hold `count` images of `side` x `side` x 3 values.
    #[error("image set has {actual} values; {count} images of {side}x{side}x3 need {expected}")]
    PixelCount {
        count: usize,
        side: usize,
        expected: usize,
        actual: usize,
    },
    /// The side cannot be halved down to exactly 16.
    #[error("images are {side}x{side}; SWD needs a square power-of-two side of at least 16")]
    BadSide { side: usize },
    /// One image in a batch differs in size from the first, or is not square.
    #[error("image {index} is {width}x{height}; expected {side}x{side} like the first image")]
    ImageSize {
        index: usize,
        width: u32,
        height: u32,
        side: usize,
    },
    /// There is nothing to measure.
    #[error("the image set is empty; SWD needs at least one image")]
    Empty,
    /// Two descriptor sets were made from images of different sizes.
    #[error(
        "descriptor sets cover different pyramid levels ({a:?} vs {b:?}); compare same-size images"
    )]
    ResolutionMismatch { a: Vec<usize>, b: Vec<usize> },
    /// Pyramid levels handed to [`reconstruct`] do not halve from one to the next.
    #[error(
        "pyramid level {level} is {side}x{side} with {count} images; \
         expected {expected_side}x{expected_side} with {expected_count}"
    )]
    PyramidShape {
        level: usize,
        side: usize,
        count: usize,
        expected_side: usize,
        expected_count: usize,
    },
}

/// A batch of square RGB images in NCHW order with values in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    /// Number of images.
    pub count: usize,
    /// Width and height of each image.
    pub side: usize,
    /// `count * 3 * side * side` values, image after image, channel after channel.
    pub pixels: Vec<f32>,
}

impl Images {
    /// Wraps pixel values, checking that their number matches `count` and `side`.
    pub fn new(count: usize, side: usize, pixels: Vec<f32>) -> Result<Self, SwdError> {
        let images = Self {
            count,
            side,
            pixels,
        };
        images.check_len()?;
        Ok(images)
    }

    /// Converts 8-bit RGB images, which must all be square and of one size, to [-1, 1].
    pub fn from_rgb8(images: &[RgbImage]) -> Result<Self, SwdError> {
        let side = images.first().map_or(0, |first| first.width() as usize);
        let plane = side * side;
        let mut pixels = vec![0.0; images.len() * CHANNELS * plane];
        for (index, (image, out)) in images
            .iter()
            .zip(pixels.chunks_exact_mut(CHANNELS * plane.max(1)))
            .enumerate()
        {
            if image.width() as usize != side || image.height() as usize != side {
                return Err(SwdError::ImageSize {
                    index,
                    width: image.width(),
                    height: image.height(),
                    side,
                });
            }
            for (at, pixel) in image.pixels().enumerate() {
                for channel in 0..CHANNELS {
                    out[channel * plane + at] = f32::from(pixel.0[channel]) / 127.5 - 1.0;
                }
            }
        }
        Self::new(images.len(), side, pixels)
    }

    /// The `3 * side * side` values of image `index`.
    pub fn image(&self, index: usize) -> &[f32] {
        let len = self.image_len();
        &self.pixels[index * len..(index + 1) * len]
    }

    /// Image `index` as 8-bit RGB, clamping values outside [-1, 1].
    pub fn to_rgb8(&self, index: usize) -> RgbImage {
        let plane = self.side * self.side;
        let values = self.image(index);
        let side = self.side as u32;
        RgbImage::from_fn(side, side, |x, y| {
            let at = y as usize * self.side + x as usize;
            image::Rgb(std::array::from_fn(|channel| {
                let value = values[channel * plane + at];
                ((value + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
            }))
        })
    }

    /// A new batch holding the listed images, in the order given.
    pub fn select(&self, indices: &[usize]) -> Images {
        let mut pixels = Vec::with_capacity(indices.len() * self.image_len());
        for &index in indices {
            pixels.extend_from_slice(self.image(index));
        }
        Images {
            count: indices.len(),
            side: self.side,
            pixels,
        }
    }

    /// Values in one image.
    pub fn image_len(&self) -> usize {
        CHANNELS * self.side * self.side
    }

    /// Checks that `pixels` holds exactly `count` images of `side` x `side` x 3 values.
    pub fn check_len(&self) -> Result<(), SwdError> {
        let expected = self.count * self.image_len();
        if self.pixels.len() != expected {
            return Err(SwdError::PixelCount {
                count: self.count,
                side: self.side,
                expected,
                actual: self.pixels.len(),
            });
        }
        Ok(())
    }
}

/// Pyramid resolutions for images of `side`, finest first (64 gives `[64, 32, 16]`).
pub fn pyramid_resolutions(side: usize) -> Result<Vec<usize>, SwdError> {
    if side < MIN_SIDE || !side.is_power_of_two() {
        return Err(SwdError::BadSide { side });
    }
    Ok(std::iter::successors(Some(side), |&s| (s > MIN_SIDE).then_some(s / 2)).collect())
}

/// Laplacian pyramid of every image, finest level first; the last level is the 16x16
/// Gaussian level, so [`reconstruct`] can rebuild the input exactly.
pub fn laplacian_pyramid(images: &Images) -> Result<Vec<Images>, SwdError> {
    images.check_len()?;
    let resolutions = pyramid_resolutions(images.side)?;
    let per_image: Vec<Vec<Vec<f32>>> = (0..images.count)
        .into_par_iter()
        .map(|index| image_pyramid(images.image(index), images.side))
        .collect();
    Ok(resolutions
        .iter()
        .enumerate()
        .map(|(level, &side)| Images {
            count: images.count,
            side,
            pixels: per_image
                .iter()
                .flat_map(|p| p[level].iter().copied())
                .collect(),
        })
        .collect())
}

/// Rebuilds images from their Laplacian pyramid (finest level first).
pub fn reconstruct(levels: &[Images]) -> Result<Images, SwdError> {
    let (coarsest, finer) = levels.split_last().ok_or(SwdError::Empty)?;
    for (level, images) in levels.iter().enumerate() {
        images.check_len()?;
        let expected_side = levels[0].side >> level;
        if images.side != expected_side || images.count != levels[0].count {
            return Err(SwdError::PyramidShape {
                level,
                side: images.side,
                count: images.count,
                expected_side,
                expected_count: levels[0].count,
            });
        }
    }

    let mut current = coarsest.clone();
    for detail in finer.iter().rev() {
        let plane = current.side * current.side;
        let mut pixels = detail.pixels.clone();
        let detail_plane = detail.side * detail.side;
        pixels
            .par_chunks_mut(detail_plane)
            .zip(current.pixels.par_chunks(plane))
            .for_each(|(out, small)| {
                let up = upsample(small, current.side);
                out.iter_mut().zip(&up).for_each(|(o, u)| *o += u);
            });
        current = Images {
            count: detail.count,
            side: detail.side,
            pixels,
        };
    }
    Ok(current)
}

/// How much of each detail level of a set of images is the same in every image: the energy
/// of the set's mean detail image over the mean energy of the images' own details, per
/// Laplacian level (finest first; the coarsest, Gaussian level is left out). Independent
/// images score about `1 / count`. A generator that paints the same fine texture onto every
/// cat, in the same place, scores far above real cats, however varied their colours and
/// layouts: SWD sees such a set as too uniform, but not why.
pub fn shared_detail(images: &Images) -> Result<Vec<f64>, SwdError> {
    if images.count == 0 {
        return Err(SwdError::Empty);
    }
    let pyramid = laplacian_pyramid(images)?;
    let details = &pyramid[..pyramid.len() - 1];
    Ok(details
        .iter()
        .map(|level| {
            let mut mean = vec![0.0f64; level.image_len()];
            let mut energy = 0.0f64;
            for index in 0..level.count {
                for (sum, &value) in mean.iter_mut().zip(level.image(index)) {
                    *sum += f64::from(value);
                    energy += f64::from(value).powi(2);
                }
            }
            let count = level.count as f64;
            let shared: f64 = mean.iter().map(|sum| (sum / count).powi(2)).sum();
            let own = energy / count;
            if own > 0.0 { shared / own } else { 0.0 }
        })
        .collect())
}

/// Per-level descriptors of one image set, ready to be compared with [`distance`].
#[derive(Debug, Clone)]
pub struct Descriptors {
    resolutions: Vec<usize>,
    image_count: usize,
    /// Laid out `[image][level][neighbourhood][value]`, so each image is filled by one task;
    /// a level's rows are read back in runs of 128.
    rows: Vec<f32>,
}

impl Descriptors {
    /// Pyramid resolutions the descriptors were cut from, finest first.
    pub fn resolutions(&self) -> &[usize] {
        &self.resolutions
    }

    /// Number of images the descriptors came from.
    pub fn image_count(&self) -> usize {
        self.image_count
    }

    /// Descriptors per level (`image_count * 128`).
    pub fn len(&self) -> usize {
        self.image_count * NEIGHBOURHOODS_PER_IMAGE
    }

    /// True when there are no descriptors (never for a set made by [`descriptors`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The 147 values of descriptor `index` of pyramid level `level`, channel-major.
    pub fn descriptor(&self, level: usize, index: usize) -> &[f32] {
        let image = index / NEIGHBOURHOODS_PER_IMAGE;
        let row = index % NEIGHBOURHOODS_PER_IMAGE;
        let start = self.block_start(image, level) + row * DESCRIPTOR_LEN;
        &self.rows[start..start + DESCRIPTOR_LEN]
    }

    fn block_start(&self, image: usize, level: usize) -> usize {
        (image * self.resolutions.len() + level) * NEIGHBOURHOODS_PER_IMAGE * DESCRIPTOR_LEN
    }

    fn block(&self, image: usize, level: usize) -> &[f32] {
        let start = self.block_start(image, level);
        &self.rows[start..start + NEIGHBOURHOODS_PER_IMAGE * DESCRIPTOR_LEN]
    }
}

/// SWD between two image sets, scaled by 1e3 as in the paper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Swd {
    /// One value per pyramid level, finest first.
    pub per_level: Vec<f64>,
    /// Mean of `per_level`.
    pub mean: f64,
    /// Resolution of each level, finest first.
    pub resolutions: Vec<usize>,
}

/// Cuts and normalises the descriptors of every image; `seed` fixes where neighbourhoods are
/// cut. Image `i` always gets the same positions for a given seed, whatever the thread count.
pub fn descriptors(images: &Images, seed: u64) -> Result<Descriptors, SwdError> {
    images.check_len()?;
    let resolutions = pyramid_resolutions(images.side)?;
    if images.count == 0 {
        return Err(SwdError::Empty);
    }

    let levels = resolutions.len();
    let per_image = levels * NEIGHBOURHOODS_PER_IMAGE * DESCRIPTOR_LEN;
    let mut rows = vec![0.0f32; images.count * per_image];
    rows.par_chunks_mut(per_image)
        .enumerate()
        .for_each(|(index, out)| {
            let mut rng = stream(seed, STREAM_NEIGHBOURHOODS, index as u64);
            let pyramid = image_pyramid(images.image(index), images.side);
            for ((plane, &side), out) in pyramid
                .iter()
                .zip(&resolutions)
                .zip(out.chunks_exact_mut(NEIGHBOURHOODS_PER_IMAGE * DESCRIPTOR_LEN))
            {
                cut_neighbourhoods(plane, side, &mut rng, out);
            }
        });

    let mut descriptors = Descriptors {
        resolutions,
        image_count: images.count,
        rows,
    };
    for level in 0..levels {
        normalise_level(&mut descriptors, level);
    }
    Ok(descriptors)
}

/// SWD between two descriptor sets from images of the same size; `seed` fixes the random
/// directions. Sets of different sizes are compared through their quantile functions, which
/// is the exact 1-D Wasserstein-1 distance and equals the mean absolute difference of sorted
/// projections when the sizes match.
pub fn distance(a: &Descriptors, b: &Descriptors, seed: u64) -> Result<Swd, SwdError> {
    if a.resolutions != b.resolutions {
        return Err(SwdError::ResolutionMismatch {
            a: a.resolutions.clone(),
            b: b.resolutions.clone(),
        });
    }
    if a.is_empty() || b.is_empty() {
        return Err(SwdError::Empty);
    }

    let per_level: Vec<f64> = (0..a.resolutions.len())
        .map(|level| {
            let mut rng = stream(seed, STREAM_DIRECTIONS, level as u64);
            let directions = random_directions(&mut rng);
            SCALE * sliced_level(a, b, level, &directions)
        })
        .collect();
    let mean = per_level.iter().sum::<f64>() / per_level.len() as f64;
    Ok(Swd {
        per_level,
        mean,
        resolutions: a.resolutions.clone(),
    })
}

/// One-off SWD between two image sets; the sets get different neighbourhood seeds so that
/// comparing a set with itself measures sampling noise rather than returning exactly zero.
pub fn sliced_wasserstein(a: &Images, b: &Images, seed: u64) -> Result<Swd, SwdError> {
    let da = descriptors(a, seed)?;
    let db = descriptors(b, seed.wrapping_add(1))?;
    distance(&da, &db, seed)
}

/// A generator for one (stream, index) pair. It only uses `SplitMix64::new`, so it works with
/// the model crate's generator too; each input passes through a full mixing step so that
/// neighbouring indices give unrelated sequences.
fn stream(seed: u64, stream: u64, index: u64) -> SplitMix64 {
    let mut outer = SplitMix64::new(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut inner = SplitMix64::new(outer.next_u64() ^ index);
    SplitMix64::new(inner.next_u64())
}

/// Gaussian then Laplacian pyramid of one CHW image; finest level first.
fn image_pyramid(image: &[f32], side: usize) -> Vec<Vec<f32>> {
    let mut gaussian = vec![(image.to_vec(), side)];
    while gaussian.last().is_some_and(|(_, s)| *s > MIN_SIDE) {
        let (plane, s) = gaussian.last().expect("pyramid has a level");
        let smaller: Vec<f32> = plane
            .chunks_exact(s * s)
            .flat_map(|channel| downsample(channel, *s))
            .collect();
        gaussian.push((smaller, s / 2));
    }

    let mut laplacian: Vec<Vec<f32>> = gaussian
        .windows(2)
        .map(|pair| {
            let ((fine, s), (coarse, _)) = (&pair[0], &pair[1]);
            let plane = s * s;
            let mut detail = fine.clone();
            for (out, small) in detail
                .chunks_exact_mut(plane)
                .zip(coarse.chunks_exact(plane / 4))
            {
                let up = upsample(small, s / 2);
                out.iter_mut().zip(&up).for_each(|(o, u)| *o -= u);
            }
            detail
        })
        .collect();
    laplacian.push(gaussian.pop().expect("pyramid has a level").0);
    laplacian
}

/// Index into a line of `n` samples, reflecting about the edge samples (`-1` reads `1`,
/// `n` reads `n - 2`), which keeps the border free of a repeated-pixel seam.
fn mirror(i: isize, n: usize) -> usize {
    let n = n as isize;
    let i = if i < 0 { -i } else { i };
    let i = if i >= n { 2 * (n - 1) - i } else { i };
    i as usize
}

/// Separable 5x5 binomial filter over one square plane; `gain` scales each 1-D pass, so the
/// 2-D filter is multiplied by `gain * gain`.
fn binomial(plane: &[f32], side: usize, gain: f32) -> Vec<f32> {
    let weights = TAPS.map(|t| t * gain / 16.0);
    let mut across = vec![0.0; plane.len()];
    for (row_in, row_out) in plane.chunks_exact(side).zip(across.chunks_exact_mut(side)) {
        for (x, out) in row_out.iter_mut().enumerate() {
            *out = weights
                .iter()
                .enumerate()
                .map(|(k, w)| w * row_in[mirror(x as isize + k as isize - 2, side)])
                .sum();
        }
    }
    let mut down = vec![0.0; plane.len()];
    for y in 0..side {
        let rows = std::array::from_fn::<usize, 5, _>(|k| {
            mirror(y as isize + k as isize - 2, side) * side
        });
        for x in 0..side {
            down[y * side + x] = weights
                .iter()
                .zip(rows)
                .map(|(w, r)| w * across[r + x])
                .sum();
        }
    }
    down
}

/// One Gaussian pyramid step: blur, then keep every second pixel in each direction.
pub(crate) fn downsample(plane: &[f32], side: usize) -> Vec<f32> {
    let blurred = binomial(plane, side, 1.0);
    let half = side / 2;
    (0..half * half)
        .map(|i| blurred[(i / half) * 2 * side + (i % half) * 2])
        .collect()
}

/// Doubles a plane's side: zeros between samples, then the binomial filter times four, which
/// keeps the mean brightness because only a quarter of the samples are non-zero.
fn upsample(plane: &[f32], side: usize) -> Vec<f32> {
    let double = side * 2;
    let mut spread = vec![0.0; double * double];
    for (i, value) in plane.iter().enumerate() {
        spread[(i / side) * 2 * double + (i % side) * 2] = *value;
    }
    binomial(&spread, double, 2.0)
}

/// Blurs one square plane with the 5x5 binomial filter (mirrored borders), keeping its size.
pub fn blur(plane: &[f32], side: usize) -> Vec<f32> {
    binomial(plane, side, 1.0)
}

/// Cuts 128 random 7x7 neighbourhoods (all channels) from one CHW level into padded rows.
fn cut_neighbourhoods(plane: &[f32], side: usize, rng: &mut SplitMix64, out: &mut [f32]) {
    let positions = (side - NEIGHBOURHOOD + 1) as u64;
    let area = side * side;
    for row in out.chunks_exact_mut(DESCRIPTOR_LEN) {
        let top = rng.below(positions) as usize;
        let left = rng.below(positions) as usize;
        let values = row.chunks_exact_mut(NEIGHBOURHOOD);
        for (line, out) in values.enumerate() {
            let channel = line / NEIGHBOURHOOD;
            let y = top + line % NEIGHBOURHOOD;
            let start = channel * area + y * side + left;
            out.copy_from_slice(&plane[start..start + NEIGHBOURHOOD]);
        }
    }
}

/// Subtracts each channel's mean and divides by its standard deviation, both taken over every
/// descriptor of the level and all 49 positions.
fn normalise_level(descriptors: &mut Descriptors, level: usize) {
    const PER_CHANNEL: usize = NEIGHBOURHOOD * NEIGHBOURHOOD;
    let sums = (0..descriptors.image_count)
        .into_par_iter()
        .map(|image| {
            let mut sums = [[0.0f64; 2]; CHANNELS];
            for row in descriptors.block(image, level).chunks_exact(DESCRIPTOR_LEN) {
                for (channel, values) in row.chunks_exact(PER_CHANNEL).enumerate() {
                    for &v in values {
                        sums[channel][0] += f64::from(v);
                        sums[channel][1] += f64::from(v) * f64::from(v);
                    }
                }
            }
            sums
        })
        .reduce(
            || [[0.0; 2]; CHANNELS],
            |a, b| std::array::from_fn(|c| [a[c][0] + b[c][0], a[c][1] + b[c][1]]),
        );

    let n = (descriptors.len() * PER_CHANNEL) as f64;
    let scale: [(f32, f32); CHANNELS] = std::array::from_fn(|c| {
        let mean = sums[c][0] / n;
        let std = (sums[c][1] / n - mean * mean).max(0.0).sqrt();
        // A flat channel (all images one colour) has no spread to divide by; centring it is
        // all that normalisation can do.
        let inv = if std > 1e-12 { 1.0 / std } else { 1.0 };
        (mean as f32, inv as f32)
    });

    let levels = descriptors.resolutions.len();
    let block = NEIGHBOURHOODS_PER_IMAGE * DESCRIPTOR_LEN;
    descriptors
        .rows
        .par_chunks_mut(block)
        .skip(level)
        .step_by(levels)
        .for_each(|rows| {
            for row in rows.chunks_exact_mut(DESCRIPTOR_LEN) {
                for (channel, values) in row.chunks_exact_mut(PER_CHANNEL).enumerate() {
                    let (mean, inv) = scale[channel];
                    values.iter_mut().for_each(|v| *v = (*v - mean) * inv);
                }
            }
        });
}

/// 4 x 128 random unit directions in descriptor space, one after another.
fn random_directions(rng: &mut SplitMix64) -> Vec<f32> {
    let count = DIRECTION_REPEATS * DIRECTIONS_PER_REPEAT;
    let mut directions = vec![0.0f32; count * DESCRIPTOR_LEN];
    for direction in directions.chunks_exact_mut(DESCRIPTOR_LEN) {
        let raw: Vec<f64> = (0..DESCRIPTOR_LEN).map(|_| rng.normal_pair().0).collect();
        let norm = raw.iter().map(|v| v * v).sum::<f64>().sqrt();
        for (out, v) in direction.iter_mut().zip(&raw) {
            *out = (v / norm) as f32;
        }
    }
    directions
}

/// Mean over all directions of the 1-D Wasserstein distance between the projected sets.
fn sliced_level(a: &Descriptors, b: &Descriptors, level: usize, directions: &[f32]) -> f64 {
    let mut total = 0.0;
    let interleaved = interleave(directions);
    // Reused across groups: fresh buffers this large cost more in page faults than in math.
    let (mut pa, mut pb) = (Vec::new(), Vec::new());
    for group in interleaved.chunks(DIRECTION_GROUP * DESCRIPTOR_LEN) {
        let count = group.len() / DESCRIPTOR_LEN;
        project(a, level, group, &mut pa);
        project(b, level, group, &mut pb);
        total += (0..count)
            .into_par_iter()
            .map_init(SortBuffers::default, |buffers, d| {
                let SortBuffers {
                    keys,
                    scratch,
                    a: sa,
                    b: sb,
                } = buffers;
                sorted_projection(&pa, d, count, a.image_count, keys, scratch, sa);
                sorted_projection(&pb, d, count, b.image_count, keys, scratch, sb);
                wasserstein_1d(sa, sb)
            })
            .sum::<f64>();
    }
    total / (directions.len() / DESCRIPTOR_LEN) as f64
}

/// Per-thread space for sorting one direction's projections of both sets.
#[derive(Default)]
struct SortBuffers {
    keys: Vec<u32>,
    scratch: Vec<u32>,
    a: Vec<f32>,
    b: Vec<f32>,
}

/// Dot products of every descriptor of one level with a group of interleaved directions,
/// laid out `[image][direction][neighbourhood]` so each image's tile is written by one task.
fn project(descriptors: &Descriptors, level: usize, group: &[f32], out: &mut Vec<f32>) {
    let tile = group.len() / DESCRIPTOR_LEN * NEIGHBOURHOODS_PER_IMAGE;
    // Every value is overwritten below, so stale values from the last group do no harm.
    out.resize(descriptors.image_count * tile, 0.0);
    out.par_chunks_mut(tile)
        .enumerate()
        .for_each(|(image, out)| {
            project_tile(descriptors.block(image, level), group, out);
        });
}

/// Reorders directions (one after another) into blocks of [`LANES`] whose values are
/// interleaved: `[block][value][direction in block]`. The projection kernel then multiplies
/// one descriptor value by 16 directions at once, with no sum across vector lanes at the end.
fn interleave(directions: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0f32; directions.len()];
    for (source, target) in directions
        .chunks_exact(LANES * DESCRIPTOR_LEN)
        .zip(out.chunks_exact_mut(LANES * DESCRIPTOR_LEN))
    {
        for (lane, direction) in source.chunks_exact(DESCRIPTOR_LEN).enumerate() {
            for (k, value) in direction.iter().enumerate() {
                target[k * LANES + lane] = *value;
            }
        }
    }
    out
}

/// Projects one image's 128 descriptors onto interleaved direction blocks, two descriptors
/// at a time so that each loaded direction value feeds two multiply-adds. Plain safe code
/// that the compiler vectorises; measured 1.5x faster than one dot product at a time.
fn project_tile(rows: &[f32], blocks: &[f32], out: &mut [f32]) {
    for (block, interleaved) in blocks.chunks_exact(LANES * DESCRIPTOR_LEN).enumerate() {
        let weights = interleaved.as_chunks::<LANES>().0;
        for (pair, rows) in rows.chunks_exact(2 * DESCRIPTOR_LEN).enumerate() {
            let (first, second) = rows.split_at(DESCRIPTOR_LEN);
            let mut sums = [[0.0f32; LANES]; 2];
            for ((w, x0), x1) in weights.iter().zip(first).zip(second) {
                let [s0, s1] = &mut sums;
                for ((a, b), w) in s0.iter_mut().zip(s1.iter_mut()).zip(w) {
                    *a += x0 * w;
                    *b += x1 * w;
                }
            }
            for (lane, (a, b)) in sums[0].iter().zip(&sums[1]).enumerate() {
                let at = (block * LANES + lane) * NEIGHBOURHOODS_PER_IMAGE + 2 * pair;
                out[at] = *a;
                out[at + 1] = *b;
            }
        }
    }
}

/// Gathers direction `d` of a projection tile set into `sorted`, in ascending order.
fn sorted_projection(
    projections: &[f32],
    d: usize,
    count: usize,
    images: usize,
    keys: &mut Vec<u32>,
    scratch: &mut Vec<u32>,
    sorted: &mut Vec<f32>,
) {
    let tile = count * NEIGHBOURHOODS_PER_IMAGE;
    keys.clear();
    for image in 0..images {
        let start = image * tile + d * NEIGHBOURHOODS_PER_IMAGE;
        let run = &projections[start..start + NEIGHBOURHOODS_PER_IMAGE];
        keys.extend(run.iter().map(|v| order_key(*v)));
    }
    radix_sort(keys, scratch);
    sorted.clear();
    sorted.extend(keys.iter().map(|k| from_order_key(*k)));
}

/// Maps a float to an integer with the same order, so it can be radix sorted.
fn order_key(value: f32) -> u32 {
    let bits = value.to_bits();
    if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

fn from_order_key(key: u32) -> f32 {
    if key >> 31 == 1 {
        f32::from_bits(key & 0x7FFF_FFFF)
    } else {
        f32::from_bits(!key)
    }
}

/// LSD radix sort in three 11-bit passes: a few times faster than a comparison sort on the
/// hundreds of thousands of keys per direction, which dominate the run time otherwise.
fn radix_sort(keys: &mut Vec<u32>, scratch: &mut Vec<u32>) {
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    let mut counts = [[0usize; BUCKETS]; 3];
    for &key in keys.iter() {
        for (pass, count) in counts.iter_mut().enumerate() {
            count[((key >> (pass as u32 * BITS)) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    scratch.resize(keys.len(), 0);
    for (pass, count) in counts.iter().enumerate() {
        let mut offsets = [0usize; BUCKETS];
        let mut running = 0;
        for (offset, c) in offsets.iter_mut().zip(count) {
            *offset = running;
            running += c;
        }
        let shift = pass as u32 * BITS;
        for &key in keys.iter() {
            let bucket = ((key >> shift) as usize) & (BUCKETS - 1);
            scratch[offsets[bucket]] = key;
            offsets[bucket] += 1;
        }
        std::mem::swap(keys, scratch);
    }
}

/// Wasserstein-1 distance between two sorted samples: the integral over quantiles of the gap
/// between their quantile functions.
fn wasserstein_1d(a: &[f32], b: &[f32]) -> f64 {
    if a.len() == b.len() {
        let sum: f64 = a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs())).sum();
        return sum / a.len() as f64;
    }

    // Walk both step functions; quantile breakpoints are (i + 1) / n and (j + 1) / m,
    // compared in integers to avoid rounding.
    let (n, m) = (a.len(), b.len());
    let (mut i, mut j) = (0, 0);
    let mut previous = 0.0;
    let mut sum = 0.0;
    while i < n && j < m {
        let (next_a, next_b) = ((i + 1) * m, (j + 1) * n);
        let next = next_a.min(next_b);
        let t = next as f64 / (n * m) as f64;
        sum += (t - previous) * f64::from((a[i] - b[j]).abs());
        previous = t;
        if next_a == next {
            i += 1;
        }
        if next_b == next {
            j += 1;
        }
    }
    sum
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Synthetic "photos": many small soft blobs of random colour. Every image holds many
    /// independent features, so a few dozen images already sample the distribution well, and
    /// two calls with different seeds are two samples of the same distribution.
    pub(crate) fn synthetic(count: usize, side: usize, seed: u64) -> Images {
        let mut pixels = Vec::with_capacity(count * CHANNELS * side * side);
        for index in 0..count {
            let mut rng = stream(seed, 99, index as u64);
            // x, y, radius, then one amplitude per channel.
            let blobs: Vec<[f64; 6]> = (0..side * side / 16)
                .map(|_| {
                    std::array::from_fn(|k| match k {
                        0 | 1 => rng.next_f64() * side as f64,
                        2 => 1.0 + 2.0 * rng.next_f64(),
                        _ => rng.next_f64() * 1.6 - 0.8,
                    })
                })
                .collect();
            let mut image = vec![0.0f32; CHANNELS * side * side];
            for (at, value) in image.iter_mut().enumerate() {
                let (c, y, x) = (at / (side * side), (at / side) % side, at % side);
                let v: f64 = blobs
                    .iter()
                    .map(|blob| {
                        let d2 = (x as f64 - blob[0]).powi(2) + (y as f64 - blob[1]).powi(2);
                        blob[3 + c] * (-d2 / (2.0 * blob[2] * blob[2])).exp()
                    })
                    .sum();
                *value = v.clamp(-1.0, 1.0) as f32;
            }
            pixels.extend(image);
        }
        Images::new(count, side, pixels).unwrap()
    }

    fn noise(count: usize, side: usize, seed: u64) -> Images {
        let mut rng = SplitMix64::new(seed);
        let pixels = (0..count * CHANNELS * side * side)
            .map(|_| (rng.next_f64() * 2.0 - 1.0) as f32)
            .collect();
        Images::new(count, side, pixels).unwrap()
    }

    fn blurred(images: &Images, passes: usize) -> Images {
        let plane = images.side * images.side;
        let mut pixels = images.pixels.clone();
        for channel in pixels.chunks_exact_mut(plane) {
            for _ in 0..passes {
                let out = blur(channel, images.side);
                channel.copy_from_slice(&out);
            }
        }
        Images::new(images.count, images.side, pixels).unwrap()
    }

    fn swd(a: &Images, b: &Images, seed: u64) -> Swd {
        sliced_wasserstein(a, b, seed).unwrap()
    }

    #[test]
    fn shared_detail_tells_a_common_texture_from_independent_images() {
        let independent = synthetic(64, 64, 1);
        let template = synthetic(1, 64, 2);
        // Each image half its own, half the same texture in the same place.
        let pixels = independent
            .pixels
            .chunks_exact(independent.image_len())
            .flat_map(|own| own.iter().zip(&template.pixels).map(|(a, b)| 0.5 * (a + b)))
            .collect();
        let templated = Images::new(64, 64, pixels).unwrap();
        let copies = Images::new(8, 64, template.pixels.repeat(8)).unwrap();

        let own = shared_detail(&independent).unwrap();
        let half = shared_detail(&templated).unwrap();
        let same = shared_detail(&copies).unwrap();
        // Levels 64 and 32; the coarsest (16x16 Gaussian) one is not detail.
        assert_eq!((own.len(), half.len(), same.len()), (2, 2, 2));
        for level in 0..2 {
            assert!(own[level] < 3.0 / 64.0, "independent images share {own:?}");
            assert!(half[level] > 0.3, "a common texture went unseen: {half:?}");
            assert!((same[level] - 1.0).abs() < 1e-9, "copies share {same:?}");
        }
        let empty = Images::new(0, 64, Vec::new()).unwrap();
        assert_eq!(shared_detail(&empty), Err(SwdError::Empty));
    }

    #[test]
    fn resolutions_halve_down_to_sixteen() {
        assert_eq!(pyramid_resolutions(64).unwrap(), vec![64, 32, 16]);
        assert_eq!(pyramid_resolutions(128).unwrap(), vec![128, 64, 32, 16]);
        assert_eq!(pyramid_resolutions(16).unwrap(), vec![16]);
        assert_eq!(pyramid_resolutions(8), Err(SwdError::BadSide { side: 8 }));
        assert_eq!(pyramid_resolutions(48), Err(SwdError::BadSide { side: 48 }));
    }

    #[test]
    fn mirror_reflects_about_edge_samples() {
        assert_eq!(mirror(-2, 8), 2);
        assert_eq!(mirror(-1, 8), 1);
        assert_eq!(mirror(3, 8), 3);
        assert_eq!(mirror(8, 8), 6);
        assert_eq!(mirror(9, 8), 5);
    }

    #[test]
    fn binomial_filter_keeps_constant_planes_and_upsampling_keeps_the_mean() {
        let flat = vec![0.25f32; 16 * 16];
        assert!(blur(&flat, 16).iter().all(|v| (v - 0.25).abs() < 1e-6));
        assert!(
            downsample(&flat, 16)
                .iter()
                .all(|v| (v - 0.25).abs() < 1e-6)
        );
        assert!(
            upsample(&flat[..64], 8)
                .iter()
                .all(|v| (v - 0.25).abs() < 1e-6)
        );
    }

    #[test]
    fn pyramid_reconstructs_its_input() {
        let images = noise(3, 64, 5);
        let levels = laplacian_pyramid(&images).unwrap();
        let sides: Vec<usize> = levels.iter().map(|l| l.side).collect();
        assert_eq!(sides, vec![64, 32, 16]);
        let rebuilt = reconstruct(&levels).unwrap();
        let worst = rebuilt
            .pixels
            .iter()
            .zip(&images.pixels)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-5, "largest reconstruction error {worst}");
        // The detail levels of noise carry real energy; a pyramid of zeros would also rebuild.
        assert!(levels[0].pixels.iter().any(|v| v.abs() > 0.1));
    }

    #[test]
    fn reconstruct_rejects_levels_that_do_not_halve() {
        let images = synthetic(1, 32, 1);
        let mut levels = laplacian_pyramid(&images).unwrap();
        levels.swap(0, 1);
        assert!(matches!(
            reconstruct(&levels),
            Err(SwdError::PyramidShape { level: 1, .. })
        ));
    }

    #[test]
    fn descriptors_are_normalised_per_channel() {
        let d = descriptors(&synthetic(8, 32, 3), 7).unwrap();
        assert_eq!(d.resolutions(), &[32, 16]);
        assert_eq!(d.len(), 8 * 128);
        for level in 0..2 {
            for channel in 0..CHANNELS {
                let span = channel * 49..(channel + 1) * 49;
                let values: Vec<f64> = (0..d.len())
                    .flat_map(|i| d.descriptor(level, i)[span.clone()].to_vec())
                    .map(f64::from)
                    .collect();
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let var =
                    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
                assert!(
                    mean.abs() < 1e-4,
                    "level {level} channel {channel} mean {mean}"
                );
                assert!(
                    (var - 1.0).abs() < 1e-3,
                    "level {level} channel {channel} var {var}"
                );
            }
        }
    }

    #[test]
    fn radix_sort_orders_negative_and_positive_floats() {
        let values = [3.5f32, -0.0, -2.25, 1e-30, -1e9, 0.0, 7.0, -1e-30];
        let mut keys: Vec<u32> = values.iter().map(|v| order_key(*v)).collect();
        radix_sort(&mut keys, &mut Vec::new());
        let sorted: Vec<f32> = keys.into_iter().map(from_order_key).collect();
        assert_eq!(
            sorted,
            vec![-1e9, -2.25, -1e-30, -0.0, 0.0, 1e-30, 3.5, 7.0]
        );
    }

    #[test]
    fn unequal_sample_sizes_use_exact_wasserstein_one() {
        // Uniform {0, 1} against {0, 1, 2, 3}: the quantile functions differ by 0, 1, 1, 2
        // over quarters of [0, 1], so the distance is 1.
        assert!((wasserstein_1d(&[0.0, 1.0], &[0.0, 1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        assert!((wasserstein_1d(&[1.0, 2.0], &[2.0, 4.0]) - 1.5).abs() < 1e-12);
        assert_eq!(wasserstein_1d(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0.0);
    }

    #[test]
    fn set_against_itself_is_far_below_the_same_distribution_floor() {
        let a = synthetic(48, 32, 1);
        let b = synthetic(48, 32, 2);
        let da = descriptors(&a, 11).unwrap();
        let itself = distance(&da, &da, 3).unwrap();
        let floor = swd(&a, &b, 3);
        assert_eq!(itself.mean, 0.0);
        assert!(itself.per_level.iter().all(|v| *v == 0.0));
        assert!(floor.mean > 1.0, "floor {floor:?}");
        assert_eq!(floor.resolutions, vec![32, 16]);
        assert!((floor.mean - floor.per_level.iter().sum::<f64>() / 2.0).abs() < 1e-12);
    }

    #[test]
    fn swd_grows_as_one_set_is_blurred_more() {
        let a = synthetic(48, 32, 1);
        let b = synthetic(48, 32, 2);
        let values: Vec<f64> = [0, 1, 2, 4, 8]
            .iter()
            .map(|&passes| swd(&a, &blurred(&b, passes), 5).mean)
            .collect();
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "not increasing: {values:?}"
        );
        assert!(
            values[4] > 1.8 * values[0],
            "blur barely registers: {values:?}"
        );
    }

    #[test]
    fn noise_scores_far_above_structured_images() {
        let a = synthetic(48, 32, 1);
        let floor = swd(&a, &synthetic(48, 32, 2), 9).mean;
        let noisy = swd(&a, &noise(48, 32, 4), 9).mean;
        // Per-set normalisation leaves noise and structure with the same variance, so only
        // the shape of the projections differs; with 48 images the floor is still high. The
        // ratio grows with set size: 29x for 2,048 real cats (see `real_cats_floor_and_timing`).
        assert!(noisy > 2.0 * floor, "noise {noisy} vs floor {floor}");
    }

    #[test]
    fn different_seeds_agree_within_ten_percent() {
        let a = synthetic(48, 32, 1);
        let b = blurred(&synthetic(48, 32, 2), 2);
        let values: Vec<f64> = (0..4).map(|seed| swd(&a, &b, 100 + seed).mean).collect();
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        for v in &values {
            assert!((v - mean).abs() < 0.10 * mean, "seeds disagree: {values:?}");
        }
    }

    #[test]
    fn same_seed_gives_identical_results() {
        let a = synthetic(16, 32, 1);
        let b = synthetic(16, 32, 2);
        assert_eq!(swd(&a, &b, 42), swd(&a, &b, 42));
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let small = Images::new(2, 8, vec![0.0; 2 * 3 * 64]).unwrap();
        assert!(matches!(
            descriptors(&small, 0),
            Err(SwdError::BadSide { side: 8 })
        ));
        assert!(matches!(
            Images::new(2, 16, vec![0.0; 10]),
            Err(SwdError::PixelCount {
                expected: 1536,
                actual: 10,
                ..
            })
        ));
        let empty = Images::new(0, 32, vec![]).unwrap();
        assert_eq!(descriptors(&empty, 0).unwrap_err(), SwdError::Empty);
        let d32 = descriptors(&synthetic(2, 32, 1), 0).unwrap();
        let d16 = descriptors(&synthetic(2, 16, 1), 0).unwrap();
        assert!(matches!(
            distance(&d32, &d16, 0),
            Err(SwdError::ResolutionMismatch { .. })
        ));
        let odd = vec![RgbImage::new(16, 16), RgbImage::new(16, 8)];
        assert!(matches!(
            Images::from_rgb8(&odd),
            Err(SwdError::ImageSize {
                index: 1,
                height: 8,
                ..
            })
        ));
    }

    #[test]
    fn rgb8_round_trips_through_the_signed_scale() {
        let mut picture = RgbImage::new(16, 16);
        picture.put_pixel(3, 5, image::Rgb([0, 128, 255]));
        let images = Images::from_rgb8(&[picture.clone()]).unwrap();
        assert_eq!(images.pixels[5 * 16 + 3], -1.0);
        assert_eq!(images.pixels[2 * 256 + 5 * 16 + 3], 1.0);
        assert_eq!(images.to_rgb8(0), picture);
    }

    #[test]
    fn unequal_set_sizes_still_compare() {
        let a = synthetic(32, 32, 1);
        let b = synthetic(48, 32, 2);
        let value = swd(&a, &b, 1).mean;
        let equal = swd(&a, &synthetic(32, 32, 2), 1).mean;
        assert!(value > 0.0 && value < 3.0 * equal, "{value} vs {equal}");
    }

    /// Loads up to `limit` JPEGs from the shared cat folder, or None when it is absent.
    pub(crate) fn load_cats(limit: usize) -> Option<Images> {
        let folder =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/cats64");
        if !folder.is_dir() {
            eprintln!(
                "skipping: {} is missing, so there is no real data",
                folder.display()
            );
            return None;
        }
        // Files are named 1.jpg .. N.jpg; numeric order keeps the split reproducible.
        let mut paths: Vec<_> = std::fs::read_dir(&folder)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
            .collect();
        paths.sort_by_key(|p| {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            (stem.parse::<u64>().unwrap_or(u64::MAX), p.clone())
        });
        paths.truncate(limit);
        let pictures: Vec<RgbImage> = paths
            .par_iter()
            .map(|p| image::open(p).expect("cat JPEG decodes").to_rgb8())
            .collect();
        Some(Images::from_rgb8(&pictures).expect("cats are all 64x64"))
    }

    #[test]
    #[ignore = "needs ../shared/data/cats64 and a release build; prints the real floor"]
    fn real_cats_floor_and_timing() {
        let Some(cats) = load_cats(4096) else { return };
        let half = cats.count / 2;
        let first: Vec<usize> = (0..half).collect();
        let second: Vec<usize> = (half..2 * half).collect();
        let (a, b) = (cats.select(&first), cats.select(&second));

        let start = std::time::Instant::now();
        let da = descriptors(&a, 1).unwrap();
        let db = descriptors(&b, 2).unwrap();
        let cut = start.elapsed();
        let floor = distance(&da, &db, 3).unwrap();
        let total = start.elapsed();
        eprintln!(
            "real-vs-real floor, {half} vs {half} cats at 64x64: {floor:?}\n\
             descriptors {:.2}s, total {:.2}s",
            cut.as_secs_f64(),
            total.as_secs_f64()
        );
        // Other neighbourhood positions and directions: how much the seed moves the result.
        let again = distance(
            &descriptors(&a, 11).unwrap(),
            &descriptors(&b, 12).unwrap(),
            13,
        );
        let again = again.unwrap();
        let change = (again.mean - floor.mean).abs() / floor.mean;
        eprintln!("other seeds: {again:?} ({:.1}% apart)", 100.0 * change);
        assert!(change < 0.10);

        let noise = noise(half, 64, 1);
        let far = distance(&da, &descriptors(&noise, 2).unwrap(), 3).unwrap();
        eprintln!("cats vs uniform noise: {far:?}");
        assert!(floor.mean < far.mean / 10.0);
    }
}
