//! Simulator configuration and its validation.

use crate::uapi::UapiRevision;
use thiserror::Error;

use crate::regs::component::COMPONENT_BLOCK_SIZE;
use crate::regs::hdm::{HDM_GRANULE, HdmCapability};

/// BAR layout: where the 64 KiB component register block sits inside its BAR, and so
/// which sparse (mappable) areas the BAR has around it. The concrete layout a kernel
/// reports is a [`crate::uapi::ComponentBar`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarLayout {
    /// BAR layout A: block at the end of the BAR (one sparse area before it).
    End,
    /// BAR layout B: block at offset 0 (one sparse area after it).
    Start,
    /// BAR layout C: block in the middle (areas before and after it).
    Middle,
    /// The BAR is exactly the block (no sparse capability). Requires a 64 KiB BAR.
    Whole,
}

/// How region file offsets are assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetLayout {
    /// `index << 40`, as vfio-pci does.
    Kernel,
    /// Regions packed one after another (not `index << 40`), DPA last, to catch callers
    /// that compute offsets instead of taking them from the region info.
    Packed,
}

/// Configuration of a simulated CXL Type-2 device and its kernel driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// UAPI revision.
    pub revision: UapiRevision,
    /// Device memory size (multiple of 256 MiB, non-zero).
    pub dpa_size: u64,
    /// Number of HDM decoders (1, or an even number up to 16; v3 requires 1).
    pub decoder_count: u32,
    /// Position of the component block in its BAR.
    pub bar_layout: BarLayout,
    /// BAR index of the component register block (a 64-bit BAR, so 0..=4).
    pub component_bar: u8,
    /// Size of the component BAR (power of two, large enough for the BAR layout).
    pub bar_size: u64,
    /// DVSEC Capability Cache_Capable (CXL.cache, HDM-DB).
    pub cache_capable: bool,
    /// DVSEC Capability CXL_Reset_Capable (and Mem_Clr capable).
    pub cxl_reset_capable: bool,
    /// Firmware committed decoder 0 at `host_hpa`.
    pub firmware_committed: bool,
    /// Firmware set Lock-On-Commit on decoder 0.
    pub firmware_locked: bool,
    /// Firmware set DVSEC Lock.CONFIG_LOCK.
    pub dvsec_config_locked: bool,
    /// Host physical address of the firmware-committed decoder 0 (256 MiB aligned).
    pub host_hpa: u64,
    /// How region file offsets are laid out.
    pub offset_layout: OffsetLayout,
    /// Whether hardware decoder 0 is committed again (firmware state) after a
    /// function or CXL reset; `false` models a reset that clears the decoders.
    pub post_reset_hw_committed: bool,
    /// Whether `open()` runs a function reset first, like `vfio_pci_core_enable()`.
    pub reset_on_open: bool,
    /// `disable_cxl=1`: the device binds as plain vfio-pci.
    pub disable_cxl: bool,
    /// Whether the DPA region advertises MMAP (the BOS 7.0 kernel withheld it until
    /// 2026-07; the v2 selftest treats it as optional).
    pub dpa_mmap: bool,
    /// HDM Capability Poison-On-Decode-Error capable (bit 10).
    pub poison_capable: bool,
    /// HDM Capability UIO capable (bit 13).
    pub uio_capable: bool,
    /// PCI vendor ID.
    pub vendor_id: u16,
    /// PCI device ID.
    pub device_id: u16,
    /// PCI class code (24 bits: class, subclass, prog-if).
    pub class_code: u32,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            revision: UapiRevision::V2,
            dpa_size: 512 << 20,
            decoder_count: 1,
            bar_layout: BarLayout::End,
            component_bar: 2,
            bar_size: 256 << 10,
            cache_capable: true,
            cxl_reset_capable: true,
            firmware_committed: true,
            firmware_locked: true,
            dvsec_config_locked: false,
            host_hpa: 0x23_5000_0000,
            offset_layout: OffsetLayout::Kernel,
            post_reset_hw_committed: true,
            reset_on_open: true,
            disable_cxl: false,
            dpa_mmap: true,
            poison_capable: false,
            uio_capable: false,
            vendor_id: 0x1B36,
            device_id: 0x00C2,
            class_code: 0x12_0000,
        }
    }
}

