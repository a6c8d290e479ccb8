//! Every CXL and PCI spec register type of the project, defined once, here: the
//! host-bridge model ([`crate::Chbcr`]) uses the component-register and HDM types, and
//! the `cxl-passthrough` crate (which depends on `cxl-acpi`, not the reverse) re-exports
//! this whole module as `cxl_passthrough::regs` for its device, root-port and simulator
//! code. Pure data (`bitfield-struct` types, offsets) and pure walkers over register
//! images; layouts per CXL r3.1 §8.2.4 (component registers), §8.2.4.20 (HDM Decoder
//! Capability structure), §8.1 (DVSECs) and PCIe r6 §7 (headers, capabilities).

pub mod bridge;
pub mod component;
pub mod dvsec;
pub mod hdm;
pub mod pci;
pub mod pcie_cap;
pub mod port_dvsec;
pub mod reglocator;

pub use component::{CmCapEntry, CmCapHeader, HdmLocation, WalkError, find_hdm_block};
pub use hdm::{DecoderCtrl, DecoderReg, HdmCapability, HdmGlobalControl};
