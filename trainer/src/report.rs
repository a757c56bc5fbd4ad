//! Pictures of a training run: `losses.png` (losses and discriminator outputs against kimg),
//! `swd.png` (SWD against kimg with the real-vs-real floor) and `timeline.png` (sample grids
//! from the start to the end of the run). Input is a run folder as the trainer writes it:
//! `stats.jsonl`, one JSON object per tick, and `samples/kimg-{:07.1}.png` grids.
//!
//! Text is drawn with the Go Regular font embedded in the binary (BSD-3-Clause, see
//! `assets/fonts/LICENSE-Go-fonts.txt`), so plots need no system fonts or C libraries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::{Rgb, RgbImage, imageops::FilterType};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

/// Loss plot written by [`write_report`].
pub const LOSSES_FILE: &str = "losses.png";
/// SWD plot written by [`write_report`] when the run logged SWD.
pub const SWD_FILE: &str = "swd.png";
/// Sample timeline written by [`write_report`] when the run saved sample grids.
pub const TIMELINE_FILE: &str = "timeline.png";
/// Size of `losses.png`: two panels stacked.
pub const LOSSES_SIZE: (u32, u32) = (1200, 900);
/// Size of `swd.png`.
pub const SWD_SIZE: (u32, u32) = (1200, 500);
/// Sample grids shown in `timeline.png` (fewer if the run saved fewer).
pub const TIMELINE_GRIDS: usize = 7;
/// Height each grid is scaled to in `timeline.png`.
pub const THUMBNAIL_HEIGHT: u32 = 256;
/// Band under each grid that holds its kimg caption.
pub const CAPTION_HEIGHT: u32 = 36;
/// White space around and between grids in `timeline.png`.
pub const GAP: u32 = 8;

/// Fields the trainer writes that this report knows; anything else is listed as unknown.
pub(crate) const KNOWN_FIELDS: [&str; 23] = [
    "kimg",
    "step",
    "loss_generator",
    "loss_discriminator",
    "d_real",
    "d_fake",
    "images_per_second",
    "seconds_per_kimg",
    "memory_mib",
    "ema_beta",
    "training_seconds",
    "swd_mean",
    "swd_levels",
    "swd_floor",
    "swd_standing_statistics",
    "shared_detail",
    "shared_detail_real",
    "spectrum_gap",
    "spectrum_gap_floor",
    "d_training_images",
    "d_held_out_images",
    "stage",
    "alpha",
];

/// Colours of the discriminator's scores on training and on held-out cats.
const TRAINING_IMAGES: RGBColor = RGBColor(0, 90, 160);
const HELD_OUT_IMAGES: RGBColor = RGBColor(230, 120, 0);

static FONT: &[u8] = include_bytes!("../assets/fonts/Go-Regular.ttf");

/// What can stop a report; each variant names the file involved.
#[derive(Debug, Error)]
pub enum ReportError {
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `stats.jsonl` holds no line with a numeric `kimg`, so there is nothing to plot.
    #[error("{path} has no usable lines; each line should be a JSON object with a numeric kimg")]
    NoTicks { path: PathBuf },
    /// A sample grid is not a readable image.
    #[error("cannot decode sample grid {path}: {source}")]
    Decode {
        path: PathBuf,
        source: image::ImageError,
    },
    /// An output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The output folder could not be created.
    #[error("cannot create output folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Plotting failed (for example a value range plotters cannot draw).
    #[error("cannot draw {path}: {message}")]
    Plot { path: PathBuf, message: String },
    /// The embedded font was rejected, so no text could be drawn.
    #[error("the embedded Go Regular font could not be loaded; the binary is damaged")]
    Font,
}

