//! A residual GAN in the style of Miyato et al. (2018) and Gulrajani et al. (2017): the
//! generator and discriminator are stacks of residual blocks that each double (generator) or
//! halve (discriminator) the side of their feature maps.
//!
//! Each block adds a residual branch (two 3x3 convolutions) to a shortcut (the resampled input,
//! through a 1x1 convolution where the width changes). Both convolutions of a branch start
//! random, as in those papers. Runs configured before `zero_init_branches` existed started
//! each branch's last convolution at zero instead (the zero-initialisation of Goyal et al.
//! 2017 and Fixup), so that every block began as its shortcut: a fresh generator was then a
//! nearest-upsampled 4x4 map and a fresh discriminator a single block's local filter, summed
//! over the image, and those runs drew axis-aligned bars and textures but never a face (see
//! docs/MODELS.md).

use crate::blocks::{downsample, feature_deviations, log_spectrum, minibatch_stddev, upsample};
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{leaky_relu, relu};

/// Sizes of a residual GAN.
///
/// Widths double toward low resolution, at most eight times. The defaults (16 features at the
/// generator's 64x64 block, 24 at the discriminator's) make a generator about as costly per
/// image as the default DCGAN's but four blocks deep with eight 3x3 convolutions, so it runs at
/// a similar speed on a two-core CPU; wider blocks would be better on a GPU.
#[derive(Config, Debug, PartialEq)]
pub struct ResnetConfig {
    /// Length of the latent vector.
    #[config(default = 128)]
    pub latent_size: usize,
    /// Output side in pixels: a power of two, at least 8.
    #[config(default = 64)]
    pub resolution: usize,
    /// Features of the generator's last block; each block below doubles it, up to 8x.
    #[config(default = 16)]
    pub generator_width: usize,
    /// Features of the discriminator's first block; each block above doubles it, up to 8x.
    #[config(default = 24)]
    pub discriminator_width: usize,
    /// Batch normalisation before each activation of the discriminator, as in the DCGAN's
    /// [`catgan train` sets it, on unless `--discriminator-norm none`; configs written before
    /// the option existed were trained without it and read so]. See docs/MODELS.md.
    pub discriminator_batch_norm: Option<bool>,
    /// Start the last convolution of every residual branch at zero, so that each block starts
    /// as its shortcut [default for new runs: off; configs written before the option existed
    /// read as on, which is how they were trained]. The discriminator's first block is never
    /// zeroed (see `DownResBlock::new`).
    pub zero_init_branches: Option<bool>,
    /// Score the discriminator's last 4x4 feature map with one weight per position and feature
    /// (a dense layer, like the DCGAN's 4x4 convolution and the Progressive GAN's dense layer)
    /// rather than summing it over the positions first [default for new runs: on; configs
    /// written before the option existed read as off, which is how they were trained]. A sum
    /// makes the discriminator a judge of patches wherever they are, blind to the layout of a
    /// face.
    pub positional_head: Option<bool>,
    /// Append a minibatch standard deviation feature (Karras et al. 2018) to the
    /// discriminator's last 4x4 map, over groups of this many images, so that it can tell a
    /// batch whose cats share their details from a varied one [default: none, which is also
    /// how configs written before the option existed read].
    pub minibatch_stddev: Option<usize>,
    /// Per-pixel noise inputs (Karras et al. 2019): every generator block adds one map of
    /// standard normal noise, scaled by a learned strength per feature (starting at zero), to
    /// its first convolution's output, so that fine detail such as the run of the fur can
    /// differ from cat to cat without having to come from the latent. The noise maps follow
    /// the latent in the generator's input ([`ResnetConfig::noise_size`] more values)
    /// [default: off, which is also how configs written before the option existed read].
    pub noise_inputs: Option<bool>,
    /// A second minibatch standard deviation feature, over groups of this many images, taken
    /// where fine detail is still resolved: after the discriminator's first block (at half the
    /// image's side), one mean deviation per feature, weighed into the logit by its own weights
    /// (starting at zero). A batch whose cats share one texture shows it there; the last 4x4 map
    /// has averaged it away [default: none, which is also how configs written before the option
    /// existed read].
    pub fine_minibatch_stddev: Option<usize>,
    /// Factor applied to the fine feature's weights in every pass: they are stored divided by
    /// it, so that Adam, which moves a weight by about its learning rate per step whatever the
    /// weight's scale, grows them this many times faster. A new discriminator continuing from a
    /// trained generator then gives the feature a say within a session instead of in hundreds
    /// of thousands of images (`catgan train` sets 16) [default: 1, which is also how configs
    /// written before the option existed read].
    pub fine_minibatch_gain: Option<f64>,
    /// Weigh each image's log power spectrum into the discriminator's logit
    /// ([`crate::blocks::log_spectrum`]), pooled over squares of this many frequencies a side,
    /// one weight per square (starting at zero). The power at a frequency ignores where a
    /// texture lies, so a generator that paints a period or direction of fur that real cats
    /// lack is seen whether or not translation augmentation has shifted the images (docs/
    /// MODELS.md) [default: none, which is also how configs written before the option existed
    /// read].
    pub spectrum_pool: Option<usize>,
}

