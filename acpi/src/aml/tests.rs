use super::*;
use crate::description::{CfmwsWindow, HostBridge, IntxRoute, MmioWindow};

fn topo() -> AcpiDescription {
    AcpiDescription {
        host_bridges: vec![HostBridge {
            uid: 7,
            segment: 1,
            bus_start: 0x80,
            bus_end: 0x81,
            chbcr_base: 0xfed0_0000,
            mmio32: Some(MmioWindow {
                base: 0xe000_0000,
                size: 0x1000_0000,
            }),
            mmio64: Some(MmioWindow {
                base: 0x40_0000_0000,
                size: 0x10_0000_0000,
            }),
            intx_routes: vec![
                IntxRoute {
                    device: 0,
                    pin: 0,
                    gsi: 16,
                },
                IntxRoute {
                    device: 3,
                    pin: 0,
                    gsi: 0x1234_5678,
                },
            ],
        }],
        windows: vec![CfmwsWindow::new(0x3_0000_0000, 0x1000_0000, vec![7])],
        ..Default::default()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn ssdt_wraps_the_dsdt_fragment() {
    let t = topo();
    let aml = cxl_aml(&t).unwrap();
    let ssdt = build_ssdt(&t).unwrap();
    assert_eq!(&ssdt[0..4], b"SSDT");
    assert_eq!(ssdt[8], SSDT_REVISION);
    assert_eq!(
        u32::from_le_bytes(ssdt[4..8].try_into().unwrap()) as usize,
        ssdt.len()
    );
    assert_eq!(ssdt.iter().fold(0u8, |a, b| a.wrapping_add(*b)), 0);
    assert_eq!(&ssdt[36..], &aml[..]);
    // Scope (\_SB) { Device (CXLM) ... Device (CX00) ... }
    assert_eq!(aml[0], 0x10, "ScopeOp");
    for needle in [
        &b"ACPI0017\0"[..],
        b"ACPI0016\0",
        b"CXLM",
        b"CX00",
        b"_OSC",
        b"_DSM",
        b"_CCA",
    ] {
        assert!(find(&aml, needle), "{}", String::from_utf8_lossy(needle));
    }
}

#[test]
fn names_and_validation() {
    assert_eq!(host_bridge_name(0), "CX00");
    assert_eq!(host_bridge_name(255), "CXFF");
    let mut t = topo();
    t.host_bridges[0].bus_end = 0x7f;
    assert!(matches!(
        cxl_aml(&t),
        Err(DescriptionError::EmptyBusRange { uid: 7, .. })
    ));
    assert!(build_ssdt(&t).is_err());
}

#[test]
fn prt_lists_each_route_and_is_absent_without_routes() {
    let t = topo();
    let aml = cxl_aml(&t).unwrap();
    assert!(find(&aml, b"_PRT"));
    // slot 3, all functions: DWordConst 0x0003FFFF; GSI 0x12345678 as DWordConst
    assert!(find(&aml, &[0x0C, 0xFF, 0xFF, 0x03, 0x00]));
    assert!(find(&aml, &[0x0C, 0x78, 0x56, 0x34, 0x12]));
    let mut none = t;
    none.host_bridges[0].intx_routes.clear();
    assert!(!find(&cxl_aml(&none).unwrap(), b"_PRT"));
}