/// One parsed line of `stats.jsonl`; absent or null fields are `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tick {
    /// Thousands of real images shown to the discriminator so far.
    pub kimg: f64,
    /// Generator loss.
    pub loss_generator: Option<f64>,
    /// Discriminator loss.
    pub loss_discriminator: Option<f64>,
    /// Mean discriminator output on real images.
    pub d_real: Option<f64>,
    /// Mean discriminator output on generated images.
    pub d_fake: Option<f64>,
    /// Training throughput.
    pub images_per_second: Option<f64>,
    /// SWD (x1e3, mean over levels) of generated images against held-out real ones.
    pub swd_mean: Option<f64>,
    /// SWD between two real sets: the best a generator can hope for.
    pub swd_floor: Option<f64>,
    /// Whether that SWD was measured with standing batch norm statistics, as exports are.
    pub swd_standing: bool,
    /// Mean discriminator output on training images, in inference mode, unaugmented.
    pub d_training_images: Option<f64>,
    /// The same on held-out images; far below the training images' score, D memorises.
    pub d_held_out_images: Option<f64>,
    /// Progressive-growing stage.
    pub stage: Option<u64>,
    /// Fade-in weight of the newest stage.
    pub alpha: Option<f64>,
}

/// A line, or a field of a line, that was not used, and why. Lines count from 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineNote {
    /// Line number in `stats.jsonl`, counting from 1.
    pub line: usize,
    /// What was wrong.
    pub reason: String,
}

/// Everything read from `stats.jsonl`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Usable lines, in file order.
    pub ticks: Vec<Tick>,
    /// Lines skipped whole: not JSON, not an object, or no numeric `kimg`.
    pub skipped: Vec<LineNote>,
    /// Known fields with a value of the wrong type, ignored on lines that were otherwise used.
    pub bad_fields: Vec<LineNote>,
    /// Field names this report does not know, with the first line each appeared on.
    pub unknown_fields: BTreeMap<String, usize>,
}

/// What [`write_report`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Pictures written, in the order written.
    pub written: Vec<PathBuf>,
    /// Pictures not written and why, such as a run that logged no SWD.
    pub notes: Vec<String>,
    /// The parsed stats, including skipped lines and unknown fields.
    pub stats: Stats,
}

/// Parses `stats.jsonl` text; never fails, but records every line or field it could not use.
pub fn parse_stats(text: &str) -> Stats {
    let mut stats = Stats::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let skip = |reason: String| LineNote { line, reason };
        let object = match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(object)) => object,
            Ok(_) => {
                stats.skipped.push(skip("not a JSON object".into()));
                continue;
            }
            Err(error) => {
                stats
                    .skipped
                    .push(skip(format!("not valid JSON ({error})")));
                continue;
            }
        };
        let Some(kimg) = object.get("kimg").and_then(Value::as_f64) else {
            stats.skipped.push(skip("no numeric `kimg` field".into()));
            continue;
        };

        for key in object.keys() {
            if !KNOWN_FIELDS.contains(&key.as_str()) {
                stats.unknown_fields.entry(key.clone()).or_insert(line);
            }
        }
        let mut number = |name: &str| match object.get(name) {
            None | Some(Value::Null) => None,
            Some(value) => {
                let parsed = value.as_f64();
                if parsed.is_none() {
                    let reason = format!("`{name}` is {value}, not a number; ignored");
                    stats.bad_fields.push(LineNote { line, reason });
                }
                parsed
            }
        };
        let mut tick = Tick {
            kimg,
            loss_generator: number("loss_generator"),
            loss_discriminator: number("loss_discriminator"),
            d_real: number("d_real"),
            d_fake: number("d_fake"),
            images_per_second: number("images_per_second"),
            swd_mean: number("swd_mean"),
            swd_floor: number("swd_floor"),
            swd_standing: object.get("swd_standing_statistics") == Some(&Value::Bool(true)),
            d_training_images: number("d_training_images"),
            d_held_out_images: number("d_held_out_images"),
            stage: None,
            alpha: number("alpha"),
        };
        tick.stage = match object.get("stage") {
            None | Some(Value::Null) => None,
            Some(value) => value.as_u64().or_else(|| {
                let reason = format!("`stage` is {value}, not a whole number; ignored");
                stats.bad_fields.push(LineNote { line, reason });
                None
            }),
        };
        stats.ticks.push(tick);
    }
    stats
}

