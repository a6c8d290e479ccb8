//! Feeds arbitrary bytes to the UAPI parsers, the v4 region scan and the layout
//! cross-check.
//!
//! Input: byte 0 selects the revision choice (auto, v2, v3, v4), bytes 1..5 the region
//! index asked for the component BAR; the rest is split into four answers (device info,
//! component BAR, DPA, COMP_REGS) at three cut points taken from bytes 5..8. A v4
//! device (CXL flag without capability) gets its CXL regions from `discover_v4` over
//! the DPA and COMP_REGS answers (parsed as regions 9 and 10).
//! Seeds: `cargo run -p cxl-passthrough --example fuzz_seeds -- fuzz/seeds/reg_walks
//! fuzz/seeds/uapi_parse` (the simulator's answers, every revision and BAR layout).
#![no_main]

use cxl_passthrough::uapi::{
    RevisionChoice, UapiRevision, discover_v4, parse_device_info, parse_region_info,
    validate_layout,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let choice = match head[0] % 4 {
        0 => RevisionChoice::Auto,
        1 => RevisionChoice::Force(UapiRevision::V2),
        2 => RevisionChoice::Force(UapiRevision::V3),
        _ => RevisionChoice::Force(UapiRevision::V4),
    };
    let bar_index = u32::from(head[1] % 8);
    // Three cut points as fractions (n/256) of the remaining input.
    let mut cuts = [head[5], head[6], head[7]].map(|c| usize::from(c) * rest.len() / 256);
    cuts.sort_unstable();
    let (dev, tail) = rest.split_at(cuts[0]);
    let (bar, tail) = tail.split_at(cuts[1] - cuts[0]);
    let (dpa, comp) = tail.split_at(cuts[2] - cuts[1]);

    let mut dev = parse_device_info(dev, choice);
    let bar = parse_region_info(bar, bar_index);
    let (dpa_index, comp_index) = match &dev {
        Ok(d) => d
            .cxl
            .map_or((9, 10), |c| (c.dpa_region_index, c.comp_regs_region_index)),
        Err(_) => (9, 10),
    };
    let dpa = parse_region_info(dpa, dpa_index);
    let comp = parse_region_info(comp, comp_index);
    let mut v4 = None;
    if let (Ok(d), Ok(p), Ok(c)) = (&mut dev, &dpa, &comp)
        && d.v4
    {
        let found = discover_v4(d, &[p.clone(), c.clone()]);
        if let Ok(info) = &found {
            d.cxl = Some(*info);
        }
        v4 = found.err();
    }
    if let (Ok(d), Ok(b), Ok(p), Ok(c)) = (&dev, &bar, &dpa, &comp) {
        let _ = validate_layout(d, b, p, c).map_err(|e| e.to_string());
    }
    // Error rendering must not panic either.
    for e in [dev.err(), bar.err(), dpa.err(), comp.err(), v4]
        .into_iter()
        .flatten()
    {
        let _ = e.to_string();
    }
});
