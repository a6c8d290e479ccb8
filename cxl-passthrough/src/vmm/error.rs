//! [`VmmError`]: why a step of the device lifecycle failed.

use thiserror::Error;

use crate::backend::kernel::OpenError;
use crate::plan::WindowError;
use crate::rootport::RootPortError;
use crate::runtime::probe::ProbeError;
use crate::runtime::topology::TopologyPlanError;
use crate::runtime::{DeviceError, HookError};

use super::path::PathError;

/// Why a step of the device lifecycle failed. Every variant keeps its cause as
/// [`std::error::Error::source`].
#[derive(Debug, Error)]
pub enum VmmError {
    /// The device path is malformed.
    #[error("device path")]
    Path(#[from] PathError),
    /// The VFIO device could not be opened.
    #[error("opening the VFIO device")]
    Open(#[source] OpenError),
    /// Duplicating the VMM's VFIO device fd failed.
    #[error("duplicating the VFIO device fd")]
    DupFd(#[source] std::io::Error),
    /// The simulated device could not be created.
    #[cfg(feature = "sim")]
    #[error("creating the simulated device")]
    Sim(#[source] crate::backend::sim::SimError),
    /// The device could not be probed (includes "not a CXL device").
    #[error("probing the CXL device")]
    Probe(#[source] ProbeError),
    /// No CFMWS window could be reserved.
    #[error("reserving the CFMWS window")]
    Window(#[source] WindowError),
    /// The device runtime refused the device, or a lock, map or reset failed.
    #[error("CXL device")]
    Device(#[source] DeviceError),
    /// The device, its locked decoder and the host bridge do not form a topology a guest
    /// accepts.
    #[error("planning the CXL topology (host bridge, root port, device)")]
    TopologyPlan(#[source] TopologyPlanError),
    /// The host-bridge component registers (CHBCR) could not be built.
    #[error("emulating the host bridge component registers")]
    Chbcr(#[source] cxl_acpi::ChbcrError),
    /// The ACPI description (CEDT, ACPI0016/ACPI0017) is inconsistent.
    #[error("describing the CXL topology in ACPI")]
    Acpi(#[source] cxl_acpi::DescriptionError),
    /// The emulated root port could not be built.
    #[error("emulating the CXL root port")]
    RootPort(#[source] RootPortError),
    /// A PCI segment holds another CXL device already.
    #[error("PCI segment {0} belongs to a CXL device: a CXL device needs a PCI segment of its own")]
    SegmentInUse(u16),
    /// The VMM's memory-slot or DMA callback failed.
    #[error("the VMM could not map {what}")]
    Map {
        /// What was being mapped.
        what: &'static str,
        /// The VMM's error.
        #[source]
        source: HookError,
    },
    /// A guest-physical address the VMM gave plus an offset inside the device overflows.
    #[error("{what}: guest address {base:#x} + offset {offset:#x} overflows 64 bits")]
    AddressOverflow {
        /// What was being placed.
        what: &'static str,
        /// The VMM's address.
        base: u64,
        /// The offset inside the device.
        offset: u64,
    },
    /// The VMM's MMIO registration callback failed.
    #[error("the VMM could not register the MMIO handler of {part} at {gpa:#x}+{size:#x}")]
    Mmio {
        /// What was being registered.
        part: super::MmioPart,
        /// Guest-physical base.
        gpa: u64,
        /// Size in bytes.
        size: u64,
        /// The VMM's error.
        #[source]
        source: HookError,
    },
    /// KVM on this arm64 host would give the guest the device memory as Device memory (or
    /// refuse it): see [`super::check_kvm_device_memory`].
    #[error(
        "the host's KVM cannot map the CXL device memory into the guest as cacheable memory \
         (KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED is not reported): arm64 needs Linux 6.17 or \
         later (\"KVM: arm64: Map GPU device memory as cacheable\") on a CPU with FEAT_S2FWB"
    )]
    DeviceMemoryNotCacheable,
    /// `/dev/kvm` could not be opened (not a KVM host, or no permission).
    #[error("opening /dev/kvm to check how KVM maps the device memory")]
    KvmUnavailable(#[source] std::io::Error),
    /// Asking KVM a question failed (`KVM_CREATE_VM` of the scratch VM, or
    /// `KVM_CHECK_EXTENSION` on a fd that is not a KVM VM).
    #[error("asking KVM how it maps the device memory (KVM_CHECK_EXTENSION on a VM fd)")]
    Kvm(#[source] std::io::Error),
}
