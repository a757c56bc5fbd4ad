//! Reads a folder of images into memory, ready for training.
//!
//! Every file under the folder is tried (by content, not by extension); each one that cannot be
//! used is reported with its reason and skipped. Usable images are turned to RGB, centre-cropped
//! to a square, resized to the model's resolution with a Lanczos filter and kept as `u8`, so the
//! 8k 64x64 cats take 100 MB. Batches are converted to `[-1, 1]` floats, flipped at random, when
//! they are drawn.

use burn::prelude::*;
use catgan_model::rng::SplitMix64;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Why the data could not be used at all.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The folder is missing or unreadable.
    #[error("cannot read data folder {path}: {reason}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The reason.
        reason: String,
    },
    /// Fewer usable images than one batch.
    #[error(
        "data folder {path} has {usable} usable image(s) ({skipped} file(s) skipped), but a batch \
         needs {needed}; add images or lower --batch-size"
    )]
    TooFew {
        /// The folder.
        path: PathBuf,
        /// Usable images found.
        usable: usize,
        /// Files skipped.
        skipped: usize,
        /// Images needed.
        needed: usize,
    },
}

/// A file that was not used, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why it was skipped.
    pub reason: String,
}

/// Options for reading a folder.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Side of the square images produced.
    pub resolution: usize,
    /// Refuse images with more pixels than this before decoding them (decompression bombs).
    pub max_pixels: u64,
    /// Show a progress bar.
    pub progress: bool,
}

impl LoadOptions {
    /// Defaults for `resolution`: at most 100 megapixels per image, no progress bar.
    pub fn new(resolution: usize) -> Self {
        Self {
            resolution,
            max_pixels: 100_000_000,
            progress: false,
        }
    }
}

/// Images in memory, `[count, resolution, resolution, 3]` bytes.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Side in pixels.
    pub resolution: usize,
    /// Pixels, image after image, rows of RGB.
    pub pixels: Vec<u8>,
    /// Source file of each image, relative to the folder.
    pub names: Vec<String>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    fn image_bytes(&self) -> usize {
        self.resolution * self.resolution * 3
    }

    /// Pixels of image `index`.
    pub fn image(&self, index: usize) -> &[u8] {
        let size = self.image_bytes();
        &self.pixels[index * size..(index + 1) * size]
    }

    /// A `[n, 3, resolution, resolution]` batch in `[-1, 1]`, each image mirrored where `flips`
    /// says so.
    pub fn batch(&self, indices: &[usize], flips: &[bool], device: &Device) -> Tensor<4> {
        let side = self.resolution;
        let plane = side * side;
        let mut values = vec![0f32; indices.len() * 3 * plane];
        for (slot, (&index, &flip)) in indices.iter().zip(flips).enumerate() {
            let image = self.image(index);
            let out = &mut values[slot * 3 * plane..(slot + 1) * 3 * plane];
            for y in 0..side {
                for x in 0..side {
                    let source_x = if flip { side - 1 - x } else { x };
                    let pixel = &image[(y * side + source_x) * 3..][..3];
                    for (c, &value) in pixel.iter().enumerate() {
                        out[c * plane + y * side + x] = value as f32 / 127.5 - 1.0;
                    }
                }
            }
        }
        Tensor::from_data(
            TensorData::new(values, [indices.len(), 3, side, side]),
            device,
        )
    }
}

/// Names that operating systems and tools leave in photo folders.
fn is_litter(name: &str) -> bool {
    let lower = name.to_lowercase();
    name.starts_with('.') || lower == "thumbs.db" || lower == "desktop.ini"
}

