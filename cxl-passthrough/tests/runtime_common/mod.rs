//! Helpers for the runtime tests: simulated devices, probing, and a `VfioSys` that routes
//! the kernel backend's system calls to the simulator.
#![allow(dead_code, clippy::unwrap_used)]

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

pub mod armed;

use cxl_passthrough::backend::Backend;
use cxl_passthrough::backend::kernel::KernelBackend;
use cxl_passthrough::backend::kernel::syscall::{
    VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO, VFIO_DEVICE_RESET, VfioSys,
};
use cxl_passthrough::backend::sim::{BarLayout, OffsetLayout, SimConfig, SimDevice};
use cxl_passthrough::plan::{Window, WindowAllocator};
use cxl_passthrough::runtime::probe::probe;
use cxl_passthrough::runtime::{CxlDevice, DeviceDesc};
use cxl_passthrough::uapi::RevisionChoice;
use cxl_passthrough::uapi::UapiRevision;

/// Where the tests put CFMWS windows.
pub const WINDOW_BASE: u64 = 0x40_0000_0000;
/// Host page size used by the tests.
pub const PAGE: u64 = 4096;

/// Every revision.
pub const REVISIONS: [UapiRevision; 3] = UapiRevision::ALL;
/// BAR layouts A, B, C.
pub const BAR_LAYOUTS: [BarLayout; 3] = [BarLayout::End, BarLayout::Start, BarLayout::Middle];

/// A simulated device.
pub fn sim(rev: UapiRevision, bar_layout: BarLayout, layout: OffsetLayout) -> Arc<SimDevice> {
    Arc::new(
        SimDevice::new(SimConfig {
            bar_layout,
            offset_layout: layout,
            ..SimConfig::new(rev)
        })
        .unwrap(),
    )
}

/// Probes `backend` and plans a device at the test window.
pub fn device(backend: Arc<dyn Backend>) -> (CxlDevice, DeviceDesc) {
    let desc = probe(backend.as_ref(), RevisionChoice::Auto, PAGE).unwrap();
    let window = WindowAllocator::new(WINDOW_BASE, 1 << 40)
        .unwrap()
        .allocate(desc.dpa.size)
        .unwrap();
    (
        CxlDevice::new(backend, desc.clone(), window, PAGE).unwrap(),
        desc,
    )
}

/// A window at the test base.
pub fn window(size: u64) -> Window {
    Window {
        base: WINDOW_BASE,
        size,
    }
}

/// Routes the kernel backend's syscalls to a simulator, as if the simulator were the
/// kernel behind a VFIO device fd.
pub struct SimSys(pub Arc<SimDevice>);

fn errno(e: cxl_passthrough::backend::sim::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.0)
}

impl VfioSys for SimSys {
    fn open(&self, _path: &Path) -> io::Result<OwnedFd> {
        Err(io::Error::from_raw_os_error(libc::ENOENT))
    }
    fn ioctl_val(&self, _fd: BorrowedFd<'_>, request: u64, _arg: u64) -> io::Result<i32> {
        match request {
            VFIO_DEVICE_RESET => self.0.ioctl_reset().map(|()| 0).map_err(errno),
            _ => Err(io::Error::from_raw_os_error(libc::ENOTTY)),
        }
    }
    fn ioctl_buf(&self, _fd: BorrowedFd<'_>, request: u64, buf: &mut [u8]) -> io::Result<i32> {
        match request {
            VFIO_DEVICE_GET_INFO => self.0.ioctl_device_info(buf).map(|()| 0).map_err(errno),
            VFIO_DEVICE_GET_REGION_INFO => self.0.ioctl_region_info(buf).map(|()| 0).map_err(errno),
            _ => Err(io::Error::from_raw_os_error(libc::ENOTTY)),
        }
    }
    fn ioctl_new_fd(
        &self,
        _fd: BorrowedFd<'_>,
        _request: u64,
        _buf: &mut [u8],
    ) -> io::Result<OwnedFd> {
        Err(io::Error::from_raw_os_error(libc::ENOTTY))
    }
    fn pread(&self, _fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.pread(offset, buf).map_err(errno)
    }
    fn pwrite(&self, _fd: BorrowedFd<'_>, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.0.pwrite(offset, buf).map_err(errno)
    }
}

/// The kernel backend, talking to `sim` through [`SimSys`] over the simulator's own fd
/// (so mmap of the kernel-reported offsets works for real).
pub fn kernel_over_sim(sim: Arc<SimDevice>) -> Arc<dyn Backend> {
    let fd = sim.device_fd().try_clone_to_owned().unwrap();
    Arc::new(KernelBackend::from_device_fd_with(SimSys(sim), fd))
}
