//! Memorisation check: for every generated image, the training images closest to it. A
//! generator that copies its training set shows generated-to-train distances well below the
//! distances from held-out real images to the same training set; [`Summary`] puts the two
//! side by side, and [`side_by_side`] draws the matches so a person can judge them.

use image::{Rgb, RgbImage};
use rayon::prelude::*;
use serde::Serialize;
use thiserror::Error;

use crate::swd::{CHANNELS, Images, MIN_SIDE, SwdError, downsample};

/// Side of the images compared in [`Space::Blurred`].
pub const BLURRED_SIDE: usize = MIN_SIDE;
/// Width of the separators between tiles in [`side_by_side`], in pixels.
pub const SEPARATOR: u32 = 2;
/// Width of the separator between a query and its neighbours, wider so rows read at a glance.
pub const QUERY_SEPARATOR: u32 = 6;

/// Training images compared per task: enough work to amortise rayon's overhead, small
/// enough that both cores stay busy until the end.
const TRAIN_CHUNK: usize = 32;

/// What can go wrong in a nearest-neighbour search; each variant names the bad input.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum NearestError {
    /// Queries and training images differ in size.
    #[error(
        "query images are {query}x{query} but training images are {train}x{train}; resize one set"
    )]
    SideMismatch { query: usize, train: usize },
    /// The training set has no images.
    #[error("the training set is empty, so no image can be near it")]
    EmptyTrainingSet,
    /// `k` is zero or larger than the training set.
    #[error("asked for {k} neighbours but the training set has {train} images; use 1..={train}")]
    BadK { k: usize, train: usize },
    /// The blurred space halves images down to 16x16, which needs a power-of-two side.
    #[error(
        "blurred comparison needs a power-of-two side of at least 16; images are {side}x{side}"
    )]
    BadSide { side: usize },
    /// The match lists do not belong to these queries and training images.
    #[error("match list {query} refers to training image {index}, but there are only {train}")]
    BadMatch {
        query: usize,
        index: usize,
        train: usize,
    },
    /// There is one match list per query image, and the counts differ.
    #[error("{matches} match lists were given for {queries} query images")]
    MatchCount { matches: usize, queries: usize },
    /// An image batch is malformed.
    #[error(transparent)]
    Images(#[from] SwdError),
}

/// Where distances are measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Space {
    /// Raw pixels: catches exact copies.
    Pixels,
    /// The 16x16 level of the binomial Gaussian pyramid (blur, halve, repeat): ignores fine
    /// texture and small shifts, so it also catches copies that differ only in detail.
    Blurred,
}

/// One training image close to a query.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Neighbour {
    /// Index into the training set.
    pub index: usize,
    /// Root-mean-square difference per value in the chosen space, on the [-1, 1] scale: the
    /// L2 distance divided by the square root of the number of values, so pixel and blurred
    /// distances (and any image size) read on the same scale.
    pub distance: f32,
}

/// Spread of a set of nearest distances.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Number of distances summarised.
    pub count: usize,
    /// Smallest distance.
    pub min: f32,
    /// 25th percentile.
    pub lower_quartile: f32,
    /// 50th percentile.
    pub median: f32,
    /// 75th percentile.
    pub upper_quartile: f32,
    /// Largest distance.
    pub max: f32,
    /// Arithmetic mean.
    pub mean: f32,
}

impl Summary {
    /// Summarises `distances` (quartiles interpolate between neighbouring values); `None`
    /// when there are none.
    pub fn of(distances: &[f32]) -> Option<Summary> {
        if distances.is_empty() {
            return None;
        }
        let mut sorted = distances.to_vec();
        sorted.sort_by(f32::total_cmp);
        let quantile = |p: f64| {
            let at = p * (sorted.len() - 1) as f64;
            let (low, high) = (at.floor() as usize, at.ceil() as usize);
            let weight = (at - low as f64) as f32;
            sorted[low] + (sorted[high] - sorted[low]) * weight
        };
        let mean = sorted.iter().map(|d| f64::from(*d)).sum::<f64>() / sorted.len() as f64;
        Some(Summary {
            count: sorted.len(),
            min: sorted[0],
            lower_quartile: quantile(0.25),
            median: quantile(0.5),
            upper_quartile: quantile(0.75),
            max: sorted[sorted.len() - 1],
            mean: mean as f32,
        })
    }
}

