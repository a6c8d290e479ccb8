//! Register walks over arbitrary register images (what a hostile kernel shadow or device
//! could present): the CXL.cache/mem capability-array walk, the PCIe extended-capability
//! DVSEC walk and the standard capability-list walk. Invariants: no panic, every read
//! stays inside the image, and a located HDM block fits inside it.
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
    let Some((&sel, img)) = data.split_first() else {
        return;
    };
    let limit = img.len() as u64;
    let cm_base = if sel & 1 == 0 { 0 } else { 0x1000.min(limit) };
    if let Ok(loc) = find_hdm_block(|o| dword(img, o), cm_base, limit) {
        assert!(loc.offset + loc.block_size() <= limit);
    }
    let mut cfg = [0u8; 4096];
    let n = img.len().min(4096);
    cfg[..n].copy_from_slice(&img[..n]);
    let read32 = |o: u16| dword(&cfg, u64::from(o));
    let _ = find_dvsec(read32, CXL_VENDOR_ID, u16::from(sel >> 4));
    let _ = find_cap(
        |o: u16| cfg.get(usize::from(o)).copied().ok_or(()),
        CAP_ID_PCIE,
    );
});
