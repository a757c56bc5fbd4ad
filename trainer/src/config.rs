//! The settings of a training run, saved as `config.json` in its folder.

use crate::augment::Augment;
use crate::loss::Loss;
use catgan_model::ModelConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Everything a run is configured with; saved as `config.json` in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The networks.
    pub model: ModelConfig,
    /// The image folder.
    pub data: PathBuf,
    /// Images per step.
    pub batch_size: usize,
    /// The adversarial loss.
    pub loss: Loss,
    /// Adam learning rate of the generator.
    pub learning_rate_generator: f64,
    /// Adam learning rate of the discriminator.
    pub learning_rate_discriminator: f64,
    /// Adam's first-moment decay; 0.5 as in the DCGAN paper, since 0.9 oscillates in GANs.
    pub beta1: f32,
    /// Adam's second-moment decay.
    pub beta2: f32,
    /// Half-life of the generator's moving average, in thousands of images.
    pub ema_kimg: f64,
    /// Early in training the half-life is at most this fraction of the images shown, so the
    /// average does not drag the first random weights along.
    pub ema_rampup: f64,
    /// Length of the run in thousands of real images shown.
    pub total_kimg: f64,
    /// A stats line and sample grid every this many thousand images.
    pub tick_kimg: f64,
    /// A checkpoint every this many ticks (and always at the end).
    pub checkpoint_ticks: u64,
    /// Checkpoints kept; older ones are deleted.
    pub keep_checkpoints: usize,
    /// Cells in the sample grids (latents of seeds 0, 1, ...).
    pub grid_cells: usize,
    /// Seed of the initial weights and of every random choice.
    pub seed: u64,
    /// Images with more pixels than this are refused before decoding.
    pub max_pixels: u64,
    /// Progressive growing: thousands of images over which a new stage fades in.
    #[serde(default)]
    pub fade_kimg: f64,
    /// Progressive growing: thousands of images each stage trains at full weight before the
    /// next one fades in.
    #[serde(default)]
    pub stable_kimg: f64,
    /// Percentage of the images (chosen by a hash of the file name) that training never sees;
    /// SWD is measured against them.
    #[serde(default)]
    pub held_out_percent: f64,
    /// SWD of the moving-average generator every this many thousand images (0: never).
    #[serde(default)]
    pub swd_kimg: f64,
    /// Images per set for the SWD measured during training (fewer if the held-out part is
    /// smaller).
    #[serde(default = "default_swd_images")]
    pub swd_images: usize,
    /// Differentiable augmentation of every batch the discriminator sees, real and generated
    /// (empty: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub augment: Vec<Augment>,
    /// A run whose generator started from a shipped model's weights instead of random ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm_start: Option<WarmStart>,
    /// The first this many thousand images of the run train only the discriminator (the
    /// generator and its average stay fixed): a fresh discriminator catches up with a
    /// warm-started generator before the generator learns from it.
    #[serde(default)]
    pub discriminator_warmup_kimg: f64,
    /// Residual GANs with a fine minibatch feature: that feature reads each batch as it was
    /// before translation augmentation shifted it, so that a texture drawn in the same place
    /// in every generated cat stays visible to it (docs/MODELS.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fine_stddev_untranslated: bool,
}

/// Where a warm-started run's generator came from. Its images and hours count toward the
/// run's: the moving average's ramp-up and the exported model's kimg include them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WarmStart {
    /// The shipped model's name.
    pub model: String,
    /// Its weights file.
    pub file: PathBuf,
    /// SHA-256 of that file, checked when the run starts.
    pub sha256: String,
    /// Thousands of images it had been trained on.
    pub kimg: f64,
    /// Seconds it had been trained for.
    pub training_seconds: f64,
    /// How it was trained (its manifest entry's command).
    pub command: String,
}

fn default_swd_images() -> usize {
    2048
}

impl TrainConfig {
    /// Training steps in the whole run.
    pub fn total_steps(&self) -> u64 {
        (self.total_kimg * 1000.0 / self.batch_size as f64).ceil() as u64
    }

    /// Images between ticks.
    pub fn tick_images(&self) -> u64 {
        ((self.tick_kimg * 1000.0) as u64).max(1)
    }

    /// Images the generator had been trained on before this run (those of a warm start).
    pub fn images_before_run(&self) -> u64 {
        self.warm_start
            .as_ref()
            .map_or(0, |w| (w.kimg * 1000.0).round() as u64)
    }

    /// Training seconds of the generator before this run (those of a warm start).
    pub fn seconds_before_run(&self) -> f64 {
        self.warm_start.as_ref().map_or(0.0, |w| w.training_seconds)
    }

    /// Whether the step that starts after `images` (of this run) leaves the generator fixed.
    pub fn discriminator_only(&self, images: u64) -> bool {
        (images as f64) < self.discriminator_warmup_kimg * 1000.0
    }
}

#[cfg(test)]
impl TrainConfig {
    /// A run small enough for unit tests: an 8x8 DCGAN of width 4, batches of 4, 8 steps.
    pub(crate) fn tiny_for_tests() -> Self {
        use catgan_model::dcgan::DcganConfig;
        Self {
            model: ModelConfig::Dcgan(
                DcganConfig::new()
                    .with_latent_size(8)
                    .with_resolution(8)
                    .with_generator_width(4)
                    .with_discriminator_width(4),
            ),
            data: PathBuf::from("(in memory)"),
            batch_size: 4,
            loss: Loss::Logistic,
            learning_rate_generator: 1e-3,
            learning_rate_discriminator: 1e-3,
            beta1: 0.5,
            beta2: 0.999,
            ema_kimg: 0.01,
            ema_rampup: 0.5,
            total_kimg: 0.032,
            tick_kimg: 0.008,
            checkpoint_ticks: 1,
            keep_checkpoints: 2,
            grid_cells: 4,
            seed: 7,
            max_pixels: 1 << 20,
            fade_kimg: 0.0,
            stable_kimg: 0.0,
            held_out_percent: 0.0,
            swd_kimg: 0.0,
            swd_images: 2048,
            augment: Vec::new(),
            warm_start: None,
            discriminator_warmup_kimg: 0.0,
            fine_stddev_untranslated: false,
        }
    }

    /// The tiny run with a two-stage (4x4, then 8x8) progressive model instead: 2 steps at
    /// 4x4, a fade over 2 steps, then 8x8.
    pub(crate) fn tiny_progan_for_tests() -> Self {
        use catgan_model::progan::ProganConfig;
        Self {
            model: ModelConfig::Progan(
                ProganConfig::new()
                    .with_latent_size(8)
                    .with_resolution(8)
                    .with_channel_base(32)
                    .with_max_channels(8)
                    .with_group_size(2),
            ),
            loss: Loss::Ralsgan,
            beta1: 0.0,
            stable_kimg: 0.008,
            fade_kimg: 0.008,
            ..Self::tiny_for_tests()
        }
    }
}
