//! Kernel backend against a real VFIO device, when one is given.
//!
//! Set `CXL_TEST_VFIO_DEVICE` to a cdev path (`/dev/vfio/devices/vfio0`) or a PCI
//! address bound to vfio-pci (`0000:01:00.0`). Without it the test skips loudly
//! (`CXL_REQUIRE_ALL=1` makes that a failure).

mod skip_support;

use anyhow::{Context, Result, ensure};
use cxl_passthrough::backend::Backend;
use cxl_passthrough::backend::kernel::{DeviceLocator, KernelBackend};
use cxl_passthrough::uapi::wire::{self, DeviceInfoHeader, RegionInfoHeader};
use skip_support::skip;

#[test]
fn real_device_answers_info_and_region_queries() -> Result<()> {
    let Ok(dev) = std::env::var("CXL_TEST_VFIO_DEVICE") else {
        skip(
            "kernel_real",
            "no real VFIO CXL device given",
            "set CXL_TEST_VFIO_DEVICE to a vfio cdev path or a BDF bound to vfio-pci",
        );
        return Ok(());
    };
    let b = KernelBackend::open(&DeviceLocator::parse(&dev))
        .with_context(|| format!("opening {dev}"))?;
    let info = b.device_info()?;
    let hdr = DeviceInfoHeader::decode(&info).context("device info shorter than its header")?;
    ensure!(
        hdr.flags & wire::DEVICE_FLAGS_PCI != 0,
        "not a PCI device: {hdr:?}"
    );
    eprintln!(
        "{dev}: flags {:#x} ({}CXL), {} regions, {} bytes of info",
        hdr.flags,
        if hdr.flags & wire::DEVICE_FLAGS_CXL != 0 {
            ""
        } else {
            "no "
        },
        hdr.num_regions,
        info.len()
    );
    for index in 0..hdr.num_regions.min(64) {
        match b.region_info(index) {
            Ok(r) => {
                let h = RegionInfoHeader::decode(&r).context("region info too short")?;
                ensure!(h.index == index, "region {index} answered as {}", h.index);
                eprintln!(
                    "  region {index}: size {:#x} offset {:#x} flags {:#x} ({} bytes)",
                    h.size,
                    h.offset,
                    h.flags,
                    r.len()
                );
            }
            // Absent regions (VGA on most devices) answer EINVAL.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                eprintln!("  region {index}: absent");
            }
            Err(e) => return Err(e.into()),
        }
    }
    // Config space (region 7) is always readable: the vendor ID is not 0xFFFF.
    let cfg = RegionInfoHeader::decode(&b.region_info(wire::CONFIG_REGION_INDEX)?)
        .context("config region info")?;
    let mut id = [0u8; 2];
    ensure!(b.read(cfg.offset, 0, &mut id)? == 2, "short config read");
    ensure!(u16::from_le_bytes(id) != 0xFFFF, "vendor ID reads all ones");
    eprintln!("  vendor {:#06x}", u16::from_le_bytes(id));

    // DMA: map one 64 KiB-aligned chunk of our memory (aligned for 4K/16K/64K pages),
    // then unmap it, when this backend owns the IOMMU context.
    if b.iommu().is_some() {
        const CHUNK: usize = 64 << 10;
        let mem = vec![0u8; 3 * CHUNK];
        let start = mem.as_ptr() as u64;
        let aligned = start.next_multiple_of(CHUNK as u64);
        let iova = 0x1000_0000;
        b.map_dma(iova, aligned, CHUNK as u64).context("map_dma")?;
        b.unmap_dma(iova, CHUNK as u64).context("unmap_dma")?;
        // Unmapping again finds nothing mapped.
        ensure!(
            b.unmap_dma(iova, CHUNK as u64).is_err(),
            "double unmap succeeded"
        );
        eprintln!("  DMA map/unmap of {CHUNK:#x} bytes at iova {iova:#x}: ok");
        drop(mem);
    }
    Ok(())
}

