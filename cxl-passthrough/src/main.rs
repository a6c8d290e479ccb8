//! `cxl-passthrough`: inspect a CXL Type-2 device (or the simulator) the way a VMM would.

fn main() -> anyhow::Result<()> {
    env_logger::init();
    anyhow::bail!("no subcommand yet")
}
