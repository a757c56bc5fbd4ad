//! `tracing` output that does not tear the progress bar: while a bar is showing, each log line
//! is printed above it.

use indicatif::ProgressBar;
use std::io::Write;
use std::sync::Mutex;

static ACTIVE_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Sets (or clears) the bar that log lines must print around.
pub fn set_bar(bar: Option<ProgressBar>) {
    *ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()) = bar;
}

/// Standard error, routed around the active progress bar.
pub struct BarAwareStderr;

impl Write for BarAwareStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let bar = ACTIVE_BAR.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(bar) if !bar.is_hidden() => bar.suspend(|| std::io::stderr().write_all(buf))?,
            _ => std::io::stderr().write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs the global subscriber: `RUST_LOG` if set, otherwise catgan at `info`.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("catgan=info,warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(|| BarAwareStderr)
        .try_init();
}
