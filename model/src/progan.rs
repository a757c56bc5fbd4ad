//! The Progressive GAN of Karras, Aila, Laine and Lehtinen (2018), grown from 4x4 to its full
//! resolution in stages.
//!
//! Stage 0 draws 4x4 images; each further stage doubles the side with one more block in the
//! generator and one more in the discriminator. While a stage fades in, both networks blend
//! the new block's path with the upsampled (generator) or downsampled (discriminator) path of
//! the previous stage by `alpha`, which training moves from 0 to 1. Every layer has an
//! equalised learning rate; the generator normalises each pixel's features, and the
//! discriminator sees the minibatch standard deviation before its last layers.

use crate::blocks::{
    EqConv2d, EqLinear, RELU_GAIN, downsample, lerp, minibatch_stddev, pixel_norm, upsample,
};
use burn::prelude::*;
use burn::tensor::activation::leaky_relu;
use serde::{Deserialize, Serialize};

/// Sizes of a Progressive GAN.
///
/// The paper gives a stage at side `r` `min(512, 8192 / r)` features. On a two-core CPU that
/// would train at a few images per second, so the defaults divide the base by eight and cap
/// the width at 128: 128 features at 4x4 and 8x8, 64 at 16, 32 at 32 and 16 at 64. At 64x64
/// this costs about as much per image as the default DCGAN, while the early stages, where the
/// layout of a face is decided, run many times faster.
#[derive(Config, Debug, PartialEq)]
pub struct ProganConfig {
    /// Length of the latent vector.
    #[config(default = 128)]
    pub latent_size: usize,
    /// Side of the last stage in pixels: a power of two, at least 8.
    #[config(default = 64)]
    pub resolution: usize,
    /// A stage at side `r` has `channel_base / r` features, at most `max_channels`.
    #[config(default = 1024)]
    pub channel_base: usize,
    /// Upper bound on the features of a stage.
    #[config(default = 128)]
    pub max_channels: usize,
    /// Images per group of the discriminator's minibatch standard deviation.
    #[config(default = 4)]
    pub group_size: usize,
}

/// Where progressive training stands: the stage being trained (0 draws 4x4 images) and how far
/// its new block has faded in (0: not at all, 1: fully).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Growth {
    /// Index of the newest stage; its side is `4 << stage`.
    pub stage: usize,
    /// Weight of the newest stage's path against the previous stage's.
    pub alpha: f32,
}

impl Growth {
    /// The newest stage at full weight.
    pub fn full(stage: usize) -> Self {
        Self { stage, alpha: 1.0 }
    }

    /// Side in pixels of the images at this stage.
    pub fn side(self) -> usize {
        4 << self.stage
    }
}

/// Slope of the leaky ReLU, as in the paper.
const LEAKY_SLOPE: f64 = 0.2;

fn act(x: Tensor<4>) -> Tensor<4> {
    leaky_relu(x, LEAKY_SLOPE)
}

impl ProganConfig {
    /// Number of stages: 5 for 64x64 (4, 8, 16, 32 and 64).
    pub fn stages(&self) -> usize {
        self.resolution.trailing_zeros() as usize - 1
    }

    /// Features of stage `stage`.
    pub fn channels(&self, stage: usize) -> usize {
        (self.channel_base / (4 << stage)).min(self.max_channels)
    }

    /// Checks that the sizes describe a buildable network.
    pub fn validate(&self) -> Result<(), String> {
        if !self.resolution.is_power_of_two() || self.resolution < 8 {
            return Err(format!(
                "resolution {} is not a power of two of at least 8",
                self.resolution
            ));
        }
        if self.latent_size == 0 || self.max_channels == 0 || self.group_size == 0 {
            return Err("latent size, widths and group size must be positive".into());
        }
        if self.channel_base < self.resolution {
            return Err(format!(
                "channel base {} leaves no features at {}x{}",
                self.channel_base, self.resolution, self.resolution
            ));
        }
        Ok(())
    }

    /// A generator with unit-normal weights (scaled at run time).
    pub fn init_generator(&self, device: &Device) -> ProganGenerator {
        let first = self.channels(0);
        let blocks = (1..self.stages())
            .map(|stage| {
                let channels = [self.channels(stage - 1), self.channels(stage)];
                GrowBlock {
                    conv1: EqConv2d::new(channels, 3, RELU_GAIN, device),
                    conv2: EqConv2d::new([channels[1]; 2], 3, RELU_GAIN, device),
                }
            })
            .collect();
        ProganGenerator {
            // The paper's gain for this layer is sqrt(2) / 4: the dense layer's output is
            // reshaped into 16 pixels.
            project: EqLinear::new([self.latent_size, first * 16], RELU_GAIN / 4.0, device),
            first: EqConv2d::new([first; 2], 3, RELU_GAIN, device),
            blocks,
            to_rgb: (0..self.stages())
                .map(|stage| EqConv2d::new([self.channels(stage), 3], 1, 1.0, device))
                .collect(),
        }
    }

