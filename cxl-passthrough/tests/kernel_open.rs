//! Kernel backend: the two open sequences against a fake sysfs/dev tree and a recording
//! fake kernel, their error mapping, and DMA mapping through each IOMMU context.

mod kernel_support;

use std::io;
use std::path::{Path, PathBuf};

use cxl_passthrough::backend::BackendError;
use cxl_passthrough::backend::kernel::syscall as sv;
use cxl_passthrough::backend::kernel::{
    DeviceLocator, HostPaths, IommuCtx, KernelBackend, OpenError, OpenPlan, locate,
};
use kernel_support::{BDF, FakeSys, GROUP_DEVICE, Kind, Req, TempTree, Tree, fake_tree};

/// Knobs of the fake kernel.
#[derive(Clone)]
struct Script {
    viable: bool,
    api_version: usize,
    type1v2: usize,
    enotty_on: Option<u64>,
    /// Bytes the kernel reports as unmapped (None: all of them).
    unmapped: Option<u64>,
}

impl Default for Script {
    fn default() -> Self {
        Script {
            viable: true,
            api_version: 0,
            type1v2: 1,
            enotty_on: None,
            unmapped: None,
        }
    }
}

const DEV_ID: u32 = 0x11;
const IOAS_ID: u32 = 5;

fn kernel(s: Script) -> FakeSys {
    FakeSys::new(move |req| {
        let request = match &req {
            Req::Val { request, .. } | Req::Buf { request, .. } => *request,
            _ => 0,
        };
        if s.enotty_on == Some(request) {
            return Err(io::Error::from_raw_os_error(libc::ENOTTY));
        }
        match req {
            Req::Val { request, .. } => Ok(match request {
                sv::VFIO_GET_API_VERSION => s.api_version,
                sv::VFIO_CHECK_EXTENSION => s.type1v2,
                _ => 0,
            }),
            Req::Buf { request, buf, .. } => {
                let put = |buf: &mut [u8], off: usize, v: &[u8]| {
                    buf[off..off + v.len()].copy_from_slice(v)
                };
                match request {
                    sv::VFIO_GROUP_GET_STATUS => {
                        let f: u32 = if s.viable { 1 } else { 0 };
                        put(buf, 4, &f.to_ne_bytes());
                    }
                    sv::VFIO_DEVICE_BIND_IOMMUFD => put(buf, 12, &DEV_ID.to_ne_bytes()),
                    sv::IOMMU_IOAS_ALLOC => put(buf, 8, &IOAS_ID.to_ne_bytes()),
                    sv::VFIO_IOMMU_UNMAP_DMA | sv::IOMMU_IOAS_UNMAP => {
                        if let Some(n) = s.unmapped {
                            put(buf, 16, &n.to_ne_bytes());
                        }
                    }
                    _ => {}
                }
                Ok(0)
            }
            _ => Ok(0),
        }
    })
}

fn tree(tag: &str, t: Tree) -> (TempTree, HostPaths) {
    let root = fake_tree(tag, &t);
    let paths = HostPaths {
        sysfs: root.0.join("sys"),
        dev: root.0.join("dev"),
    };
    (root, paths)
}

fn full_tree() -> Tree {
    Tree {
        driver: Some("vfio-pci"),
        cdev: true,
        group_node: true,
        iommu_node: true,
    }
}

fn buf_of(sys: &FakeSys, request: u64) -> Vec<u8> {
    sys.calls()
        .into_iter()
        .find_map(|c| match c.kind {
            Kind::IoctlBuf(b) if c.request == request => Some(b),
            _ => None,
        })
        .unwrap_or_default()
}

