//! The four CXL DVSECs of the emulated root port: Flex Bus Port (ID 7), CXL Extensions
//! for Ports (ID 3), GPF for Ports (ID 4) and Register Locator (ID 8).
//!
//! Offsets are relative to the DVSEC start. The chain layout in configuration space and
//! the values written are decided by [`install`]; `docs/topology.md` explains each value.

use super::config::ConfigSpace;
use crate::regs::dvsec::{
    CXL_VENDOR_ID, DVSEC_ID_FLEX_BUS, DVSEC_ID_PORT_EXTENSIONS, DVSEC_ID_PORT_GPF,
    DVSEC_ID_REGISTER_LOCATOR, DvsecHeader1, off,
};
use crate::regs::pci::{EXT_CAP_ID_DVSEC, EXT_CAP_START, ExtCapHeader};
use crate::regs::port_dvsec::FlexBusBits;
use crate::regs::port_dvsec::{GpfPhaseControl, flex_bus, gpf, port_ext, reg_locator};
use crate::regs::reglocator::{BLOCK_ID_COMPONENT, ENTRY_SIZE, FIRST_ENTRY, RegisterBlock};

/// Version of the PCIe extended capability header of a DVSEC.
const DVSEC_EXT_CAP_VERSION: u8 = 1;

/// Offset of the Flex Bus Port DVSEC in configuration space (first extended capability).
pub const FLEX_BUS_AT: u16 = EXT_CAP_START;
/// Offset of the CXL Extensions DVSEC for Ports.
pub const PORT_EXT_AT: u16 = FLEX_BUS_AT + flex_bus::LENGTH;
/// Offset of the GPF DVSEC for Ports.
pub const GPF_AT: u16 = PORT_EXT_AT + port_ext::LENGTH;
/// Offset of the Register Locator DVSEC (last in the chain).
pub const REG_LOCATOR_AT: u16 = GPF_AT + gpf::LENGTH;

fn header(cs: &mut ConfigSpace, at: u16, next: u16, revision: u8, length: u16, id: u16) {
    let ext = ExtCapHeader::new()
        .with_id(EXT_CAP_ID_DVSEC)
        .with_version(DVSEC_EXT_CAP_VERSION)
        .with_next(next);
    cs.set_u32(at, ext.into_bits());
    let h1 = DvsecHeader1::new()
        .with_vendor(CXL_VENDOR_ID)
        .with_revision(revision)
        .with_length(length);
    cs.set_u32(at + off::HEADER1, h1.into_bits());
    cs.set_u16(at + off::HEADER2, id);
}

/// Writes the four DVSECs into `cs` (extended configuration space from 0x100).
///
/// `link` is the Flex Bus state to show (see [`FlexBusBits::link_of`]); the component
/// block is announced at offset 0 of BAR 0. Only the GPF phase controls and the Port
/// Control Extensions' Unmask SBR bit (which Linux's `cxl_bus` reset sets around a
/// secondary bus reset) are guest-writable; everything else is host-owned and
/// read-only.
pub fn install(cs: &mut ConfigSpace, link: FlexBusBits) {
    header(
        cs,
        FLEX_BUS_AT,
        PORT_EXT_AT,
        flex_bus::REVISION,
        flex_bus::LENGTH,
        DVSEC_ID_FLEX_BUS,
    );
    for reg in [flex_bus::CAPABILITY, flex_bus::CONTROL, flex_bus::STATUS] {
        cs.set_u16(FLEX_BUS_AT + reg, link.into_bits());
    }

    header(
        cs,
        PORT_EXT_AT,
        GPF_AT,
        port_ext::REVISION,
        port_ext::LENGTH,
        DVSEC_ID_PORT_EXTENSIONS,
    );
    cs.set_wmask_u16(
        PORT_EXT_AT + port_ext::CONTROL,
        port_ext::CONTROL_UNMASK_SBR,
    );

    header(
        cs,
        GPF_AT,
        REG_LOCATOR_AT,
        gpf::REVISION,
        gpf::LENGTH,
        DVSEC_ID_PORT_GPF,
    );
    for reg in [gpf::PHASE1_CONTROL, gpf::PHASE2_CONTROL] {
        cs.set_wmask_u16(GPF_AT + reg, GpfPhaseControl::WRITABLE);
    }

    header(
        cs,
        REG_LOCATOR_AT,
        0,
        reg_locator::REVISION,
        reg_locator::LENGTH,
        DVSEC_ID_REGISTER_LOCATOR,
    );
    let (lo, hi) = RegisterBlock {
        bar: 0,
        block_id: BLOCK_ID_COMPONENT,
        offset: 0,
    }
    .encode();
    cs.set_u32(REG_LOCATOR_AT + FIRST_ENTRY, lo);
    cs.set_u32(REG_LOCATOR_AT + FIRST_ENTRY + ENTRY_SIZE / 2, hi);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_layout() {
        assert_eq!(FLEX_BUS_AT, 0x100);
        assert_eq!(PORT_EXT_AT, 0x120);
        assert_eq!(GPF_AT, 0x148);
        assert_eq!(REG_LOCATOR_AT, 0x158);
        assert_eq!(reg_locator::LENGTH, 0x14);
    }
}
