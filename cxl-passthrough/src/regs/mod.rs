//! Typed CXL and PCI register definitions.
//!
//! Everything here is pure data: bitfield types for the registers a VMM and the
//! simulator read and write, their offsets, and small pure walkers over register
//! images (capability array, PCIe extended capabilities, Register Locator entries).
//! Layouts follow the CXL specification (docs/architecture.md, "Layers").
//!
//! Every spec register type is defined once, in `cxl-acpi`'s [`cxl_acpi::regs`] (the
//! host-bridge model there uses the component and HDM types, and `cxl-passthrough`
//! depends on `cxl-acpi`, not the reverse); this module re-exports it under the same
//! paths, so `cxl_passthrough::regs::dvsec::X` is the same type as
//! `cxl_acpi::regs::dvsec::X`.

pub use cxl_acpi::regs::{
    CmCapEntry, CmCapHeader, DecoderCtrl, DecoderReg, HdmCapability, HdmGlobalControl, HdmLocation,
    WalkError, find_hdm_block,
};
/// Spec register modules, defined once in `cxl-acpi` and re-exported here.
pub use cxl_acpi::regs::{bridge, component, dvsec, hdm, pci, pcie_cap, port_dvsec, reglocator};
