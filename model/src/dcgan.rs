//! The DCGAN of Radford, Metz and Chintala (2015), at any power-of-two resolution from 8 up.
//!
//! The generator turns a latent vector into a 4x4 feature map with one transposed convolution,
//! then doubles the resolution with stride-2 transposed convolutions (batch norm and ReLU after
//! each) up to a `tanh` RGB image. The discriminator mirrors it with stride-2 convolutions and
//! leaky ReLU (batch norm on all but the first) down to 4x4, then one 4x4 convolution to a logit.

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu};

/// Sizes of a DCGAN.
///
/// The defaults are the paper's widths (64 filters at the generator's last hidden layer and the
/// discriminator's first) with a latent of 128. On a two-core CPU, Burn's Flex backend trains
/// this at 37-41 images/s at batch 64 (`catgan bench`), so two hours show it 270-290k
/// images, over 30 passes over the 8k cats: enough for DCGAN to draw clear faces (the
/// shipped model has clear faces after 140k). Width 48 would
/// run about 1.5 times faster (62 images/s) and width 32 2.4 times (99 images/s), but cost
/// detail in fur and eyes, which at this budget matters more than the extra passes.
#[derive(Config, Debug, PartialEq)]
pub struct DcganConfig {
    /// Length of the latent vector.
    #[config(default = 128)]
    pub latent_size: usize,
    /// Output side in pixels: a power of two, at least 8.
    #[config(default = 64)]
    pub resolution: usize,
    /// Filters of the generator's last hidden layer; each layer below doubles it, up to 8x.
    #[config(default = 64)]
    pub generator_width: usize,
    /// Filters of the discriminator's first layer; each layer above doubles it, up to 8x.
    #[config(default = 64)]
    pub discriminator_width: usize,
}

/// Slope of the discriminator's leaky ReLU for negative inputs (the DCGAN paper's value).
const LEAKY_SLOPE: f64 = 0.2;

impl DcganConfig {
    /// Number of stride-2 stages between 4x4 and the full resolution.
    pub fn stages(&self) -> usize {
        self.resolution.trailing_zeros() as usize - 2
    }

    /// Checks that the sizes describe a buildable network.
    pub fn validate(&self) -> Result<(), String> {
        if !self.resolution.is_power_of_two() || self.resolution < 8 {
            return Err(format!(
                "resolution {} is not a power of two of at least 8",
                self.resolution
            ));
        }
        if self.latent_size == 0 || self.generator_width == 0 || self.discriminator_width == 0 {
            return Err("latent size and widths must be positive".into());
        }
        Ok(())
    }

    /// Width of generator stage `i` (0 is the 4x4 map; `stages() - 1` is the last hidden one).
    fn generator_channels(&self, i: usize) -> usize {
        let doublings = (self.stages() - 1 - i).min(3);
        self.generator_width << doublings
    }

    /// Width of the discriminator after its `i`-th stride-2 convolution (0 is the first).
    fn discriminator_channels(&self, i: usize) -> usize {
        self.discriminator_width << i.min(3)
    }

    /// A generator with the DCGAN paper's initialisation (weights from N(0, 0.02)).
    pub fn init_generator(&self, device: &Device) -> DcganGenerator {
        let first = self.generator_channels(0);
        let project = ConvTranspose2dConfig::new([self.latent_size, first], [4, 4])
            .with_bias(false)
            .with_initializer(dcgan_init())
            .init(device);
        let mut blocks = vec![UpBlock {
            conv: project,
            norm: BatchNormConfig::new(first).init(device),
        }];
        for i in 1..self.stages() {
            let channels = [self.generator_channels(i - 1), self.generator_channels(i)];
            blocks.push(UpBlock {
                conv: up_conv(channels, false).init(device),
                norm: BatchNormConfig::new(channels[1]).init(device),
            });
        }
        let last = self.generator_channels(self.stages() - 1);
        DcganGenerator {
            blocks,
            to_rgb: up_conv([last, 3], true).init(device),
        }
    }

