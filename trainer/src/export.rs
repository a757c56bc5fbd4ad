//! `catgan export` (a run's EMA generator into `assets/`) and `catgan sample` (a grid from the
//! shipped weights alone).

use crate::checkpoint::{self, State};
use crate::config::TrainConfig;
use crate::grid;
use crate::growth::enlarge;
use crate::heads::fit_heads;
use crate::networks::{standing_statistics, visit_by_path};
use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::prelude::*;
use burn::store::ModuleRecord;
use catgan_model::Generator;
use catgan_model::format::{
    FORMAT_VERSION, Manifest, ManifestEntry, Precision, decode_generator, encode_generator,
    sha256_hex,
};
use catgan_model::latent::latents_for_seeds;
use std::path::{Path, PathBuf};
use tracing::info;

/// File in a run folder listing the command of each training session, one per line.
pub const COMMANDS: &str = "commands.txt";

/// What `catgan export` does.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The run folder.
    pub run: PathBuf,
    /// Model name in the manifest; also the weights file's stem.
    pub name: String,
    /// The assets folder.
    pub assets: PathBuf,
    /// Forced precision; `None` takes the smallest (int8, then f16) within `tolerance`.
    pub precision: Option<Precision>,
    /// Largest accepted pixel difference (in [-1, 1]) between stored and f32 outputs.
    pub tolerance: f32,
}

/// Reads a run's configuration.
pub fn read_config(run: &Path) -> Result<TrainConfig> {
    let path = run.join("config.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {} (is {} a run folder?)",
            path.display(),
            run.display()
        )
    })?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid run config", path.display()))
}

/// Pixels of a generator's images for a fixed set of latents.
fn probe(generator: &Generator, input_size: usize, device: &Device) -> Result<Vec<f32>> {
    generator
        .forward(latents_for_seeds(0, 16, input_size, device))
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .map_err(|e| anyhow::anyhow!("cannot read images: {e:?}"))
}

/// Largest absolute difference between two equally long lists of pixel values.
pub(crate) fn max_abs_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    std::fs::write(&temporary, bytes)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::File::open(&temporary)?.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot move {} into place", path.display()))
}

