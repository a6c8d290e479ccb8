//! One ACPI0016 CXL host bridge device.

use acpi_tables::Aml;
use acpi_tables::aml::{
    AddressSpace, AddressSpaceCacheable, Device, EISAName, Name, Package, ResourceTemplate,
};

use super::Raw;
use super::dsm::preserve_config_dsm;
use super::osc::osc_method;
use crate::description::HostBridge;

/// AML name of the `index`-th host bridge: `CX00`..`CXFF`.
///
/// `index` above 255 is reduced modulo 256; [`crate::AcpiDescription::validate`] caps the count.
pub fn host_bridge_name(index: usize) -> String {
    format!("CX{:02X}", index % 256)
}

/// Encodes `Device (<name>)` for `hb`: `_HID` "ACPI0016", `_CID` {PNP0A08, PNP0A03},
/// `_UID`, `_SEG`, `_BBN`, `_CCA` (1: DMA of the devices below is cache-coherent), `_CRS`
/// (bus range + MMIO windows), the CXL-aware `_OSC`, the preserve-boot-configuration
/// `_DSM` and, when the bridge routes INTx, `_PRT`.
///
/// `_CCA` matters on arm64: there ACPI requires it (Linux `CONFIG_ACPI_CCA_REQUIRED`), and
/// devices below a host bridge without it get no DMA at all; x86 assumes coherent DMA
/// when it is missing, so the object changes nothing there.
///
/// `hb` must come from a validated topology (`_CRS` ranges are well formed); `name` must
/// be a 4-character AML name segment.
pub fn host_bridge_device(name: &str, hb: &HostBridge) -> Vec<u8> {
    let hid = Name::new("_HID".into(), &"ACPI0016");
    let pnp0a08 = EISAName::new("PNP0A08");
    let pnp0a03 = EISAName::new("PNP0A03");
    let cid_pkg = Package::new(vec![&pnp0a08, &pnp0a03]);
    let cid = Name::new("_CID".into(), &cid_pkg);
    let uid = Name::new("_UID".into(), &hb.uid);
    let seg = Name::new("_SEG".into(), &hb.segment);
    let bbn = Name::new("_BBN".into(), &hb.bus_start);
    let cca = Name::new("_CCA".into(), &1u8);

    let bus = AddressSpace::<u16>::new_bus_number(hb.bus_start.into(), hb.bus_end.into());
    let mmio32 = hb.mmio32.and_then(|w| {
        let first = u32::try_from(w.base).ok()?;
        let last = u32::try_from(w.last()?).ok()?;
        Some(AddressSpace::<u32>::new_memory(
            AddressSpaceCacheable::NotCacheable,
            true,
            first,
            last,
            None,
        ))
    });
    let mmio64 = hb.mmio64.and_then(|w| {
        Some(AddressSpace::<u64>::new_memory(
            AddressSpaceCacheable::NotCacheable,
            true,
            w.base,
            w.last()?,
            None,
        ))
    });
    let mut resources: Vec<&dyn Aml> = vec![&bus];
    if let Some(m) = &mmio32 {
        resources.push(m);
    }
    if let Some(m) = &mmio64 {
        resources.push(m);
    }
    let crs_template = ResourceTemplate::new(resources);
    let crs = Name::new("_CRS".into(), &crs_template);
    // _PRT: Package { Package { slot << 16 | 0xFFFF, pin, 0 (GSI, no link device), gsi } }
    let prt_addrs: Vec<u32> = hb
        .intx_routes
        .iter()
        .map(|r| (u32::from(r.device) << 16) | 0xFFFF)
        .collect();
    let prt_entries: Vec<Package<'_>> = hb
        .intx_routes
        .iter()
        .zip(&prt_addrs)
        .map(|(r, addr)| Package::new(vec![addr, &r.pin, &0u8, &r.gsi]))
        .collect();
    let prt_pkg = Package::new(prt_entries.iter().map(|p| p as &dyn Aml).collect());
    let prt = Name::new("_PRT".into(), &prt_pkg);
    let osc_bytes = osc_method();
    let osc = Raw(&osc_bytes);
    let dsm_bytes = preserve_config_dsm();
    let dsm = Raw(&dsm_bytes);

    let mut children: Vec<&dyn Aml> = vec![&hid, &cid, &uid, &seg, &bbn, &cca, &crs, &osc, &dsm];
    if !hb.intx_routes.is_empty() {
        children.push(&prt);
    }
    let dev = Device::new(name.into(), children);
    let mut bytes = Vec::new();
    dev.to_aml_bytes(&mut bytes);
    bytes
}