#[test]
fn bdf_with_cdev_opens_through_iommufd() {
    let (_root, paths) = tree("cdev", full_tree());
    let sys = kernel(Script::default());
    let b = KernelBackend::open_with(sys.clone(), &DeviceLocator::Bdf("01:00.0".into()), &paths)
        .unwrap();
    let cdev = paths.dev.join("vfio/devices/vfio3");
    let iommu = paths.dev.join("iommu");
    assert_eq!(
        sys.ioctls(),
        vec![
            (cdev.clone(), sv::VFIO_DEVICE_BIND_IOMMUFD),
            (iommu.clone(), sv::IOMMU_IOAS_ALLOC),
            (cdev.clone(), sv::VFIO_DEVICE_ATTACH_IOMMUFD_PT),
        ]
    );
    // BIND carries the iommufd, ATTACH the IOAS the kernel allocated.
    let bind = buf_of(&sys, sv::VFIO_DEVICE_BIND_IOMMUFD);
    assert_eq!(bind[0..4], 16u32.to_ne_bytes());
    let iommu_fd = sys.fd_of(&iommu).unwrap();
    assert_eq!(bind[8..12], iommu_fd.to_ne_bytes());
    let attach = buf_of(&sys, sv::VFIO_DEVICE_ATTACH_IOMMUFD_PT);
    assert_eq!(attach, [12, 0, 0, 0, 0, 0, 0, 0, IOAS_ID as u8, 0, 0, 0]);
    match b.iommu().unwrap() {
        IommuCtx::Iommufd {
            ioas_id, dev_id, ..
        } => {
            assert_eq!((*ioas_id, *dev_id), (IOAS_ID, DEV_ID));
        }
        other => panic!("expected iommufd, got {other:?}"),
    }

    // DMA through the IOAS.
    b.map_dma(0x1_0000_0000, 0x7f00_0000_0000, 0x20_0000)
        .unwrap();
    let m = buf_of(&sys, sv::IOMMU_IOAS_MAP);
    assert_eq!(m.len(), 40);
    assert_eq!(m[4..12], [7, 0, 0, 0, IOAS_ID as u8, 0, 0, 0]);
    assert_eq!(m[16..24], 0x7f00_0000_0000u64.to_ne_bytes());
    assert_eq!(m[24..32], 0x20_0000u64.to_ne_bytes());
    assert_eq!(m[32..40], 0x1_0000_0000u64.to_ne_bytes());
    b.unmap_dma(0x1_0000_0000, 0x20_0000).unwrap();
    let u = buf_of(&sys, sv::IOMMU_IOAS_UNMAP);
    assert_eq!(u[8..16], 0x1_0000_0000u64.to_ne_bytes());
    assert_eq!(sys.ioctls().last().unwrap().0, iommu);
}

#[test]
fn bdf_group_opens_through_the_container() {
    let (_root, paths) = tree("group", full_tree());
    let sys = kernel(Script::default());
    let b = KernelBackend::open_with(sys.clone(), &DeviceLocator::BdfGroup(BDF.into()), &paths)
        .unwrap();
    let container = paths.dev.join("vfio/vfio");
    let group = paths.dev.join("vfio/7");
    assert_eq!(
        sys.ioctls(),
        vec![
            (container.clone(), sv::VFIO_GET_API_VERSION),
            (container.clone(), sv::VFIO_CHECK_EXTENSION),
            (group.clone(), sv::VFIO_GROUP_GET_STATUS),
            (group.clone(), sv::VFIO_GROUP_SET_CONTAINER),
            (container.clone(), sv::VFIO_SET_IOMMU),
            (group.clone(), sv::VFIO_GROUP_GET_DEVICE_FD),
        ]
    );
    let calls = sys.calls();
    let val = |req| {
        calls
            .iter()
            .find(|c| c.request == req)
            .map(|c| c.kind.clone())
    };
    assert_eq!(val(sv::VFIO_CHECK_EXTENSION), Some(Kind::IoctlVal(3)));
    assert_eq!(val(sv::VFIO_SET_IOMMU), Some(Kind::IoctlVal(3)));
    let cfd = sys.fd_of(&container).unwrap();
    assert_eq!(
        buf_of(&sys, sv::VFIO_GROUP_SET_CONTAINER),
        cfd.to_ne_bytes()
    );
    assert_eq!(
        buf_of(&sys, sv::VFIO_GROUP_GET_DEVICE_FD),
        b"0000:01:00.0\0"
    );
    assert!(matches!(b.iommu(), Some(IommuCtx::Container { .. })));

    // The device fd is the one the group returned.
    use cxl_passthrough::backend::Backend;
    let mut buf = [0u8; 4];
    b.read(0, 0, &mut buf).unwrap();
    assert_eq!(
        sys.calls().last().unwrap().node,
        PathBuf::from(GROUP_DEVICE)
    );

    // DMA through the container.
    b.map_dma(0x4000, 0x7f00_0000_1000, 0x1000).unwrap();
    let m = buf_of(&sys, sv::VFIO_IOMMU_MAP_DMA);
    assert_eq!(m[0..8], [32, 0, 0, 0, 3, 0, 0, 0]);
    assert_eq!(m[8..16], 0x7f00_0000_1000u64.to_ne_bytes());
    assert_eq!(m[16..24], 0x4000u64.to_ne_bytes());
    assert_eq!(m[24..32], 0x1000u64.to_ne_bytes());
    assert_eq!(sys.ioctls().last().unwrap().0, container);
    b.unmap_dma(0x4000, 0x1000).unwrap();
    assert_eq!(
        buf_of(&sys, sv::VFIO_IOMMU_UNMAP_DMA)[16..24],
        0x1000u64.to_ne_bytes()
    );
    assert!(matches!(
        b.map_dma(u64::MAX, 0, 2),
        Err(BackendError::Invalid(_))
    ));
    assert!(matches!(b.map_dma(0, 0, 0), Err(BackendError::Invalid(_))));
}

