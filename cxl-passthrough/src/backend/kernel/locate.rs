//! Where a VFIO device is, and how to reach it: the [`DeviceLocator`] a user gives, and
//! its resolution against sysfs and `/dev` into the nodes to open ([`OpenPlan`]).
//!
//! Resolution only reads the filesystem (directories, symlinks); roots are configurable
//! ([`HostPaths`]) so tests fake the layout in a temporary directory.

use std::path::{Path, PathBuf};

use super::error::OpenError;

/// How the user designates a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceLocator {
    /// A VFIO device cdev, e.g. `/dev/vfio/devices/vfio0` (iommufd path).
    Cdev(PathBuf),
    /// A PCI address (`0000:01:00.0`): the cdev if the kernel has one for it, else the
    /// legacy group/container path.
    Bdf(String),
    /// A PCI address, forced through the legacy group/container path.
    BdfGroup(String),
}

impl DeviceLocator {
    /// Parses a command-line designation: a path (contains `/`) is a cdev, anything
    /// else a BDF.
    pub fn parse(s: &str) -> Self {
        if s.contains('/') {
            DeviceLocator::Cdev(PathBuf::from(s))
        } else {
            DeviceLocator::Bdf(s.to_string())
        }
    }
}

/// Roots of the host filesystem the open path reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPaths {
    /// sysfs mount point (`/sys`).
    pub sysfs: PathBuf,
    /// devtmpfs mount point (`/dev`).
    pub dev: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        Self {
            sysfs: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
        }
    }
}

impl HostPaths {
    /// `/dev/iommu`.
    pub fn iommu(&self) -> PathBuf {
        self.dev.join("iommu")
    }

    /// `/dev/vfio/vfio`.
    pub fn container(&self) -> PathBuf {
        self.dev.join("vfio").join("vfio")
    }

    fn pci_device(&self, bdf: &str) -> PathBuf {
        self.sysfs.join("bus/pci/devices").join(bdf)
    }
}

/// The nodes to open for a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenPlan {
    /// iommufd path: the device cdev and `/dev/iommu`.
    Cdev {
        /// The device cdev.
        cdev: PathBuf,
        /// The iommufd node.
        iommu: PathBuf,
    },
    /// Legacy path: container, group node and the device name in the group.
    Group {
        /// `/dev/vfio/vfio`.
        container: PathBuf,
        /// `/dev/vfio/<group>`.
        group: PathBuf,
        /// The group number (for messages).
        group_id: String,
        /// The normalized PCI address.
        bdf: String,
    },
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|c| c.is_ascii_hexdigit())
}

/// Normalizes a PCI address to `dddd:bb:dd.f` (lowercase, domain added when absent).
pub fn normalize_bdf(bdf: &str) -> Result<String, OpenError> {
    let bad = || OpenError::InvalidBdf(bdf.to_string());
    let parts: Vec<&str> = bdf.split(':').collect();
    let (dom, bus, devfn) = match parts.as_slice() {
        [d, b, df] => (*d, *b, *df),
        [b, df] => ("0000", *b, *df),
        _ => return Err(bad()),
    };
    let (dev, func) = devfn.split_once('.').ok_or_else(bad)?;
    let func_ok = func.len() == 1 && matches!(func.as_bytes().first(), Some(b'0'..=b'7'));
    if !(is_hex(dom, 4) && is_hex(bus, 2) && is_hex(dev, 2) && func_ok) {
        return Err(bad());
    }
    Ok(format!("{dom}:{bus}:{dev}.{func}").to_ascii_lowercase())
}

fn link_name(p: &Path) -> Option<String> {
    let target = std::fs::read_link(p).ok()?;
    Some(target.file_name()?.to_str()?.to_string())
}

/// Checks the device exists and is bound to a VFIO driver; returns its sysfs directory.
fn vfio_bound(paths: &HostPaths, bdf: &str) -> Result<PathBuf, OpenError> {
    let dir = paths.pci_device(bdf);
    if !dir.exists() {
        return Err(OpenError::PathMissing(dir));
    }
    let driver = link_name(&dir.join("driver"));
    match driver {
        // vfio-pci itself or a vfio-pci variant driver (`*-vfio-pci`, `vfio-*`).
        Some(d) if d.contains("vfio") => Ok(dir),
        other => Err(OpenError::NotBoundToVfio {
            bdf: bdf.to_string(),
            driver: other.unwrap_or_else(|| "none".to_string()),
        }),
    }
}

/// The cdev of a bound device, if the kernel created one.
fn cdev_of(paths: &HostPaths, dir: &Path) -> Option<PathBuf> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("vfio-dev"))
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            n.strip_prefix("vfio")
                .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
        })
        .collect();
    names.sort();
    let name = names.into_iter().next()?;
    Some(paths.dev.join("vfio/devices").join(name))
}

fn group_plan(paths: &HostPaths, dir: &Path, bdf: &str) -> Result<OpenPlan, OpenError> {
    let link = dir.join("iommu_group");
    let group_id = link_name(&link).ok_or_else(|| OpenError::PathMissing(link.clone()))?;
    if group_id.is_empty() || !group_id.bytes().all(|c| c.is_ascii_digit()) {
        return Err(OpenError::BadAnswer(format!(
            "{}: unexpected group name {group_id:?}",
            link.display()
        )));
    }
    let group = paths.dev.join("vfio").join(&group_id);
    if !group.exists() {
        return Err(OpenError::PathMissing(group));
    }
    Ok(OpenPlan::Group {
        container: paths.container(),
        group,
        group_id,
        bdf: bdf.to_string(),
    })
}

