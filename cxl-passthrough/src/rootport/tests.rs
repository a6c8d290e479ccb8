//! Unit tests of the root port model: configuration reads against the spec tables,
//! hostile writes, BAR sizing and relocation, the component block.

use proptest::prelude::*;

use super::config::*;
use super::dvsec::{self, GPF_AT, PORT_EXT_AT};
use super::*;
use crate::regs::bridge::*;
use crate::regs::component::CM_OFFSET;
use crate::regs::dvsec::{
    CXL_VENDOR_ID, DVSEC_ID_FLEX_BUS, DVSEC_ID_PORT_EXTENSIONS, DVSEC_ID_PORT_GPF,
    DVSEC_ID_REGISTER_LOCATOR,
};
use crate::regs::pci::{CONFIG_SPACE_SIZE, find_dvsec};
use crate::regs::port_dvsec::{FlexBusBits, gpf, port_ext};
use crate::regs::reglocator::{BLOCK_ID_COMPONENT, FIRST_ENTRY, RegisterBlock};

const BAR: u64 = 0xE000_0000;

fn cfg() -> RootPortConfig {
    RootPortConfig {
        vendor_id: 0x1234,
        device_id: 0x5678,
        revision: 1,
        primary_bus: 0,
        secondary_bus: 1,
        port_number: 3,
        component_bar: BAR,
        device_bars: vec![
            DeviceBar {
                base: 0xC000_0000,
                size: 16 << 20,
                prefetchable: false,
            },
            DeviceBar {
                base: 0xC100_0000,
                size: 64 << 10,
                prefetchable: false,
            },
            DeviceBar {
                base: 0x40_0000_0000,
                size: 8 << 30,
                prefetchable: true,
            },
        ],
        link: LinkParams {
            speed: 5,
            width: 16,
        },
        device_flex_bus: FlexBusBits::from_bits(0x0027),
    }
}

fn port() -> CxlRootPort {
    CxlRootPort::new(&cfg()).unwrap()
}

fn r32(p: &CxlRootPort, off: u16) -> u32 {
    let mut b = [0u8; 4];
    p.config_read(u64::from(off), &mut b);
    u32::from_le_bytes(b)
}

fn r16(p: &CxlRootPort, off: u16) -> u16 {
    let mut b = [0u8; 2];
    p.config_read(u64::from(off), &mut b);
    u16::from_le_bytes(b)
}

fn r8(p: &CxlRootPort, off: u16) -> u8 {
    let mut b = [0u8; 1];
    p.config_read(u64::from(off), &mut b);
    b[0]
}

fn snapshot(p: &CxlRootPort) -> Vec<u8> {
    let mut v = vec![0u8; usize::from(CONFIG_SPACE_SIZE)];
    p.config_read(0, &mut v);
    v
}

#[test]
fn type1_header_matches_the_spec_table() {
    let p = port();
    assert_eq!(r32(&p, 0x00), 0x5678_1234);
    assert_eq!(
        r16(&p, 0x04),
        0x0006,
        "memory + bus master, as firmware leaves it"
    );
    assert_eq!(r16(&p, 0x06) & 0x0010, 0x0010, "capability list");
    assert_eq!(r32(&p, 0x08), 0x0604_0001, "class 060400, revision 1");
    assert_eq!(r8(&p, 0x0E), 0x01, "type-1 header, single function");
    assert_eq!(r32(&p, 0x10), 0xE000_0004, "64-bit memory BAR");
    assert_eq!(r32(&p, 0x14), 0);
    assert_eq!(
        [r8(&p, 0x18), r8(&p, 0x19), r8(&p, 0x1A)],
        [0, 1, 1],
        "primary 0, secondary = subordinate = 1"
    );
    assert_eq!(r16(&p, 0x1C), 0, "no I/O window");
    // Non-prefetchable window [0xC000_0000, 0xC110_0000): 1 MiB rounded.
    assert_eq!(r16(&p, 0x20), 0xC000);
    assert_eq!(r16(&p, 0x22), 0xC100);
    // Prefetchable window [0x40_0000_0000, 0x42_0000_0000), 64-bit.
    assert_eq!(r16(&p, 0x24), 0x0001);
    assert_eq!(r16(&p, 0x26), 0xFFF1);
    assert_eq!(r32(&p, 0x28), 0x40);
    assert_eq!(r32(&p, 0x2C), 0x41);
    assert_eq!(r8(&p, 0x34), 0x40);
    assert_eq!(r32(&p, 0x38), 0, "no expansion ROM");
    assert_eq!(r8(&p, 0x3D), 0, "no INTx pin");
    assert_eq!(
        p.windows(),
        BridgeWindows {
            mem: Some(AddrRange {
                base: 0xC000_0000,
                size: 0x110_0000
            }),
            pref: Some(AddrRange {
                base: 0x40_0000_0000,
                size: 8 << 30
            }),
        }
    );
}

