//! The root port as a Linux guest probes it: PCI enumeration of a bridge (BAR sizing,
//! bridge-window probes), the CXL dport walk (PCIe capability, Port Number, Register
//! Locator → BAR → component block through a vm-device MMIO bus), the Flex Bus `is_cxl`
//! test, 7.3's GPF programming and its `cxl_bus` reset. Each step asserts what the guest observes.

use std::sync::Arc;

use cxl_passthrough::regs::component::{
    CAP_ID_RAS, CM_OFFSET, CmCapEntry, CmCapHeader, WalkError, find_hdm_block,
};
use cxl_passthrough::regs::dvsec::{
    CXL_VENDOR_ID, DVSEC_ID_FLEX_BUS, DVSEC_ID_PORT_EXTENSIONS, DVSEC_ID_PORT_GPF,
    DVSEC_ID_REGISTER_LOCATOR,
};
use cxl_passthrough::regs::pci::find_dvsec;
use cxl_passthrough::regs::reglocator::{BLOCK_ID_COMPONENT, FIRST_ENTRY, RegisterBlock};
use cxl_passthrough::rootport::config::{LinkCapabilities, PCIE_CAP_AT, PcieCapabilities, pcie};
use cxl_passthrough::rootport::{
    BarMove, ConfigWriteOutcome, CxlRootPort, DeviceBar, FlexBusBits, LinkParams, RootPortConfig,
};
use cxl_passthrough::vmm::VmDeviceMmio;
use vm_device::bus::{MmioAddress, MmioRange};
use vm_device::device_manager::{IoManager, MmioManager};

const CAP_ID_PCIE: u8 = 0x10;
const PCI_COMMAND: u64 = 0x04;
const PCI_COMMAND_MEMORY: u16 = 0x2;
const PCI_IO_BASE: u64 = 0x1C;
const PCI_PREF_MEMORY_BASE: u64 = 0x24;
const PCI_PREF_BASE_UPPER32: u64 = 0x28;
const PCI_CAPABILITY_LIST: u64 = 0x34;
const PCI_BRIDGE_CONTROL: u64 = 0x3E;

fn port() -> Arc<CxlRootPort> {
    Arc::new(
        CxlRootPort::new(&RootPortConfig {
            vendor_id: 0x1af4,
            device_id: 0x10f0,
            revision: 0,
            primary_bus: 0,
            secondary_bus: 1,
            port_number: 9,
            component_bar: 0x2_0000_0000,
            device_bars: vec![
                DeviceBar {
                    base: 0xD000_0000,
                    size: 1 << 20,
                    prefetchable: false,
                },
                DeviceBar {
                    base: 0x80_0000_0000,
                    size: 1 << 34,
                    prefetchable: true,
                },
            ],
            link: LinkParams {
                speed: 5,
                width: 16,
            },
            device_flex_bus: FlexBusBits::from_bits(0x0027),
        })
        .expect("valid root port config"),
    )
}

fn rd<const N: usize>(p: &CxlRootPort, off: u64) -> [u8; N] {
    let mut b = [0u8; N];
    p.config_read(off, &mut b);
    b
}
fn rd16(p: &CxlRootPort, off: u64) -> u16 {
    u16::from_le_bytes(rd(p, off))
}
fn rd32(p: &CxlRootPort, off: u64) -> u32 {
    u32::from_le_bytes(rd(p, off))
}

/// `__pci_read_base` for the 64-bit BAR 0: returns (address, size).
fn size_bar(p: &CxlRootPort) -> (u64, u64) {
    let cmd = rd16(p, PCI_COMMAND);
    assert_eq!(
        p.config_write(PCI_COMMAND, &(cmd & !PCI_COMMAND_MEMORY).to_le_bytes()),
        ConfigWriteOutcome::default()
    );
    let lo = rd32(p, 0x10);
    let _ = p.config_write(0x10, &[0xFF; 4]);
    let lo_mask = rd32(p, 0x10);
    let _ = p.config_write(0x10, &lo.to_le_bytes());
    let hi = rd32(p, 0x14);
    let _ = p.config_write(0x14, &[0xFF; 4]);
    let hi_mask = rd32(p, 0x14);
    let _ = p.config_write(0x14, &hi.to_le_bytes());
    assert_eq!(
        p.config_write(PCI_COMMAND, &cmd.to_le_bytes()),
        ConfigWriteOutcome::default()
    );
    assert_eq!(lo & 0x7, 0x4, "64-bit memory BAR");
    assert_eq!(lo & 0x8, 0, "non-prefetchable");
    let mask = (u64::from(hi_mask) << 32) | u64::from(lo_mask & !0xF);
    ((u64::from(hi) << 32) | u64::from(lo & !0xF), !mask + 1)
}

