//! Property tests: hostile bytes never panic; valid answers built with the wire
//! encoders round-trip through the parsers for both revisions.

mod uapi_common;

use cxl_passthrough::uapi::wire::*;
use cxl_passthrough::uapi::*;
use proptest::prelude::*;
use uapi_common::*;

fn any_v2() -> impl Strategy<Value = CxlCapV2> {
    (0u8..6, 0u32..4, 0x1000u64..(1 << 40), 9u32..64, 9u32..64).prop_filter_map(
        "distinct indices",
        |(bar, flags, off, dpa, comp)| {
            (dpa != comp).then_some(CxlCapV2 {
                hdm_regs_bar_index: bar,
                reserved: [0; 3],
                flags,
                hdm_regs_offset: off,
                dpa_region_index: dpa,
                comp_regs_region_index: comp,
            })
        },
    )
}

fn any_v3() -> impl Strategy<Value = CxlCapV3> {
    (0u32..6, 0u32..2, any::<u64>(), 9u32..64, 9u32..64).prop_filter_map(
        "distinct indices",
        |(bar, flags, off, dpa, comp)| {
            (dpa != comp).then_some(CxlCapV3 {
                flags,
                hdm_region_idx: dpa,
                comp_reg_region_idx: comp,
                comp_reg_bar: bar,
                resv: 0,
                pad: 0,
                comp_reg_offset: off,
                comp_reg_size: 0x1_0000,
            })
        },
    )
}

/// Other capabilities (IDs the parser does not know), each 8..=64 bytes.
fn others() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec((7u16..100, 1usize..=8), 0..4)
        .prop_map(|v| v.into_iter().map(|(id, n)| other_cap(id, n * 8)).collect())
}

