//! The training loop: one discriminator step, then one generator step, measured in images shown.
//!
//! All randomness of step `k` (which images, which flips, which latents) is drawn from streams
//! derived from `(seed, k)`, and everything else that changes (weights, batch-norm statistics,
//! optimiser moments, the EMA generator, counters) is in each checkpoint, so a resumed run
//! continues exactly where the checkpoint left it.

use crate::augment::augment_keeping_untranslated;
use crate::checkpoint::{self, State};
use crate::config::TrainConfig;
use crate::data::{self, BatchPlan, Dataset, LoadOptions};
use crate::evaluate::{Reference, split_held_out};
use crate::grid;
use crate::growth::{self, growth_at};
use crate::logging;
use crate::loss::mean_of;
use crate::networks::{Networks, ema_beta, standing_statistics, update_ema};
use anyhow::{Context, Result, bail};
use burn::optim::GradientsParams;
use burn::prelude::*;
use catgan_model::blocks::downsample;
use catgan_model::format::sha256_hex;
use catgan_model::latent::latents_for_seeds;
use catgan_model::progan::ProganGenerator;
use catgan_model::rng::SplitMix64;
use catgan_model::{Discriminator, Growth};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tracing::{info, warn};

/// Per-run options that are not part of the configuration.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Show a progress bar.
    pub progress: bool,
    /// Stop (with a checkpoint) once this many steps are done, even before the end.
    pub stop_after_step: Option<u64>,
    /// Description of the device, for logs and checkpoints.
    pub device_name: String,
    /// Real images to measure SWD against every `swd_kimg` (none: no SWD during training).
    pub reference: Option<Arc<Reference>>,
    /// Held-out real images: with each SWD measurement the discriminator's mean score on them
    /// is logged beside its score on as many training images.
    pub held_out: Option<Arc<Dataset>>,
}

/// Losses and discriminator outputs of one step, still on the device.
pub(crate) struct StepStats {
    pub(crate) loss_generator: Tensor<1>,
    loss_discriminator: Tensor<1>,
    d_real: Tensor<1>,
    d_fake: Tensor<1>,
}

/// Stream number of per-step latents (data streams are in `data`).
const STREAM_LATENT: u64 = 3;
/// Stream number of per-step augmentation parameters.
const STREAM_AUGMENT: u64 = 4;

/// One training step on the batch of step `step`, at the growth stage `growth`. Without
/// `train_generator` only the discriminator learns (its losses are still measured).
#[allow(clippy::too_many_arguments)]
pub(crate) fn train_step(
    networks: &mut Networks,
    config: &TrainConfig,
    dataset: &Dataset,
    plan: &mut BatchPlan,
    step: u64,
    growth: Growth,
    train_generator: bool,
    device: &Device,
) -> StepStats {
    let batch = config.batch_size;
    let (indices, flips) = plan.batch(step, batch);
    let reals = dataset.batch(&indices, &flips, device);
    let reals = if config.model.stages() > 1 {
        growth::reals_at(reals, growth)
    } else {
        reals
    };
    // The latents, each followed by its noise values where the generator takes noise.
    let input_size = config.model.input_size();
    let mut latent = vec![0f32; batch * input_size];
    SplitMix64::derived(config.seed, STREAM_LATENT, step).fill_normal(&mut latent);
    let latent = Tensor::<2>::from_data(TensorData::new(latent, [batch, input_size]), device);

    // One generator pass serves both updates: detached for the discriminator's, live for the
    // generator's, which then sees the freshly updated discriminator.
    let (fakes, heads) = match networks.generator.as_progan() {
        Some(progan) => {
            let features = progan.features(latent, growth.stage);
            let fakes = progan.blend(&features, growth);
            let heads = head_loss(progan, &features, fakes.clone().detach(), growth);
            (fakes, heads)
        }
        None => (networks.generator.forward(latent), None),
    };

    // Each batch the discriminator sees gets its own draw of the augmentation, and is scored
    // with its unshifted view where the fine minibatch feature reads that.
    let mut augment_rng = SplitMix64::derived(config.seed, STREAM_AUGMENT, step);
    let mut score = |discriminator: &Discriminator, images: Tensor<4>| {
        let (augmented, untranslated) =
            augment_keeping_untranslated(images, &config.augment, &mut augment_rng);
        let texture = config.fine_stddev_untranslated.then_some(untranslated);
        discriminator.forward_training(augmented, texture, growth)
    };
    let discriminator = &networks.discriminator;
    let d_real = score(discriminator, reals.clone());
    let d_fake = score(discriminator, fakes.clone().detach());
    let loss_discriminator = config.loss.discriminator(d_real.clone(), d_fake.clone());
    let grads = GradientsParams::from_grads(loss_discriminator.backward(), &networks.discriminator);
    networks.discriminator = networks.optimizer_discriminator.step(
        config.learning_rate_discriminator,
        networks.discriminator.clone(),
        grads,
    );

    let discriminator = &networks.discriminator;
    let real_for_generator = config
        .loss
        .needs_real_for_generator()
        .then(|| score(discriminator, reals).detach());
    let loss_generator = config
        .loss
        .generator(real_for_generator, score(discriminator, fakes));
    if train_generator {
        let total = match heads {
            Some(heads) => loss_generator.clone() + heads,
            None => loss_generator.clone(),
        };
        let grads = GradientsParams::from_grads(total.backward(), &networks.generator);
        networks.generator = networks.optimizer_generator.step(
            config.learning_rate_generator,
            networks.generator.clone(),
            grads,
        );
    }

    StepStats {
        loss_generator: loss_generator.detach(),
        loss_discriminator: loss_discriminator.detach(),
        d_real: mean_of(d_real.detach()),
        d_fake: mean_of(d_fake.detach()),
    }
}

