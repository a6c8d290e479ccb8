//! ACPI for CXL passthrough: CEDT (CHBS + CFMWS), CXL host bridge AML and the
//! host-bridge component registers a VMM emulates.