/// Reads `manifest.json` in `assets`, or an empty manifest if there is none yet.
pub fn read_manifest(assets: &Path) -> Result<Manifest> {
    let path = assets.join("manifest.json");
    if !path.exists() {
        return Ok(Manifest {
            format_version: FORMAT_VERSION,
            models: Vec::new(),
        });
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Manifest::from_json(&text).with_context(|| format!("in {}", path.display()))
}

/// Latents the lower RGB heads of a progressive generator are refitted on at export.
const HEAD_FIT_LATENTS: usize = 256;

/// A run's settings, and the state and moving-average generator of its newest checkpoint, with
/// standing batch norm statistics (see [`standing_statistics`]).
pub fn load_run_ema(run: &Path, device: &Device) -> Result<(TrainConfig, State, Generator)> {
    let config = read_config(run)?;
    let Some((_, checkpoint)) = checkpoint::latest(run)? else {
        bail!("{} has no checkpoint yet", run.display());
    };
    let state = checkpoint::read_state(&checkpoint)?;
    let path = checkpoint.join(checkpoint::GENERATOR_EMA);
    let record =
        ModuleRecord::load(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let generator = config
        .model
        .init_generator(device)
        .try_load_record(record)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("{} does not fit the run's config", path.display()))?
        .valid();
    let generator = standing_statistics(&config.model, &generator, device);
    Ok((config, state, generator))
}

/// Exports the newest checkpoint's EMA generator and updates the manifest.
pub fn export(options: &ExportOptions, device: &Device) -> Result<ManifestEntry> {
    let name_ok = !options.name.is_empty()
        && options
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        bail!(
            "model name '{}' must be letters, digits, '-' or '_'",
            options.name
        );
    }
    let (config, state, mut generator) = load_run_ema(&options.run, device)?;
    if let Generator::Progan(progan) = &mut generator {
        let error = fit_heads(progan, config.model.latent_size(), HEAD_FIT_LATENTS, device)?;
        info!("refitted the lower stages' RGB heads (worst RMS error {error:.3})");
    }

    let input_size = config.model.input_size();
    let reference = probe(&generator, input_size, device)?;
    let encode = |precision| -> Result<(Vec<u8>, f32)> {
        let bytes = encode_generator(&config.model, &generator, precision, device)
            .map_err(|e| anyhow::anyhow!(e))?;
        let loaded =
            decode_generator(&config.model, &bytes, device).map_err(|e| anyhow::anyhow!(e))?;
        let error = max_abs_difference(&probe(&loaded, input_size, device)?, &reference);
        Ok((bytes, error))
    };
    let (precision, bytes, error) = match options.precision {
        Some(p) => {
            let (bytes, error) = encode(p)?;
            (p, bytes, error)
        }
        None => {
            // The smallest file whose images are within tolerance: int8 almost always, except
            // for tiny models, where its scales and header outweigh what it saves.
            let mut chosen: Option<(Precision, Vec<u8>, f32)> = None;
            for precision in [Precision::Int8, Precision::F16] {
                let (bytes, error) = encode(precision)?;
                if error > options.tolerance {
                    info!(
                        "{precision:?} differs by {error:.4} (> {})",
                        options.tolerance
                    );
                } else if chosen.as_ref().is_none_or(|c| bytes.len() < c.1.len()) {
                    chosen = Some((precision, bytes, error));
                }
            }
            match chosen {
                Some(chosen) => chosen,
                None => {
                    let (bytes, error) = encode(Precision::F32)?;
                    (Precision::F32, bytes, error)
                }
            }
        }
    };

    std::fs::create_dir_all(&options.assets)
        .with_context(|| format!("cannot create {}", options.assets.display()))?;
    let file = format!("{}.bpk", options.name);
    write_atomic(&options.assets.join(&file), &bytes)?;
    let commands = std::fs::read_to_string(options.run.join(COMMANDS)).unwrap_or_default();
    // A warm-started run continues its model: the model's training comes first.
    let earlier = config.warm_start.iter().map(|w| w.command.as_str());
    let command = earlier
        .chain(commands.lines())
        .collect::<Vec<_>>()
        .join(" && then: ");
    let entry = ManifestEntry {
        name: options.name.clone(),
        arch: config.model.arch(),
        resolution: config.model.resolution(),
        latent_size: config.model.latent_size(),
        noise_size: config.model.noise_size(),
        format_version: FORMAT_VERSION,
        config: config.model.clone(),
        file,
        bytes: bytes.len() as u64,
        sha256: sha256_hex(&bytes),
        precision,
        max_abs_error: error,
        kimg: (state.images + config.images_before_run()) as f64 / 1000.0,
        training_seconds: state.training_seconds + config.seconds_before_run(),
        device: state.device.clone(),
        command,
        standing_statistics: true,
    };
    let mut manifest = read_manifest(&options.assets)?;
    manifest.upsert(entry.clone());
    write_atomic(
        &options.assets.join("manifest.json"),
        manifest.to_json().as_bytes(),
    )?;
    info!(
        "exported {} ({} bytes, {:?}, max pixel error {:.5}) from {} at {:.1} kimg",
        entry.name,
        entry.bytes,
        entry.precision,
        entry.max_abs_error,
        options.run.display(),
        entry.kimg
    );
    Ok(entry)
}

/// What `catgan sample` does.
#[derive(Debug, Clone)]
pub struct SampleOptions {
    /// The assets folder.
    pub assets: PathBuf,
    /// Model name.
    pub model: String,
    /// Seed of the first cell.
    pub seed: u64,
    /// Number of cats.
    pub count: usize,
    /// Output PNG.
    pub out: PathBuf,
    /// Upscaling factor.
    pub scale: u32,
    /// Progressive models: one row per cat showing it at every stage, enlarged to full size.
    pub growth: bool,
}

/// Loads a shipped model, checking it against its manifest entry.
pub fn load_shipped(
    assets: &Path,
    model: &str,
    device: &Device,
) -> Result<(ManifestEntry, Generator)> {
    let manifest = read_manifest(assets)?;
    let entry = manifest.entry(model)?.clone();
    let path = assets.join(&entry.file);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let generator = entry.load(&bytes, device)?;
    Ok((entry, generator))
}

