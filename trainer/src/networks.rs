//! Both networks of a run with their optimisers, the generator's moving average (EMA), and
//! their checkpoint files.

use crate::checkpoint;
use crate::config::TrainConfig;
use anyhow::{Context, Result};
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, ModuleOptimizer};
use burn::prelude::*;
use burn::store::ModuleRecord;
use catgan_model::format::{detached_copy, weights_record};
use catgan_model::latent::latents_for_seeds;
use catgan_model::{Discriminator, Generator, ModelConfig};
use std::path::Path;

/// Both networks, their optimisers and the moving-average generator.
pub struct Networks {
    /// The generator being trained (on the autodiff device).
    pub generator: Generator,
    /// The discriminator being trained (on the autodiff device).
    pub discriminator: Discriminator,
    /// Moving average of the generator's weights, on the plain (non-autodiff) device.
    pub ema: Generator,
    /// Adam for the generator.
    pub optimizer_generator: ModuleOptimizer,
    /// Adam for the discriminator.
    pub optimizer_discriminator: ModuleOptimizer,
}

/// A residual model's config without its noise inputs; none for a model without them.
fn without_noise(model: &ModelConfig) -> Option<ModelConfig> {
    match model {
        ModelConfig::Resnet(c) if c.noise_inputs == Some(true) => {
            Some(ModelConfig::Resnet(c.clone().with_noise_inputs(None)))
        }
        _ => None,
    }
}

/// The same model with a residual discriminator's spectrum feature taken out; `None` where it
/// has none.
fn without_spectrum(model: &ModelConfig) -> Option<ModelConfig> {
    match model {
        ModelConfig::Resnet(c) if c.spectrum_pool.is_some() => {
            Some(ModelConfig::Resnet(c.clone().with_spectrum_pool(None)))
        }
        _ => None,
    }
}

/// Fills the module `init` makes for `model` with `record`. Where the record does not fit and
/// `older` (the same model without parts added since the record was written) exists, the record
/// must fit `older`'s module exactly, and every weight is carried over; the added parts keep
/// their initial values. The outer error is a record that cannot be read; the inner one, weights
/// that do not fit (the first load's error).
fn load_adding<M: Module>(
    model: &ModelConfig,
    older: Option<ModelConfig>,
    init: impl Fn(&ModelConfig) -> M,
    record: impl Fn() -> Result<ModuleRecord>,
) -> Result<Result<M>> {
    let misfit = match init(model).try_load_record(record()?) {
        Ok(module) => return Ok(Ok(module)),
        Err(error) => anyhow::anyhow!("{error}"),
    };
    let Some(older) = older else {
        return Ok(Err(misfit));
    };
    let loaded = match init(&older).try_load_record(record()?) {
        Ok(loaded) => loaded,
        Err(_) => return Ok(Err(misfit)),
    };
    Ok(init(model)
        .try_load_record(loaded.into_record().allow_partial(true))
        .map_err(|e| anyhow::anyhow!("{e}")))
}

fn adam(config: &TrainConfig) -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(config.beta1)
        .with_beta_2(config.beta2)
        .with_epsilon(1e-8)
        .init()
}

impl Networks {
    /// Fresh networks seeded by `config.seed`.
    pub fn new(config: &TrainConfig, device: &Device) -> Self {
        device.seed(config.seed);
        let autodiff = device.clone().autodiff();
        let generator = config.model.init_generator(&autodiff);
        let discriminator = config.model.init_discriminator(&autodiff);
        let ema = detached_copy(&config.model, &generator, device).valid();
        Self {
            generator,
            discriminator,
            ema,
            optimizer_generator: adam(config),
            optimizer_discriminator: adam(config),
        }
    }

    /// Fresh networks, except that the generator and its moving average start from serialised
    /// weights (a shipped model's file, int8 dequantised): a warm start. The discriminator is
    /// new, seeded as in [`Networks::new`]. A residual generator given noise inputs that the
    /// shipped one lacks keeps every shipped weight and gains noise strengths of zero, so it
    /// starts out drawing exactly what the shipped one drew.
    pub fn warm_started(config: &TrainConfig, weights: &[u8], device: &Device) -> Result<Self> {
        let mut networks = Self::new(config, device);
        let autodiff = device.clone().autodiff();
        let record = || weights_record(weights).map_err(anyhow::Error::msg);
        networks.generator = load_adding(
            &config.model,
            without_noise(&config.model),
            |model| model.init_generator(&autodiff),
            record,
        )?
        .map_err(|e| anyhow::anyhow!("the warm start's weights do not fit: {e}"))?;
        networks.ema = detached_copy(&config.model, &networks.generator, device).valid();
        Ok(networks)
    }

