//! Performs N COMP_REGS dword reads of decoder 0 CTRL on a booted simulated device,
//! either through the overlay (a guest access) or directly on the backend.
//! Used with `valgrind --tool=callgrind` to count instructions per access
//! deterministically (docs/performance.md):
//!
//! ```text
//! cargo run --release --example overlay_cost -- overlay|direct v2|v3 N
//! ```

use std::hint::black_box;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use cxl_passthrough::backend::Backend;
use cxl_passthrough::backend::sim::{SimConfig, SimDevice};
use cxl_passthrough::uapi::{RevisionChoice, UapiRevision};
use cxl_passthrough::vmm::Platform;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, rev, n] = args.as_slice() else {
        bail!("usage: overlay_cost overlay|direct v2|v3 N");
    };
    let rev = if rev == "v3" {
        UapiRevision::V3
    } else {
        UapiRevision::V2
    };
    let n: u64 = n.parse().context("N")?;
    let sim = Arc::new(SimDevice::new(SimConfig::new(rev))?);
    let mut platform = Platform::new(0x40_0000_0000, 1 << 40, 4096)?;
    let (dev, _) = platform.boot_device(sim.clone(), RevisionChoice::Auto)?;
    let desc = dev.desc().clone();
    let ov = dev.overlay();
    let ctrl = desc.hdm.block_offset + 0x20;
    let region_off = ctrl - desc.comp_regs_base_in_block;
    // The baseline is the backend call a VMM makes without the overlay: through the same
    // `Arc<dyn Backend>` the runtime holds.
    let backend: Arc<dyn Backend> = black_box(sim.clone());
    let mut acc = 0u32;
    let mut b = [0u8; 4];
    for _ in 0..n {
        if mode == "overlay" {
            ov.read(black_box(ctrl), &mut b);
        } else {
            backend.read(desc.comp_regs.file_offset, black_box(region_off), &mut b)?;
        }
        acc ^= u32::from_le_bytes(b);
    }
    println!("{acc:#x}");
    Ok(())
}