/// Factor applied to the stored noise strengths in every forward pass. Adam moves a parameter
/// by about its learning rate per step whatever its scale, so a strength stored at face value
/// would take tens of thousands of steps at a continuation's rate (5e-5) to reach the size of
/// the features it is added to (about 1); stored divided by this gain, it moves 16 times as
/// fast, as the equalised learning rate of Karras et al. (2018) does for weights.
const NOISE_GAIN: f32 = 16.0;

/// Slope of the discriminator's leaky ReLU.
const LEAKY_SLOPE: f64 = 0.2;

fn conv(channels: [usize; 2], kernel: usize, initializer: Initializer) -> Conv2dConfig {
    let pad = kernel / 2;
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_initializer(initializer)
}

/// He initialisation for convolutions followed by a ReLU.
fn he() -> Initializer {
    Initializer::KaimingNormal {
        gain: std::f64::consts::SQRT_2,
        fan_out_only: false,
    }
}

/// Initialisation of a branch's last convolution, whose output is added to the shortcut rather
/// than activated: unit gain, or zero where the block should start as its shortcut.
fn branch_end(zero: bool) -> Initializer {
    if zero {
        Initializer::Zeros
    } else {
        Initializer::KaimingNormal {
            gain: 1.0,
            fan_out_only: false,
        }
    }
}

/// A 1x1 shortcut convolution where the width changes; none where it does not.
fn shortcut(channels: [usize; 2], device: &Device) -> Option<Conv2d> {
    (channels[0] != channels[1]).then(|| {
        let init = Initializer::XavierUniform { gain: 1.0 };
        conv(channels, 1, init).with_bias(false).init(device)
    })
}

fn apply(shortcut: &Option<Conv2d>, x: Tensor<4>) -> Tensor<4> {
    match shortcut {
        Some(conv) => conv.forward(x),
        None => x,
    }
}

impl ResnetConfig {
    /// Number of resampling blocks between 4x4 and the full resolution.
    pub fn blocks(&self) -> usize {
        self.resolution.trailing_zeros() as usize - 2
    }

    /// Generator features at side `4 << i`.
    fn generator_channels(&self, i: usize) -> usize {
        self.generator_width << (self.blocks() - i).min(3)
    }

    /// Discriminator features after its `i`-th block (0 is the first).
    fn discriminator_channels(&self, i: usize) -> usize {
        self.discriminator_width << i.min(3)
    }

    /// Whether branches start at zero (configs without the option were trained that way).
    fn zero_branches(&self) -> bool {
        self.zero_init_branches.unwrap_or(true)
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
        if self.minibatch_stddev == Some(0) || self.fine_minibatch_stddev == Some(0) {
            return Err("the minibatch standard deviation's group size must be positive".into());
        }
        if let Some(pool) = self.spectrum_pool
            && (pool == 0 || !self.resolution.is_multiple_of(pool))
        {
            return Err(format!(
                "the spectrum's pool ({pool}) must be positive and divide the resolution ({})",
                self.resolution
            ));
        }
        Ok(())
    }

    /// Whether the generator takes noise maps after its latent.
    fn noise(&self) -> bool {
        self.noise_inputs.unwrap_or(false)
    }

    /// Number of noise values the generator takes after the latent: one map per block, at the
    /// block's output side (8x8, 16x16, ... up to the resolution), each stored row by row.
    pub fn noise_size(&self) -> usize {
        if !self.noise() {
            return 0;
        }
        (1..=self.blocks()).map(|i| (4 << i) * (4 << i)).sum()
    }

