//! The shipped weight format and the manifest that lists models.
//!
//! A model is two things in `assets/`: its weights, a Burn record (burnpack) of the EMA
//! generator's parameters stored as f16 or f32, and its entry in `manifest.json`, which says how
//! to rebuild the network ([`ModelConfig`]) and how to check the weights (byte size and
//! SHA-256). Loading checks everything it can before touching the network, and every failure
//! says which model and what is wrong.

use crate::networks::{Arch, Generator, ModelConfig};
use burn::module::{Module, ModuleMapper, Param};
use burn::prelude::*;
use burn::store::{DTypePolicy, ModuleRecord};
use burn::tensor::{Bytes, DType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Version of the weight format and manifest layout. Bump it when either changes
/// incompatibly; loaders refuse other versions.
pub const FORMAT_VERSION: u32 = 1;

/// How the weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 8-bit weights: every tensor of two or more dimensions (convolution and linear weights)
    /// as signed bytes with one f32 scale per slice along its first axis (symmetric: the
    /// slice's largest magnitude maps to 127); vectors (biases, batch-norm parameters and
    /// statistics) as f16. A quarter of the f32 download; outputs within the entry's stated
    /// error.
    Int8,
    /// Half precision: half the download, outputs within the entry's stated tolerance.
    F16,
    /// Full precision.
    F32,
}

/// Burnpack metadata key marking an 8-bit file, and its value for the scheme above.
const QUANTIZATION_KEY: &str = "catgan.quantization";
const QUANTIZATION_INT8_ROWS: &str = "int8-symmetric-per-first-axis-slice";
/// Suffix of the tensor holding a quantized tensor's scales.
const SCALE_SUFFIX: &str = ":scales";

/// `assets/manifest.json`: every shipped model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the file.
    pub format_version: u32,
    /// One entry per model, in the order the page lists them.
    pub models: Vec<ManifestEntry>,
}

/// One shipped model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Unique name, used on the command line and in share links.
    pub name: String,
    /// Architecture; must agree with `config`.
    pub arch: Arch,
    /// Image side in pixels; must agree with `config`.
    pub resolution: usize,
    /// Latent length; must agree with `config`.
    pub latent_size: usize,
    /// Noise values each generator input carries after its latent (see
    /// [`ModelConfig::input_size`]); must agree with `config`. Absent (0) for generators
    /// without noise inputs, as in manifests written before they existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub noise_size: usize,
    /// [`FORMAT_VERSION`] the weights were written with.
    pub format_version: u32,
    /// How to rebuild the network.
    pub config: ModelConfig,
    /// Weights file, relative to the manifest.
    pub file: String,
    /// Size of the weights file in bytes.
    pub bytes: u64,
    /// SHA-256 of the weights file, lower-case hex.
    pub sha256: String,
    /// Storage precision of the weights.
    pub precision: Precision,
    /// Largest absolute difference, over a fixed set of latents, between images from the stored
    /// weights and from the f32 weights they were made from (pixel values in [-1, 1]).
    pub max_abs_error: f32,
    /// Thousands of real images the discriminator saw while training.
    pub kimg: f64,
    /// Wall-clock training time in seconds, summed over resumed sessions.
    pub training_seconds: f64,
    /// Where it trained, e.g. "cpu (flex)".
    pub device: String,
    /// The command that trained it.
    pub command: String,
    /// Whether batch norm's running statistics were measured on these weights' own outputs
    /// ("standing statistics") rather than averaged during training; false in manifests written
    /// before exports did this, and meaningless for generators without batch norm.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub standing_statistics: bool,
}

/// What can go wrong loading a model.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FormatError {
    /// The manifest could not be parsed.
    #[error("manifest is not valid: {0}")]
    Manifest(String),
    /// No entry of that name.
    #[error("no model named '{name}' in the manifest (available: {available})")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The names present.
        available: String,
    },
    /// The entry disagrees with itself or with this build.
    #[error("model '{name}': {problems}")]
    Entry {
        /// Model name.
        name: String,
        /// Every problem found, separated by "; ".
        problems: String,
    },
    /// The weights file is not what the entry describes.
    #[error("weights of '{name}' ({file}): {problem}")]
    Weights {
        /// Model name.
        name: String,
        /// Weights file.
        file: String,
        /// What is wrong.
        problem: String,
    },
}

