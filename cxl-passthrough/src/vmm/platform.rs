//! [`Platform`]: what every CXL device adds to the machine — its CFMWS window (from one
//! window area outside guest RAM and every PCI aperture), its host bridge with emulated
//! component registers (CHBCR), and the ACPI description of all of them (CEDT,
//! ACPI0017 and one ACPI0016 per host bridge).
//!
//! The sequence a VMM runs per device is probe → window → plan → boot-time lock:
//! [`Platform::plan_device`] does the first three without writing to the device,
//! [`Platform::boot_device`] all four.

use std::sync::Arc;

use cxl_acpi::{
    AcpiDescription, CfmwsWindow, Chbcr, ChbcrConfig, HostBridge, build_cedt, build_ssdt, cxl_aml,
};
use log::info;

use super::error::VmmError;
use super::root_port::ROOT_PORT_NUMBER;
use crate::backend::Backend;
use crate::plan::topology::TopologyPlan;
use crate::plan::{Window, WindowAllocator};
use crate::runtime::probe::probe;
use crate::runtime::topology::{TopologyPlanError, plan_device_topology};
use crate::runtime::{CxlDevice, DecoderState};
use crate::uapi::RevisionChoice;

/// Every CXL device's platform resources.
#[derive(Debug)]
pub struct Platform {
    windows: WindowAllocator,
    page_size: u64,
    acpi: AcpiDescription,
}

impl Platform {
    /// A platform whose CFMWS windows come from `[start, start + len)`, a range outside
    /// guest RAM and every PCI aperture. `page_size`: the host page size
    /// ([`super::host_page_size`]).
    pub fn new(start: u64, len: u64, page_size: u64) -> Result<Self, VmmError> {
        Ok(Self {
            windows: WindowAllocator::new(start, len).map_err(VmmError::Window)?,
            page_size,
            acpi: AcpiDescription::default(),
        })
    }

    /// Probes the device behind `backend` (with the UAPI revision `choice`; `Auto` takes
    /// it from the kernel's answer), reserves its window and plans it (BAR split,
    /// overlay). Nothing is written to the device. A device refused after its window was
    /// reserved (not firmware-committed, DPA not mmap-able) keeps the window reserved:
    /// windows are never handed out twice.
    pub fn plan_device(
        &mut self,
        backend: Arc<dyn Backend>,
        choice: RevisionChoice,
    ) -> Result<CxlDevice, VmmError> {
        let desc = probe(&*backend, choice, self.page_size).map_err(VmmError::Probe)?;
        let window = self
            .windows
            .allocate(desc.dpa.size)
            .map_err(VmmError::Window)?;
        CxlDevice::new(backend, desc, window, self.page_size).map_err(VmmError::Device)
    }

    /// [`Platform::plan_device`], then locks HDM decoder 0 at the window (the boot-time
    /// lock: call before any vCPU runs). Returns the device and decoder 0 as locked.
    pub fn boot_device(
        &mut self,
        backend: Arc<dyn Backend>,
        choice: RevisionChoice,
    ) -> Result<(CxlDevice, DecoderState), VmmError> {
        let dev = self.plan_device(backend, choice)?;
        let d = dev.boot().map_err(VmmError::Device)?;
        let w = dev.window();
        info!(
            "cxl: window {:#x}+{:#x}, decoder 0 locked at {:#x}+{:#x}",
            w.base, w.size, d.base, d.size
        );
        Ok((dev, d))
    }

    /// Checks the topology of a booted device below the root port
    /// ([`ROOT_PORT_NUMBER`]): the host-bridge decoder that matches decoder 0 as the
    /// lock left it, and the device's DVSEC and Flex Bus facts.
    pub fn plan_topology(dev: &CxlDevice) -> Result<TopologyPlan, VmmError> {
        plan_device_topology(dev, ROOT_PORT_NUMBER, &[]).map_err(VmmError::TopologyPlan)
    }

    /// Adds `bridge` and the CFMWS window `window` targeting it to the ACPI description
    /// (no component registers: for tools that only write the tables).
    pub fn describe_host_bridge(
        &mut self,
        bridge: HostBridge,
        window: Window,
    ) -> Result<(), VmmError> {
        if self.is_cxl_segment(bridge.segment) {
            return Err(VmmError::SegmentInUse(bridge.segment));
        }
        let mut acpi = self.acpi.clone();
        let uid = bridge.uid;
        acpi.host_bridges.push(bridge);
        acpi.windows
            .push(CfmwsWindow::new(window.base, window.size, vec![uid]));
        acpi.validate().map_err(VmmError::Acpi)?;
        self.acpi = acpi;
        Ok(())
    }

    /// Adds `bridge` with the host-bridge decoder and window of `plan` to the ACPI
    /// description, and returns its component registers (CHBCR), to put on the MMIO bus
    /// at `bridge.chbcr_base` ([`Chbcr::SIZE`] bytes).
    pub fn add_host_bridge(
        &mut self,
        bridge: HostBridge,
        plan: &TopologyPlan,
    ) -> Result<Chbcr, VmmError> {
        let decoder = plan
            .chbcr_decoder()
            .map_err(|e| VmmError::TopologyPlan(TopologyPlanError::Topology(e)))?;
        let chbcr = Chbcr::new(ChbcrConfig::Committed(decoder)).map_err(VmmError::Chbcr)?;
        self.describe_host_bridge(bridge, plan.window)?;
        Ok(chbcr)
    }

    /// Whether `segment` is described by a CXL host bridge (and not by the VMM's own
    /// PCI host bridge AML).
    pub fn is_cxl_segment(&self, segment: u16) -> bool {
        self.acpi
            .host_bridges
            .iter()
            .any(|hb| hb.segment == segment)
    }

    /// Number of CXL host bridges so far.
    pub fn host_bridge_count(&self) -> usize {
        self.acpi.host_bridges.len()
    }

    /// The ACPI description so far.
    pub fn acpi(&self) -> &AcpiDescription {
        &self.acpi
    }

    /// The CEDT, `None` without a CXL host bridge.
    pub fn cedt(&self) -> Result<Option<Vec<u8>>, VmmError> {
        self.if_any(build_cedt)
    }

    /// The AML for the DSDT (ACPI0017 and the ACPI0016 devices), `None` without a CXL
    /// host bridge.
    pub fn aml(&self) -> Result<Option<Vec<u8>>, VmmError> {
        self.if_any(cxl_aml)
    }

    /// The same AML as a complete SSDT, `None` without a CXL host bridge.
    pub fn ssdt(&self) -> Result<Option<Vec<u8>>, VmmError> {
        self.if_any(build_ssdt)
    }

    fn if_any(
        &self,
        build: impl FnOnce(&AcpiDescription) -> Result<Vec<u8>, cxl_acpi::DescriptionError>,
    ) -> Result<Option<Vec<u8>>, VmmError> {
        if self.acpi.host_bridges.is_empty() {
            return Ok(None);
        }
        build(&self.acpi).map(Some).map_err(VmmError::Acpi)
    }
}
