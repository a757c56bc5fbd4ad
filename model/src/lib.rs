//! catgan's model crate: the networks, the latent for a seed, and the weight format.
//!
//! Everything here is shared by the native trainer (`catgan`) and the browser page, so a
//! generator trained natively runs unchanged in the page. The crate does no file-system or
//! network I/O and has no training code; it compiles for `wasm32-unknown-unknown`.

pub mod blocks;
pub mod dcgan;
pub mod format;
pub mod latent;
pub mod networks;
pub mod progan;
pub mod resnet;
pub mod rng;

pub use networks::{Arch, Discriminator, Generator, ModelConfig};
pub use progan::Growth;
