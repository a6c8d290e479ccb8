//! The kernel's VFIO CXL UAPI: constants, byte layouts and validating parsers.
//!
//! Pure code: byte slices in, typed values or typed errors out. No I/O, no `unsafe`.
//! Supported revisions, detection and validation rules are described in `docs/uapi.md`.

pub mod chain;
pub mod device;
pub mod error;
pub mod layout;
pub mod region;
pub mod v3_shadow;
pub mod v4;
pub mod wire;

pub use device::{
    CxlInfo, DeviceInfo, RawCxlCap, RevisionChoice, UapiRevision, UnknownRevision, detect_revision,
    parse_device_info,
};
pub use error::{Answer, RegionRole, UapiError};
pub use layout::{
    CompRegsLayout, ComponentBar, ComponentBlock, CxlLayout, DpaLayout, validate_layout,
    validate_layout_with_page_size,
};
pub use region::{RegionFlags, RegionInfo, parse_region_info};
pub use v4::discover_v4;