    /// Networks as saved in `checkpoint`.
    pub fn load(config: &TrainConfig, checkpoint: &Path, device: &Device) -> Result<Self> {
        let autodiff = device.clone().autodiff();
        let record = |name: &str| {
            let path = checkpoint.join(name);
            ModuleRecord::load(&path).with_context(|| format!("cannot read {}", path.display()))
        };
        let shape_error = |name: &str| format!("{} does not fit this model", name);
        let generator = config
            .model
            .init_generator(&autodiff)
            .try_load_record(record(checkpoint::GENERATOR)?)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| shape_error(checkpoint::GENERATOR))?;
        // A spectrum feature added on resume: every saved weight must fit, and the feature's
        // own weights start at zero, as in a new discriminator.
        let discriminator = load_adding(
            &config.model,
            without_spectrum(&config.model),
            |model| model.init_discriminator(&autodiff),
            || record(checkpoint::DISCRIMINATOR),
        )?
        .with_context(|| shape_error(checkpoint::DISCRIMINATOR))?;
        let ema = config
            .model
            .init_generator(device)
            .try_load_record(record(checkpoint::GENERATOR_EMA)?)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| shape_error(checkpoint::GENERATOR_EMA))?
            .valid();
        let optimizer = |name: &str| {
            let path = checkpoint.join(name);
            adam(config)
                .load(&path)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("cannot read {}", path.display()))
        };
        Ok(Self {
            generator,
            discriminator,
            ema,
            optimizer_generator: optimizer(checkpoint::OPTIMIZER_GENERATOR)?,
            optimizer_discriminator: optimizer(checkpoint::OPTIMIZER_DISCRIMINATOR)?,
        })
    }

    /// Writes every network and optimiser into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let save = |record: ModuleRecord, name: &str| {
            let path = dir.join(name);
            record
                .save(&path)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("cannot write {}", path.display()))
        };
        // Batch norm keeps its newest running statistics pending until the next forward pass;
        // a record taken straight from the training modules would miss them. `valid()` commits
        // them and gives a snapshot with the same parameter ids.
        save(self.generator.valid().into_record(), checkpoint::GENERATOR)?;
        save(self.ema.clone().into_record(), checkpoint::GENERATOR_EMA)?;
        save(
            self.discriminator.valid().into_record(),
            checkpoint::DISCRIMINATOR,
        )?;
        for (optimizer, name) in [
            (&self.optimizer_generator, checkpoint::OPTIMIZER_GENERATOR),
            (
                &self.optimizer_discriminator,
                checkpoint::OPTIMIZER_DISCRIMINATOR,
            ),
        ] {
            let path = dir.join(name);
            optimizer
                .save(&path)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

/// Calls `visit(path, shape, values)` for every float tensor of a module (weights and batch-norm
/// statistics), with its path such as `blocks.0.conv.weight` and its values flattened.
struct ByPath<F> {
    path: Vec<String>,
    visit: F,
}

impl<F: FnMut(&str, Vec<usize>, Tensor<1>)> ModuleVisitor for ByPath<F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().without_autodiff();
        let shape = value.dims().to_vec();
        let count = value.shape().num_elements();
        (self.visit)(&self.path.join("."), shape, value.reshape([count]));
    }
}

/// Visits every float tensor of `module` with its path and shape (see [`ByPath`]).
pub(crate) fn visit_by_path<M: Module>(module: &M, visit: impl FnMut(&str, Vec<usize>, Tensor<1>)) {
    module.visit(&mut ByPath {
        path: Vec::new(),
        visit,
    });
}

/// The path of the first weight of `module` that is NaN or infinite, if any.
pub fn first_non_finite<M: Module>(module: &M) -> Option<String> {
    let mut found = None;
    visit_by_path(module, |path, _, values| {
        if found.is_none() && !values.is_finite().all().into_scalar::<bool>() {
            found = Some(path.to_string());
        }
    });
    found
}

impl Networks {
    /// Refuses weights that hold a NaN or an infinity, naming the network and the tensor.
    /// Checked before every checkpoint, so a broken model never becomes the newest one.
    pub fn check_finite(&self, step: u64) -> Result<()> {
        let networks: [(&str, Option<String>); 3] = [
            ("generator", first_non_finite(&self.generator)),
            ("discriminator", first_non_finite(&self.discriminator)),
            ("generator's moving average", first_non_finite(&self.ema)),
        ];
        for (network, found) in networks {
            if let Some(path) = found {
                anyhow::bail!(
                    "the {network}'s weights `{path}` hold a NaN or an infinity at step {step}; \
                     stopped without checkpointing, so the newest checkpoint is still the last \
                     good one (try a lower learning rate)"
                );
            }
        }
        Ok(())
    }
}

