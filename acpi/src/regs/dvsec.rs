//! PCIe DVSEC for CXL Devices (DVSEC ID 0) and the common DVSEC header.

use bitfield_struct::bitfield;

/// CXL DVSEC vendor ID.
pub const CXL_VENDOR_ID: u16 = 0x1E98;
/// DVSEC ID of the PCIe DVSEC for CXL Devices.
pub const DVSEC_ID_CXL_DEVICE: u16 = 0x0;
/// DVSEC ID of the CXL Extensions DVSEC for Ports.
pub const DVSEC_ID_PORT_EXTENSIONS: u16 = 0x3;
/// DVSEC ID of the GPF DVSEC for CXL Ports.
pub const DVSEC_ID_PORT_GPF: u16 = 0x4;
/// DVSEC ID of the GPF DVSEC for CXL Devices.
pub const DVSEC_ID_DEVICE_GPF: u16 = 0x5;
/// DVSEC ID of the PCIe DVSEC for Flex Bus Port.
pub const DVSEC_ID_FLEX_BUS: u16 = 0x7;
/// DVSEC ID of the Register Locator DVSEC.
pub const DVSEC_ID_REGISTER_LOCATOR: u16 = 0x8;

/// Offsets of the CXL Device DVSEC registers, relative to the DVSEC start.
pub mod off {
    /// DVSEC Header 1 (32-bit).
    pub const HEADER1: u16 = 0x04;
    /// DVSEC Header 2 (16-bit).
    pub const HEADER2: u16 = 0x08;
    /// DVSEC CXL Capability.
    pub const CAPABILITY: u16 = 0x0A;
    /// DVSEC CXL Control.
    pub const CONTROL: u16 = 0x0C;
    /// DVSEC CXL Status.
    pub const STATUS: u16 = 0x0E;
    /// DVSEC CXL Control2.
    pub const CONTROL2: u16 = 0x10;
    /// DVSEC CXL Status2.
    pub const STATUS2: u16 = 0x12;
    /// DVSEC CXL Lock.
    pub const LOCK: u16 = 0x14;
    /// DVSEC CXL Capability2.
    pub const CAPABILITY2: u16 = 0x16;
    /// Range n Size High (`n` = 0 or 1).
    pub const fn range_size_hi(n: u16) -> u16 {
        0x18 + 0x10 * n
    }
    /// Range n Size Low.
    pub const fn range_size_lo(n: u16) -> u16 {
        0x1C + 0x10 * n
    }
    /// Range n Base High.
    pub const fn range_base_hi(n: u16) -> u16 {
        0x20 + 0x10 * n
    }
    /// Range n Base Low.
    pub const fn range_base_lo(n: u16) -> u16 {
        0x24 + 0x10 * n
    }
    /// DVSEC CXL Capability3 (DVSEC revision ≥ 2).
    pub const CAPABILITY3: u16 = 0x38;
    /// Length of a revision-2+ CXL Device DVSEC.
    pub const LENGTH_REV2: u16 = 0x3C;
}

/// DVSEC Header 1 (DVSEC + 0x04).
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct DvsecHeader1 {
    /// DVSEC vendor ID.
    pub vendor: u16,
    /// DVSEC revision.
    #[bits(4)]
    pub revision: u8,
    /// Length of the whole DVSEC in bytes.
    #[bits(12)]
    pub length: u16,
}

/// DVSEC CXL Capability (0x0A, RO).
#[bitfield(u16)]
#[derive(PartialEq, Eq)]
pub struct DvsecCapability {
    /// CXL.cache capable.
    pub cache_capable: bool,
    /// CXL.io capable.
    pub io_capable: bool,
    /// CXL.mem capable.
    pub mem_capable: bool,
    /// Mem_HwInit_Mode.
    pub mem_hwinit_mode: bool,
    /// Number of DVSEC ranges (HDM_Count).
    #[bits(2)]
    pub hdm_count: u8,
    /// Cache writeback and invalidate capable.
    pub cache_wbi_capable: bool,
    /// CXL Reset capable.
    pub cxl_reset_capable: bool,
    /// CXL Reset timeout (encoded).
    #[bits(3)]
    pub cxl_reset_timeout: u8,
    /// CXL Reset Mem Clr capable.
    pub cxl_reset_mem_clr_capable: bool,
    /// TSP capable.
    pub tsp_capable: bool,
    /// Multiple Logical Device.
    pub mld: bool,
    /// Viral capable.
    pub viral_capable: bool,
    /// PM init completion reporting capable.
    pub pm_init_reporting_capable: bool,
}