/// Reads and parses a `stats.jsonl` file.
pub fn read_stats(path: &Path) -> Result<Stats, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(parse_stats(&text))
}

/// Writes the three pictures of the run in `run` into `out` (created if missing).
pub fn write_report(run: &Path, out: &Path) -> Result<Report, ReportError> {
    let stats_path = run.join("stats.jsonl");
    let stats = read_stats(&stats_path)?;
    if stats.ticks.is_empty() {
        return Err(ReportError::NoTicks { path: stats_path });
    }
    std::fs::create_dir_all(out).map_err(|source| ReportError::CreateDir {
        path: out.to_path_buf(),
        source,
    })?;
    let mut report = Report::default();

    let losses = out.join(LOSSES_FILE);
    save(&plot_losses(&stats.ticks, &losses)?, &losses)?;
    report.written.push(losses);

    let swd = out.join(SWD_FILE);
    match plot_swd(&stats.ticks, &swd)? {
        Some(picture) => {
            save(&picture, &swd)?;
            report.written.push(swd);
        }
        None => report.notes.push(format!(
            "{SWD_FILE} skipped: {} has no swd_mean values",
            stats_path.display()
        )),
    }

    let grids = sample_grids(&run.join("samples"))?;
    if grids.is_empty() {
        report.notes.push(format!(
            "{TIMELINE_FILE} skipped: no kimg-*.png grids in {}",
            run.join("samples").display()
        ));
    } else {
        let timeline = out.join(TIMELINE_FILE);
        save(&draw_timeline(&grids, TIMELINE_GRIDS)?, &timeline)?;
        report.written.push(timeline);
    }

    report.stats = stats;
    Ok(report)
}

/// Two stacked panels against kimg: both losses, then D(real) and D(fake), with D's scores on
/// training and on held-out cats where the run measured them (a gap between those two means
/// the discriminator memorises its training set). Vertical grey lines mark progressive-growing
/// stage changes.
pub fn plot_losses(ticks: &[Tick], path: &Path) -> Result<RgbImage, ReportError> {
    render(path, LOSSES_SIZE, |root| {
        let (top, bottom) = root.split_vertically(LOSSES_SIZE.1 / 2);
        let losses = [
            (
                "generator loss",
                ticks_of(ticks, |t| t.loss_generator),
                BLUE,
            ),
            (
                "discriminator loss",
                ticks_of(ticks, |t| t.loss_discriminator),
                RED,
            ),
        ];
        panel(&top, ticks, "Losses", "loss", &losses)?;
        let outputs = [
            (
                "D(real)",
                ticks_of(ticks, |t| t.d_real),
                RGBColor(0, 150, 0),
            ),
            ("D(fake)", ticks_of(ticks, |t| t.d_fake), MAGENTA),
            (
                "D(training cats), inference",
                ticks_of(ticks, |t| t.d_training_images),
                TRAINING_IMAGES,
            ),
            (
                "D(held-out cats), inference",
                ticks_of(ticks, |t| t.d_held_out_images),
                HELD_OUT_IMAGES,
            ),
        ];
        let outputs: Vec<_> = outputs.into_iter().filter(|s| !s.1.is_empty()).collect();
        panel(
            &bottom,
            ticks,
            "Discriminator outputs",
            "mean D output",
            &outputs,
        )
    })
}

