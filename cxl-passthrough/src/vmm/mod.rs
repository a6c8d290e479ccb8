//! The VMM-neutral facade: the whole lifecycle of a passed-through CXL Type-2 device,
//! for any Rust VMM.
//!
//! | Step | API |
//! |---|---|
//! | reserve the window area | [`window_area`] |
//! | parse the user's device path, open the device (or take the VMM's VFIO fd) | [`DevicePath::parse`], [`DevicePath::open`] ([`backend_from_device_fd`]) |
//! | probe, allocate the CFMWS window, plan, lock HDM decoder 0 at boot | [`Platform::boot_device`] (or [`Platform::plan_device`] + [`CxlDevice::boot`]) |
//! | check that KVM maps device memory cacheable (arm64) | [`check_kvm_device_memory`] (VM fd) or [`check_host_kvm_device_memory`] |
//! | map the device memory at the window (and for DMA) | [`GuestMapping::device_memory`], [`GuestMapping::dma_map`] |
//! | map the BAR's sparse areas (and move them with the BAR) | [`GuestMapping::bar_areas`], [`GuestMapping::move_to`] |
//! | serve the COMP_REGS overlay and forward the rest of the BAR | [`register_component_bar`], or [`route_bar_access`] for a VMM that traps the whole BAR |
//! | check the topology, build the host bridge's CHBCR | [`Platform::plan_topology`], [`CxlSegment::host_bridge`], [`Platform::add_host_bridge`] |
//! | build the root port, place and route the segment's two-bus ECAM | [`root_port`], [`cxl_ecam_slot`], [`route_ecam`] |
//! | describe the segment's requester IDs to the MSI controller (IORT / FDT `msi-map`) | [`requester_id_maps`] |
//! | produce the CEDT and the AML (or an SSDT) | [`Platform::cedt`], [`Platform::aml`], [`Platform::ssdt`] |
//! | guest FLR / CXL Reset | [`guest_config_write`] |
//! | guest Secondary Bus Reset on the root port ([`CxlRootPort::config_write`] reports it) | [`secondary_bus_reset`] |
//! | VMM reset: unmap, reset, re-lock, remap | [`CxlDevice::reset`] with the [`GuestMapping`]s as [`MemoryHooks`] |
//!
//! What the facade needs from the VMM reaches it through three small traits, each with
//! the VMM's own error type: [`MemorySlots`] (guest memory slots), [`DmaMapper`] (IOMMU
//! mappings) and [`MmioRegistry`] (the MMIO bus). Errors are [`VmmError`], whose
//! sources keep the VMM's errors.
//!
//! The crate documentation opens with the whole sequence as a runnable example.

mod bar_access;
mod config_write;
mod device_fd;
mod ecam_slot;
mod error;
mod memory;
mod mmio;
mod path;
mod platform;
mod requester_ids;
mod root_port;
mod segment;
mod stage2;
mod window_area;

pub use bar_access::{BarAccess, route_bar_access};
pub use config_write::{GuestResetOutcome, guest_config_write, secondary_bus_reset};
pub use device_fd::backend_from_device_fd;
pub use ecam_slot::cxl_ecam_slot;
pub use error::VmmError;
pub use memory::{DmaMapper, GuestMapping, MemorySlots};
#[cfg(feature = "vm-device")]
pub use mmio::VmDeviceMmio;
pub use mmio::{MmioHandler, MmioPart, MmioRegistry, register_component_bar};
pub use path::{DevicePath, PathError, SIM_PATH_PREFIX};
pub use platform::Platform;
pub use requester_ids::{RequesterIdMap, device_id, requester_id_maps};
pub use root_port::{
    CXL_ECAM_SIZE, ECAM_BUS_SIZE, EcamTarget, ROOT_PORT_DEVICE_ID, ROOT_PORT_LINK,
    ROOT_PORT_NUMBER, ROOT_PORT_VENDOR_ID, SECONDARY_BUS, root_port, route_ecam,
};
pub use segment::CxlSegment;
pub use stage2::{
    HostArch, KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED, check_host_kvm_device_memory,
    check_kvm_device_memory, device_memory_verdict,
};
pub use window_area::{WINDOW_SPAN, window_area};

pub use cxl_acpi::{Chbcr, HostBridge, IntxRoute, MmioWindow};

pub use crate::backend::{Backend, ResetKind};
pub use crate::plan::Window;
pub use crate::plan::topology::TopologyPlan;
pub use crate::rootport::{BarMove, ConfigWriteOutcome, CxlRootPort, DeviceBar};
pub use crate::runtime::guest_reset::GuestReset;
pub use crate::runtime::{CxlDevice, DecoderState, DeviceState, HookError, MemoryHooks};
pub use crate::sys::page::host_page_size;
pub use crate::uapi::RevisionChoice;

/// Why a snapshot or a migration of a VM with a passed-through CXL device is refused.
pub const NOT_MIGRATABLE: &str = "CXL passthrough devices cannot be snapshotted or migrated: \
     the device memory and the locked HDM decoder live in the device";

#[cfg(all(test, feature = "sim"))]
mod tests;
#[cfg(all(test, feature = "sim"))]
mod tests_sbr;