impl SimConfig {
    /// The default device for `revision`.
    pub fn new(revision: UapiRevision) -> Self {
        Self {
            revision,
            ..Self::default()
        }
    }

    /// Offset of the component block in its BAR for the configured BAR layout.
    pub fn component_offset(&self) -> u64 {
        match self.bar_layout {
            BarLayout::End => self.bar_size.saturating_sub(COMPONENT_BLOCK_SIZE),
            BarLayout::Start | BarLayout::Whole => 0,
            BarLayout::Middle => {
                (self.bar_size.saturating_sub(COMPONENT_BLOCK_SIZE) / 2)
                    & !(COMPONENT_BLOCK_SIZE - 1)
            }
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: &str| Err(SimError::Config(m.to_string()));
        if self.dpa_size == 0 || !self.dpa_size.is_multiple_of(HDM_GRANULE) {
            return bad("dpa_size must be a non-zero multiple of 256 MiB");
        }
        if self.dpa_size > 1 << 40 {
            return bad("dpa_size over 1 TiB");
        }
        if !self.host_hpa.is_multiple_of(HDM_GRANULE)
            || self.host_hpa.checked_add(self.dpa_size).is_none()
        {
            return bad("host_hpa must be 256 MiB aligned and not overflow");
        }
        if HdmCapability::encode_decoder_count(self.decoder_count).is_none() {
            return bad("decoder_count must be 1 or an even number up to 16");
        }
        if self.component_bar > 4 {
            return bad("component_bar must be 0..=4 (64-bit BAR)");
        }
        if !self.bar_size.is_power_of_two()
            || self.bar_size < COMPONENT_BLOCK_SIZE
            || self.bar_size > 1 << 40
        {
            return bad("bar_size must be a power of two between 64 KiB and 1 TiB");
        }
        let min = match self.bar_layout {
            BarLayout::Whole => COMPONENT_BLOCK_SIZE,
            BarLayout::End | BarLayout::Start => 2 * COMPONENT_BLOCK_SIZE,
            BarLayout::Middle => 4 * COMPONENT_BLOCK_SIZE,
        };
        if self.bar_size < min || (self.bar_layout == BarLayout::Whole && self.bar_size != min) {
            return bad("bar_size does not fit the BAR layout");
        }
        if self.class_code > 0xFF_FFFF {
            return bad("class_code is 24 bits");
        }
        Ok(())
    }
}

/// Why a simulated device could not be created (the kernel's bind failed).
#[derive(Debug, Error)]
pub enum SimError {
    /// The configuration is inconsistent.
    #[error("invalid simulator config: {0}")]
    Config(String),
    /// v3 bind is fail-closed: the device would not bind at all.
    #[error("bind failed ({errno}): {reason}")]
    BindFailed {
        /// The errno the kernel's bind returns.
        errno: i32,
        /// Why.
        reason: String,
    },
    /// Creating the backing memory file failed.
    #[error("simulator backing memory")]
    Io(#[from] std::io::Error),
}

/// An errno value, as the kernel returns it from an ioctl or file operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

impl Errno {
    /// `EINVAL`.
    pub const EINVAL: Errno = Errno(libc::EINVAL);
    /// `EIO`.
    pub const EIO: Errno = Errno(libc::EIO);
    /// `EFAULT`.
    pub const EFAULT: Errno = Errno(libc::EFAULT);
    /// `EPERM`.
    pub const EPERM: Errno = Errno(libc::EPERM);
    /// `ENODEV`.
    pub const ENODEV: Errno = Errno(libc::ENODEV);
    /// `EOVERFLOW`.
    pub const EOVERFLOW: Errno = Errno(libc::EOVERFLOW);
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", std::io::Error::from_raw_os_error(self.0))
    }
}

impl std::error::Error for Errno {}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Self {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}
