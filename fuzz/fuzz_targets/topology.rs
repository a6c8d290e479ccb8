//! Topology reader fuzzing: a booted simulated device (v2, v3 or v4, any BAR layout) whose
//! config-space answers come from the fuzz input once booted, optionally with one short
//! transfer. `plan_device_topology` walks the extended-capability chain for the Flex Bus
//! DVSEC and reads the CXL Device DVSEC from those bytes.
//! Invariants: no panic; a plan is only produced from a config space whose DVSEC walk
//! finds a Flex Bus Port DVSEC, with CXL.mem enabled, and its host-bridge decoder covers
//! exactly the device's window.
#![no_main]

use std::sync::{Arc, OnceLock};

use cxl_passthrough::backend::sim::{BarLayout, ConfigOverride, SimConfig, SimDevice};
use cxl_passthrough::plan::Window;
use cxl_passthrough::regs::dvsec::{CXL_VENDOR_ID, DVSEC_ID_FLEX_BUS};
use cxl_passthrough::regs::pci::{CONFIG_SPACE_SIZE, EXT_CAP_START, find_dvsec};
use cxl_passthrough::runtime::CxlDevice;
use cxl_passthrough::runtime::probe::probe;
use cxl_passthrough::runtime::topology::plan_device_topology;
use cxl_passthrough::uapi::RevisionChoice;
use cxl_passthrough::uapi::UapiRevision;
use libfuzzer_sys::fuzz_target;

const BASE: u64 = 0x40_0000_0000;
const CFG: usize = CONFIG_SPACE_SIZE as usize;

/// A booted device and its honest config space.
struct Booted {
    hostile: Arc<ConfigOverride>,
    dev: CxlDevice,
    honest: Vec<u8>,
}

fn boot(rev: UapiRevision, bar_layout: BarLayout) -> Option<Booted> {
    let sim = Arc::new(
        SimDevice::new(SimConfig {
            bar_layout,
            ..SimConfig::new(rev)
        })
        .ok()?,
    );
    let desc = probe(sim.as_ref(), RevisionChoice::Auto, 4096).ok()?;
    let hostile = Arc::new(ConfigOverride::new(sim, desc.config.file_offset));
    let honest = hostile.honest_config().ok().filter(|c| c.len() == CFG)?;
    let window = Window {
        base: BASE,
        size: desc.dpa.size,
    };
    let dev = CxlDevice::new(hostile.clone(), desc, window, 4096).ok()?;
    dev.boot().ok()?;
    plan_device_topology(&dev, 3, &[]).ok()?;
    Some(Booted {
        hostile,
        dev,
        honest,
    })
}

/// One booted device per revision × BAR layout, built once (the reader never writes).
fn devices() -> &'static [Booted] {
    static DEVS: OnceLock<Vec<Booted>> = OnceLock::new();
    DEVS.get_or_init(|| {
        let mut v = Vec::new();
        for rev in UapiRevision::ALL {
            for t in [BarLayout::End, BarLayout::Start, BarLayout::Middle] {
                v.push(boot(rev, t).expect("an honest sim device boots and plans"));
            }
        }
        v
    })
}

fuzz_target!(|data: &[u8]| {
    // [selector, short-read index, input...]
    let [sel, short, input @ ..] = data else {
        return;
    };
    let devs = devices();
    let Some(b) = devs.get(usize::from(sel & 0x7) % devs.len()) else {
        return;
    };
    let mut img = b.honest.clone();
    if sel & 0x80 != 0 {
        // Patches of the honest image: [offset lo, offset hi, value (4 bytes)].
        for p in input.chunks_exact(6) {
            let at = usize::from(u16::from_le_bytes([p[0], p[1]])) % CFG;
            let end = (at + 4).min(CFG);
            img[at..end].copy_from_slice(&p[2..2 + (end - at)]);
        }
    } else {
        // The extended configuration space is the input (zero past its end).
        let ext = &mut img[usize::from(EXT_CAP_START)..];
        ext.fill(0);
        let n = input.len().min(ext.len());
        ext[..n].copy_from_slice(&input[..n]);
    }
    let walk = find_dvsec(
        |o| {
            let o = usize::from(o);
            img.get(o..o + 4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .ok_or(())
        },
        CXL_VENDOR_ID,
        DVSEC_ID_FLEX_BUS,
    );
    b.hostile.serve(Some(img), u32::from(*short));
    let res = plan_device_topology(&b.dev, 3, &[1, 2]);
    b.hostile.serve(None, 0);
    if let Ok(plan) = res {
        assert!(
            matches!(walk, Ok(Some(_))),
            "planned without a Flex Bus DVSEC: {walk:?}"
        );
        assert!(plan.device_flex_bus.mem(), "planned without CXL.mem");
        let (hb, w) = (plan.host_bridge, b.dev.window());
        assert_eq!(
            (hb.base, hb.size),
            (w.base, w.size),
            "decoder off the window"
        );
    }
});