    /// A discriminator with unit-normal weights (scaled at run time).
    pub fn init_discriminator(&self, device: &Device) -> ProganDiscriminator {
        let first = self.channels(0);
        let blocks = (1..self.stages())
            .map(|stage| {
                let channels = self.channels(stage);
                ShrinkBlock {
                    conv1: EqConv2d::new([channels; 2], 3, RELU_GAIN, device),
                    conv2: EqConv2d::new(
                        [channels, self.channels(stage - 1)],
                        3,
                        RELU_GAIN,
                        device,
                    ),
                }
            })
            .collect();
        ProganDiscriminator {
            from_rgb: (0..self.stages())
                .map(|stage| EqConv2d::new([3, self.channels(stage)], 1, RELU_GAIN, device))
                .collect(),
            blocks,
            last_conv: EqConv2d::new([first + 1, first], 3, RELU_GAIN, device),
            dense: EqLinear::new([first * 16, first], RELU_GAIN, device),
            output: EqLinear::new([first, 1], 1.0, device),
            group_size: self.group_size,
        }
    }
}

/// One generator stage: upsample, then two 3x3 convolutions, each followed by leaky ReLU and
/// pixel norm.
#[derive(Module, Debug)]
pub struct GrowBlock {
    conv1: EqConv2d,
    conv2: EqConv2d,
}

impl GrowBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = pixel_norm(act(self.conv1.forward(upsample(x))));
        pixel_norm(act(self.conv2.forward(x)))
    }
}

/// The Progressive GAN generator. Its output is linear; [`ProganGenerator::forward`] clips it
/// to [-1, 1] for display, while training sees the unclipped values.
#[derive(Module, Debug)]
pub struct ProganGenerator {
    project: EqLinear,
    first: EqConv2d,
    blocks: Vec<GrowBlock>,
    to_rgb: Vec<EqConv2d>,
}

impl ProganGenerator {
    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.to_rgb.len()
    }

    /// The feature maps of stages `0..=stage`, smallest first.
    pub fn features(&self, latent: Tensor<2>, stage: usize) -> Vec<Tensor<4>> {
        let [batch, _] = latent.dims();
        // Pixel norm of the latent: the network sees it on the unit sphere (times sqrt(n)).
        let latent = latent.clone() / latent.powi_scalar(2).mean_dim(1).add_scalar(1e-8).sqrt();
        let channels = self.project.output_features() / 16;
        let x = self
            .project
            .forward(latent)
            .reshape([batch, channels, 4, 4]);
        let x = pixel_norm(act(x));
        let mut x = pixel_norm(act(self.first.forward(x)));
        let mut features = Vec::with_capacity(stage + 1);
        for block in &self.blocks[..stage] {
            features.push(x.clone());
            x = block.forward(x);
        }
        features.push(x);
        features
    }

    /// The RGB image stage `stage` draws from its feature map (linear, not clipped).
    pub fn to_rgb(&self, stage: usize, features: Tensor<4>) -> Tensor<4> {
        self.to_rgb[stage].forward(features)
    }

    /// Training output at `growth`: `[batch, 3, side, side]`, linear. During a fade the image
    /// is `alpha` of the new stage plus `1 - alpha` of the previous stage's image, upsampled.
    pub fn forward_growing(&self, latent: Tensor<2>, growth: Growth) -> Tensor<4> {
        let features = self.features(latent, growth.stage);
        self.blend(&features, growth)
    }

    /// The image at `growth` from the feature maps of [`ProganGenerator::features`].
    pub fn blend(&self, features: &[Tensor<4>], growth: Growth) -> Tensor<4> {
        let stage = growth.stage;
        let new = self.to_rgb(stage, features[stage].clone());
        if stage == 0 || growth.alpha >= 1.0 {
            return new;
        }
        let old = upsample(self.to_rgb(stage - 1, features[stage - 1].clone()));
        lerp(old, new, growth.alpha)
    }

    /// Replaces stage `stage`'s RGB head by a 1x1 convolution with `weight` `[3, channels]` and
    /// `bias` `[3]` (as applied).
    pub fn set_to_rgb(&mut self, stage: usize, weight: Tensor<2>, bias: Tensor<1>) {
        let [out, input] = weight.dims();
        let head = self.to_rgb[stage].clone();
        self.to_rgb[stage] = head.with_values(weight.reshape([out, input, 1, 1]), bias);
    }

    /// Images of stage `stage` at full weight, clipped to [-1, 1]: `[batch, 3, 4 << stage, ..]`.
    pub fn forward_stage(&self, latent: Tensor<2>, stage: usize) -> Tensor<4> {
        self.forward_growing(latent, Growth::full(stage))
            .clamp(-1.0, 1.0)
    }

    /// Images of the last stage, clipped to [-1, 1].
    pub fn forward(&self, latent: Tensor<2>) -> Tensor<4> {
        self.forward_stage(latent, self.stages() - 1)
    }
}

