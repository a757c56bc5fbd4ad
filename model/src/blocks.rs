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

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn ramp(shape: [usize; 4], device: &Device) -> Tensor<4> {
        let count = shape.iter().product::<usize>();
        Tensor::<1, Int>::arange(0..count as i64, device)
            .float()
            .reshape(shape)
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
