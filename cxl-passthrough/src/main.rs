//! `cxl-passthrough`: inspect a CXL Type-2 device (or the simulator) the way a VMM would.

mod cli;
mod demo;

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = cli::Cli::parse();
    if let Err(e) = cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
