//! Picks where training and sampling run: a real GPU through Burn's wgpu backend, or the CPU
//! through Burn's Flex backend.
//!
//! `auto` takes wgpu only for a hardware adapter. Software rasterisers (Mesa's llvmpipe and
//! lavapipe, SwiftShader) present themselves as Vulkan devices, but Burn's wgpu backend crashes
//! on lavapipe and would be far slower than Flex on the others, so they count as no GPU; an
//! explicit `--device wgpu` on such a machine stops with an error instead of a segfault.

use anyhow::{Result, bail};
use burn::prelude::*;
use clap::ValueEnum;

/// The user's choice of backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum DeviceChoice {
    /// wgpu on a hardware GPU if there is one, otherwise the CPU.
    #[default]
    Auto,
    /// Burn's CPU backend (Flex).
    Cpu,
    /// Burn's wgpu backend on a hardware GPU.
    Wgpu,
}

/// A chosen device and a description for logs and manifests.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The plain (inference) device.
    pub device: Device,
    /// Human-readable, e.g. "cpu (flex)" or "wgpu (NVIDIA H200, Vulkan)".
    pub description: String,
}

/// One adapter wgpu can see.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// Adapter name as the driver reports it.
    pub name: String,
    /// Graphics API.
    pub backend: String,
    /// Whether it is a hardware GPU, as opposed to a CPU rasteriser.
    pub hardware: bool,
}

/// Every adapter wgpu can see, without creating a Burn device.
pub fn adapters() -> Vec<Adapter> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .into_iter()
        .map(|adapter| {
            let info = adapter.get_info();
            Adapter {
                hardware: is_hardware(&info),
                name: info.name,
                backend: format!("{:?}", info.backend),
            }
        })
        .collect()
}

fn is_hardware(info: &wgpu::AdapterInfo) -> bool {
    let software_names = [
        "llvmpipe",
        "lavapipe",
        "swiftshader",
        "softpipe",
        "microsoft basic",
    ];
    let name = format!("{} {}", info.name, info.driver).to_lowercase();
    matches!(
        info.device_type,
        wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu
    ) && !software_names.iter().any(|s| name.contains(s))
}

/// Resolves the user's choice to a device.
pub fn choose(choice: DeviceChoice) -> Result<Chosen> {
    let cpu = || Chosen {
        device: Device::flex(),
        description: "cpu (flex)".into(),
    };
    if choice == DeviceChoice::Cpu {
        return Ok(cpu());
    }
    let all = adapters();
    let gpu = all.iter().find(|a| a.hardware);
    match (choice, gpu) {
        (_, Some(gpu)) => Ok(Chosen {
            device: Device::wgpu(DeviceKind::DefaultDevice),
            description: format!("wgpu ({}, {})", gpu.name, gpu.backend),
        }),
        (DeviceChoice::Wgpu, None) => {
            let seen = if all.is_empty() {
                "none".to_string()
            } else {
                all.iter()
                    .map(|a| format!("{} ({})", a.name, a.backend))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            bail!(
                "--device wgpu needs a hardware GPU adapter, but wgpu sees only: {seen}. \
                 Software rasterisers are not supported by Burn's wgpu backend; \
                 use --device cpu (or auto)."
            )
        }
        _ => Ok(cpu()),
    }
}