#[test]
fn pci_core_enumerates_a_preconfigured_bridge() {
    let p = port();
    assert_eq!(rd::<1>(&p, 0x0E)[0] & 0x7F, 1, "type-1 header");
    assert_eq!(rd32(&p, 0x08) >> 8, 0x060400);
    assert_eq!(size_bar(&p), (0x2_0000_0000, 0x1_0000));
    // Bus numbers are already assigned: Linux keeps them.
    assert_eq!(rd::<3>(&p, 0x18), [0, 1, 1]);
    // pci_read_bridge_windows: I/O probe reads back 0 -> no I/O window.
    assert_eq!(rd16(&p, PCI_IO_BASE), 0);
    let _ = p.config_write(PCI_IO_BASE, &0xE0F0u16.to_le_bytes());
    assert_eq!(rd16(&p, PCI_IO_BASE), 0);
    // Prefetchable window is present and 64-bit; the upper-32 probe reads non-zero.
    let pmem = rd32(&p, PCI_PREF_MEMORY_BASE);
    assert_ne!(pmem, 0);
    assert_eq!(pmem & 0xF, 1, "64-bit prefetchable window");
    let saved = rd32(&p, PCI_PREF_BASE_UPPER32);
    let _ = p.config_write(PCI_PREF_BASE_UPPER32, &[0xFF; 4]);
    assert_ne!(rd32(&p, PCI_PREF_BASE_UPPER32), 0);
    let _ = p.config_write(PCI_PREF_BASE_UPPER32, &saved.to_le_bytes());
    // The windows contain the device BARs.
    let w = p.windows();
    let mem = w.mem.unwrap();
    let pref = w.pref.unwrap();
    assert!(mem.base <= 0xD000_0000 && mem.end() >= 0xD010_0000 && mem.end() <= 1 << 32);
    assert!(pref.base <= 0x80_0000_0000 && pref.end() >= 0x80_0000_0000 + (1 << 34));
}

