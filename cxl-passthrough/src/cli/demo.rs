//! `cxl-passthrough demo`: the KVM demo (see docs/performance.md).

use anyhow::{Context, Result, bail};
use clap::Args;

use cxl_passthrough::demo::{DemoDevice, DemoOptions, RunOptions, run};

use super::device::DeviceOpts;

/// Options of `demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// The device (the simulator unless --device is given).
    #[command(flatten)]
    pub device: DeviceOpts,
    /// Number of simulated devices (each gets its own window).
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// Reset device 0 in the middle of the guest's work.
    #[arg(long)]
    pub reset: bool,
    /// MiB per timed bandwidth pass.
    #[arg(long, default_value_t = 8)]
    pub bandwidth_mib: u64,
    /// Timed rounds per measurement.
    #[arg(long, default_value_t = 64)]
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

/// Runs `demo`; fails (non-zero exit) when any check failed.
pub fn run_demo(args: &DemoArgs) -> Result<()> {
    let devices = if args.device.device.is_some() {
        if args.count != 1 {
            bail!("--count applies to the simulator only");
        }
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