/// The whole runtime lifecycle on a real device: probe, plan, boot-time lock, device
/// memory through the kernel's mapping, the sparse BAR areas, the overlay's view of
/// decoder 0, a VFIO reset with re-lock. Prints every fact it checks, so a lab run
/// documents what the real driver answered (docs/lab.md).
#[test]
fn real_device_lifecycle() -> Result<()> {
    use cxl_passthrough::backend::ResetKind;
    use cxl_passthrough::plan::WindowAllocator;
    use cxl_passthrough::runtime::probe::probe;
    use cxl_passthrough::runtime::{CxlDevice, NoHooks};
    use cxl_passthrough::uapi::RevisionChoice;
    use std::sync::Arc;
    use vm_memory::VolatileMemory;

    let Ok(dev) = std::env::var("CXL_TEST_VFIO_DEVICE") else {
        skip(
            "kernel_real_lifecycle",
            "no real VFIO CXL device given",
            "set CXL_TEST_VFIO_DEVICE to a vfio cdev path or a BDF bound to vfio-pci",
        );
        return Ok(());
    };
    let page = 4096;
    let kb = Arc::new(
        KernelBackend::open(&DeviceLocator::parse(&dev))
            .with_context(|| format!("opening {dev}"))?,
    );
    let b: Arc<dyn Backend> = kb.clone();
    let desc = probe(b.as_ref(), RevisionChoice::Auto, page).context("probe")?;
    eprintln!(
        "lifecycle: {:?}, firmware-committed {}, DPA {:#x} (mmap {}), HDM block @{:#x} {} decoder(s), \
         component block BAR{}@{:#x}, sparse areas {:x?}",
        desc.revision,
        desc.firmware_committed,
        desc.dpa.size,
        desc.dpa.mmap,
        desc.hdm.block_offset,
        desc.hdm.decoder_count,
        desc.component.bar,
        desc.component.offset,
        desc.sparse_areas
    );
    let window = WindowAllocator::new(0x40_0000_0000, 1 << 40)?.allocate(desc.dpa.size)?;
    let cxl = CxlDevice::new(b.clone(), desc.clone(), window, page).context("plan")?;
    let d = cxl.boot().context("boot-time lock")?;
    eprintln!("lifecycle: locked {d:x?}");
    ensure!(d.committed && d.locked && d.base == window.base, "{d:?}");
    // The guest's view through the overlay: decoder 0 CTRL as read back.
    let mut ctrl = [0u8; 4];
    cxl.overlay().read(desc.hdm.block_offset + 0x20, &mut ctrl);
    ensure!(
        u32::from_le_bytes(ctrl) == d.ctrl,
        "overlay CTRL {ctrl:x?} vs {d:x?}"
    );
    // Device memory: a pattern through the kernel's mapping, read back by pread.
    let map = cxl.map_dpa().context("map DPA")?;
    let pattern = *b"cxl-lab-pattern!";
    map.as_volatile_slice()
        .offset(0x1000)?
        .copy_from(&pattern[..]);
    let mut back = [0u8; 16];
    let n = b.read(desc.dpa.file_offset, 0x1000, &mut back)?;
    eprintln!("lifecycle: DPA pread after mmap write: {n} bytes {back:02x?}");
    ensure!(
        n == 16 && back == pattern,
        "DPA write through mmap not seen by pread"
    );
    if desc.revision == cxl_passthrough::uapi::UapiRevision::V4 {
        dma_buf(&kb, &desc, window.base)?;
    }
    let areas = cxl.map_sparse().context("map sparse areas")?;
    eprintln!("lifecycle: {} sparse BAR area(s) mapped", areas.len());
    drop((map, areas));
    let r = cxl
        .reset(ResetKind::Device, &mut NoHooks)
        .context("VFIO reset + re-lock")?;
    eprintln!("lifecycle: after reset {r:x?}");
    ensure!(r.committed && r.locked && r.base == window.base, "{r:?}");
    let n = b.read(desc.dpa.file_offset, 0x1000, &mut back)?;
    eprintln!(
        "lifecycle: DPA after reset: {n} bytes {back:02x?} (kept: {})",
        back == pattern
    );
    Ok(())
}

