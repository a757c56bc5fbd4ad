//! `catgan bench`: full training steps on random images, timed.

use crate::config::TrainConfig;
use crate::data::{BatchPlan, Dataset};
use crate::growth::growth_at;
use crate::loss::Loss;
use crate::networks::{Networks, update_ema};
use crate::train::train_step;
use anyhow::Result;
use burn::module::Module;
use burn::prelude::*;
use catgan_model::ModelConfig;
use catgan_model::rng::SplitMix64;
use std::path::PathBuf;
use std::time::Instant;

/// Result of [`bench`].
#[derive(Debug, Clone, Copy)]
pub struct BenchResult {
    /// Median images per second over the timed steps.
    pub median: f64,
    /// Best images per second of a single step.
    pub best: f64,
}

/// Times full training steps (discriminator then generator update, EMA included) on random
/// images, after two warm-up steps.
pub fn bench(
    model: &ModelConfig,
    batch_size: usize,
    steps: u64,
    device: &Device,
) -> Result<BenchResult> {
    let resolution = model.resolution();
    let count = batch_size.max(1) * 2;
    let mut rng = SplitMix64::new(1);
    let dataset = Dataset {
        resolution,
        pixels: (0..count * resolution * resolution * 3)
            .map(|_| rng.next_u64() as u8)
            .collect(),
        names: (0..count).map(|i| format!("random-{i}")).collect(),
    };
    let config = TrainConfig {
        model: model.clone(),
        data: PathBuf::from("(random)"),
        batch_size,
        loss: Loss::Logistic,
        learning_rate_generator: 2e-4,
        learning_rate_discriminator: 2e-4,
        beta1: 0.5,
        beta2: 0.999,
        ema_kimg: 10.0,
        ema_rampup: 0.1,
        total_kimg: 1.0,
        tick_kimg: 1.0,
        checkpoint_ticks: 1,
        keep_checkpoints: 1,
        grid_cells: 1,
        seed: 0,
        max_pixels: 0,
        fade_kimg: 0.0,
        stable_kimg: 0.0,
        held_out_percent: 0.0,
        swd_kimg: 0.0,
        swd_images: 0,
        augment: Vec::new(),
        warm_start: None,
        discriminator_warmup_kimg: 0.0,
        fine_stddev_untranslated: false,
    };
    let autodiff = device.clone().autodiff();
    let mut networks = Networks::new(&config, device);
    let mut plan = BatchPlan::new(0, count);
    let mut rates = Vec::new();
    for step in 0..steps + 2 {
        let start = Instant::now();
        let growth = growth_at(&config, 0);
        let stats = train_step(
            &mut networks,
            &config,
            &dataset,
            &mut plan,
            step,
            growth,
            true,
            &autodiff,
        );
        update_ema(&mut networks, 0.99);
        // Reading a value waits for the device to finish the step.
        let _ = stats.loss_generator.into_data();
        let _ = networks.ema.clone().into_record();
        if step >= 2 {
            rates.push(batch_size as f64 / start.elapsed().as_secs_f64());
        }
    }
    rates.sort_by(f64::total_cmp);
    Ok(BenchResult {
        median: rates.get(rates.len() / 2).copied().unwrap_or(0.0),
        best: rates.last().copied().unwrap_or(0.0),
    })
}
