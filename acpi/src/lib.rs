//! ACPI for CXL passthrough: CEDT (CHBS + CFMWS), CXL host bridge AML and the
//! host-bridge component registers a VMM emulates.
//!
//! A VMM describes its guest CXL topology once ([`AcpiDescription`]: host bridges and fixed
//! memory windows), validates it ([`AcpiDescription::validate`], also done by every builder) and
//! then emits:
//!
//! * [`build_cedt`]: the CEDT table (one CHBS per host bridge, one CFMWS per window);
//! * [`cxl_aml`]: AML to splice into its DSDT (`\_SB` scope with the ACPI0017 CXL root
//!   and one ACPI0016 host bridge per [`HostBridge`]), or [`build_ssdt`]: the same AML
//!   as a standalone SSDT;
//! * [`Chbcr`]: the emulated 64 KiB host-bridge component register block (CHBCR) each
//!   CHBS points at, served through its `read`/`write` methods.
//!
//! Byte-level notes and the Linux behaviour this is built against: `docs/acpi.md`.
//!
//! # Cargo features
//!
//! - `vm-device` (off by default): [`Chbcr`] implements rust-vmm vm-device 0.1's
//!   `MutDeviceMmio`, for VMMs whose MMIO bus is that crate's `IoManager`.
//!   cloud-hypervisor has its own in-tree vm-device (its `BusDevice`) and never uses the
//!   registry crate's traits, so it does not compile a second vm-device.

pub mod aml;
pub mod cedt;
pub mod chbcr;
pub mod description;
mod error;
pub mod regs;

#[cfg(test)]
mod proptests;

pub use aml::{build_ssdt, cxl_aml};
pub use cedt::build_cedt;
pub use chbcr::{Chbcr, ChbcrConfig, ChbcrError, CommittedDecoder};
pub use description::{
    AcpiDescription, CfmwsWindow, Granularity, HostBridge, IntxRoute, MmioWindow, OemIds,
    WindowRestrictions,
};
pub use error::DescriptionError;
