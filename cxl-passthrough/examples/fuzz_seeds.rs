//! Writes the seed corpus of the `reg_walks` fuzz target from the simulator's own
//! register images, so the committed seeds can be regenerated and checked:
//!
//! ```text
//! cargo run -p cxl-passthrough --example fuzz_seeds -- fuzz/seeds/reg_walks fuzz/seeds/uapi_parse
//! ```
//!
//! The second directory receives the `uapi_parse` seeds: per revision and BAR layout,
//! the simulator's device info, component BAR, DPA and COMP_REGS answers, each padded
//! to 8 bytes so the target's three cut points (n/256 of 2048 bytes) land on them, and
//! checked to validate (for v4 through `discover_v4`) before they are written.
//!
//! One seed per (revision, BAR layout A/B/C, v2 decoder count 1/2/4/16, config view, DVSEC
//! ID): `[sel, len: u16 LE, component image, config image]` (the format documented in
//! `fuzz/fuzz_targets/reg_walks.rs`). The component image is the COMP_REGS region as the
//! kernel serves it (v2: CXL capability header at 0; v3: the 64 KiB block with the header
//! at 0x1000), cut after the HDM decoder block; the config image is config space as the
//! driver serves it ("vfio") or as the device holds it ("hw"), trailing zeros trimmed.
//! Every seed is checked to walk successfully (HDM block, DVSEC and PCIe capability
//! found) before it is written.

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use cxl_passthrough::backend::sim::{BarLayout, SimConfig, SimDevice};
use cxl_passthrough::regs::component::find_hdm_block;
use cxl_passthrough::regs::dvsec::CXL_VENDOR_ID;
use cxl_passthrough::regs::pci::{CAP_ID_PCIE, find_cap, find_dvsec};
use cxl_passthrough::runtime::probe::probe;
use cxl_passthrough::uapi::RevisionChoice;
use cxl_passthrough::uapi::UapiRevision;

/// CXL DVSEC IDs the simulator presents: PCIe Device, Flex Bus Port, Register Locator.
const DVSEC_IDS: [u8; 3] = [0, 7, 8];