/// Keeps the RGB heads of the stages below the training one fitted to the downscaled output,
/// so that the exported generator can show the same cat at every stage ("watch it grow").
/// Once a stage has faded out, its head gets no adversarial gradient and would drift as the
/// layers below it keep learning. Features and targets are detached: only the heads learn
/// from this loss, so it does not change what the generator draws.
fn head_loss(
    progan: &ProganGenerator,
    features: &[Tensor<4>],
    output: Tensor<4>,
    growth: Growth,
) -> Option<Tensor<1>> {
    // During a fade the previous stage's head is part of the output and trained by it.
    let below = if growth.alpha < 1.0 {
        growth.stage.saturating_sub(1)
    } else {
        growth.stage
    };
    let mut target = output;
    let mut total: Option<Tensor<1>> = None;
    for stage in (0..growth.stage).rev() {
        target = downsample(target);
        if stage >= below {
            continue;
        }
        let drawn = progan.to_rgb(stage, features[stage].clone().detach());
        let loss = (drawn - target.clone()).powi_scalar(2).mean().reshape([1]);
        total = Some(match total {
            Some(sum) => sum + loss,
            None => loss,
        });
    }
    total
}

/// Resident memory of this process in MiB, where the platform tells.
fn resident_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// One line of `stats.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TickStats {
    /// Steps done.
    pub step: u64,
    /// Thousands of real images shown.
    pub kimg: f64,
    /// Mean generator loss over the tick.
    pub loss_generator: f64,
    /// Mean discriminator loss over the tick.
    pub loss_discriminator: f64,
    /// Mean raw discriminator output (logit) on real images.
    pub d_real: f64,
    /// Mean raw discriminator output (logit) on generated images.
    pub d_fake: f64,
    /// Wall-clock seconds per thousand images over the tick.
    pub seconds_per_kimg: f64,
    /// Training images per second over the tick.
    pub images_per_second: f64,
    /// Resident memory in MiB.
    pub memory_mib: Option<f64>,
    /// Moving-average decay per step at the end of the tick.
    pub ema_beta: f64,
    /// Total training seconds so far.
    pub training_seconds: f64,
    /// Progressive growing: the stage at the end of the tick (0 draws 4x4 images).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<usize>,
    /// Progressive growing: the fade-in weight of that stage at the end of the tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// SWD (times 1e3) of the moving-average generator against the reference set, mean over
    /// levels, where measured at this tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swd_mean: Option<f64>,
    /// The same per level, finest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swd_levels: Option<Vec<f64>>,
    /// SWD between two real sets of the same size: the best a generator can expect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swd_floor: Option<f64>,
    /// Whether SWD was measured with standing batch norm statistics, as exports are (see
    /// [`standing_statistics`]); absent where it was measured with the moving average's own
    /// running statistics, as before that existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swd_standing_statistics: Option<bool>,
    /// How much of each fine pyramid level (finest first) is the same in every one of the
    /// images SWD was measured on ([`crate::swd::shared_detail`]), where measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_detail: Option<Vec<f64>>,
    /// The same for the real reference images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_detail_real: Option<Vec<f64>>,
    /// How far the power spectrum of the images SWD was measured on lies from the reference's
    /// ([`crate::spectrum::gap`]: mean over cells, in nats), where measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spectrum_gap: Option<f64>,
    /// The same between the floor's two real sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spectrum_gap_floor: Option<f64>,
    /// Mean discriminator output (logit) on the first training images, scored in inference
    /// mode and without augmentation, where measured at this tick (with SWD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_training_images: Option<f64>,
    /// The same on as many held-out images. Far below `d_training_images`, the discriminator
    /// recognises the images it was trained on: it memorises rather than judges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d_held_out_images: Option<f64>,
}

/// Keeps only the stats lines up to `step` (those after a checkpoint are redone on resume).
/// The file is replaced whole, so a run killed while this rewrites it keeps its history.
fn truncate_stats(path: &Path, step: u64) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(path)?;
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<TickStats>(line)
                .map(|s| s.step <= step)
                .unwrap_or(false)
        })
        .map(|line| format!("{line}\n"))
        .collect();
    crate::export::write_atomic(path, kept.as_bytes())
}

/// Where a run stands after [`train`].
#[derive(Debug, Clone)]
pub struct Summary {
    /// The run folder.
    pub run: PathBuf,
    /// Steps done.
    pub step: u64,
    /// Thousands of images shown (with a warm start's).
    pub kimg: f64,
    /// Total training seconds (with a warm start's).
    pub training_seconds: f64,
    /// The newest checkpoint.
    pub checkpoint: PathBuf,
}

/// Reads a run's images, reporting skipped files, and splits off the held-out part: returns
/// (training images, held-out images).
pub fn load_data(config: &TrainConfig, progress: bool) -> Result<(Dataset, Dataset)> {
    let options = LoadOptions {
        resolution: config.model.resolution(),
        max_pixels: config.max_pixels,
        progress,
    };
    let (dataset, skipped) = data::load_folder(&config.data, &options)?;
    for skip in &skipped {
        warn!("skipped {}: {}", skip.path.display(), skip.reason);
    }
    let (dataset, held_out) = split_held_out(dataset, config.held_out_percent);
    data::require_batch(&config.data, &dataset, skipped.len(), config.batch_size)?;
    info!(
        "data: {} training and {} held-out images from {} ({} files skipped), {}x{}",
        dataset.len(),
        held_out.len(),
        config.data.display(),
        skipped.len(),
        dataset.resolution,
        dataset.resolution
    );
    Ok((dataset, held_out))
}

/// File in a run folder listing the training images by name, one per line.
pub const TRAINING_SET: &str = "training-set.txt";