/// Reads every usable image under `folder`, recursively.
pub fn load_folder(
    folder: &Path,
    options: &LoadOptions,
) -> Result<(Dataset, Vec<Skipped>), DataError> {
    let metadata = std::fs::metadata(folder).map_err(|e| DataError::Folder {
        path: folder.to_path_buf(),
        reason: e.to_string(),
    })?;
    if !metadata.is_dir() {
        return Err(DataError::Folder {
            path: folder.to_path_buf(),
            reason: "not a folder".into(),
        });
    }

    let mut files = Vec::new();
    let mut skipped = Vec::new();
    let walker = walkdir::WalkDir::new(folder)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !is_litter(&e.file_name().to_string_lossy()));
    for entry in walker {
        match entry {
            Ok(e) if e.file_type().is_file() => files.push(e.into_path()),
            Ok(_) => {}
            Err(e) => skipped.push(Skipped {
                path: e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| folder.into()),
                reason: if e.loop_ancestor().is_some() {
                    "symbolic link loop".into()
                } else {
                    e.to_string()
                },
            }),
        }
    }

    let bar = if options.progress {
        ProgressBar::new(files.len() as u64).with_style(
            ProgressStyle::with_template("decoding {bar:30} {pos}/{len} images, {eta} left")
                .expect("valid template"),
        )
    } else {
        ProgressBar::hidden()
    };
    let results: Vec<Result<RgbImage, String>> = files
        .par_iter()
        .map(|path| {
            let result = prepare(path, options);
            bar.inc(1);
            result
        })
        .collect();
    bar.finish_and_clear();

    let mut dataset = Dataset {
        resolution: options.resolution,
        pixels: Vec::with_capacity(files.len() * options.resolution.pow(2) * 3),
        names: Vec::new(),
    };
    for (path, result) in files.into_iter().zip(results) {
        match result {
            Ok(image) => {
                dataset.pixels.extend_from_slice(image.as_raw());
                let name = path.strip_prefix(folder).unwrap_or(&path);
                dataset.names.push(name.to_string_lossy().into_owned());
            }
            Err(reason) => skipped.push(Skipped { path, reason }),
        }
    }
    Ok((dataset, skipped))
}

/// Checks that a dataset holds at least one batch.
pub fn require_batch(
    folder: &Path,
    dataset: &Dataset,
    skipped: usize,
    batch: usize,
) -> Result<(), DataError> {
    if dataset.len() < batch.max(1) {
        return Err(DataError::TooFew {
            path: folder.to_path_buf(),
            usable: dataset.len(),
            skipped,
            needed: batch.max(1),
        });
    }
    Ok(())
}

/// Decodes one file and turns it into a square RGB image of the target size.
fn prepare(path: &Path, options: &LoadOptions) -> Result<RgbImage, String> {
    let image = decode(path, options)?;
    let (width, height) = (image.width(), image.height());
    if width == 0 || height == 0 {
        return Err("image has no pixels".into());
    }
    let side = width.min(height);
    let square = image.crop_imm((width - side) / 2, (height - side) / 2, side, side);
    let rgb = flatten_alpha(square);
    let target = options.resolution as u32;
    Ok(if side == target {
        rgb
    } else {
        image::imageops::resize(&rgb, target, target, FilterType::Lanczos3)
    })
}

fn decode(path: &Path, options: &LoadOptions) -> Result<DynamicImage, String> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err("empty file (0 bytes)".into());
    }
    let reader = ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| format!("cannot read: {e}"))?;
    let Some(format) = reader.format() else {
        return Err("not an image in a format catgan reads (JPEG or PNG)".into());
    };
    let mut reader = reader;
    let mut limits = Limits::default();
    limits.max_alloc = Some(options.max_pixels.saturating_mul(8));
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("{format:?} image cannot be read: {e}"))?;
    let (width, height) = decoder.dimensions();
    let pixels = width as u64 * height as u64;
    if pixels > options.max_pixels {
        return Err(format!(
            "{width}x{height} is over the limit of {} pixels (possible decompression bomb; \
             raise --max-pixels to accept it)",
            options.max_pixels
        ));
    }
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder)
        .map_err(|e| format!("{format:?} image is damaged: {e}"))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(image)
}

/// RGB pixels; transparent parts are composited over mid grey, the colour of an all-zero
/// (normalised) image, so they carry no colour the model would learn.
fn flatten_alpha(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba32f();
    let mut out = RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in out.pixels_mut().zip(rgba.pixels()) {
        let alpha = src[3].clamp(0.0, 1.0);
        for c in 0..3 {
            let v = src[c].clamp(0.0, 1.0) * alpha + 0.5 * (1.0 - alpha);
            dst[c] = (v * 255.0).round() as u8;
        }
    }
    out
}

