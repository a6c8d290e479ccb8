//! Register walks over arbitrary register images (what a hostile kernel shadow or device
//! could present): the CXL.cache/mem capability-array walk, the PCIe extended-capability
//! DVSEC walk and the standard capability-list walk. Invariants: no panic, every read
//! stays inside its image, a located HDM block fits inside the component image, a located
//! DVSEC fits in config space and a located capability sits in the capability area.
//!
//! Input: `[sel, len: u16 LE, component image (len bytes, or what is left), config image
//! (the rest, zero-padded to 4 KiB)]`. `sel` bit 0: the CXL capability header is at 0
//! (a v2 COMP_REGS region) or 0x1000 (a v3 region or a raw component block); bits 4–7:
//! the CXL DVSEC ID looked for. The seeds in `fuzz/seeds/reg_walks` are the simulator's
//! own images in this format (`cargo run -p cxl-passthrough --example fuzz_seeds`).
#![no_main]

use cxl_passthrough::regs::component::find_hdm_block;
use cxl_passthrough::regs::dvsec::CXL_VENDOR_ID;
use cxl_passthrough::regs::pci::{CAP_ID_PCIE, find_cap, find_dvsec};
use libfuzzer_sys::fuzz_target;

fn dword(img: &[u8], off: u64) -> Result<u32, ()> {
    let o = usize::try_from(off).map_err(|_| ())?;
    let b = img.get(o..o.checked_add(4).ok_or(())?).ok_or(())?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fuzz_target!(|data: &[u8]| {
    let [sel, l0, l1, rest @ ..] = data else {
        return;
    };
    let (comp, cfg_img) =
        rest.split_at(usize::from(u16::from_le_bytes([*l0, *l1])).min(rest.len()));

    let limit = comp.len() as u64;
    let cm_base = if sel & 1 == 0 { 0 } else { 0x1000.min(limit) };
    if let Ok(loc) = find_hdm_block(|o| dword(comp, o), cm_base, limit) {
        assert!(loc.offset + loc.block_size() <= limit);
    }

    let mut cfg = [0u8; 4096];
    let n = cfg_img.len().min(4096);
    cfg[..n].copy_from_slice(&cfg_img[..n]);
    let read32 = |o: u16| dword(&cfg, u64::from(o));
    if let Ok(Some(d)) = find_dvsec(read32, CXL_VENDOR_ID, u16::from(sel >> 4)) {
        assert!(usize::from(d.offset) + usize::from(d.length) <= cfg.len());
    }
    if let Ok(Some(at)) = find_cap(
        |o: u16| cfg.get(usize::from(o)).copied().ok_or(()),
        CAP_ID_PCIE,
    ) {
        assert!((0x40..=0xFC).contains(&at));
    }
});
