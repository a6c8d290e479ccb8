//! VMM side of CXL Type-2 device passthrough.
//!
//! The Linux kernel's vfio-pci, extended for CXL, exposes a Type-2 device's coherent
//! device memory (HDM/DPA) and a shadow of its HDM decoder registers (COMP_REGS) through
//! the VFIO UAPI. This crate drives that UAPI (every revision in
//! [`uapi::UapiRevision::ALL`]) and builds what a VMM needs on top of it. A VMM embeds
//! it through the [`vmm`] facade; the lifecycle of one device, against the simulator:
//!
//! ```
//! # #[cfg(feature = "sim")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::{Arc, Mutex};
//!
//! use cxl_passthrough::vmm::{
//!     CxlSegment, DevicePath, GuestMapping, MemorySlots, MmioHandler, MmioPart,
//!     MmioRegistry, Platform, ResetKind, RevisionChoice, guest_config_write,
//!     host_page_size, register_component_bar, root_port, window_area,
//! };
//! use vm_memory::MmapRegion;
//!
//! /// The VMM's memory slots (here: the guest-physical bases the guest sees).
//! #[derive(Clone, Default)]
//! struct Slots(Arc<Mutex<Vec<u64>>>);
//!
//! impl MemorySlots for Slots {
//!     type Error = std::io::Error;
//!     fn map(&mut self, gpa: u64, _region: &MmapRegion) -> Result<(), Self::Error> {
//!         self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.push(gpa);
//!         Ok(())
//!     }
//!     fn unmap(&mut self, gpa: u64, _region: &MmapRegion) -> Result<(), Self::Error> {
//!         self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.retain(|&g| g != gpa);
//!         Ok(())
//!     }
//! }
//!
//! /// The VMM's MMIO bus (here: a list of handlers).
//! #[derive(Default)]
//! struct Bus(Vec<(u64, u64, Arc<dyn MmioHandler>)>);
//!
//! impl MmioRegistry for Bus {
//!     type Error = std::io::Error;
//!     fn register(
//!         &mut self, _: MmioPart, gpa: u64, size: u64, h: Arc<dyn MmioHandler>,
//!     ) -> Result<(), Self::Error> {
//!         self.0.push((gpa, size, h));
//!         Ok(())
//!     }
//! }
//!
//! const BAR_GPA: u64 = 0x80_0000_0000; // where the VMM placed the component BAR
//! const CHBCR_GPA: u64 = 0xfd00_0000; // the host bridge's component registers
//!
//! // Open the device the user named (`sim:<revision>` is the test-only simulator; a
//! // sysfs PCI address or a VFIO cdev opens the kernel's device).
//! let backend = DevicePath::parse("sim:v3")?.open()?;
//!
//! // Probe, allocate the window, plan, lock HDM decoder 0 at the window (before any
//! // vCPU runs). The UAPI revision comes from the kernel's answer.
//! // The CFMWS windows come from the top of the VMM's 64-bit device area.
//! let area = window_area(1, 0x40_0000_0000, 0xff_ffff_ffff).ok_or("no room")?;
//! let mut platform = Platform::new(area.start, area.end - area.start, host_page_size())?;
//! let (dev, decoder0) = platform.boot_device(backend, RevisionChoice::Auto)?;
//! assert!(decoder0.locked && decoder0.base == dev.window().base);
//!
//! // Device memory at the window, the BAR's sparse areas at their BAR offsets.
//! let slots = Slots::default();
//! let mut memory = vec![GuestMapping::device_memory(&dev, slots.clone())?];
//! memory.extend(GuestMapping::bar_areas(&dev, BAR_GPA, || slots.clone())?);
//!
//! // The COMP_REGS overlay and the forwarded rest of the component BAR.
//! let mut bus = Bus::default();
//! register_component_bar(&dev, BAR_GPA, &mut bus)?;
//!
//! // Host bridge (CHBCR + ACPI), root port, CEDT and AML.
//! let plan = Platform::plan_topology(&dev)?;
//! let segment = CxlSegment {
//!     segment: 1,
//!     mem32: (0xc000_0000, 0xcfff_ffff),
//!     mem64: (0, 0),
//!     chbcr_base: CHBCR_GPA,
//!     slot_gsis: vec![5], // INTA of slot 0 (the root port's, and so the device's)
//! };
//! let chbcr = platform.add_host_bridge(segment.host_bridge(), &plan)?;
//! bus.0.push((CHBCR_GPA, 0x1_0000, Arc::new(Mutex::new(chbcr))));
//! let port = root_port(&plan, 0xc000_0000, Vec::new())?;
//! assert_eq!(port.port_number(), plan.root_port_number);
//! let cedt = platform.cedt()?.ok_or("no CXL host bridge")?;
//! let aml = platform.aml()?.ok_or("no CXL host bridge")?;
//! assert!(cedt.starts_with(b"CEDT") && !aml.is_empty());
//!
//! // The guest starts an FLR: forward the write, then decoder 0 is locked again.
//! let devctl = u64::from(dev.desc().pcie_cap.ok_or("no PCIe capability")? + 8);
//! let flr = (1u16 << 15).to_le_bytes();
//! let config = dev.desc().config.file_offset;
//! let (written, reset) = guest_config_write(&dev, devctl, &flr, &mut memory, || {
//!     dev.backend().write(config, devctl, &flr)
//! });
//! written?;
//! assert_eq!(reset.ok_or("not a reset")?.relock?.base, dev.window().base);
//!
//! // VMM reset: unmap, reset, re-lock, map again.
//! let d = dev.reset(ResetKind::Device, &mut memory)?;
//! assert_eq!(d.base, dev.window().base);
//! assert_eq!(slots.0.lock().map_err(|_| "poisoned")?.len(), memory.len());
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "sim"))]
//! # fn main() {}
//! ```
//!
//! # Layers
//!
//! - [`vmm`]: the facade above (VMM-neutral; the VMM's memory slots, DMA mappings and
//!   MMIO bus reach it through small traits).
//! - [`runtime`]: the device runtime the facade drives ([`runtime::CxlDevice`]: lock,
//!   overlay, reset and fencing).
//! - [`plan`]: windows, the component-BAR split, the topology checks (pure).
//! - [`rootport`]: the emulated CXL root port.
//! - [`regs`]: typed CXL register definitions (pure).
//! - [`uapi`]: parsing and encoding of the kernel's answers (pure, no I/O).
//! - [`backend`]: the [`backend::Backend`] trait — the one contract with a device — and
//!   its implementations (`kernel` over a VFIO device fd, `sim` for the simulator).
//! - [`errors`]: printing error chains.
//! - `sys` (private): the only module with `unsafe` (ioctl, mmap, memfd, sysconf).
//!
//! # Cargo features
//!
//! An embedding VMM depends on the crate with `default-features = false`: rust-vmm
//! crates, `thiserror`, `log`, `libc` and `cxl-acpi` (which brings `acpi_tables` and
//! `bitfield-struct`), nothing else.
//!
//! - `vm-device` (default): `vmm::VmDeviceMmio`, which puts any [`vmm::MmioHandler`]
//!   (the overlay, the forwarded BAR ranges, [`rootport::CxlRootPort`], the CHBCR) on
//!   rust-vmm vm-device 0.1's `IoManager` as a `DeviceMmio` (the CHBCR also has its
//!   `MutDeviceMmio` through `cxl-acpi/vm-device`). For VMMs whose MMIO bus is
//!   rust-vmm's vm-device. cloud-hypervisor, the main embedder, has its own in-tree
//!   vm-device and never uses the registry crate's traits, so it leaves the feature off
//!   and does not compile a second vm-device; the facade itself uses no vm-device type.
//! - `sim` (default): the userspace model of the kernel's vfio-pci CXL driver
//!   (`backend::sim`) and the `sim:<revision>` device paths of [`vmm::DevicePath`].
//!   For tests and for running without hardware; never for production VMMs.
//! - `serde`: `serde::Serialize` on the description and report types (JSON output).
//! - `cli` (default): the dependencies of the `cxl-passthrough` command-line tool
//!   (`clap`, `env_logger`, `anyhow`, `serde_json`; enables `serde`). The tool itself is
//!   the package's binary; nothing of it is library API.
//! - `demo` (default): the tool's `demo` subcommand, a KVM guest (x86-64) against the
//!   device (`kvm-ioctls`, `kvm-bindings`, `iced-x86`; enables `cli` and `vm-device`:
//!   the demo's MMIO bus is vm-device's `IoManager`).
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod backend;
pub mod errors;
pub mod plan;
pub mod regs;
pub mod rootport;
pub mod runtime;
pub mod uapi;
pub mod vmm;

#[allow(unsafe_code)]
pub(crate) mod sys;
