//! Assertions that an error prints each fact once: walked through its `source()` chain,
//! and in the `a: b: c` text the CLI prints; and the probe error both the library's and
//! the demo's chain tests provoke.
#![allow(dead_code)] // each test binary uses a subset

use std::error::Error;

use cxl_passthrough::backend::sim::{Fault, Op, SimConfig, SimDevice};
use cxl_passthrough::runtime::probe::{ProbeError, probe};
use cxl_passthrough::uapi::{RevisionChoice, UapiRevision};

/// How an EIO from the kernel (or the simulator) prints.
pub const EIO: &str = "Input/output error (os error 5)";

/// The probe error of a simulated `revision` device whose every `op` fails with EIO.
pub fn faulted_probe(revision: UapiRevision, op: Op) -> ProbeError {
    let sim = SimDevice::new(SimConfig {
        revision,
        ..SimConfig::default()
    })
    .expect("a default simulated device");
    sim.inject(Fault::Eio { op, count: None });
    probe(&sim, RevisionChoice::Auto, 4096).expect_err("the injected EIO fails the probe")
}

/// The message of `e` and of each error of its source chain, outermost first (walked
/// here rather than with the library's own helper, which is under test).
pub fn messages(e: &(dyn Error + 'static)) -> Vec<String> {
    let mut out = vec![e.to_string()];
    let mut next = e.source();
    while let Some(s) = next {
        out.push(s.to_string());
        next = s.source();
    }
    out
}

/// Walks `e`'s source chain and asserts that no error's message contains the message of
/// its source (which a chain printer would then print twice) and that no message
/// repeats. Returns the chain as printed (`a: b: c`).
pub fn assert_chain_once(e: &(dyn Error + 'static)) -> String {
    let msgs = messages(e);
    for w in msgs.windows(2) {
        assert!(
            !w[1].is_empty() && !w[0].contains(&w[1]),
            "{:?} repeats its source {:?} (chain {msgs:?})",
            w[0],
            w[1]
        );
    }
    for (i, m) in msgs.iter().enumerate() {
        assert!(!msgs[..i].contains(m), "{m:?} appears twice in {msgs:?}");
    }
    let text = msgs.join(": ");
    assert_text_once(&text);
    text
}

/// Asserts that no `": "`-separated segment of a printed error chain repeats.
pub fn assert_text_once(text: &str) {
    let segs: Vec<&str> = text
        .split(": ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    for (i, s) in segs.iter().enumerate() {
        assert!(!segs[..i].contains(s), "{s:?} prints twice in {text:?}");
    }
}
