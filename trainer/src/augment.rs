//! Differentiable augmentation of everything the discriminator sees (DiffAugment, Zhao et al.
//! 2020): real and generated batches go through the same random colour changes, shifts and
//! cut-out squares before the discriminator judges them, and the generator's gradient flows
//! back through them. The discriminator can then no longer memorise the few thousand training
//! cats, while the generator, judged only through the same transformations, is still pushed
//! toward the unaugmented images (each transformation is applied to both sides alike).
//!
//! Every random choice comes from the caller's generator, so a step's augmentation is part of
//! the step's deterministic randomness and a resumed run continues exactly.

use burn::prelude::*;
use catgan_model::rng::SplitMix64;
use serde::{Deserialize, Serialize};

/// One family of transformations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Augment {
    /// Per image: brightness shifted by up to ±0.5, saturation scaled by 0-2, contrast by
    /// 0.5-1.5 (pixel values in [-1, 1]).
    Color,
    /// Per image: shifted by up to an eighth of its side in each direction, filled with zeros
    /// (mid grey).
    Translation,
    /// Per image: a square of half its side, anywhere (partly outside), set to zero.
    Cutout,
}

impl Augment {
    fn name(self) -> &'static str {
        match self {
            Augment::Color => "color",
            Augment::Translation => "translation",
            Augment::Cutout => "cutout",
        }
    }
}

/// Parses a policy such as `color,translation,cutout`; `none` is the empty policy.
pub fn parse_policy(text: &str) -> Result<Vec<Augment>, String> {
    if text.trim() == "none" {
        return Ok(Vec::new());
    }
    let mut policy = Vec::new();
    for part in text.split(',').map(str::trim) {
        let augment = [Augment::Color, Augment::Translation, Augment::Cutout]
            .into_iter()
            .find(|a| a.name() == part)
            .ok_or_else(|| {
                format!("unknown augmentation `{part}` (choose from color, translation, cutout, or none)")
            })?;
        if policy.contains(&augment) {
            return Err(format!("augmentation `{part}` is listed twice"));
        }
        policy.push(augment);
    }
    Ok(policy)
}