    /// A freshly initialised generator.
    pub fn init_generator(&self, device: &Device) -> ResnetGenerator {
        let first = self.generator_channels(0);
        let blocks = (0..self.blocks())
            .map(|i| {
                let channels = [self.generator_channels(i), self.generator_channels(i + 1)];
                UpResBlock::new(channels, self.zero_branches(), self.noise(), device)
            })
            .collect();
        let last = self.generator_channels(self.blocks());
        ResnetGenerator {
            project: LinearConfig::new(self.latent_size, first * 16)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device),
            blocks,
            norm: BatchNormConfig::new(last).init(device),
            to_rgb: conv([last, 3], 3, Initializer::XavierUniform { gain: 1.0 }).init(device),
        }
    }

    /// A freshly initialised discriminator.
    pub fn init_discriminator(&self, device: &Device) -> ResnetDiscriminator {
        let norm = self.discriminator_batch_norm.unwrap_or(false);
        let zero = self.zero_branches();
        let mut channels = 3;
        let mut blocks = Vec::new();
        for i in 0..self.blocks() {
            let out = self.discriminator_channels(i);
            blocks.push(DownResBlock::new(
                [channels, out],
                i == 0,
                norm,
                zero,
                device,
            ));
            channels = out;
        }
        let fine_stddev_group = self.fine_minibatch_stddev.unwrap_or(0);
        let fine_to_logit = (fine_stddev_group > 0).then(|| {
            LinearConfig::new(self.discriminator_channels(0), 1)
                .with_bias(false)
                .with_initializer(Initializer::Zeros)
                .init(device)
        });
        let spectrum_pool = self.spectrum_pool.unwrap_or(0);
        let spectrum_to_logit = (spectrum_pool > 0).then(|| {
            let cells = self.resolution / spectrum_pool;
            LinearConfig::new(cells * cells, 1)
                .with_bias(false)
                .with_initializer(Initializer::Zeros)
                .init(device)
        });
        let positional = self.positional_head.unwrap_or(false);
        let stddev_group = self.minibatch_stddev.unwrap_or(0);
        let channels = channels + usize::from(stddev_group > 0);
        let features = if positional { channels * 16 } else { channels };
        ResnetDiscriminator {
            blocks,
            positional,
            stddev_group,
            fine_stddev_group,
            fine_gain: self.fine_minibatch_gain.unwrap_or(1.0) as f32,
            fine_to_logit,
            spectrum_pool,
            spectrum_to_logit,
            to_logit: LinearConfig::new(features, 1)
                .with_initializer(Initializer::XavierUniform { gain: 1.0 })
                .init(device),
        }
    }
}

/// Generator block: batch norm, ReLU, upsample, 3x3 convolution, (plus scaled noise,) batch
/// norm, ReLU, 3x3 convolution; plus the upsampled shortcut.
#[derive(Module, Debug)]
pub struct UpResBlock {
    norm1: BatchNorm,
    conv1: Conv2d,
    /// Strength of the noise map per feature of the first convolution's output, where the
    /// generator has noise inputs.
    noise_strength: Option<Param<Tensor<1>>>,
    norm2: BatchNorm,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
}

impl UpResBlock {
    fn new(channels: [usize; 2], zero_branch: bool, noise: bool, device: &Device) -> Self {
        let [input, output] = channels;
        Self {
            norm1: BatchNormConfig::new(input).init(device),
            conv1: conv(channels, 3, he()).init(device),
            noise_strength: noise.then(|| Initializer::Zeros.init([output], device)),
            norm2: BatchNormConfig::new(output).init(device),
            conv2: conv([output; 2], 3, branch_end(zero_branch)).init(device),
            shortcut: shortcut(channels, device),
        }
    }

    /// `noise`: `[batch, 1, 2 * side, 2 * side]`, used where the block has noise strengths.
    fn forward(&self, x: Tensor<4>, noise: Option<Tensor<4>>) -> Tensor<4> {
        let mut branch = self
            .conv1
            .forward(upsample(relu(self.norm1.forward(x.clone()))));
        if let (Some(strength), Some(noise)) = (&self.noise_strength, noise) {
            let [features] = strength.dims();
            let strength = strength.val().mul_scalar(NOISE_GAIN);
            branch = branch + noise * strength.reshape([1, features, 1, 1]);
        }
        let branch = self.conv2.forward(relu(self.norm2.forward(branch)));
        // A 1x1 convolution commutes with nearest upsampling; applying it first is cheaper.
        upsample(apply(&self.shortcut, x)) + branch
    }
}

