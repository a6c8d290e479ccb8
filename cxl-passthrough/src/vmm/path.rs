//! [`DevicePath`]: the string a VMM user gives to designate a device, parsed.
//!
//! - a VFIO device cdev (`/dev/vfio/devices/vfio0`), a PCI address (`0000:01:00.0`) or
//!   the device's sysfs directory (`/sys/bus/pci/devices/0000:01:00.0/`, as
//!   cloud-hypervisor's `--device path=` takes it): the kernel backend
//!   ([`crate::backend::kernel::DeviceLocator`]);
//! - with the `sim` feature, TEST ONLY: `sim:<revision>` (`sim:v2`, `sim:v3`, ... one per
//!   [`UapiRevision`](crate::uapi::UapiRevision)) for the simulator of the kernel's
//!   vfio-pci CXL driver, and `sim:nocxl` for the same device bound to plain vfio-pci
//!   (no CXL UAPI), to check the "not a CXL device" error. A VMM forwards the string;
//!   it needs no knowledge of the syntax.

use std::sync::Arc;

use thiserror::Error;

use super::error::VmmError;
use crate::backend::Backend;
use crate::backend::kernel::locate::normalize_bdf;
use crate::backend::kernel::{DeviceLocator, KernelBackend};
#[cfg(feature = "sim")]
use crate::backend::sim::{SimConfig, SimDevice};
#[cfg(feature = "sim")]
use crate::uapi::UapiRevision;

/// Prefix of the simulator's device paths.
pub const SIM_PATH_PREFIX: &str = "sim:";

/// Why a device path is refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum PathError {
    /// The path is empty.
    #[error("empty device path")]
    Empty,
    /// `sim:...` names no simulated device.
    #[error(
        "unknown simulator device {0:?} (expected sim:nocxl or sim:<revision>, revisions: {1})"
    )]
    UnknownSim(String, String),
    /// `sim:...` in a build without the `sim` feature.
    #[error("{0:?} needs the test-only `sim` feature of cxl-passthrough")]
    SimNotBuilt(String),
}

/// A parsed device path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevicePath {
    /// A VFIO device, opened through the kernel backend.
    Kernel(DeviceLocator),
    /// TEST ONLY: a simulated device.
    #[cfg(feature = "sim")]
    Sim(SimConfig),
}

impl DevicePath {
    /// Parses `s` (see the module documentation).
    pub fn parse(s: &str) -> Result<Self, PathError> {
        if s.is_empty() {
            return Err(PathError::Empty);
        }
        match s.strip_prefix(SIM_PATH_PREFIX) {
            None => Ok(Self::Kernel(kernel_locator(s))),
            Some(name) => parse_sim(s, name),
        }
    }

    /// Whether the path names the simulator.
    pub fn is_sim(&self) -> bool {
        !matches!(self, Self::Kernel(_))
    }

    /// Opens the device: the VFIO device for a kernel path, a new simulated device for a
    /// simulator path.
    pub fn open(&self) -> Result<Arc<dyn Backend>, VmmError> {
        match self {
            Self::Kernel(loc) => Ok(Arc::new(KernelBackend::open(loc).map_err(VmmError::Open)?)),
            #[cfg(feature = "sim")]
            Self::Sim(cfg) => Ok(Arc::new(
                SimDevice::new(cfg.clone()).map_err(VmmError::Sim)?,
            )),
        }
    }
}

/// A sysfs device directory (a path outside `/dev` whose last component is a PCI
/// address) names the device by its address; anything else as [`DeviceLocator::parse`].
fn kernel_locator(s: &str) -> DeviceLocator {
    let last = s.trim_end_matches('/').rsplit('/').next().unwrap_or(s);
    if s.contains('/') && !s.starts_with("/dev/") && normalize_bdf(last).is_ok() {
        DeviceLocator::Bdf(last.to_string())
    } else {
        DeviceLocator::parse(s)
    }
}

#[cfg(feature = "sim")]
fn parse_sim(_path: &str, name: &str) -> Result<DevicePath, PathError> {
    if name == "nocxl" {
        return Ok(DevicePath::Sim(SimConfig {
            disable_cxl: true,
            ..SimConfig::new(UapiRevision::ALL[UapiRevision::ALL.len() - 1])
        }));
    }
    UapiRevision::ALL
        .into_iter()
        .find(|r| r.to_string() == name)
        .map(|r| DevicePath::Sim(SimConfig::new(r)))
        .ok_or_else(|| {
            let names: Vec<_> = UapiRevision::ALL.iter().map(|r| r.to_string()).collect();
            PathError::UnknownSim(name.to_string(), names.join(", "))
        })
}

#[cfg(not(feature = "sim"))]
fn parse_sim(path: &str, _name: &str) -> Result<DevicePath, PathError> {
    Err(PathError::SimNotBuilt(path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_paths_are_cdevs_or_bdfs() {
        assert_eq!(
            DevicePath::parse("0000:01:00.0"),
            Ok(DevicePath::Kernel(DeviceLocator::Bdf(
                "0000:01:00.0".into()
            )))
        );
        assert_eq!(
            DevicePath::parse("/dev/vfio/devices/vfio0"),
            Ok(DevicePath::Kernel(DeviceLocator::Cdev(
                "/dev/vfio/devices/vfio0".into()
            )))
        );
        for sysfs in [
            "/sys/bus/pci/devices/0000:01:00.0/",
            "/sys/bus/pci/devices/0000:01:00.0",
        ] {
            assert_eq!(
                DevicePath::parse(sysfs),
                Ok(DevicePath::Kernel(DeviceLocator::Bdf(
                    "0000:01:00.0".into()
                ))),
                "{sysfs}"
            );
        }
        // A path that ends in no PCI address stays a path (and fails to open as such).
        assert_eq!(
            DevicePath::parse("/sys/bus/pci/devices/"),
            Ok(DevicePath::Kernel(DeviceLocator::Cdev(
                "/sys/bus/pci/devices/".into()
            )))
        );
        assert_eq!(DevicePath::parse(""), Err(PathError::Empty));
    }

    #[cfg(feature = "sim")]
    #[test]
    fn sim_paths_name_every_revision_and_nocxl() {
        for rev in UapiRevision::ALL {
            let p = DevicePath::parse(&format!("sim:{rev}")).expect("revision");
            assert_eq!(p, DevicePath::Sim(SimConfig::new(rev)));
            assert!(p.is_sim());
        }
        let DevicePath::Sim(cfg) = DevicePath::parse("sim:nocxl").expect("nocxl") else {
            panic!("not a simulator path");
        };
        assert!(cfg.disable_cxl);
        let err = DevicePath::parse("sim:v9").expect_err("unknown");
        assert!(
            matches!(&err, PathError::UnknownSim(n, _) if n == "v9"),
            "{err:?}"
        );
        assert!(err.to_string().contains("v2"), "{err}");
    }

    #[cfg(feature = "sim")]
    #[test]
    fn a_nocxl_device_opens_but_is_not_a_cxl_device() {
        let backend = DevicePath::parse("sim:nocxl")
            .expect("parse")
            .open()
            .expect("open");
        let mut platform = super::super::Platform::new(1 << 40, 1 << 40, 4096).expect("area");
        let err = platform
            .plan_device(backend, crate::uapi::RevisionChoice::Auto)
            .expect_err("not CXL");
        assert!(
            matches!(
                err,
                VmmError::Probe(crate::runtime::probe::ProbeError::NotCxl)
            ),
            "{err:?}"
        );
    }
}