/// Records which images a new run trains on; on resume, refuses a data folder whose training
/// images have changed since, naming what was added and removed.
pub fn check_training_set(run: &Path, dataset: &Dataset, resuming: bool) -> Result<()> {
    let path = run.join(TRAINING_SET);
    let listed = match std::fs::read_to_string(&path) {
        Ok(text) if resuming => text,
        // Runs from before the list was kept are trusted; the list starts now.
        _ => {
            let mut text = dataset.names.join("\n");
            text.push('\n');
            // Written beside its place and renamed, so a kill mid-write never leaves a partial
            // list that a resume would take for changed data.
            let temporary = path.with_extension("txt.tmp");
            std::fs::write(&temporary, text)
                .with_context(|| format!("cannot write {}", temporary.display()))?;
            return std::fs::rename(&temporary, &path)
                .with_context(|| format!("cannot move {} into place", path.display()));
        }
    };
    let before: std::collections::BTreeSet<&str> = listed.lines().collect();
    let now: std::collections::BTreeSet<&str> = dataset.names.iter().map(String::as_str).collect();
    if before == now {
        return Ok(());
    }
    let some = |names: Vec<&&str>| {
        let shown: Vec<&str> = names.iter().take(3).map(|n| **n).collect();
        let more = names.len().saturating_sub(shown.len());
        let mut text = format!("{} ({}", names.len(), shown.join(", "));
        if more > 0 {
            text.push_str(&format!(", and {more} more"));
        }
        text + ")"
    };
    let added: Vec<&&str> = now.difference(&before).collect();
    let removed: Vec<&&str> = before.difference(&now).collect();
    let mut changes = Vec::new();
    if !added.is_empty() {
        changes.push(format!("{} added", some(added)));
    }
    if !removed.is_empty() {
        changes.push(format!("{} gone", some(removed)));
    }
    bail!(
        "the training images changed since this run started: {}; {} lists the {} it was \
         trained on. Restore them, or start a new run",
        changes.join(", "),
        path.display(),
        before.len()
    )
}

/// The networks a new run starts with: random, or for a warm start the shipped generator's
/// weights (checked against the SHA-256 recorded in the config) with a new discriminator.
fn start_networks(config: &TrainConfig, device: &Device) -> Result<Networks> {
    let Some(warm) = &config.warm_start else {
        return Ok(Networks::new(config, device));
    };
    let bytes = std::fs::read(&warm.file)
        .with_context(|| format!("cannot read the warm start's {}", warm.file.display()))?;
    let digest = sha256_hex(&bytes);
    if digest != warm.sha256 {
        bail!(
            "{} changed since the run was set up (SHA-256 {digest}, config.json records {}); \
             start a new run from it",
            warm.file.display(),
            warm.sha256
        );
    }
    info!(
        "generator warm-started from {} ({}, {:.1} kimg)",
        warm.model,
        warm.file.display(),
        warm.kimg
    );
    Networks::warm_started(config, &bytes, device)
}