/// Re-encodes a shipped model's weights at another precision, in place, and updates its
/// manifest entry. Its stated error grows by the difference the re-encoding makes, measured on
/// the same latents as at export, so it stays a bound on the difference from the f32 original.
/// Refused when that difference exceeds `tolerance`. With `standing`, the generator's batch norm
/// statistics are first re-measured on its own outputs (see [`standing_statistics`]), once.
pub fn convert(
    assets: &Path,
    model: &str,
    precision: Precision,
    tolerance: f32,
    standing: bool,
    device: &Device,
) -> Result<ManifestEntry> {
    let (mut entry, mut generator) = load_shipped(assets, model, device)?;
    if standing && !entry.standing_statistics {
        generator = standing_statistics(&entry.config, &generator, device);
        entry.standing_statistics = true;
        info!("{model}: batch norm statistics re-measured on its own outputs");
    }
    let reference = probe(&generator, entry.input_size(), device)?;
    let bytes = encode_generator(&entry.config, &generator, precision, device)
        .map_err(|e| anyhow::anyhow!(e))?;
    let loaded = decode_generator(&entry.config, &bytes, device).map_err(|e| anyhow::anyhow!(e))?;
    let error = max_abs_difference(&probe(&loaded, entry.input_size(), device)?, &reference);
    if error > tolerance {
        bail!(
            "{model} as {precision:?} differs from its {:?} weights by {error:.4} in pixel value \
             (more than --tolerance {tolerance}); nothing was changed",
            entry.precision
        );
    }
    write_atomic(&assets.join(&entry.file), &bytes)?;
    entry.bytes = bytes.len() as u64;
    entry.sha256 = sha256_hex(&bytes);
    entry.max_abs_error += error;
    info!(
        "{model}: {:?} -> {precision:?}, {} bytes, pixel difference {error:.5} (stated error now {:.5})",
        entry.precision, entry.bytes, entry.max_abs_error
    );
    entry.precision = precision;
    let mut manifest = read_manifest(assets)?;
    manifest.upsert(entry.clone());
    write_atomic(&assets.join("manifest.json"), manifest.to_json().as_bytes())?;
    Ok(entry)
}

/// Writes a grid of `count` cats from seeds `seed, seed + 1, ...`.
pub fn sample(options: &SampleOptions, device: &Device) -> Result<()> {
    anyhow::ensure!(options.count > 0, "--count must be at least 1");
    let (entry, generator) = load_shipped(&options.assets, &options.model, device)?;
    let latents = latents_for_seeds(options.seed, options.count, entry.input_size(), device);
    let stages = entry.config.stages();
    if options.growth && stages == 1 {
        bail!(
            "'{}' is a {} model, which does not grow in stages; --growth needs a progan model",
            entry.name,
            entry.arch
        );
    }
    let (images, columns) = if options.growth {
        let per_stage: Vec<Tensor<4>> = (0..stages)
            .map(|stage| {
                let images = generator.forward_stage(latents.clone(), stage);
                enlarge(images, entry.resolution)
            })
            .collect();
        let side = entry.resolution;
        let images =
            Tensor::stack::<5>(per_stage, 1).reshape([options.count * stages, 3, side, side]);
        (images, stages)
    } else {
        let columns = (options.count as f64).sqrt().ceil() as usize;
        (generator.forward(latents), columns)
    };
    let grid = grid::to_grid(images, columns, options.scale.max(1))?;
    grid::save_png(&grid, &options.out)?;
    info!(
        "wrote {} cats of '{}' (seeds {}..{}) to {}",
        options.count,
        entry.name,
        options.seed,
        options.seed + options.count as u64 - 1,
        options.out.display()
    );
    Ok(())
}