/// Which images make up each training batch: a fresh shuffle of the whole set for every epoch,
/// each from its own stream of the run's seed, so batch `k` depends on nothing but `(seed, k)`.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    seed: u64,
    count: usize,
    epoch: Option<(u64, Vec<usize>)>,
}

/// Stream number of per-epoch shuffles.
const STREAM_SHUFFLE: u64 = 1;
/// Stream number of per-step flips.
const STREAM_FLIP: u64 = 2;

impl BatchPlan {
    /// A plan over `count` images.
    pub fn new(seed: u64, count: usize) -> Self {
        Self {
            seed,
            count,
            epoch: None,
        }
    }

    fn order(&mut self, epoch: u64) -> &[usize] {
        if self.epoch.as_ref().map(|(e, _)| *e) != Some(epoch) {
            let mut order: Vec<usize> = (0..self.count).collect();
            SplitMix64::derived(self.seed, STREAM_SHUFFLE, epoch).shuffle(&mut order);
            self.epoch = Some((epoch, order));
        }
        &self.epoch.as_ref().expect("just set").1
    }

    /// Image indices and horizontal flips of batch `step` of size `batch`.
    pub fn batch(&mut self, step: u64, batch: usize) -> (Vec<usize>, Vec<bool>) {
        let count = self.count as u64;
        let mut indices = Vec::with_capacity(batch);
        for position in step * batch as u64..(step + 1) * batch as u64 {
            let epoch = position / count;
            indices.push(self.order(epoch)[(position % count) as usize]);
        }
        let mut rng = SplitMix64::derived(self.seed, STREAM_FLIP, step);
        let flips = (0..batch).map(|_| rng.coin()).collect();
        (indices, flips)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_png(path: &Path, width: u32, height: u32, colour: [u8; 3]) {
        let image = RgbImage::from_fn(width, height, |x, _| {
            if x < width / 2 {
                image::Rgb(colour)
            } else {
                image::Rgb([0, 0, 0])
            }
        });
        image.save(path).unwrap();
    }

    #[test]
    fn loader_crops_resizes_and_reports_skips() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("a.png"), 32, 32, [255, 0, 0]);
        std::fs::create_dir(dir.path().join("nested")).unwrap();
        // Wide image: the centre crop keeps the middle 16x16 square.
        write_png(&dir.path().join("nested/wide.png"), 48, 16, [0, 255, 0]);
        std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
        std::fs::write(
            dir.path().join("broken.jpg"),
            [0xFF, 0xD8, 0xFF, 0xE0, 0, 0],
        )
        .unwrap();
        std::fs::write(dir.path().join(".DS_Store"), "litter").unwrap();

        let (data, skipped) = load_folder(dir.path(), &LoadOptions::new(8)).unwrap();
        assert_eq!(data.names, vec!["a.png", "nested/wide.png"]);
        assert_eq!(data.pixels.len(), 2 * 8 * 8 * 3);
        let mut reasons: Vec<_> = skipped
            .iter()
            .map(|s| s.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        reasons.sort();
        assert_eq!(reasons, vec!["broken.jpg", "notes.txt"]);

        // a.png: left half red, right half black, after resizing 32 -> 8.
        let a = data.image(0);
        assert_eq!(&a[0..3], &[255, 0, 0]);
        assert_eq!(&a[7 * 3..8 * 3], &[0, 0, 0]);
    }