/// The residual generator: `[batch, input]` to `[batch, 3, resolution, resolution]` in
/// [-1, 1], where the input is the latent followed, with noise inputs, by the noise maps.
#[derive(Module, Debug)]
pub struct ResnetGenerator {
    project: Linear,
    blocks: Vec<UpResBlock>,
    norm: BatchNorm,
    to_rgb: Conv2d,
}

impl ResnetGenerator {
    /// Generates images from latents (each followed by its noise maps, where the generator has
    /// noise inputs: see [`ResnetConfig::noise_size`]).
    pub fn forward(&self, input: Tensor<2>) -> Tensor<4> {
        let [batch, _] = input.dims();
        let [latent_size, _] = self.project.weight.dims();
        let latent = input.clone().narrow(1, 0, latent_size);
        let projected = self.project.forward(latent);
        let [_, features] = projected.dims();
        let mut x = projected.reshape([batch, features / 16, 4, 4]);
        let mut offset = latent_size;
        for block in &self.blocks {
            let noise = block.noise_strength.as_ref().map(|_| {
                let [_, _, side, _] = x.dims();
                let side = 2 * side;
                let map = input.clone().narrow(1, offset, side * side);
                offset += side * side;
                map.reshape([batch, 1, side, side])
            });
            x = block.forward(x, noise);
        }
        self.to_rgb.forward(relu(self.norm.forward(x))).tanh()
    }
}

/// Discriminator block: (batch norm,) leaky ReLU, 3x3 convolution, (batch norm,) leaky ReLU,
/// 3x3 convolution, halve the side; plus the downsampled shortcut. The first block skips its
/// first normalisation and activation, since its input is the image itself, and its branch
/// starts non-zero (see `DownResBlock::new`).
#[derive(Module, Debug)]
pub struct DownResBlock {
    norm1: Option<BatchNorm>,
    conv1: Conv2d,
    norm2: Option<BatchNorm>,
    conv2: Conv2d,
    shortcut: Option<Conv2d>,
    activate_input: bool,
}

fn normalise(norm: &Option<BatchNorm>, x: Tensor<4>) -> Tensor<4> {
    match norm {
        Some(norm) => norm.forward(x),
        None => x,
    }
}

impl DownResBlock {
    /// `zero_branch` is ignored for the first block, whose branch always starts non-zero: its
    /// shortcut alone (a 1x1 convolution, then 2x2 average pooling) sums a period-2
    /// checkerboard to zero, so a fresh discriminator would be blind to the finest patterns the
    /// generator can draw.
    fn new(
        channels: [usize; 2],
        first: bool,
        batch_norm: bool,
        zero_branch: bool,
        device: &Device,
    ) -> Self {
        let [input, output] = channels;
        Self {
            norm1: (batch_norm && !first).then(|| BatchNormConfig::new(input).init(device)),
            conv1: conv(channels, 3, he()).init(device),
            norm2: batch_norm.then(|| BatchNormConfig::new(output).init(device)),
            conv2: conv([output; 2], 3, branch_end(zero_branch && !first)).init(device),
            shortcut: shortcut(channels, device),
            activate_input: !first,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let input = if self.activate_input {
            leaky_relu(normalise(&self.norm1, x.clone()), LEAKY_SLOPE)
        } else {
            x.clone()
        };
        let branch = self.conv1.forward(input);
        let branch = leaky_relu(normalise(&self.norm2, branch), LEAKY_SLOPE);
        let branch = self.conv2.forward(branch);
        downsample(apply(&self.shortcut, x) + branch)
    }
}

/// The residual discriminator: `[batch, 3, resolution, resolution]` to one logit per image.
#[derive(Module, Debug)]
pub struct ResnetDiscriminator {
    blocks: Vec<DownResBlock>,
    positional: bool,
    /// Group size of the minibatch standard deviation feature; 0 for none.
    stddev_group: usize,
    /// Group size of the fine minibatch standard deviation feature; 0 for none.
    fine_stddev_group: usize,
    /// Factor on the fine feature's weights ([`ResnetConfig::fine_minibatch_gain`]).
    fine_gain: f32,
    /// Weights of the fine feature's per-feature deviations in the logit, divided by
    /// `fine_gain`.
    fine_to_logit: Option<Linear>,
    /// Side of the squares of frequencies the spectrum feature pools over; 0 for none.
    spectrum_pool: usize,
    /// Weights of the pooled log power spectrum in the logit.
    spectrum_to_logit: Option<Linear>,
    to_logit: Linear,
}

impl ResnetDiscriminator {
    /// Scores images: higher means "more likely real". Returns `[batch]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<1> {
        self.forward_with_texture(images, None)
    }