/// Writes a shipped generator's tensors as a safetensors file (f32, named by their module
/// path), so that other frameworks can load the same weights, e.g. for benchmarks.
pub fn write_safetensors(assets: &Path, model: &str, out: &Path, device: &Device) -> Result<usize> {
    let (_, generator) = load_shipped(assets, model, device)?;
    let mut tensors = Vec::new();
    visit_by_path(&generator, |path, shape, values| {
        let values = values
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        tensors.push((path.to_string(), shape, values));
    });
    let mut header = serde_json::Map::new();
    let mut data = Vec::new();
    for (name, shape, values) in &tensors {
        let start = data.len();
        for v in values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut header = serde_json::to_vec(&serde_json::Value::Object(header))?;
    // The format asks for the data to start 8-byte aligned.
    while header.len() % 8 != 0 {
        header.push(b' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(&header);
    bytes.extend_from_slice(&data);
    write_atomic(out, &bytes)?;
    Ok(tensors.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::Loss;
    use crate::networks::Networks;
    use crate::train::{RunOptions, train};
    use crate::{checkpoint, data::Dataset};
    use catgan_model::ModelConfig;
    use catgan_model::resnet::ResnetConfig;
    use catgan_model::rng::SplitMix64;

    fn tiny_run(run: &Path) -> TrainConfig {
        tiny_run_of(run, TrainConfig::tiny_for_tests())
    }

    fn tiny_run_of(run: &Path, base: TrainConfig) -> TrainConfig {
        let config = TrainConfig {
            loss: Loss::Ralsgan,
            total_kimg: 0.016,
            tick_kimg: 0.016,
            keep_checkpoints: 1,
            grid_cells: 9,
            seed: 1,
            ..base
        };
        checkpoint::prepare_fresh(run, false).unwrap();
        train_tiny(run, &config).unwrap();
        config
    }

    /// Trains `config` in `run` on eight random 8x8 images.
    fn train_tiny(run: &Path, config: &TrainConfig) -> Result<crate::train::Summary> {
        let mut rng = SplitMix64::new(5);
        let dataset = Dataset {
            resolution: 8,
            pixels: (0..8 * 8 * 8 * 3).map(|_| rng.next_u64() as u8).collect(),
            names: (0..8).map(|i| i.to_string()).collect(),
        };
        train(
            run,
            config,
            &dataset,
            &Device::flex(),
            &RunOptions::default(),
        )
    }

    /// Every learned float of a module (not batch norm's running statistics, which a forward
    /// pass in training mode moves), in visiting order.
    fn floats<M: burn::module::Module>(module: &M) -> Vec<f32> {
        let mut all = Vec::new();
        crate::networks::visit_by_path(module, |path, _, values| {
            if !path.contains("running") {
                all.extend(values.into_data().convert::<f32>().iter::<f32>())
            }
        });
        all
    }

    #[test]
    fn a_warm_start_with_noise_inputs_draws_what_the_shipped_generator_drew_then_learns_them() {
        let first = tempfile::tempdir().unwrap();
        let assets = tempfile::tempdir().unwrap();
        let plain = ResnetConfig::new()
            .with_latent_size(8)
            .with_resolution(8)
            .with_generator_width(4)
            .with_discriminator_width(4)
            .with_zero_init_branches(Some(false));
        let base = TrainConfig {
            model: ModelConfig::Resnet(plain.clone()),
            ..TrainConfig::tiny_for_tests()
        };
        let base = tiny_run_of(first.path(), base);
        let shipped = export_to(first.path(), assets.path(), Some(Precision::F32));
        assert_eq!(shipped.noise_size, 0);
        let file = assets.path().join(&shipped.file);
        let bytes = std::fs::read(&file).unwrap();
        let device = Device::flex();
        let noisy = ModelConfig::Resnet(plain.with_noise_inputs(Some(true)));
        let config = TrainConfig {
            model: noisy.clone(),
            warm_start: Some(crate::config::WarmStart {
                model: "tiny".into(),
                file,
                sha256: shipped.sha256.clone(),
                kimg: shipped.kimg,
                training_seconds: shipped.training_seconds,
                command: "the first run".into(),
            }),
            total_kimg: 0.016,
            seed: 2,
            ..base
        };
        let start = Networks::warm_started(&config, &bytes, &device).unwrap();
        let (_, shipped_generator) = load_shipped(assets.path(), "tiny", &device).unwrap();
        let inputs = latents_for_seeds(3, 4, noisy.input_size(), &device);
        let drawn = shipped_generator
            .forward(inputs.clone().narrow(1, 0, 8))
            .into_data();
        start
            .ema
            .forward(inputs.clone())
            .into_data()
            .assert_approx_eq::<f32>(&drawn, burn::tensor::Tolerance::absolute(1e-6));

        // Trained on, the noise strengths leave zero, and the export says how much noise each
        // input carries.
        let run = tempfile::tempdir().unwrap();
        checkpoint::prepare_fresh(run.path(), false).unwrap();
        train_tiny(run.path(), &config).unwrap();
        let exported = export_to(run.path(), assets.path(), Some(Precision::F32));
        assert_eq!(exported.noise_size, 64);
        assert_eq!(exported.input_size(), 72);
        let (_, trained) = load_shipped(assets.path(), "tiny", &device).unwrap();
        let other_noise = Tensor::cat(
            vec![
                inputs.clone().narrow(1, 0, 8),
                latents_for_seeds(99, 4, 64, &device),
            ],
            1,
        );
        let change = (trained.forward(inputs) - trained.forward(other_noise))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(
            change > 1e-5,
            "the noise changes nothing after training ({change})"
        );
    }

    #[test]
    fn a_warm_started_run_continues_the_shipped_generator_with_a_new_discriminator() {
        let first = tempfile::tempdir().unwrap();
        let assets = tempfile::tempdir().unwrap();
        let base = tiny_run(first.path());
        let shipped = export_to(first.path(), assets.path(), Some(Precision::F32));
        let file = assets.path().join(&shipped.file);
        let bytes = std::fs::read(&file).unwrap();
        let device = Device::flex();
        let warm = crate::config::WarmStart {
            model: "tiny".into(),
            file: file.clone(),
            sha256: shipped.sha256.clone(),
            kimg: shipped.kimg,
            training_seconds: shipped.training_seconds,
            command: "the first run".into(),
        };
        // One step of four images, for the discriminator only.
        let config = TrainConfig {
            warm_start: Some(warm),
            discriminator_warmup_kimg: 0.004,
            total_kimg: 0.004,
            seed: 2,
            ..base
        };
        let start = Networks::warm_started(&config, &bytes, &device).unwrap();
        let shipped_generator = decode_generator(&config.model, &bytes, &device).unwrap();
        assert_eq!(floats(&start.generator), floats(&shipped_generator));
        assert_eq!(floats(&start.ema), floats(&shipped_generator));

        let newest = |run: &Path| {
            let (_, path) = checkpoint::latest(run).unwrap().unwrap();
            Networks::load(&config, &path, &device).unwrap()
        };
        // While the discriminator warms up only it learns.
        let warming = tempfile::tempdir().unwrap();
        checkpoint::prepare_fresh(warming.path(), false).unwrap();
        train_tiny(warming.path(), &config).unwrap();
        let after = newest(warming.path());
        assert_eq!(floats(&after.generator), floats(&start.generator));
        assert_ne!(floats(&after.discriminator), floats(&start.discriminator));

        // Then both learn, and the export counts the shipped model's images and hours.
        let config = TrainConfig {
            total_kimg: 0.012,
            ..config.clone()
        };
        let run = tempfile::tempdir().unwrap();
        checkpoint::prepare_fresh(run.path(), false).unwrap();
        let done = train_tiny(run.path(), &config).unwrap();
        assert!((done.kimg - (shipped.kimg + 0.012)).abs() < 1e-9);
        let after = newest(run.path());
        assert_ne!(floats(&after.generator), floats(&start.generator));
        assert_ne!(floats(&after.ema), floats(&start.ema));
        let stats = std::fs::read_to_string(run.path().join("stats.jsonl")).unwrap();
        let last: crate::train::TickStats =
            serde_json::from_str(stats.lines().last().unwrap()).unwrap();
        assert!(
            (last.kimg - (shipped.kimg + 0.012)).abs() < 1e-9,
            "{}",
            last.kimg
        );
        std::fs::write(run.path().join(COMMANDS), "the second run\n").unwrap();
        let exported = export_to(run.path(), assets.path(), Some(Precision::F32));
        assert!((exported.kimg - (shipped.kimg + 0.012)).abs() < 1e-9);
        assert!(exported.training_seconds > shipped.training_seconds);
        assert_eq!(exported.command, "the first run && then: the second run");
        let source = crate::evaluate::Source::Run(run.path().to_path_buf());
        let measured = crate::evaluate::load_source(&source, &device).unwrap();
        assert_eq!(measured.kimg, exported.kimg);

        // A weights file that changed after the run was set up is refused before training.
        let again = tempfile::tempdir().unwrap();
        checkpoint::prepare_fresh(again.path(), false).unwrap();
        let error = train_tiny(again.path(), &config).unwrap_err().to_string();
        assert!(
            error.contains("changed since the run was set up"),
            "{error}"
        );
    }

    fn export_to(run: &Path, assets: &Path, precision: Option<Precision>) -> ManifestEntry {
        export_within(run, assets, precision, 0.02)
    }

    fn export_within(
        run: &Path,
        assets: &Path,
        precision: Option<Precision>,
        tolerance: f32,
    ) -> ManifestEntry {
        let options = ExportOptions {
            run: run.to_path_buf(),
            name: "tiny".into(),
            assets: assets.to_path_buf(),
            precision,
            tolerance,
        };
        export(&options, &Device::flex()).unwrap()
    }

    #[test]
    fn sample_from_exported_weights_reproduces_the_training_grid() {
        let run = tempfile::tempdir().unwrap();
        let assets = tempfile::tempdir().unwrap();
        tiny_run(run.path());
        let entry = export_to(run.path(), assets.path(), Some(Precision::F32));
        assert_eq!(entry.max_abs_error, 0.0);
        assert_eq!(entry.kimg, 0.016);

        let out = assets.path().join("grid.png");
        let options = SampleOptions {
            assets: assets.path().to_path_buf(),
            model: "tiny".into(),
            seed: 0,
            count: 9,
            out: out.clone(),
            scale: 1,
            growth: false,
        };
        sample(&options, &Device::flex()).unwrap();
        let sampled = image::open(&out).unwrap().to_rgb8();
        let trained = image::open(run.path().join("samples/kimg-00000.0.png"))
            .unwrap()
            .to_rgb8();
        assert_eq!(sampled.dimensions(), (3 * 9 - 1, 3 * 9 - 1));
        assert!(
            sampled == trained,
            "the sampled grid differs from the training grid"
        );
    }

    #[test]
    fn export_takes_the_smallest_precision_within_tolerance_and_records_its_error() {
        let run = tempfile::tempdir().unwrap();
        let assets = tempfile::tempdir().unwrap();
        tiny_run(run.path());
        // Measure each precision's error, then set the tolerance between int8's and f16's.
        let int8 = export_to(run.path(), assets.path(), Some(Precision::Int8));
        let half = export_to(run.path(), assets.path(), Some(Precision::F16));
        assert!(int8.max_abs_error > half.max_abs_error, "{int8:?} {half:?}");
        // Both within tolerance: the smaller file (in a model this tiny the header and scales
        // can make int8 the larger one).
        let roomy = export_within(run.path(), assets.path(), None, int8.max_abs_error);
        let smaller = if int8.bytes < half.bytes {
            &int8
        } else {
            &half
        };
        assert_eq!(
            (roomy.precision, roomy.bytes),
            (smaller.precision, smaller.bytes)
        );
        let between = (int8.max_abs_error + half.max_abs_error) / 2.0;
        let entry = export_within(run.path(), assets.path(), None, between);
        assert_eq!(entry.precision, Precision::F16);
        assert!(entry.max_abs_error > 0.0 && entry.max_abs_error <= between);
        let strict = export_within(run.path(), assets.path(), None, 0.0);
        assert_eq!(
            (strict.precision, strict.max_abs_error),
            (Precision::F32, 0.0)
        );
        let entry = export_within(run.path(), assets.path(), None, between);
        let manifest = read_manifest(assets.path()).unwrap();
        assert_eq!(manifest.models, vec![entry.clone()]);
        let bytes = std::fs::read(assets.path().join(&entry.file)).unwrap();
        entry.check_weights(&bytes).unwrap();
        // Exporting again under the same name replaces the entry rather than adding one.
        export_to(run.path(), assets.path(), Some(Precision::F32));
        assert_eq!(read_manifest(assets.path()).unwrap().models.len(), 1);
    }

    #[test]
    fn convert_reencodes_a_shipped_model_in_place_and_bounds_its_error() {
        let run = tempfile::tempdir().unwrap();
        let assets = tempfile::tempdir().unwrap();
        tiny_run(run.path());
        let f16 = export_to(run.path(), assets.path(), Some(Precision::F16));
        let device = Device::flex();
        let err = convert(assets.path(), "tiny", Precision::Int8, 0.0, false, &device).unwrap_err();
        assert!(err.to_string().contains("nothing was changed"), "{err}");
        assert_eq!(
            read_manifest(assets.path()).unwrap().models,
            vec![f16.clone()]
        );

        let int8 = convert(assets.path(), "tiny", Precision::Int8, 1.0, false, &device).unwrap();
        assert_eq!(int8.precision, Precision::Int8);
        assert!(int8.max_abs_error > f16.max_abs_error);
        assert_eq!((int8.kimg, &int8.command), (f16.kimg, &f16.command));
        // The file on disk matches the new entry and loads.
        let (loaded, _) = load_shipped(assets.path(), "tiny", &device).unwrap();
        assert_eq!(loaded, int8);
    }

    #[test]
    fn convert_re_measures_batch_norm_statistics_once_when_asked() {
        let run = tempfile::tempdir().unwrap();
        let assets = tempfile::tempdir().unwrap();
        tiny_run(run.path());
        let exported = export_to(run.path(), assets.path(), Some(Precision::F32));
        assert!(exported.standing_statistics);
        // As exported before standing statistics: a generator whose running statistics are a
        // fresh one's (mean 0, variance 1), far from its activations.
        let device = Device::flex();
        let stale = exported.config.init_generator(&device);
        let bytes = encode_generator(&exported.config, &stale, Precision::F32, &device).unwrap();
        write_atomic(&assets.path().join(&exported.file), &bytes).unwrap();
        let old = ManifestEntry {
            bytes: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            standing_statistics: false,
            ..exported
        };
        let mut manifest = read_manifest(assets.path()).unwrap();
        manifest.upsert(old.clone());
        write_atomic(
            &assets.path().join("manifest.json"),
            manifest.to_json().as_bytes(),
        )
        .unwrap();
        let images = || {
            let (entry, generator) = load_shipped(assets.path(), "tiny", &device).unwrap();
            probe(&generator, entry.input_size(), &device).unwrap()
        };
        let before = images();

        let plain = convert(assets.path(), "tiny", Precision::F32, 0.0, false, &device).unwrap();
        assert!(!plain.standing_statistics);
        assert_eq!(images(), before);

        let standing = convert(assets.path(), "tiny", Precision::F32, 0.0, true, &device).unwrap();
        assert!(standing.standing_statistics);
        let after = images();
        // The images change on purpose; the tolerance bounds only the re-encoding.
        assert!(max_abs_difference(&after, &before) > 0.1);
        assert_eq!(standing.max_abs_error, old.max_abs_error);
        // Only once: statistics already standing are kept.
        let again = convert(assets.path(), "tiny", Precision::F32, 0.0, true, &device).unwrap();
        assert!(again.standing_statistics);
        assert_eq!(images(), after);
    }

    #[test]
    fn export_refuses_bad_names_and_folders_without_checkpoints() {
        let run = tempfile::tempdir().unwrap();
        let assets = tempfile::tempdir().unwrap();
        let options = ExportOptions {
            run: run.path().to_path_buf(),
            name: "../evil".into(),
            assets: assets.path().to_path_buf(),
            precision: None,
            tolerance: 0.02,
        };
        let err = export(&options, &Device::flex()).unwrap_err().to_string();
        assert!(err.contains("must be letters"), "{err}");
        let options = ExportOptions {
            name: "ok".into(),
            ..options
        };
        let err = format!("{:#}", export(&options, &Device::flex()).unwrap_err());
        assert!(err.contains("a run folder?"), "{err}");
    }

    #[test]
    fn growth_sample_shows_each_progressive_stage_ending_with_the_full_image() {
        let run = tempfile::tempdir().unwrap();
        let assets = tempfile::tempdir().unwrap();
        let base = TrainConfig {
            fade_kimg: 0.004,
            stable_kimg: 0.004,
            ..TrainConfig::tiny_progan_for_tests()
        };
        tiny_run_of(run.path(), base);
        export_to(run.path(), assets.path(), Some(Precision::F32));
        let options = |growth, out: &str| SampleOptions {
            assets: assets.path().to_path_buf(),
            model: "tiny".into(),
            seed: 3,
            count: 2,
            out: assets.path().join(out),
            scale: 1,
            growth,
        };
        sample(&options(true, "growth.png"), &Device::flex()).unwrap();
        sample(&options(false, "plain.png"), &Device::flex()).unwrap();
        let growth = image::open(assets.path().join("growth.png"))
            .unwrap()
            .to_rgb8();
        let plain = image::open(assets.path().join("plain.png"))
            .unwrap()
            .to_rgb8();
        // Two stages (4x4 enlarged to 8x8, and 8x8) side by side, one row per cat.
        assert_eq!(growth.dimensions(), (2 * 9 - 1, 2 * 9 - 1));
        // The last column is the full-size cat: the same pixels as a plain sample's cells.
        for (row, column) in [(0, 0), (1, 1)] {
            for y in 0..8 {
                for x in 0..8 {
                    let cat = growth.get_pixel(9 + x, row * 9 + y);
                    let expected = plain.get_pixel(column * 9 + x, (row / 2) * 9 + y);
                    assert_eq!(cat, expected, "cat {row} at ({x}, {y})");
                }
            }
        }
        // The 4x4 stage is enlarged by repeating pixels in 2x2 squares.
        assert_eq!(growth.get_pixel(0, 0), growth.get_pixel(1, 1));

        // Models that do not grow refuse --growth with a reason.
        let dcgan_run = tempfile::tempdir().unwrap();
        tiny_run(dcgan_run.path());
        export_to(dcgan_run.path(), assets.path(), Some(Precision::F32));
        let err = sample(&options(true, "x.png"), &Device::flex()).unwrap_err();
        assert!(err.to_string().contains("does not grow"), "{err}");
    }

    #[test]
    fn safetensors_hold_every_tensor_with_its_path_shape_and_values() {
        let run = tempfile::tempdir().unwrap();
        let assets = tempfile::tempdir().unwrap();
        tiny_run(run.path());
        export_to(run.path(), assets.path(), Some(Precision::F32));
        let out = assets.path().join("tiny.safetensors");
        let count = write_safetensors(assets.path(), "tiny", &out, &Device::flex()).unwrap();
        let bytes = std::fs::read(&out).unwrap();
        let length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(length % 8, 0);
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + length]).unwrap();
        let header = header.as_object().unwrap();
        assert_eq!(header.len(), count);
        // The 8x8 DCGAN of width 4 from latent 8: its first transposed convolution, 8 to 4.
        let first = &header["Dcgan.blocks.0.conv.weight"];
        assert_eq!(first["shape"], serde_json::json!([8, 4, 4, 4]));
        let [start, end] = [0, 1].map(|i| first["data_offsets"][i].as_u64().unwrap() as usize);
        assert_eq!(end - start, 8 * 4 * 4 * 4 * 4);
        let data = &bytes[8 + length..];
        let total: usize = header
            .values()
            .map(|t| t["data_offsets"][1].as_u64().unwrap() as usize)
            .max()
            .unwrap();
        assert_eq!(total, data.len());
        // Values are the weights themselves: not all zero, all finite.
        let values: Vec<f32> = data[start..end]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert!(values.iter().all(|v| v.is_finite()) && values.iter().any(|v| *v != 0.0));
    }
}