fn feed_all(dev: &[u8], bar: &[u8], dpa: &[u8], comp: &[u8]) {
    for choice in [
        RevisionChoice::Auto,
        RevisionChoice::Force(UapiRevision::V2),
        RevisionChoice::Force(UapiRevision::V3),
        RevisionChoice::Force(UapiRevision::V4),
    ] {
        let d = parse_device_info(dev, choice);
        let r = (
            parse_region_info(bar, 2),
            parse_region_info(dpa, 9),
            parse_region_info(comp, 10),
        );
        if let (Ok(mut d), (Ok(b), Ok(p), Ok(c))) = (d, r) {
            if d.v4 {
                match discover_v4(&d, &[p.clone(), c.clone()]) {
                    Ok(info) => d.cxl = Some(info),
                    Err(e) => {
                        let _ = e.to_string();
                        continue;
                    }
                }
            }
            let _ = validate_layout(&d, &b, &p, &c).map_err(|e| e.to_string());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(
        dev in prop::collection::vec(any::<u8>(), 0..256),
        bar in prop::collection::vec(any::<u8>(), 0..256),
        idx in any::<u32>(),
    ) {
        let _ = parse_device_info(&dev, RevisionChoice::Auto);
        let _ = parse_region_info(&bar, idx);
        feed_all(&dev, &bar, &bar, &bar);
    }

    #[test]
    fn mutated_valid_answers_never_panic(
        v3cap in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let cap = if v3cap { v3_bytes(v3()) } else { v2_bytes(v2()) };
        let mut answers = [
            device_answer(CXL_FLAGS, NUM_REGIONS, &[other_cap(3, 16), cap], 0),
            bar_answer(&topo_c()),
            dpa_answer(DPA_SIZE),
            comp_answer(0x230),
        ];
        for (i, (at, v)) in flips.iter().enumerate() {
            let a = &mut answers[i % 4];
            let at = at.index(a.len());
            a[at] = *v;
        }
        feed_all(&answers[0], &answers[1], &answers[2], &answers[3]);
    }

    #[test]
    fn mutated_v4_answers_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut answers = [
            v4_device(),
            bar_answer(&v4_areas()),
            dpa_answer(DPA_SIZE),
            v4_comp_answer(COMP_IDX, V4_COMP_SIZE, geometry(u32::from(BAR), V4_HDM_OFF)),
        ];
        feed_all(&answers[0], &answers[1], &answers[2], &answers[3]);
        for (i, (at, v)) in flips.iter().enumerate() {
            let a = &mut answers[i % 4];
            let at = at.index(a.len());
            a[at] = *v;
        }
        feed_all(&answers[0], &answers[1], &answers[2], &answers[3]);
    }

    /// Any geometry the rules accept (BAR < 6, HDM block in the CXL.cache/mem part of a
    /// 64 KiB block) is found, with the component block it implies, in any region order.
    #[test]
    fn v4_geometry_round_trips(
        bar in 0u32..6,
        block in 0u64..(1 << 20),
        rel in 0x1000u64..0xFFD0,
        swap in any::<bool>(),
    ) {
        let off = (block << 16) + (rel & !3);
        let comp = parse_region_info(&v4_comp_answer(COMP_IDX, V4_COMP_SIZE, geometry(bar, off)), COMP_IDX).unwrap();
        let dpa = parse_region_info(&dpa_answer(DPA_SIZE), DPA_IDX).unwrap();
        let dev = parse_device_info(&v4_device(), RevisionChoice::Auto).unwrap();
        let regions = if swap { vec![comp, dpa] } else { vec![dpa, comp] };
        let info = discover_v4(&dev, &regions).unwrap();
        prop_assert_eq!(info.revision, UapiRevision::V4);
        prop_assert_eq!(u32::from(info.component_bar), bar);
        prop_assert_eq!(info.component_offset, block << 16);
        prop_assert_eq!((info.dpa_region_index, info.comp_regs_region_index), (DPA_IDX, COMP_IDX));
    }

    #[test]
    fn v2_round_trips_anywhere_in_the_chain(
        cap in any_v2(), others in others(), pos in any::<prop::sample::Index>(), pad in 0usize..64,
    ) {
        let mut caps = others;
        caps.insert(pos.index(caps.len() + 1), v2_bytes(cap));
        let b = device_answer(CXL_FLAGS, 64, &caps, pad);
        let c = parse_device_info(&b, RevisionChoice::Auto).unwrap().cxl.unwrap();
        prop_assert_eq!(c.revision, UapiRevision::V2);
        prop_assert_eq!(c.raw, RawCxlCap::V2(cap));
        prop_assert_eq!(c.component_offset, cap.hdm_regs_offset - 0x1000);
        prop_assert_eq!(c.component_bar, cap.hdm_regs_bar_index);
        prop_assert_eq!(c.firmware_committed, cap.flags & 1 != 0);
        prop_assert_eq!(c.cache_capable, Some(cap.flags & 2 != 0));
        let forced = parse_device_info(&b, RevisionChoice::Force(UapiRevision::V2)).unwrap();
        prop_assert_eq!(forced.cxl, Some(c));
    }

    #[test]
    fn v3_round_trips_anywhere_in_the_chain(
        cap in any_v3(), others in others(), pos in any::<prop::sample::Index>(), pad in 0usize..64,
    ) {
        let mut caps = others;
        caps.insert(pos.index(caps.len() + 1), v3_bytes(cap));
        let b = device_answer(CXL_FLAGS, 64, &caps, pad);
        let c = parse_device_info(&b, RevisionChoice::Auto).unwrap().cxl.unwrap();
        prop_assert_eq!(c.revision, UapiRevision::V3);
        prop_assert_eq!(c.raw, RawCxlCap::V3(cap));
        prop_assert_eq!(c.component_offset, cap.comp_reg_offset);
        prop_assert_eq!(u32::from(c.component_bar), cap.comp_reg_bar);
        prop_assert_eq!(c.dpa_region_index, cap.hdm_region_idx);
        prop_assert_eq!(c.cache_capable, None);
    }

    #[test]
    fn region_info_round_trips(
        index in any::<u32>(),
        size in any::<u64>(),
        areas in prop::collection::vec((any::<u64>(), any::<u64>()), 0..8),
        ty in prop::option::of((any::<u32>(), any::<u32>())),
        type_first in any::<bool>(),
        others in others(),
    ) {
        let areas: Vec<SparseArea> = areas.into_iter().map(|(offset, size)| SparseArea { offset, size }).collect();
        let mut caps = others;
        caps.push(encode_sparse_cap(0, &areas));
        if let Some((t, s)) = ty {
            let tc = encode_type_cap(0, t, s).to_vec();
            if type_first { caps.insert(0, tc) } else { caps.push(tc) }
        }
        let b = region_answer(index, RW | REGION_FLAG_MMAP, size, &caps);
        let r = parse_region_info(&b, index).unwrap();
        prop_assert_eq!(r.index, index);
        prop_assert_eq!(r.size, size);
        prop_assert_eq!(r.offset, u64::from(index) << 40);
        prop_assert_eq!(r.region_type, ty);
        prop_assert_eq!(r.sparse, Some(areas));
        prop_assert!(r.flags.mmap() && r.flags.caps());
    }

    #[test]
    fn valid_bar_layouts_validate(
        v3cap in any::<bool>(),
        blocks_before in 0u64..4,
        blocks_after in 0u64..4,
        dpa_gib in 1u64..64,
    ) {
        // BAR layouts A/B/C and "block only": 64 KiB units around the component block.
        let off = blocks_before * 0x1_0000;
        let bar_size = off + 0x1_0000 + blocks_after * 0x1_0000;
        let mut areas = vec![];
        if blocks_before > 0 { areas.push(SparseArea { offset: 0, size: off }); }
        if blocks_after > 0 { areas.push(SparseArea { offset: off + 0x1_0000, size: blocks_after * 0x1_0000 }); }
        let (cap, comp_size) = if v3cap {
            (v3_bytes(CxlCapV3 { comp_reg_offset: off, ..v3() }), 0x1_0000)
        } else {
            (v2_bytes(CxlCapV2 { hdm_regs_offset: off + 0x1000, ..v2() }), 0x230)
        };
        let dev = parse_device_info(&cxl_device(cap), RevisionChoice::Auto).unwrap();
        let bar = if areas.is_empty() {
            region_answer(u32::from(BAR), RW, bar_size, &[])
        } else {
            region_answer(u32::from(BAR), RW | REGION_FLAG_MMAP, bar_size, &[encode_sparse_cap(0, &areas)])
        };
        let bar = parse_region_info(&bar, u32::from(BAR)).unwrap();
        let dpa = parse_region_info(&dpa_answer(dpa_gib << 30), DPA_IDX).unwrap();
        let comp = parse_region_info(&comp_answer(comp_size), COMP_IDX).unwrap();
        let l = validate_layout(&dev, &bar, &dpa, &comp).unwrap();
        prop_assert_eq!(l.component.offset, off);
        prop_assert_eq!(l.bar.size, bar_size);
        prop_assert_eq!(l.bar.sparse, areas);
        prop_assert_eq!(l.dpa.size, dpa_gib << 30);
    }
}