/// A lab tool, not a check (ignored: run with `--ignored --exact lab_device_memory`): in
/// the real-kernel lab (docs/lab.md, step (e)) L1 plays the simulator's test-only parts
/// around cloud-hypervisor through the device's DPA region (pwrite/pread; /dev/mem cannot
/// reach the window there). `CXL_LAB_DPA_SEED`: bytes written at DPA 0, and zeros in
/// [0x40, 0x100) where the guest will write; `CXL_LAB_DPA_VIEW`: comma-separated DPA
/// offsets, 32 bytes printed at each as `lab-dpa: DPA[<offset>..+32] = <hex>`.
#[test]
#[ignore = "a lab tool, run by scripts/guest/lab/l1-init.sh"]
fn lab_device_memory() -> Result<()> {
    use cxl_passthrough::runtime::probe::probe;
    use cxl_passthrough::uapi::RevisionChoice;

    let dev = std::env::var("CXL_TEST_VFIO_DEVICE").context("CXL_TEST_VFIO_DEVICE")?;
    let b = KernelBackend::open(&DeviceLocator::parse(&dev))
        .with_context(|| format!("opening {dev}"))?;
    let dpa = probe(&b, RevisionChoice::Auto, 4096)
        .context("probe")?
        .dpa
        .file_offset;
    if let Ok(seed) = std::env::var("CXL_LAB_DPA_SEED") {
        ensure!(seed.len() <= 0x40, "seed longer than 0x40 bytes");
        let n = b.write(dpa, 0, seed.as_bytes())? + b.write(dpa, 0x40, &[0u8; 0xc0])?;
        ensure!(n == seed.len() + 0xc0, "short DPA write: {n} bytes");
        println!("lab-dpa: seeded {seed:?}");
    }
    for o in std::env::var("CXL_LAB_DPA_VIEW")
        .unwrap_or_default()
        .split(',')
    {
        let Some(off) = o
            .trim()
            .strip_prefix("0x")
            .and_then(|h| u64::from_str_radix(h, 16).ok())
        else {
            continue;
        };
        let mut buf = [0u8; 32];
        let n = b.read(dpa, off, &mut buf)?;
        ensure!(n == buf.len(), "short DPA read at {off:#x}: {n} bytes");
        let hex: String = buf.iter().map(|x| format!("{x:02x}")).collect();
        println!("lab-dpa: DPA[{off:#x}..+32] = {hex}");
    }
    Ok(())
}

/// v4: device memory exported as a dma-buf and mapped into the backend's IOAS at `iova`
/// (the selftest's `hdm_mem_ioas_map`); a kernel without the exporter (EINVAL,
/// EOPNOTSUPP) or a container instead of an IOAS is reported, not failed.
fn dma_buf(
    kb: &cxl_passthrough::backend::kernel::KernelBackend,
    desc: &cxl_passthrough::runtime::DeviceDesc,
    iova: u64,
) -> Result<()> {
    use cxl_passthrough::backend::kernel::IommuCtx;
    use std::os::fd::AsFd;
    let len = desc.dpa.size.min(2 << 20);
    let fd = match kb.export_dma_buf(desc.dpa.index, 0, len) {
        Ok(fd) => fd,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => {
            eprintln!("lifecycle: v4 dma-buf export refused ({e}): kernel has no CXL exporter");
            return Ok(());
        }
        Err(e) => return Err(e).context("VFIO_DEVICE_FEATURE(DMA_BUF)"),
    };
    if !matches!(kb.iommu(), Some(IommuCtx::Iommufd { .. })) {
        eprintln!("lifecycle: v4 dma-buf exported; not mapped (no iommufd IOAS on this path)");
        return Ok(());
    }
    kb.map_dma_buf(fd.as_fd(), iova, len)
        .context("IOMMU_IOAS_MAP_FILE of the dma-buf")?;
    kb.unmap_dma(iova, len).context("unmapping the dma-buf")?;
    eprintln!("lifecycle: v4 dma-buf of {len:#x} bytes mapped at iova {iova:#x} and unmapped");
    Ok(())
}