    /// Scores `images` as [`Self::forward`] does, except that the fine minibatch feature and
    /// the spectrum feature are taken from `texture` where given: the same batch, image for
    /// image, before it was shifted by translation augmentation. A shift moves each image's
    /// fine detail by its own offset, which hides a texture drawn in the same place in every
    /// generated cat from any statistic over the batch; the unshifted view keeps it visible to
    /// these two features while the rest of the discriminator still judges shifted images.
    /// Costs one more pass through the first block.
    pub fn forward_with_texture(
        &self,
        images: Tensor<4>,
        mut texture: Option<Tensor<4>>,
    ) -> Tensor<1> {
        let spectrum = self.spectrum_to_logit.as_ref().map(|weights| {
            let view = texture.clone().unwrap_or_else(|| images.clone());
            weights.forward(log_spectrum(view, self.spectrum_pool))
        });
        let mut x = images;
        let mut fine = None;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if i == 0
                && let Some(weights) = &self.fine_to_logit
            {
                let first = match texture.take() {
                    Some(texture) => block.forward(texture),
                    None => x.clone(),
                };
                let deviations = feature_deviations(first, self.fine_stddev_group);
                fine = Some(weights.forward(deviations).mul_scalar(self.fine_gain));
            }
        }
        if self.stddev_group > 0 {
            x = minibatch_stddev(x, self.stddev_group);
        }
        let [batch, channels, height, width] = x.dims();
        let x = leaky_relu(x, LEAKY_SLOPE);
        let features = if self.positional {
            x.reshape([batch, channels * height * width])
        } else {
            x.sum_dims(&[2, 3]).reshape([batch, channels])
        };
        let logit = [fine, spectrum]
            .into_iter()
            .flatten()
            .fold(self.to_logit.forward(features), |sum, term| sum + term);
        logit.reshape([batch])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latent::latents_for_seeds;
    use burn::tensor::Distribution;

    fn small() -> ResnetConfig {
        ResnetConfig::new()
            .with_latent_size(8)
            .with_resolution(16)
            .with_generator_width(4)
            .with_discriminator_width(4)
    }

    /// A config written before any of the options existed.
    fn old_config() -> ResnetConfig {
        let json =
            r#"{"latent_size":8,"resolution":16,"generator_width":4,"discriminator_width":4}"#;
        serde_json::from_str(json).unwrap()
    }

    /// Without batch norm an image's score can depend on its batch only through the minibatch
    /// features.
    fn batch_independent() -> ResnetConfig {
        small()
            .with_discriminator_batch_norm(Some(false))
            .with_positional_head(Some(true))
    }

    /// Four different images, and four copies of the first.
    fn varied_and_copies(device: &Device) -> (Tensor<4>, Tensor<4>) {
        let varied = noise([4, 3, 16, 16], device);
        let copies = varied.clone().narrow(0, 0, 1).repeat_dim(0, 4);
        (varied, copies)
    }

    /// The score of a batch's first image.
    fn first_score(d: &ResnetDiscriminator, batch: Tensor<4>) -> f32 {
        d.forward(batch).narrow(0, 0, 1).into_scalar::<f32>()
    }

