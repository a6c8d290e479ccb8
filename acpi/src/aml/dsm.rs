//! Host bridge `_DSM` for the PCI Firmware Specification "preserve PCI boot configuration"
//! function (function 5 returns 0: the OS must keep the VMM's resource assignment).

use acpi_tables::Aml;
use acpi_tables::aml::{Arg, BufferData, Equal, If, Method, Return, Uuid};

/// PCI Firmware Specification `_DSM` UUID for PCI host bridges.
pub const PRESERVE_CONFIG_UUID: &str = "E5C937D0-3553-4D7A-9117-EA4D19C3434D";
/// Function 0 bitmap: bit 0 (other functions exist) | bit 5 (function 5).
pub const PRESERVE_CONFIG_FUNCTIONS: u8 = 0x21;
/// The preserve-boot-configuration function index.
const FN_PRESERVE_BOOT_CONFIG: u8 = 5;

/// Encodes `Method (_DSM, 4, Serialized)`: for [`PRESERVE_CONFIG_UUID`] (any revision)
/// function 0 returns `Buffer {0x21}` and function 5 returns Integer 0; any other UUID or
/// function returns `Buffer {0}` (nothing supported).
pub fn preserve_config_dsm() -> Vec<u8> {
    let uuid = Uuid::new(PRESERVE_CONFIG_UUID);
    let is_uuid = Equal::new(&Arg(0), &uuid);
    let fn0 = Equal::new(&Arg(2), &0u8);
    let bitmap = BufferData::new(vec![PRESERVE_CONFIG_FUNCTIONS]);
    let ret_bitmap = Return::new(&bitmap);
    let if_fn0 = If::new(&fn0, vec![&ret_bitmap]);
    let fn5 = Equal::new(&Arg(2), &FN_PRESERVE_BOOT_CONFIG);
    let zero = 0u8;
    let ret_zero = Return::new(&zero);
    let if_fn5 = If::new(&fn5, vec![&ret_zero]);
    let if_uuid = If::new(&is_uuid, vec![&if_fn0, &if_fn5]);
    let none = BufferData::new(vec![0]);
    let ret_none = Return::new(&none);
    let method = Method::new("_DSM".into(), 4, true, vec![&if_uuid, &ret_none]);
    let mut bytes = Vec::new();
    method.to_aml_bytes(&mut bytes);
    bytes
}
