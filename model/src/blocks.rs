//! Small building blocks shared by the residual and progressive networks: resampling, the
//! Progressive GAN paper's pixel-wise feature normalisation and minibatch standard deviation,
//! and layers with an equalised learning rate.

use burn::module::Param;
use burn::nn::Initializer;
use burn::prelude::*;
use burn::tensor::module::{avg_pool2d, conv2d, interpolate};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, InterpolateMode, InterpolateOptions};

/// Doubles the side of a feature map by repeating each pixel in a 2x2 square (nearest
/// neighbour). At an exact factor of two, nearest interpolation copies pixels exactly on every
/// backend; Burn's CPU backend computes it (and its gradient) three times faster than the same
/// copy written as reshape and expand.
pub fn upsample(x: Tensor<4>) -> Tensor<4> {
    let options = InterpolateOptions::new(InterpolateMode::Nearest).with_scale_factor([2.0, 2.0]);
    interpolate(x, options)
}

/// Halves the side of a feature map by averaging each 2x2 square.
pub fn downsample(x: Tensor<4>) -> Tensor<4> {
    avg_pool2d(x, AvgPoolOptions::new([2, 2]))
}

/// Linear interpolation `a + (b - a) * t`: `a` at `t = 0`, `b` at `t = 1`.
pub fn lerp(a: Tensor<4>, b: Tensor<4>, t: f32) -> Tensor<4> {
    if t <= 0.0 {
        return a;
    }
    if t >= 1.0 {
        return b;
    }
    a.clone() + (b - a).mul_scalar(t)
}

/// Small constant that keeps the normalisations finite on all-zero inputs.
const EPSILON: f64 = 1e-8;

/// Pixel-wise feature normalisation: scales each pixel's feature vector to unit root mean
/// square, so that no feature magnitude can escalate in the generator.
pub fn pixel_norm(x: Tensor<4>) -> Tensor<4> {
    let rms = x
        .clone()
        .powi_scalar(2)
        .mean_dim(1)
        .add_scalar(EPSILON)
        .sqrt();
    x / rms
}

/// Appends one feature map holding the mean standard deviation of the features across each
/// group of `group` images, so the discriminator can tell a varied batch from a collapsed one.
/// A batch smaller than the group makes one group; a larger batch that the group size does not
/// divide (the last of a scoring pass) is grouped by their greatest common divisor.
pub fn minibatch_stddev(x: Tensor<4>, group: usize) -> Tensor<4> {
    let [batch, _, height, width] = x.dims();
    // Every feature has as many positions, so the mean of the per-feature means is the mean
    // over features and positions.
    let feature = feature_deviations(x.clone(), group)
        .mean_dim(1)
        .reshape([batch, 1, 1, 1])
        .expand([batch, 1, height, width]);
    Tensor::cat(vec![x, feature], 1)
}

/// Per image, each feature's standard deviation across the image's group, averaged over
/// positions: `[batch, channels]`. Groups are formed as in [`minibatch_stddev`].
pub fn feature_deviations(x: Tensor<4>, group: usize) -> Tensor<2> {
    let [batch, channels, height, width] = x.dims();
    let group = gcd(batch, group.min(batch).max(1));
    let groups = batch / group;
    // Image i belongs to group i % groups, as in the paper's reference code.
    let grouped = x.reshape([group, groups, channels, height * width]);
    let centred = grouped.clone() - grouped.mean_dim(0);
    centred
        .powi_scalar(2)
        .mean_dim(0)
        .add_scalar(EPSILON)
        .sqrt()
        .mean_dim(3)
        .reshape([1, groups, channels])
        .expand([group, groups, channels])
        .reshape([batch, channels])
}