/// Trains the run in `run`, fresh (the folder must be prepared) or from its newest checkpoint.
pub fn train(
    run: &Path,
    config: &TrainConfig,
    dataset: &Dataset,
    device: &Device,
    options: &RunOptions,
) -> Result<Summary> {
    let stats_path = run.join("stats.jsonl");
    // A run folder copied without its sample grids (to branch a run from one checkpoint) still
    // resumes: the first tick would otherwise fail to write its grid, losing the tick's work.
    let samples = run.join("samples");
    std::fs::create_dir_all(&samples)
        .with_context(|| format!("cannot create {}", samples.display()))?;
    let (mut networks, mut state) = match checkpoint::latest(run)? {
        Some((_, path)) => {
            let state = checkpoint::read_state(&path)?;
            info!(
                "resuming from {} (step {}, {:.1} kimg)",
                path.display(),
                state.step,
                state.images as f64 / 1000.0
            );
            truncate_stats(&stats_path, state.step)?;
            (Networks::load(config, &path, device)?, state)
        }
        None => {
            let json = serde_json::to_string_pretty(config)?;
            std::fs::write(run.join("config.json"), json)
                .with_context(|| format!("cannot write config to {}", run.display()))?;
            let state = State {
                step: 0,
                images: 0,
                training_seconds: 0.0,
                seed: config.seed,
                device: options.device_name.clone(),
            };
            (start_networks(config, device)?, state)
        }
    };
    state.device = options.device_name.clone();
    let autodiff = device.clone().autodiff();
    let mut plan = BatchPlan::new(config.seed, dataset.len());
    let grid_latents = latents_for_seeds(0, config.grid_cells, config.model.input_size(), device);
    let total_steps = config.total_steps();
    let end_step = options
        .stop_after_step
        .unwrap_or(total_steps)
        .min(total_steps);
    let batch = config.batch_size as u64;

    let bar = progress_bar(options.progress, total_steps * batch, state.images);
    logging::set_bar(Some(bar.clone()));
    info!(
        "training {} on {}: {} steps of {} images to {:.0} kimg, run folder {}",
        config.model.arch(),
        options.device_name,
        total_steps,
        batch,
        config.total_kimg,
        run.display()
    );

    if config.discriminator_only(state.images) {
        info!(
            "only the discriminator learns until {} kimg of this run ({:.1} kimg in all); the \
             generator stays fixed",
            config.discriminator_warmup_kimg,
            config.discriminator_warmup_kimg + config.images_before_run() as f64 / 1000.0
        );
    }

    let mut stats = Vec::new();
    let mut tick_start = Instant::now();
    let mut tick_images_start = state.images;
    let mut ticks_since_checkpoint = 0;
    let mut last_checkpoint = checkpoint::latest(run)?.map(|(_, p)| p);
    let mut session_start = Instant::now();
    let mut seconds_at_start = state.training_seconds;

    while state.step < end_step {
        let beta = ema_beta(config, state.images);
        let growth = growth_at(config, state.images);
        stats.push(train_step(
            &mut networks,
            config,
            dataset,
            &mut plan,
            state.step,
            growth,
            !config.discriminator_only(state.images),
            &autodiff,
        ));
        update_ema(&mut networks, beta);
        state.step += 1;
        state.images += batch;
        state.training_seconds = seconds_at_start + session_start.elapsed().as_secs_f64();
        bar.set_position(state.images);
        bar.set_message(progress_message(config, state.images, growth));

        let tick_due =
            state.images / config.tick_images() > (state.images - batch) / config.tick_images();
        let last = state.step == end_step;
        if !(tick_due || last) {
            continue;
        }
        let mut tick = summarise(
            std::mem::take(&mut stats),
            &state,
            tick_start.elapsed().as_secs_f64(),
            state.images - tick_images_start,
            ema_beta(config, state.images),
            (config.model.stages() > 1).then_some(growth),
        )?;
        // A warm start's images and hours come first on the curves and in the grid names.
        tick.kimg += config.images_before_run() as f64 / 1000.0;
        tick.training_seconds += config.seconds_before_run();
        info!(
            "kimg {:.1}{}  step {}  loss G {:.3} D {:.3}  D(real) {:.2} D(fake) {:.2}  \
             {:.1} img/s  {:.0} MiB",
            tick.kimg,
            growth_label(config, growth),
            tick.step,
            tick.loss_generator,
            tick.loss_discriminator,
            tick.d_real,
            tick.d_fake,
            tick.images_per_second,
            tick.memory_mib.unwrap_or(0.0)
        );
        // Measured and drawn as an export of this moment would be.
        let shown = standing_statistics(&config.model, &networks.ema, device);
        if let Some(reference) = &options.reference
            && swd_due(config, state.images, batch)
        {
            let started = Instant::now();
            let growth = (config.model.stages() > 1).then_some(growth);
            let measured = reference.measure(&shown, growth, config.model.input_size(), device)?;
            let swd = measured.swd;
            info!(
                "SWD {:.2} (floor {:.2}, {} images, {:.1} s)",
                swd.mean,
                reference.floor.mean,
                reference.count,
                started.elapsed().as_secs_f64()
            );
            tick.swd_mean = Some(swd.mean);
            tick.swd_levels = Some(swd.per_level);
            tick.swd_floor = Some(reference.floor.mean);
            tick.swd_standing_statistics = Some(true);
            tick.shared_detail = Some(measured.shared_detail);
            tick.shared_detail_real = Some(reference.shared_detail.clone());
            tick.spectrum_gap = Some(measured.spectrum.mean);
            tick.spectrum_gap_floor = Some(reference.spectrum_floor.mean);
            if let Some(held_out) = &options.held_out {
                let discriminator = networks.discriminator.valid();
                let count = held_out.len().min(dataset.len()).min(MEMORISATION_IMAGES);
                let training = mean_score(&discriminator, dataset, count, growth, device);
                let unseen = mean_score(&discriminator, held_out, count, growth, device);
                info!("D on {count} real images: {training:.2} training, {unseen:.2} held-out");
                tick.d_training_images = Some(training);
                tick.d_held_out_images = Some(unseen);
            }
        }
        append_line(&stats_path, &serde_json::to_string(&tick)?)?;
        // Progressive runs show the stage being trained, enlarged to the full side.
        let images = shown
            .forward_growing(grid_latents.clone(), growth)
            .clamp(-1.0, 1.0);
        let images = growth::enlarge(images, config.model.resolution());
        let columns = (config.grid_cells as f64).sqrt().ceil() as usize;
        let grid = grid::to_grid(images, columns, 1)?;
        let name = format!("kimg-{:07.1}.png", tick.kimg);
        grid::save_png(&grid, &run.join("samples").join(name))?;

        ticks_since_checkpoint += 1;
        if ticks_since_checkpoint >= config.checkpoint_ticks || last {
            networks.check_finite(state.step)?;
            let path = checkpoint::write(run, &state, config.keep_checkpoints, |dir| {
                networks.save(dir)
            })?;
            info!("checkpoint {}", path.display());
            last_checkpoint = Some(path);
            ticks_since_checkpoint = 0;
        }
        tick_start = Instant::now();
        tick_images_start = state.images;
        // Time spent writing samples and checkpoints counts as training time.
        seconds_at_start = state.training_seconds;
        session_start = Instant::now();
    }
    bar.finish_and_clear();
    logging::set_bar(None);

    let checkpoint = match last_checkpoint {
        Some(path) => path,
        None => bail!("no checkpoint in {}", run.display()),
    };
    Ok(Summary {
        run: run.to_path_buf(),
        step: state.step,
        kimg: (state.images + config.images_before_run()) as f64 / 1000.0,
        training_seconds: state.training_seconds + config.seconds_before_run(),
        checkpoint,
    })
}

fn progress_bar(visible: bool, total_images: u64, done: u64) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total_images).with_style(
        ProgressStyle::with_template(
            "{elapsed_precise} {bar:30.cyan/blue} {msg} of {len_kimg} | {per_sec} | ETA {eta}",
        )
        .expect("valid template")
        .with_key(
            "len_kimg",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} kimg", state.len().unwrap_or(0) as f64 / 1000.0);
            },
        )
        .with_key(
            "per_sec",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1} img/s", state.per_sec());
            },
        ),
    );
    bar.set_position(done);
    bar.reset_eta();
    bar
}

/// Whether the tick ending at `images` crosses a multiple of `swd_kimg` (or is the first tick).
fn swd_due(config: &TrainConfig, images: u64, batch: u64) -> bool {
    if config.swd_kimg <= 0.0 {
        return false;
    }
    let every = ((config.swd_kimg * 1000.0) as u64).max(1);
    let tick = config.tick_images();
    let previous_tick = (images - batch) / tick * tick;
    images <= tick || images / every > previous_tick / every
}

