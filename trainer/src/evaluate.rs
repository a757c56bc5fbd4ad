//! Measuring a generator against real images: the held-out split, the SWD reference set and
//! its real-vs-real floor, and the generated images both are compared with.
//!
//! SWD has a bias that shrinks with the number of images, so every figure here compares sets
//! of the same size, and the floor (two disjoint sets of real images) is measured at that size
//! against the same reference set as the generator.

use crate::data::{self, Dataset, LoadOptions};
use crate::export::{load_run_ema, load_shipped};
use crate::growth::enlarge;
use crate::nearest::{self, Space, Summary};
use crate::spectrum::{self, SpectrumGap};
use crate::swd::{self, Descriptors, Images, Swd};
use anyhow::{Result, anyhow};
use burn::prelude::*;
use catgan_model::latent::latents_for_seeds;
use catgan_model::rng::SplitMix64;
use catgan_model::{Generator, Growth, ModelConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tracing::info;

/// Seeds of the generated images that SWD measures start here, far from the sample grids'.
pub const SWD_SEED_BASE: u64 = 1 << 32;

/// Whether the file `name` belongs to the held-out part: decided by a hash of its name alone,
/// so the split does not depend on the order files are found in or on which others exist.
pub fn is_held_out(name: &str, percent: f64) -> bool {
    let digest = Sha256::digest(name.as_bytes());
    let value = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
    ((value % 10_000) as f64) < percent * 100.0
}

/// Splits `dataset` into the part training sees and the held-out part.
pub fn split_held_out(dataset: Dataset, percent: f64) -> (Dataset, Dataset) {
    let empty = || Dataset {
        resolution: dataset.resolution,
        pixels: Vec::new(),
        names: Vec::new(),
    };
    let (mut train, mut held) = (empty(), empty());
    for (index, name) in dataset.names.iter().enumerate() {
        let part = if is_held_out(name, percent) {
            &mut held
        } else {
            &mut train
        };
        part.pixels.extend_from_slice(dataset.image(index));
        part.names.push(name.clone());
    }
    (train, held)
}

/// Images `indices` of `dataset` on the [-1, 1] scale, for SWD.
pub fn dataset_images(dataset: &Dataset, indices: &[usize]) -> Result<Images> {
    let side = dataset.resolution;
    let plane = side * side;
    let mut pixels = vec![0f32; indices.len() * 3 * plane];
    for (image, &index) in pixels.chunks_exact_mut(3 * plane).zip(indices) {
        for (i, rgb) in dataset.image(index).chunks_exact(3).enumerate() {
            for (c, &value) in rgb.iter().enumerate() {
                image[c * plane + i] = value as f32 / 127.5 - 1.0;
            }
        }
    }
    Ok(Images::new(indices.len(), side, pixels)?)
}

/// `count` images from `generator`, latents of seeds `SWD_SEED_BASE + i`, made in batches. A
/// progressive generator draws at `growth`, enlarged to its full side.
pub fn generated_images(
    generator: &Generator,
    growth: Option<Growth>,
    count: usize,
    latent_size: usize,
    device: &Device,
) -> Result<Images> {
    const BATCH: usize = 64;
    let mut pixels = Vec::new();
    let mut side = 0;
    for start in (0..count).step_by(BATCH) {
        let n = BATCH.min(count - start);
        let latents = latents_for_seeds(SWD_SEED_BASE + start as u64, n, latent_size, device);
        let images = match (growth, generator.as_progan()) {
            (Some(growth), Some(progan)) => {
                let side = 4 << (progan.stages() - 1);
                enlarge(progan.forward_growing(latents, growth), side)
            }
            _ => generator.forward(latents),
        }
        .clamp(-1.0, 1.0);
        side = images.dims()[2];
        let values = images
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow!("{e:?}"))?;
        pixels.extend(values);
    }
    Ok(Images::new(count, side, pixels)?)
}

/// What generated images are compared with: the descriptors of a reference set of real images
/// and the floor, the SWD between that set and another real set of the same size.
#[derive(Debug)]
pub struct Reference {
    /// Descriptors of the reference images.
    pub descriptors: Descriptors,
    /// Number of images in each compared set.
    pub count: usize,
    /// SWD between the reference and a disjoint set of real images.
    pub floor: Swd,
    /// Where the reference images come from, for reports.
    pub source: String,
    /// [`swd::shared_detail`] of the reference images.
    pub shared_detail: Vec<f64>,
    /// [`spectrum::mean_log_spectrum`] of the reference images.
    pub spectrum: Vec<f64>,
    /// [`spectrum::gap`] between the floor's other real images and the reference.
    pub spectrum_floor: SpectrumGap,
}

/// Seeds of the random neighbourhoods and directions; fixed, so figures of one run compare.
const SEED_REFERENCE: u64 = 11;
const SEED_OTHER: u64 = 12;
const SEED_DIRECTIONS: u64 = 13;

