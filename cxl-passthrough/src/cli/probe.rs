//! `cxl-passthrough probe`: what a VMM would build for a device, with the boot-time HDM
//! lock performed and read back.

use anyhow::{Context, Result};
use clap::Args;

use cxl_passthrough::runtime::report::ProbeReport;
use cxl_passthrough::vmm::Platform;

use super::device::DeviceOpts;
use super::size::parse_window_base;

/// Default guest-physical range for CFMWS windows (above 256 GiB, clear of RAM and the
/// PCI apertures a small VMM uses).
pub const DEFAULT_WINDOW_BASE: u64 = 0x40_0000_0000;

/// Options of `probe`.
#[derive(Args, Debug, Clone)]
pub struct ProbeArgs {
    /// The device.
    #[command(flatten)]
    pub device: DeviceOpts,
    /// Guest-physical base of the CFMWS window range (256 MiB aligned, at least 4 GiB).
    #[arg(long, value_parser = parse_window_base, default_value_t = DEFAULT_WINDOW_BASE)]
    pub window_base: u64,
    /// Print JSON (see docs/cli.md).
    #[arg(long)]
    pub json: bool,
}

/// Size of the guest-physical range the CFMWS windows come from.
pub const WINDOW_AREA: u64 = 1 << 40;

/// Host page size.
pub fn page_size() -> u64 {
    4096
}

/// Runs `probe`.
pub fn run(args: &ProbeArgs) -> Result<()> {
    let (backend, source) = args.device.open()?;
    let mut platform =
        Platform::new(args.window_base, WINDOW_AREA, page_size()).context("window range")?;
    let (dev, decoder0) = platform
        .boot_device(backend, args.device.revision_choice())
        .with_context(|| source.clone())?;
    let report = ProbeReport::new(source, &dev, decoder0);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(())
}
