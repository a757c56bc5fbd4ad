//! The page's engine: the generator from `catgan-model`, run in a Web Worker on WebGPU when the
//! browser grants it, otherwise on Burn's CPU backend compiled to wasm.
//!
//! It is built twice: without the `webgpu` feature as a small CPU-only engine, which the page
//! loads first, and with it as the WebGPU engine, which the page loads next where a hardware
//! GPU adapter is granted.
//!
//! The JavaScript side fetches the manifest and weights (it reports download progress); this
//! side checks them with the same code as the native trainer, keeps the loaded generators, and
//! turns latents into RGBA pixels. Results are read back asynchronously, as WebGPU requires.

use burn::prelude::*;
use catgan_model::Generator;
use catgan_model::format::{Manifest, ManifestEntry};
use catgan_model::latent::latent_for_seed;
use std::cell::RefCell;
use std::collections::HashMap;
use wasm_bindgen::prelude::*;

struct Engine {
    device: Device,
    backend: String,
    models: HashMap<String, (ManifestEntry, Generator)>,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Whether this build of the engine can run on WebGPU (the `webgpu` feature).
#[wasm_bindgen]
pub fn has_webgpu() -> bool {
    cfg!(feature = "webgpu")
}

#[cfg(feature = "webgpu")]
async fn gpu_device() -> Option<Device> {
    match Device::wgpu_options().init_async().await {
        Ok(device) => Some(device),
        Err(e) => {
            console_warn(&format!("WebGPU unavailable ({e}); using the CPU"));
            None
        }
    }
}

#[cfg(not(feature = "webgpu"))]
async fn gpu_device() -> Option<Device> {
    None
}

/// Starts the engine, on WebGPU if `try_gpu`, this build has WebGPU and the browser grants a
/// device, otherwise on the CPU. Returns a description of the backend in use. Loaded models are
/// dropped.
#[wasm_bindgen]
pub async fn init(try_gpu: bool) -> String {
    let mut chosen = None;
    if try_gpu {
        chosen = gpu_device()
            .await
            .map(|device| (device, "WebGPU".to_string()));
    }
    let (device, backend) = chosen.unwrap_or_else(|| (Device::flex(), "CPU (wasm)".into()));
    let description = backend.clone();
    ENGINE.with(|engine| {
        *engine.borrow_mut() = Some(Engine {
            device,
            backend,
            models: HashMap::new(),
        })
    });
    description
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(message: &str);
}

fn with_engine<T>(f: impl FnOnce(&mut Engine) -> Result<T, String>) -> Result<T, JsError> {
    ENGINE.with(|engine| match engine.borrow_mut().as_mut() {
        Some(engine) => f(engine).map_err(|e| JsError::new(&e)),
        None => Err(JsError::new("the engine is not started")),
    })
}

/// The backend in use.
#[wasm_bindgen]
pub fn backend() -> Result<String, JsError> {
    with_engine(|e| Ok(e.backend.clone()))
}

/// Parses and checks `manifest.json`; returns it re-serialised (models in page order).
#[wasm_bindgen]
pub fn check_manifest(text: &str) -> Result<String, JsError> {
    let manifest = Manifest::from_json(text).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(serde_json::to_string(&manifest).expect("manifest serialises"))
}

/// Checks `bytes` against the manifest entry `entry_json` (size, SHA-256, architecture, format
/// version) and keeps the generator under the entry's name.
#[wasm_bindgen]
pub fn load_model(entry_json: &str, bytes: &[u8]) -> Result<(), JsError> {
    let entry: ManifestEntry = serde_json::from_str(entry_json)
        .map_err(|e| JsError::new(&format!("manifest entry is not valid: {e}")))?;
    with_engine(|engine| {
        let generator = entry
            .load(bytes, &engine.device)
            .map_err(|e| e.to_string())?;
        engine.models.insert(entry.name.clone(), (entry, generator));
        Ok(())
    })
}

/// Whether the model `name` is loaded.
#[wasm_bindgen]
pub fn has_model(name: &str) -> bool {
    ENGINE.with(|e| {
        e.borrow()
            .as_ref()
            .is_some_and(|e| e.models.contains_key(name))
    })
}

/// The latent vector for `seed` (the same as `catgan sample --seed`).
#[wasm_bindgen]
pub fn latent(seed: u32, size: usize) -> Vec<f32> {
    latent_for_seed(seed as u64, size)
}

/// Generates `latents.len() / input_size` cats with model `name`; returns their RGBA pixels,
/// image after image. With `stage`, a progressive model draws them at that stage's side
/// (`4 << stage`) instead of its full resolution; other models ignore it.
#[wasm_bindgen]
pub async fn generate(
    name: String,
    latents: Vec<f32>,
    stage: Option<u32>,
) -> Result<Vec<u8>, JsError> {
    let (generator, device, input_size) = with_engine(|engine| {
        let (entry, generator) = engine
            .models
            .get(&name)
            .ok_or_else(|| format!("model '{name}' is not loaded"))?;
        Ok((generator.clone(), engine.device.clone(), entry.input_size()))
    })?;
    if latents.is_empty() || !latents.len().is_multiple_of(input_size) {
        return Err(JsError::new(&format!(
            "{} latent values are not a whole number of inputs of size {input_size}",
            latents.len()
        )));
    }
    let count = latents.len() / input_size;
    let input = Tensor::<2>::from_data(TensorData::new(latents, [count, input_size]), &device);
    let images = match (stage, generator.as_progan()) {
        (Some(stage), Some(progan)) => {
            let stage = stage as usize;
            if stage >= progan.stages() {
                return Err(JsError::new(&format!(
                    "model '{name}' has {} stages; there is no stage {stage}",
                    progan.stages()
                )));
            }
            progan.forward_stage(input, stage)
        }
        _ => generator.forward(input),
    };
    let data = images
        .into_data_async()
        .await
        .map_err(|e| JsError::new(&format!("reading the images back failed: {e:?}")))?;
    let values = data
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| JsError::new(&format!("{e:?}")))?;
    Ok(to_rgba(&values, count))
}

/// Size of the wasm linear memory in bytes (it only grows; the page watches it for leaks).
#[wasm_bindgen]
pub fn memory_bytes() -> f64 {
    #[cfg(target_family = "wasm")]
    {
        (core::arch::wasm32::memory_size(0) * 65536) as f64
    }
    #[cfg(not(target_family = "wasm"))]
    {
        0.0
    }
}

/// `[count, 3, side, side]` values in [-1, 1] to RGBA bytes.
pub fn to_rgba(values: &[f32], count: usize) -> Vec<u8> {
    let plane = values.len() / count.max(1) / 3;
    let mut out = Vec::with_capacity(count * plane * 4);
    for image in values.chunks(3 * plane) {
        for i in 0..plane {
            for c in 0..3 {
                let v = image[c * plane + i].clamp(-1.0, 1.0);
                out.push(((v + 1.0) * 127.5).round() as u8);
            }
            out.push(255);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgba_interleaves_planes_and_adds_opaque_alpha() {
        // One 1x2 image: R = [-1, 1], G = [0, 0], B = [1, -1].
        let values = [-1.0, 1.0, 0.0, 0.0, 1.0, -1.0];
        assert_eq!(
            to_rgba(&values, 1),
            vec![0, 128, 255, 255, 255, 128, 0, 255]
        );
    }
}