/// Collects a module's float tensors (weights and batch-norm statistics) in visiting order.
pub(crate) struct Collect(pub(crate) Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let value = param.val().without_autodiff();
        let count = value.shape().num_elements();
        self.0.push(value.reshape([count]));
    }
}

/// Moves each float tensor of the module it maps toward the collected ones.
struct Blend {
    sources: std::vec::IntoIter<Tensor<1>>,
    beta: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let source = self
            .sources
            .next()
            .expect("EMA and generator have the same layout");
        let beta = self.beta;
        param.map(|average| {
            let dims = average.dims();
            average.mul_scalar(beta) + source.reshape(dims).mul_scalar(1.0 - beta)
        })
    }
}

/// Decay of the moving average for one step, from its half-life in images. The ramp-up counts
/// the images of a warm start: its generator is not a random one.
pub fn ema_beta(config: &TrainConfig, images_before: u64) -> f64 {
    let shown = (images_before + config.images_before_run()) as f64;
    let half_life = (config.ema_kimg * 1000.0).min(shown * config.ema_rampup);
    if half_life <= 0.0 {
        return 0.0;
    }
    0.5f64.powf(config.batch_size as f64 / half_life)
}

/// Forward passes, and latents in each, that re-measure a generator's batch norm statistics.
const STANDING_PASSES: usize = 16;
const STANDING_BATCH: usize = 64;
/// Seeds of those latents start here, apart from the sample grids' and SWD's.
const STANDING_SEED_BASE: u64 = 3 << 32;
/// Batch norm's momentum in every generator (`BatchNormConfig`'s default): a training pass
/// moves the running statistics this far toward the batch's.
const BATCH_NORM_MOMENTUM: f64 = 0.1;

/// Whether a tensor's field name (the last part of its path) is a batch norm running statistic.
fn is_running_statistic(field: Option<&str>) -> bool {
    matches!(field, Some("running_mean" | "running_var"))
}

/// Replaces batch norm running statistics, in visiting order, by `values` (zeros once they run
/// out), and leaves every other tensor as it is.
struct SetRunning {
    path: Vec<String>,
    values: std::vec::IntoIter<Tensor<1>>,
}

impl ModuleMapper for SetRunning {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if !is_running_statistic(self.path.last().map(String::as_str)) {
            return param;
        }
        let value = self.values.next();
        param.map(|old| match value {
            Some(value) => value.reshape(old.dims()).to_device(&old.device()),
            None => old.zeros_like(),
        })
    }
}

/// A module's batch norm running statistics, in visiting order, flattened.
fn running_statistics<M: Module>(module: &M) -> Vec<Tensor<1>> {
    let mut found = Vec::new();
    visit_by_path(module, |path, _, values| {
        if is_running_statistic(path.rsplit('.').next()) {
            found.push(values);
        }
    });
    found
}

/// A copy of `generator` whose batch norm running statistics are measured on its own outputs
/// ("standing statistics"); a generator without batch norm comes back as it is.
///
/// The moving-average generator's running statistics are a moving average of the trained
/// generator's, which were measured on other weights: they do not match the activations of the
/// averaged weights, and in inference mode that shifts every normalised layer. Here each of
/// `STANDING_PASSES` batches of fixed latents goes through a copy in training mode, whose
/// running statistics start at zero, so that afterwards they hold the batch's own statistics
/// times the momentum; the result holds their mean over all passes. Fixed latents make it
/// deterministic.
pub fn standing_statistics(
    config: &ModelConfig,
    generator: &Generator,
    device: &Device,
) -> Generator {
    let copy = |device: &Device| detached_copy(config, generator, device);
    if running_statistics(generator).is_empty() {
        return copy(device);
    }
    // Batch norm uses batch statistics only on an autodiff device. Without parameters that
    // need gradients no graph is kept, so forward passes alone free their memory.
    let autodiff = device.clone().autodiff();
    let zeros = || SetRunning {
        path: Vec::new(),
        values: Vec::new().into_iter(),
    };
    let mut sums: Vec<Tensor<1>> = Vec::new();
    for pass in 0..STANDING_PASSES {
        let training = copy(&autodiff).no_grad().map(&mut zeros());
        let first_seed = STANDING_SEED_BASE + (pass * STANDING_BATCH) as u64;
        let latents = latents_for_seeds(first_seed, STANDING_BATCH, config.input_size(), &autodiff);
        drop(training.forward(latents));
        // `valid()` commits the pass's pending statistics.
        let measured = running_statistics(&training.valid());
        sums = if sums.is_empty() {
            measured
        } else {
            sums.into_iter().zip(measured).map(|(a, b)| a + b).collect()
        };
    }
    let scale = 1.0 / (STANDING_PASSES as f64 * BATCH_NORM_MOMENTUM);
    let means: Vec<Tensor<1>> = sums.into_iter().map(|s| s.mul_scalar(scale)).collect();
    copy(device).map(&mut SetRunning {
        path: Vec::new(),
        values: means.into_iter(),
    })
}