/// The `k` nearest training images of every query, closest first (ties go to the lower
/// index, so results never depend on thread timing).
pub fn nearest(
    queries: &Images,
    train: &Images,
    space: Space,
    k: usize,
) -> Result<Vec<Vec<Neighbour>>, NearestError> {
    check(queries, train)?;
    if k == 0 || k > train.count {
        return Err(NearestError::BadK {
            k,
            train: train.count,
        });
    }
    let query_features = features(queries, space)?;
    let train_features = features(train, space)?;
    let dim = query_features.len() / queries.count.max(1);

    let empty = || vec![Vec::<(f32, usize)>::new(); queries.count];
    let best = train_features
        .par_chunks(dim * TRAIN_CHUNK)
        .enumerate()
        .fold(empty, |mut best, (chunk, candidates)| {
            for (offset, candidate) in candidates.chunks_exact(dim).enumerate() {
                let index = chunk * TRAIN_CHUNK + offset;
                for (list, query) in best.iter_mut().zip(query_features.chunks_exact(dim)) {
                    offer(list, k, (squared_distance(query, candidate), index));
                }
            }
            best
        })
        .reduce(empty, |mut left, right| {
            for (list, other) in left.iter_mut().zip(right) {
                other.into_iter().for_each(|item| offer(list, k, item));
            }
            left
        });

    Ok(best
        .into_iter()
        .map(|list| {
            list.into_iter()
                .map(|(squared, index)| Neighbour {
                    index,
                    distance: (squared / dim as f32).sqrt(),
                })
                .collect()
        })
        .collect())
}

/// Distance from each query to its closest match, for [`Summary::of`].
pub fn nearest_distances(matches: &[Vec<Neighbour>]) -> Vec<f32> {
    matches
        .iter()
        .filter_map(|list| list.first().map(|n| n.distance))
        .collect()
}

/// Draws one row per query: the query, a wider white gap, then its first `k` matches from
/// `train`, with thin white lines between tiles.
pub fn side_by_side(
    queries: &Images,
    train: &Images,
    matches: &[Vec<Neighbour>],
    k: usize,
) -> Result<RgbImage, NearestError> {
    check(queries, train)?;
    if matches.len() != queries.count {
        return Err(NearestError::MatchCount {
            matches: matches.len(),
            queries: queries.count,
        });
    }
    for (query, list) in matches.iter().enumerate() {
        if let Some(bad) = list.iter().find(|n| n.index >= train.count) {
            return Err(NearestError::BadMatch {
                query,
                index: bad.index,
                train: train.count,
            });
        }
    }

    let side = queries.side as u32;
    let width = side * (1 + k as u32) + QUERY_SEPARATOR + SEPARATOR * k.saturating_sub(1) as u32;
    let height = (side + SEPARATOR) * queries.count as u32 - SEPARATOR.min(queries.count as u32);
    let mut sheet = RgbImage::from_pixel(width.max(1), height.max(1), Rgb([255, 255, 255]));
    for (row, list) in matches.iter().enumerate() {
        let y = row as u32 * (side + SEPARATOR);
        paste(&mut sheet, &queries.to_rgb8(row), 0, y);
        for (column, neighbour) in list.iter().take(k).enumerate() {
            let x = side + QUERY_SEPARATOR + column as u32 * (side + SEPARATOR);
            paste(&mut sheet, &train.to_rgb8(neighbour.index), x, y);
        }
    }
    Ok(sheet)
}

fn check(queries: &Images, train: &Images) -> Result<(), NearestError> {
    queries.check_len()?;
    train.check_len()?;
    if queries.side != train.side {
        return Err(NearestError::SideMismatch {
            query: queries.side,
            train: train.side,
        });
    }
    if train.count == 0 {
        return Err(NearestError::EmptyTrainingSet);
    }
    Ok(())
}

/// The values compared for each image, image after image.
fn features(images: &Images, space: Space) -> Result<Vec<f32>, NearestError> {
    match space {
        Space::Pixels => Ok(images.pixels.clone()),
        Space::Blurred => {
            let side = images.side;
            if side < BLURRED_SIDE || !side.is_power_of_two() {
                return Err(NearestError::BadSide { side });
            }
            let plane = side * side;
            let out: Vec<Vec<f32>> = images
                .pixels
                .par_chunks(plane)
                .map(|channel| {
                    let mut current = channel.to_vec();
                    let mut current_side = side;
                    while current_side > BLURRED_SIDE {
                        current = downsample(&current, current_side);
                        current_side /= 2;
                    }
                    current
                })
                .collect();
            Ok(out.concat())
        }
    }
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    // Eight partial sums vectorise; one running sum would serialise every addition.
    let mut partial = [0.0f32; 8];
    let (a_main, a_rest) = a.split_at(a.len() - a.len() % 8);
    let (b_main, b_rest) = b.split_at(a_main.len());
    for (x, y) in a_main.chunks_exact(8).zip(b_main.chunks_exact(8)) {
        for ((p, x), y) in partial.iter_mut().zip(x).zip(y) {
            let d = x - y;
            *p += d * d;
        }
    }
    let rest: f32 = a_rest
        .iter()
        .zip(b_rest)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    partial.iter().sum::<f32>() + rest
}