/// SWD mean against kimg with the latest real-vs-real floor as a dashed line; `None` when no
/// tick has an SWD value. Values measured with standing batch norm statistics (as exports are)
/// and with the moving average's own running statistics (runs from before that) are separate
/// series, so that a change of method is not read as progress.
pub fn plot_swd(ticks: &[Tick], path: &Path) -> Result<Option<RgbImage>, ReportError> {
    let points = ticks_of(ticks, |t| t.swd_mean);
    if points.is_empty() {
        return Ok(None);
    }
    let running = ticks_of(ticks, |t| t.swd_mean.filter(|_| !t.swd_standing));
    let standing = ticks_of(ticks, |t| t.swd_mean.filter(|_| t.swd_standing));
    let series = [
        (
            running,
            BLUE,
            "generated vs real (averaged running statistics)",
        ),
        (standing, RED, "generated vs real (standing statistics)"),
    ];
    let both = series.iter().all(|(points, _, _)| !points.is_empty());
    let floor = ticks.iter().rev().find_map(|t| t.swd_floor);
    render(path, SWD_SIZE, |root| {
        let values = points.iter().map(|p| p.1).chain(floor);
        let (low, high) = padded_range(values.chain([0.0]));
        let (first, last) = padded_range(ticks.iter().map(|t| t.kimg));
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Sliced Wasserstein distance (x1e3, mean over levels)",
                text(26),
            )
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(first..last, low..high)?;
        chart
            .configure_mesh()
            .x_desc("kimg")
            .y_desc("SWD")
            .y_label_formatter(&axis_label)
            .label_style(text(16))
            .axis_desc_style(text(18))
            .draw()?;
        for (points, colour, label) in &series {
            if points.is_empty() {
                continue;
            }
            let style = colour.stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))?
                .label(if both { label } else { "generated vs real" })
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], style));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?;
        }
        if let Some(floor) = floor {
            let ends = [(first, floor), (last, floor)];
            let dashes = DashedLineSeries::new(ends, 8, 6, BLACK.into());
            chart
                .draw_series(dashes)?
                .label(format!("real vs real floor ({floor:.2})"))
                .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], BLACK));
        }
        // Upper right: SWD falls as training goes on, so the newest points lie low on the right,
        // where a legend in the middle would cover them.
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(text(16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
    .map(Some)
}

/// Sample grids in `samples`, sorted by the kimg in their names (`kimg-00012.5.png`). Files
/// with other names are ignored; a missing folder means no grids.
pub fn sample_grids(samples: &Path) -> Result<Vec<(f64, PathBuf)>, ReportError> {
    let entries = match std::fs::read_dir(samples) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ReportError::Read {
                path: samples.to_path_buf(),
                source,
            });
        }
    };
    let mut grids: Vec<(f64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name();
            let kimg = name.to_str()?.strip_prefix("kimg-")?.strip_suffix(".png")?;
            Some((kimg.parse::<f64>().ok()?, entry.path()))
        })
        .collect();
    grids.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(grids)
}

/// Indices of up to `count` values of a sorted list, nearest to evenly spread targets,
/// always including the first and the last.
pub fn pick_evenly(kimgs: &[f64], count: usize) -> Vec<usize> {
    if kimgs.len() <= count {
        return (0..kimgs.len()).collect();
    }
    let (first, last) = (kimgs[0], kimgs[kimgs.len() - 1]);
    let mut picked: Vec<usize> = (0..count)
        .map(|i| {
            let target = first + (last - first) * i as f64 / (count - 1).max(1) as f64;
            let nearest = kimgs.partition_point(|k| *k < target).min(kimgs.len() - 1);
            // The value just below the target may be closer than the one at or above it.
            if nearest > 0 && target - kimgs[nearest - 1] < kimgs[nearest] - target {
                nearest - 1
            } else {
                nearest
            }
        })
        .collect();
    picked.dedup();
    picked
}