impl Reference {
    /// A reference of at most `count` images. With a held-out set, the reference is the
    /// held-out images and the floor set the same number of training images; without one
    /// (runs made before the split existed), two disjoint sets of training images.
    pub fn new(train: &Dataset, held_out: Option<&Dataset>, count: usize) -> Result<Self> {
        let mut order: Vec<usize> = (0..train.len()).collect();
        SplitMix64::new(SEED_REFERENCE).shuffle(&mut order);
        let (reference, other, count, source) = match held_out.filter(|h| !h.is_empty()) {
            Some(held) => {
                let count = count.min(held.len()).min(train.len());
                let held_order: Vec<usize> = (0..count).collect();
                (
                    dataset_images(held, &held_order)?,
                    dataset_images(train, &order[..count])?,
                    count,
                    format!("{count} held-out images"),
                )
            }
            None => {
                let count = count.min(train.len() / 2);
                (
                    dataset_images(train, &order[..count])?,
                    dataset_images(train, &order[count..2 * count])?,
                    count,
                    format!("{count} training images (this run has no held-out split)"),
                )
            }
        };
        anyhow::ensure!(count >= 16, "too few real images ({count}) to measure SWD");
        let descriptors = swd::descriptors(&reference, SEED_REFERENCE)?;
        let shared_detail = swd::shared_detail(&reference)?;
        let spectrum = spectrum::mean_log_spectrum(&reference)?;
        let spectrum_floor = spectrum::gap(
            &spectrum::mean_log_spectrum(&other)?,
            &spectrum,
            reference.side,
        );
        let floor = swd::distance(
            &swd::descriptors(&other, SEED_OTHER)?,
            &descriptors,
            SEED_DIRECTIONS,
        )?;
        Ok(Self {
            descriptors,
            count,
            floor,
            source,
            shared_detail,
            spectrum,
            spectrum_floor,
        })
    }

    /// SWD between `count` images of `generator` (at `growth`, for a progressive one) and the
    /// reference, and how much detail those images share.
    pub fn measure(
        &self,
        generator: &Generator,
        growth: Option<Growth>,
        latent_size: usize,
        device: &Device,
    ) -> Result<Measurement> {
        let fakes = generated_images(generator, growth, self.count, latent_size, device)?;
        Ok(Measurement {
            swd: swd::distance(
                &swd::descriptors(&fakes, SEED_OTHER)?,
                &self.descriptors,
                SEED_DIRECTIONS,
            )?,
            shared_detail: swd::shared_detail(&fakes)?,
            spectrum: spectrum::gap(
                &spectrum::mean_log_spectrum(&fakes)?,
                &self.spectrum,
                fakes.side,
            ),
        })
    }
}

/// What [`Reference::measure`] finds of a generator.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// SWD against the reference.
    pub swd: Swd,
    /// [`swd::shared_detail`] of the generated images.
    pub shared_detail: Vec<f64>,
    /// [`spectrum::gap`] between the generated images and the reference.
    pub spectrum: SpectrumGap,
}

/// One `catgan eval` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evaluation {
    /// The model or run measured.
    pub model: String,
    /// Thousands of images it trained on.
    pub kimg: f64,
    /// Images in each compared set.
    pub images: usize,
    /// Where the real images come from.
    pub reference: String,
    /// SWD of the generated images (times 1e3), per level (finest first) and mean.
    pub swd: Swd,
    /// SWD between two disjoint real sets of the same size.
    pub floor: Swd,
    /// `swd.mean / floor.mean`.
    pub ratio_to_floor: f64,
    /// How much of each detail level is the same in every image, generated and real (absent
    /// from evaluations written before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_detail: Option<SharedDetail>,
    /// How far the generated and a second real set's power spectra lie from the reference's
    /// (absent from evaluations written before it was measured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spectrum: Option<SpectrumGaps>,
}

/// [`spectrum::gap`] of the generated images and of the floor's second real set, each against
/// the reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SpectrumGaps {
    /// The generated images.
    pub generated: SpectrumGap,
    /// The second real set: what sampling alone gives.
    pub floor: SpectrumGap,
}

/// [`swd::shared_detail`] of the generated and the real images of an evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SharedDetail {
    /// Side of each detail level, finest first.
    pub resolutions: Vec<usize>,
    /// Share of each level common to all generated images.
    pub generated: Vec<f64>,
    /// The same for the real reference images.
    pub real: Vec<f64>,
}

