//! Fits a progressive generator's lower-stage RGB heads to its final images, in closed form.
//!
//! Each stage's `to_rgb` is a 1x1 convolution: a linear map from that stage's features to
//! colours. Once a stage has faded out it gets no adversarial gradient, and training's running
//! least-squares fit cannot keep up while the layers below change quickly. Export therefore
//! solves the least-squares problem exactly: for many latents, each lower head is set to the
//! linear map that best reproduces the final image averaged down to that stage's side. The
//! final stage is untouched, so the exported generator draws exactly what training drew.

use anyhow::{Result, anyhow, bail};
use burn::prelude::*;
use catgan_model::blocks::downsample;
use catgan_model::latent::latents_for_seeds;
use catgan_model::progan::ProganGenerator;

/// Latents the fit is computed from (seeds from this base on).
const FIT_SEED: u64 = 1 << 40;

/// Small ridge term, relative to the mean diagonal, that keeps the normal equations solvable.
const RIDGE: f64 = 1e-6;

/// Refits every lower stage's head on `count` latents; returns the largest root-mean-square
/// error of a head against its target, on the [-1, 1] scale.
pub fn fit_heads(
    generator: &mut ProganGenerator,
    latent_size: usize,
    count: usize,
    device: &Device,
) -> Result<f64> {
    let last = generator.stages() - 1;
    let latents = latents_for_seeds(FIT_SEED, count, latent_size, device);
    let features = generator.features(latents, last);
    let mut target = generator.to_rgb(last, features[last].clone());
    let mut worst = 0f64;
    for stage in (0..last).rev() {
        target = downsample(target);
        let (weight, bias, error) = solve(features[stage].clone(), target.clone())?;
        let c = features[stage].dims()[1];
        generator.set_to_rgb(
            stage,
            Tensor::from_data(TensorData::new(weight, [3, c]), device),
            Tensor::from_data(TensorData::new(bias, [3]), device),
        );
        worst = worst.max(error);
    }
    Ok(worst)
}

/// Least squares from `[n, c, h, w]` features to `[n, 3, h, w]` colours: returns the `[3, c]`
/// weights (row-major), the bias and the root-mean-square error of the fit.
fn solve(features: Tensor<4>, target: Tensor<4>) -> Result<(Vec<f32>, Vec<f32>, f64)> {
    let [n, c, h, w] = features.dims();
    let rows = n * h * w;
    // Pixels as rows, features (plus a constant 1 for the bias) as columns.
    let x = features.swap_dims(1, 3).reshape([rows, c]);
    let ones = Tensor::<2>::ones([rows, 1], &x.device());
    let x = Tensor::cat(vec![x, ones], 1);
    let y = target.swap_dims(1, 3).reshape([rows, 3]);
    let read = |t: Tensor<2>| -> Result<Vec<f64>> {
        let values = t
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow!("{e:?}"))?;
        Ok(values.into_iter().map(f64::from).collect())
    };
    let k = c + 1;
    let mut gram = read(x.clone().transpose().matmul(x.clone()))?;
    let mut rhs = read(x.clone().transpose().matmul(y.clone()))?;
    let ridge = RIDGE * (0..k).map(|i| gram[i * k + i]).sum::<f64>() / k as f64;
    for i in 0..k {
        gram[i * k + i] += ridge;
    }
    gaussian_elimination(&mut gram, &mut rhs, k, 3)?;
    // rhs now holds the [k, 3] solution.
    let weight: Vec<f32> = (0..3)
        .flat_map(|o| (0..c).map(move |i| (o, i)))
        .map(|(o, i)| rhs[i * 3 + o] as f32)
        .collect();
    let bias: Vec<f32> = (0..3).map(|o| rhs[c * 3 + o] as f32).collect();
    let solution = Tensor::<2>::from_data(
        TensorData::new(rhs.iter().map(|&v| v as f32).collect::<Vec<_>>(), [k, 3]),
        &x.device(),
    );
    let residual = (x.matmul(solution) - y).powi_scalar(2).mean();
    let error = f64::from(residual.into_scalar::<f32>()).sqrt();
    Ok((weight, bias, error))
}

/// Solves `a * x = b` in place for `a` `[k, k]` and `b` `[k, m]` (row-major), with partial
/// pivoting; `b` ends as `x`.
fn gaussian_elimination(a: &mut [f64], b: &mut [f64], k: usize, m: usize) -> Result<()> {
    for col in 0..k {
        let pivot = (col..k)
            .max_by(|&i, &j| a[i * k + col].abs().total_cmp(&a[j * k + col].abs()))
            .expect("rows remain");
        if a[pivot * k + col].abs() < 1e-12 {
            bail!("the head's normal equations are singular");
        }
        if pivot != col {
            for j in 0..k {
                a.swap(pivot * k + j, col * k + j);
            }
            for j in 0..m {
                b.swap(pivot * m + j, col * m + j);
            }
        }
        for row in 0..k {
            if row == col {
                continue;
            }
            let factor = a[row * k + col] / a[col * k + col];
            if factor == 0.0 {
                continue;
            }
            for j in col..k {
                a[row * k + j] -= factor * a[col * k + j];
            }
            for j in 0..m {
                b[row * m + j] -= factor * b[col * m + j];
            }
        }
    }
    for row in 0..k {
        let diagonal = a[row * k + row];
        for j in 0..m {
            b[row * m + j] /= diagonal;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use catgan_model::progan::ProganConfig;

    #[test]
    fn gaussian_elimination_solves_a_known_system() {
        // [2 1; 1 3] x = [3 5; 5 10] -> x = [0.8 1; 1.4 3]
        let mut a = vec![2.0, 1.0, 1.0, 3.0];
        let mut b = vec![3.0, 5.0, 5.0, 10.0];
        gaussian_elimination(&mut a, &mut b, 2, 2).unwrap();
        let expected = [0.8, 1.0, 1.4, 3.0];
        for (got, want) in b.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{b:?}");
        }
    }

    #[test]
    fn fitted_heads_reproduce_the_downscaled_final_image_better_than_fresh_ones() {
        let device = Device::flex();
        let config = ProganConfig::new()
            .with_latent_size(8)
            .with_resolution(16)
            .with_channel_base(64)
            .with_max_channels(8);
        let mut generator = config.init_generator(&device);
        let latents = latents_for_seeds(5, 4, 8, &device);
        let error = |g: &ProganGenerator| {
            let full = g.forward_growing(latents.clone(), catgan_model::Growth::full(2));
            let target = downsample(full.clone());
            let features = g.features(latents.clone(), 2);
            let head = g.to_rgb(1, features[1].clone());
            let rmse: f32 = (head - target.clone())
                .powi_scalar(2)
                .mean()
                .sqrt()
                .into_scalar();
            // The best any head could do on these very latents: least squares fitted to them.
            let (_, _, best) = solve(features[1].clone(), target).unwrap();
            (f64::from(rmse), best, full)
        };
        let (before, best, full_before) = error(&generator);
        let worst = fit_heads(&mut generator, 8, 64, &device).unwrap();
        let (after, _, full_after) = error(&generator);
        // Fitted on other latents, the head closes nearly all of the fresh head's gap to the
        // best possible one (how much a fresh, random head misses by varies from run to run).
        assert!(
            after - best < (before - best) / 4.0,
            "head error {before} -> {after}, best possible {best}"
        );
        assert!(worst.is_finite() && worst < before, "{worst}");
        // The final stage draws exactly what it drew before.
        let same: f32 = (full_before - full_after).abs().max().into_scalar();
        assert_eq!(same, 0.0);
    }
}
