//! One handle over every architecture's networks: the trainer builds whichever family it is
//! asked for, and loaders rebuild whichever generator a manifest names.

use crate::dcgan::{DcganConfig, DcganDiscriminator, DcganGenerator};
use crate::progan::{Growth, ProganConfig, ProganDiscriminator, ProganGenerator};
use crate::resnet::{ResnetConfig, ResnetDiscriminator, ResnetGenerator};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// A model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// The DCGAN of [`crate::dcgan`].
    Dcgan,
    /// The residual GAN of [`crate::resnet`].
    Resnet,
    /// The Progressive GAN of [`crate::progan`].
    Progan,
}

impl Arch {
    /// The name used on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Dcgan => "dcgan",
            Arch::Resnet => "resnet",
            Arch::Progan => "progan",
        }
    }
}

impl core::fmt::Display for Arch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The sizes of a model of any architecture: what is needed to rebuild its networks before
/// loading their weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "lowercase")]
pub enum ModelConfig {
    /// A DCGAN.
    Dcgan(DcganConfig),
    /// A residual GAN.
    Resnet(ResnetConfig),
    /// A Progressive GAN.
    Progan(ProganConfig),
}

impl ModelConfig {
    /// The architecture.
    pub fn arch(&self) -> Arch {
        match self {
            ModelConfig::Dcgan(_) => Arch::Dcgan,
            ModelConfig::Resnet(_) => Arch::Resnet,
            ModelConfig::Progan(_) => Arch::Progan,
        }
    }

    /// Length of the latent vector.
    pub fn latent_size(&self) -> usize {
        match self {
            ModelConfig::Dcgan(c) => c.latent_size,
            ModelConfig::Resnet(c) => c.latent_size,
            ModelConfig::Progan(c) => c.latent_size,
        }
    }

    /// Number of noise values each generator input carries after its latent (0 for the
    /// generators without noise inputs).
    pub fn noise_size(&self) -> usize {
        match self {
            ModelConfig::Resnet(c) => c.noise_size(),
            _ => 0,
        }
    }

    /// Length of one generator input: the latent, then its noise values. The input for a seed
    /// is `latent_for_seed(seed, input_size)`, whose first `latent_size` values are the latent.
    pub fn input_size(&self) -> usize {
        self.latent_size() + self.noise_size()
    }

    /// Side of the generated images in pixels.
    pub fn resolution(&self) -> usize {
        match self {
            ModelConfig::Dcgan(c) => c.resolution,
            ModelConfig::Resnet(c) => c.resolution,
            ModelConfig::Progan(c) => c.resolution,
        }
    }

    /// Number of progressive stages (1 for the architectures that do not grow).
    pub fn stages(&self) -> usize {
        match self {
            ModelConfig::Progan(c) => c.stages(),
            _ => 1,
        }
    }

    /// Checks the sizes.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ModelConfig::Dcgan(c) => c.validate(),
            ModelConfig::Resnet(c) => c.validate(),
            ModelConfig::Progan(c) => c.validate(),
        }
    }

    /// A freshly initialised generator.
    pub fn init_generator(&self, device: &Device) -> Generator {
        match self {
            ModelConfig::Dcgan(c) => Generator::Dcgan(c.init_generator(device)),
            ModelConfig::Resnet(c) => Generator::Resnet(c.init_generator(device)),
            ModelConfig::Progan(c) => Generator::Progan(c.init_generator(device)),
        }
    }

    /// A freshly initialised discriminator.
    pub fn init_discriminator(&self, device: &Device) -> Discriminator {
        match self {
            ModelConfig::Dcgan(c) => Discriminator::Dcgan(c.init_discriminator(device)),
            ModelConfig::Resnet(c) => Discriminator::Resnet(c.init_discriminator(device)),
            ModelConfig::Progan(c) => Discriminator::Progan(c.init_discriminator(device)),
        }
    }
}

/// A generator of any architecture.
// A handful of these exist per process, so the size of the largest variant does not matter,
// and Burn's module derive does not see through a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Generator {
    /// A DCGAN generator.
    Dcgan(DcganGenerator),
    /// A residual generator.
    Resnet(ResnetGenerator),
    /// A progressive generator.
    Progan(ProganGenerator),
}

impl Generator {
    /// `[batch, input]` (see [`ModelConfig::input_size`]) to `[batch, 3, resolution,
    /// resolution]` images in [-1, 1].
    pub fn forward(&self, latent: Tensor<2>) -> Tensor<4> {
        match self {
            Generator::Dcgan(g) => g.forward(latent),
            Generator::Resnet(g) => g.forward(latent),
            Generator::Progan(g) => g.forward(latent),
        }
    }

    /// The training output at `growth` (ignored by the architectures that do not grow): the
    /// progressive generator's is unclipped and at the stage's side.
    pub fn forward_growing(&self, latent: Tensor<2>, growth: Growth) -> Tensor<4> {
        match self {
            Generator::Progan(g) => g.forward_growing(latent, growth),
            other => other.forward(latent),
        }
    }

    /// Images of progressive stage `stage` in [-1, 1] at that stage's side; the full images for
    /// the architectures that do not grow.
    pub fn forward_stage(&self, latent: Tensor<2>, stage: usize) -> Tensor<4> {
        match self {
            Generator::Progan(g) => g.forward_stage(latent, stage),
            other => other.forward(latent),
        }
    }

    /// The progressive generator, if this is one.
    pub fn as_progan(&self) -> Option<&ProganGenerator> {
        match self {
            Generator::Progan(g) => Some(g),
            _ => None,
        }
    }
}

/// A discriminator of any architecture.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Discriminator {
    /// A DCGAN discriminator.
    Dcgan(DcganDiscriminator),
    /// A residual discriminator.
    Resnet(ResnetDiscriminator),
    /// A progressive discriminator.
    Progan(ProganDiscriminator),
}

impl Discriminator {
    /// `[batch, 3, resolution, resolution]` images to `[batch]` logits (higher: more real).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<1> {
        match self {
            Discriminator::Dcgan(d) => d.forward(images),
            Discriminator::Resnet(d) => d.forward(images),
            Discriminator::Progan(d) => d.forward(images),
        }
    }

    /// Scores images at `growth` (ignored by the architectures that do not grow).
    pub fn forward_growing(&self, images: Tensor<4>, growth: Growth) -> Tensor<1> {
        match self {
            Discriminator::Progan(d) => d.forward_growing(images, growth),
            other => other.forward(images),
        }
    }

    /// Scores augmented images at `growth`. Where given, `texture` is the same batch before
    /// it was shifted, from which the residual discriminator takes its fine minibatch feature
    /// ([`ResnetDiscriminator::forward_with_texture`]); the other architectures have no such
    /// feature and ignore it.
    pub fn forward_training(
        &self,
        images: Tensor<4>,
        texture: Option<Tensor<4>>,
        growth: Growth,
    ) -> Tensor<1> {
        match self {
            Discriminator::Resnet(d) => d.forward_with_texture(images, texture),
            other => other.forward_growing(images, growth),
        }
    }
}
