//! The emulated devices a guest talks to directly: the host-bridge CHBCR (cxl-acpi) and
//! the CXL root port (config space and component block). Arbitrary guest access
//! sequences of any size, alignment and offset. Invariants: no panic; the CHBCR's
//! committed, locked decoder reads the same before and after; the root port's identity,
//! bus numbers and PCIe capability header are unchanged.
#![no_main]

use cxl_acpi::{Chbcr, ChbcrConfig, CommittedDecoder, Granularity};
use cxl_passthrough::rootport::{CxlRootPort, DeviceBar, FlexBusBits, LinkParams, RootPortConfig};
use libfuzzer_sys::fuzz_target;

fn snapshot_chbcr(c: &Chbcr) -> Vec<u32> {
    (0x1000..0x1100u64)
        .step_by(4)
        .map(|o| c.read_dword(o))
        .collect()
}

fn snapshot_port(p: &CxlRootPort) -> Vec<u8> {
    let mut out = Vec::new();
    for off in [0x00u64, 0x08, 0x18, 0x34] {
        let mut b = [0u8; 4];
        p.config_read(off, &mut b);
        out.extend_from_slice(&b);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let decoder = CommittedDecoder {
        base: 0x40_0000_0000,
        size: 512 << 20,
        granularity: Granularity::B256,
        target_port: 3,
    };
    let Ok(mut chbcr) = Chbcr::new(ChbcrConfig::Committed(decoder)) else {
        return;
    };
    let cfg = RootPortConfig {
        vendor_id: 0x1234,
        device_id: 0x5678,
        revision: 1,
        primary_bus: 0,
        secondary_bus: 1,
        port_number: 3,
        component_bar: 0xE000_0000,
        device_bars: vec![
            DeviceBar {
                base: 0xC000_0000,
                size: 16 << 20,
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
    };
    let Ok(port) = CxlRootPort::new(&cfg) else {
        return;
    };
    let chbcr_before = snapshot_chbcr(&chbcr);
    let port_before = snapshot_port(&port);
    // Each op: [target/kind, len, offset (3 bytes), value (8 bytes)].
    for op in data.chunks_exact(13) {
        let len = usize::from(op[1] % 17);
        let mut offset = u64::from(u32::from_le_bytes([op[2], op[3], op[4], 0]));
        if op[0] & 0x40 != 0 {
            offset = u64::MAX - offset;
        }
        let mut buf = op[5..13].to_vec();
        buf.resize(len, 0xA5);
        match (op[0] & 3, op[0] & 4 != 0) {
            (0, false) => chbcr.read(offset, &mut buf),
            (0, true) => chbcr.write(offset, &buf),
            (1, false) => port.config_read(offset, &mut buf),
            (1, true) => {
                let _ = port.config_write(offset, &buf);
            }
            (_, false) => port.component_read(offset, &mut buf),
            (_, true) => port.component_write(offset, &buf),
        }
    }
    assert_eq!(
        snapshot_chbcr(&chbcr),
        chbcr_before,
        "CHBCR registers changed"
    );
    assert_eq!(
        snapshot_port(&port),
        port_before,
        "root port identity/bus numbers changed"
    );
});