    /// A folder as collected from the internet: every file either loads or is skipped with a
    /// reason that names the problem, and nothing panics.
    #[test]
    fn a_messy_folder_loads_or_skips_each_file_with_a_reason() {
        use image::{GrayImage, ImageBuffer, Rgb, Rgba, RgbaImage};
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        // Loads: grayscale, 16-bit, transparent, a JPEG named .png, tiny and very wide images,
        // a nested folder and a name that is not valid UTF-8.
        GrayImage::from_pixel(8, 8, image::Luma([200]))
            .save(at("gray.png"))
            .unwrap();
        ImageBuffer::<Rgb<u16>, Vec<u16>>::from_pixel(8, 8, Rgb([65535, 0, 0]))
            .save(at("deep.png"))
            .unwrap();
        RgbaImage::from_pixel(8, 8, Rgba([255, 0, 0, 0]))
            .save(at("clear.png"))
            .unwrap();
        RgbImage::from_pixel(8, 8, Rgb([0, 0, 255]))
            .save_with_format(at("liar.png"), image::ImageFormat::Jpeg)
            .unwrap();
        RgbImage::from_pixel(1, 1, Rgb([9, 9, 9]))
            .save(at("dot.png"))
            .unwrap();
        RgbImage::from_pixel(400, 2, Rgb([7, 7, 7]))
            .save(at("strip.png"))
            .unwrap();
        std::fs::create_dir_all(at("deeper/still")).unwrap();
        write_png(&at("deeper/still/cat.png"), 8, 8, [1, 2, 3]);
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let name = std::ffi::OsStr::from_bytes(b"caf\xe9.png");
            write_png(&dir.path().join(name), 8, 8, [4, 5, 6]);
        }
        // Skipped with a reason: empty, truncated, corrupt, unsupported, too large.
        std::fs::write(at("empty.jpg"), b"").unwrap();
        let png = std::fs::read(at("deeper/still/cat.png")).unwrap();
        std::fs::write(at("half.png"), &png[..png.len() / 2]).unwrap();
        std::fs::write(at("noise.jpg"), [0x42u8; 300]).unwrap();
        std::fs::write(at("old.bmp"), b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0\x28\0").unwrap();
        write_png(&at("huge.png"), 80, 80, [1, 1, 1]);
        // Litter, ignored without a reason: resource forks, thumbnails, hidden folders.
        std::fs::write(at("._gray.png"), b"\0\x05\x16\x07").unwrap();
        std::fs::write(at("Thumbs.db"), b"x").unwrap();
        std::fs::create_dir(at(".cache")).unwrap();
        write_png(&at(".cache/thumb.png"), 8, 8, [0, 0, 0]);
        // A symbolic link loop.
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path(), at("deeper/loop")).unwrap();

        let options = LoadOptions {
            max_pixels: 4096,
            ..LoadOptions::new(8)
        };
        let (data, skipped) = load_folder(dir.path(), &options).unwrap();
        let mut names = data.names.clone();
        names.sort();
        let mut expected = vec![
            "clear.png",
            "deep.png",
            "deeper/still/cat.png",
            "dot.png",
            "gray.png",
            "liar.png",
            "strip.png",
        ];
        if cfg!(unix) {
            expected.insert(0, "caf\u{fffd}.png");
        }
        assert_eq!(names, expected);
        let pixel = |name: &str| {
            let i = data.names.iter().position(|n| n == name).unwrap();
            data.image(i)[..3].to_vec()
        };
        assert_eq!(pixel("gray.png"), vec![200, 200, 200]);
        assert_eq!(pixel("deep.png"), vec![255, 0, 0]);
        // Fully transparent red is the neutral grey of an all-zero normalised image.
        assert_eq!(pixel("clear.png"), vec![128, 128, 128]);
        assert_eq!(pixel("dot.png"), vec![9, 9, 9]);