/// Per image, the log power spectrum of its grey levels (the mean of its channels), averaged
/// over squares of `pool` by `pool` frequencies and centred on the image's own mean:
/// `[batch, channels, side, side]` to `[batch, (side / pool)^2]`.
///
/// The power at a frequency does not change when the image is shifted (circularly), so this
/// sees a texture of the wrong period or direction in each image whether or not the images
/// were translated; a convolution stack has to learn a detector for each such frequency. The
/// two-dimensional discrete Fourier transform is two products with `side`-by-`side` cosine and
/// sine matrices, which every backend differentiates. Centring drops the overall contrast, so
/// what remains is how the power is spread over the frequencies.
pub fn log_spectrum(images: Tensor<4>, pool: usize) -> Tensor<2> {
    let [batch, _, side, width] = images.dims();
    assert_eq!(side, width, "log_spectrum expects square images");
    assert!(
        pool > 0 && side.is_multiple_of(pool),
        "the pool ({pool}) must divide the side ({side})"
    );
    let device = images.device();
    let (cos, sin) = fourier_matrices(side, &device);
    let grey = images.mean_dim(1).reshape([batch * side, side]);
    // Along each row: x (C - iS) = a - ib.
    let a = grey.clone().matmul(cos.clone());
    let b = grey.matmul(sin.clone());
    // Then along each column, on the transposed rows: (a - ib)^T (C - iS).
    let transpose = |x: Tensor<2>| {
        x.reshape([batch, side, side])
            .swap_dims(1, 2)
            .reshape([batch * side, side])
    };
    let (a, b) = (transpose(a), transpose(b));
    let real = a.clone().matmul(cos.clone()) - b.clone().matmul(sin.clone());
    let imaginary = a.matmul(sin) + b.matmul(cos);
    // Transposed back: rows are vertical frequencies, columns horizontal ones.
    let power = (real.powi_scalar(2) + imaginary.powi_scalar(2))
        .reshape([batch, side, side])
        .swap_dims(1, 2)
        .reshape([batch, 1, side, side]);
    let cells = side / pool;
    let log = avg_pool2d(power, AvgPoolOptions::new([pool, pool]))
        .add_scalar(SPECTRUM_FLOOR)
        .log()
        .reshape([batch, cells * cells]);
    log.clone() - log.mean_dim(1)
}

/// Added to the pooled power before its logarithm, so that an image without detail (all one
/// grey) gives finite values and gradients. Pooled over 4x4 frequencies, the finest cell of a
/// real 64x64 cat holds a power of about 16 (the median over 256 training cats, on the [-1, 1]
/// scale, transform unnormalised), and no cell of those 256 less than 0.09.
const SPECTRUM_FLOOR: f64 = 1e-4;

/// The cosine and sine matrices of the `n`-point discrete Fourier transform: entry (j, k) is
/// cos(2 pi j k / n), resp. sin.
fn fourier_matrices(n: usize, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let angle = |j: usize, k: usize| 2.0 * std::f64::consts::PI * ((j * k) % n) as f64 / n as f64;
    let table = |f: fn(f64) -> f64| {
        let values: Vec<f32> = (0..n * n).map(|i| f(angle(i / n, i % n)) as f32).collect();
        Tensor::from_data(TensorData::new(values, [n, n]), device)
    };
    (table(f64::cos), table(f64::sin))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Weights of the equalised-learning-rate layers start as standard normal.
fn unit_normal() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 1.0,
    }
}

/// He's constant `gain / sqrt(fan_in)`: the factor equalised layers apply to their weights at
/// run time, so that Adam's step is the same relative size for every layer.
pub fn he_scale(fan_in: usize, gain: f64) -> f64 {
    gain / (fan_in as f64).sqrt()
}

/// The gain for layers followed by a (leaky) ReLU.
pub const RELU_GAIN: f64 = std::f64::consts::SQRT_2;

/// A square convolution with stride 1 and "same" padding whose weights are stored as unit
/// normals and scaled by [`he_scale`] in every forward pass.
#[derive(Module, Debug)]
pub struct EqConv2d {
    weight: Param<Tensor<4>>,
    bias: Param<Tensor<1>>,
    gain: f64,
}

impl EqConv2d {
    /// A `kernel x kernel` convolution from `channels[0]` to `channels[1]` features.
    pub fn new(channels: [usize; 2], kernel: usize, gain: f64, device: &Device) -> Self {
        let [input, output] = channels;
        Self {
            weight: unit_normal().init([output, input, kernel, kernel], device),
            bias: Initializer::Zeros.init([output], device),
            gain,
        }
    }

    /// The factor applied to the stored weights.
    pub fn scale(&self) -> f64 {
        let [_, input, kernel, _] = self.weight.dims();
        he_scale(input * kernel * kernel, self.gain)
    }

    /// The same layer computing with `weight` (as applied, after scaling) and `bias`.
    pub fn with_values(self, weight: Tensor<4>, bias: Tensor<1>) -> Self {
        assert_eq!(weight.dims(), self.weight.dims(), "weight shape");
        let stored = weight.div_scalar(self.scale());
        Self {
            weight: Param::from_tensor(stored),
            bias: Param::from_tensor(bias),
            gain: self.gain,
        }
    }

    /// Applies the convolution.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, kernel, _] = self.weight.dims();
        let pad = kernel / 2;
        let options = ConvOptions::new([1, 1], [pad, pad], [1, 1], 1);
        let weight = self.weight.val().mul_scalar(self.scale());
        conv2d(x, weight, Some(self.bias.val()), options)
    }
}