fn dword(img: &[u8], off: u64) -> Result<u32, ()> {
    let o = usize::try_from(off).map_err(|_| ())?;
    let b = img.get(o..o.checked_add(4).ok_or(())?).ok_or(())?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The COMP_REGS image cut after the HDM block, and where its CXL header is.
fn comp_image(sim: &SimDevice) -> Result<(Vec<u8>, u64)> {
    let desc = probe(sim, RevisionChoice::Auto, 4096)?;
    let mut img = Vec::new();
    for off in (0..desc.comp_regs.size).step_by(4) {
        let mut b = [0u8; 4];
        let n = sim
            .pread(desc.comp_regs.file_offset + off, &mut b)
            .map_err(|e| anyhow::anyhow!("COMP_REGS pread at {off:#x}: errno {}", e.0))?;
        ensure!(n == 4, "short COMP_REGS read at {off:#x}");
        img.extend_from_slice(&b);
    }
    let cm_base = 0x1000 - desc.comp_regs_base_in_block;
    let loc = find_hdm_block(|o| dword(&img, o), cm_base, img.len() as u64)
        .map_err(|e| anyhow::anyhow!("HDM walk over the simulator's image: {e:?}"))?;
    img.truncate(usize::try_from(loc.offset + loc.block_size())?);
    Ok((img, cm_base))
}

/// Config space as served through the config region, and as held by the hardware.
fn config_images(sim: &SimDevice) -> Result<[(&'static str, Vec<u8>); 2]> {
    let desc = probe(sim, RevisionChoice::Auto, 4096)?;
    let mut vfio = vec![0u8; 4096];
    let n = sim
        .pread(desc.config.file_offset, &mut vfio)
        .map_err(|e| anyhow::anyhow!("config pread: errno {}", e.0))?;
    ensure!(n == 4096, "short config read");
    let mut hw = vec![0u8; 4096];
    sim.hw_config_read(0, &mut hw);
    Ok([("vfio", trim(vfio)), ("hw", trim(hw))])
}

/// Drops trailing zero dwords (the target zero-pads config space).
fn trim(mut img: Vec<u8>) -> Vec<u8> {
    while img.len() >= 4 && img[img.len() - 4..] == [0; 4] {
        img.truncate(img.len() - 4);
    }
    img
}

/// Bytes of `uapi_parse` input after its 8-byte head (256 cut units of 8 bytes).
const UAPI_REST: usize = 2048;

/// Writes the `uapi_parse` seeds (see the module docs).
fn uapi_seeds(dir: &std::path::Path) -> Result<()> {
    use cxl_passthrough::backend::Backend;
    use cxl_passthrough::uapi::{
        discover_v4, parse_device_info, parse_region_info, validate_layout,
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = 0;
    for rev in UapiRevision::ALL {
        for (name, bar_layout) in [
            ("a", BarLayout::End),
            ("b", BarLayout::Start),
            ("c", BarLayout::Middle),
        ] {
            let sim = SimDevice::new(SimConfig {
                bar_layout,
                ..SimConfig::new(rev)
            })?;
            let desc = probe(&sim, RevisionChoice::Auto, 4096)?;
            let answers = [
                sim.device_info()?,
                sim.region_info(desc.bar.index)?,
                sim.region_info(desc.dpa.index)?,
                sim.region_info(desc.comp_regs.index)?,
            ];
            // The target's check, on exactly these answers.
            let mut dev = parse_device_info(&answers[0], RevisionChoice::Auto)?;
            let bar = parse_region_info(&answers[1], desc.bar.index)?;
            let dpa = parse_region_info(&answers[2], desc.dpa.index)?;
            let comp = parse_region_info(&answers[3], desc.comp_regs.index)?;
            if dev.v4 {
                dev.cxl = Some(discover_v4(&dev, &[dpa.clone(), comp.clone()])?);
            }
            validate_layout(&dev, &bar, &dpa, &comp)?;
            let mut rest = Vec::new();
            let mut cuts = [0u8; 3];
            for (i, a) in answers.iter().enumerate() {
                rest.extend_from_slice(a);
                rest.resize(rest.len().next_multiple_of(8), 0);
                if let Some(c) = cuts.get_mut(i) {
                    *c = u8::try_from(rest.len() / 8)?;
                }
            }
            ensure!(rest.len() <= UAPI_REST, "answers exceed the seed size");
            rest.resize(UAPI_REST, 0);
            let choice = match rev {
                UapiRevision::V2 => 1,
                UapiRevision::V3 => 2,
                UapiRevision::V4 => 3,
            };
            for (tag, sel) in [("auto", 0u8), ("forced", choice)] {
                let bar_index = u8::try_from(desc.bar.index)?;
                let mut seed = vec![sel, bar_index, 0, 0, 0, cuts[0], cuts[1], cuts[2]];
                seed.extend_from_slice(&rest);
                let file = format!("{rev}-{name}-{tag}");
                std::fs::write(dir.join(&file), &seed)
                    .with_context(|| format!("writing {file}"))?;
                written += 1;
            }
        }
    }
    println!("{written} seeds in {}", dir.display());
    Ok(())
}

/// Checks that the target's three walks all succeed on the seed.
fn check(sel: u8, comp: &[u8], cm_base: u64, cfg_img: &[u8]) -> Result<()> {
    let limit = comp.len() as u64;
    ensure!(cm_base == if sel & 1 == 0 { 0 } else { 0x1000 });
    find_hdm_block(|o| dword(comp, o), cm_base, limit)
        .map_err(|e| anyhow::anyhow!("HDM walk: {e:?}"))?;
    let mut cfg = [0u8; 4096];
    cfg[..cfg_img.len()].copy_from_slice(cfg_img);
    let found = find_dvsec(
        |o| dword(&cfg, u64::from(o)),
        CXL_VENDOR_ID,
        u16::from(sel >> 4),
    )
    .map_err(|e| anyhow::anyhow!("DVSEC walk: {e:?}"))?;
    ensure!(found.is_some(), "DVSEC {} not found", sel >> 4);
    let pcie = find_cap(|o| cfg.get(usize::from(o)).copied().ok_or(()), CAP_ID_PCIE)
        .map_err(|e| anyhow::anyhow!("capability walk: {e:?}"))?;
    ensure!(pcie.is_some(), "PCIe capability not found");
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, uapi_dir] = args.as_slice() else {
        bail!(
            "usage: fuzz_seeds <reg_walks seed directory> <uapi_parse seed directory>, e.g. \
             fuzz/seeds/reg_walks fuzz/seeds/uapi_parse"
        );
    };
    uapi_seeds(&PathBuf::from(uapi_dir))?;
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = 0;
    for rev in [UapiRevision::V2, UapiRevision::V3] {
        let counts: &[u32] = match rev {
            UapiRevision::V2 => &[1, 2, 4, 16],
            UapiRevision::V3 => &[1],
            // v4's COMP_REGS is the HDM block alone (no capability array to walk); its
            // answers are seeds of `uapi_parse`.
            UapiRevision::V4 => &[],
        };
        for (topo, bar_layout) in [
            ("a", BarLayout::End),
            ("b", BarLayout::Start),
            ("c", BarLayout::Middle),
        ] {
            for &decoders in counts {
                let sim = SimDevice::new(SimConfig {
                    bar_layout,
                    decoder_count: decoders,
                    ..SimConfig::new(rev)
                })?;
                let (comp, cm_base) = comp_image(&sim)?;
                for (view, cfg_img) in config_images(&sim)? {
                    for id in DVSEC_IDS {
                        let sel = id << 4 | u8::from(cm_base != 0);
                        check(sel, &comp, cm_base, &cfg_img)?;
                        let mut seed = vec![sel];
                        seed.extend_from_slice(&u16::try_from(comp.len())?.to_le_bytes());
                        seed.extend_from_slice(&comp);
                        seed.extend_from_slice(&cfg_img);
                        let name =
                            format!("{rev:?}-{topo}-d{decoders}-{view}-dvsec{id}").to_lowercase();
                        std::fs::write(dir.join(&name), &seed)
                            .with_context(|| format!("writing {name}"))?;
                        written += 1;
                    }
                }
            }
        }
    }
    println!("{written} seeds in {}", dir.display());
    Ok(())
}
