//! Shared helpers of the `acpi_*` integration tests: topologies, the guest-tool cache
//! (filled from Debian packages by `scripts/guest/fetch-tools.sh`, which
//! `bash scripts/test.sh` runs first), loud skips.

#![allow(dead_code, unused_imports)] // each acpi_* test binary uses a subset

pub mod guest;

pub use cxl_integration_tests::{
    GUEST_TOOLS_HOST, guest_tools_unusable, missing_tools, provision_hint, repo_root, skip,
    tools_dir,
};
use std::path::{Path, PathBuf};
use std::process::Command;

use cxl_acpi::{
    AcpiDescription, CfmwsWindow, Granularity, HostBridge, IntxRoute, MmioWindow, OemIds,
    WindowRestrictions,
};

/// Looks for guest tools in the cache (filled by `bash scripts/test.sh`'s provisioning
/// step, scripts/guest/fetch-tools.sh; tests never install anything): the cache directory
/// if every file in `needed` (relative to it) exists, else the missing paths.
pub fn find_tools(needed: &[&str]) -> Result<PathBuf, Vec<String>> {
    let missing = missing_tools(needed);
    if missing.is_empty() {
        Ok(tools_dir())
    } else {
        Err(missing)
    }
}

/// The `iasl` and `acpiexec` wrappers' directory, or a loud skip of `test` (`None`).
pub fn acpica_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(why) = guest_tools_unusable() {
        skip(test, &why, GUEST_TOOLS_HOST);
        return None;
    }
    match find_tools(&["bin/iasl", "bin/acpiexec"]) {
        Ok(d) => Some(d.join("bin")),
        Err(missing) => {
            skip(
                test,
                &format!("ACPICA 20250404 (trixie acpica-tools) not found: {missing:?}"),
                &provision_hint("acpica"),
            );
            None
        }
    }
}

/// A scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// QEMU's bios-tables-test CXL topology (the q35 CXL machine of its `CEDT.cxl`), with
/// QEMU's OEM ids and its restriction value 0x0F, so our CEDT can be compared byte by byte.
pub fn qemu_reference_topology() -> AcpiDescription {
    let bridge = |uid: u32, chbcr_base| HostBridge {
        uid,
        segment: 0,
        bus_start: uid as u8,
        bus_end: uid as u8 + 2,
        chbcr_base,
        mmio32: None,
        mmio64: None,
        intx_routes: Vec::new(),
    };
    let window = |base, targets| CfmwsWindow {
        base,
        size: 0x1_0000_0000,
        targets,
        granularity: Granularity::K8,
        restrictions: WindowRestrictions::from_bits(0x0F),
        qtg_id: 0,
    };
    AcpiDescription {
        host_bridges: vec![bridge(0xDE, 0x1_0000_0000), bridge(0x0C, 0x1_0001_0000)],
        windows: vec![
            window(0x1_1000_0000, vec![0x0C]),
            window(0x2_1000_0000, vec![0x0C, 0xDE]),
        ],
        oem: OemIds {
            oem_id: *b"BOCHS ",
            oem_table_id: *b"BXPC    ",
            oem_revision: 1,
        },
    }
}

/// Our passthrough topology: one host bridge (UID 7, segment 0, buses 0x80-0x81, both MMIO
/// windows) with a CHBCR below 4 GiB and one 256 MiB Type-2 window, plus a second bridge
/// and an interleaved window to exercise the multi-bridge encodings.
pub fn passthrough_topology() -> AcpiDescription {
    AcpiDescription {
        host_bridges: vec![
            HostBridge {
                uid: 7,
                segment: 0,
                bus_start: 0x80,
                bus_end: 0x81,
                chbcr_base: 0xfed0_0000,
                mmio32: Some(MmioWindow {
                    base: 0xe000_0000,
                    size: 0x1000_0000,
                }),
                mmio64: Some(MmioWindow {
                    base: 0x80_0000_0000,
                    size: 0x10_0000_0000,
                }),
                intx_routes: vec![
                    IntxRoute {
                        device: 0,
                        pin: 0,
                        gsi: 16,
                    },
                    IntxRoute {
                        device: 1,
                        pin: 0,
                        gsi: 17,
                    },
                ],
            },
            HostBridge {
                uid: 9,
                segment: 0,
                bus_start: 0x90,
                bus_end: 0x90,
                chbcr_base: 0xfed1_0000,
                mmio32: None,
                mmio64: None,
                intx_routes: Vec::new(),
            },
        ],
        windows: vec![
            CfmwsWindow::new(0x3_0000_0000, 0x1000_0000, vec![7]),
            CfmwsWindow {
                qtg_id: 2,
                granularity: Granularity::K4,
                ..CfmwsWindow::new(0x4_0000_0000, 0x8000_0000, vec![9, 7])
            },
        ],
        oem: OemIds::default(),
    }
}

/// Runs `cmd` and returns (success, stdout + stderr).
pub fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().expect("spawn");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// One field line of `iasl -d` output for a data table:
/// `[024h 0036 001h]   Subtable Type : 00 [CXL Host Bridge Structure]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DslField {
    /// Byte offset in the table.
    pub offset: usize,
    /// Field length in bytes.
    pub len: usize,
    /// Field name as iasl prints it.
    pub name: String,
    /// Value text (hex without prefix, or a quoted string), annotation stripped.
    pub value: String,
}