#[test]
fn pcie_capability_is_a_root_port_with_the_port_number() {
    let p = port();
    let at = u16::from(r8(&p, 0x34));
    assert_eq!(r8(&p, at), 0x10, "PCI Express capability ID");
    assert_eq!(r8(&p, at + 1), 0, "last capability");
    let caps = PcieCapabilities::from_bits(r16(&p, at + pcie::CAPABILITIES));
    assert_eq!(caps.port_type(), 4, "Root Port");
    assert_eq!(caps.version(), 2);
    assert!(!caps.slot_implemented());
    let lcap = LinkCapabilities::from_bits(r32(&p, at + pcie::LINK_CAP));
    assert_eq!(lcap.port_number(), 3);
    assert_eq!((lcap.max_speed(), lcap.max_width()), (5, 16));
    assert!(lcap.dll_active_reporting());
    let lsta = LinkStatus::from_bits(r16(&p, at + pcie::LINK_STATUS));
    assert!(lsta.dll_active() && !lsta.training());
    assert_eq!((lsta.speed(), lsta.width()), (5, 16));
    assert_eq!(r32(&p, at + pcie::LINK_CAP2), 0b11_1110, "2.5..32 GT/s");
    assert_eq!(p.port_number(), 3);
}

#[test]
fn guest_dvsec_walk_finds_the_four_port_dvsecs() {
    let p = port();
    let rd = |o: u16| Ok::<_, ()>(r32(&p, o));
    let find = |id| find_dvsec(rd, CXL_VENDOR_ID, id).unwrap().unwrap();
    let fb = find(DVSEC_ID_FLEX_BUS);
    assert_eq!((fb.revision, fb.length), (2, 0x20));
    let ext = find(DVSEC_ID_PORT_EXTENSIONS);
    assert_eq!((ext.revision, ext.length), (0, 0x28));
    let g = find(DVSEC_ID_PORT_GPF);
    assert_eq!((g.revision, g.length), (0, 0x10));
    let rl = find(DVSEC_ID_REGISTER_LOCATOR);
    assert_eq!((rl.revision, rl.length), (0, 0x14));

    // Flex Bus: the Type-2 link (cache, io, mem, 68B/VH) in capability, control, status.
    for reg in [0x0A, 0x0C, 0x0E] {
        assert_eq!(r16(&p, fb.offset + reg), 0x0027);
    }
    // Port Extensions: all zero (SBR masked, no alternate ranges, no RCRB).
    for o in (ext.offset + 0x0A..ext.offset + ext.length).step_by(2) {
        assert_eq!(r16(&p, o), 0, "port extensions {o:#x}");
    }
    // Register Locator: one entry, component block at BAR 0 offset 0.
    assert_eq!(RegisterBlock::count(rl.length), 1);
    let e = RegisterBlock::decode(
        r32(&p, rl.offset + FIRST_ENTRY),
        r32(&p, rl.offset + FIRST_ENTRY + 4),
    );
    assert_eq!(
        e,
        RegisterBlock {
            bar: 0,
            block_id: BLOCK_ID_COMPONENT,
            offset: 0
        }
    );
}

#[test]
fn flex_bus_shows_what_the_device_negotiated() {
    let mut c = cfg();
    c.device_flex_bus = FlexBusBits::new().with_io(true).with_mem(true);
    let p = CxlRootPort::new(&c).unwrap();
    assert_eq!(r16(&p, dvsec::FLEX_BUS_AT + 0x0E), 0x0006, "no CXL.cache");
}

