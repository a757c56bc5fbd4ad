//! One handle over every architecture's networks: the trainer builds whichever family it is
//! asked for, and loaders rebuild whichever generator a manifest names.

use crate::dcgan::{DcganConfig, DcganDiscriminator, DcganGenerator};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// A model family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// The DCGAN of [`crate::dcgan`].
    Dcgan,
}

impl Arch {
    /// The name used on the command line and in manifests.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Dcgan => "dcgan",
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
}

impl ModelConfig {
    /// The architecture.
    pub fn arch(&self) -> Arch {
        match self {
            ModelConfig::Dcgan(_) => Arch::Dcgan,
        }
    }

    /// Length of the latent vector.
    pub fn latent_size(&self) -> usize {
        match self {
            ModelConfig::Dcgan(c) => c.latent_size,
        }
    }

    /// Side of the generated images in pixels.
    pub fn resolution(&self) -> usize {
        match self {
            ModelConfig::Dcgan(c) => c.resolution,
        }
    }

    /// Checks the sizes.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ModelConfig::Dcgan(c) => c.validate(),
        }
    }

    /// A freshly initialised generator.
    pub fn init_generator(&self, device: &Device) -> Generator {
        match self {
            ModelConfig::Dcgan(c) => Generator::Dcgan(c.init_generator(device)),
        }
    }

    /// A freshly initialised discriminator.
    pub fn init_discriminator(&self, device: &Device) -> Discriminator {
        match self {
            ModelConfig::Dcgan(c) => Discriminator::Dcgan(c.init_discriminator(device)),
        }
    }
}

/// A generator of any architecture.
#[derive(Module, Debug)]
pub enum Generator {
    /// A DCGAN generator.
    Dcgan(DcganGenerator),
}

impl Generator {
    /// `[batch, latent]` to `[batch, 3, resolution, resolution]` images in [-1, 1].
    pub fn forward(&self, latent: Tensor<2>) -> Tensor<4> {
        match self {
            Generator::Dcgan(g) => g.forward(latent),
        }
    }
}

/// A discriminator of any architecture.
#[derive(Module, Debug)]
pub enum Discriminator {
    /// A DCGAN discriminator.
    Dcgan(DcganDiscriminator),
}

impl Discriminator {
    /// `[batch, 3, resolution, resolution]` images to `[batch]` logits (higher: more real).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<1> {
        match self {
            Discriminator::Dcgan(d) => d.forward(images),
        }
    }
}