/// The policy as [`parse_policy`] reads it.
pub fn policy_name(policy: &[Augment]) -> String {
    if policy.is_empty() {
        return "none".to_string();
    }
    policy
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// `images` (`[n, channels, height, width]`, values in [-1, 1]) through every transformation of
/// `policy`, in order, with fresh random parameters per image.
pub fn augment(images: Tensor<4>, policy: &[Augment], rng: &mut SplitMix64) -> Tensor<4> {
    policy.iter().fold(images, |images, augment| match augment {
        Augment::Color => color(images, rng),
        Augment::Translation => translate(images, rng),
        Augment::Cutout => cutout(images, rng),
    })
}

/// One uniform draw in `[low, high)` per image, shaped `[n, 1, 1, 1]`.
fn per_image(rng: &mut SplitMix64, n: usize, low: f64, high: f64, device: &Device) -> Tensor<4> {
    let values: Vec<f32> = (0..n)
        .map(|_| (low + (high - low) * rng.next_f64()) as f32)
        .collect();
    Tensor::from_data(TensorData::new(values, [n, 1, 1, 1]), device)
}

fn color(images: Tensor<4>, rng: &mut SplitMix64) -> Tensor<4> {
    let device = images.device();
    let n = images.dims()[0];
    let brightness = per_image(rng, n, -0.5, 0.5, &device);
    let images = images + brightness;
    let saturation = per_image(rng, n, 0.0, 2.0, &device);
    let grey = images.clone().mean_dim(1);
    let images = (images - grey.clone()) * saturation + grey;
    let contrast = per_image(rng, n, 0.5, 1.5, &device);
    let mean = images.clone().mean_dims(&[1, 2, 3]);
    (images - mean.clone()) * contrast + mean
}

/// Shifts each image by whole pixels with one gather: every output pixel reads its source
/// pixel, and those whose source lies outside the image are then zeroed.
fn translate(images: Tensor<4>, rng: &mut SplitMix64) -> Tensor<4> {
    let device = images.device();
    let [n, channels, height, width] = images.dims();
    let reach = |side: usize| ((side as f64) / 8.0 + 0.5) as i64;
    let mut sources = Vec::with_capacity(n * channels * height * width);
    let mut inside = Vec::with_capacity(n * height * width);
    for _ in 0..n {
        let mut shift = |side: usize| {
            let reach = reach(side);
            rng.below((2 * reach + 1) as u64) as i64 - reach
        };
        let (dy, dx) = (shift(height), shift(width));
        let mut image_sources = Vec::with_capacity(height * width);
        for y in 0..height as i64 {
            for x in 0..width as i64 {
                let (sy, sx) = (y - dy, x - dx);
                let within = (0..height as i64).contains(&sy) && (0..width as i64).contains(&sx);
                inside.push(if within { 1f32 } else { 0.0 });
                let sy = sy.clamp(0, height as i64 - 1);
                let sx = sx.clamp(0, width as i64 - 1);
                image_sources.push(sy * width as i64 + sx);
            }
        }
        for _ in 0..channels {
            sources.extend_from_slice(&image_sources);
        }
    }
    let sources = Tensor::<3, Int>::from_data(
        TensorData::new(sources, [n, channels, height * width]),
        &device,
    );
    let inside = Tensor::<4>::from_data(TensorData::new(inside, [n, 1, height, width]), &device);
    images
        .reshape([n, channels, height * width])
        .gather(2, sources)
        .reshape([n, channels, height, width])
        * inside
}

fn cutout(images: Tensor<4>, rng: &mut SplitMix64) -> Tensor<4> {
    let device = images.device();
    let [n, _, height, width] = images.dims();
    let mut keep = vec![1f32; n * height * width];
    for image in keep.chunks_mut(height * width) {
        // The square's centre may lie anywhere in the image, so squares near an edge are cut.
        let mut span = |side: usize| {
            let size = (side as f64 / 2.0 + 0.5) as i64;
            let centre = rng.below(side as u64) as i64;
            let start = (centre - size / 2).max(0) as usize;
            let end = ((centre - size / 2 + size).min(side as i64)) as usize;
            start..end
        };
        let (rows, columns) = (span(height), span(width));
        for y in rows {
            image[y * width + columns.start..y * width + columns.end].fill(0.0);
        }
    }
    let keep = Tensor::<4>::from_data(TensorData::new(keep, [n, 1, height, width]), &device);
    images * keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// A `[n, 3, side, side]` batch whose pixels are all different.
    fn ramp(n: usize, side: usize, device: &Device) -> Tensor<4> {
        let count = n * 3 * side * side;
        let values: Vec<f32> = (0..count).map(|i| i as f32 / count as f32).collect();
        Tensor::from_data(TensorData::new(values, [n, 3, side, side]), device)
    }

    #[test]
    fn policies_parse_and_print_back() {
        let policy = parse_policy("color,translation,cutout").unwrap();
        assert_eq!(
            policy,
            [Augment::Color, Augment::Translation, Augment::Cutout]
        );
        assert_eq!(policy_name(&policy), "color,translation,cutout");
        assert_eq!(parse_policy("none").unwrap(), []);
        assert_eq!(policy_name(&[]), "none");
        let error = parse_policy("color,rotation").unwrap_err();
        assert!(error.contains("rotation"), "{error}");
        assert!(parse_policy("cutout,cutout").is_err());
    }

    #[test]
    fn translation_moves_whole_images_and_fills_with_zeros() {
        let device = Device::flex();
        let side = 16;
        let input = ramp(8, side, &device);
        let original = values(input.clone());
        let output = values(translate(input, &mut SplitMix64::new(5)));
        let plane = side * side;
        let mut shifted_any = false;
        for image in 0..8 {
            // Find the shift from one pixel known to survive any shift of at most 2.
            let at =
                |v: &[f32], c: usize, y: usize, x: usize| v[(image * 3 + c) * plane + y * side + x];
            let centre = at(&output, 0, 8, 8);
            let (sy, sx) = (0..side)
                .flat_map(|y| (0..side).map(move |x| (y, x)))
                .find(|&(y, x)| at(&original, 0, y, x) == centre)
                .expect("the centre pixel comes from the same image");
            let (dy, dx) = (8 - sy as i64, 8 - sx as i64);
            assert!(
                dy.abs() <= 2 && dx.abs() <= 2,
                "shift {dy},{dx} beyond an eighth"
            );
            shifted_any |= dy != 0 || dx != 0;
            for c in 0..3 {
                for y in 0..side as i64 {
                    for x in 0..side as i64 {
                        let (sy, sx) = (y - dy, x - dx);
                        let expected =
                            if (0..side as i64).contains(&sy) && (0..side as i64).contains(&sx) {
                                at(&original, c, sy as usize, sx as usize)
                            } else {
                                0.0
                            };
                        assert_eq!(at(&output, c, y as usize, x as usize), expected);
                    }
                }
            }
        }
        assert!(shifted_any, "eight images, none shifted");
    }

    #[test]
    fn cutout_zeroes_one_square_of_at_most_half_the_side_per_image() {
        let device = Device::flex();
        let side = 16;
        let input = ramp(8, side, &device) + 1.0;
        let output = values(cutout(input, &mut SplitMix64::new(9)));
        let plane = side * side;
        for image in 0..8 {
            let zeroed: Vec<(usize, usize)> = (0..plane)
                .filter(|p| output[image * 3 * plane + p] == 0.0)
                .map(|p| (p / side, p % side))
                .collect();
            assert!(!zeroed.is_empty(), "image {image} has no cut-out square");
            let rows = zeroed.iter().map(|p| p.0);
            let columns = zeroed.iter().map(|p| p.1);
            let height = rows.clone().max().unwrap() - rows.min().unwrap() + 1;
            let width = columns.clone().max().unwrap() - columns.min().unwrap() + 1;
            assert!(height <= 8 && width <= 8, "{height}x{width}");
            assert_eq!(
                zeroed.len(),
                height * width,
                "image {image}: not a rectangle"
            );
            for c in 1..3 {
                for &(y, x) in &zeroed {
                    assert_eq!(output[(image * 3 + c) * plane + y * side + x], 0.0);
                }
            }
        }
    }

    #[test]
    fn colour_changes_each_image_differently_and_keeps_grey_grey() {
        let device = Device::flex();
        // Grey images (equal channels) stay grey whatever the saturation.
        let grey = Tensor::<4>::full([4, 3, 8, 8], 0.25, &device);
        let output = values(color(grey, &mut SplitMix64::new(3)));
        let plane = 64;
        let mut levels = Vec::new();
        for image in 0..4 {
            let first = output[image * 3 * plane];
            assert!(
                output[image * 3 * plane..(image + 1) * 3 * plane]
                    .iter()
                    .all(|v| (v - first).abs() < 1e-5),
                "image {image} is no longer uniform grey"
            );
            assert!(
                (first - 0.25).abs() <= 0.5 + 1e-5,
                "brightness shift {first}"
            );
            levels.push(first);
        }
        assert!(
            levels.windows(2).any(|w| (w[0] - w[1]).abs() > 1e-3),
            "every image got the same change: {levels:?}"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_augmentation_and_gradients_flow_through_it() {
        let device = Device::flex();
        let policy = parse_policy("color,translation,cutout").unwrap();
        let a = augment(ramp(4, 8, &device), &policy, &mut SplitMix64::new(1));
        let b = augment(ramp(4, 8, &device), &policy, &mut SplitMix64::new(1));
        let c = augment(ramp(4, 8, &device), &policy, &mut SplitMix64::new(2));
        assert_eq!(values(a.clone()), values(b));
        assert_ne!(values(a), values(c));

        let autodiff = device.autodiff();
        let input = ramp(4, 8, &autodiff).require_grad();
        let output = augment(input.clone(), &policy, &mut SplitMix64::new(1));
        let gradients = output.sum().backward();
        let gradient = input.grad(&gradients).expect("the input has a gradient");
        let gradient = gradient.into_data().try_to_vec::<f32>().unwrap();
        assert!(
            gradient.iter().any(|g| g.abs() > 0.1),
            "no gradient reaches the images"
        );
    }
}