#[test]
fn gpf_phase_controls_and_unmask_sbr_are_guest_writable_and_nothing_else_in_the_dvsecs() {
    let p = port();
    let before = snapshot(&p);
    let _ = p.config_write(u64::from(GPF_AT + gpf::PHASE1_CONTROL), &[0xFF, 0xFF]);
    let _ = p.config_write(
        u64::from(GPF_AT + gpf::PHASE2_CONTROL),
        &0x0305u16.to_le_bytes(),
    );
    assert_eq!(r16(&p, GPF_AT + gpf::PHASE1_CONTROL), 0x0F0F);
    assert_eq!(r16(&p, GPF_AT + gpf::PHASE2_CONTROL), 0x0305);
    // Everything else in extended space ignores all-ones writes.
    for o in (0x100u64..0x1000).step_by(4) {
        let _ = p.config_write(o, &[0xFF; 4]);
    }
    let after = snapshot(&p);
    let port_ctl = usize::from(PORT_EXT_AT + port_ext::CONTROL);
    assert_eq!(
        after[port_ctl..port_ctl + 2],
        [0x01, 0x00],
        "only Unmask SBR"
    );
    for (o, (b, a)) in before.iter().zip(&after).enumerate() {
        let gpf_ctl = (usize::from(GPF_AT) + 0x0C..usize::from(GPF_AT) + 0x10).contains(&o);
        if !gpf_ctl && o != port_ctl {
            assert_eq!(b, a, "byte {o:#x} changed");
        }
    }
}

/// Linux's `cxl_bus` reset: read Port Control, set Unmask SBR (it must read back, or
/// `cxl_sbr_masked()` holds and the reset fails with ENOTTY), assert SBR, deassert,
/// restore Port Control.
#[test]
fn unmask_sbr_reads_back_and_an_unmasked_sbr_is_reported_once() {
    let p = port();
    let ctl = PORT_EXT_AT + port_ext::CONTROL;
    assert_eq!(r16(&p, ctl), 0, "SBR masked at reset");
    let bc = r16(&p, BRIDGE_CONTROL);
    let assert_sbr = (bc | BRIDGE_CONTROL_SBR).to_le_bytes();
    // Masked: the SBR bit is stored, but the device below is not reset.
    assert_eq!(
        p.config_write(u64::from(BRIDGE_CONTROL), &assert_sbr),
        ConfigWriteOutcome::default()
    );
    assert_eq!(
        r16(&p, BRIDGE_CONTROL) & BRIDGE_CONTROL_SBR,
        BRIDGE_CONTROL_SBR
    );
    let _ = p.config_write(u64::from(BRIDGE_CONTROL), &bc.to_le_bytes());

    let _ = p.config_write(u64::from(ctl), &0xFFFFu16.to_le_bytes());
    assert_eq!(r16(&p, ctl), port_ext::CONTROL_UNMASK_SBR);
    let out = p.config_write(u64::from(BRIDGE_CONTROL), &assert_sbr);
    assert!(out.secondary_bus_reset && out.bar_move.is_none(), "{out:?}");
    // Held asserted (a byte write of the same value): no second reset.
    let out = p.config_write(u64::from(BRIDGE_CONTROL), &assert_sbr[..1]);
    assert_eq!(out, ConfigWriteOutcome::default());
    let out = p.config_write(u64::from(BRIDGE_CONTROL) + 1, &assert_sbr[1..]);
    assert_eq!(out, ConfigWriteOutcome::default());
    let out = p.config_write(u64::from(BRIDGE_CONTROL), &bc.to_le_bytes());
    assert_eq!(out, ConfigWriteOutcome::default());
    assert_eq!(r16(&p, BRIDGE_CONTROL), bc);
    // Linux restores Port Control; SBR is masked again.
    let _ = p.config_write(u64::from(ctl), &0u16.to_le_bytes());
    assert_eq!(r16(&p, ctl), 0);
    assert_eq!(
        p.config_write(u64::from(BRIDGE_CONTROL), &assert_sbr),
        ConfigWriteOutcome::default()
    );
}