impl Evaluation {
    /// A readable table of the figures.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} at {:.1} kimg, {} generated vs {}\n",
            self.model, self.kimg, self.images, self.reference
        );
        out.push_str(&format!(
            "{:>10} {:>10} {:>10}\n",
            "level", "generated", "floor"
        ));
        for ((side, g), f) in self
            .swd
            .resolutions
            .iter()
            .zip(&self.swd.per_level)
            .zip(&self.floor.per_level)
        {
            out.push_str(&format!(
                "{:>10} {g:>10.2} {f:>10.2}\n",
                format!("{side}x{side}")
            ));
        }
        out.push_str(&format!(
            "{:>10} {:>10.2} {:>10.2}   ({:.2}x the floor)\n",
            "mean", self.swd.mean, self.floor.mean, self.ratio_to_floor
        ));
        if let Some(shared) = &self.shared_detail {
            out.push_str("shared detail (share of each level that is the same in every image)\n");
            out.push_str(&format!(
                "{:>10} {:>10} {:>10}\n",
                "level", "generated", "real"
            ));
            for ((side, g), r) in shared
                .resolutions
                .iter()
                .zip(&shared.generated)
                .zip(&shared.real)
            {
                out.push_str(&format!(
                    "{:>10} {g:>10.3} {r:>10.3}\n",
                    format!("{side}x{side}")
                ));
            }
        }
        if let Some(gaps) = &self.spectrum {
            out.push_str(&format!(
                "spectrum gap (mean |difference| of log power over {0}x{0} cells of \
                 frequencies, nats)\n",
                spectrum::CELLS
            ));
            out.push_str(&format!("{:>10} {:>10} {:>10}\n", "", "generated", "floor"));
            out.push_str(&format!(
                "{:>10} {:>10.3} {:>10.3}\n",
                "mean", gaps.generated.mean, gaps.floor.mean
            ));
            let worst = &gaps.generated;
            out.push_str(&format!(
                "furthest cell: {:.2}x the real power from {} cycles down and {} across\n",
                worst.worst_ratio, worst.worst_cell[0], worst.worst_cell[1]
            ));
        }
        out
    }
}

/// Where a generator to measure comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A shipped model: its name in the manifest of an assets folder.
    Model {
        /// The assets folder.
        assets: PathBuf,
        /// The model's name.
        name: String,
    },
    /// The moving-average generator of a run's newest checkpoint.
    Run(PathBuf),
}

/// A generator ready to measure, with what is known of its training.
pub struct Measured {
    /// The model's name or the run folder.
    pub name: String,
    /// Thousands of images it trained on.
    pub kimg: f64,
    /// Its sizes.
    pub config: ModelConfig,
    /// The generator.
    pub generator: Generator,
    /// The run's held-out percentage (0 for shipped models, whose runs are not at hand).
    pub held_out_percent: f64,
    /// The run's data folder, if known.
    pub data: Option<PathBuf>,
}

/// Loads the generator `source` names.
pub fn load_source(source: &Source, device: &Device) -> Result<Measured> {
    Ok(match source {
        Source::Model { assets, name } => {
            let (entry, generator) = load_shipped(assets, name, device)?;
            Measured {
                name: entry.name,
                kimg: entry.kimg,
                config: entry.config,
                generator,
                held_out_percent: 0.0,
                data: None,
            }
        }
        Source::Run(run) => {
            let (config, state, generator) = load_run_ema(run, device)?;
            Measured {
                name: run.display().to_string(),
                // A warm-started run's generator had seen its shipped model's images too.
                kimg: (state.images + config.images_before_run()) as f64 / 1000.0,
                config: config.model,
                generator,
                held_out_percent: config.held_out_percent,
                data: Some(config.data),
            }
        }
    })
}

/// Reads real images at `resolution` and splits them: (training part, held-out part).
pub fn load_real(
    folder: &Path,
    resolution: usize,
    held_out_percent: f64,
    progress: bool,
) -> Result<(Dataset, Dataset)> {
    let options = LoadOptions {
        resolution,
        progress,
        ..LoadOptions::new(resolution)
    };
    let (dataset, skipped) = data::load_folder(folder, &options)?;
    if !skipped.is_empty() {
        info!("{} files of {} skipped", skipped.len(), folder.display());
    }
    Ok(split_held_out(dataset, held_out_percent))
}

/// `catgan eval`: SWD of `count` generated images against real ones, beside the floor.
pub fn evaluate(
    measured: &Measured,
    train: &Dataset,
    held_out: &Dataset,
    count: usize,
    device: &Device,
) -> Result<Evaluation> {
    let held = (!held_out.is_empty()).then_some(held_out);
    let reference = Reference::new(train, held, count)?;
    let input_size = measured.config.input_size();
    let Measurement {
        swd,
        shared_detail,
        spectrum,
    } = reference.measure(&measured.generator, None, input_size, device)?;
    let shared_detail = SharedDetail {
        resolutions: swd.resolutions[..shared_detail.len()].to_vec(),
        generated: shared_detail,
        real: reference.shared_detail.clone(),
    };
    Ok(Evaluation {
        model: measured.name.clone(),
        kimg: measured.kimg,
        images: reference.count,
        reference: reference.source.clone(),
        ratio_to_floor: swd.mean / reference.floor.mean,
        swd,
        floor: reference.floor,
        shared_detail: Some(shared_detail),
        spectrum: Some(SpectrumGaps {
            generated: spectrum,
            floor: reference.spectrum_floor.clone(),
        }),
    })
}

