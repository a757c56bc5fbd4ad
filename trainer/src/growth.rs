//! The Progressive GAN's schedule: which stage trains and how far it has faded in, as a pure
//! function of the number of real images shown so far, so that a resumed run continues with
//! exactly the same `alpha`.

use crate::config::TrainConfig;
use burn::prelude::*;
use catgan_model::Growth;
use catgan_model::blocks::{downsample, lerp, upsample};

/// The growth after `images` real images: stage 0 trains for `stable_kimg`, then each further
/// stage fades in over `fade_kimg` (alpha rising linearly from 0 to 1) and stabilises for
/// `stable_kimg`; the last stage stays until the run ends. Architectures that do not grow are
/// always at their only stage.
pub fn growth_at(config: &TrainConfig, images: u64) -> Growth {
    let last = config.model.stages() - 1;
    if last == 0 {
        return Growth::full(0);
    }
    let kimg = images as f64 / 1000.0;
    if kimg < config.stable_kimg {
        return Growth::full(0);
    }
    let period = config.fade_kimg + config.stable_kimg;
    if period <= 0.0 {
        return Growth::full(last);
    }
    let since = kimg - config.stable_kimg;
    let stage = 1 + (since / period).floor() as usize;
    if stage > last {
        return Growth::full(last);
    }
    let into_stage = since - (stage - 1) as f64 * period;
    let alpha = if config.fade_kimg > 0.0 {
        (into_stage / config.fade_kimg).min(1.0)
    } else {
        1.0
    };
    Growth {
        stage,
        alpha: alpha as f32,
    }
}

/// Thousands of images until the last stage has fully faded in.
pub fn kimg_to_last_stage(config: &TrainConfig) -> f64 {
    let last = config.model.stages() - 1;
    if last == 0 {
        return 0.0;
    }
    config.stable_kimg
        + (last - 1) as f64 * (config.fade_kimg + config.stable_kimg)
        + config.fade_kimg
}

/// Real images as the networks see them at `growth`: averaged down to the stage's side and,
/// during a fade, blended with their own upsampled half-resolution version the same way the
/// generator blends its output.
pub fn reals_at(images: Tensor<4>, growth: Growth) -> Tensor<4> {
    let [_, _, side, _] = images.dims();
    let mut x = images;
    let mut current = side;
    while current > growth.side() {
        x = downsample(x);
        current /= 2;
    }
    if growth.stage == 0 || growth.alpha >= 1.0 {
        return x;
    }
    lerp(upsample(downsample(x.clone())), x, growth.alpha)
}

/// A stage's images shown at `side` pixels (nearest neighbour), for grids of equal size.
pub fn enlarge(images: Tensor<4>, side: usize) -> Tensor<4> {
    let mut x = images;
    while x.dims()[2] < side {
        x = upsample(x);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use catgan_model::ModelConfig;
    use catgan_model::progan::ProganConfig;

    fn progan_config() -> TrainConfig {
        let mut config = TrainConfig::tiny_for_tests();
        config.model = ModelConfig::Progan(ProganConfig::new().with_resolution(32));
        config.fade_kimg = 10.0;
        config.stable_kimg = 20.0;
        config
    }

    #[test]
    fn alpha_follows_the_schedule() {
        let config = progan_config();
        let at = |kimg: f64| growth_at(&config, (kimg * 1000.0) as u64);
        let g = |stage, alpha| Growth { stage, alpha };
        assert_eq!(at(0.0), g(0, 1.0));
        assert_eq!(at(19.9), g(0, 1.0));
        assert_eq!(at(20.0), g(1, 0.0));
        assert_eq!(at(22.5), g(1, 0.25));
        assert_eq!(at(25.0), g(1, 0.5));
        assert_eq!(at(30.0), g(1, 1.0));
        assert_eq!(at(49.9), g(1, 1.0));
        assert_eq!(at(50.0), g(2, 0.0));
        assert_eq!(at(57.5), g(2, 0.75));
        // 32x32 is stage 3, the last: it fades in from 80 kimg and then stays.
        assert_eq!(at(85.0), g(3, 0.5));
        assert_eq!(at(90.0), g(3, 1.0));
        assert_eq!(at(1000.0), g(3, 1.0));
        assert_eq!(kimg_to_last_stage(&config), 90.0);
    }

    #[test]
    fn architectures_that_do_not_grow_stay_at_their_only_stage() {
        let config = TrainConfig::tiny_for_tests();
        assert_eq!(growth_at(&config, 0), Growth::full(0));
        assert_eq!(growth_at(&config, 10_000_000), Growth::full(0));
    }

    #[test]
    fn reals_are_averaged_down_and_blended_during_a_fade() {
        let device = Device::flex();
        let pixels: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let images = Tensor::<1>::from_floats(pixels.as_slice(), &device).reshape([1, 1, 4, 4]);
        let values = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
        // Stage 0 is 4x4: the images themselves.
        assert_eq!(values(reals_at(images.clone(), Growth::full(0))), pixels);
        // Halfway through a fade the values are halfway to the 2x2 averages.
        let half = values(reals_at(
            images.clone(),
            Growth {
                stage: 1,
                alpha: 0.5,
            },
        ));
        let blocky = values(upsample(downsample(images.clone())));
        for ((h, p), b) in half.iter().zip(&pixels).zip(&blocky) {
            assert!((h - (p + b) / 2.0).abs() < 1e-5);
        }
        let eight = Tensor::cat(vec![images.clone(), images], 2);
        let eight = Tensor::cat(vec![eight.clone(), eight], 3);
        assert_eq!(reals_at(eight, Growth::full(0)).dims(), [1, 1, 4, 4]);
    }
}