/// One write can move the component block and assert SBR at once.
#[test]
fn one_write_reports_a_bar_move_and_a_secondary_bus_reset() {
    let p = port();
    let ctl = PORT_EXT_AT + port_ext::CONTROL;
    let _ = p.config_write(u64::from(ctl), &port_ext::CONTROL_UNMASK_SBR.to_le_bytes());
    // 0x10..0x40 as the port holds it, with BAR 0 high = 1 and SBR set.
    let mut img = [0u8; 0x30];
    p.config_read(0x10, &mut img);
    img[4..8].copy_from_slice(&1u32.to_le_bytes());
    img[0x2F] |= (BRIDGE_CONTROL_SBR >> 8) as u8;
    img[0x2E] |= BRIDGE_CONTROL_SBR as u8;
    let out = p.config_write(0x10, &img);
    assert_eq!(
        out,
        ConfigWriteOutcome {
            bar_move: Some(BarMove {
                from: BAR,
                to: 0x1_E000_0000
            }),
            secondary_bus_reset: true,
        }
    );
}

#[test]
fn host_owned_header_registers_ignore_writes() {
    let p = port();
    let before = snapshot(&p);
    for o in [
        0x00u64, 0x08, 0x18, 0x1C, 0x20, 0x24, 0x28, 0x2C, 0x30, 0x34, 0x38,
    ] {
        let _ = p.config_write(o, &[0xFF; 4]);
        let _ = p.config_write(o, &[0x00; 4]);
    }
    // PCIe capability: link capabilities (port number) and status, device caps.
    for o in [0x40u64, 0x44, 0x4C, 0x52, 0x6C] {
        let _ = p.config_write(o, &[0x5A; 4]);
    }
    let after = snapshot(&p);
    assert_eq!(before[..0x3C], after[..0x3C]);
    assert_eq!(before[0x40..0x48], after[0x40..0x48]);
    assert_eq!(before[0x4C..0x50], after[0x4C..0x50]);
    assert_eq!(before[0x52..0x54], after[0x52..0x54]);
    assert!(p.stats.ignored_config_writes.load(Ordering::Relaxed) > 0);
    // The Linux 64-bit prefetchable window probe reads back the configured value.
    assert_eq!(r32(&p, PREF_BASE_UPPER), 0x40);
}

#[test]
fn guest_owned_bits_read_back() {
    let p = port();
    let _ = p.config_write(u64::from(COMMAND), &0xFFFFu16.to_le_bytes());
    assert_eq!(r16(&p, COMMAND), COMMAND_WRITABLE);
    let _ = p.config_write(u64::from(BRIDGE_CONTROL), &0xFFFFu16.to_le_bytes());
    assert_eq!(r16(&p, BRIDGE_CONTROL), BRIDGE_CONTROL_WRITABLE);
    let _ = p.config_write(u64::from(INTERRUPT_LINE), &[0x0B]);
    assert_eq!(r8(&p, INTERRUPT_LINE), 0x0B);
    let dc = PCIE_CAP_AT + pcie::DEVICE_CONTROL;
    let _ = p.config_write(u64::from(dc), &0xFFFFu16.to_le_bytes());
    assert_eq!(r16(&p, dc), pcie::DEVICE_CONTROL_WRITABLE);
    // Retrain Link and Link Disable are host-owned and read 0.
    let lc = PCIE_CAP_AT + pcie::LINK_CONTROL;
    let _ = p.config_write(u64::from(lc), &0xFFFFu16.to_le_bytes());
    assert_eq!(r16(&p, lc), pcie::LINK_CONTROL_WRITABLE);
}