#[test]
fn cxl_dport_probe_reaches_the_component_block() {
    let p = port();
    // Classic capability list: the PCI Express capability, type Root Port.
    let at = u64::from(rd::<1>(&p, PCI_CAPABILITY_LIST)[0]);
    assert_eq!(at, u64::from(PCIE_CAP_AT));
    assert_eq!(rd::<1>(&p, at)[0], CAP_ID_PCIE);
    let caps = PcieCapabilities::from_bits(rd16(&p, at + u64::from(pcie::CAPABILITIES)));
    assert_eq!(caps.port_type(), 4);
    let port_id =
        LinkCapabilities::from_bits(rd32(&p, at + u64::from(pcie::LINK_CAP))).port_number();
    assert_eq!(port_id, 9);

    // Flex Bus status: the PCI core marks the link CXL (cache and mem bits).
    let cfg = |o: u16| Ok::<_, ()>(rd32(&p, u64::from(o)));
    let fb = find_dvsec(cfg, CXL_VENDOR_ID, DVSEC_ID_FLEX_BUS)
        .unwrap()
        .unwrap();
    let status = FlexBusBits::from_bits(rd16(&p, u64::from(fb.offset) + 0x0E));
    assert!(status.mem() && status.cache());

    // Register Locator -> BAR 0 -> component block.
    let rl = find_dvsec(cfg, CXL_VENDOR_ID, DVSEC_ID_REGISTER_LOCATOR)
        .unwrap()
        .unwrap();
    let n = RegisterBlock::count(rl.length);
    let blocks: Vec<_> = (0..n)
        .map(|k| {
            let e = u64::from(rl.offset + FIRST_ENTRY + 8 * k);
            RegisterBlock::decode(rd32(&p, e), rd32(&p, e + 4))
        })
        .collect();
    let comp = blocks
        .iter()
        .find(|b| b.block_id == BLOCK_ID_COMPONENT)
        .expect("component block entry");
    let (bar_addr, bar_len) = size_bar(&p);
    assert_eq!(comp.bar, 0);
    assert!(
        comp.offset < bar_len,
        "Linux rejects an offset past the BAR"
    );

    // The VMM registers the port's MMIO handler at the BAR (vm-device's bus through the
    // facade's adapter); the guest maps the block.
    let handler = Arc::new(VmDeviceMmio(p.clone()));
    let mut io = IoManager::new();
    io.register_mmio(
        MmioRange::new(MmioAddress(bar_addr), CxlRootPort::BAR_SIZE).unwrap(),
        handler.clone(),
    )
    .unwrap();
    let block = bar_addr + comp.offset;
    let read = |o: u64| {
        let mut b = [0u8; 4];
        io.mmio_read(MmioAddress(block + o), &mut b).unwrap();
        Ok::<_, ()>(u32::from_le_bytes(b))
    };
    let hdr = CmCapHeader::from_bits(read(CM_OFFSET).unwrap());
    assert_eq!(hdr.cap_id(), 1);
    let ids: Vec<u16> = (1..=u64::from(hdr.array_size()))
        .map(|i| CmCapEntry::from_bits(read(CM_OFFSET + 4 * i).unwrap()).cap_id())
        .collect();
    assert_eq!(ids, [CAP_ID_RAS]);
    assert_eq!(
        find_hdm_block(read, CM_OFFSET, CxlRootPort::BAR_SIZE),
        Err(WalkError::NoHdm),
        "root-port HDM decoders are not emulated (Linux never uses them)"
    );

    // Writes to the block do not change it.
    io.mmio_write(MmioAddress(block + CM_OFFSET), &[0; 4])
        .unwrap();
    assert_eq!(read(CM_OFFSET).unwrap(), hdr.into_bits());

    // The guest relocates the BAR: the VMM is told and re-registers.
    let mv = p.config_write(0x14, &3u32.to_le_bytes()).bar_move.unwrap();
    assert_eq!(
        mv,
        BarMove {
            from: bar_addr,
            to: 0x3_0000_0000
        }
    );
    io.deregister_mmio(MmioAddress(mv.from)).unwrap();
    io.register_mmio(
        MmioRange::new(MmioAddress(mv.to), CxlRootPort::BAR_SIZE).unwrap(),
        handler,
    )
    .unwrap();
    let mut b = [0u8; 4];
    io.mmio_read(MmioAddress(mv.to + CM_OFFSET), &mut b)
        .unwrap();
    assert_eq!(u32::from_le_bytes(b), hdr.into_bits());
}

#[test]
fn linux_7_3_gpf_programming_and_cxl_bus_reset() {
    let p = port();
    let cfg = |o: u16| Ok::<_, ()>(rd32(&p, u64::from(o)));
    let gpf = find_dvsec(cfg, CXL_VENDOR_ID, DVSEC_ID_PORT_GPF)
        .unwrap()
        .unwrap();
    // update_gpf_port_dvsec: base 2, scale 4 (20 ms) for both phases.
    for reg in [0x0C_u64, 0x0E] {
        let off = u64::from(gpf.offset) + reg;
        let _ = p.config_write(off, &0x0402u16.to_le_bytes());
        assert_eq!(rd16(&p, off), 0x0402);
    }
    // cxl_reset_bus_function: set Unmask SBR (read back, else cxl_sbr_masked() and
    // ENOTTY: lab finding 13), pci_reset_secondary_bus: assert SBR (reported to the
    // VMM once), wait, deassert; then restore Port Control.
    let ext = find_dvsec(cfg, CXL_VENDOR_ID, DVSEC_ID_PORT_EXTENSIONS)
        .unwrap()
        .unwrap();
    let ctl = u64::from(ext.offset) + 0x0C;
    let reg = rd16(&p, ctl);
    assert_eq!(reg & 1, 0, "SBR masked at reset");
    let _ = p.config_write(ctl, &(reg | 1).to_le_bytes());
    assert_eq!(rd16(&p, ctl), 1, "Unmask SBR reads back");
    let bc = rd16(&p, PCI_BRIDGE_CONTROL);
    let out = p.config_write(PCI_BRIDGE_CONTROL, &(bc | 0x40).to_le_bytes());
    assert!(out.secondary_bus_reset && out.bar_move.is_none(), "{out:?}");
    let out = p.config_write(PCI_BRIDGE_CONTROL, &bc.to_le_bytes());
    assert_eq!(out, ConfigWriteOutcome::default());
    let _ = p.config_write(ctl, &reg.to_le_bytes());
    assert_eq!(rd16(&p, ctl), 0);
}
