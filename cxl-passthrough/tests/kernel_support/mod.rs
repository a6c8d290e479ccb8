//! A recording, scriptable [`VfioSys`] for the kernel backend tests, plus canned kernel
//! answers built with `uapi::wire` and a fake sysfs/dev tree.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cxl_passthrough::backend::kernel::syscall::VfioSys;
use cxl_passthrough::uapi::wire::{self, CapHeader, CxlCapV2, CxlCapV3, SparseArea};

/// What kind of system call was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `open(path)`.
    Open,
    /// ioctl with a value argument.
    IoctlVal(u64),
    /// ioctl with a buffer (bytes as sent).
    IoctlBuf(Vec<u8>),
    /// pread of `len` bytes at `offset`.
    Pread { offset: u64, len: usize },
    /// pwrite of `data` at `offset`.
    Pwrite { offset: u64, data: Vec<u8> },
}

/// One recorded call: the node it went to, the request (0 for non-ioctls) and the kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// Path of the fd the call targeted ("?" when unknown).
    pub node: PathBuf,
    /// Request number (ioctls) or 0.
    pub request: u64,
    /// Details.
    pub kind: Kind,
}

/// A request the handler answers.
pub enum Req<'a> {
    /// ioctl on `node`, by value.
    Val {
        node: &'a Path,
        request: u64,
        arg: u64,
    },
    /// ioctl on `node` with a buffer the handler may rewrite.
    Buf {
        node: &'a Path,
        request: u64,
        buf: &'a mut [u8],
    },
    /// pread at `offset`.
    Read { offset: u64, buf: &'a mut [u8] },
    /// pwrite at `offset`.
    Write { offset: u64, data: &'a [u8] },
}

type Handler = Box<dyn FnMut(Req<'_>) -> io::Result<usize> + Send>;

struct Inner {
    calls: Mutex<Vec<Call>>,
    nodes: Mutex<HashMap<i32, PathBuf>>,
    open_errors: Mutex<HashMap<PathBuf, i32>>,
    handler: Mutex<Handler>,
    // Keeps the /dev/null files alive so fd numbers are never reused during a test.
    keep: Mutex<Vec<File>>,
}

/// The fake syscall layer. Clones share state.
#[derive(Clone)]
pub struct FakeSys(Arc<Inner>);

impl std::fmt::Debug for FakeSys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSys").finish_non_exhaustive()
    }
}

/// Path label of the device fd returned by `VFIO_GROUP_GET_DEVICE_FD`.
pub const GROUP_DEVICE: &str = "<group device fd>";