#[test]
fn short_unmap_is_reported() {
    let (_root, paths) = tree("short-unmap", full_tree());
    for loc in [
        DeviceLocator::Bdf(BDF.into()),
        DeviceLocator::BdfGroup(BDF.into()),
    ] {
        let sys = kernel(Script {
            unmapped: Some(0x1000),
            ..Script::default()
        });
        let b = KernelBackend::open_with(sys, &loc, &paths).unwrap();
        match b.unmap_dma(0, 0x2000) {
            Err(BackendError::Short { done, wanted, .. }) => {
                assert_eq!((done, wanted), (0x1000, 0x2000))
            }
            other => panic!("{loc:?}: {other:?}"),
        }
    }
}

#[test]
fn bdf_without_cdev_falls_back_to_the_group() {
    let (_root, paths) = tree(
        "nocdev",
        Tree {
            cdev: false,
            ..full_tree()
        },
    );
    let plan = locate::resolve(&DeviceLocator::Bdf(BDF.into()), &paths).unwrap();
    assert_eq!(
        plan,
        OpenPlan::Group {
            container: paths.dev.join("vfio/vfio"),
            group: paths.dev.join("vfio/7"),
            group_id: "7".into(),
            bdf: BDF.into(),
        }
    );
}

/// Debian's 7.3 kernel (no IOMMUFD, no VFIO_DEVICE_CDEV) still creates
/// `vfio-dev/vfio0` in sysfs, but neither `/dev/vfio/devices/vfio0` nor `/dev/iommu`:
/// the group path must be taken.
#[test]
fn vfio_dev_in_sysfs_without_iommufd_uses_the_group() {
    let (_root, paths) = tree(
        "noiommufd",
        Tree {
            iommu_node: false,
            ..full_tree()
        },
    );
    let plan = locate::resolve(&DeviceLocator::Bdf(BDF.into()), &paths).unwrap();
    assert!(matches!(plan, OpenPlan::Group { .. }), "{plan:?}");
    // An explicit cdev still goes to iommufd, and reports the missing /dev/iommu.
    let e = open_err(
        kernel(Script::default()),
        DeviceLocator::Cdev(paths.dev.join("vfio/devices/vfio3")),
        &paths,
    );
    assert!(
        matches!(e, OpenError::PathMissing(ref p) if p.ends_with("iommu")),
        "{e}"
    );
}

fn open_err(sys: FakeSys, loc: DeviceLocator, paths: &HostPaths) -> OpenError {
    KernelBackend::open_with(sys, &loc, paths).expect_err("open must fail")
}