        let reason = |file: &str| {
            skipped
                .iter()
                .find(|s| s.path.file_name().is_some_and(|n| n == file))
                .map(|s| s.reason.clone())
                .unwrap_or_else(|| panic!("{file} was not reported: {skipped:?}"))
        };
        assert!(
            reason("empty.jpg").contains("empty file"),
            "{}",
            reason("empty.jpg")
        );
        assert!(reason("half.png").contains("Png"), "{}", reason("half.png"));
        assert!(
            reason("noise.jpg").contains("cannot be read"),
            "{}",
            reason("noise.jpg")
        );
        assert!(reason("old.bmp").contains("Bmp"), "{}", reason("old.bmp"));
        assert!(
            reason("huge.png").contains("over the limit"),
            "{}",
            reason("huge.png")
        );
        if cfg!(unix) {
            assert!(reason("loop").contains("loop"), "{}", reason("loop"));
        }
        assert_eq!(skipped.len(), if cfg!(unix) { 6 } else { 5 }, "{skipped:?}");
    }

    #[test]
    fn batches_are_normalised_and_flipped() {
        let dataset = Dataset {
            resolution: 2,
            pixels: vec![0, 0, 0, 255, 255, 255, 0, 0, 0, 255, 255, 255],
            names: vec!["x".into()],
        };
        let device = Device::flex();
        let plain = dataset.batch(&[0], &[false], &device).into_data();
        let plain = plain.try_to_vec::<f32>().unwrap();
        assert_eq!(&plain[0..4], &[-1.0, 1.0, -1.0, 1.0]);
        let flipped = dataset.batch(&[0], &[true], &device).into_data();
        assert_eq!(
            &flipped.try_to_vec::<f32>().unwrap()[0..4],
            &[1.0, -1.0, 1.0, -1.0]
        );
    }

    #[test]
    fn batch_plan_covers_each_epoch_once_and_is_reproducible() {
        let mut plan = BatchPlan::new(5, 10);
        let mut seen: Vec<usize> = (0..5).flat_map(|s| plan.batch(s, 2).0).collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let again = BatchPlan::new(5, 10).batch(7, 4);
        assert_eq!(plan.batch(7, 4), again);
    }

    /// Encodes `pixels` (`channels` bytes per pixel) as a JPEG with jpeg-encoder, which can
    /// write the colour models cameras and print workflows leave behind.
    fn write_jpeg(
        path: &Path,
        size: [u16; 2],
        pixels: &[u8],
        colour: jpeg_encoder::ColorType,
        configure: impl FnOnce(&mut jpeg_encoder::Encoder<std::fs::File>),
    ) {
        let mut encoder = jpeg_encoder::Encoder::new(std::fs::File::create(path).unwrap(), 95);
        configure(&mut encoder);
        encoder.encode(pixels, size[0], size[1], colour).unwrap();
    }

    /// A little-endian TIFF block holding one tag: Orientation (0x0112) = `value`.
    fn exif_orientation(value: u16) -> Vec<u8> {
        let mut tiff = b"II*\0".to_vec();
        tiff.extend(8u32.to_le_bytes()); // first IFD right after the header
        tiff.extend(1u16.to_le_bytes()); // one entry
        tiff.extend(0x0112u16.to_le_bytes());
        tiff.extend(3u16.to_le_bytes()); // SHORT
        tiff.extend(1u32.to_le_bytes()); // one value
        tiff.extend(value.to_le_bytes());
        tiff.extend([0, 0]); // padding of the 4-byte value field
        tiff.extend(0u32.to_le_bytes()); // no next IFD
        tiff
    }

    #[test]
    fn camera_print_and_web_variants_decode_to_the_right_colours() {
        use jpeg_encoder::ColorType;
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name);
        // Pure red in CMYK (no cyan, full magenta and yellow, no black), as print workflows
        // save it, once as plain CMYK (Adobe's inverted convention) and once as YCCK.
        let cmyk_red: Vec<u8> = [0u8, 255, 255, 0].repeat(16 * 16);
        write_jpeg(
            &at("cmyk.jpg"),
            [16, 16],
            &cmyk_red,
            ColorType::Cmyk,
            |_| {},
        );
        write_jpeg(
            &at("ycck.jpg"),
            [16, 16],
            &cmyk_red,
            ColorType::CmykAsYcck,
            |_| {},
        );
        // A progressive JPEG of green.
        let green: Vec<u8> = [0u8, 200, 0].repeat(16 * 16);
        write_jpeg(
            &at("progressive.jpg"),
            [16, 16],
            &green,
            ColorType::Rgb,
            |e| e.set_progressive(true),
        );
        // A 32x16 photo, left half red and right half blue, that the camera says to show
        // rotated 90 degrees clockwise (EXIF orientation 6): upright it is 16x32, red on top.
        let sideways: Vec<u8> = (0..16 * 32)
            .flat_map(|i| {
                if i % 32 < 16 {
                    [255u8, 0, 0]
                } else {
                    [0, 0, 255]
                }
            })
            .collect();
        write_jpeg(
            &at("rotated.jpg"),
            [32, 16],
            &sideways,
            ColorType::Rgb,
            |e| e.add_exif_metadata(&exif_orientation(6)).unwrap(),
        );
        // A palette PNG whose second entry is half-transparent white.
        let file = std::fs::File::create(at("palette.png")).unwrap();
        let mut png = png::Encoder::new(std::io::BufWriter::new(file), 16, 16);
        png.set_color(png::ColorType::Indexed);
        png.set_depth(png::BitDepth::Eight);
        png.set_palette(vec![10, 20, 30, 255, 255, 255]);
        png.set_trns(vec![255, 128]);
        let mut writer = png.write_header().unwrap();
        let indices: Vec<u8> = (0..256).map(|i| u8::from(i % 16 >= 8)).collect();
        writer.write_image_data(&indices).unwrap();
        writer.finish().unwrap();

        let (data, skipped) = load_folder(dir.path(), &LoadOptions::new(16)).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        let pixel = |name: &str, x: usize, y: usize| {
            let i = data.names.iter().position(|n| n == name).unwrap();
            let at = (y * 16 + x) * 3;
            let p = &data.image(i)[at..at + 3];
            [p[0] as i32, p[1] as i32, p[2] as i32]
        };
        let near = |got: [i32; 3], want: [i32; 3], name: &str| {
            let off = (0..3).map(|c| (got[c] - want[c]).abs()).max().unwrap();
            assert!(off <= 24, "{name}: got {got:?}, want about {want:?}");
        };
        // Rotated: upright and centre-cropped, red above and blue below (unrotated, it would be
        // red on the left and blue on the right). Palette: half-transparent white over the
        // neutral grey (128) is about 191.
        for (name, [x, y], want, what) in [
            ("cmyk.jpg", [8, 8], [255, 0, 0], "CMYK JPEG"),
            ("ycck.jpg", [8, 8], [255, 0, 0], "YCCK JPEG"),
            ("progressive.jpg", [8, 8], [0, 200, 0], "progressive JPEG"),
            ("rotated.jpg", [2, 1], [255, 0, 0], "EXIF-rotated top left"),
            (
                "rotated.jpg",
                [2, 14],
                [0, 0, 255],
                "EXIF-rotated bottom left",
            ),
            (
                "palette.png",
                [2, 2],
                [10, 20, 30],
                "palette PNG, opaque entry",
            ),
            (
                "palette.png",
                [13, 2],
                [191, 191, 191],
                "palette PNG, translucent entry",
            ),
        ] {
            near(pixel(name, x, y), want, what);
        }
    }

    #[test]
    fn too_few_images_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let (data, skipped) = load_folder(dir.path(), &LoadOptions::new(8)).unwrap();
        let err = require_batch(dir.path(), &data, skipped.len(), 4).unwrap_err();
        assert!(err.to_string().contains("0 usable image"), "{err}");
        let missing = load_folder(&dir.path().join("nope"), &LoadOptions::new(8)).unwrap_err();
        assert!(
            missing.to_string().contains("cannot read data folder"),
            "{missing}"
        );
    }
}

