//! A real Linux guest consumes our tables: Debian's 6.12 kernel under QEMU TCG (q35) with
//! our CEDT and SSDT injected through `-acpitable`, `cxl_acpi` loaded.
//!
//! QEMU does not emulate our CHBCR, so the host-bridge port cannot probe: the test asserts
//! exactly that message and nothing worse. The CHBCR itself ([`cxl_acpi::Chbcr`]) is proven
//! by the nested end-to-end test (patched cloud-hypervisor inside a QEMU guest), see
//! docs/testing.md. The same assertions for an arm64 guest: `acpi_linux_guest_arm64.rs`.

mod acpi_support;

use acpi_support::guest::{GuestMachine, check_cxl_root};

const WINDOW_BASE: u64 = 0x10_0000_0000;
const WINDOW_SIZE: u64 = 0x1000_0000;

/// One 256 MiB Type-2 window and the CHBCR right above it, both above QEMU's own PCI
/// windows (its PCI0 `_CRS` ends at 0x8_FFFF_FFFF with 512 MiB of RAM); nothing answers
/// at the CHBCR.
const Q35: GuestMachine = GuestMachine {
    arch: "x86_64",
    window_base: WINDOW_BASE,
    window_size: WINDOW_SIZE,
    chbcr_base: WINDOW_BASE + WINDOW_SIZE,
    table_banners: &[],
};

#[test]
fn linux_guest_builds_cxl_root_decoder_from_our_tables() {
    check_cxl_root(
        "linux_guest_builds_cxl_root_decoder_from_our_tables",
        &Q35,
        &["kernel/vmlinuz", "busybox", "bin/qemu-system-x86_64"],
        "QEMU, the Debian 6.12 kernel or busybox-static",
        "qemu kernel busybox",
    );
}