/// Keeps `list` as the `k` smallest (distance, index) pairs seen so far, in order.
fn offer(list: &mut Vec<(f32, usize)>, k: usize, item: (f32, usize)) {
    let before = |a: &(f32, usize), b: &(f32, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    if list.len() == k && list.last().is_some_and(|last| before(last, &item).is_le()) {
        return;
    }
    let at = list.partition_point(|existing| before(existing, &item).is_lt());
    list.insert(at, item);
    list.truncate(k);
}

fn paste(sheet: &mut RgbImage, tile: &RgbImage, x: u32, y: u32) {
    for (dx, dy, pixel) in tile.enumerate_pixels() {
        sheet.put_pixel(x + dx, y + dy, *pixel);
    }
}

/// Number of values per image in `space`, for callers sizing buffers or reports.
pub fn feature_len(side: usize, space: Space) -> usize {
    match space {
        Space::Pixels => CHANNELS * side * side,
        Space::Blurred => CHANNELS * BLURRED_SIDE * BLURRED_SIDE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use catgan_model::rng::SplitMix64;

    /// Images of soft random colour fields: noise blurred a few times, so the blurred space
    /// still has something to tell them apart by.
    fn images(count: usize, side: usize, seed: u64) -> Images {
        let mut rng = SplitMix64::new(seed);
        let mut pixels: Vec<f32> = (0..count * CHANNELS * side * side)
            .map(|_| (rng.next_f64() * 2.0 - 1.0) as f32)
            .collect();
        for channel in pixels.chunks_exact_mut(side * side) {
            let smooth = crate::swd::blur(channel, side);
            channel
                .iter_mut()
                .zip(smooth)
                .for_each(|(v, s)| *v = 0.3 * *v + 1.5 * s);
        }
        Images::new(count, side, pixels).unwrap()
    }

    fn jitter(images: &Images, amount: f32, seed: u64) -> Images {
        let mut rng = SplitMix64::new(seed);
        let pixels = images
            .pixels
            .iter()
            .map(|v| v + amount * (rng.next_f64() * 2.0 - 1.0) as f32)
            .collect();
        Images::new(images.count, images.side, pixels).unwrap()
    }

    #[test]
    fn training_image_finds_itself_at_distance_zero() {
        let train = images(40, 32, 1);
        let queries = train.select(&[0, 17, 39]);
        for space in [Space::Pixels, Space::Blurred] {
            let matches = nearest(&queries, &train, space, 3).unwrap();
            let found: Vec<usize> = matches.iter().map(|m| m[0].index).collect();
            assert_eq!(found, vec![0, 17, 39], "{space:?}");
            assert!(matches.iter().all(|m| m[0].distance == 0.0), "{space:?}");
            assert!(matches.iter().all(|m| m[1].distance > 0.05), "{space:?}");
            assert!(matches.iter().all(|m| m[1].distance <= m[2].distance));
        }
    }

    #[test]
    fn noised_copy_finds_its_original() {
        let train = images(60, 32, 2);
        let queries = jitter(&train.select(&[7, 42]), 0.05, 3);
        let matches = nearest(&queries, &train, Space::Pixels, 1).unwrap();
        assert_eq!(matches[0][0].index, 7);
        assert_eq!(matches[1][0].index, 42);
        // Uniform noise on [-0.05, 0.05] has an RMS of 0.05 / sqrt(3).
        let expected = 0.05 / 3f32.sqrt();
        assert!((matches[0][0].distance - expected).abs() < 0.05 * expected);
        let blurred = nearest(&queries, &train, Space::Blurred, 1).unwrap();
        assert_eq!((blurred[0][0].index, blurred[1][0].index), (7, 42));
        // Blurring averages the noise away, so the blurred distance is much smaller.
        assert!(blurred[0][0].distance < 0.3 * matches[0][0].distance);
    }

    #[test]
    fn copies_sit_closer_to_the_training_set_than_held_out_images() {
        let train = images(64, 32, 4);
        let copies = jitter(&train.select(&(0..16).collect::<Vec<_>>()), 0.1, 5);
        let held_out = images(16, 32, 6);
        let summary = |queries: &Images| {
            let matches = nearest(queries, &train, Space::Pixels, 1).unwrap();
            Summary::of(&nearest_distances(&matches)).unwrap()
        };
        let (copied, fresh) = (summary(&copies), summary(&held_out));
        assert_eq!(copied.count, 16);
        assert!(
            copied.max < fresh.min,
            "copies {copied:?} vs held out {fresh:?}"
        );
        assert!(copied.min <= copied.median && copied.median <= copied.max);
    }

    #[test]
    fn summary_interpolates_quartiles() {
        let summary = Summary::of(&[4.0, 1.0, 3.0, 2.0, 5.0]).unwrap();
        assert_eq!(
            (summary.min, summary.lower_quartile, summary.median),
            (1.0, 2.0, 3.0)
        );
        assert_eq!(
            (summary.upper_quartile, summary.max, summary.mean),
            (4.0, 5.0, 3.0)
        );
        let even = Summary::of(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!((even.lower_quartile, even.median), (1.75, 2.5));
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn offer_keeps_the_k_smallest_in_order() {
        let mut list = Vec::new();
        for (i, d) in [5.0, 1.0, 4.0, 1.0, 3.0, 0.5].into_iter().enumerate() {
            offer(&mut list, 3, (d, i));
        }
        assert_eq!(list, vec![(0.5, 5), (1.0, 1), (1.0, 3)]);
    }

    #[test]
    fn blurred_features_are_sixteen_pixels_a_side() {
        let flat = Images::new(2, 64, vec![0.5; 2 * 3 * 64 * 64]).unwrap();
        let features = features(&flat, Space::Blurred).unwrap();
        assert_eq!(features.len(), 2 * feature_len(64, Space::Blurred));
        assert!(features.iter().all(|v| (v - 0.5).abs() < 1e-6));
    }

    #[test]
    fn side_by_side_lays_out_queries_and_matches() {
        let train = images(10, 16, 7);
        let queries = train.select(&[3, 8]);
        let matches = nearest(&queries, &train, Space::Pixels, 2).unwrap();
        let sheet = side_by_side(&queries, &train, &matches, 2).unwrap();
        assert_eq!(
            sheet.dimensions(),
            (16 * 3 + QUERY_SEPARATOR + SEPARATOR, 16 * 2 + SEPARATOR)
        );

        // Row 2 starts with query 8; its best match (itself) follows after the wide gap.
        let row = 16 + SEPARATOR;
        assert_eq!(
            sheet.get_pixel(5, row + 4),
            queries.to_rgb8(1).get_pixel(5, 4)
        );
        let first = 16 + QUERY_SEPARATOR;
        assert_eq!(
            sheet.get_pixel(first + 5, row + 4),
            train.to_rgb8(8).get_pixel(5, 4)
        );
        let second = first + 16 + SEPARATOR;
        let other = matches[1][1].index;
        assert_eq!(
            sheet.get_pixel(second, row),
            train.to_rgb8(other).get_pixel(0, 0)
        );
        assert_eq!(*sheet.get_pixel(16, 0), Rgb([255, 255, 255]));
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let train = images(4, 32, 1);
        let small = images(1, 16, 1);
        assert_eq!(
            nearest(&small, &train, Space::Pixels, 1).unwrap_err(),
            NearestError::SideMismatch {
                query: 16,
                train: 32
            }
        );
        assert_eq!(
            nearest(&train, &train, Space::Pixels, 5).unwrap_err(),
            NearestError::BadK { k: 5, train: 4 }
        );
        let odd = Images::new(1, 24, vec![0.0; 3 * 24 * 24]).unwrap();
        assert_eq!(
            nearest(&odd, &odd, Space::Blurred, 1).unwrap_err(),
            NearestError::BadSide { side: 24 }
        );
        let bogus = vec![vec![Neighbour {
            index: 9,
            distance: 0.0,
        }]];
        assert!(matches!(
            side_by_side(&train.select(&[0]), &train, &bogus, 1),
            Err(NearestError::BadMatch { index: 9, .. })
        ));
    }

    #[test]
    #[ignore = "needs ../shared/data/cats64 and a release build; prints the timing"]
    fn real_cats_timing() {
        let Some(cats) = crate::swd::tests::load_cats(usize::MAX) else {
            return;
        };
        // Horizontally mirrored cats: real-looking queries that are not in the set.
        let mut queries = cats.select(&(0..64).collect::<Vec<_>>());
        for line in queries.pixels.chunks_exact_mut(cats.side) {
            line.reverse();
        }
        for space in [Space::Pixels, Space::Blurred] {
            let start = std::time::Instant::now();
            let matches = nearest(&queries, &cats, space, 3).unwrap();
            let took = start.elapsed().as_secs_f64();
            let summary = Summary::of(&nearest_distances(&matches)).unwrap();
            eprintln!(
                "64 vs {} cats, {space:?}: {took:.2}s, {summary:?}",
                cats.count
            );
        }
    }
}