impl FakeSys {
    /// A fake answering every request with `handler`.
    pub fn new(handler: impl FnMut(Req<'_>) -> io::Result<usize> + Send + 'static) -> Self {
        FakeSys(Arc::new(Inner {
            calls: Mutex::new(vec![]),
            nodes: Mutex::new(HashMap::new()),
            open_errors: Mutex::new(HashMap::new()),
            handler: Mutex::new(Box::new(handler)),
            keep: Mutex::new(vec![]),
        }))
    }

    /// Makes `open(path)` fail with `errno`.
    pub fn fail_open(&self, path: impl Into<PathBuf>, errno: i32) {
        self.0
            .open_errors
            .lock()
            .unwrap()
            .insert(path.into(), errno);
    }

    /// A fd labelled `label` (to hand to `from_device_fd_with`).
    pub fn fd(&self, label: &str) -> OwnedFd {
        self.new_fd(PathBuf::from(label))
    }

    fn new_fd(&self, label: PathBuf) -> OwnedFd {
        let f = File::open("/dev/null").expect("open /dev/null");
        let owned = OwnedFd::from(f.try_clone().expect("dup"));
        self.0
            .nodes
            .lock()
            .unwrap()
            .insert(owned.as_raw_fd(), label);
        self.0.keep.lock().unwrap().push(f);
        owned
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.0.calls.lock().unwrap().clone()
    }

    /// The ioctl calls (request numbers with their nodes) so far.
    pub fn ioctls(&self) -> Vec<(PathBuf, u64)> {
        self.calls()
            .into_iter()
            .filter(|c| matches!(c.kind, Kind::IoctlVal(_) | Kind::IoctlBuf(_)))
            .map(|c| (c.node, c.request))
            .collect()
    }

    /// The raw fd number of the first fd opened on `path`.
    pub fn fd_of(&self, path: &Path) -> Option<i32> {
        let nodes = self.0.nodes.lock().unwrap();
        nodes
            .iter()
            .filter(|(_, p)| *p == path)
            .map(|(fd, _)| *fd)
            .min()
    }

    fn node(&self, fd: BorrowedFd<'_>) -> PathBuf {
        self.0
            .nodes
            .lock()
            .unwrap()
            .get(&fd.as_raw_fd())
            .cloned()
            .unwrap_or_else(|| PathBuf::from("?"))
    }

    fn record(&self, node: PathBuf, request: u64, kind: Kind) {
        self.0.calls.lock().unwrap().push(Call {
            node,
            request,
            kind,
        });
    }

    fn handle(&self, req: Req<'_>) -> io::Result<usize> {
        (self.0.handler.lock().unwrap())(req)
    }
}

fn as_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl VfioSys for FakeSys {
    fn open(&self, path: &Path) -> io::Result<OwnedFd> {
        self.record(path.to_path_buf(), 0, Kind::Open);
        if let Some(e) = self.0.open_errors.lock().unwrap().get(path) {
            return Err(io::Error::from_raw_os_error(*e));
        }
        if !path.exists() {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(self.new_fd(path.to_path_buf()))
    }

    fn ioctl_val(&self, fd: BorrowedFd<'_>, request: u64, arg: u64) -> io::Result<i32> {
        let node = self.node(fd);
        self.record(node.clone(), request, Kind::IoctlVal(arg));
        self.handle(Req::Val {
            node: &node,
            request,
            arg,
        })
        .map(as_i32)
    }

    fn ioctl_buf(&self, fd: BorrowedFd<'_>, request: u64, buf: &mut [u8]) -> io::Result<i32> {
        let node = self.node(fd);
        self.record(node.clone(), request, Kind::IoctlBuf(buf.to_vec()));
        self.handle(Req::Buf {
            node: &node,
            request,
            buf,
        })
        .map(as_i32)
    }

    fn ioctl_new_fd(
        &self,
        fd: BorrowedFd<'_>,
        request: u64,
        buf: &mut [u8],
    ) -> io::Result<OwnedFd> {
        self.ioctl_buf(fd, request, buf)?;
        Ok(self.new_fd(PathBuf::from(GROUP_DEVICE)))
    }

    fn pread(&self, fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let node = self.node(fd);
        self.record(
            node,
            0,
            Kind::Pread {
                offset,
                len: buf.len(),
            },
        );
        self.handle(Req::Read { offset, buf })
    }

    fn pwrite(&self, fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
        let node = self.node(fd);
        self.record(
            node,
            0,
            Kind::Pwrite {
                offset,
                data: buf.to_vec(),
            },
        );
        self.handle(Req::Write { offset, data: buf })
    }
}

/// Answers an info ioctl the way vfio does: the fixed header always, the capabilities
/// only when `argsz` covers them; `argsz` is raised to the full size when it does not.
/// `header_size` is the fixed header size and `cap_off_at` the offset of `cap_offset`.
pub fn kernel_info_answer(full: &[u8], header_size: usize, cap_off_at: usize, buf: &mut [u8]) {
    let argsz = wire::le32(buf, 0).unwrap_or(0) as usize;
    if argsz >= full.len() && buf.len() >= full.len() {
        buf[..full.len()].copy_from_slice(full);
        buf[0..4].copy_from_slice(&(argsz as u32).to_le_bytes());
    } else {
        let n = header_size.min(buf.len());
        buf[..n].copy_from_slice(&full[..n]);
        buf[0..4].copy_from_slice(&(full.len() as u32).to_le_bytes());
        buf[cap_off_at..cap_off_at + 4].copy_from_slice(&0u32.to_le_bytes());
    }
}

/// Device info of a v2 (NVIDIA) CXL device: CAP_CXL v2 with DPA 9 and COMP_REGS 10.
pub fn v2_device_info() -> Vec<u8> {
    let cap = CxlCapV2 {
        hdm_regs_bar_index: 2,
        flags: wire::CXL_V2_FIRMWARE_COMMITTED,
        hdm_regs_offset: 0x1_1000,
        dpa_region_index: 9,
        comp_regs_region_index: 10,
        ..Default::default()
    };
    device_info_with(&cap.encode(cxl_hdr()))
}

/// Device info of a v3 CXL device (48-byte capability).
pub fn v3_device_info() -> Vec<u8> {
    let cap = CxlCapV3 {
        flags: wire::CXL_V3_HOST_FIRMWARE_COMMITTED,
        hdm_region_idx: 9,
        comp_reg_region_idx: 10,
        comp_reg_bar: 2,
        comp_reg_offset: 0x1_0000,
        comp_reg_size: 0x1_0000,
        ..Default::default()
    };
    device_info_with(&cap.encode(cxl_hdr()))
}

fn cxl_hdr() -> CapHeader {
    CapHeader {
        id: wire::DEVICE_CAP_CXL,
        version: wire::DEVICE_CAP_CXL_VERSION,
        next: 0,
    }
}

fn device_info_with(cap: &[u8]) -> Vec<u8> {
    let hdr = wire::DeviceInfoHeader {
        argsz: (wire::DEVICE_INFO_SIZE + cap.len()) as u32,
        flags: wire::DEVICE_FLAGS_RESET
            | wire::DEVICE_FLAGS_PCI
            | wire::DEVICE_FLAGS_CAPS
            | wire::DEVICE_FLAGS_CXL,
        num_regions: 11,
        num_irqs: 5,
        cap_offset: wire::DEVICE_INFO_SIZE as u32,
    };
    let mut b = hdr.encode().to_vec();
    b.extend_from_slice(cap);
    b
}

/// File offset the fake kernel reports for region `index`: deliberately not
/// `index << 40`, so a backend computing offsets itself would be caught.
pub fn kernel_offset(index: u32) -> u64 {
    0x7_0000_0000 + u64::from(index) * 0x1_0000_0000
}

/// Region info for the canned device: 9 = DPA (256 MiB, mmap), 10 = COMP_REGS,
/// 2 = the component BAR with a two-area sparse cap, others plain.
pub fn region_info(index: u32) -> Vec<u8> {
    let (flags, size, caps): (u32, u64, Vec<u8>) = match index {
        9 => (
            wire::REGION_FLAG_READ | wire::REGION_FLAG_WRITE | wire::REGION_FLAG_MMAP,
            256 << 20,
            wire::encode_type_cap(0, wire::REGION_TYPE_CXL, wire::REGION_SUBTYPE_CXL_DPA).to_vec(),
        ),
        10 => (
            wire::REGION_FLAG_READ | wire::REGION_FLAG_WRITE,
            0x1000 + 0x10 + 0x20,
            wire::encode_type_cap(0, wire::REGION_TYPE_CXL, wire::REGION_SUBTYPE_CXL_COMP_REGS)
                .to_vec(),
        ),
        2 => (
            wire::REGION_FLAG_READ | wire::REGION_FLAG_WRITE | wire::REGION_FLAG_MMAP,
            0x4_0000,
            wire::encode_sparse_cap(
                0,
                &[
                    SparseArea {
                        offset: 0,
                        size: 0x1_0000,
                    },
                    SparseArea {
                        offset: 0x2_0000,
                        size: 0x2_0000,
                    },
                ],
            ),
        ),
        _ => (
            wire::REGION_FLAG_READ | wire::REGION_FLAG_WRITE,
            0x1000,
            vec![],
        ),
    };
    let has_caps = !caps.is_empty();
    let hdr = wire::RegionInfoHeader {
        argsz: (wire::REGION_INFO_SIZE + caps.len()) as u32,
        flags: flags | if has_caps { wire::REGION_FLAG_CAPS } else { 0 },
        index,
        cap_offset: if has_caps {
            wire::REGION_INFO_SIZE as u32
        } else {
            0
        },
        size,
        offset: kernel_offset(index),
    };
    let mut b = hdr.encode().to_vec();
    b.extend_from_slice(&caps);
    b
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh empty temporary directory.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("cxl-kernel-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("mkdir temp");
    d
}

/// Options for the fake host tree.
#[derive(Clone, Debug)]
pub struct Tree {
    /// Driver the device is bound to (`None`: unbound).
    pub driver: Option<&'static str>,
    /// Whether `vfio-dev/vfio3` and `/dev/vfio/devices/vfio3` exist.
    pub cdev: bool,
    /// Whether `/dev/vfio/7` exists.
    pub group_node: bool,
    /// Whether `/dev/iommu` exists.
    pub iommu_node: bool,
}

/// The device the fake tree describes.
pub const BDF: &str = "0000:01:00.0";

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempTree(pub PathBuf);

impl Drop for TempTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds `sys/` and `dev/` under a temp dir; returns the root.
pub fn fake_tree(tag: &str, t: &Tree) -> TempTree {
    use std::os::unix::fs::symlink;
    let root = temp_dir(tag);
    let sys = root.join("sys");
    let dev = root.join("dev");
    let d = sys.join("bus/pci/devices").join(BDF);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::create_dir_all(dev.join("vfio/devices")).unwrap();
    std::fs::create_dir_all(sys.join("kernel/iommu_groups/7")).unwrap();
    if let Some(drv) = t.driver {
        let p = sys.join("bus/pci/drivers").join(drv);
        std::fs::create_dir_all(&p).unwrap();
        symlink(&p, d.join("driver")).unwrap();
    }
    symlink(sys.join("kernel/iommu_groups/7"), d.join("iommu_group")).unwrap();
    if t.cdev {
        std::fs::create_dir_all(d.join("vfio-dev/vfio3")).unwrap();
        File::create(dev.join("vfio/devices/vfio3")).unwrap();
    }
    if t.group_node {
        File::create(dev.join("vfio/7")).unwrap();
    }
    File::create(dev.join("vfio/vfio")).unwrap();
    if t.iommu_node {
        File::create(dev.join("iommu")).unwrap();
    }
    TempTree(root)
}