/// Parses every field line of a data-table disassembly.
pub fn parse_dsl_fields(dsl: &str) -> Vec<DslField> {
    dsl.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('[')?;
            let (pos, rest) = rest.split_once(']')?;
            let mut p = pos.split_whitespace();
            let offset = usize::from_str_radix(p.next()?.trim_end_matches('h'), 16).ok()?;
            let _dec = p.next()?;
            let len = usize::from_str_radix(p.next()?.trim_end_matches('h'), 16).ok()?;
            let (name, value) = rest.split_once(" : ")?;
            let value = value.trim();
            let value = if value.starts_with('"') {
                value.split('"').nth(1).map(|s| format!("\"{s}\""))?
            } else {
                value.split_whitespace().next()?.to_string()
            };
            Some(DslField {
                offset,
                len,
                name: name.trim().to_string(),
                value,
            })
        })
        .collect()
}

/// The result of one `evaluate` in an acpiexec batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcpiValue {
    /// `[Integer] = ...`
    Integer(u64),
    /// `[String] Length nn = "..."`
    String(String),
    /// `[Buffer] Length nn = <hex dump>`
    Buffer(Vec<u8>),
    /// `[Package] Contains n Elements:` followed by its (flat) elements.
    Package(Vec<AcpiValue>),
    /// Anything else (or an evaluation error): the raw text.
    Other(String),
}

fn hex_dump_bytes(line: &str) -> Vec<u8> {
    // "    0000: 88 0D 00 ...  // ascii"  (also inline after "= ")
    let Some((_, rest)) = line.split_once(": ") else {
        return Vec::new();
    };
    let rest = rest.split("//").next().unwrap_or("");
    rest.split_whitespace()
        .map_while(|t| u8::from_str_radix(t, 16).ok())
        .collect()
}

fn parse_value(lines: &mut std::iter::Peekable<std::slice::Iter<'_, &str>>) -> AcpiValue {
    let Some(first) = lines.next() else {
        return AcpiValue::Other(String::new());
    };
    let t = first.trim();
    if let Some(v) = t.strip_prefix("[Integer] = ") {
        return u64::from_str_radix(v.trim(), 16)
            .map(AcpiValue::Integer)
            .unwrap_or_else(|_| AcpiValue::Other(t.into()));
    }
    if t.starts_with("[String]") {
        return AcpiValue::String(t.split('"').nth(1).unwrap_or("").to_string());
    }
    if t.starts_with("[Buffer]") {
        let mut bytes = hex_dump_bytes(t.split_once(" = ").map_or("", |x| x.1));
        while let Some(next) = lines.peek() {
            let n = next.trim();
            if n.len() > 5
                && n.as_bytes()[4] == b':'
                && n[..4].chars().all(|c| c.is_ascii_hexdigit())
            {
                bytes.extend(hex_dump_bytes(n));
                lines.next();
            } else {
                break;
            }
        }
        return AcpiValue::Buffer(bytes);
    }
    if let Some(rest) = t.strip_prefix("[Package] Contains ") {
        let n: usize = rest
            .split_whitespace()
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        return AcpiValue::Package((0..n).map(|_| parse_value(lines)).collect());
    }
    AcpiValue::Other(t.to_string())
}

/// Runs acpiexec in batch mode on `tables` with `commands` (each an `evaluate ...`) and
/// returns the full output plus one value per command.
pub fn acpiexec(bin: &Path, tables: &[&Path], commands: &[String]) -> (String, Vec<AcpiValue>) {
    let (ok, out) = run(Command::new(bin.join("acpiexec"))
        .arg("-b")
        .arg(commands.join(";"))
        .args(tables));
    assert!(ok, "acpiexec failed:\n{out}");
    let lines: Vec<&str> = out.lines().collect();
    let mut values = Vec::new();
    let mut it = lines.iter().peekable();
    while let Some(l) = it.next() {
        if l.starts_with("Evaluating ") {
            // Skip to "Evaluation of ... returned object" (or record the error).
            let mut v = None;
            while let Some(n) = it.peek() {
                if n.starts_with("Evaluation of ") {
                    it.next();
                    v = Some(parse_value(&mut it));
                    break;
                }
                if n.starts_with("Evaluating ") {
                    break;
                }
                let n = it.next().expect("peeked");
                if n.contains("Exception") || n.contains("Error") {
                    v = Some(AcpiValue::Other(n.to_string()));
                    break;
                }
            }
            values.push(v.unwrap_or_else(|| AcpiValue::Other("no result".into())));
        }
    }
    assert_eq!(values.len(), commands.len(), "acpiexec output:\n{out}");
    (out, values)
}

/// A UUID as the 16-byte buffer `ToUUID` produces, in acpiexec's `( .. )` buffer syntax.
pub fn uuid_arg(uuid: &str) -> String {
    let h: Vec<u8> = uuid
        .split('-')
        .flat_map(|part| {
            (0..part.len())
                .step_by(2)
                .map(move |i| u8::from_str_radix(&part[i..i + 2], 16).expect("hex"))
        })
        .collect();
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    let bytes: Vec<String> = order.iter().map(|&i| format!("{:02X}", h[i])).collect();
    format!("({})", bytes.join(" "))
}

/// DWORDs as an acpiexec buffer argument.
pub fn dwords_arg(dwords: &[u32]) -> String {
    let bytes: Vec<String> = dwords
        .iter()
        .flat_map(|d| d.to_le_bytes())
        .map(|b| format!("{b:02X}"))
        .collect();
    format!("({})", bytes.join(" "))
}

/// Little-endian DWORDs of a buffer.
pub fn dwords(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
