//! `cxl-passthrough acpi` writes exactly the CEDT and SSDT a VMM builds with `cxl-acpi`
//! for the planned topology.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use cxl_acpi::{
    AcpiDescription, CfmwsWindow, HostBridge, MmioWindow, OemIds, build_cedt, build_ssdt,
};

fn expected(count: u32, dpa: u64) -> AcpiDescription {
    let mut t = AcpiDescription {
        host_bridges: vec![],
        windows: vec![],
        oem: OemIds::default(),
    };
    for i in 0..count {
        t.host_bridges.push(HostBridge {
            uid: i,
            segment: 1 + i as u16,
            bus_start: 0,
            bus_end: 1,
            chbcr_base: 0xfd00_0000 + u64::from(i) * 0x1_0000,
            mmio32: None,
            mmio64: Some(MmioWindow {
                base: 0x80_0000_0000 + u64::from(i) * (16 << 30),
                size: 16 << 30,
            }),
            intx_routes: Vec::new(),
        });
        t.windows.push(CfmwsWindow::new(
            0x40_0000_0000 + u64::from(i) * dpa,
            dpa,
            vec![i],
        ));
    }
    t
}

#[test]
fn writes_the_tables_of_the_planned_topology() {
    for (uapi, count) in [("v2", 1u32), ("v3", 3), ("v4", 2)] {
        let dir = std::env::temp_dir().join(format!("cxl-acpi-cli-{}-{uapi}", std::process::id()));
        let out = Command::new(env!("CARGO_BIN_EXE_cxl-passthrough"))
            .args([
                "acpi",
                "--sim",
                "--uapi",
                uapi,
                "--dpa-size",
                "1G",
                "--count",
                &count.to_string(),
                "--out",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let t = expected(count, 1 << 30);
        assert_eq!(
            std::fs::read(dir.join("cedt.dat")).unwrap(),
            build_cedt(&t).unwrap()
        );
        assert_eq!(
            std::fs::read(dir.join("ssdt.aml")).unwrap(),
            build_ssdt(&t).unwrap()
        );
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("topology.json")).unwrap())
                .unwrap();
        assert_eq!(j["host_bridges"].as_array().unwrap().len(), count as usize);
        assert_eq!(j["host_bridges"][0]["window_size"], 1u64 << 30);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn invalid_topologies_are_refused() {
    let dir = std::env::temp_dir().join(format!("cxl-acpi-cli-bad-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_cxl-passthrough"))
        .args(["acpi", "--sim", "--chbcr-base", "0x1234", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("invalid"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dir.join("cedt.dat").exists());
}
