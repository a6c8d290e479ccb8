//! Typed CXL and PCI register definitions.
//!
//! Everything here is pure data: bitfield types for the registers a VMM and the
//! simulator read and write, their offsets, and small pure walkers over register
//! images (capability array, PCIe extended capabilities, Register Locator entries).
//! Layouts follow the CXL specification as summarised in `shared/spec/cxl-registers.md`.

pub mod component;
pub mod dvsec;
pub mod hdm;
pub mod pci;
pub mod reglocator;

pub use component::{CmCapEntry, CmCapHeader, HdmLocation, WalkError, find_hdm_block};
pub use hdm::{DecoderCtrl, DecoderReg, HdmCapability, HdmGlobalControl};
