//! Typed CXL and PCI register definitions.
//!
//! Everything here is pure data: bitfield types for the registers a VMM and the
//! simulator read and write, their offsets, and small pure walkers over register
//! images (capability array, PCIe extended capabilities, Register Locator entries).
//! Layouts follow the CXL specification as summarised in `shared/spec/cxl-registers.md`.

pub mod bridge;
pub mod dvsec;
pub mod pci;
pub mod pcie_cap;
pub mod port_dvsec;
pub mod reglocator;

pub use cxl_acpi::regs::{
    CmCapEntry, CmCapHeader, DecoderCtrl, DecoderReg, HdmCapability, HdmGlobalControl, HdmLocation,
    WalkError, find_hdm_block,
};
/// The component-register block and HDM decoder types, defined once in `cxl-acpi`
/// (the host-bridge model uses them too).
pub use cxl_acpi::regs::{component, hdm};