/// Moves the EMA generator toward the trained one by `1 - beta`.
pub fn update_ema(networks: &mut Networks, beta: f64) {
    let mut collect = Collect(Vec::new());
    // `valid()` commits batch norm's pending running statistics (see `Networks::save`).
    networks.generator.valid().visit(&mut collect);
    let mut blend = Blend {
        sources: collect.0.into_iter(),
        beta,
    };
    networks.ema = networks.ema.clone().map(&mut blend);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turns the float tensor at one path into NaNs.
    #[derive(Default)]
    struct Paths {
        path: Vec<String>,
        poison: Option<String>,
    }

    impl ModuleMapper for Paths {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if self.poison.as_deref() == Some(self.path.join(".").as_str()) {
                param.map(|t| t.mul_scalar(f32::NAN))
            } else {
                param
            }
        }
    }

    #[test]
    fn non_finite_weights_are_found_and_named_with_their_network() {
        let config = TrainConfig::tiny_for_tests();
        let device = Device::flex();
        let mut networks = Networks::new(&config, &device);
        networks.check_finite(7).unwrap();
        assert_eq!(first_non_finite(&networks.discriminator), None);

        let mut paths = Vec::new();
        visit_by_path(&networks.discriminator, |path, _, _| {
            paths.push(path.to_string())
        });
        let victim = paths.last().unwrap().clone();
        let mut poison = Paths {
            poison: Some(victim.clone()),
            ..Paths::default()
        };
        networks.discriminator = networks.discriminator.clone().map(&mut poison);

        assert_eq!(
            first_non_finite(&networks.discriminator),
            Some(victim.clone())
        );
        let error = networks.check_finite(7).unwrap_err().to_string();
        assert!(error.contains("discriminator's weights"), "{error}");
        assert!(error.contains(&victim), "{error}");
        assert!(error.contains("step 7"), "{error}");
        assert!(!error.contains("generator"), "{error}");
    }

    #[test]
    fn ema_half_life_ramps_up_then_holds() {
        let mut config = TrainConfig::tiny_for_tests();
        config.batch_size = 64;
        config.ema_kimg = 10.0;
        config.ema_rampup = 0.1;
        assert_eq!(ema_beta(&config, 0), 0.0);
        // After 6,400 images the half-life is 640 images: 10 steps of 64 halve the weight.
        let beta = ema_beta(&config, 6_400);
        assert!((beta.powi(10) - 0.5).abs() < 1e-9, "{beta}");
        // From 100k images on, the half-life is the configured 10k images.
        let beta = ema_beta(&config, 1_000_000);
        assert!((beta.powi(10_000 / 64) - 0.5).abs() < 0.01, "{beta}");
        // A warm-started generator has been trained already: no ramp-up from its first step.
        config.warm_start = Some(crate::config::WarmStart {
            model: "m".into(),
            file: "m.bpk".into(),
            sha256: String::new(),
            kimg: 300.0,
            training_seconds: 0.0,
            command: String::new(),
        });
        assert_eq!(ema_beta(&config, 0), beta);
    }

    use crate::export::max_abs_difference;

    fn values(images: Tensor<4>) -> Vec<f32> {
        images
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn standing_statistics_make_inference_match_the_generators_own_batches() {
        let config = TrainConfig::tiny_for_tests();
        let device = Device::flex();
        // A fresh generator's running statistics (mean 0, variance 1) are far from those of
        // its activations, as a moving average's can be.
        let ema = Networks::new(&config, &device).ema;
        let autodiff = device.clone().autodiff();
        let latents = |device: &Device| latents_for_seeds(500, 256, 8, device);
        let batch = values(
            detached_copy(&config.model, &ema, &autodiff)
                .no_grad()
                .forward(latents(&autodiff)),
        );
        let before = values(ema.forward(latents(&device)));
        let standing = standing_statistics(&config.model, &ema, &device);
        let after = values(standing.forward(latents(&device)));
        let (was, now) = (
            max_abs_difference(&before, &batch),
            max_abs_difference(&after, &batch),
        );
        assert!(was > 0.1, "running statistics already matched ({was})");
        assert!(now < 0.02, "{was} -> {now}");
        // The original keeps its own statistics: nothing is shared with the copy.
        assert_eq!(values(ema.forward(latents(&device))), before);
        // Deterministic: fixed latents.
        let again = standing_statistics(&config.model, &ema, &device);
        assert_eq!(values(again.forward(latents(&device))), after);
    }
}