#[test]
fn bar_sizing_reports_64_kib_and_does_not_move_the_block() {
    let p = port();
    // Linux: disable decoding, size both halves, restore, re-enable.
    let cmd = r16(&p, COMMAND);
    assert_eq!(
        p.config_write(u64::from(COMMAND), &(cmd & !COMMAND_MEMORY).to_le_bytes()),
        ConfigWriteOutcome::default()
    );
    assert_eq!(
        p.config_write(0x10, &[0xFF; 4]),
        ConfigWriteOutcome::default()
    );
    assert_eq!(r32(&p, 0x10), 0xFFFF_0004, "size 64 KiB, 64-bit memory");
    assert_eq!(
        p.config_write(0x10, &0xE000_0000u32.to_le_bytes()),
        ConfigWriteOutcome::default()
    );
    assert_eq!(
        p.config_write(0x14, &[0xFF; 4]),
        ConfigWriteOutcome::default()
    );
    assert_eq!(r32(&p, 0x14), 0xFFFF_FFFF);
    assert_eq!(p.config_write(0x14, &[0; 4]), ConfigWriteOutcome::default());
    assert_eq!(
        p.config_write(u64::from(COMMAND), &cmd.to_le_bytes()),
        ConfigWriteOutcome::default()
    );
    assert_eq!(p.component_block_address(), BAR);
    // Sizing with decoding left on does not move it either.
    assert_eq!(
        p.config_write(0x10, &[0xFF; 4]),
        ConfigWriteOutcome::default()
    );
    assert_eq!(
        p.config_write(0x10, &0xE000_0000u32.to_le_bytes()),
        ConfigWriteOutcome::default()
    );
}

#[test]
fn bar_relocation_is_reported_once() {
    let p = port();
    let mv = p.config_write(0x14, &1u32.to_le_bytes()).bar_move;
    assert_eq!(
        mv,
        Some(BarMove {
            from: BAR,
            to: 0x1_E000_0000
        })
    );
    assert_eq!(p.component_block_address(), 0x1_E000_0000);
    assert_eq!(
        p.config_write(0x14, &1u32.to_le_bytes()),
        ConfigWriteOutcome::default()
    );
}

/// The component block as a VMM's bus sees it, through the facade's [`MmioHandler`].
#[test]
fn component_block_through_mmio_handler() {
    use crate::vmm::MmioHandler;
    let p = port();
    let h: &dyn MmioHandler = &p;
    let mut b = [0u8; 4];
    h.read(CM_OFFSET, &mut b);
    assert_eq!(u32::from_le_bytes(b), 0x0111_0001, "cap header, 1 entry");
    h.write(CM_OFFSET, &[0; 4]);
    h.read(CM_OFFSET, &mut b);
    assert_eq!(u32::from_le_bytes(b), 0x0111_0001, "writes ignored");
    assert_eq!(p.stats.ignored_mmio_writes.load(Ordering::Relaxed), 1);
    // Memory decoding off: the block reads all-ones.
    let _ = p.config_write(u64::from(COMMAND), &[0; 2]);
    h.read(CM_OFFSET, &mut b);
    assert_eq!(b, [0xFF; 4]);
}

/// The same through rust-vmm vm-device's `DeviceMmio` (the `vm-device` feature), via the
/// facade's `VmDeviceMmio` adapter.
#[cfg(feature = "vm-device")]
#[test]
fn component_block_through_vm_device() {
    use vm_device::DeviceMmio;
    use vm_device::bus::MmioAddress;
    let p = std::sync::Arc::new(port());
    let dev = crate::vmm::VmDeviceMmio(p.clone());
    let mut b = [0u8; 4];
    dev.mmio_read(MmioAddress(BAR), CM_OFFSET, &mut b);
    assert_eq!(u32::from_le_bytes(b), 0x0111_0001, "cap header, 1 entry");
    dev.mmio_write(MmioAddress(BAR), CM_OFFSET, &[0; 4]);
    assert_eq!(p.stats.ignored_mmio_writes.load(Ordering::Relaxed), 1);
}

