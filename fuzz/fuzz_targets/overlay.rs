//! Overlay fuzzing against the simulator: a booted device (v2 or v3, any topology)
//! receives an arbitrary sequence of guest MMIO reads and writes on its component block.
//! Invariants: no panic; decoder 0 stays committed and locked at the window in the
//! kernel's shadow; accesses the overlay must drop (misaligned, odd sizes, outside the
//! region) never reach the backend.
#![no_main]

use std::sync::Arc;

use cxl_passthrough::backend::sim::{SimConfig, SimDevice, SimRevision, Topology};
use cxl_passthrough::plan::Window;
use cxl_passthrough::runtime::CxlDevice;
use cxl_passthrough::runtime::probe::probe;
use cxl_passthrough::uapi::RevisionChoice;
use libfuzzer_sys::fuzz_target;

const BASE: u64 = 0x40_0000_0000;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let rev = if sel & 1 == 0 {
        SimRevision::V2
    } else {
        SimRevision::V3
    };
    let topology = [Topology::End, Topology::Start, Topology::Middle][usize::from(sel >> 1) % 3];
    let Ok(sim) = SimDevice::new(SimConfig {
        topology,
        ..SimConfig::new(rev)
    }) else {
        return;
    };
    let sim = Arc::new(sim);
    let Ok(desc) = probe(sim.as_ref(), RevisionChoice::Auto, 4096) else {
        return;
    };
    let window = Window {
        base: BASE,
        size: desc.dpa.size,
    };
    let Ok(dev) = CxlDevice::new(sim.clone(), desc.clone(), window, 4096) else {
        return;
    };
    if dev.boot().is_err() {
        return;
    }
    let ov = dev.overlay();
    let region = desc.comp_regs_base_in_block..desc.comp_regs_base_in_block + desc.comp_regs.size;
    // Each op: [kind, len, offset (2 bytes, block-relative or wild), value (8 bytes)].
    while rest.len() >= 12 {
        let (op, tail) = rest.split_at(12);
        rest = tail;
        let len = usize::from(op[1] % 17);
        let raw = u64::from(u16::from_le_bytes([op[2], op[3]]));
        let offset = if op[0] & 0x80 != 0 { raw << 8 } else { raw };
        let mut buf = op[4..12].to_vec();
        buf.resize(len, 0);
        let before = sim.stats();
        let legal = matches!(len, 4 | 8)
            && offset % len as u64 == 0
            && offset >= region.start
            && offset + len as u64 <= region.end;
        if op[0] & 1 == 0 {
            ov.read(offset, &mut buf);
        } else {
            ov.write(offset, &buf);
            if !legal {
                assert_eq!(
                    sim.stats().comp_regs_writes,
                    before.comp_regs_writes,
                    "dropped write reached the backend"
                );
            }
        }
    }
    let d = dev.decoder0().expect("decoder readable");
    assert!(
        d.committed && d.locked && d.base == BASE,
        "locked decoder moved: {d:?}"
    );
});