/// The progress bar's message: kimg, and for progressive runs the stage and fade.
fn progress_message(config: &TrainConfig, images: u64, growth: Growth) -> String {
    format!(
        "{:.1} kimg{}",
        images as f64 / 1000.0,
        growth_label(config, growth)
    )
}

/// ` 16x16 fade 0.42` or ` 16x16`, or nothing for architectures that do not grow.
fn growth_label(config: &TrainConfig, growth: Growth) -> String {
    if config.model.stages() == 1 {
        return String::new();
    }
    let side = growth.side();
    if growth.alpha < 1.0 {
        format!(" {side}x{side} fade {:.2}", growth.alpha)
    } else {
        format!(" {side}x{side}")
    }
}

fn summarise(
    steps: Vec<StepStats>,
    state: &State,
    seconds: f64,
    images: u64,
    ema_beta: f64,
    growth: Option<Growth>,
) -> Result<TickStats> {
    let read = |pick: fn(&StepStats) -> Tensor<1>| -> Result<f64> {
        let values: Vec<Tensor<1>> = steps.iter().map(pick).collect();
        let data = Tensor::cat(values, 0).into_data().convert::<f32>();
        let values = data
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(values.iter().map(|&v| v as f64).sum::<f64>() / values.len().max(1) as f64)
    };
    let tick = TickStats {
        step: state.step,
        kimg: state.images as f64 / 1000.0,
        loss_generator: read(|s| s.loss_generator.clone())?,
        loss_discriminator: read(|s| s.loss_discriminator.clone())?,
        d_real: read(|s| s.d_real.clone())?,
        d_fake: read(|s| s.d_fake.clone())?,
        seconds_per_kimg: seconds / (images as f64 / 1000.0),
        images_per_second: images as f64 / seconds,
        memory_mib: resident_mib(),
        ema_beta,
        training_seconds: state.training_seconds,
        stage: growth.map(|g| g.stage),
        alpha: growth.map(|g| g.alpha as f64),
        swd_mean: None,
        swd_levels: None,
        swd_floor: None,
        swd_standing_statistics: None,
        shared_detail: None,
        shared_detail_real: None,
        spectrum_gap: None,
        spectrum_gap_floor: None,
        d_training_images: None,
        d_held_out_images: None,
    };
    for (value, what) in [
        (tick.loss_generator, "generator loss"),
        (tick.loss_discriminator, "discriminator loss"),
    ] {
        if !value.is_finite() {
            bail!(
                "the {what} became {value} before step {}; stopped without checkpointing, so \
                 the newest checkpoint is still the last good one (try a lower learning rate)",
                state.step
            );
        }
    }
    Ok(tick)
}

/// Real images per set for the discriminator's training vs held-out scores.
const MEMORISATION_IMAGES: usize = 384;

/// Mean output of `discriminator` (in inference mode) on the first `count` images of
/// `dataset`, unflipped, at the growth stage `growth` (none: full size).
fn mean_score(
    discriminator: &Discriminator,
    dataset: &Dataset,
    count: usize,
    growth: Option<Growth>,
    device: &Device,
) -> f64 {
    let mut sum = 0.0;
    for start in (0..count).step_by(64) {
        let indices: Vec<usize> = (start..(start + 64).min(count)).collect();
        let reals = dataset.batch(&indices, &vec![false; indices.len()], device);
        let scores = match growth {
            Some(growth) => discriminator.forward_growing(growth::reals_at(reals, growth), growth),
            None => discriminator.forward(reals),
        };
        sum += scores.sum().into_scalar::<f32>() as f64;
    }
    sum / count.max(1) as f64
}

fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(file, "{line}").with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::networks::{Collect, visit_by_path};
    use burn::module::Module;
    use burn::store::ModuleRecord;
    use catgan_model::ModelConfig;
    use catgan_model::resnet::ResnetConfig;
    use std::sync::Mutex;

    /// Tests that initialise networks take turns: the CPU device's random generator is global.
    static DEVICE_RNG: Mutex<()> = Mutex::new(());

    fn tiny_dataset() -> Dataset {
        let mut rng = SplitMix64::new(3);
        Dataset {
            resolution: 8,
            pixels: (0..16 * 8 * 8 * 3).map(|_| rng.next_u64() as u8).collect(),
            names: (0..16).map(|i| i.to_string()).collect(),
        }
    }

    /// Every float value (weights and batch-norm statistics) of the newest checkpoint's
    /// generator, EMA generator and discriminator. Values, not file bytes: parameter ids are
    /// random per initialisation and are stored in the files.
    fn weights(run: &Path, model: &ModelConfig) -> Vec<Vec<f32>> {
        let (_, newest) = checkpoint::latest(run).unwrap().unwrap();
        let device = Device::flex();
        let load = |name: &str| ModuleRecord::load(newest.join(name)).unwrap();
        let values = |module: &dyn Fn(&mut Collect)| {
            let mut collect = Collect(Vec::new());
            module(&mut collect);
            Tensor::cat(collect.0, 0)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let generator = |name: &str| {
            let g = model.init_generator(&device).load_record(load(name));
            values(&|c: &mut Collect| g.visit(c))
        };
        let d = model
            .init_discriminator(&device)
            .load_record(load(checkpoint::DISCRIMINATOR));
        vec![
            generator(checkpoint::GENERATOR),
            generator(checkpoint::GENERATOR_EMA),
            values(&|c: &mut Collect| d.visit(c)),
        ]
    }

    /// A new run of `config` in a temporary folder, stopped after step 3 (off a tick boundary).
    fn run_stopped_after_step_3(
        config: &TrainConfig,
        dataset: &Dataset,
        device: &Device,
    ) -> tempfile::TempDir {
        let run = tempfile::tempdir().unwrap();
        checkpoint::prepare_fresh(run.path(), false).unwrap();
        let stop = RunOptions {
            stop_after_step: Some(3),
            ..RunOptions::default()
        };
        let half = train(run.path(), config, dataset, device, &stop).unwrap();
        assert_eq!(half.step, 3);
        run
    }

    #[test]
    fn a_run_folder_copied_without_its_sample_grids_resumes() {
        let _turn = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex();
        let dataset = tiny_dataset();
        let config = TrainConfig::tiny_for_tests();
        let run = run_stopped_after_step_3(&config, &dataset, &device);
        std::fs::remove_dir_all(run.path().join("samples")).unwrap();
        let options = RunOptions::default();
        let done = train(run.path(), &config, &dataset, &device, &options).unwrap();
        assert_eq!(done.step, 8);
        assert!(run.path().join("samples/kimg-00000.0.png").exists());
    }

    /// Trains `config` straight through and again with a stop after step 3, resumed; the two
    /// must end with identical weights.
    fn check_exact_resume(config: &TrainConfig) {
        let _turn = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex();
        let dataset = tiny_dataset();
        let options = RunOptions::default();

        let straight = tempfile::tempdir().unwrap();
        checkpoint::prepare_fresh(straight.path(), false).unwrap();
        let done = train(straight.path(), config, &dataset, &device, &options).unwrap();
        assert_eq!(done.step, config.total_steps());
        assert_eq!(done.step, 8);

        // Stop off a tick boundary, then resume from that checkpoint to the end.
        let resumed = run_stopped_after_step_3(config, &dataset, &device);
        assert_eq!(
            train(resumed.path(), config, &dataset, &device, &options)
                .unwrap()
                .step,
            8
        );

        let model = &config.model;
        let (a, b) = (
            weights(straight.path(), model),
            weights(resumed.path(), model),
        );
        for (name, (x, y)) in ["generator", "EMA generator", "discriminator"]
            .iter()
            .zip(a.iter().zip(&b))
        {
            assert!(x == y, "{name} weights differ after resuming");
        }
        // Training changed the weights, so the comparison above is not vacuous.
        let fresh = tempfile::tempdir().unwrap();
        checkpoint::prepare_fresh(fresh.path(), false).unwrap();
        let first = RunOptions {
            stop_after_step: Some(1),
            ..RunOptions::default()
        };
        train(fresh.path(), config, &dataset, &device, &first).unwrap();
        assert_ne!(weights(fresh.path(), model)[0], a[0]);

        // The stats of the resumed run cover each tick once, in order.
        let stats = std::fs::read_to_string(resumed.path().join("stats.jsonl")).unwrap();
        let steps: Vec<u64> = stats
            .lines()
            .map(|l| serde_json::from_str::<TickStats>(l).unwrap().step)
            .collect();
        assert_eq!(steps, vec![2, 3, 4, 6, 8]);
    }

    #[test]
    fn a_run_resumed_halfway_ends_with_the_weights_of_an_uninterrupted_run() {
        check_exact_resume(&TrainConfig::tiny_for_tests());
    }

    /// A progressive run of two stages (4x4, then 8x8) that is stopped halfway through the
    /// fade-in of 8x8 and resumed ends where the uninterrupted run ends.
    #[test]
    fn a_progressive_run_resumed_in_the_middle_of_a_fade_continues_exactly() {
        let config = tiny_progan();
        assert_eq!(
            growth_at(&config, 3 * 4),
            Growth {
                stage: 1,
                alpha: 0.5
            }
        );
        check_exact_resume(&config);
    }

    /// An 8x8 residual GAN of width 4.
    fn tiny_resnet() -> ResnetConfig {
        ResnetConfig::new()
            .with_latent_size(8)
            .with_resolution(8)
            .with_generator_width(4)
            .with_discriminator_width(4)
    }

    #[test]
    fn a_residual_run_resumes_exactly() {
        let mut config = TrainConfig::tiny_for_tests();
        config.model = ModelConfig::Resnet(tiny_resnet());
        config.loss = crate::loss::Loss::Ralsgan;
        check_exact_resume(&config);
    }

    #[test]
    fn a_residual_run_with_noise_inputs_and_a_fine_minibatch_feature_resumes_exactly() {
        let mut config = TrainConfig::tiny_for_tests();
        config.model = ModelConfig::Resnet(
            tiny_resnet()
                .with_zero_init_branches(Some(false))
                .with_noise_inputs(Some(true))
                .with_fine_minibatch_stddev(Some(2)),
        );
        assert_eq!(config.model.input_size(), 8 + 64);
        check_exact_resume(&config);
        // Also with the fine feature reading the batch before its translation.
        config.augment = crate::augment::parse_policy("color,translation,cutout").unwrap();
        config.fine_stddev_untranslated = true;
        check_exact_resume(&config);
    }

    #[test]
    fn a_spectrum_feature_added_on_resume_starts_silent_then_learns() {
        let _turn = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex();
        let dataset = tiny_dataset();
        let mut config = TrainConfig::tiny_for_tests();
        config.model =
            ModelConfig::Resnet(tiny_resnet().with_discriminator_batch_norm(Some(false)));
        let run = run_stopped_after_step_3(&config, &dataset, &device);
        let (_, saved) = checkpoint::latest(run.path()).unwrap().unwrap();
        let mut added = config.clone();
        let ModelConfig::Resnet(resnet) = &config.model else {
            unreachable!()
        };
        added.model = ModelConfig::Resnet(resnet.clone().with_spectrum_pool(Some(2)));
        // Every saved weight is kept and the feature's weights start at zero: same scores.
        let scores = |config: &TrainConfig| {
            let networks = Networks::load(config, &saved, &device).unwrap();
            let images = dataset.batch(&[0, 1, 2, 3], &[false; 4], &device);
            networks.discriminator.valid().forward(images)
        };
        let (before, after) = (scores(&config), scores(&added));
        assert!((before - after).abs().max().into_scalar::<f32>() < 1e-6);
        let spectrum_weights = |run: &Path| {
            let (_, newest) = checkpoint::latest(run).unwrap().unwrap();
            let networks = Networks::load(&added, &newest, &device).unwrap();
            let mut found = None;
            visit_by_path(&networks.discriminator, |path, _, values| {
                if path.contains("spectrum_to_logit") {
                    found = Some(values.abs().max().into_scalar::<f32>());
                }
            });
            found.expect("the discriminator has no spectrum weights")
        };
        assert_eq!(spectrum_weights(run.path()), 0.0);
        let done = train(
            run.path(),
            &added,
            &dataset,
            &device,
            &RunOptions::default(),
        )
        .unwrap();
        assert_eq!(done.step, 8);
        assert!(spectrum_weights(run.path()) > 0.0);
    }

    fn tiny_progan() -> TrainConfig {
        TrainConfig::tiny_progan_for_tests()
    }

    #[test]
    fn progressive_stats_record_stage_and_alpha() {
        let _turn = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let config = tiny_progan();
        let run = tempfile::tempdir().unwrap();
        checkpoint::prepare_fresh(run.path(), false).unwrap();
        let device = Device::flex();
        train(
            run.path(),
            &config,
            &tiny_dataset(),
            &device,
            &RunOptions::default(),
        )
        .unwrap();
        let stats = std::fs::read_to_string(run.path().join("stats.jsonl")).unwrap();
        let growth: Vec<(Option<usize>, Option<f64>)> = stats
            .lines()
            .map(|l| serde_json::from_str::<TickStats>(l).unwrap())
            .map(|t| (t.stage, t.alpha))
            .collect();
        // Ticks every 2 steps of 4 images: 4x4 for 8 images, then the fade over 8 images.
        assert_eq!(
            growth,
            vec![
                (Some(0), Some(1.0)),
                (Some(1), Some(0.5)),
                (Some(1), Some(1.0)),
                (Some(1), Some(1.0))
            ]
        );
        // The grids show every stage at full size.
        let grid = image::open(run.path().join("samples/kimg-00000.0.png")).unwrap();
        assert_eq!(grid.width(), grid.height());
    }

    #[test]
    fn training_moves_the_discriminator_toward_telling_real_from_fake() {
        let _turn = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex();
        let mut config = TrainConfig::tiny_for_tests();
        config.total_kimg = 0.2;
        config.tick_kimg = 0.2;
        let run = tempfile::tempdir().unwrap();
        checkpoint::prepare_fresh(run.path(), false).unwrap();
        train(
            run.path(),
            &config,
            &tiny_dataset(),
            &device,
            &RunOptions::default(),
        )
        .unwrap();
        let stats = std::fs::read_to_string(run.path().join("stats.jsonl")).unwrap();
        let tick: TickStats = serde_json::from_str(stats.lines().last().unwrap()).unwrap();
        assert!(tick.d_real > tick.d_fake, "{tick:?}");
        assert!(
            tick.loss_discriminator < 2.0 * std::f64::consts::LN_2,
            "{tick:?}"
        );
        assert!(run.path().join("samples/kimg-00000.2.png").exists());
    }

    #[test]
    fn swd_is_measured_and_logged_every_swd_kimg() {
        use catgan_model::dcgan::DcganConfig;
        let _turn = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let mut config = TrainConfig::tiny_for_tests();
        config.model = ModelConfig::Dcgan(
            DcganConfig::new()
                .with_latent_size(8)
                .with_resolution(16)
                .with_generator_width(4)
                .with_discriminator_width(4),
        );
        config.swd_kimg = 0.016; // every second tick of 8 images
        let mut rng = SplitMix64::new(9);
        let dataset = Dataset {
            resolution: 16,
            pixels: (0..40 * 16 * 16 * 3)
                .map(|_| rng.next_u64() as u8)
                .collect(),
            names: (0..40).map(|i| i.to_string()).collect(),
        };
        let reference = Reference::new(&dataset, None, 16).unwrap();
        assert_eq!(reference.count, 16);
        let floor = reference.floor.mean;
        let options = RunOptions {
            reference: Some(Arc::new(reference)),
            held_out: Some(Arc::new(noise_images(8, 16, 10))),
            ..RunOptions::default()
        };
        let run = tempfile::tempdir().unwrap();
        checkpoint::prepare_fresh(run.path(), false).unwrap();
        train(run.path(), &config, &dataset, &Device::flex(), &options).unwrap();
        let stats = std::fs::read_to_string(run.path().join("stats.jsonl")).unwrap();
        let ticks: Vec<TickStats> = stats
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // `catgan report` knows every field written.
        for line in stats.lines() {
            let fields: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(line).unwrap();
            for key in fields.keys() {
                assert!(
                    crate::report::KNOWN_FIELDS.contains(&key.as_str()),
                    "{key} is unknown to catgan report"
                );
            }
        }
        let measured: Vec<u64> = ticks
            .iter()
            .filter(|t| t.swd_mean.is_some())
            .map(|t| t.step)
            .collect();
        // Ticks at steps 2, 4, 6, 8 (8 images each); SWD at the first and every 16 images.
        assert_eq!(measured, vec![2, 4, 8]);
        let tick = &ticks[1];
        assert_eq!(tick.swd_floor, Some(floor));
        assert_eq!(tick.swd_levels.as_ref().map(Vec::len), Some(1));
        // 16x16 images have no detail level above the coarsest, so nothing is shared.
        assert_eq!(tick.shared_detail, Some(vec![]));
        assert_eq!(tick.shared_detail_real, Some(vec![]));
        // An untrained generator is far from noise-like real images' statistics.
        assert!(tick.swd_mean.unwrap() > floor, "{tick:?}");
        // The discriminator's scores on training and held-out images come with each SWD.
        for tick in &ticks {
            assert_eq!(tick.d_training_images.is_some(), tick.swd_mean.is_some());
            assert_eq!(tick.d_held_out_images.is_some(), tick.swd_mean.is_some());
        }
    }

    /// `count` images of uniform noise, side `side`, from seed `seed`.
    fn noise_images(count: usize, side: usize, seed: u64) -> Dataset {
        let mut rng = SplitMix64::new(seed);
        Dataset {
            resolution: side,
            pixels: (0..count * side * side * 3)
                .map(|_| rng.next_u64() as u8)
                .collect(),
            names: (0..count).map(|i| format!("{seed}-{i}")).collect(),
        }
    }

    #[test]
    fn a_discriminator_that_memorises_a_few_images_scores_them_above_held_out_ones() {
        let _turn = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex();
        use catgan_model::dcgan::DcganConfig;
        let mut config = TrainConfig::tiny_for_tests();
        config.model = ModelConfig::Dcgan(
            DcganConfig::new()
                .with_latent_size(8)
                .with_resolution(8)
                .with_generator_width(4)
                .with_discriminator_width(32),
        );
        config.total_kimg = 0.8; // 200 steps over the same 8 noise images
        let (training, held_out) = (noise_images(8, 8, 1), noise_images(8, 8, 2));
        let run = tempfile::tempdir().unwrap();
        checkpoint::prepare_fresh(run.path(), false).unwrap();
        train(
            run.path(),
            &config,
            &training,
            &device,
            &RunOptions::default(),
        )
        .unwrap();
        let (_, newest) = checkpoint::latest(run.path()).unwrap().unwrap();
        let networks = Networks::load(&config, &newest, &device).unwrap();
        let discriminator = networks.discriminator.valid();
        let seen = mean_score(&discriminator, &training, 8, None, &device);
        let unseen = mean_score(&discriminator, &held_out, 8, None, &device);
        assert!(
            seen > unseen + 0.5,
            "training {seen:.3}, held-out {unseen:.3}"
        );
    }

    /// A tiny run trained for four steps: its folder, configuration and newest checkpoint.
    fn four_steps_in(device: &Device) -> (tempfile::TempDir, TrainConfig, PathBuf) {
        let config = TrainConfig::tiny_for_tests();
        let run = tempfile::tempdir().unwrap();
        checkpoint::prepare_fresh(run.path(), false).unwrap();
        let four = RunOptions {
            stop_after_step: Some(4),
            ..RunOptions::default()
        };
        train(run.path(), &config, &tiny_dataset(), device, &four).unwrap();
        let (_, good) = checkpoint::latest(run.path()).unwrap().unwrap();
        (run, config, good)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_disk_stops_the_run_with_the_file_and_reason_and_loses_no_checkpoint() {
        let _turn = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex();
        let (run, config, good) = four_steps_in(&device);

        // The disk fills up: writing the next sample grid fails with ENOSPC. (Tiny runs name
        // every grid kimg-00000.0.png; it is written beside its place first.)
        let grid = run.path().join("samples/kimg-00000.0.png.tmp");
        std::os::unix::fs::symlink("/dev/full", &grid).unwrap();
        let error = train(
            run.path(),
            &config,
            &tiny_dataset(),
            &device,
            &RunOptions::default(),
        )
        .unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains("kimg-00000.0.png"), "{message}");
        assert!(message.contains("No space left on device"), "{message}");
        assert_eq!(checkpoint::latest(run.path()).unwrap().unwrap().1, good);
        // The half-written file is gone.
        assert!(std::fs::symlink_metadata(&grid).is_err());

        // Space is freed: the run resumes from the last good checkpoint and finishes.
        let summary = train(
            run.path(),
            &config,
            &tiny_dataset(),
            &device,
            &RunOptions::default(),
        )
        .unwrap();
        assert_eq!(summary.step, config.total_steps());
    }

    #[test]
    fn resuming_on_changed_training_images_is_refused_with_the_difference() {
        let run = tempfile::tempdir().unwrap();
        let mut data = tiny_dataset();
        check_training_set(run.path(), &data, false).unwrap();
        check_training_set(run.path(), &data, true).unwrap();
        let original = data.names.clone();
        data.names[0] = "intruder.png".into();
        let error = check_training_set(run.path(), &data, true)
            .unwrap_err()
            .to_string();
        assert!(error.contains("1 (intruder.png) added"), "{error}");
        assert!(
            error.contains(&format!("1 ({}) gone", original[0])),
            "{error}"
        );
        assert!(error.contains(TRAINING_SET), "{error}");
        // A fresh run (--force) starts a new list.
        check_training_set(run.path(), &data, false).unwrap();
        check_training_set(run.path(), &data, true).unwrap();
    }

    #[test]
    fn a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint_newest() {
        let _turn = DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner());
        let device = Device::flex();
        let (run, mut config, good) = four_steps_in(&device);

        // An absurd learning rate sends the weights, then the losses, to infinity.
        config.learning_rate_generator = 1e30;
        config.learning_rate_discriminator = 1e30;
        let error = train(
            run.path(),
            &config,
            &tiny_dataset(),
            &device,
            &RunOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("loss became"), "{error}");
        assert!(error.contains("before step 6"), "{error}");
        assert!(error.contains("last good one"), "{error}");
        let (_, newest) = checkpoint::latest(run.path()).unwrap().unwrap();
        assert_eq!(newest, good);
    }
}