#[test]
fn config_validation() {
    let bad = |f: &dyn Fn(&mut RootPortConfig)| {
        let mut c = cfg();
        f(&mut c);
        CxlRootPort::new(&c).unwrap_err()
    };
    assert!(matches!(
        bad(&|c| c.secondary_bus = 0),
        RootPortError::BusNumbers { .. }
    ));
    assert!(matches!(
        bad(&|c| c.link.speed = 7),
        RootPortError::Link { .. }
    ));
    assert!(matches!(
        bad(&|c| c.link.width = 3),
        RootPortError::Link { .. }
    ));
    assert_eq!(
        bad(&|c| c.component_bar = BAR + 0x1000),
        RootPortError::ComponentBar(BAR + 0x1000)
    );
    assert_eq!(
        bad(&|c| c.component_bar = 0),
        RootPortError::ComponentBar(0)
    );
    assert!(matches!(
        bad(&|c| c.component_bar = 0xC080_0000),
        RootPortError::ComponentBarInWindow { .. }
    ));
    assert!(matches!(
        bad(&|c| c.device_bars[0].base = 0x1_0000_0000),
        RootPortError::NonPrefetchableAbove4G { .. }
    ));
    assert!(matches!(
        bad(&|c| c.device_bars[1].size = 0),
        RootPortError::DeviceBar { .. }
    ));
    assert!(matches!(
        bad(&|c| c.device_bars[2].base = u64::MAX - 0x1000),
        RootPortError::DeviceBar { .. }
    ));
    assert!(matches!(
        bad(&|c| c.device_bars[2] = DeviceBar {
            base: 0xC080_0000,
            size: 4096,
            prefetchable: true
        }),
        RootPortError::WindowsOverlap { .. }
    ));
    // No prefetchable BAR: the window reads disabled (base above limit).
    let mut c = cfg();
    c.device_bars.truncate(2);
    let p = CxlRootPort::new(&c).unwrap();
    assert_eq!(p.windows().pref, None);
    let base = u32::from(r16(&p, 0x24) & 0xFFF0) << 16;
    let limit = u32::from(r16(&p, 0x26) & 0xFFF0) << 16 | 0xF_FFFF;
    assert!(base > limit && r32(&p, 0x28) == 0 && r32(&p, 0x2C) == 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any write of any size at any offset changes only guest-writable bits and never
    /// panics; reads of any size at any offset never panic.
    #[test]
    fn hostile_config_writes(writes in proptest::collection::vec(
        (0u64..0x1100, proptest::collection::vec(any::<u8>(), 0..12)), 1..64),
        far in any::<u64>()
    ) {
        let p = port();
        let before = snapshot(&p);
        for (o, data) in &writes {
            let _ = p.config_write(*o, data);
            let mut out = vec![0u8; data.len()];
            p.config_read(*o, &mut out);
        }
        let _ = p.config_write(far, &[0xAA; 8]);
        let mut out = [0u8; 8];
        p.config_read(far, &mut out);
        let after = snapshot(&p);
        let wm = port_wmask();
        for (o, ((b, a), m)) in before.iter().zip(&after).zip(&wm).enumerate() {
            prop_assert_eq!(b & !m, a & !m, "host-owned bits of byte {:#x} changed", o);
        }
        p.config_read(0x1000, &mut out);
        prop_assert_eq!(out, [0xFF; 8]);
        prop_assert_eq!(p.port_number(), 3);
        prop_assert_eq!(r8(&p, 0x19), 1);
        prop_assert_eq!(LinkCapabilities::from_bits(r32(&p, PCIE_CAP_AT + pcie::LINK_CAP)).port_number(), 3);
    }
}

/// The write mask of the port, measured through the guest interface: a bit is
/// writable iff writing its complement changes it.
fn port_wmask() -> Vec<u8> {
    let p = port();
    let base = snapshot(&p);
    (0..usize::from(CONFIG_SPACE_SIZE))
        .map(|o| {
            let _ = p.config_write(o as u64, &[!base[o]]);
            let mut b = [0u8];
            p.config_read(o as u64, &mut b);
            let _ = p.config_write(o as u64, &[base[o]]);
            b[0] ^ base[o]
        })
        .collect()
}

#[test]
fn write_mask_is_exactly_the_documented_guest_owned_set() {
    let m = port_wmask();
    let writable: Vec<usize> = (0..m.len()).filter(|o| m[*o] != 0).collect();
    let expected: Vec<usize> = [
        0x04..0x06,   // Command
        0x0C..0x0D,   // Cache Line Size
        0x12..0x18,   // BAR 0 address bits 31:16, BAR 1
        0x3C..0x3D,   // Interrupt Line
        0x3E..0x3F,   // Bridge Control (low byte: parity, SERR, SBR)
        0x48..0x4A,   // Device Control
        0x50..0x51,   // Link Control
        0x5C..0x5D,   // Root Control
        0x12C..0x12D, // Port Control Extensions (Unmask SBR)
        0x154..0x158, // GPF phase 1/2 control
    ]
    .into_iter()
    .flatten()
    .collect();
    assert_eq!(writable, expected);
}