#[cfg(test)]
mod real_data {
    use super::*;

    /// The shared cat faces, where this checkout has them beside it.
    fn shared_cats() -> Option<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/cats64");
        if dir.is_dir() {
            Some(dir)
        } else {
            eprintln!(
                "SKIPPED: {} is missing (real-cat tests need ../shared/data)",
                dir.display()
            );
            None
        }
    }

    #[test]
    fn every_shared_cat_loads_at_full_size() {
        let Some(dir) = shared_cats() else { return };
        let (data, skipped) = load_folder(&dir, &LoadOptions::new(64)).unwrap();
        assert!(
            skipped.is_empty(),
            "skipped: {:?}",
            &skipped[..skipped.len().min(3)]
        );
        assert_eq!(data.len(), 8372);
        assert_eq!(data.pixels.len(), 8372 * 64 * 64 * 3);
        // Real photos: neither black nor saturated on average.
        let mean = data.pixels.iter().map(|&p| p as f64).sum::<f64>() / data.pixels.len() as f64;
        assert!((60.0..200.0).contains(&mean), "mean pixel {mean}");
    }

    #[test]
    fn shared_cats_downscale_to_other_resolutions() {
        let Some(dir) = shared_cats() else { return };
        let (data, _) = load_folder(&dir, &LoadOptions::new(16)).unwrap();
        assert_eq!(data.pixels.len(), data.len() * 16 * 16 * 3);
    }
}