/// One discriminator stage: two 3x3 convolutions with leaky ReLU, then halve the side.
#[derive(Module, Debug)]
pub struct ShrinkBlock {
    conv1: EqConv2d,
    conv2: EqConv2d,
}

impl ShrinkBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = act(self.conv1.forward(x));
        downsample(act(self.conv2.forward(x)))
    }
}

/// The Progressive GAN discriminator.
#[derive(Module, Debug)]
pub struct ProganDiscriminator {
    from_rgb: Vec<EqConv2d>,
    blocks: Vec<ShrinkBlock>,
    last_conv: EqConv2d,
    dense: EqLinear,
    output: EqLinear,
    group_size: usize,
}

impl ProganDiscriminator {
    /// Scores images of side `growth.side()`: `[batch]` logits. During a fade the features
    /// entering the previous stage blend the new block's output with the previous stage's
    /// reading of the downsampled image.
    pub fn forward_growing(&self, images: Tensor<4>, growth: Growth) -> Tensor<1> {
        let stage = growth.stage;
        let mut x = act(self.from_rgb[stage].forward(images.clone()));
        if stage > 0 {
            x = self.blocks[stage - 1].forward(x);
            if growth.alpha < 1.0 {
                let old = act(self.from_rgb[stage - 1].forward(downsample(images)));
                x = lerp(old, x, growth.alpha);
            }
        }
        for block in self.blocks[..stage.saturating_sub(1)].iter().rev() {
            x = block.forward(x);
        }
        let x = minibatch_stddev(x, self.group_size);
        let x = act(self.last_conv.forward(x));
        let [batch, channels, height, width] = x.dims();
        let x = x.reshape([batch, channels * height * width]);
        let x = leaky_relu(self.dense.forward(x), LEAKY_SLOPE);
        self.output.forward(x).reshape([batch])
    }

    /// Scores full-resolution images at the last stage.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<1> {
        self.forward_growing(images, Growth::full(self.from_rgb.len() - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latent::latents_for_seeds;

    fn small() -> ProganConfig {
        ProganConfig::new()
            .with_latent_size(8)
            .with_resolution(16)
            .with_channel_base(64)
            .with_max_channels(8)
            .with_group_size(2)
    }

    fn max_difference(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn stages_and_widths_follow_the_channel_base() {
        let config = ProganConfig::new();
        assert_eq!(config.stages(), 5);
        let widths: Vec<_> = (0..5).map(|s| config.channels(s)).collect();
        assert_eq!(widths, vec![128, 128, 64, 32, 16]);
        assert!(small().validate().is_ok());
        assert!(small().with_resolution(24).validate().is_err());
        assert!(small().with_channel_base(8).validate().is_err());
    }

    #[test]
    fn generator_draws_each_stage_at_its_side() {
        let device = Device::flex();
        let config = small();
        let generator = config.init_generator(&device);
        let latent = latents_for_seeds(0, 2, 8, &device);
        for stage in 0..config.stages() {
            let images = generator.forward_stage(latent.clone(), stage);
            assert_eq!(images.dims(), [2, 3, 4 << stage, 4 << stage]);
        }
        assert_eq!(generator.forward(latent).dims(), [2, 3, 16, 16]);
    }

    #[test]
    fn fade_in_runs_from_the_upsampled_previous_stage_to_the_new_stage() {
        let device = Device::flex();
        let generator = small().init_generator(&device);
        let latent = latents_for_seeds(3, 2, 8, &device);
        let stage = 2;
        let features = generator.features(latent.clone(), stage);
        let previous = upsample(generator.to_rgb(1, features[1].clone()));
        let new = generator.to_rgb(2, features[2].clone());

        let at = |alpha| generator.forward_growing(latent.clone(), Growth { stage, alpha });
        assert!(max_difference(at(0.0), previous.clone()) < 1e-6);
        assert!(max_difference(at(1.0), new.clone()) < 1e-6);
        let quarter = previous.clone() * 0.75 + new.clone() * 0.25;
        assert!(max_difference(at(0.25), quarter) < 1e-5);
        // The two ends really differ, so the checks above can fail.
        assert!(max_difference(previous, new) > 1e-3);
    }

    #[test]
    fn discriminator_fade_in_runs_from_the_downsampled_path_to_the_new_block() {
        let device = Device::flex();
        let config = small();
        let discriminator = config.init_discriminator(&device);
        let images = Tensor::<4>::random(
            [4, 3, 16, 16],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let score =
            |alpha| discriminator.forward_growing(images.clone(), Growth { stage: 2, alpha });
        // At alpha 0 the new block is ignored: the score is the previous stage's on the
        // downsampled images.
        let previous = discriminator.forward_growing(downsample(images.clone()), Growth::full(1));
        let gap = |a: Tensor<1>, b: Tensor<1>| (a - b).abs().max().into_scalar::<f32>();
        assert!(gap(score(0.0), previous.clone()) < 1e-5);
        assert!(gap(score(1.0), previous) > 1e-4);
        assert_eq!(score(0.5).dims(), [4]);
    }
}
