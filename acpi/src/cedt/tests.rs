use acpi_tables::Aml;
use acpi_tables::cedt::{
    CxlFixedMemory, CxlHostBridge, CxlVersion, InterleaveArithmetic, InterleaveGranularity,
    InterleaveWays,
};

use super::*;
use crate::description::{CfmwsWindow, Granularity, HostBridge, WindowRestrictions};

fn bridge(uid: u32, chbcr_base: u64) -> HostBridge {
    HostBridge {
        uid,
        segment: 0,
        bus_start: uid as u8,
        bus_end: uid as u8,
        chbcr_base,
        mmio32: None,
        mmio64: None,
        intx_routes: Vec::new(),
    }
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

#[test]
fn cedt_layout_and_checksum() {
    let topo = AcpiDescription {
        host_bridges: vec![bridge(7, 0xfed0_0000), bridge(9, 0xfed1_0000)],
        windows: vec![
            CfmwsWindow::new(0x3_0000_0000, 0x1000_0000, vec![7]),
            CfmwsWindow::new(0x4_0000_0000, 0x4000_0000, vec![9, 7]),
        ],
        ..Default::default()
    };
    let t = build_cedt(&topo).unwrap();
    assert_eq!(&t[0..4], b"CEDT");
    assert_eq!(le32(&t, 4) as usize, t.len());
    assert_eq!(t.len(), 36 + 32 * 2 + 40 + 44);
    assert_eq!(t[8], 1, "revision");
    assert_eq!(t.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
    assert_eq!(&t[10..16], b"CXLPT ");
    // CHBS 0 at 36.
    assert_eq!(t[36], 0);
    assert_eq!(u16::from_le_bytes([t[38], t[39]]), 32);
    assert_eq!(le32(&t, 40), 7);
    assert_eq!(le32(&t, 44), 1, "CXL 2.0+ host bridge");
    assert_eq!(le32(&t, 48), 0, "reserved");
    assert_eq!(le64(&t, 52), 0xfed0_0000);
    assert_eq!(le64(&t, 60), 0x1_0000);
    // CHBS 1 at 68, CFMWS 0 at 100, CFMWS 1 at 140.
    assert_eq!(le32(&t, 72), 9);
    let w0 = 100;
    assert_eq!(t[w0], 1);
    assert_eq!(u16::from_le_bytes([t[w0 + 2], t[w0 + 3]]), 40);
    assert_eq!(le64(&t, w0 + 8), 0x3_0000_0000);
    assert_eq!(le64(&t, w0 + 16), 0x1000_0000);
    assert_eq!(t[w0 + 24], 0, "ENIW 1 way");
    assert_eq!(u16::from_le_bytes([t[w0 + 32], t[w0 + 33]]), 0x15);
    assert_eq!(le32(&t, w0 + 36), 7);
    let w1 = 140;
    assert_eq!(u16::from_le_bytes([t[w1 + 2], t[w1 + 3]]), 44);
    assert_eq!(t[w1 + 24], 1, "ENIW 2 ways");
    assert_eq!((le32(&t, w1 + 36), le32(&t, w1 + 40)), (9, 7));
}

#[test]
fn invalid_topology_produces_no_table() {
    let topo = AcpiDescription {
        host_bridges: vec![bridge(7, 0xfed0_0000)],
        windows: vec![CfmwsWindow::new(0x3_0000_0000, 0x1000_0000, vec![8])],
        ..Default::default()
    };
    assert_eq!(
        build_cedt(&topo),
        Err(DescriptionError::UnknownTarget { index: 0, uid: 8 })
    );
}

/// The reason CHBS is encoded here: acpi_tables 0.2.1 emits 27 bytes for a 32-byte record.
#[test]
fn acpi_tables_chbs_is_malformed() {
    let mut theirs = Vec::new();
    CxlHostBridge::new(7, CxlVersion::Cxl2, 0xfed0_0000).to_aml_bytes(&mut theirs);
    assert_eq!(
        theirs.len(),
        27,
        "acpi_tables fixed its CHBS? then reconsider"
    );
    assert_eq!(encode_chbs(7, 0xfed0_0000).len(), 32);
}

/// Where acpi_tables can express a window, its CFMWS bytes equal ours.
#[test]
fn cfmws_matches_acpi_tables_where_expressible() {
    let mut w = CfmwsWindow::new(0x2_1000_0000, 0x1_0000_0000, vec![0x0c, 0xde]);
    w.granularity = Granularity::K8;
    w.restrictions = WindowRestrictions::new()
        .with_device_coherent(true)
        .with_volatile(true)
        .with_persistent(true)
        .with_fixed_config(true);
    w.qtg_id = 3;
    let mut theirs = CxlFixedMemory::new(
        w.base,
        w.size,
        InterleaveArithmetic::Modulo,
        InterleaveGranularity::Granularity8kb,
        InterleaveWays::Ways2,
        3,
    )
    .cxl_type_2_memory()
    .volatile()
    .persistent()
    .fixed_configuration();
    theirs.add_target(0x0cu32.to_le_bytes());
    theirs.add_target(0xdeu32.to_le_bytes());
    let mut expected = Vec::new();
    theirs.to_aml_bytes(&mut expected);
    assert_eq!(encode_cfmws(&w).unwrap(), expected);
}

#[test]
fn cfmws_encodes_every_way_count() {
    for (ways, eniw) in [
        (1, 0),
        (2, 1),
        (4, 2),
        (8, 3),
        (16, 4),
        (3, 8),
        (6, 9),
        (12, 10),
    ] {
        let w = CfmwsWindow::new(0, 0, (0..ways).collect());
        let b = encode_cfmws(&w).unwrap();
        assert_eq!(b.len(), 36 + 4 * ways as usize);
        assert_eq!(b[24], eniw);
    }
    for bad in [0, 5, 7, 9, 17] {
        assert!(encode_cfmws(&CfmwsWindow::new(0, 0, (0..bad).collect())).is_none());
    }
}
