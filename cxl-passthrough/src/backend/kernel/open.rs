//! The two open sequences: vfio cdev + iommufd, and legacy group + container.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use log::{debug, info};
use vfio_bindings::bindings::vfio as vb;

use super::args;
use super::error::OpenError;
use super::locate::OpenPlan;
use crate::sys::vfio::{self as sv, VfioSys};

/// The IOMMU side of an opened device: what DMA mappings go through.
#[derive(Debug)]
pub enum IommuCtx {
    /// Legacy type1v2 container, with the group kept open.
    Container {
        /// `/dev/vfio/vfio` with the group attached and the IOMMU set.
        container: OwnedFd,
        /// The group node (kept open for the device's lifetime).
        group: OwnedFd,
    },
    /// iommufd with one IOAS the device is attached to.
    Iommufd {
        /// `/dev/iommu`.
        iommufd: OwnedFd,
        /// The IOAS holding the device's DMA mappings.
        ioas_id: u32,
        /// The device id iommufd returned at bind.
        dev_id: u32,
    },
}

/// Opens the nodes of `plan` and runs the attach sequence. Returns the device fd and the
/// IOMMU context; every fd is closed again on failure.
pub fn open_plan<S: VfioSys>(sys: &S, plan: &OpenPlan) -> Result<(OwnedFd, IommuCtx), OpenError> {
    match plan {
        OpenPlan::Cdev { cdev, iommu } => {
            let device = sys
                .open(cdev)
                .map_err(|e| OpenError::from_open(cdev.clone(), e))?;
            let iommufd = sys
                .open(iommu)
                .map_err(|e| OpenError::from_open(iommu.clone(), e))?;
            let ctx = attach_iommufd(sys, &device, iommufd)?;
            info!("opened {} through iommufd", cdev.display());
            Ok((device, ctx))
        }
        OpenPlan::Group {
            container,
            group,
            group_id,
            bdf,
        } => {
            let cfd = sys
                .open(container)
                .map_err(|e| OpenError::from_open(container.clone(), e))?;
            check_container(sys, &cfd)?;
            let gfd = sys
                .open(group)
                .map_err(|e| OpenError::from_open(group.clone(), e))?;
            let device = attach_group(sys, &cfd, &gfd, group_id, bdf)?;
            info!("opened {bdf} through VFIO group {group_id}");
            Ok((
                device,
                IommuCtx::Container {
                    container: cfd,
                    group: gfd,
                },
            ))
        }
    }
}

fn check_container<S: VfioSys>(sys: &S, cfd: &OwnedFd) -> Result<(), OpenError> {
    const OP: &str = "VFIO_GET_API_VERSION";
    let v = sys
        .ioctl_val(cfd.as_fd(), sv::VFIO_GET_API_VERSION, 0)
        .map_err(|e| OpenError::from_ioctl(OP, e))?;
    if u32::try_from(v).ok() != Some(vb::VFIO_API_VERSION) {
        return Err(OpenError::ApiVersion(v, vb::VFIO_API_VERSION));
    }
    const OP2: &str = "VFIO_CHECK_EXTENSION(TYPE1v2)";
    let has = sys
        .ioctl_val(
            cfd.as_fd(),
            sv::VFIO_CHECK_EXTENSION,
            u64::from(vb::VFIO_TYPE1v2_IOMMU),
        )
        .map_err(|e| OpenError::from_ioctl(OP2, e))?;
    if has <= 0 {
        return Err(OpenError::NoType1v2);
    }
    Ok(())
}

fn attach_group<S: VfioSys>(
    sys: &S,
    cfd: &OwnedFd,
    gfd: &OwnedFd,
    group_id: &str,
    bdf: &str,
) -> Result<OwnedFd, OpenError> {
    let mut st = args::group_status();
    sys.ioctl_buf(gfd.as_fd(), sv::VFIO_GROUP_GET_STATUS, &mut st)
        .map_err(|e| OpenError::from_ioctl("VFIO_GROUP_GET_STATUS", e))?;
    let flags = args::get32(&st, args::GROUP_STATUS_FLAGS).unwrap_or(0);
    if flags & vb::VFIO_GROUP_FLAGS_VIABLE == 0 {
        return Err(OpenError::GroupNotViable(group_id.to_string()));
    }
    let mut c = args::container_fd(cfd.as_raw_fd());
    sys.ioctl_buf(gfd.as_fd(), sv::VFIO_GROUP_SET_CONTAINER, &mut c)
        .map_err(|e| OpenError::from_ioctl("VFIO_GROUP_SET_CONTAINER", e))?;
    sys.ioctl_val(
        cfd.as_fd(),
        sv::VFIO_SET_IOMMU,
        u64::from(vb::VFIO_TYPE1v2_IOMMU),
    )
    .map_err(|e| OpenError::from_ioctl("VFIO_SET_IOMMU(TYPE1v2)", e))?;
    let mut name = args::device_name(bdf);
    sys.ioctl_new_fd(gfd.as_fd(), sv::VFIO_GROUP_GET_DEVICE_FD, &mut name)
        .map_err(|e| OpenError::from_ioctl("VFIO_GROUP_GET_DEVICE_FD", e))
}

fn attach_iommufd<S: VfioSys>(
    sys: &S,
    device: &OwnedFd,
    iommufd: OwnedFd,
) -> Result<IommuCtx, OpenError> {
    let mut bind = args::bind_iommufd(iommufd.as_raw_fd());
    sys.ioctl_buf(device.as_fd(), sv::VFIO_DEVICE_BIND_IOMMUFD, &mut bind)
        .map_err(|e| OpenError::from_ioctl("VFIO_DEVICE_BIND_IOMMUFD", e))?;
    let dev_id = args::get32(&bind, args::BIND_OUT_DEVID)
        .ok_or_else(|| OpenError::BadAnswer("bind: short answer".into()))?;
    let mut alloc = args::ioas_alloc();
    sys.ioctl_buf(iommufd.as_fd(), sv::IOMMU_IOAS_ALLOC, &mut alloc)
        .map_err(|e| OpenError::from_ioctl("IOMMU_IOAS_ALLOC", e))?;
    let ioas_id = args::get32(&alloc, args::IOAS_ALLOC_OUT_ID)
        .ok_or_else(|| OpenError::BadAnswer("ioas alloc: short answer".into()))?;
    let mut attach = args::attach_pt(ioas_id);
    sys.ioctl_buf(
        device.as_fd(),
        sv::VFIO_DEVICE_ATTACH_IOMMUFD_PT,
        &mut attach,
    )
    .map_err(|e| OpenError::from_ioctl("VFIO_DEVICE_ATTACH_IOMMUFD_PT", e))?;
    debug!("iommufd: dev_id {dev_id}, ioas {ioas_id}");
    Ok(IommuCtx::Iommufd {
        iommufd,
        ioas_id,
        dev_id,
    })
}
