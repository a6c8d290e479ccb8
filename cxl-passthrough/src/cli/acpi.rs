//! `cxl-passthrough acpi`: the CEDT and SSDT a VMM would install for the planned
//! topology (one CXL host bridge and one CFMWS window per device).

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use cxl_acpi::{HostBridge, MmioWindow};
use serde::Serialize;

use cxl_passthrough::vmm::Platform;

use super::MAX_COUNT;
use super::device::DeviceOpts;
use super::probe::{DEFAULT_WINDOW_BASE, WINDOW_AREA, page_size};
use super::size::{parse_nonzero_size, parse_number, parse_size, parse_window_base};

/// Options of `acpi`.
#[derive(Args, Debug, Clone)]
pub struct AcpiArgs {
    /// The device (each of `--count` devices is configured the same way).
    #[command(flatten)]
    pub device: DeviceOpts,
    /// Number of devices (one host bridge, segment and window each).
    #[arg(long, default_value_t = 1,
          value_parser = clap::value_parser!(u16).range(1..=i64::from(MAX_COUNT)))]
    pub count: u16,
    /// Guest-physical base of the CFMWS window range (256 MiB aligned, at least 4 GiB).
    #[arg(long, value_parser = parse_window_base, default_value_t = DEFAULT_WINDOW_BASE)]
    pub window_base: u64,
    /// PCI segment of the first CXL host bridge (one segment per device).
    #[arg(long, value_parser = parse_number::<u16>, default_value_t = 1)]
    pub segment: u16,
    /// `_UID` of the first host bridge.
    #[arg(long, value_parser = parse_number::<u32>, default_value_t = 0)]
    pub uid: u32,
    /// First bus of each host bridge (bus 0: root port, bus 1: the device).
    #[arg(long, value_parser = parse_number::<u8>, default_value_t = 0)]
    pub bus_start: u8,
    /// Last bus of each host bridge.
    #[arg(long, value_parser = parse_number::<u8>, default_value_t = 1)]
    pub bus_end: u8,
    /// Guest-physical base of the first CHBCR (64 KiB each, consecutive).
    #[arg(long, value_parser = parse_size, default_value = "0xfd000000")]
    pub chbcr_base: u64,
    /// Base of the 64-bit MMIO apertures (one slice of --mmio64-size per bridge).
    #[arg(long, value_parser = parse_size, default_value = "0x8000000000")]
    pub mmio64_base: u64,
    /// Size of each bridge's 64-bit MMIO aperture (not 0).
    #[arg(long, value_parser = parse_nonzero_size, default_value = "16G")]
    pub mmio64_size: u64,
    /// Directory to write cedt.dat, ssdt.aml and topology.json into.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Serialize)]
struct Written {
    cedt: PathBuf,
    ssdt: PathBuf,
    host_bridges: Vec<BridgeJson>,
}

#[derive(Serialize)]
struct BridgeJson {
    uid: u32,
    segment: u16,
    bus_start: u8,
    bus_end: u8,
    chbcr_base: u64,
    window_base: u64,
    window_size: u64,
}

/// Plans the devices (probe, window; nothing is written to them) and describes one host
/// bridge and CFMWS window per device.
fn plan(args: &AcpiArgs) -> Result<(Platform, Vec<BridgeJson>)> {
    let mut platform =
        Platform::new(args.window_base, WINDOW_AREA, page_size()).context("window range")?;
    let mut json = Vec::new();
    for i in 0..args.count {
        let (backend, source) = args.device.open()?;
        let dev = platform
            .plan_device(backend, args.device.revision_choice())
            .with_context(|| format!("{source} (device {i})"))?;
        let w = dev.window();
        let uid = args.uid.checked_add(u32::from(i)).context("UID overflow")?;
        let segment = args.segment.checked_add(i).context("segment overflow")?;
        let chbcr_base = u64::from(i)
            .checked_mul(0x1_0000)
            .and_then(|o| args.chbcr_base.checked_add(o))
            .context("--chbcr-base + 64 KiB per device overflows 64 bits")?;
        let mmio64_base = u64::from(i)
            .checked_mul(args.mmio64_size)
            .and_then(|o| args.mmio64_base.checked_add(o))
            .context("--mmio64-base + --mmio64-size per device overflows 64 bits")?;
        let bridge = HostBridge {
            uid,
            segment,
            bus_start: args.bus_start,
            bus_end: args.bus_end,
            chbcr_base,
            mmio32: None,
            mmio64: Some(MmioWindow {
                base: mmio64_base,
                size: args.mmio64_size,
            }),
            // No INTx routing: the VMM that owns the GSIs adds `_PRT` routes.
            intx_routes: Vec::new(),
        };
        platform
            .describe_host_bridge(bridge, w)
            .context("the planned ACPI description is invalid")?;
        json.push(BridgeJson {
            uid,
            segment,
            bus_start: args.bus_start,
            bus_end: args.bus_end,
            chbcr_base,
            window_base: w.base,
            window_size: w.size,
        });
    }
    Ok((platform, json))
}

/// Runs `acpi`.
pub fn run(args: &AcpiArgs) -> Result<()> {
    let (platform, bridges) = plan(args)?;
    let cedt = platform
        .cedt()
        .context("building the CEDT")?
        .context("no CXL host bridge")?;
    let ssdt = platform
        .ssdt()
        .context("building the SSDT")?
        .context("no CXL host bridge")?;
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let written = Written {
        cedt: args.out.join("cedt.dat"),
        ssdt: args.out.join("ssdt.aml"),
        host_bridges: bridges,
    };
    fs::write(&written.cedt, &cedt)
        .with_context(|| format!("writing {}", written.cedt.display()))?;
    fs::write(&written.ssdt, &ssdt)
        .with_context(|| format!("writing {}", written.ssdt.display()))?;
    let json = args.out.join("topology.json");
    fs::write(&json, serde_json::to_string_pretty(&written)?)
        .with_context(|| format!("writing {}", json.display()))?;
    println!(
        "wrote {} ({} bytes), {} ({} bytes), {}",
        written.cedt.display(),
        cedt.len(),
        written.ssdt.display(),
        ssdt.len(),
        json.display()
    );
    for b in &written.host_bridges {
        println!(
            "host bridge uid {} segment {} buses {}-{} CHBCR {:#x}; CFMWS {:#x} size {:#x}",
            b.uid, b.segment, b.bus_start, b.bus_end, b.chbcr_base, b.window_base, b.window_size
        );
    }
    Ok(())
}
