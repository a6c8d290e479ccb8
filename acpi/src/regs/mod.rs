//! CXL component-register spec types shared by the host-bridge model ([`crate::Chbcr`])
//! and the `cxl-passthrough` crate (which re-exports this module as
//! `cxl_passthrough::regs::{component, hdm}`): the capability array of a 64 KiB component
//! register block and the HDM Decoder Capability structure. Defined once, here, because
//! `cxl-passthrough` depends on `cxl-acpi` and not the reverse. Pure data and pure
//! walkers; layouts per CXL r3.1 §8.2.4 (component registers) and §8.2.4.20 (HDM
//! Decoder Capability structure).

pub mod component;
pub mod hdm;

pub use component::{CmCapEntry, CmCapHeader, HdmLocation, WalkError, find_hdm_block};
pub use hdm::{DecoderCtrl, DecoderReg, HdmCapability, HdmGlobalControl};
