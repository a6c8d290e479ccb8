//! AML for the CXL namespace objects: the ACPI0017 CXL root and one ACPI0016 host bridge
//! per [`HostBridge`](crate::HostBridge), built with `acpi_tables::aml`.

mod dsm;
mod host_bridge;
mod osc;

pub use dsm::{PRESERVE_CONFIG_FUNCTIONS, PRESERVE_CONFIG_UUID, preserve_config_dsm};
pub use host_bridge::{host_bridge_device, host_bridge_name};
pub use osc::{
    CXL_CONTROL_GRANTED, CXL_OSC_UUID, OscStatus, PCI_CONTROL_GRANTED, PCI_OSC_UUID, osc_method,
};

use acpi_tables::Aml;
use acpi_tables::aml::{Device, Name, Path, Scope};

use crate::description::AcpiDescription;
use crate::error::DescriptionError;

/// Name of the ACPI0017 CXL root device (`\_SB.CXLM`, as QEMU names it).
pub const CXL_ROOT_NAME: &str = "CXLM";
/// SSDT revision: 2 so that AML integers are 64 bits wide.
pub const SSDT_REVISION: u8 = 2;

/// AML to splice into a DSDT body: `Scope (\_SB) { CXLM (ACPI0017), CX00.. (ACPI0016) }`.
///
/// The host bridges here are complete PCI host bridge descriptions of their segment and
/// bus range; the VMM must not describe the same segment/buses with another device.
pub fn cxl_aml(topology: &AcpiDescription) -> Result<Vec<u8>, DescriptionError> {
    topology.validate()?;
    let hid = Name::new("_HID".into(), &"ACPI0017");
    let root = Device::new(CXL_ROOT_NAME.into(), vec![&hid]);
    let bridges: Vec<Vec<u8>> = topology
        .host_bridges
        .iter()
        .enumerate()
        .map(|(i, hb)| host_bridge_device(&host_bridge_name(i), hb))
        .collect();
    let raws: Vec<Raw<'_>> = bridges.iter().map(|b| Raw(b)).collect();
    let mut children: Vec<&dyn Aml> = vec![&root];
    children.extend(raws.iter().map(|r| r as &dyn Aml));
    let mut bytes = Vec::new();
    Scope::new(Path::new("\\_SB_"), children).to_aml_bytes(&mut bytes);
    Ok(bytes)
}

/// The [`cxl_aml`] objects as a standalone SSDT (revision 2, OEM ids from the topology).
pub fn build_ssdt(topology: &AcpiDescription) -> Result<Vec<u8>, DescriptionError> {
    let aml = cxl_aml(topology)?;
    let mut sdt = topology.oem.sdt(*b"SSDT", SSDT_REVISION);
    sdt.append_slice(&aml);
    Ok(sdt.as_slice().to_vec())
}

/// Raw AML bytes are AML too (lets pre-encoded devices sit in a `Scope`).
pub(crate) struct Raw<'a>(&'a [u8]);

impl Aml for Raw<'_> {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.vec(self.0);
    }
}

#[cfg(test)]
mod tests;