/// Nearest training distances of generated and of held-out real images, in one space.
#[derive(Debug, Clone, Serialize)]
pub struct NearestSummary {
    /// Where distances are measured.
    pub space: Space,
    /// Generated images to their nearest training image.
    pub generated: Summary,
    /// Held-out real images to their nearest training image.
    pub held_out: Summary,
}

/// `catgan nearest` result.
#[derive(Debug, Clone, Serialize)]
pub struct NearestReport {
    /// The model or run.
    pub model: String,
    /// Thousands of images it trained on.
    pub kimg: f64,
    /// Training images searched.
    pub training_images: usize,
    /// Distance summaries, pixels then blurred.
    pub spaces: Vec<NearestSummary>,
}

/// `catgan nearest`: finds the nearest training images of `count` generated cats and of as
/// many held-out real ones, in pixels and blurred; returns the summaries and an image of the
/// generated cats (left) beside their three nearest training images in pixels.
pub fn nearest_check(
    measured: &Measured,
    train: &Dataset,
    held_out: &Dataset,
    count: usize,
    device: &Device,
) -> Result<(NearestReport, image::RgbImage)> {
    anyhow::ensure!(
        !held_out.is_empty(),
        "no held-out images to compare with; use a larger --held-out-percent"
    );
    let input_size = measured.config.input_size();
    let generated = generated_images(&measured.generator, None, count, input_size, device)?;
    let all: Vec<usize> = (0..train.len()).collect();
    let training = dataset_images(train, &all)?;
    let real_count = count.min(held_out.len());
    let real = dataset_images(held_out, &(0..real_count).collect::<Vec<_>>())?;
    let mut spaces = Vec::new();
    let mut picture = None;
    for space in [Space::Pixels, Space::Blurred] {
        let fake_matches = nearest::nearest(&generated, &training, space, 3)?;
        let real_matches = nearest::nearest(&real, &training, space, 1)?;
        let summary = |m: &[Vec<nearest::Neighbour>]| {
            Summary::of(&nearest::nearest_distances(m)).ok_or_else(|| anyhow!("no distances"))
        };
        spaces.push(NearestSummary {
            space,
            generated: summary(&fake_matches)?,
            held_out: summary(&real_matches)?,
        });
        if space == Space::Pixels {
            let shown = 16.min(count);
            let first: Vec<usize> = (0..shown).collect();
            picture = Some(nearest::side_by_side(
                &generated.select(&first),
                &training,
                &fake_matches[..shown],
                3,
            )?);
        }
    }
    let report = NearestReport {
        model: measured.name.clone(),
        kimg: measured.kimg,
        training_images: train.len(),
        spaces,
    };
    Ok((report, picture.expect("the pixel space is measured")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(names: &[&str], side: usize) -> Dataset {
        let mut rng = SplitMix64::new(2);
        Dataset {
            resolution: side,
            pixels: (0..names.len() * side * side * 3)
                .map(|_| rng.next_u64() as u8)
                .collect(),
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn the_held_out_split_depends_on_names_only_and_has_the_asked_size() {
        let names: Vec<String> = (0..4000).map(|i| format!("cats/{i}.jpg")).collect();
        let held = names.iter().filter(|n| is_held_out(n, 5.0)).count();
        assert!((150..250).contains(&held), "{held} of 4000 held out at 5%");
        assert_eq!(names.iter().filter(|n| is_held_out(n, 0.0)).count(), 0);
        // The same name is held out whatever else is in the folder.
        let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let (train, held_set) = split_held_out(dataset(&refs[..400], 4), 5.0);
        let (_, fewer) = split_held_out(dataset(&refs[..200], 4), 5.0);
        assert_eq!(train.len() + held_set.len(), 400);
        assert!(fewer.names.iter().all(|n| held_set.names.contains(n)));
        // Pixels travel with their names.
        let whole = dataset(&refs[..400], 4);
        let first = &held_set.names[0];
        let at = whole.names.iter().position(|n| n == first).unwrap();
        assert_eq!(held_set.image(0), whole.image(at));
    }

    #[test]
    fn dataset_images_are_planar_on_the_generator_scale() {
        let data = Dataset {
            resolution: 1,
            pixels: vec![0, 255, 51],
            names: vec!["a".into()],
        };
        let images = dataset_images(&data, &[0]).unwrap();
        assert_eq!(images.pixels, vec![-1.0, 1.0, 51.0 / 127.5 - 1.0]);
    }
}