/// sysfs subsystem of VFIO device cdevs (`/sys/dev/char/M:m/subsystem`).
const VFIO_CDEV_SUBSYSTEM: &str = "vfio-dev";

/// Checks that `path`, given as a device cdev, is one: a character device of the
/// `vfio-dev` subsystem (read from `<sysfs>/dev/char/<major>:<minor>/subsystem`; where
/// sysfs does not tell, a character device under `<dev>/vfio/devices/`). A missing path
/// is [`OpenError::PathMissing`]; a directory, a regular file or another device (such as
/// `/dev/null`) is [`OpenError::NotVfioDevice`], whose message says how to bind a
/// device. When `path` cannot be examined (no permission), the open reports why.
pub fn check_vfio_node(path: &Path, paths: &HostPaths) -> Result<(), OpenError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    let md = match std::fs::metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(OpenError::PathMissing(path.to_path_buf()));
        }
        Err(_) => return Ok(()),
    };
    let ft = md.file_type();
    let what = if ft.is_dir() {
        "it is a directory".to_string()
    } else if ft.is_file() {
        "it is a regular file".to_string()
    } else if ft.is_char_device() {
        let rdev = md.rdev();
        let (major, minor) = (libc::major(rdev), libc::minor(rdev));
        let link = paths
            .sysfs
            .join(format!("dev/char/{major}:{minor}/subsystem"));
        match link_name(&link) {
            Some(s) if s == VFIO_CDEV_SUBSYSTEM => return Ok(()),
            Some(s) if s == "vfio" => {
                "it is a VFIO group node; give the device's PCI address instead".to_string()
            }
            Some(s) => format!("it is a character device {major}:{minor} of subsystem {s}"),
            None => {
                let vfio_dir = paths.dev.join("vfio/devices");
                let under = std::fs::canonicalize(path).is_ok_and(|p| {
                    std::fs::canonicalize(&vfio_dir).is_ok_and(|d| p.starts_with(d))
                });
                if under {
                    return Ok(());
                }
                format!(
                    "it is a character device {major}:{minor} outside {}",
                    vfio_dir.display()
                )
            }
        }
    } else if ft.is_block_device() {
        "it is a block device".to_string()
    } else {
        "it is not a device node".to_string()
    };
    Err(OpenError::NotVfioDevice {
        path: path.to_path_buf(),
        what,
    })
}

/// Resolves a locator into the nodes to open. Reads sysfs only; opens nothing.
pub fn resolve(loc: &DeviceLocator, paths: &HostPaths) -> Result<OpenPlan, OpenError> {
    match loc {
        DeviceLocator::Cdev(p) => Ok(OpenPlan::Cdev {
            cdev: p.clone(),
            iommu: paths.iommu(),
        }),
        DeviceLocator::Bdf(b) => {
            let bdf = normalize_bdf(b)?;
            let dir = vfio_bound(paths, &bdf)?;
            match cdev_of(paths, &dir) {
                Some(cdev) if cdev.exists() && paths.iommu().exists() => Ok(OpenPlan::Cdev {
                    cdev,
                    iommu: paths.iommu(),
                }),
                _ => group_plan(paths, &dir, &bdf),
            }
        }
        DeviceLocator::BdfGroup(b) => {
            let bdf = normalize_bdf(b)?;
            let dir = vfio_bound(paths, &bdf)?;
            group_plan(paths, &dir, &bdf)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bdf_normalization() {
        assert_eq!(
            normalize_bdf("01:00.0").ok().as_deref(),
            Some("0000:01:00.0")
        );
        assert_eq!(
            normalize_bdf("0000:AF:1F.7").ok().as_deref(),
            Some("0000:af:1f.7")
        );
        for bad in [
            "",
            "0000:01:00",
            "0000:01:00.8",
            "../../etc",
            "0:01:00.0",
            "0000:01:00.0/x",
        ] {
            assert!(
                matches!(normalize_bdf(bad), Err(OpenError::InvalidBdf(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn only_vfio_device_nodes_pass_the_node_check() {
        let paths = HostPaths::default();
        let what = |p: &Path| match check_vfio_node(p, &paths) {
            Err(OpenError::NotVfioDevice { what, .. }) => what,
            other => panic!("{}: {other:?}", p.display()),
        };
        assert_eq!(what(&std::env::temp_dir()), "it is a directory");
        let file = std::env::temp_dir().join(format!("cxl-node-check-{}", std::process::id()));
        std::fs::write(&file, b"").unwrap();
        let w = what(&file);
        std::fs::remove_file(&file).unwrap();
        assert_eq!(w, "it is a regular file");
        assert!(what(Path::new("/dev/null")).starts_with("it is a character device 1:3 "));
        let missing = Path::new("/dev/vfio/devices/vfio-nonexistent");
        assert!(matches!(
            check_vfio_node(missing, &paths),
            Err(OpenError::PathMissing(p)) if p == missing
        ));
    }

    #[test]
    fn parse_distinguishes_paths_from_bdfs() {
        assert_eq!(
            DeviceLocator::parse("/dev/vfio/devices/vfio3"),
            DeviceLocator::Cdev("/dev/vfio/devices/vfio3".into())
        );
        assert_eq!(
            DeviceLocator::parse("0000:01:00.0"),
            DeviceLocator::Bdf("0000:01:00.0".into())
        );
    }
}