/// A fully connected layer with an equalised learning rate (see [`EqConv2d`]).
#[derive(Module, Debug)]
pub struct EqLinear {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
    gain: f64,
}

impl EqLinear {
    /// A layer from `features[0]` to `features[1]` values.
    pub fn new(features: [usize; 2], gain: f64, device: &Device) -> Self {
        Self {
            weight: unit_normal().init(features, device),
            bias: Initializer::Zeros.init([features[1]], device),
            gain,
        }
    }

    /// The factor applied to the stored weights.
    pub fn scale(&self) -> f64 {
        he_scale(self.weight.dims()[0], self.gain)
    }

    /// Number of outputs.
    pub fn output_features(&self) -> usize {
        self.weight.dims()[1]
    }

    /// `[batch, in]` to `[batch, out]`.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let weight = self.weight.val().mul_scalar(self.scale());
        x.matmul(weight) + self.bias.val().unsqueeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn ramp(shape: [usize; 4], device: &Device) -> Tensor<4> {
        let count = shape.iter().product::<usize>();
        Tensor::<1, Int>::arange(0..count as i64, device)
            .float()
            .reshape(shape)
    }

    /// The pooled, centred log power of a naive O(n^4) transform of one grey image.
    fn naive_log_spectrum(grey: &[f64], n: usize, pool: usize) -> Vec<f64> {
        let cells = n / pool;
        let mut pooled = vec![0.0; cells * cells];
        for (u, v) in (0..n).flat_map(|u| (0..n).map(move |v| (u, v))) {
            let (mut re, mut im) = (0.0, 0.0);
            for (y, x) in (0..n).flat_map(|y| (0..n).map(move |x| (y, x))) {
                let angle = -2.0 * std::f64::consts::PI * ((u * y + v * x) as f64) / n as f64;
                re += grey[y * n + x] * angle.cos();
                im += grey[y * n + x] * angle.sin();
            }
            pooled[(u / pool) * cells + v / pool] += (re * re + im * im) / (pool * pool) as f64;
        }
        let log: Vec<f64> = pooled.iter().map(|p| (p + SPECTRUM_FLOOR).ln()).collect();
        let mean = log.iter().sum::<f64>() / log.len() as f64;
        log.iter().map(|l| l - mean).collect()
    }

