//! Command-line interface.

pub mod acpi;
pub mod demo;
pub mod device;
pub mod probe;
pub mod size;

use clap::{Parser, Subcommand};

/// Most devices `acpi` and `demo` accept (`--count 1..=MAX_COUNT`).
pub const MAX_COUNT: u16 = 16;

/// Inspect a CXL Type-2 device (or the built-in simulator) the way a VMM would.
#[derive(Parser, Debug)]
#[command(name = "cxl-passthrough", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Probe a device: UAPI revision, regions, HDM decoders, BAR plan, window, locked decoder 0.
    Probe(probe::ProbeArgs),
    /// Write the CEDT and SSDT (and topology.json) a VMM would install for the planned topology.
    Acpi(acpi::AcpiArgs),
    /// Run a KVM guest against the device(s) and check what it sees (docs/performance.md).
    Demo(demo::DemoArgs),
}

/// Runs the CLI.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Probe(a) => probe::run(&a),
        Command::Demo(a) => demo::run_demo(&a),
        Command::Acpi(a) => acpi::run(&a),
    }
}