    fn gap(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    fn noise(shape: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    #[test]
    fn spectrum_feature_starts_silent_and_scores_the_view_s_log_spectrum() {
        let device = Device::flex();
        let mut spectral = batch_independent()
            .with_spectrum_pool(Some(4))
            .init_discriminator(&device);
        let mut plain = spectral.clone();
        (plain.spectrum_pool, plain.spectrum_to_logit) = (0, None);
        // small(): 16x16 images pooled over 4x4 frequencies make 16 weights, all zero.
        let weights = spectral.spectrum_to_logit.as_ref().unwrap().weight.val();
        assert_eq!(weights.dims(), [16, 1]);
        assert_eq!(weights.abs().max().into_scalar::<f32>(), 0.0);
        // Until they move, it scores as the same network without the feature.
        let (varied, copies) = varied_and_copies(&device);
        let rest = plain.forward(varied.clone());
        let silent = spectral.forward(varied.clone());
        assert!((silent - rest.clone()).abs().max().into_scalar::<f32>() < 1e-6);
        // With weights, the score gains their product with the spectrum of the view, if one is
        // given, or else of the images.
        let w = noise([16, 1, 1, 1], &device).reshape([16, 1]);
        spectral.spectrum_to_logit = Some(Linear {
            weight: Param::from_tensor(w.clone()),
            bias: None,
        });
        let part = |view: &Tensor<4>| log_spectrum(view.clone(), 4).matmul(w.clone()).reshape([4]);
        let close = |a: Tensor<1>, b: Tensor<1>| (a - b).abs().max().into_scalar::<f32>() < 1e-4;
        assert!(close(
            spectral.forward(varied.clone()),
            rest.clone() + part(&varied)
        ));
        let viewed = spectral.forward_with_texture(varied.clone(), Some(copies.clone()));
        assert!(close(viewed.clone(), rest + part(&copies)));
        assert!(!close(viewed, spectral.forward(varied)));
    }

    #[test]
    fn zero_initialised_generator_blocks_are_their_shortcut() {
        let device = Device::flex();
        // Same width: the shortcut is the upsampled input itself.
        let same = UpResBlock::new([6, 6], true, false, &device);
        let x = noise([2, 6, 4, 4], &device);
        assert!(gap(same.forward(x.clone(), None), upsample(x.clone())) < 1e-6);
        // New width: the shortcut's 1x1 convolution, upsampled.
        let wider = UpResBlock::new([6, 3], true, false, &device);
        let expected = upsample(wider.shortcut.as_ref().unwrap().forward(x.clone()));
        assert!(gap(wider.forward(x.clone(), None), expected) < 1e-6);
        // A randomly initialised branch adds to the shortcut.
        let random = UpResBlock::new([6, 6], false, false, &device);
        assert!(gap(random.forward(x.clone(), None), upsample(x)) > 1e-3);
    }

    #[test]
    fn zero_initialised_discriminator_blocks_are_their_shortcut() {
        let device = Device::flex();
        let x = noise([2, 5, 8, 8], &device);
        for batch_norm in [false, true] {
            let same = DownResBlock::new([5, 5], false, batch_norm, true, &device);
            assert!(gap(same.forward(x.clone()), downsample(x.clone())) < 1e-6);
            let wider = DownResBlock::new([5, 7], false, batch_norm, true, &device);
            let expected = downsample(wider.shortcut.as_ref().unwrap().forward(x.clone()));
            assert!(gap(wider.forward(x.clone()), expected) < 1e-6);
            let random = DownResBlock::new([5, 5], false, batch_norm, false, &device);
            assert!(gap(random.forward(x.clone()), downsample(x.clone())) > 1e-3);
        }
    }

    #[test]
    fn only_configs_without_the_option_zero_their_branches() {
        let device = Device::flex();
        let zeroed = |config: &ResnetConfig| {
            let g = config.init_generator(&device);
            let d = config.init_discriminator(&device);
            let g_zero: Vec<bool> = g.blocks.iter().map(|b| is_zero(&b.conv2)).collect();
            let d_zero: Vec<bool> = d.blocks.iter().map(|b| is_zero(&b.conv2)).collect();
            (g_zero, d_zero)
        };
        let old = old_config();
        assert_eq!(zeroed(&old), (vec![true, true], vec![false, true]));
        let new = small().with_zero_init_branches(Some(false));
        assert_eq!(zeroed(&new), (vec![false, false], vec![false, false]));
    }

    #[test]
    fn positional_head_weighs_each_of_the_last_sixteen_positions() {
        let device = Device::flex();
        let summed = small().init_discriminator(&device);
        let positional = small()
            .with_positional_head(Some(true))
            .init_discriminator(&device);
        // small(): width 4 doubling to 8 channels at the last 4x4 map.
        assert_eq!(summed.to_logit.weight.dims(), [8, 1]);
        assert_eq!(positional.to_logit.weight.dims(), [8 * 16, 1]);
        let images = noise([3, 3, 16, 16], &device);
        assert_eq!(positional.forward(images).dims(), [3]);
        // Configs written before the option existed keep the summed head they were trained with.
        let old = old_config();
        assert_eq!(
            old.init_discriminator(&device).to_logit.weight.dims(),
            [8, 1]
        );
    }

    #[test]
    fn minibatch_stddev_lets_the_discriminator_see_a_batch_of_copies() {
        let device = Device::flex();
        let config = batch_independent();
        let (varied, copies) = varied_and_copies(&device);

        let plain = config.init_discriminator(&device);
        let alone = first_score(&plain, varied.clone());
        assert!((alone - first_score(&plain, copies.clone())).abs() < 1e-5);

        let grouped = config
            .clone()
            .with_minibatch_stddev(Some(4))
            .init_discriminator(&device);
        // One more feature map at 4x4 (small(): 8 channels there).
        assert_eq!(grouped.to_logit.weight.dims(), [9 * 16, 1]);
        let among_varied = first_score(&grouped, varied.clone());
        let among_copies = first_score(&grouped, copies);
        assert!(
            (among_varied - among_copies).abs() > 1e-4,
            "the same image scored {among_varied} among varied images and {among_copies} among copies"
        );
        // A batch the group size does not divide is still scored.
        assert_eq!(grouped.forward(varied.narrow(0, 0, 3)).dims(), [3]);

        // Configs written before the option existed have no such feature; a zero group is refused.
        let old = old_config();
        assert_eq!(old.minibatch_stddev, None);
        assert!(small().with_minibatch_stddev(Some(0)).validate().is_err());
    }

    #[test]
    fn noise_inputs_follow_the_latent_and_start_silent() {
        let device = Device::flex();
        // Random branches: a zeroed one would hide the noise added inside it.
        let config = small()
            .with_zero_init_branches(Some(false))
            .with_noise_inputs(Some(true));
        // small(): blocks to 8x8 and 16x16.
        assert_eq!(config.noise_size(), 64 + 256);
        assert_eq!(small().noise_size(), 0);
        let generator = config.init_generator(&device).valid();
        let inputs = latents_for_seeds(0, 3, 8 + 320, &device);
        let other_noise = Tensor::cat(
            vec![
                inputs.clone().narrow(1, 0, 8),
                latents_for_seeds(9, 3, 320, &device),
            ],
            1,
        );
        // Zero strengths: the noise changes nothing, so a warm start draws what it drew.
        let images = generator.forward(inputs.clone());
        assert_eq!(images.dims(), [3, 3, 16, 16]);
        assert!(gap(images.clone(), generator.forward(other_noise.clone())) < 1e-6);
        // With strength the same latent draws different detail under different noise, and the
        // same input always the same cat.
        let mut strong = config.init_generator(&device);
        for block in &mut strong.blocks {
            let strength = block.noise_strength.take().unwrap();
            let [features] = strength.dims();
            block.noise_strength = Some(Param::from_tensor(Tensor::ones([features], &device)));
        }
        let strong = strong.valid();
        let a = strong.forward(inputs.clone());
        assert!(gap(a.clone(), strong.forward(other_noise)) > 1e-3);
        assert!(gap(a, strong.forward(inputs)) < 1e-6);
        // Configs written before the option existed have no noise.
        let old = old_config();
        assert_eq!((old.noise_inputs, old.noise_size()), (None, 0));
    }

    #[test]
    fn fine_minibatch_stddev_starts_silent_sees_copies_and_reads_a_texture_view() {
        let device = Device::flex();
        let config = batch_independent();
        let (varied, copies) = varied_and_copies(&device);
        let fine = config
            .clone()
            .with_fine_minibatch_stddev(Some(4))
            .init_discriminator(&device);
        // Zero weights at first: the same scores as without the feature.
        let plain = config.init_discriminator(&device);
        let fine = fine.load_record(plain.clone().into_record().allow_partial(true));
        let plain_scores = plain.forward(varied.clone());
        assert!(
            (plain_scores - fine.forward(varied.clone()))
                .abs()
                .max()
                .into_scalar::<f32>()
                < 1e-6
        );
        // With weights, an image scores differently among copies of itself.
        let mut fine = fine;
        let weights = fine.fine_to_logit.take().unwrap();
        let [features, _] = weights.weight.dims();
        fine.fine_to_logit = Some(Linear {
            weight: Param::from_tensor(Tensor::ones([features, 1], &device)),
            bias: None,
        });
        let among_varied = first_score(&fine, varied.clone());
        let among_copies = first_score(&fine, copies.clone());
        assert!(
            (among_varied - among_copies).abs() > 1e-3,
            "the same image scored {among_varied} among varied images and {among_copies} among copies"
        );
        assert_eq!(fine.forward(varied.clone().narrow(0, 0, 3)).dims(), [3]);
        // Given a texture view, the feature comes from it and the rest from the images:
        // scores add up as the head over the images plus the feature over the view.
        let score = |images: &Tensor<4>, texture: &Tensor<4>| {
            fine.forward_with_texture(images.clone(), Some(texture.clone()))
        };
        let crossed = score(&varied, &copies) + score(&copies, &varied);
        let straight = score(&varied, &varied) + score(&copies, &copies);
        assert!((crossed - straight).abs().max().into_scalar::<f32>() < 1e-4);
        assert!(
            (score(&varied, &copies) - fine.forward(varied.clone()))
                .abs()
                .max()
                .into_scalar::<f32>()
                > 1e-3,
            "the texture view did not change the scores"
        );
        assert!(
            (score(&varied, &varied) - fine.forward(varied.clone()))
                .abs()
                .max()
                .into_scalar::<f32>()
                < 1e-6
        );
        // A gain multiplies the feature's part of the score.
        let part = |d: &ResnetDiscriminator| {
            d.forward_with_texture(varied.clone(), Some(copies.clone())) - d.forward(varied.clone())
        };
        let mut strong = fine.clone();
        strong.fine_gain = 16.0;
        assert!(
            (part(&strong) - part(&fine).mul_scalar(16.0))
                .abs()
                .max()
                .into_scalar::<f32>()
                < 1e-3
        );
        assert_eq!(old_config().fine_minibatch_gain, None);
        assert_eq!(old_config().spectrum_pool, None);
        assert!(
            small()
                .with_fine_minibatch_stddev(Some(0))
                .validate()
                .is_err()
        );
    }

    fn is_zero(conv: &Conv2d) -> bool {
        conv.weight.val().abs().max().into_scalar::<f32>() == 0.0
    }

    #[test]
    fn networks_map_latents_to_images_and_images_to_logits() {
        let device = Device::flex();
        let config = small();
        let generator = config.init_generator(&device).valid();
        let images = generator.forward(latents_for_seeds(0, 3, 8, &device));
        assert_eq!(images.dims(), [3, 3, 16, 16]);
        let values = images.clone().into_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| (-1.0..=1.0).contains(v)));
        let discriminator = config.init_discriminator(&device);
        assert_eq!(discriminator.forward(images).dims(), [3]);
    }

