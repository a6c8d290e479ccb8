//! Overlay fuzzing against the simulator: a booted device (v2, v3 or v4, BAR layout A, B or C)
//! receives an arbitrary sequence of guest MMIO reads and writes on its component block.
//! Invariants: no panic; decoder 0 stays committed and locked at the window, with HDM
//! decoding enabled, in the kernel's shadow (v4: in the VMM's own view); accesses the overlay must drop (misaligned, odd sizes, outside the
//! region) never reach the backend.
//!
//! Input: `[config selector, (op: 12 bytes)*]`; `sel % 3` picks the revision,
//! `(sel / 3) % 3` the BAR layout.
//!
//! Each of the nine configurations is built and booted once per process (a `SimDevice`,
//! probe, `CxlDevice::boot`), and its post-boot state saved with `SimDevice::snapshot`.
//! Every input starts with `SimDevice::restore`, which returns the device to exactly
//! that state (`tests/sim_snapshot.rs` proves it), so inputs cannot see each other's
//! writes and a crash reproduces from its input alone. The `CxlDevice` is kept: guest
//! accesses change only its overlay's counters and log rate limiters, never what the
//! overlay does (decoder protection and fencing change only at boot and reset). On v4 the
//! guest-visible decoder block is the `CxlDevice`'s own view, which the restore does not
//! reach: every v4 input boots the device again, which seeds the view from the restored
//! device and locks it, so v4 inputs cannot see each other's writes either.
#![no_main]

use std::cell::OnceCell;
use std::ops::Range;
use std::sync::Arc;

use cxl_passthrough::backend::sim::{BarLayout, SimConfig, SimDevice, SimSnapshot};
use cxl_passthrough::plan::Window;
use cxl_passthrough::runtime::CxlDevice;
use cxl_passthrough::runtime::probe::probe;
use cxl_passthrough::uapi::RevisionChoice;
use cxl_passthrough::uapi::UapiRevision;
use libfuzzer_sys::fuzz_target;

const BASE: u64 = 0x40_0000_0000;

/// One booted configuration.
struct Rig {
    sim: Arc<SimDevice>,
    /// The post-boot state every input starts from.
    booted: SimSnapshot,
    dev: CxlDevice,
    /// The COMP_REGS region in component-block offsets.
    region: Range<u64>,
}

impl Rig {
    fn build(sel: usize) -> Option<Rig> {
        let rev = UapiRevision::ALL[sel % 3];
        let bar_layout = [BarLayout::End, BarLayout::Start, BarLayout::Middle][sel / 3];
        let sim = Arc::new(
            SimDevice::new(SimConfig {
                bar_layout,
                ..SimConfig::new(rev)
            })
            .ok()?,
        );
        let desc = probe(sim.as_ref(), RevisionChoice::Auto, 4096).ok()?;
        let window = Window {
            base: BASE,
            size: desc.dpa.size,
        };
        let region =
            desc.comp_regs_base_in_block..desc.comp_regs_base_in_block + desc.comp_regs.size;
        let dev = CxlDevice::new(sim.clone(), desc, window, 4096).ok()?;
        dev.boot().ok()?;
        let booted = sim.snapshot().ok()?;
        Some(Rig {
            sim,
            booted,
            dev,
            region,
        })
    }
}

thread_local! {
    /// Rigs by configuration (`rev + 3 * bar_layout`), built on first use.
    static RIGS: [OnceCell<Option<Rig>>; 9] = Default::default();
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let sel = usize::from(sel) % 3 + 3 * ((usize::from(sel) / 3) % 3);
    RIGS.with(|rigs| {
        if let Some(rig) = rigs[sel].get_or_init(|| Rig::build(sel)) {
            run(rig, rest);
        }
    });
});

fn run(rig: &Rig, mut rest: &[u8]) {
    let Rig {
        sim,
        booted,
        dev,
        region,
    } = rig;
    sim.restore(booted).expect("restore the booted state");
    if dev.desc().revision == UapiRevision::V4 {
        dev.boot().expect("a restored v4 device boots again");
    }
    let ov = dev.overlay();
    // Each op: [kind, len, offset (2 bytes, block-relative or wild), value (8 bytes)].
    while rest.len() >= 12 {
        let (op, tail) = rest.split_at(12);
        rest = tail;
        let len = usize::from(op[1] % 17);
        let raw = u64::from(u16::from_le_bytes([op[2], op[3]]));
        let offset = if op[0] & 0x80 != 0 { raw << 8 } else { raw };
        let mut buf = [0u8; 16];
        buf[..8].copy_from_slice(&op[4..12]);
        let buf = &mut buf[..len];
        let before = sim.stats();
        let legal = matches!(len, 4 | 8)
            && offset % len as u64 == 0
            && offset >= region.start
            && offset + len as u64 <= region.end;
        if op[0] & 1 == 0 {
            ov.read(offset, buf);
        } else {
            ov.write(offset, buf);
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
        d.committed && d.locked && d.base == BASE && d.hdm_enabled,
        "locked decoder moved or decoding disabled: {d:?}"
    );
}