#[test]
fn sysfs_errors_are_typed() {
    let (_r, paths) = tree(
        "unbound",
        Tree {
            driver: None,
            ..full_tree()
        },
    );
    let e = open_err(
        kernel(Script::default()),
        DeviceLocator::Bdf(BDF.into()),
        &paths,
    );
    assert!(
        matches!(&e, OpenError::NotBoundToVfio { driver, .. } if driver == "none"),
        "{e}"
    );

    let (_r, paths) = tree(
        "nvidia",
        Tree {
            driver: Some("nvidia"),
            ..full_tree()
        },
    );
    let e = open_err(
        kernel(Script::default()),
        DeviceLocator::BdfGroup(BDF.into()),
        &paths,
    );
    assert!(
        matches!(&e, OpenError::NotBoundToVfio { driver, .. } if driver == "nvidia"),
        "{e}"
    );

    let e = open_err(
        kernel(Script::default()),
        DeviceLocator::Bdf("0000:02:00.0".into()),
        &paths,
    );
    assert!(
        matches!(e, OpenError::PathMissing(ref p) if p.ends_with("0000:02:00.0")),
        "{e}"
    );

    let e = open_err(
        kernel(Script::default()),
        DeviceLocator::Bdf("../../etc".into()),
        &paths,
    );
    assert!(matches!(e, OpenError::InvalidBdf(_)), "{e}");

    let (_r, paths) = tree(
        "nogroup",
        Tree {
            cdev: false,
            group_node: false,
            ..full_tree()
        },
    );
    let e = open_err(
        kernel(Script::default()),
        DeviceLocator::Bdf(BDF.into()),
        &paths,
    );
    assert!(
        matches!(e, OpenError::PathMissing(ref p) if p.ends_with("vfio/7")),
        "{e}"
    );
}

#[test]
fn missing_cdev_and_permission_denied() {
    let (_r, paths) = tree("perm", full_tree());
    let e = open_err(
        kernel(Script::default()),
        DeviceLocator::Cdev(paths.dev.join("vfio/devices/vfio9")),
        &paths,
    );
    assert!(
        matches!(e, OpenError::PathMissing(ref p) if p.ends_with("vfio9")),
        "{e}"
    );

    let sys = kernel(Script::default());
    let cdev = paths.dev.join("vfio/devices/vfio3");
    sys.fail_open(&cdev, libc::EACCES);
    let e = open_err(sys, DeviceLocator::Cdev(cdev.clone()), &paths);
    assert!(
        matches!(e, OpenError::PermissionDenied(ref p) if *p == cdev),
        "{e}"
    );

    let sys = kernel(Script::default());
    sys.fail_open(paths.dev.join("vfio/7"), libc::EPERM);
    let e = open_err(sys, DeviceLocator::BdfGroup(BDF.into()), &paths);
    assert!(matches!(e, OpenError::PermissionDenied(_)), "{e}");
}

#[test]
fn group_not_viable() {
    let (_r, paths) = tree("viable", full_tree());
    let sys = kernel(Script {
        viable: false,
        ..Script::default()
    });
    let e = open_err(sys.clone(), DeviceLocator::BdfGroup(BDF.into()), &paths);
    assert!(
        matches!(e, OpenError::GroupNotViable(ref g) if g == "7"),
        "{e}"
    );
    assert!(
        !sys.ioctls()
            .iter()
            .any(|(_, r)| *r == sv::VFIO_GROUP_SET_CONTAINER),
        "nothing attached to a non-viable group"
    );
}

#[test]
fn container_checks() {
    let (_r, paths) = tree("container", full_tree());
    let sys = kernel(Script {
        api_version: 1,
        ..Script::default()
    });
    let e = open_err(sys, DeviceLocator::BdfGroup(BDF.into()), &paths);
    assert!(matches!(e, OpenError::ApiVersion(1, 0)), "{e}");
    let sys = kernel(Script {
        type1v2: 0,
        ..Script::default()
    });
    let e = open_err(sys, DeviceLocator::BdfGroup(BDF.into()), &paths);
    assert!(matches!(e, OpenError::NoType1v2), "{e}");
}

#[test]
fn enotty_means_the_kernel_lacks_the_feature() {
    let (_r, paths) = tree("enotty", full_tree());
    for (req, loc, name) in [
        (
            sv::VFIO_DEVICE_BIND_IOMMUFD,
            DeviceLocator::Bdf(BDF.into()),
            "VFIO_DEVICE_BIND_IOMMUFD",
        ),
        (
            sv::IOMMU_IOAS_ALLOC,
            DeviceLocator::Bdf(BDF.into()),
            "IOMMU_IOAS_ALLOC",
        ),
        (
            sv::VFIO_GROUP_GET_DEVICE_FD,
            DeviceLocator::BdfGroup(BDF.into()),
            "VFIO_GROUP_GET_DEVICE_FD",
        ),
    ] {
        let sys = kernel(Script {
            enotty_on: Some(req),
            ..Script::default()
        });
        let e = open_err(sys, loc, &paths);
        assert!(matches!(e, OpenError::Unsupported(op) if op == name), "{e}");
    }
}