impl Manifest {
    /// Parses and checks the manifest layout version.
    pub fn from_json(text: &str) -> Result<Self, FormatError> {
        let manifest: Manifest =
            serde_json::from_str(text).map_err(|e| FormatError::Manifest(e.to_string()))?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(FormatError::Manifest(format!(
                "format version {} (this build reads version {FORMAT_VERSION})",
                manifest.format_version
            )));
        }
        Ok(manifest)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("manifest serialises");
        text.push('\n');
        text
    }

    /// The entry called `name`.
    pub fn entry(&self, name: &str) -> Result<&ManifestEntry, FormatError> {
        self.models
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| FormatError::UnknownModel {
                name: name.to_string(),
                available: self
                    .models
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Adds `entry`, replacing any entry of the same name in place.
    pub fn upsert(&mut self, entry: ManifestEntry) {
        match self.models.iter_mut().find(|m| m.name == entry.name) {
            Some(slot) => *slot = entry,
            None => self.models.push(entry),
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl ManifestEntry {
    /// Length of one generator input: the latent, then its noise values.
    pub fn input_size(&self) -> usize {
        self.latent_size + self.noise_size
    }

    /// Checks that the entry agrees with itself and with this build.
    pub fn check(&self) -> Result<(), FormatError> {
        let mut problems = Vec::new();
        if self.format_version != FORMAT_VERSION {
            problems.push(format!(
                "format version {} (this build reads version {FORMAT_VERSION})",
                self.format_version
            ));
        }
        if self.arch != self.config.arch() {
            problems.push(format!(
                "arch is '{}' but its config is for '{}'",
                self.arch,
                self.config.arch()
            ));
        }
        if self.resolution != self.config.resolution() {
            problems.push(format!(
                "resolution is {} but its config says {}",
                self.resolution,
                self.config.resolution()
            ));
        }
        if self.latent_size != self.config.latent_size() {
            problems.push(format!(
                "latent size is {} but its config says {}",
                self.latent_size,
                self.config.latent_size()
            ));
        }
        if self.noise_size != self.config.noise_size() {
            problems.push(format!(
                "noise size is {} but its config says {}",
                self.noise_size,
                self.config.noise_size()
            ));
        }
        if let Err(e) = self.config.validate() {
            problems.push(format!("config: {e}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(FormatError::Entry {
                name: self.name.clone(),
                problems: problems.join("; "),
            })
        }
    }

    fn weights_error(&self, problem: String) -> FormatError {
        FormatError::Weights {
            name: self.name.clone(),
            file: self.file.clone(),
            problem,
        }
    }

    /// Checks downloaded or read weights against the entry's size and SHA-256.
    pub fn check_weights(&self, bytes: &[u8]) -> Result<(), FormatError> {
        if looks_like_html(bytes) {
            return Err(self.weights_error(
                "got an HTML page instead of weights (is the file missing on the server?)".into(),
            ));
        }
        if bytes.len() as u64 != self.bytes {
            return Err(self.weights_error(format!(
                "{} bytes, expected {} (truncated or replaced download?)",
                bytes.len(),
                self.bytes
            )));
        }
        let digest = sha256_hex(bytes);
        if digest != self.sha256 {
            return Err(self.weights_error(format!(
                "SHA-256 {digest} does not match the manifest's {}",
                self.sha256
            )));
        }
        Ok(())
    }

    /// Checks the entry and the weights, then builds the generator on `device`.
    pub fn load(&self, bytes: &[u8], device: &Device) -> Result<Generator, FormatError> {
        self.check()?;
        self.check_weights(bytes)?;
        decode_generator(&self.config, bytes, device).map_err(|e| self.weights_error(e))
    }
}

fn looks_like_html(bytes: &[u8]) -> bool {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let head = &bytes[start..bytes.len().min(start + 15)];
    head.starts_with(b"<")
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Casts every float tensor of a module (parameters and batch-norm statistics).
struct CastFloats(DType);

impl ModuleMapper for CastFloats {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let dtype = self.0;
        param.map(|t| t.cast(dtype))
    }
}

/// A copy of `generator` that shares nothing with it.
///
/// `Module::clone` shares batch-norm running statistics between the copies, so a copy that will
/// be changed is rebuilt from the config and filled from a record instead.
pub fn detached_copy(config: &ModelConfig, generator: &Generator, device: &Device) -> Generator {
    config
        .init_generator(device)
        .load_record(generator.clone().into_record())
}

/// Serialises a generator's weights at `precision`.
pub fn encode_generator(
    config: &ModelConfig,
    generator: &Generator,
    precision: Precision,
    device: &Device,
) -> Result<Vec<u8>, String> {
    let dtype = match precision {
        Precision::F16 => DType::F16,
        Precision::F32 | Precision::Int8 => DType::F32,
    };
    let copy = detached_copy(config, generator, device).map(&mut CastFloats(dtype));
    let bytes = copy.into_record().into_bytes().map_err(|e| e.to_string())?;
    match precision {
        Precision::Int8 => quantize(bytes).map_err(|e| e.to_string()),
        _ => Ok(bytes.to_vec()),
    }
}

fn f32_values(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn f32_bytes(values: &[f32]) -> Bytes {
    Bytes::from_bytes_vec(values.iter().flat_map(|v| v.to_le_bytes()).collect())
}

/// Rewrites an f32 burnpack as an 8-bit one ([`Precision::Int8`]).
fn quantize(bytes: Bytes) -> Result<Vec<u8>, burn_pack::Error> {
    let mut out = Vec::new();
    for tensor in burn_pack::Reader::from_bytes(bytes)?.into_tensors()? {
        let (name, dtype, shape, id, data) = tensor.into_parts()?;
        debug_assert_eq!(dtype, DType::F32);
        let values = f32_values(&data);
        if shape.num_dims() < 2 || values.is_empty() {
            let half = TensorData::new(values, shape.clone()).convert_dtype(DType::F16);
            let (data, _, _) = half.into_parts();
            out.push(burn_pack::Tensor::new(name, DType::F16, shape, id, data));
            continue;
        }
        let rows = shape[0];
        let mut scales = Vec::with_capacity(rows);
        let mut quantized = Vec::with_capacity(values.len());
        for row in values.chunks(values.len() / rows) {
            let largest = row.iter().fold(0f32, |m, v| m.max(v.abs()));
            let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
            scales.push(scale);
            quantized.extend(
                row.iter()
                    .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8 as u8),
            );
        }
        let scale_name = format!("{name}{SCALE_SUFFIX}");
        let quantized = Bytes::from_bytes_vec(quantized);
        out.push(burn_pack::Tensor::new(
            name,
            DType::I8,
            shape,
            id,
            quantized,
        ));
        out.push(burn_pack::Tensor::new(
            scale_name,
            DType::F32,
            [rows],
            None,
            f32_bytes(&scales),
        ));
    }
    let writer =
        burn_pack::Writer::new(out).with_metadata(QUANTIZATION_KEY, QUANTIZATION_INT8_ROWS);
    Ok(writer.into_bytes()?.to_vec())
}

/// Turns an 8-bit burnpack back into one of f32 weights and f16 vectors; returns other files
/// unchanged.
fn dequantize(bytes: Bytes) -> Result<Bytes, String> {
    let reader = burn_pack::Reader::from_bytes(bytes.clone()).map_err(|e| e.to_string())?;
    match reader.metadata().get(QUANTIZATION_KEY).map(String::as_str) {
        None => return Ok(bytes),
        Some(QUANTIZATION_INT8_ROWS) => {}
        Some(other) => return Err(format!("unknown quantization '{other}'")),
    }
    let mut tensors = std::collections::BTreeMap::new();
    for tensor in reader.into_tensors().map_err(|e| e.to_string())? {
        let (name, dtype, shape, id, data) = tensor.into_parts().map_err(|e| e.to_string())?;
        tensors.insert(name, (dtype, shape, id, data));
    }
    let mut out = Vec::new();
    for (name, (dtype, shape, id, data)) in &tensors {
        if name.ends_with(SCALE_SUFFIX) {
            continue;
        }
        if *dtype != DType::I8 {
            out.push(burn_pack::Tensor::new(
                name.clone(),
                *dtype,
                shape.clone(),
                *id,
                data.clone(),
            ));
            continue;
        }
        let scales = match tensors.get(&format!("{name}{SCALE_SUFFIX}")) {
            Some((DType::F32, scale_shape, _, scales))
                if scale_shape.num_dims() == 1 && scale_shape[0] == shape[0] =>
            {
                f32_values(scales)
            }
            _ => {
                return Err(format!(
                    "{name}: 8-bit tensor without its {} scales",
                    shape[0]
                ));
            }
        };
        let row = data.len() / scales.len().max(1);
        let values: Vec<f32> = data
            .iter()
            .enumerate()
            .map(|(i, &q)| q as i8 as f32 * scales[i / row])
            .collect();
        out.push(burn_pack::Tensor::new(
            name.clone(),
            DType::F32,
            shape.clone(),
            *id,
            f32_bytes(&values),
        ));
    }
    burn_pack::Writer::new(out)
        .into_bytes()
        .map_err(|e| e.to_string())
}

/// The record in serialised weights (int8 dequantised), to load into a module of the
/// serialised one's config; floats are cast to the module's precision.
pub fn weights_record(bytes: &[u8]) -> Result<ModuleRecord, String> {
    let bytes = dequantize(Bytes::from_bytes_vec(bytes.to_vec()))
        .map_err(|e| format!("not a readable weights file: {e}"))?;
    Ok(ModuleRecord::from_bytes(bytes)
        .map_err(|e| format!("not a readable weights file: {e}"))?
        .with_dtype_policy(DTypePolicy::CastToModule))
}

/// Rebuilds a generator from `config` and fills it with serialised weights (cast to f32).
pub fn decode_generator(
    config: &ModelConfig,
    bytes: &[u8],
    device: &Device,
) -> Result<Generator, String> {
    config
        .init_generator(device)
        .try_load_record(weights_record(bytes)?)
        .map(|g| g.valid())
        .map_err(|e| format!("does not fit a {} generator: {e}", config.arch()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dcgan::DcganConfig;
    use crate::latent::latents_for_seeds;

    fn config() -> ModelConfig {
        ModelConfig::Dcgan(
            DcganConfig::new()
                .with_latent_size(16)
                .with_resolution(16)
                .with_generator_width(8),
        )
    }

    fn images(generator: &Generator, device: &Device) -> Vec<f32> {
        generator
            .forward(latents_for_seeds(0, 4, 16, device))
            .into_data()
            .try_to_vec()
            .unwrap()
    }

    fn worst_difference(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    }

    fn entry(config: ModelConfig, bytes: &[u8]) -> ManifestEntry {
        ManifestEntry {
            name: "tiny".into(),
            arch: config.arch(),
            resolution: config.resolution(),
            latent_size: config.latent_size(),
            noise_size: config.noise_size(),
            format_version: FORMAT_VERSION,
            config,
            file: "tiny.bpk".into(),
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
            precision: Precision::F32,
            max_abs_error: 0.0,
            kimg: 0.0,
            training_seconds: 0.0,
            device: "cpu".into(),
            command: "test".into(),
            standing_statistics: false,
        }
    }

    #[test]
    fn f32_round_trip_is_exact_and_f16_is_close() {
        let device = Device::flex();
        let config = config();
        let generator = config.init_generator(&device).valid();
        let reference = images(&generator, &device);

        let bytes = encode_generator(&config, &generator, Precision::F32, &device).unwrap();
        let loaded = decode_generator(&config, &bytes, &device).unwrap();
        assert_eq!(images(&loaded, &device), reference);

        let half = encode_generator(&config, &generator, Precision::F16, &device).unwrap();
        assert!(
            half.len() < bytes.len() * 6 / 10,
            "{} vs {}",
            half.len(),
            bytes.len()
        );
        let loaded = decode_generator(&config, &half, &device).unwrap();
        let worst = worst_difference(&images(&loaded, &device), &reference);
        assert!(worst > 0.0 && worst < 1e-2, "f16 error {worst}");
        // Encoding did not touch the original's batch-norm statistics.
        assert_eq!(images(&generator, &device), reference);
    }

    #[test]
    fn int8_weights_are_a_quarter_of_f32_and_close() {
        let device = Device::flex();
        let config = config();
        let generator = config.init_generator(&device).valid();
        let reference = images(&generator, &device);
        let full = encode_generator(&config, &generator, Precision::F32, &device).unwrap();
        let bytes = encode_generator(&config, &generator, Precision::Int8, &device).unwrap();
        // A quarter, plus the header, scales and f16 vectors, which weigh a lot in a model this
        // small (the shipped DCGAN's int8 file is 25.1% of its f32 one).
        assert!(
            bytes.len() < full.len() * 4 / 10,
            "{} vs {}",
            bytes.len(),
            full.len()
        );
        let loaded = decode_generator(&config, &bytes, &device).unwrap();
        let worst = worst_difference(&images(&loaded, &device), &reference);
        assert!(worst > 0.0 && worst < 0.05, "int8 error {worst}");
    }

    #[test]
    fn quantization_keeps_each_slice_within_half_a_step() {
        // Two slices of very different magnitude: each gets its own scale.
        let values = [0.5f32, -1.0, 0.25, 0.003, -0.002, 0.001];
        let tensor =
            burn_pack::Tensor::new("w".into(), DType::F32, [2, 3], None, f32_bytes(&values));
        let packed = burn_pack::Writer::new(vec![tensor]).into_bytes().unwrap();
        let quantized = quantize(packed).unwrap();
        let restored = dequantize(Bytes::from_bytes_vec(quantized)).unwrap();
        let tensors = burn_pack::Reader::from_bytes(restored)
            .unwrap()
            .into_tensors()
            .unwrap();
        let (name, dtype, shape, _, data) =
            tensors.into_iter().next().unwrap().into_parts().unwrap();
        assert_eq!(
            (name.as_str(), dtype, shape.dims::<2>()),
            ("w", DType::F32, [2, 3])
        );
        let restored = f32_values(&data);
        for (i, (a, b)) in restored.iter().zip(&values).enumerate() {
            let step = if i < 3 { 1.0 / 127.0 } else { 0.003 / 127.0 };
            assert!((a - b).abs() <= step / 2.0 + 1e-9, "{i}: {a} vs {b}");
        }
        // The largest magnitude of each slice is exact.
        assert_eq!((restored[1], restored[3]), (-1.0, 0.003));
    }

    #[test]
    fn weights_of_another_shape_are_refused_with_the_reason() {
        let device = Device::flex();
        let small = config();
        let generator = small.init_generator(&device);
        let bytes = encode_generator(&small, &generator, Precision::F32, &device).unwrap();
        let wider = ModelConfig::Dcgan(
            DcganConfig::new()
                .with_latent_size(16)
                .with_resolution(16)
                .with_generator_width(12),
        );
        let err = entry(wider, &bytes).load(&bytes, &device).unwrap_err();
        assert!(matches!(err, FormatError::Weights { .. }), "{err}");
        assert!(err.to_string().contains("does not fit"), "{err}");
    }

    #[test]
    fn truncated_html_and_tampered_weights_are_refused() {
        let device = Device::flex();
        let config = config();
        let generator = config.init_generator(&device);
        let bytes = encode_generator(&config, &generator, Precision::F32, &device).unwrap();
        let entry = entry(config, &bytes);
        assert!(entry.load(&bytes, &device).is_ok());

        let err = entry.check_weights(&bytes[..bytes.len() / 2]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = entry.check_weights(b"\n<!DOCTYPE html><html>").unwrap_err();
        assert!(err.to_string().contains("HTML"), "{err}");
        let mut tampered = bytes.clone();
        *tampered.last_mut().unwrap() ^= 1;
        let err = entry.check_weights(&tampered).unwrap_err();
        assert!(err.to_string().contains("SHA-256"), "{err}");
    }

    #[test]
    fn inconsistent_entries_name_every_problem() {
        let mut e = entry(config(), b"x");
        e.resolution = 64;
        e.latent_size = 100;
        e.format_version = FORMAT_VERSION + 1;
        let message = e.check().unwrap_err().to_string();
        assert!(message.contains("resolution is 64"), "{message}");
        assert!(message.contains("latent size is 100"), "{message}");
        assert!(message.contains("format version"), "{message}");
    }

    #[test]
    fn manifest_round_trips_and_upserts_by_name() {
        let mut manifest = Manifest {
            format_version: FORMAT_VERSION,
            models: vec![],
        };
        manifest.upsert(entry(config(), b"a"));
        manifest.upsert(entry(config(), b"bb"));
        assert_eq!(manifest.models.len(), 1);
        assert_eq!(manifest.models[0].bytes, 2);
        let parsed = Manifest::from_json(&manifest.to_json()).unwrap();
        assert_eq!(parsed, manifest);
        let err = parsed.entry("nope").unwrap_err().to_string();
        assert!(err.contains("available: tiny"), "{err}");
    }
}
