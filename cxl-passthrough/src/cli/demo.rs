//! `cxl-passthrough demo`: the KVM demo (see docs/performance.md).

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::demo::memory::{MEMINFO, demo_memory_need, mem_available};
use crate::demo::{DemoDevice, DemoOptions, RunOptions, run, unsupported_arch};

use super::MAX_COUNT;
use super::device::DeviceOpts;

/// Largest `--bandwidth-mib`: the two RAM buffers of the bandwidth measurement must fit
/// the guest RAM below the demo's 32-bit MMIO area.
pub const MAX_BANDWIDTH_MIB: u64 = 1024;

/// Options of `demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// The device (the simulator unless --device is given).
    #[command(flatten)]
    pub device: DeviceOpts,
    /// Number of simulated devices (each gets its own window).
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_COUNT)))]
    pub count: u16,
    /// Reset device 0 in the middle of the guest's work.
    #[arg(long)]
    pub reset: bool,
    /// MiB per timed bandwidth pass.
    #[arg(long, default_value_t = 8,
          value_parser = clap::value_parser!(u64).range(1..=MAX_BANDWIDTH_MIB))]
    pub bandwidth_mib: u64,
    /// Timed rounds per measurement.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub passes: u32,
    /// Trapped loads per timed round.
    #[arg(long, default_value_t = 200)]
    pub trap_loads: u32,
    /// Bandwidth goal, window / RAM (reported as met or missed).
    #[arg(long, default_value_t = 0.98)]
    pub bandwidth_goal: f64,
    /// Fail the run when the bandwidth goal is missed (use on a quiet host).
    #[arg(long)]
    pub strict_bandwidth: bool,
    /// Print the report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
}

/// `bytes` for messages: TiB, GiB or MiB with one decimal.
fn human(bytes: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB")];
    let (div, unit) = UNITS
        .into_iter()
        .find(|(d, _)| bytes >= *d)
        .unwrap_or((1 << 20, "MiB"));
    format!("{:.1} {unit}", bytes as f64 / div as f64)
}

/// Refuses a run that needs more host memory than is available: the simulated devices'
/// memory (every page of it is written) and the guest RAM.
fn check_memory(args: &DemoArgs) -> Result<()> {
    let per_device = if args.device.device.is_some() {
        0
    } else {
        args.device
            .sim_config()
            .memory_bytes()
            .context("configuring the simulated device")?
    };
    let devices = per_device.saturating_mul(u64::from(args.count));
    let bandwidth = args.bandwidth_mib << 20;
    let need = demo_memory_need(devices, bandwidth);
    let available = mem_available(Path::new(MEMINFO)).context("checking the available memory")?;
    if need > available {
        bail!(
            "the demo needs {} of memory ({} x {} of simulated device memory, {} of guest RAM) \
             but the host has {} available (MemAvailable in {MEMINFO}); use a smaller --count, \
             --dpa-size or --bandwidth-mib",
            human(need),
            args.count,
            human(per_device),
            human(need.saturating_sub(devices)),
            human(available),
        );
    }
    Ok(())
}

/// Runs `demo`; fails (non-zero exit) when any check failed, and at once on any host but
/// x86-64 (the demo needs an x86-64 KVM host).
pub fn run_demo(args: &DemoArgs) -> Result<()> {
    if let Some(why) = unsupported_arch() {
        bail!("{why}");
    }
    if args.device.device.is_some() && args.count != 1 {
        bail!("--count applies to the simulator only");
    }
    check_memory(args)?;
    let devices = if args.device.device.is_some() {
        let (backend, name) = args.device.open()?;
        eprintln!("demo: using {name}");
        vec![DemoDevice {
            name: "dev0".into(),
            backend,
        }]
    } else {
        (0..args.count)
            .map(|i| {
                let (backend, _) = args
                    .device
                    .open()
                    .with_context(|| format!("simulated device {i}"))?;
                Ok(DemoDevice {
                    name: format!("dev{i}"),
                    backend,
                })
            })
            .collect::<Result<Vec<_>>>()?
    };
    let report = run(RunOptions {
        devices,
        scenario: DemoOptions {
            bandwidth_bytes: args.bandwidth_mib << 20,
            passes: args.passes,
            trap_accesses: args.trap_loads,
            reset_midway: args.reset,
            bandwidth_goal: args.bandwidth_goal,
            strict_bandwidth: args.strict_bandwidth,
            page_size: super::probe::page_size(),
            // The simulator's BAR areas are scratch memory; a real device's are registers.
            write_bar: args.device.device.is_none(),
        },
        progress: true,
    })
    .context("demo")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    let failed = report.failures().count();
    if failed > 0 {
        bail!("{failed} check(s) failed");
    }
    Ok(())
}