/// DVSEC CXL Control (0x0C).
#[bitfield(u16)]
#[derive(PartialEq, Eq)]
pub struct DvsecControl {
    /// Cache_Enable.
    pub cache_enable: bool,
    /// IO_Enable (reads 1).
    pub io_enable: bool,
    /// Mem_Enable.
    pub mem_enable: bool,
    /// Cache snoop-filter coverage.
    #[bits(5)]
    pub cache_sf_coverage: u8,
    /// Cache snoop-filter granularity.
    #[bits(3)]
    pub cache_sf_granularity: u8,
    /// Cache clean eviction.
    pub cache_clean_eviction: bool,
    /// Direct P2P mem enable.
    pub p2p_mem_enable: bool,
    /// Reserved (bit 13).
    pub rsvd13: bool,
    /// Viral enable.
    pub viral_enable: bool,
    /// Reserved (bit 15).
    pub rsvd15: bool,
}

/// DVSEC CXL Control2 (0x10).
#[bitfield(u16)]
#[derive(PartialEq, Eq)]
pub struct DvsecControl2 {
    /// Disable caching.
    pub disable_caching: bool,
    /// Initiate cache write-back and invalidation.
    pub initiate_cache_wbi: bool,
    /// Initiate CXL Reset.
    pub initiate_cxl_reset: bool,
    /// CXL Reset Mem Clr enable.
    pub cxl_reset_mem_clr_enable: bool,
    /// Desired volatile HDM state after hot reset.
    pub desired_volatile_hdm: bool,
    /// Modified completion enable.
    pub mod_completion_enable: bool,
    #[bits(10)]
    __: u16,
}

/// DVSEC CXL Status2 (0x12).
#[bitfield(u16)]
#[derive(PartialEq, Eq)]
pub struct DvsecStatus2 {
    /// Cache invalid.
    pub cache_invalid: bool,
    /// CXL Reset complete.
    pub cxl_reset_complete: bool,
    /// CXL Reset error.
    pub cxl_reset_error: bool,
    /// Volatile HDM preservation error (RW1CS).
    pub volatile_hdm_pres_error: bool,
    #[bits(11)]
    __: u16,
    /// Power management initialisation complete.
    pub pm_init_complete: bool,
}

/// DVSEC CXL Lock (0x14).
#[bitfield(u16)]
#[derive(PartialEq, Eq)]
pub struct DvsecLock {
    /// CONFIG_LOCK (RWO).
    pub config_lock: bool,
    #[bits(15)]
    __: u16,
}

/// Range n Size Low.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct DvsecRangeSizeLo {
    /// Memory_Info_Valid.
    pub memory_info_valid: bool,
    /// Memory_Active.
    pub memory_active: bool,
    /// Media type.
    #[bits(3)]
    pub media_type: u8,
    /// Memory class.
    #[bits(3)]
    pub memory_class: u8,
    /// Desired interleave.
    #[bits(5)]
    pub desired_interleave: u8,
    /// Memory_Active timeout.
    #[bits(3)]
    pub memory_active_timeout: u8,
    /// Memory_Active degraded.
    pub memory_active_degraded: bool,
    #[bits(11)]
    __: u16,
    /// Size bits 31:28.
    #[bits(4)]
    pub size_31_28: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_positions() {
        assert_eq!(
            DvsecCapability::new().with_mem_capable(true).into_bits(),
            1 << 2
        );
        assert_eq!(DvsecCapability::new().with_hdm_count(1).into_bits(), 1 << 4);
        assert_eq!(
            DvsecCapability::new()
                .with_cxl_reset_capable(true)
                .into_bits(),
            1 << 7
        );
        assert_eq!(
            DvsecControl::new().with_mem_enable(true).into_bits(),
            1 << 2
        );
        assert_eq!(
            DvsecControl::new().with_viral_enable(true).into_bits(),
            1 << 14
        );
        assert_eq!(
            DvsecControl2::new()
                .with_initiate_cxl_reset(true)
                .into_bits(),
            1 << 2
        );
        assert_eq!(
            DvsecStatus2::new().with_pm_init_complete(true).into_bits(),
            1 << 15
        );
        assert_eq!(
            DvsecRangeSizeLo::new().with_size_31_28(1).into_bits(),
            1 << 28
        );
        let h = DvsecHeader1::new()
            .with_vendor(CXL_VENDOR_ID)
            .with_revision(2)
            .with_length(0x3C);
        assert_eq!(h.into_bits(), 0x03C2_1E98);
    }
}
