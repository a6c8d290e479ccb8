//! Device selection options shared by the subcommands: the simulator or a real device.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};

use cxl_passthrough::backend::Backend;
use cxl_passthrough::backend::sim::{BarLayout, Fault, Op, SimConfig, SimDevice};
use cxl_passthrough::uapi::{RevisionChoice, UapiRevision};
use cxl_passthrough::vmm::DevicePath;

use super::size::parse_size;

/// BAR layout of the simulated device: where the component block sits in its BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BarLayoutArg {
    /// Block at the end of the BAR (BAR layout A).
    End,
    /// Block at the start (BAR layout B).
    Start,
    /// Block in the middle (BAR layout C).
    Middle,
}

/// A simulator operation that `--sim-fault` makes fail with `EIO`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SimFaultArg {
    /// `VFIO_DEVICE_GET_INFO`.
    DeviceInfo,
    /// `VFIO_DEVICE_GET_REGION_INFO`.
    RegionInfo,
    /// Reads of any region.
    Read,
}

/// Which device to use.
#[derive(Args, Debug, Clone)]
pub struct DeviceOpts {
    /// Use the built-in simulator of the kernel driver (the default when no --device is given).
    #[arg(long)]
    pub sim: bool,
    /// A real VFIO device: /dev/vfio/devices/vfioN, or a PCI address like 0000:01:00.0.
    #[arg(long, conflicts_with = "sim")]
    pub device: Option<String>,
    /// UAPI revision (auto, v2, v3 or v4): the simulator's revision (auto = v2), or forced
    /// decoding for a real device (auto = detect from the kernel's answer).
    #[arg(long, default_value_t = RevisionChoice::Auto)]
    pub uapi: RevisionChoice,
    /// Simulated device memory size (multiple of 256M).
    #[arg(long, value_parser = parse_size, default_value = "512M")]
    pub dpa_size: u64,
    /// BAR layout of the simulated device: where its component block sits in its BAR.
    // `--topology`, the flag's old name, stays as a hidden alias for existing scripts.
    #[arg(long, alias = "topology", value_enum, default_value_t = BarLayoutArg::End)]
    pub bar_layout: BarLayoutArg,
    /// Simulated HDM decoder count.
    #[arg(long, default_value_t = 1)]
    pub decoders: u32,
    /// Simulate a device whose decoder 0 was not committed by firmware.
    #[arg(long)]
    pub not_committed: bool,
    /// Test hook: make this simulator operation fail with EIO (shows how errors print).
    #[arg(long, value_enum, hide = true, conflicts_with = "device")]
    pub sim_fault: Option<SimFaultArg>,
}

impl DeviceOpts {
    /// The revision choice for the UAPI parser.
    pub fn revision_choice(&self) -> RevisionChoice {
        self.uapi
    }

    /// The simulator configuration these options describe.
    pub fn sim_config(&self) -> SimConfig {
        SimConfig {
            revision: match self.uapi {
                RevisionChoice::Force(revision) => revision,
                RevisionChoice::Auto => UapiRevision::V2,
            },
            dpa_size: self.dpa_size,
            decoder_count: self.decoders,
            bar_layout: match self.bar_layout {
                BarLayoutArg::End => BarLayout::End,
                BarLayoutArg::Start => BarLayout::Start,
                BarLayoutArg::Middle => BarLayout::Middle,
            },
            firmware_committed: !self.not_committed,
            ..SimConfig::default()
        }
    }

    /// Opens the backend; returns it and a label for reports.
    pub fn open(&self) -> Result<(Arc<dyn Backend>, String)> {
        if let Some(path) = &self.device {
            return open_kernel(path);
        }
        let cfg = self.sim_config();
        let label = format!("sim:{}", cfg.revision);
        let sim = SimDevice::new(cfg).context("configuring the simulated device")?;
        if let Some(fault) = self.sim_fault {
            let op = match fault {
                SimFaultArg::DeviceInfo => Op::DeviceInfo,
                SimFaultArg::RegionInfo => Op::RegionInfo,
                SimFaultArg::Read => Op::Read,
            };
            sim.inject(Fault::Eio { op, count: None });
        }
        Ok((Arc::new(sim), label))
    }
}

fn open_kernel(path: &str) -> Result<(Arc<dyn Backend>, String)> {
    let device = DevicePath::parse(path)?;
    if device.is_sim() {
        bail!("{path}: the simulator is selected with --sim (and configured by its options)");
    }
    let backend = device.open().with_context(|| path.to_string())?;
    Ok((backend, path.to_string()))
}
