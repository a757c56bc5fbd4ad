//! `catgan`: train GANs on cat photos, export the generator for the page, and sample from it.

use anyhow::{Context, Result, bail};
use catgan::augment::{self, Augment};
use catgan::config::{TrainConfig, WarmStart};
use catgan::device::{self, DeviceChoice};
use catgan::evaluate::{
    Measured, Reference, Source, evaluate, load_real, load_source, nearest_check,
};
use catgan::export::{self, ExportOptions, SampleOptions};
use catgan::loss::Loss;
use catgan::train::{self, RunOptions};
use catgan::{checkpoint, logging};
use catgan_model::dcgan::DcganConfig;
use catgan_model::format::Precision;
use catgan_model::progan::ProganConfig;
use catgan_model::resnet::ResnetConfig;
use catgan_model::{Arch, ModelConfig};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use tracing::info;

/// Train generative adversarial networks on a folder of cat photos, export the generator to
/// the web page's assets, and generate cats from the shipped weights.
///
/// Typical use:
///   catgan train --data ../shared/data/cats64
///   catgan export runs/00000-dcgan --name dcgan
///   catgan sample --model dcgan --seed 1 --count 64 --out cats.png
#[derive(Parser, Debug)]
#[command(version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model, or continue a run with --resume.
    Train(Box<TrainArgs>),
    /// Write a run's moving-average generator to the assets folder and its manifest.
    Export(ExportArgs),
    /// Re-encode a shipped model's weights at another precision (e.g. int8 for a smaller
    /// download), in place, updating its manifest entry.
    Convert(ConvertArgs),
    /// Generate a grid of cats from shipped weights.
    Sample(SampleArgs),
    /// Sliced Wasserstein distance of generated cats to real ones, beside the real-vs-real floor.
    Eval(EvalArgs),
    /// Loss and SWD curves and a timeline of sample grids for a run (PNG files).
    Report(ReportArgs),
    /// Memorisation check: generated cats beside their nearest training images.
    Nearest(NearestArgs),
    /// Time training steps on random data (images per second).
    Bench(BenchArgs),
    /// Write a shipped generator's weights as f32 safetensors, named by module path (for
    /// loading the same weights into other frameworks).
    Tensors(TensorsArgs),
    /// List the GPU adapters wgpu can see and which backend --device auto picks.
    Devices,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Folder of training images (JPEG or PNG, searched recursively).
    #[arg(long, required_unless_present = "resume")]
    data: Option<PathBuf>,
    /// Continue the run in this folder from its newest checkpoint, with its saved settings
    /// (config.json); only --kimg (a new total), the learning rates, --ema-kimg, --augment and
    /// --discriminator-warmup-kimg may change, and settings that would change the model or the
    /// data are refused.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// Run folder for a new run [default: runs/NNNNN-ARCH, the next free number].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Start over in a --out folder that already holds a run (its checkpoints are deleted).
    #[arg(long)]
    force: bool,
    /// Model family.
    #[arg(long, value_enum, default_value_t = ArchArg::Dcgan, conflicts_with_all = ["resume", "init_generator"])]
    arch: ArchArg,
    /// Image side in pixels (a power of two).
    #[arg(long, default_value_t = 64, conflicts_with_all = ["resume", "init_generator"])]
    resolution: usize,
    /// Start a new run from a shipped model: MODEL's weights (from the manifest in --assets)
    /// become the generator and its moving average, and the discriminator is new. This
    /// continues a model whose run folder is gone. The run takes MODEL's architecture and
    /// sizes (only --discriminator-width, the minibatch features and --noise-inputs may change;
    /// the discriminator keeps MODEL's minibatch features unless given). --kimg counts the run's own images;
    /// MODEL's kimg and hours come first on its curves, sample grids and export. For dcgan and
    /// resnet models.
    #[arg(long, value_name = "MODEL", conflicts_with = "resume")]
    init_generator: Option<String>,
    /// Assets folder holding manifest.json (with --init-generator).
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
    /// The first this many thousand images train only the discriminator, with the generator
    /// and its average fixed, so that a new discriminator catches up with a trained generator
    /// before the generator learns from it [default: 0; 4 with --init-generator]. Counted
    /// from the run's first image; on --resume, a new end of the warm-up (for example later,
    /// when the discriminator still scores near chance).
    #[arg(long, value_name = "KIMG")]
    discriminator_warmup_kimg: Option<f64>,
    /// Length of the run in thousands of real images shown (on --resume: the new total).
    #[arg(long)]
    kimg: Option<f64>,
    /// Images per training step.
    #[arg(long, default_value_t = 64, conflicts_with = "resume")]
    batch_size: usize,
    /// Adversarial loss [default: logistic for dcgan and resnet, ralsgan for progan].
    #[arg(long, value_enum, conflicts_with = "resume")]
    loss: Option<Loss>,
    /// Adam learning rate of the generator [default: 2e-4; 2e-3 for progan]. On --resume, a
    /// new rate from there on (for example lower, for the end of a run); the run's
    /// commands.txt keeps the history.
    #[arg(long)]
    lr_generator: Option<f64>,
    /// Adam learning rate of the discriminator [default: 2e-4; 2e-3 for progan]. On --resume,
    /// as --lr-generator.
    #[arg(long)]
    lr_discriminator: Option<f64>,
    /// Differentiable augmentation (DiffAugment, Zhao et al. 2020) of every batch the
    /// discriminator sees, real and generated alike: a comma-separated list of color,
    /// translation and cutout, or none [default: none]. It keeps the discriminator from
    /// memorising a small training set and from running far ahead of the generator (on the
    /// residual GAN it broke a plateau: docs/MODELS.md). On --resume, a new policy from there
    /// on.
    #[arg(long, value_name = "POLICY", value_parser = parse_augment)]
    augment: Option<Policy>,
    /// Progan: thousands of images over which each new stage fades in.
    #[arg(long, default_value_t = 20.0, conflicts_with = "resume")]
    fade_kimg: f64,
    /// Progan: thousands of images each stage trains at full weight before the next fades in.
    #[arg(long, default_value_t = 20.0, conflicts_with = "resume")]
    stable_kimg: f64,
    /// Latent vector length [default: the architecture's].
    #[arg(long, conflicts_with_all = ["resume", "init_generator"])]
    latent_size: Option<usize>,
    /// Generator width (filters of its last hidden layer; for progan, the channel base, where
    /// a stage of side r has base / r features) [default: the architecture's].
    #[arg(long, conflicts_with_all = ["resume", "init_generator"])]
    generator_width: Option<usize>,
    /// Discriminator width (filters of its first layer; for progan, the largest number of
    /// features of a stage) [default: the architecture's].
    #[arg(long, conflicts_with = "resume")]
    discriminator_width: Option<usize>,
    /// Resnet: normalisation before each activation of the discriminator.
    #[arg(long, value_enum, default_value_t = Norm::Batch, conflicts_with_all = ["resume", "init_generator"])]
    discriminator_norm: Norm,
    /// Resnet: give the discriminator a minibatch standard deviation feature over groups of
    /// this many images (Karras et al. 2018), so that it sees when generated cats share their
    /// details (docs/MODELS.md). Allowed with --init-generator, whose discriminator is new
    /// [default: none; the Progressive GAN always has one].
    #[arg(long, value_name = "GROUP", conflicts_with = "resume")]
    minibatch_stddev: Option<usize>,
    /// Resnet: a second minibatch standard deviation feature over groups of this many images,
    /// taken after the discriminator's first block, where fine detail is still resolved, so
    /// that it sees when generated cats share one fur texture (docs/MODELS.md). Allowed with
    /// --init-generator [default: none].
    #[arg(long, value_name = "GROUP", conflicts_with = "resume")]
    fine_minibatch_stddev: Option<usize>,
    /// Resnet with a fine minibatch feature: which images that feature reads. With
    /// `untranslated` it reads each batch as it was before --augment's translation shifted it,
    /// so a texture drawn in the same place in every generated cat stays in the same place for
    /// it, while the rest of the discriminator still judges shifted cats (docs/MODELS.md).
    /// Costs one more pass through the discriminator's first block [default: augmented]. On
    /// --resume, a new view from there on.
    #[arg(long, value_enum, value_name = "VIEW")]
    fine_stddev_view: Option<FineView>,
    /// Resnet: weigh each image's log power spectrum into the discriminator's score, averaged
    /// over squares of POOL by POOL frequencies (one weight each, starting at zero), so that a
    /// fur texture of a period or direction real cats lack is seen wherever it lies, translated
    /// or not (docs/MODELS.md). Reads the same view as the fine minibatch feature
    /// (--fine-stddev-view). Allowed with --init-generator, and on --resume, where it is added
    /// to the run's discriminator [default: none].
    #[arg(long, value_name = "POOL")]
    spectrum_feature: Option<usize>,
    /// Resnet: per-pixel noise inputs in every generator block, with learned strengths that
    /// start at zero, so that fine detail can vary from cat to cat (docs/MODELS.md). With
    /// --init-generator the shipped generator gains them and starts out drawing exactly what
    /// it drew. A cat's noise follows its latent in the generator's input, so a seed still
    /// names one cat [default: off].
    #[arg(long, conflicts_with = "resume")]
    noise_inputs: bool,
    /// Half-life of the generator's moving average, in thousands of images [default: 10; for
    /// progan a tenth of --fade-kimg, so the average keeps up with each newly grown stage]. On
    /// --resume, a new half-life from there on (for example longer, with lower learning rates
    /// at the end of a run).
    #[arg(long)]
    ema_kimg: Option<f64>,
    /// A stats line and a sample grid every this many thousand images.
    #[arg(long, default_value_t = 4.0, conflicts_with = "resume")]
    tick_kimg: f64,
    /// A checkpoint every this many ticks.
    #[arg(long, default_value_t = 1, conflicts_with = "resume")]
    checkpoint_ticks: u64,
    /// Seed for initial weights and all random choices.
    #[arg(long, default_value_t = 0, conflicts_with = "resume")]
    seed: u64,
    /// Percentage of the images that training never sees (chosen by a hash of each file name,
    /// listed in the run's held-out.txt); SWD is measured against them.
    #[arg(long, default_value_t = 5.0, conflicts_with = "resume")]
    held_out_percent: f64,
    /// Measure SWD against the held-out images every this many thousand images (0: never).
    #[arg(long, default_value_t = 10.0, conflicts_with = "resume")]
    swd_kimg: f64,
    /// Images per set for SWD during training (fewer if the held-out part is smaller).
    #[arg(long, default_value_t = 2048, conflicts_with = "resume")]
    swd_images: usize,
    /// Refuse images with more pixels than this, before decoding them.
    #[arg(long, default_value_t = 100_000_000, conflicts_with = "resume")]
    max_pixels: u64,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct Common {
    /// Where to compute: a hardware GPU through wgpu, or the CPU.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    device: DeviceChoice,
    /// No progress bar (log lines only).
    #[arg(long)]
    no_progress: bool,
}