    #[test]
    fn fresh_discriminator_sees_the_finest_checkerboard() {
        let device = Device::flex();
        let config = small();
        let discriminator = config.init_discriminator(&device);
        let images = noise([2, 3, 16, 16], &device) * 0.3;
        let checkerboard: Vec<f32> = (0..3 * 16 * 16)
            .map(|i| {
                if (i % 16 + i / 16 % 16) % 2 == 0 {
                    0.5
                } else {
                    -0.5
                }
            })
            .collect();
        let checkerboard =
            Tensor::<1>::from_floats(checkerboard.as_slice(), &device).reshape([1, 3, 16, 16]);
        let plain = discriminator.forward(images.clone());
        let patterned = discriminator.forward(images + checkerboard);
        let change = (patterned - plain).abs().max().into_scalar::<f32>();
        assert!(
            change > 1e-3,
            "a fresh discriminator ignores a checkerboard ({change})"
        );
    }

    #[test]
    fn discriminator_normalises_before_every_activation_but_the_images() {
        let device = Device::flex();
        let normed = small()
            .with_discriminator_batch_norm(Some(true))
            .init_discriminator(&device);
        assert!(normed.blocks[0].norm1.is_none() && normed.blocks[0].norm2.is_some());
        assert!(
            normed.blocks[1..]
                .iter()
                .all(|b| b.norm1.is_some() && b.norm2.is_some())
        );
        let plain = small()
            .with_discriminator_batch_norm(Some(false))
            .init_discriminator(&device);
        assert!(
            plain
                .blocks
                .iter()
                .all(|b| b.norm1.is_none() && b.norm2.is_none())
        );
        // A config written before the option existed reads as it was trained: without.
        let parsed = old_config();
        assert_eq!(parsed.discriminator_batch_norm, None);
        assert!(parsed.init_discriminator(&device).blocks[1].norm1.is_none());
    }

    #[test]
    fn widths_double_toward_low_resolution_up_to_eight_times() {
        let config = ResnetConfig::new();
        let g: Vec<_> = (0..=4).map(|i| config.generator_channels(i)).collect();
        assert_eq!(g, vec![128, 128, 64, 32, 16]);
        let d: Vec<_> = (0..4).map(|i| config.discriminator_channels(i)).collect();
        assert_eq!(d, vec![24, 48, 96, 192]);
    }
}