/// Up to `count` grids, evenly spread over the run, scaled to one height and laid side by
/// side with a kimg caption under each.
pub fn draw_timeline(grids: &[(f64, PathBuf)], count: usize) -> Result<RgbImage, ReportError> {
    let kimgs: Vec<f64> = grids.iter().map(|g| g.0).collect();
    let mut thumbnails = Vec::new();
    for index in pick_evenly(&kimgs, count) {
        let (kimg, path) = &grids[index];
        let grid = image::open(path)
            .map_err(|source| ReportError::Decode {
                path: path.clone(),
                source,
            })?
            .to_rgb8();
        let width = (grid.width() * THUMBNAIL_HEIGHT)
            .div_ceil(grid.height().max(1))
            .max(1);
        let thumbnail =
            image::imageops::resize(&grid, width, THUMBNAIL_HEIGHT, FilterType::Triangle);
        thumbnails.push((*kimg, thumbnail));
    }

    let width = GAP + thumbnails.iter().map(|t| t.1.width() + GAP).sum::<u32>();
    let height = GAP + THUMBNAIL_HEIGHT + CAPTION_HEIGHT;
    let mut sheet = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let mut x = GAP;
    let mut captions = Vec::new();
    for (kimg, thumbnail) in &thumbnails {
        image::imageops::replace(&mut sheet, thumbnail, i64::from(x), i64::from(GAP));
        captions.push((format!("kimg {kimg:.1}"), x + thumbnail.width() / 2));
        x += thumbnail.width() + GAP;
    }

    let path = Path::new(TIMELINE_FILE);
    register_font()?;
    let (w, h) = sheet.dimensions();
    let mut buffer = sheet.into_raw();
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        let style = text(20).pos(Pos::new(HPos::Center, VPos::Center));
        for (caption, centre) in &captions {
            let at = (
                *centre as i32,
                (GAP + THUMBNAIL_HEIGHT + CAPTION_HEIGHT / 2) as i32,
            );
            root.draw_text(caption, &style, at)
                .map_err(|e| plot_error(path, e))?;
        }
        root.present().map_err(|e| plot_error(path, e))?;
    }
    Ok(RgbImage::from_raw(w, h, buffer).expect("buffer holds w * h RGB pixels"))
}

type Points = Vec<(f64, f64)>;
/// Any plotters failure; turned into [`ReportError::Plot`] with the file name by `render`.
type DrawError = Box<dyn std::error::Error>;

/// (kimg, value) for the ticks that have a finite value.
fn ticks_of(ticks: &[Tick], value: impl Fn(&Tick) -> Option<f64>) -> Points {
    ticks
        .iter()
        .filter_map(|t| value(t).filter(|v| v.is_finite()).map(|v| (t.kimg, v)))
        .collect()
}

fn text(size: u32) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