    #[test]
    fn log_spectrum_matches_a_naive_transform_and_ignores_circular_shifts() {
        let device = Device::flex();
        let (n, pool) = (8, 2);
        let images = Tensor::<4>::random([2, 3, n, n], Distribution::Uniform(-1.0, 1.0), &device);
        let got = values(log_spectrum(images.clone(), pool));
        let pixels = values(images.clone());
        for image in 0..2 {
            let grey: Vec<f64> = (0..n * n)
                .map(|i| {
                    (0..3)
                        .map(|c| pixels[(image * 3 + c) * n * n + i] as f64)
                        .sum::<f64>()
                        / 3.0
                })
                .collect();
            let want = naive_log_spectrum(&grey, n, pool);
            let cells = want.len();
            for (g, w) in got[image * cells..(image + 1) * cells].iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-3, "{g} against {w}");
            }
        }
        // Shifted by 3 rows and 5 columns, wrapping around: the same power everywhere.
        let shifted = images.roll(&[3, 5], &[2, 3]);
        let moved = values(log_spectrum(shifted, pool));
        for (a, b) in got.iter().zip(&moved) {
            assert!((a - b).abs() < 1e-3, "{a} against {b} after a shift");
        }
        // A texture of another period moves the power to other cells.
        let stripes = Tensor::<4>::from_data(
            TensorData::new(
                (0..n * n)
                    .map(|i| if (i % n) % 2 == 0 { 1.0f32 } else { -1.0 })
                    .collect(),
                [1, 1, n, n],
            ),
            &device,
        );
        let striped = values(log_spectrum(stripes, pool));
        // Only column frequency 4 (cell 2 of row 0) holds power.
        let top = striped.iter().cloned().fold(f32::MIN, f32::max);
        assert_eq!(striped[2], top);
        assert!(
            striped
                .iter()
                .enumerate()
                .all(|(i, &v)| i == 2 || v < top - 10.0)
        );
    }

    #[test]
    fn upsampling_repeats_pixels_and_downsampling_averages_them_back() {
        let device = Device::flex();
        let x = ramp([1, 1, 2, 2], &device);
        let up = upsample(x.clone());
        assert_eq!(
            values(up.clone()),
            vec![
                0., 0., 1., 1., 0., 0., 1., 1., 2., 2., 3., 3., 2., 2., 3., 3.
            ]
        );
        assert_eq!(values(downsample(up)), values(x));
        let down = downsample(ramp([1, 1, 2, 2], &device));
        assert_eq!(values(down), vec![1.5]);
        // On any shape, each output pixel (y, x) is input pixel (y / 2, x / 2).
        let x = ramp([2, 3, 5, 7], &device);
        let copied = x
            .clone()
            .reshape([2, 3, 5, 1, 7, 1])
            .expand([2, 3, 5, 2, 7, 2])
            .reshape([2, 3, 10, 14]);
        assert_eq!(values(upsample(x)), values(copied));
    }

    #[test]
    fn pixel_norm_gives_unit_rms_per_pixel() {
        let device = Device::flex();
        let x = ramp([2, 3, 2, 2], &device).sub_scalar(5.0);
        let normed = pixel_norm(x);
        let rms = values(normed.powi_scalar(2).mean_dim(1).sqrt());
        assert!(rms.iter().all(|v| (v - 1.0).abs() < 1e-5), "{rms:?}");
    }

    #[test]
    fn minibatch_stddev_of_identical_images_is_zero() {
        let device = Device::flex();
        let one = ramp([1, 2, 3, 3], &device);
        let same = Tensor::cat(vec![one.clone(); 4], 0);
        let out = minibatch_stddev(same, 4);
        assert_eq!(out.dims(), [4, 3, 3, 3]);
        let feature = values(out.slice(s![.., 2..3]));
        assert!(feature.iter().all(|v| v.abs() < 1e-3), "{feature:?}");
    }

    #[test]
    fn minibatch_stddev_measures_each_group_separately() {
        let device = Device::flex();
        // Groups are images {0, 2} and {1, 3}: the first pair differs by 2 everywhere (standard
        // deviation 1), the second pair is identical (0).
        let pixels = [0.0, 5.0, 2.0, 5.0].map(|v| Tensor::<4>::full([1, 1, 2, 2], v, &device));
        let out = minibatch_stddev(Tensor::cat(pixels.to_vec(), 0), 2);
        let feature = values(out.slice(s![.., 1..2]).mean_dims(&[2, 3]));
        let expected = [1.0, 0.0, 1.0, 0.0];
        for (got, want) in feature.iter().zip(expected) {
            assert!((got - want).abs() < 1e-3, "{feature:?}");
        }
    }

    #[test]
    fn minibatch_stddev_groups_a_batch_the_group_size_does_not_divide() {
        let device = Device::flex();
        // Six images in groups of four: grouped by two, {0, 3}, {1, 4} and {2, 5}.
        let pixels =
            [0.0, 5.0, 7.0, 2.0, 5.0, 7.0].map(|v| Tensor::<4>::full([1, 1, 2, 2], v, &device));
        let out = minibatch_stddev(Tensor::cat(pixels.to_vec(), 0), 4);
        let feature = values(out.slice(s![.., 1..2]).mean_dims(&[2, 3]));
        let expected = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        for (got, want) in feature.iter().zip(expected) {
            assert!((got - want).abs() < 1e-3, "{feature:?}");
        }
    }

    #[test]
    fn equalised_layers_scale_unit_weights_by_he_constant() {
        let device = Device::flex();
        let conv = EqConv2d::new([8, 4], 3, RELU_GAIN, &device);
        let expected = (2.0f64 / (8.0 * 9.0)).sqrt();
        assert!((conv.scale() - expected).abs() < 1e-12);
        // The forward pass equals a plain convolution with the scaled weights.
        let x = ramp([1, 8, 5, 5], &device).div_scalar(100.0);
        let plain = conv2d(
            x.clone(),
            conv.weight.val().mul_scalar(expected),
            None,
            ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
        );
        let diff = values((conv.forward(x) - plain).abs().max());
        assert!(diff[0] < 1e-5, "{diff:?}");
        // Stored weights are unit normals, not pre-scaled ones.
        let std = values(conv.weight.val().powi_scalar(2).mean().sqrt())[0];
        assert!((0.8..1.2).contains(&std), "{std}");

        let linear = EqLinear::new([50, 3], 1.0, &device);
        assert!((linear.scale() - 1.0 / 50f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn lerp_hits_both_ends() {
        let device = Device::flex();
        let a = Tensor::<4>::zeros([1, 1, 1, 2], &device);
        let b = Tensor::<4>::ones([1, 1, 1, 2], &device);
        assert_eq!(values(lerp(a.clone(), b.clone(), 0.0)), vec![0.0, 0.0]);
        assert_eq!(values(lerp(a.clone(), b.clone(), 1.0)), vec![1.0, 1.0]);
        assert_eq!(values(lerp(a, b, 0.25)), vec![0.25, 0.25]);
    }
}