/// An augmentation policy as given on the command line.
#[derive(Debug, Clone)]
struct Policy(Vec<Augment>);

fn parse_augment(text: &str) -> Result<Policy, String> {
    augment::parse_policy(text).map(Policy)
}

/// Which images the residual discriminator's fine minibatch feature reads.
#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum FineView {
    /// The batch as the rest of the discriminator sees it, augmentation and all.
    Augmented,
    /// The same batch before translation augmentation shifted it.
    Untranslated,
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum Norm {
    /// Batch normalisation, as in the DCGAN's discriminator.
    Batch,
    /// None.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, ValueEnum)]
enum ArchArg {
    /// Deep convolutional GAN (Radford et al. 2015).
    Dcgan,
    /// Residual blocks in generator and discriminator (as in Miyato et al. 2018).
    Resnet,
    /// Progressive GAN (Karras et al. 2018), grown from 4x4 with fade-in.
    Progan,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// The run folder to export from (its newest checkpoint).
    run: PathBuf,
    /// Name of the model in the manifest [default: the architecture's name].
    #[arg(long)]
    name: Option<String>,
    /// Assets folder holding manifest.json.
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
    /// Storage precision; auto stores the smallest (int8, then f16, else f32) whose images
    /// stay within --tolerance of f32's.
    #[arg(long, value_enum, default_value_t = PrecisionArg::Auto)]
    precision: PrecisionArg,
    /// Largest accepted per-pixel difference (pixel values in [-1, 1]) for int8 or f16.
    #[arg(long, default_value_t = 0.02)]
    tolerance: f32,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct ConvertArgs {
    /// Model name from the manifest.
    #[arg(long)]
    model: String,
    /// The new storage precision.
    #[arg(long, value_enum)]
    precision: StoredPrecision,
    /// Refuse if the new weights' images differ from the current ones by more than this
    /// anywhere (pixel values in [-1, 1], so 0.1 is about 13 of 255 levels; int8 typically
    /// moves a few pixels that far and the average pixel by about one level).
    #[arg(long, default_value_t = 0.1)]
    tolerance: f32,
    /// First re-measure batch norm's running statistics on the model's own outputs, as
    /// `catgan export` does (for models exported before it did; the images change on purpose,
    /// and --tolerance then bounds only the re-encoding).
    #[arg(long)]
    standing_statistics: bool,
    /// Assets folder holding manifest.json.
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
}

/// A storage precision named on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum StoredPrecision {
    /// 8-bit weights with a scale per output slice; vectors in f16.
    Int8,
    /// Half precision.
    F16,
    /// Full precision.
    F32,
}

impl From<StoredPrecision> for Precision {
    fn from(p: StoredPrecision) -> Self {
        match p {
            StoredPrecision::Int8 => Precision::Int8,
            StoredPrecision::F16 => Precision::F16,
            StoredPrecision::F32 => Precision::F32,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum PrecisionArg {
    /// The smallest within --tolerance.
    Auto,
    /// 8-bit weights with a scale per output slice; vectors in f16.
    Int8,
    /// Half precision.
    F16,
    /// Full precision.
    F32,
}

#[derive(Args, Debug)]
struct SampleArgs {
    /// Model name from the manifest.
    #[arg(long)]
    model: String,
    /// Seed of the first cat; cat i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of cats.
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// Output PNG.
    #[arg(long, default_value = "cats.png")]
    out: PathBuf,
    /// Upscale each cat by this factor (nearest neighbour).
    #[arg(long, default_value_t = 1)]
    scale: u32,
    /// Progressive models: one row per cat, showing it at every stage (4x4 up to full size).
    #[arg(long)]
    growth: bool,
    /// Assets folder holding manifest.json.
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
    #[command(flatten)]
    common: Common,
}

/// The generator to measure: a shipped model or a run's newest checkpoint.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct SourceArgs {
    /// Model name from the manifest in --assets.
    #[arg(long)]
    model: Option<String>,
    /// A run folder: its newest checkpoint's moving-average generator.
    #[arg(long, value_name = "RUN_DIR")]
    run: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct MeasureArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Folder of real images [default: the run's training data].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Percentage of --data held out, chosen by file-name hash as in training [default: the
    /// run's; 5 for --model, whose training split is not known].
    #[arg(long)]
    held_out_percent: Option<f64>,
    /// Assets folder holding manifest.json (with --model).
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(Args, Debug)]
struct EvalArgs {
    #[command(flatten)]
    measure: MeasureArgs,
    /// Images in each compared set (fewer if the real images run out).
    #[arg(long, default_value_t = 2048)]
    images: usize,
}

#[derive(Args, Debug)]
struct NearestArgs {
    #[command(flatten)]
    measure: MeasureArgs,
    /// Generated cats (and held-out real cats) to look up.
    #[arg(long, default_value_t = 256)]
    count: usize,
    /// The side-by-side image: generated cats, then their three nearest training images.
    #[arg(long, default_value = "nearest.png")]
    out: PathBuf,
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// The run folder.
    run: PathBuf,
    /// Where to write losses.png, swd.png and timeline.png [default: RUN/report].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct TensorsArgs {
    /// Model name from the manifest.
    #[arg(long)]
    model: String,
    /// Assets folder holding manifest.json.
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Model family.
    #[arg(long, value_enum, default_value_t = ArchArg::Dcgan)]
    arch: ArchArg,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Timed steps (after two warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: u64,
    /// Generator width [default: the architecture's].
    #[arg(long)]
    generator_width: Option<usize>,
    /// Discriminator width [default: the architecture's].
    #[arg(long)]
    discriminator_width: Option<usize>,
    /// Latent vector length [default: the architecture's].
    #[arg(long)]
    latent_size: Option<usize>,
    #[command(flatten)]
    common: Common,
}

/// Refuses an untranslated view for a discriminator without a feature that reads it.
fn check_fine_view(model: &ModelConfig, untranslated: bool) -> Result<()> {
    let reads_view = matches!(model, ModelConfig::Resnet(c)
        if c.fine_minibatch_stddev.is_some() || c.spectrum_pool.is_some());
    if untranslated && !reads_view {
        bail!(
            "--fine-stddev-view untranslated is for a residual discriminator with a fine \
             minibatch feature or a spectrum feature (--arch resnet --fine-minibatch-stddev \
             GROUP or --spectrum-feature POOL)"
        );
    }
    Ok(())
}

/// Adds a spectrum feature to a resumed run's discriminator; one it already has cannot change
/// its pool, since its weights are laid out by it.
fn add_spectrum_on_resume(model: &mut ModelConfig, pool: usize) -> Result<()> {
    let ModelConfig::Resnet(config) = model else {
        bail!("--spectrum-feature is for the residual GAN (--arch resnet)");
    };
    match config.spectrum_pool {
        Some(had) if had != pool => bail!(
            "this run's discriminator already weighs its spectrum pooled over {had}x{had} \
             frequencies and cannot change to {pool}x{pool}; start a new run (or \
             --init-generator) for another pool"
        ),
        Some(_) => Ok(()),
        None => {
            config.spectrum_pool = Some(pool);
            config.validate().map_err(anyhow::Error::msg)?;
            info!(
                "adding a spectrum feature over {pool}x{pool} frequencies to the \
                 discriminator; its weights start at zero"
            );
            Ok(())
        }
    }
}

/// Factor on the fine minibatch feature's weights of a new discriminator
/// ([`ResnetConfig::fine_minibatch_gain`]): at a discriminator rate of 2e-4 and an unscaled
/// weight, the feature's weights grew by about 0.0023 per 4 kimg against the shipped residual
/// generator, too slowly to matter within a session.
const FINE_MINIBATCH_GAIN: f64 = 16.0;

/// The residual GAN's optional features, as given on the command line.
#[derive(Debug, Clone, Copy, Default)]
struct ResnetFeatures {
    minibatch_stddev: Option<usize>,
    fine_minibatch_stddev: Option<usize>,
    noise_inputs: bool,
    spectrum_pool: Option<usize>,
}

impl ResnetFeatures {
    fn from_args(args: &TrainArgs) -> Self {
        Self {
            minibatch_stddev: args.minibatch_stddev,
            fine_minibatch_stddev: args.fine_minibatch_stddev,
            noise_inputs: args.noise_inputs,
            spectrum_pool: args.spectrum_feature,
        }
    }

    /// The first flag given, if any, for a message refusing them for another architecture.
    fn given(&self) -> Option<&'static str> {
        if self.minibatch_stddev.is_some() {
            Some("--minibatch-stddev")
        } else if self.fine_minibatch_stddev.is_some() {
            Some("--fine-minibatch-stddev")
        } else if self.noise_inputs {
            Some("--noise-inputs")
        } else if self.spectrum_pool.is_some() {
            Some("--spectrum-feature")
        } else {
            None
        }
    }

    /// Applies the features given to `config`, keeping its own where none is given.
    fn apply(&self, config: &mut ResnetConfig) {
        config.minibatch_stddev = self.minibatch_stddev.or(config.minibatch_stddev);
        config.fine_minibatch_stddev = self.fine_minibatch_stddev.or(config.fine_minibatch_stddev);
        if self.fine_minibatch_stddev.is_some() {
            config.fine_minibatch_gain = Some(FINE_MINIBATCH_GAIN);
        }
        if self.noise_inputs {
            config.noise_inputs = Some(true);
        }
        config.spectrum_pool = self.spectrum_pool.or(config.spectrum_pool);
    }
}

fn model_config(
    arch: ArchArg,
    resolution: usize,
    latent: Option<usize>,
    g: Option<usize>,
    d: Option<usize>,
    d_batch_norm: bool,
    features: ResnetFeatures,
) -> Result<ModelConfig> {
    if let Some(flag) = features.given()
        && arch != ArchArg::Resnet
    {
        bail!("{flag} is for the residual GAN (--arch resnet)");
    }
    let config = match arch {
        ArchArg::Dcgan => {
            let mut c = DcganConfig::new().with_resolution(resolution);
            c.latent_size = latent.unwrap_or(c.latent_size);
            c.generator_width = g.unwrap_or(c.generator_width);
            c.discriminator_width = d.unwrap_or(c.discriminator_width);
            ModelConfig::Dcgan(c)
        }
        ArchArg::Resnet => {
            let mut c = ResnetConfig::new()
                .with_resolution(resolution)
                .with_discriminator_batch_norm(Some(d_batch_norm))
                .with_zero_init_branches(Some(false))
                .with_positional_head(Some(true));
            features.apply(&mut c);
            c.latent_size = latent.unwrap_or(c.latent_size);
            c.generator_width = g.unwrap_or(c.generator_width);
            c.discriminator_width = d.unwrap_or(c.discriminator_width);
            ModelConfig::Resnet(c)
        }
        ArchArg::Progan => {
            let mut c = ProganConfig::new().with_resolution(resolution);
            c.latent_size = latent.unwrap_or(c.latent_size);
            c.channel_base = g.unwrap_or(c.channel_base);
            c.max_channels = d.unwrap_or(c.max_channels);
            ModelConfig::Progan(c)
        }
    };
    config.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

/// The model config and warm start of a run that starts from the shipped model `name`, with
/// a discriminator `discriminator_width` wide and the residual GAN's optional `features`,
/// where given.
fn warm_start_from(
    assets: &Path,
    name: &str,
    discriminator_width: Option<usize>,
    features: ResnetFeatures,
) -> Result<(ModelConfig, Option<WarmStart>)> {
    let manifest = export::read_manifest(assets)?;
    let entry = manifest.entry(name)?;
    let file = assets.join(&entry.file);
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    entry.check_weights(&bytes)?;
    let mut model = entry.config.clone();
    match &mut model {
        ModelConfig::Dcgan(c) => {
            if let Some(flag) = features.given() {
                bail!("{flag} is for the residual GAN, and {name} is a DCGAN");
            }
            c.discriminator_width = discriminator_width.unwrap_or(c.discriminator_width)
        }
        ModelConfig::Resnet(c) => {
            c.discriminator_width = discriminator_width.unwrap_or(c.discriminator_width);
            features.apply(c);
        }
        ModelConfig::Progan(_) => bail!(
            "{name} is a progressive GAN, whose growth schedule a warm start cannot continue; \
             resume its run folder instead"
        ),
    }
    model.validate().map_err(anyhow::Error::msg)?;
    let warm = WarmStart {
        model: name.to_string(),
        file,
        sha256: entry.sha256.clone(),
        kimg: entry.kimg,
        training_seconds: entry.training_seconds,
        command: entry.command.clone(),
    };
    Ok((model, Some(warm)))
}

fn next_run_folder(arch: Arch) -> PathBuf {
    let runs = Path::new("runs");
    let next = std::fs::read_dir(runs)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.get(..5)?.parse::<u32>().ok())
                .max()
                .map_or(0, |n| n + 1)
        })
        .unwrap_or(0);
    runs.join(format!("{next:05}-{arch}"))
}

fn command_line() -> String {
    std::env::args()
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The file in a run folder that lists the held-out images, one name per line.
const HELD_OUT_LIST: &str = "held-out.txt";

fn run_train(args: TrainArgs) -> Result<()> {
    let chosen = device::choose(args.common.device)?;
    info!("device: {}", chosen.description);

    for rate in [args.lr_generator, args.lr_discriminator]
        .into_iter()
        .flatten()
    {
        if !(rate.is_finite() && rate > 0.0) {
            bail!("learning rates must be positive numbers, not {rate}");
        }
    }
    if let Some(half_life) = args.ema_kimg
        && !(half_life.is_finite() && half_life > 0.0)
    {
        bail!("--ema-kimg must be a positive number of thousands of images, not {half_life}");
    }
    if let Some(warmup) = args.discriminator_warmup_kimg
        && !(warmup.is_finite() && warmup >= 0.0)
    {
        bail!("--discriminator-warmup-kimg must be a number of thousands of images, at least 0");
    }
    // Held until training ends: a second `catgan train` on the same folder is refused.
    let _lock;
    let (run, config) = match &args.resume {
        Some(run) => {
            let mut config = export::read_config(run)?;
            _lock = checkpoint::lock(run)?;
            if let Some(data) = &args.data
                && data != &config.data
            {
                bail!(
                    "{} was trained on {}, not {}; resume without --data or start a new run",
                    run.display(),
                    config.data.display(),
                    data.display()
                );
            }
            if checkpoint::latest(run)?.is_none() {
                bail!("{} has no checkpoint to resume from", run.display());
            }
            let before = config.clone();
            config.total_kimg = args.kimg.unwrap_or(config.total_kimg);
            for (rate, new) in [
                (&mut config.learning_rate_generator, args.lr_generator),
                (
                    &mut config.learning_rate_discriminator,
                    args.lr_discriminator,
                ),
            ] {
                if let Some(new) = new {
                    *rate = new;
                }
            }
            if let Some(Policy(policy)) = &args.augment {
                config.augment = policy.clone();
            }
            if let Some(view) = args.fine_stddev_view {
                config.fine_stddev_untranslated = view == FineView::Untranslated;
            }
            if let Some(pool) = args.spectrum_feature {
                add_spectrum_on_resume(&mut config.model, pool)?;
            }
            check_fine_view(&config.model, config.fine_stddev_untranslated)?;
            config.ema_kimg = args.ema_kimg.unwrap_or(config.ema_kimg);
            config.discriminator_warmup_kimg = args
                .discriminator_warmup_kimg
                .unwrap_or(config.discriminator_warmup_kimg);
            if config != before {
                info!(
                    "resuming with {} kimg in all, learning rates {} (generator) and {} \
                     (discriminator), augmentation {}{}, moving average half-life {} kimg, \
                     discriminator alone until {} kimg",
                    config.total_kimg,
                    config.learning_rate_generator,
                    config.learning_rate_discriminator,
                    augment::policy_name(&config.augment),
                    if config.fine_stddev_untranslated {
                        " (the fine and spectrum features read the untranslated batch)"
                    } else {
                        ""
                    },
                    config.ema_kimg,
                    config.discriminator_warmup_kimg
                );
                std::fs::write(
                    run.join("config.json"),
                    serde_json::to_string_pretty(&config)?,
                )?;
            }
            (run.clone(), config)
        }
        None => {
            let (model, warm_start) = match &args.init_generator {
                Some(name) => warm_start_from(
                    &args.assets,
                    name,
                    args.discriminator_width,
                    ResnetFeatures::from_args(&args),
                )?,
                None => {
                    let model = model_config(
                        args.arch,
                        args.resolution,
                        args.latent_size,
                        args.generator_width,
                        args.discriminator_width,
                        args.discriminator_norm == Norm::Batch,
                        ResnetFeatures::from_args(&args),
                    )?;
                    (model, None)
                }
            };
            let warmup = args
                .discriminator_warmup_kimg
                .unwrap_or(if warm_start.is_some() { 4.0 } else { 0.0 });
            let progan = model.arch() == Arch::Progan;
            // The Progressive GAN paper's Adam betas (no first-moment momentum). Its rate, 1e-3,
            // is tuned for ~37,000 steps per phase; with equalised weights (unit normals) and
            // the ~190 steps of a 12 kimg phase at batch 64, 2e-3 learns each stage and 1e-3 or
            // less leaves it noise (docs/MODELS.md).
            let (lr, beta1, beta2) = if progan {
                (2e-3, 0.0, 0.99)
            } else {
                (2e-4, 0.5, 0.999)
            };
            let default_loss = match model.arch() {
                Arch::Dcgan | Arch::Resnet => Loss::Logistic,
                Arch::Progan => Loss::Ralsgan,
            };
            let config = TrainConfig {
                data: args
                    .data
                    .clone()
                    .expect("clap requires --data without --resume"),
                batch_size: args.batch_size,
                loss: args.loss.unwrap_or(default_loss),
                learning_rate_generator: args.lr_generator.unwrap_or(lr),
                learning_rate_discriminator: args.lr_discriminator.unwrap_or(lr),
                beta1,
                beta2,
                fade_kimg: args.fade_kimg,
                stable_kimg: args.stable_kimg,
                held_out_percent: args.held_out_percent,
                swd_kimg: args.swd_kimg,
                swd_images: args.swd_images,
                // An average over many thousand images still holds much of a new stage's random
                // initial layers when a short fade ends (a colour cast over every cat).
                ema_kimg: args.ema_kimg.unwrap_or(if progan {
                    args.fade_kimg / 10.0
                } else {
                    10.0
                }),
                ema_rampup: 0.1,
                total_kimg: args.kimg.unwrap_or(300.0),
                tick_kimg: args.tick_kimg,
                checkpoint_ticks: args.checkpoint_ticks.max(1),
                keep_checkpoints: 2,
                grid_cells: 64,
                seed: args.seed,
                max_pixels: args.max_pixels,
                augment: args.augment.clone().map(|p| p.0).unwrap_or_default(),
                warm_start,
                discriminator_warmup_kimg: warmup,
                fine_stddev_untranslated: args.fine_stddev_view == Some(FineView::Untranslated),
                model,
            };
            check_fine_view(&config.model, config.fine_stddev_untranslated)?;
            anyhow::ensure!(config.batch_size > 0, "--batch-size must be at least 1");
            anyhow::ensure!(config.tick_kimg > 0.0, "--tick-kimg must be positive");
            anyhow::ensure!(
                (0.0..50.0).contains(&config.held_out_percent),
                "--held-out-percent must be at least 0 and below 50"
            );
            anyhow::ensure!(
                config.fade_kimg >= 0.0 && config.stable_kimg >= 0.0,
                "--fade-kimg and --stable-kimg must not be negative"
            );
            if let ModelConfig::Progan(c) = &config.model {
                anyhow::ensure!(
                    config
                        .batch_size
                        .is_multiple_of(c.group_size.min(config.batch_size)),
                    "--batch-size {} is not a multiple of the progan discriminator's group of {}",
                    config.batch_size,
                    c.group_size
                );
            }
            let run = args
                .out
                .clone()
                .unwrap_or_else(|| next_run_folder(config.model.arch()));
            _lock = checkpoint::prepare_fresh(&run, args.force)?;
            (run, config)
        }
    };

    // Record the command before the slow data load, so an interrupted session is still listed.
    let commands = run.join(export::COMMANDS);
    let mut listed = std::fs::read_to_string(&commands).unwrap_or_default();
    listed.push_str(&command_line());
    listed.push('\n');
    std::fs::write(&commands, listed)
        .with_context(|| format!("cannot write {}", commands.display()))?;

    let (dataset, held_out) = train::load_data(&config, !args.common.no_progress)?;
    train::check_training_set(&run, &dataset, args.resume.is_some())?;
    let held_out_list = run.join(HELD_OUT_LIST);
    let mut names = held_out.names.join("\n");
    names.push('\n');
    std::fs::write(&held_out_list, names)
        .with_context(|| format!("cannot write {}", held_out_list.display()))?;
    let reference = if config.swd_kimg > 0.0 {
        let started = std::time::Instant::now();
        let held = (!held_out.is_empty()).then_some(&held_out);
        let reference = Reference::new(&dataset, held, config.swd_images)?;
        info!(
            "SWD reference: {}; real-vs-real floor {:.2} ({:.1} s)",
            reference.source,
            reference.floor.mean,
            started.elapsed().as_secs_f64()
        );
        Some(std::sync::Arc::new(reference))
    } else {
        None
    };
    let options = RunOptions {
        progress: !args.common.no_progress,
        stop_after_step: None,
        device_name: chosen.description.clone(),
        reference,
        held_out: (!held_out.is_empty()).then(|| std::sync::Arc::new(held_out)),
    };
    let summary = train::train(&run, &config, &dataset, &chosen.device, &options)?;
    info!(
        "done: {:.1} kimg in {:.2} h; newest checkpoint {}. Export with: catgan export {}",
        summary.kimg,
        summary.training_seconds / 3600.0,
        summary.checkpoint.display(),
        run.display()
    );
    Ok(())
}

fn run_export(args: ExportArgs) -> Result<()> {
    let chosen = device::choose(args.common.device)?;
    let config = export::read_config(&args.run)?;
    let options = ExportOptions {
        name: args.name.unwrap_or_else(|| config.model.arch().to_string()),
        run: args.run,
        assets: args.assets,
        precision: match args.precision {
            PrecisionArg::Auto => None,
            PrecisionArg::Int8 => Some(Precision::Int8),
            PrecisionArg::F16 => Some(Precision::F16),
            PrecisionArg::F32 => Some(Precision::F32),
        },
        tolerance: args.tolerance,
    };
    export::export(&options, &chosen.device).map(|_| ())
}

fn run_sample(args: SampleArgs) -> Result<()> {
    let chosen = device::choose(args.common.device)?;
    let options = SampleOptions {
        assets: args.assets,
        model: args.model,
        seed: args.seed,
        count: args.count,
        out: args.out,
        scale: args.scale,
        growth: args.growth,
    };
    export::sample(&options, &chosen.device)
}

/// Loads the generator and the real images a measurement compares it with.
fn measured_and_data(
    args: &MeasureArgs,
    device: &burn::prelude::Device,
) -> Result<(Measured, catgan::data::Dataset, catgan::data::Dataset)> {
    let source = match (&args.source.model, &args.source.run) {
        (Some(name), _) => Source::Model {
            assets: args.assets.clone(),
            name: name.clone(),
        },
        (None, Some(run)) => Source::Run(run.clone()),
        (None, None) => bail!("give --model NAME or --run RUN_DIR"),
    };
    let measured = load_source(&source, device)?;
    let Some(data) = args.data.clone().or_else(|| measured.data.clone()) else {
        bail!("give --data: the folder of real images to compare with");
    };
    let percent = args.held_out_percent.unwrap_or(match &source {
        Source::Run(_) => measured.held_out_percent,
        Source::Model { .. } => 5.0,
    });
    let progress = !args.common.no_progress;
    let (train, held) = load_real(&data, measured.config.resolution(), percent, progress)?;
    info!(
        "{}: {} real images for training, {} held out ({percent}%) from {}",
        measured.name,
        train.len(),
        held.len(),
        data.display()
    );
    Ok((measured, train, held))
}

fn run_eval(args: EvalArgs) -> Result<()> {
    let chosen = device::choose(args.measure.common.device)?;
    let (measured, train, held) = measured_and_data(&args.measure, &chosen.device)?;
    let evaluation = evaluate(&measured, &train, &held, args.images, &chosen.device)?;
    eprint!("{}", evaluation.table());
    println!("{}", serde_json::to_string(&evaluation)?);
    Ok(())
}

fn run_nearest(args: NearestArgs) -> Result<()> {
    let chosen = device::choose(args.measure.common.device)?;
    let (measured, train, held) = measured_and_data(&args.measure, &chosen.device)?;
    let (report, picture) = nearest_check(&measured, &train, &held, args.count, &chosen.device)?;
    catgan::grid::save_png(&picture, &args.out)?;
    for space in &report.spaces {
        let (g, h) = (&space.generated, &space.held_out);
        eprintln!(
            "{:?}: nearest training image, median (quartiles) generated {:.3} ({:.3}-{:.3}) \
             vs held-out real {:.3} ({:.3}-{:.3}); closest generated {:.3}, closest real {:.3}",
            space.space,
            g.median,
            g.lower_quartile,
            g.upper_quartile,
            h.median,
            h.lower_quartile,
            h.upper_quartile,
            g.min,
            h.min
        );
    }
    eprintln!("wrote {}", args.out.display());
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn run_report(args: ReportArgs) -> Result<()> {
    let out = args.out.unwrap_or_else(|| args.run.join("report"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let report = catgan::report::write_report(&args.run, &out)?;
    for note in &report.notes {
        eprintln!("{note}");
    }
    for path in &report.written {
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn run_bench(args: BenchArgs) -> Result<()> {
    let chosen = device::choose(args.common.device)?;
    let model = model_config(
        args.arch,
        64,
        args.latent_size,
        args.generator_width,
        args.discriminator_width,
        true,
        ResnetFeatures::default(),
    )?;
    let result = catgan::bench::bench(&model, args.batch_size, args.steps, &chosen.device)?;
    let line = serde_json::json!({
        "arch": model.arch(),
        "config": model,
        "device": chosen.description,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "images_per_second_median": result.median,
        "images_per_second_best": result.best,
    });
    println!("{line}");
    Ok(())
}

fn run_devices() -> Result<()> {
    let adapters = device::adapters();
    if adapters.is_empty() {
        println!("wgpu sees no adapters");
    }
    for a in &adapters {
        let kind = if a.hardware {
            "hardware GPU"
        } else {
            "software, not used"
        };
        println!("{} ({}): {kind}", a.name, a.backend);
    }
    let chosen = device::choose(DeviceChoice::Auto)?;
    println!("--device auto picks: {}", chosen.description);
    Ok(())
}

fn main() {
    logging::init();
    let result = match Cli::parse().command {
        Command::Train(args) => run_train(*args),
        Command::Export(args) => run_export(args),
        Command::Convert(args) => {
            let device = burn::prelude::Device::flex();
            let precision = args.precision.into();
            export::convert(
                &args.assets,
                &args.model,
                precision,
                args.tolerance,
                args.standing_statistics,
                &device,
            )
            .map(|_| ())
        }
        Command::Sample(args) => run_sample(args),
        Command::Eval(args) => run_eval(args),
        Command::Report(args) => run_report(args),
        Command::Nearest(args) => run_nearest(args),
        Command::Bench(args) => run_bench(args),
        Command::Tensors(args) => {
            let device = burn::prelude::Device::flex();
            export::write_safetensors(&args.assets, &args.model, &args.out, &device).map(|n| {
                eprintln!(
                    "wrote {n} tensors of '{}' to {}",
                    args.model,
                    args.out.display()
                )
            })
        }
        Command::Devices => run_devices(),
    };
    if let Err(error) = result {
        logging::set_bar(None);
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resuming_refuses_settings_that_would_change_the_run() {
        for flag in [
            ["--arch", "progan"],
            ["--resolution", "128"],
            ["--seed", "3"],
        ] {
            let args = ["catgan", "train", "--resume", "runs/x", flag[0], flag[1]];
            let error = Cli::try_parse_from(args).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::ArgumentConflict,
                "{flag:?}"
            );
        }
        // A new total length, learning rates, moving-average half-life and warm-up are fine.
        assert!(Cli::try_parse_from(["catgan", "train", "--resume", "r", "--kimg", "9"]).is_ok());
        let rates = ["--lr-generator", "1e-4", "--lr-discriminator", "1e-4"];
        let args = ["catgan", "train", "--resume", "r"]
            .into_iter()
            .chain(rates)
            .chain(["--ema-kimg", "20", "--discriminator-warmup-kimg", "24"]);
        let Ok(Cli {
            command: Command::Train(args),
        }) = Cli::try_parse_from(args)
        else {
            panic!("new rates and half-life on --resume were refused");
        };
        assert_eq!(args.ema_kimg, Some(20.0));
        assert_eq!(args.discriminator_warmup_kimg, Some(24.0));
    }

    #[test]
    fn a_warm_start_takes_the_shipped_models_architecture() {
        let start = [
            "catgan",
            "train",
            "--data",
            "d",
            "--init-generator",
            "resnet",
        ];
        for flag in [["--arch", "dcgan"], ["--generator-width", "32"]] {
            let error = Cli::try_parse_from(start.into_iter().chain(flag)).unwrap_err();
            assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
        }
        let resumed = [
            "catgan",
            "train",
            "--resume",
            "r",
            "--init-generator",
            "resnet",
        ];
        assert!(Cli::try_parse_from(resumed).is_err());
        let Ok(Cli {
            command: Command::Train(args),
        }) = Cli::try_parse_from(start.into_iter().chain([
            "--discriminator-width",
            "48",
            "--minibatch-stddev",
            "4",
        ]))
        else {
            panic!("a new discriminator width or minibatch feature was refused");
        };
        assert_eq!(args.init_generator.as_deref(), Some("resnet"));
        assert_eq!(args.discriminator_width, Some(48));
        assert_eq!(args.minibatch_stddev, Some(4));
        let stddev = ResnetFeatures {
            minibatch_stddev: Some(4),
            ..Default::default()
        };
        let error = model_config(ArchArg::Dcgan, 64, None, None, None, true, stddev);
        assert!(error.unwrap_err().to_string().contains("residual"));
        let noise = ResnetFeatures {
            noise_inputs: true,
            ..Default::default()
        };
        let error = model_config(ArchArg::Progan, 64, None, None, None, true, noise);
        assert!(error.unwrap_err().to_string().contains("--noise-inputs"));

        // Reading the manifest: a progressive model is refused by name, a missing one too.
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
        let none = ResnetFeatures::default();
        let error = warm_start_from(&assets, "progan", None, none).unwrap_err();
        assert!(error.to_string().contains("progressive"), "{error}");
        assert!(warm_start_from(&assets, "no-such-model", None, none).is_err());
        let error = warm_start_from(&assets, "dcgan", None, stddev).unwrap_err();
        assert!(error.to_string().contains("residual"), "{error}");
        let all = ResnetFeatures {
            minibatch_stddev: Some(4),
            fine_minibatch_stddev: Some(2),
            noise_inputs: true,
            spectrum_pool: Some(4),
        };
        let (model, warm) = warm_start_from(&assets, "resnet", Some(48), all).unwrap();
        let ModelConfig::Resnet(resnet) = model else {
            panic!("resnet's config became {model:?}");
        };
        assert_eq!(resnet.discriminator_width, 48);
        assert_eq!(resnet.minibatch_stddev, Some(4));
        assert_eq!(resnet.fine_minibatch_stddev, Some(2));
        assert_eq!(resnet.fine_minibatch_gain, Some(FINE_MINIBATCH_GAIN));
        assert_eq!(resnet.noise_inputs, Some(true));
        assert_eq!(resnet.spectrum_pool, Some(4));
        let warm = warm.unwrap();
        assert!(warm.kimg > 0.0 && warm.file.ends_with("resnet.bpk"));
    }

    #[test]
    fn the_untranslated_fine_view_needs_a_fine_feature_and_may_change_on_resume() {
        let resumed = Cli::try_parse_from([
            "catgan",
            "train",
            "--resume",
            "r",
            "--fine-stddev-view",
            "untranslated",
        ]);
        let Ok(Cli {
            command: Command::Train(args),
        }) = resumed
        else {
            panic!("a new view on --resume was refused");
        };
        assert_eq!(args.fine_stddev_view, Some(FineView::Untranslated));
        let fine = ResnetFeatures {
            fine_minibatch_stddev: Some(4),
            ..Default::default()
        };
        let resnet = |features| model_config(ArchArg::Resnet, 64, None, None, None, true, features);
        assert!(check_fine_view(&resnet(fine).unwrap(), true).is_ok());
        let plain = resnet(ResnetFeatures::default()).unwrap();
        assert!(check_fine_view(&plain, false).is_ok());
        let error = check_fine_view(&plain, true).unwrap_err().to_string();
        assert!(error.contains("--fine-minibatch-stddev"), "{error}");
        let dcgan = model_config(
            ArchArg::Dcgan,
            64,
            None,
            None,
            None,
            true,
            ResnetFeatures::default(),
        );
        assert!(check_fine_view(&dcgan.unwrap(), true).is_err());
    }

    #[test]
    fn a_spectrum_feature_is_for_the_residual_gan_and_may_be_added_on_resume() {
        let resumed = [
            "catgan",
            "train",
            "--resume",
            "r",
            "--spectrum-feature",
            "4",
        ];
        let Ok(Cli {
            command: Command::Train(args),
        }) = Cli::try_parse_from(resumed)
        else {
            panic!("--spectrum-feature on --resume was refused");
        };
        assert_eq!(args.spectrum_feature, Some(4));
        let spectral = ResnetFeatures {
            spectrum_pool: Some(4),
            ..Default::default()
        };
        let resnet = |features| model_config(ArchArg::Resnet, 64, None, None, None, true, features);
        let ModelConfig::Resnet(made) = resnet(spectral).unwrap() else {
            panic!("not a residual config")
        };
        assert_eq!(made.spectrum_pool, Some(4));
        // It reads the untranslated view as the fine feature does.
        assert!(check_fine_view(&ModelConfig::Resnet(made), true).is_ok());
        let dcgan = |features| model_config(ArchArg::Dcgan, 64, None, None, None, true, features);
        let error = dcgan(spectral).unwrap_err().to_string();
        assert!(error.contains("--spectrum-feature"), "{error}");
        // A pool that does not divide the side is refused when the run is made.
        let odd = ResnetFeatures {
            spectrum_pool: Some(3),
            ..Default::default()
        };
        assert!(resnet(odd).is_err());

        // On resume: added to a discriminator without one, kept if the same, never changed.
        let mut plain = resnet(ResnetFeatures::default()).unwrap();
        add_spectrum_on_resume(&mut plain, 4).unwrap();
        assert!(matches!(&plain, ModelConfig::Resnet(c) if c.spectrum_pool == Some(4)));
        add_spectrum_on_resume(&mut plain, 4).unwrap();
        let error = add_spectrum_on_resume(&mut plain, 8)
            .unwrap_err()
            .to_string();
        assert!(error.contains("cannot change"), "{error}");
        let mut no_fit = resnet(ResnetFeatures::default()).unwrap();
        assert!(add_spectrum_on_resume(&mut no_fit, 5).is_err());
        let mut other = dcgan(ResnetFeatures::default()).unwrap();
        let error = add_spectrum_on_resume(&mut other, 4)
            .unwrap_err()
            .to_string();
        assert!(error.contains("residual"), "{error}");
    }

    #[test]
    fn augmentation_policies_are_read_and_unknown_ones_refused_by_name() {
        let parse = |policy: &str| {
            Cli::try_parse_from(["catgan", "train", "--resume", "r", "--augment", policy])
        };
        let Ok(Cli {
            command: Command::Train(args),
        }) = parse("color,cutout")
        else {
            panic!("a valid policy was refused");
        };
        let policy = args.augment.expect("the policy is kept").0;
        assert_eq!(policy, [Augment::Color, Augment::Cutout]);
        let error = parse("color,blur").unwrap_err().to_string();
        assert!(error.contains("unknown augmentation `blur`"), "{error}");
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
