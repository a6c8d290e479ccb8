//! A real arm64 Linux guest consumes our tables: Debian's arm64 6.12 kernel under
//! `qemu-system-aarch64 -M virt -cpu max` (TCG) with the UEFI firmware and `acpi=force`,
//! our CEDT and SSDT added through the kernel's initrd table upgrade (QEMU's arm machines
//! refuse `-acpitable`), `cxl_acpi` loaded. The assertions are the x86 test's
//! (`acpi_linux_guest.rs`, `acpi_support::guest`), plus the table-upgrade banners that
//! show how the tables got in.

mod acpi_support;

use acpi_support::guest::{GuestMachine, check_cxl_root};

/// QEMU's `virt` memory map with 512 MiB of RAM (the guest's /proc/iomem): RAM at
/// 0x4000_0000, PCI0's `_CRS` windows 0x1000_0000-0x3EFE_FFFF and
/// 0x80_0000_0000-0xFF_FFFF_FFFF, the ECAM at 0x40_1000_0000 (MCFG, buses 0-255). The
/// 256 MiB Type-2 window goes at 1 TiB, right above the 64-bit PCI window: nothing else
/// claims it, so /proc/iomem shows exactly "CXL Window 0". The CHBCR is the last 64 KiB of
/// that PCI window, where no BAR lives: on `virt` an access nothing decodes is a
/// synchronous external abort (a devmem read at 1 TiB or 64 GiB dies with SIGBUS), while
/// the PCI windows read all-ones, as unclaimed addresses do on q35. So, as on x86, the
/// host bridge's component registers are not there and its port cannot probe.
const VIRT: GuestMachine = GuestMachine {
    arch: "arm64",
    window_base: 0x100_0000_0000,
    window_size: 0x1000_0000,
    chbcr_base: 0xFF_FFFF_0000,
    table_banners: &[
        "ACPI: CEDT ACPI table found in initrd [kernel/firmware/acpi/cedt.aml]",
        "ACPI: SSDT ACPI table found in initrd [kernel/firmware/acpi/ssdt.aml]",
        "ACPI: Table Upgrade: install [CEDT-CXLPT -CXLPTVMM]",
        "ACPI: Table Upgrade: install [SSDT-CXLPT -CXLPTVMM]",
    ],
};

#[test]
fn arm64_linux_guest_builds_cxl_root_decoder_from_our_tables() {
    check_cxl_root(
        "arm64_linux_guest_builds_cxl_root_decoder_from_our_tables",
        &VIRT,
        &[
            "arm64/kernel/vmlinuz",
            "arm64/busybox",
            "arm64/QEMU_EFI.fd",
            "bin/qemu-system-aarch64",
        ],
        "qemu-system-aarch64, its UEFI firmware, the arm64 Debian 6.12 kernel or arm64 \
         busybox-static",
        "arm64",
    );
}
