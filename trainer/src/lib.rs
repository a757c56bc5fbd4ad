//! The `catgan` trainer as a library: data loading, the training loop, checkpoints, export and
//! sampling. The `catgan` binary is a thin command-line layer over it.

pub mod augment;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod device;
pub mod evaluate;
pub mod export;
pub mod grid;
pub mod growth;
pub mod heads;
pub mod logging;
pub mod loss;
pub mod nearest;
pub mod networks;
pub mod report;
pub mod spectrum;
pub mod swd;
pub mod train;
