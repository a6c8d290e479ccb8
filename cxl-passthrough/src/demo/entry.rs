//! The demo's entry point for the CLI: devices in, report out, a progress line per phase
//! on stderr.

#[cfg(test)]
use std::sync::Arc;

use super::report::DemoReport;
use super::scenario::{DemoDevice, DemoError, DemoOptions, run_devices};
#[cfg(test)]
use cxl_passthrough::backend::sim::{SimConfig, SimDevice};
#[cfg(test)]
use cxl_passthrough::errors::Chain;

/// What `cxl-passthrough demo` runs.
pub struct RunOptions {
    /// The devices (each becomes `devN` in the report).
    pub devices: Vec<DemoDevice>,
    /// Scenario knobs.
    pub scenario: DemoOptions,
    /// Print a progress line per phase on stderr.
    pub progress: bool,
}

/// Runs the demo. A failed check is reported in [`DemoReport::passed`], not as an error;
/// errors mean the demo could not run (no /dev/kvm, a device that cannot be set up).
pub fn run(opts: RunOptions) -> Result<DemoReport, DemoError> {
    let show = opts.progress;
    run_devices(opts.devices, &opts.scenario, &mut |line| {
        if show {
            eprintln!("demo: {line}");
        }
    })
}

/// `count` simulated devices configured as `cfg`, named `dev0`, `dev1`, ...
#[cfg(test)]
pub fn sim_devices(count: usize, cfg: &SimConfig) -> Result<Vec<DemoDevice>, DemoError> {
    (0..count)
        .map(|i| {
            let sim = SimDevice::new(cfg.clone())
                .map_err(|e| DemoError::Open(format!("simulated device {i}: {}", Chain(&e))))?;
            Ok(DemoDevice {
                name: format!("dev{i}"),
                backend: Arc::new(sim),
            })
        })
        .collect()
}