    /// A discriminator with the DCGAN paper's initialisation.
    pub fn init_discriminator(&self, device: &Device) -> DcganDiscriminator {
        let mut blocks = Vec::new();
        let mut channels = 3;
        for i in 0..self.stages() {
            let out = self.discriminator_channels(i);
            blocks.push(DownBlock {
                conv: Conv2dConfig::new([channels, out], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_bias(i == 0)
                    .with_initializer(dcgan_init())
                    .init(device),
                // The first layer sees raw pixels; the paper leaves it unnormalised.
                norm: (i > 0).then(|| BatchNormConfig::new(out).init(device)),
            });
            channels = out;
        }
        DcganDiscriminator {
            blocks,
            to_logit: Conv2dConfig::new([channels, 1], [4, 4])
                .with_initializer(dcgan_init())
                .init(device),
        }
    }
}

fn dcgan_init() -> Initializer {
    Initializer::Normal {
        mean: 0.0,
        std: 0.02,
    }
}

/// A 4x4, stride-2, padding-1 transposed convolution: exactly doubles the side.
fn up_conv(channels: [usize; 2], bias: bool) -> ConvTranspose2dConfig {
    ConvTranspose2dConfig::new(channels, [4, 4])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .with_bias(bias)
        .with_initializer(dcgan_init())
}

/// Transposed convolution, batch norm, ReLU.
#[derive(Module, Debug)]
pub struct UpBlock {
    conv: ConvTranspose2d,
    norm: BatchNorm,
}

impl UpBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(self.norm.forward(self.conv.forward(x)))
    }
}

/// The DCGAN generator: `[batch, latent]` to `[batch, 3, resolution, resolution]` in [-1, 1].
#[derive(Module, Debug)]
pub struct DcganGenerator {
    blocks: Vec<UpBlock>,
    to_rgb: ConvTranspose2d,
}

impl DcganGenerator {
    /// Generates images from latents.
    pub fn forward(&self, latent: Tensor<2>) -> Tensor<4> {
        let [batch, size] = latent.dims();
        let mut x = latent.reshape([batch, size, 1, 1]);
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.to_rgb.forward(x).tanh()
    }
}

/// Strided convolution, optional batch norm, leaky ReLU.
#[derive(Module, Debug)]
pub struct DownBlock {
    conv: Conv2d,
    norm: Option<BatchNorm>,
}

impl DownBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.conv.forward(x);
        let x = match &self.norm {
            Some(norm) => norm.forward(x),
            None => x,
        };
        leaky_relu(x, LEAKY_SLOPE)
    }
}

/// The DCGAN discriminator: `[batch, 3, resolution, resolution]` to one logit per image.
#[derive(Module, Debug)]
pub struct DcganDiscriminator {
    blocks: Vec<DownBlock>,
    to_logit: Conv2d,
}

impl DcganDiscriminator {
    /// Scores images: higher means "more likely real". Returns `[batch]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<1> {
        let mut x = images;
        for block in &self.blocks {
            x = block.forward(x);
        }
        let [batch, ..] = x.dims();
        self.to_logit.forward(x).reshape([batch])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latent::latents_for_seeds;

    fn small() -> DcganConfig {
        DcganConfig::new()
            .with_latent_size(8)
            .with_resolution(16)
            .with_generator_width(4)
            .with_discriminator_width(4)
    }

    #[test]
    fn generator_maps_latents_to_images_in_range() {
        let device = Device::flex();
        let config = DcganConfig::new().with_generator_width(8);
        let generator = config.init_generator(&device).valid();
        let images = generator.forward(latents_for_seeds(0, 3, config.latent_size, &device));
        assert_eq!(images.dims(), [3, 3, 64, 64]);
        let values = images.into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
        // Not a constant image: the network passes the latent through.
        let spread = values.iter().cloned().fold(f32::MIN, f32::max)
            - values.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread > 1e-3, "spread {spread}");
    }

    #[test]
    fn discriminator_gives_one_logit_per_image() {
        let device = Device::flex();
        let config = small();
        let discriminator = config.init_discriminator(&device).valid();
        let images = Tensor::<4>::zeros([5, 3, 16, 16], &device);
        assert_eq!(discriminator.forward(images).dims(), [5]);
    }

    #[test]
    fn widths_double_toward_low_resolution_and_cap_at_eight_times() {
        let config = DcganConfig::new()
            .with_resolution(128)
            .with_generator_width(10);
        let widths: Vec<_> = (0..config.stages())
            .map(|i| config.generator_channels(i))
            .collect();
        assert_eq!(widths, vec![80, 80, 40, 20, 10]);
        let d: Vec<_> = (0..5).map(|i| config.discriminator_channels(i)).collect();
        assert_eq!(d, vec![64, 128, 256, 512, 512]);
    }

    #[test]
    fn bad_resolutions_are_refused() {
        assert!(small().with_resolution(48).validate().is_err());
        assert!(small().with_resolution(4).validate().is_err());
        assert!(small().validate().is_ok());
    }
}