/// One chart of several named series against kimg, with stage changes marked.
fn panel(
    area: &DrawingArea<BitMapBackend, Shift>,
    ticks: &[Tick],
    title: &str,
    y_label: &str,
    series: &[(&str, Points, RGBColor)],
) -> Result<(), DrawError> {
    let (first, last) = padded_range(ticks.iter().map(|t| t.kimg));
    let (low, high) = padded_range(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(title, text(26))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(first..last, low..high)?;
    chart
        .configure_mesh()
        .x_desc("kimg")
        .y_desc(y_label)
        .y_label_formatter(&axis_label)
        .label_style(text(16))
        .axis_desc_style(text(18))
        .draw()?;

    let changes = ticks
        .windows(2)
        .filter(|w| w[0].stage != w[1].stage && w[1].stage.is_some());
    for change in changes {
        let kimg = change[1].kimg;
        let grey = RGBColor(150, 150, 150);
        chart.draw_series(DashedLineSeries::new(
            [(kimg, low), (kimg, high)],
            6,
            6,
            grey.into(),
        ))?;
    }
    for (name, points, colour) in series {
        let colour = *colour;
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(2),
            ))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font(text(16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

/// Tick label with two decimals that never reads "-0.00" for a tick at zero.
fn axis_label(value: &f64) -> String {
    let value = if value.abs() < 5e-3 { 0.0 } else { *value };
    format!("{value:.2}")
}

/// Range of the finite values with 5% head room, widened when all values are equal (or
/// absent) so that plotters always gets a non-empty axis.
fn padded_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((high - low) * 0.05).max(0.5 * f64::EPSILON.sqrt() * low.abs().max(1.0));
    (low - pad, high + pad)
}

/// Draws into a white RGB buffer of `size` and returns it as an image; `path` names the
/// file in errors.
fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<(), DrawError>,
) -> Result<RgbImage, ReportError> {
    register_font()?;
    let mut buffer = vec![255u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| plot_error(path, e))?;
        draw(&root).map_err(|e| plot_error(path, e))?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    Ok(RgbImage::from_raw(size.0, size.1, buffer).expect("buffer holds w * h RGB pixels"))
}

fn plot_error(path: &Path, error: impl std::fmt::Display) -> ReportError {
    ReportError::Plot {
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}

fn save(picture: &RgbImage, path: &Path) -> Result<(), ReportError> {
    let write = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let bytes = crate::grid::png_bytes(picture).map_err(|e| write(std::io::Error::other(e)))?;
    std::fs::write(path, bytes).map_err(write)
}

/// Hands the embedded font to plotters once per process, under the family name plotters
/// asks for by default.
fn register_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok { Ok(()) } else { Err(ReportError::Font) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn colours(picture: &RgbImage) -> usize {
        let mut seen: Vec<[u8; 3]> = picture.pixels().map(|p| p.0).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len()
    }

    fn dark_pixels(picture: &RgbImage, rows: std::ops::Range<u32>) -> usize {
        rows.flat_map(|y| (0..picture.width()).map(move |x| (x, y)))
            .filter(|&(x, y)| picture.get_pixel(x, y).0.iter().all(|c| *c < 80))
            .count()
    }

    /// A run folder like the trainer's: six ticks (the last three with SWD), a malformed
    /// line, a line without kimg, an unknown field and three tiny sample grids.
    fn make_run(with_swd: bool) -> tempfile::TempDir {
        let run = tempfile::tempdir().unwrap();
        let mut lines = Vec::new();
        for i in 0..6 {
            let kimg = 4.0 * (i + 1) as f64;
            let mut tick = serde_json::json!({
                "step": i * 60, "kimg": kimg, "loss_generator": 3.0 - 0.3 * i as f64,
                "loss_discriminator": 0.5 + 0.1 * i as f64, "d_real": 1.0,
                "d_fake": -1.0 + 0.2 * i as f64,
                "images_per_second": 30.0, "stage": i / 3, "alpha": 0.5, "gpu_temperature": 60,
            });
            if with_swd && i >= 3 {
                tick["swd_mean"] = (40.0 - 5.0 * i as f64).into();
                tick["swd_floor"] = 7.0.into();
            }
            if with_swd && i == 5 {
                tick["swd_standing_statistics"] = true.into();
            }
            lines.push(tick.to_string());
            if i == 2 {
                lines.push("{\"kimg\": 12.5, \"loss_generator\": ".into());
                lines.push("{\"loss_generator\": 1.0}".into());
            }
        }
        std::fs::write(run.path().join("stats.jsonl"), lines.join("\n")).unwrap();
        let samples = run.path().join("samples");
        std::fs::create_dir(&samples).unwrap();
        for (kimg, shade) in [(4.0, 40u8), (12.0, 120), (24.0, 220)] {
            let grid = RgbImage::from_fn(20, 20, |x, _| Rgb([shade, (x * 12) as u8, 255 - shade]));
            grid.save(samples.join(format!("kimg-{kimg:07.1}.png")))
                .unwrap();
        }
        std::fs::write(samples.join("notes.txt"), "not a grid").unwrap();
        run
    }

    #[test]
    fn report_writes_three_pictures_of_the_expected_size() {
        let run = make_run(true);
        let out = run.path().join("report");
        let report = write_report(run.path(), &out).unwrap();
        assert_eq!(report.written.len(), 3);
        assert!(report.notes.is_empty(), "{:?}", report.notes);

        let losses = image::open(out.join(LOSSES_FILE)).unwrap().to_rgb8();
        assert_eq!(losses.dimensions(), LOSSES_SIZE);
        assert!(colours(&losses) > 20, "losses plot looks blank");
        let swd = image::open(out.join(SWD_FILE)).unwrap().to_rgb8();
        assert_eq!(swd.dimensions(), SWD_SIZE);
        assert!(colours(&swd) > 20, "SWD plot looks blank");

        // Three 20x20 grids scaled to 256 high, side by side with gaps, captions below.
        let timeline = image::open(out.join(TIMELINE_FILE)).unwrap().to_rgb8();
        let width = GAP + 3 * (THUMBNAIL_HEIGHT + GAP);
        assert_eq!(
            timeline.dimensions(),
            (width, GAP + THUMBNAIL_HEIGHT + CAPTION_HEIGHT)
        );
        assert_eq!(timeline.get_pixel(GAP + 5, GAP + 5).0[0], 40);
        assert_eq!(timeline.get_pixel(width - GAP - 5, GAP + 5).0[0], 220);
        let caption_rows = GAP + THUMBNAIL_HEIGHT..timeline.height();
        assert!(
            dark_pixels(&timeline, caption_rows) > 100,
            "captions missing"
        );
    }

    #[test]
    fn swd_measured_two_ways_is_drawn_as_two_series() {
        let ticks = |standing_from: usize| -> Vec<Tick> {
            (0..6)
                .map(|i| Tick {
                    kimg: 4.0 * (i + 1) as f64,
                    swd_mean: Some(40.0 - 5.0 * i as f64),
                    swd_floor: Some(7.0),
                    swd_standing: i >= standing_from,
                    ..Tick::default()
                })
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let count = |picture: &RgbImage, colour: RGBColor| {
            let RGBColor(r, g, b) = colour;
            picture.pixels().filter(|p| p.0 == [r, g, b]).count()
        };
        let mixed = plot_swd(&ticks(3), &dir.path().join("mixed.png"))
            .unwrap()
            .unwrap();
        assert!(count(&mixed, BLUE) > 50, "no averaged-statistics series");
        assert!(count(&mixed, RED) > 50, "no standing-statistics series");
        let one_way = plot_swd(&ticks(6), &dir.path().join("one.png"))
            .unwrap()
            .unwrap();
        assert!(count(&one_way, BLUE) > 50);
        assert_eq!(count(&one_way, RED), 0);
    }

    #[test]
    fn discriminator_scores_on_training_and_held_out_cats_are_drawn_where_logged() {
        let ticks = |logged: bool| -> Vec<Tick> {
            (0..6)
                .map(|i| Tick {
                    kimg: 4.0 * (i + 1) as f64,
                    loss_generator: Some(2.0),
                    loss_discriminator: Some(0.5),
                    d_real: Some(1.0),
                    d_fake: Some(-1.0),
                    d_training_images: logged.then_some(2.0 + 0.2 * i as f64),
                    d_held_out_images: logged.then_some(2.0 - 0.2 * i as f64),
                    ..Tick::default()
                })
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let count = |picture: &RgbImage, colour: RGBColor| {
            let RGBColor(r, g, b) = colour;
            picture.pixels().filter(|p| p.0 == [r, g, b]).count()
        };
        let logged = plot_losses(&ticks(true), &dir.path().join("a.png")).unwrap();
        assert!(
            count(&logged, TRAINING_IMAGES) > 50,
            "no training-cats series"
        );
        assert!(count(&logged, HELD_OUT_IMAGES) > 50, "no held-out series");
        let older = plot_losses(&ticks(false), &dir.path().join("b.png")).unwrap();
        assert_eq!(count(&older, TRAINING_IMAGES), 0);
        assert_eq!(
            count(&older, HELD_OUT_IMAGES),
            0,
            "legend of an absent series"
        );
    }

    #[test]
    fn malformed_lines_are_skipped_and_counted() {
        let run = make_run(true);
        let stats = read_stats(&run.path().join("stats.jsonl")).unwrap();
        assert_eq!(stats.ticks.len(), 6);
        let skipped: Vec<usize> = stats.skipped.iter().map(|s| s.line).collect();
        assert_eq!(skipped, vec![4, 5]);
        assert!(stats.skipped[0].reason.contains("not valid JSON"));
        assert!(stats.skipped[1].reason.contains("kimg"));
        assert_eq!(stats.unknown_fields.get("gpu_temperature"), Some(&1));
        assert_eq!(stats.unknown_fields.len(), 1);
        assert_eq!(stats.ticks[5].swd_mean, Some(15.0));
        assert!(stats.ticks[5].swd_standing && !stats.ticks[4].swd_standing);
        assert_eq!(stats.ticks[4].stage, Some(1));
    }

    #[test]
    fn wrong_types_and_nulls_become_missing_values() {
        let stats = parse_stats(
            "{\"kimg\": 1, \"loss_generator\": \"high\", \"d_real\": null, \"stage\": 1.5}\n\
             \n[1, 2]\n{\"kimg\": \"2\"}",
        );
        assert_eq!(stats.ticks.len(), 1);
        assert_eq!(stats.ticks[0].loss_generator, None);
        assert_eq!(stats.ticks[0].d_real, None);
        assert_eq!(stats.ticks[0].stage, None);
        let bad: Vec<usize> = stats.bad_fields.iter().map(|b| b.line).collect();
        assert_eq!(bad, vec![1, 1]);
        let skipped: Vec<(usize, &str)> = stats
            .skipped
            .iter()
            .map(|s| (s.line, s.reason.as_str()))
            .collect();
        assert_eq!(
            skipped,
            vec![(3, "not a JSON object"), (4, "no numeric `kimg` field")]
        );
    }

    #[test]
    fn run_without_swd_skips_that_plot_with_a_note() {
        let run = make_run(false);
        let out = run.path().join("report");
        let report = write_report(run.path(), &out).unwrap();
        assert_eq!(report.written.len(), 2);
        assert!(!out.join(SWD_FILE).exists());
        assert!(
            report.notes[0].contains("no swd_mean"),
            "{:?}",
            report.notes
        );
    }

    #[test]
    fn missing_stats_file_is_an_error_naming_it() {
        let run = tempfile::tempdir().unwrap();
        let error = write_report(run.path(), &run.path().join("out")).unwrap_err();
        assert!(matches!(error, ReportError::Read { .. }));
        assert!(error.to_string().contains("stats.jsonl"), "{error}");
        std::fs::write(run.path().join("stats.jsonl"), "garbage\n").unwrap();
        let error = write_report(run.path(), &run.path().join("out")).unwrap_err();
        assert!(matches!(error, ReportError::NoTicks { .. }), "{error}");
    }

    #[test]
    fn corrupt_grid_is_an_error_naming_it() {
        let run = make_run(true);
        let bad = run.path().join("samples").join("kimg-00030.0.png");
        std::fs::write(&bad, "not a png").unwrap();
        let error = write_report(run.path(), &run.path().join("out")).unwrap_err();
        assert!(error.to_string().contains("kimg-00030.0.png"), "{error}");
    }

    #[test]
    fn grids_are_picked_evenly_with_first_and_last() {
        let kimgs: Vec<f64> = (0..=100).map(f64::from).collect();
        assert_eq!(pick_evenly(&kimgs, 5), vec![0, 25, 50, 75, 100]);
        assert_eq!(pick_evenly(&kimgs[..3], 7), vec![0, 1, 2]);
        let uneven = [0.0, 1.0, 2.0, 3.0, 50.0, 99.0, 100.0];
        assert_eq!(pick_evenly(&uneven, 3), vec![0, 4, 6]);
    }

    #[test]
    fn sample_names_parse_to_kimg() {
        let run = make_run(true);
        let grids = sample_grids(&run.path().join("samples")).unwrap();
        let kimgs: Vec<f64> = grids.iter().map(|g| g.0).collect();
        assert_eq!(kimgs, vec![4.0, 12.0, 24.0]);
        assert!(sample_grids(&run.path().join("absent")).unwrap().is_empty());
    }

    #[test]
    fn padded_range_never_collapses() {
        assert_eq!(padded_range([].into_iter()), (0.0, 1.0));
        let (low, high) = padded_range([2.0, 2.0].into_iter());
        assert!(low < 2.0 && high > 2.0);
        assert_eq!(
            padded_range([0.0, 10.0, f64::NAN].into_iter()),
            (-0.5, 10.5)
        );
    }
}