#[test]
fn default_host_paths_are_the_real_ones() {
    let p = HostPaths::default();
    assert_eq!(p.iommu(), Path::new("/dev/iommu"));
    assert_eq!(p.container(), Path::new("/dev/vfio/vfio"));
}

/// v4's DMA path for device memory: the HDM region exported as a dma-buf
/// (`VFIO_DEVICE_FEATURE` with `GET | DMA_BUF` on the device fd, one range) and mapped
/// into the IOAS by fd (`IOMMU_IOAS_MAP_FILE`); a type1 container cannot import it; the
/// kernel's refusal (a kernel without the exporter) reaches the caller with its errno.
#[test]
fn v4_device_memory_is_exported_as_a_dma_buf_and_mapped_by_fd() {
    let (_root, paths) = tree("dmabuf", full_tree());
    let sys = kernel(Script::default());
    let b = KernelBackend::open_with(sys.clone(), &DeviceLocator::Bdf(BDF.into()), &paths).unwrap();
    let cdev = paths.dev.join("vfio/devices/vfio3");
    let iommu = paths.dev.join("iommu");
    let fd = b.export_dma_buf(9, 0, 0x20_0000).unwrap();
    let f = buf_of(&sys, sv::VFIO_DEVICE_FEATURE);
    assert_eq!(f.len(), 40);
    assert_eq!(f[0..4], 40u32.to_ne_bytes());
    assert_eq!(f[4..8], ((1u32 << 16) | 11).to_ne_bytes(), "GET | DMA_BUF");
    assert_eq!(f[8..12], 9u32.to_ne_bytes(), "region index");
    assert_eq!(f[16..24], [0, 0, 0, 0, 1, 0, 0, 0], "flags 0, one range");
    assert_eq!(f[24..32], 0u64.to_ne_bytes());
    assert_eq!(f[32..40], 0x20_0000u64.to_ne_bytes());
    assert_eq!(
        sys.ioctls().last().unwrap(),
        &(cdev.clone(), sv::VFIO_DEVICE_FEATURE)
    );
    use std::os::fd::{AsFd, AsRawFd};
    b.map_dma_buf(fd.as_fd(), 0x40_0000_0000, 0x20_0000)
        .unwrap();
    let m = buf_of(&sys, sv::IOMMU_IOAS_MAP_FILE);
    assert_eq!(m.len(), 40);
    assert_eq!(m[4..12], [7, 0, 0, 0, IOAS_ID as u8, 0, 0, 0]);
    assert_eq!(m[12..16], fd.as_raw_fd().to_ne_bytes());
    assert_eq!(
        m[16..24],
        0u64.to_ne_bytes(),
        "from the start of the buffer"
    );
    assert_eq!(m[24..32], 0x20_0000u64.to_ne_bytes());
    assert_eq!(m[32..40], 0x40_0000_0000u64.to_ne_bytes());
    assert_eq!(sys.ioctls().last().unwrap().0, iommu);
    assert!(matches!(
        b.export_dma_buf(9, 0, 0),
        Err(BackendError::Invalid(_))
    ));

    // A kernel without the exporter.
    let sys = kernel(Script {
        enotty_on: Some(sv::VFIO_DEVICE_FEATURE),
        ..Script::default()
    });
    let b = KernelBackend::open_with(sys, &DeviceLocator::Bdf(BDF.into()), &paths).unwrap();
    assert_eq!(
        b.export_dma_buf(9, 0, 0x1000).unwrap_err().raw_os_error(),
        Some(libc::ENOTTY)
    );

    // The container path.
    let sys = kernel(Script::default());
    let b = KernelBackend::open_with(sys, &DeviceLocator::BdfGroup(BDF.into()), &paths).unwrap();
    let fd = b.export_dma_buf(9, 0, 0x1000).unwrap();
    assert!(matches!(
        b.map_dma_buf(fd.as_fd(), 0, 0x1000),
        Err(BackendError::Invalid(_))
    ));
}
