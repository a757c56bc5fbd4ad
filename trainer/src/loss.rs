//! The adversarial losses, as functions of the discriminator's raw outputs (logits).

use burn::prelude::*;
use burn::tensor::activation::softplus;
use serde::{Deserialize, Serialize};

/// The adversarial loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// Non-saturating logistic loss (Goodfellow et al. 2014): the generator maximises
    /// log D(G(z)) rather than minimising log(1 - D(G(z))).
    Logistic,
    /// Relativistic average least squares (Jolicoeur-Martineau 2018): each network judges real
    /// images against the average fake, and fakes against the average real.
    Ralsgan,
}

pub(crate) fn mean_of(x: Tensor<1>) -> Tensor<1> {
    x.mean().reshape([1])
}

impl Loss {
    /// The discriminator's loss for its scores on a real and a generated batch.
    pub fn discriminator(self, real: Tensor<1>, fake: Tensor<1>) -> Tensor<1> {
        match self {
            Loss::Logistic => mean_of(softplus(real.neg(), 1.0) + softplus(fake, 1.0)),
            Loss::Ralsgan => {
                let (real_mean, fake_mean) = (real.clone().mean(), fake.clone().mean());
                let real_term = (real - fake_mean - 1.0).powi_scalar(2);
                let fake_term = (fake - real_mean + 1.0).powi_scalar(2);
                mean_of(real_term) + mean_of(fake_term)
            }
        }
    }

    /// The generator's loss; `real` (detached) is needed by the relativistic loss only.
    pub fn generator(self, real: Option<Tensor<1>>, fake: Tensor<1>) -> Tensor<1> {
        match (self, real) {
            (Loss::Logistic, _) => mean_of(softplus(fake.neg(), 1.0)),
            (Loss::Ralsgan, Some(real)) => {
                let (real_mean, fake_mean) = (real.clone().mean(), fake.clone().mean());
                let real_term = (real - fake_mean + 1.0).powi_scalar(2);
                let fake_term = (fake - real_mean - 1.0).powi_scalar(2);
                mean_of(real_term) + mean_of(fake_term)
            }
            (Loss::Ralsgan, None) => unreachable!("the relativistic loss needs real scores"),
        }
    }

    /// Whether [`Loss::generator`] needs the discriminator's scores on real images.
    pub fn needs_real_for_generator(self) -> bool {
        self == Loss::Ralsgan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_take_their_textbook_values() {
        let device = Device::flex();
        let zeros = || Tensor::<1>::zeros([4], &device);
        let value = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap()[0];
        // A discriminator that outputs 0 everywhere: ln 2 per term.
        let d = value(Loss::Logistic.discriminator(zeros(), zeros()));
        assert!((d - 2.0 * std::f32::consts::LN_2).abs() < 1e-6, "{d}");
        let g = value(Loss::Logistic.generator(None, zeros()));
        assert!((g - std::f32::consts::LN_2).abs() < 1e-6, "{g}");
        // Relativistic LSGAN at the optimum for D: real - mean(fake) = 1, fake - mean(real) = -1.
        let real = Tensor::<1>::from_floats([1.0, 1.0], &device);
        let fake = Tensor::<1>::from_floats([0.0, 0.0], &device);
        assert!(value(Loss::Ralsgan.discriminator(real.clone(), fake.clone())).abs() < 1e-6);
        let g = value(Loss::Ralsgan.generator(Some(real), fake));
        assert!((g - 8.0).abs() < 1e-5, "{g}");
    }
}
