//! The Type-2 driver checks of the nested test (Linux 7.3 guests, issue 16): our guest
//! driver (tests/guest-driver/) registers each simulated device with the CXL core, the
//! core assembles a region from the committed and locked decoders, and the driver does
//! I/O through its mapping of that region, before and after a guest FLR.

use super::checks::{Check, check, expected_seed, not_applicable};
use super::console::{Console, HostWindow, dwords_le, num, vmm_saw};

/// `"T2DR"`, the driver's third pattern dword.
const T2_MAGIC: u32 = 0x5244_3254;

/// Whether this guest kernel has the Type-2 accelerator API (7.3 and later).
pub fn has_type2_api(c: &Console) -> bool {
    let k = c.get("l2.kernel").unwrap_or("");
    let mut v = k.split(['.', '-', '+']).map(|x| x.parse::<u32>().ok());
    matches!((v.next().flatten(), v.next().flatten()), (Some(a), Some(b)) if (a, b) >= (7, 3))
}

fn attr<'a>(c: &'a Console, dev: &str, a: &str) -> &'a str {
    c.get(&format!("cxl.{dev}.{a}")).unwrap_or("")
}

/// The driver was loaded and built; checked once per run.
pub fn driver_loaded(c: &Console, out: &mut Vec<Check>) {
    let v = c.get("l2.insmod.cxl_t2_test");
    check(
        out,
        "t2_driver_loaded",
        v == Some("ok"),
        match v {
            Some(v) => format!("insmod cxl_t2_test: {v}"),
            None => "not in the L2 initramfs: build it with scripts/guest/build-guest-driver.sh \
                     (scripts/test.sh runs it when CXL_E2E_CLOUD_HYPERVISOR is set)"
                .to_string(),
        },
    );
}

/// Whether `bdf` is a CXL type-3 memory device (class 0x0502xx), such as the real-kernel
/// lab's QEMU `cxl-type3` standing in for a Type-2 device (docs/lab.md): Linux's own
/// cxl_pci/cxl_mem bind it, our Type-2 test driver (simulator IDs) does not.
fn is_type3(c: &Console, bdf: &str) -> bool {
    c.get(&format!("pci.{bdf}"))
        .and_then(|p| Console::field(p, "class"))
        .is_some_and(|k| k.starts_with("0x0502"))
}

/// The memdev, endpoint decoder, region and driver I/O of one device.
pub fn device(c: &Console, bdf: &str, win: &HostWindow, out: &mut Vec<Check>) {
    let n = |what: &str| format!("{what}[{bdf}]");
    if is_type3(c, bdf) {
        return type3_device(c, bdf, win, out);
    }
    let region = c.get(&format!("t2.{bdf}.region")).unwrap_or("");
    check(
        out,
        n("t2_driver_region_is_window"),
        Console::field(region, "start").and_then(num) == Some(win.decoder_base)
            && Console::field(region, "size").and_then(num) == Some(win.decoder_size),
        format!(
            "driver's region {region:?}; want start={:#x} size={:#x}",
            win.decoder_base, win.decoder_size
        ),
    );
    let memdev = c.get(&format!("t2.{bdf}.memdev")).unwrap_or("");
    check(
        out,
        n("t2_memdev"),
        memdev.starts_with("mem") && c.get(&format!("cxl.dev.{memdev}")).is_some(),
        format!(
            "memdev {memdev:?} (driver {:?})",
            c.get(&format!("cxl.dev.{memdev}"))
        ),
    );
    core_checks(c, bdf, win, memdev, out);
    driver_io(c, bdf, win, "pre", 0xc0, out);
    driver_io(c, bdf, win, "post", 0xe0, out);
}

/// A type-3 device ([`is_type3`]): the Type-2 driver's checks do not apply; Linux's
/// cxl_mem must hold its one memdev, and the CXL core's checks run on that.
fn type3_device(c: &Console, bdf: &str, win: &HostWindow, out: &mut Vec<Check>) {
    let n = |what: &str| format!("{what}[{bdf}]");
    let why = "a type-3 memory device (class 0x0502xx): Linux's cxl_pci/cxl_mem own it, \
               not the Type-2 test driver";
    for what in [
        "t2_driver_region_is_window",
        "t2_driver_io.pre",
        "t2_driver_io.post",
    ] {
        not_applicable(out, n(what), why);
    }
    let mems: Vec<&str> = c
        .with_prefix("cxl.dev.mem")
        .filter(|(_, drv)| *drv == "cxl_mem")
        .map(|(k, _)| k.trim_start_matches("cxl.dev."))
        .collect();
    check(
        out,
        n("type3_memdev_bound_by_cxl_mem"),
        mems.len() == 1,
        format!("memdevs bound by cxl_mem: {mems:?} (want the one device's)"),
    );
    core_checks(c, bdf, win, mems.first().copied().unwrap_or(""), out);
}

/// The CXL core's view of the device's memdev `memdev`: its endpoint decoder and the
/// region at the window, before and after the guest FLR.
fn core_checks(c: &Console, bdf: &str, win: &HostWindow, memdev: &str, out: &mut Vec<Check>) {
    let n = |what: &str| format!("{what}[{bdf}]");
    // The endpoint port whose uport is the memdev, and its decoder at the window.
    let endpoint = c
        .with_prefix("cxl.endpoint")
        .find(|(k, v)| k.ends_with(".uport") && !memdev.is_empty() && *v == memdev)
        .map(|(k, _)| {
            k.trim_start_matches("cxl.")
                .trim_end_matches(".uport")
                .to_string()
        })
        .unwrap_or_default();
    let id = endpoint.trim_start_matches("endpoint");
    let dec = format!("decoder{id}.0");
    let at_window = |d: &str, pre: &str| {
        num(c.get(&format!("{pre}{d}.start")).unwrap_or("")) == Some(win.decoder_base)
            && num(c.get(&format!("{pre}{d}.size")).unwrap_or("")) == Some(win.decoder_size)
            && c.get(&format!("{pre}{d}.locked")) == Some("1")
    };
    check(
        out,
        n("endpoint_decoder_locked_at_window"),
        !id.is_empty() && at_window(&dec, "cxl."),
        format!(
            "{endpoint:?} {dec} start={} size={} locked={}",
            attr(c, &dec, "start"),
            attr(c, &dec, "size"),
            attr(c, &dec, "locked")
        ),
    );
    // The region at the window, committed.
    let regions: Vec<String> = c
        .with_prefix("cxl.dev.region")
        .map(|(k, _)| k.trim_start_matches("cxl.dev.").to_string())
        .collect();
    let mine = regions
        .iter()
        .find(|r| num(attr(c, r, "resource")) == Some(win.decoder_base));
    check(
        out,
        n("region_committed_at_window"),
        mine.is_some_and(|r| {
            num(attr(c, r, "size")) == Some(win.decoder_size) && attr(c, r, "commit") == "1"
        }),
        format!(
            "want resource={:#x} size={:#x} commit=1; have {:?}",
            win.decoder_base,
            win.decoder_size,
            regions
                .iter()
                .map(|r| format!(
                    "{r} resource={} size={} commit={}",
                    attr(c, r, "resource"),
                    attr(c, r, "size"),
                    attr(c, r, "commit")
                ))
                .collect::<Vec<_>>()
        ),
    );
    // After the guest FLR: the decoders are locked again and the region stays.
    check(
        out,
        n("endpoint_decoder_locked_after_flr"),
        !id.is_empty() && at_window(&dec, "cxl.post."),
        format!(
            "{dec} after FLR: start={:?} size={:?} locked={:?}",
            c.get(&format!("cxl.post.{dec}.start")),
            c.get(&format!("cxl.post.{dec}.size")),
            c.get(&format!("cxl.post.{dec}.locked"))
        ),
    );
    check(
        out,
        n("region_kept_after_flr"),
        mine.is_some_and(|r| {
            num(c.get(&format!("cxl.post.{r}.resource")).unwrap_or("")) == Some(win.decoder_base)
                && c.get(&format!("cxl.post.{r}.commit")) == Some("1")
        }),
        format!(
            "{mine:?} after FLR: resource={:?} commit={:?}",
            mine.and_then(|r| c.get(&format!("cxl.post.{r}.resource"))),
            mine.and_then(|r| c.get(&format!("cxl.post.{r}.commit")))
        ),
    );
}

/// The driver read the host's seed and its own pattern back, and the VMM saw the
/// pattern in that device's memory.
fn driver_io(
    c: &Console,
    bdf: &str,
    win: &HostWindow,
    phase: &str,
    offset: u64,
    out: &mut Vec<Check>,
) {
    let n = |what: &str| format!("{what}.{phase}[{bdf}]");
    let io = c.get(&format!("t2.{bdf}.{phase}.io")).unwrap_or("not run");
    // "seed=<4 dwords>[ io=<offset>:<4 dwords>]"
    let seed = io
        .strip_prefix("seed=")
        .and_then(|r| dwords_le(r.split(" io=").next().unwrap_or("")));
    check(
        out,
        n("t2_driver_reads_host_seed"),
        seed.as_deref() == Some(expected_seed(c, win.segment, phase).as_slice()),
        format!("{io:?}"),
    );
    let nonce = c.get("run.nonce").and_then(num).unwrap_or(0) as u32;
    let ix = u32::from(win.segment.saturating_sub(1));
    let tag = offset as u32 | ix << 16;
    let want: Vec<u8> = [nonce, !nonce, T2_MAGIC, tag]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    let got = io
        .split_once(" io=")
        .and_then(|(_, r)| r.split_once(':'))
        .filter(|(o, _)| num(o) == Some(offset))
        .and_then(|(_, w)| dwords_le(w));
    check(
        out,
        n("t2_driver_io_readback"),
        got.as_deref() == Some(want.as_slice()),
        format!("want {want:02x?} at {offset:#x}; {io:?}"),
    );
    let id = format!("cxl{ix}");
    let seen = vmm_saw(c, &id, offset);
    check(
        out,
        n("host_sees_t2_driver_pattern"),
        seen.contains(&want),
        format!("want {want:02x?} in {id}'s DPA at {offset:#x}; VMM saw {seen:02x?}"),
    );
}

/// One region per device.
pub fn regions_per_device(c: &Console, devices: usize, out: &mut Vec<Check>) {
    let committed = c
        .with_prefix("cxl.dev.region")
        .filter(|(k, _)| {
            let r = k.trim_start_matches("cxl.dev.");
            attr(c, r, "commit") == "1"
        })
        .count();
    check(
        out,
        "one_region_per_device",
        committed == devices,
        format!("{committed} committed regions for {devices} devices"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console(nonce: u32, io_pre: &str) -> Console {
        let t = format!(
            "@@l2.kernel=7.3.4+deb13-amd64\n@@run.nonce={nonce}\n\
             @@t2.0001:01:00.0.region=start=0x5000000000 size=0x10000000\n\
             @@t2.0001:01:00.0.memdev=mem0\n@@cxl.dev.mem0=none\n\
             @@cxl.endpoint2.uport=mem0\n@@cxl.decoder2.0.start=0x5000000000\n\
             @@cxl.decoder2.0.size=0x10000000\n@@cxl.decoder2.0.locked=1\n\
             @@cxl.dev.region0=none\n@@cxl.region0.resource=0x5000000000\n\
             @@cxl.region0.size=0x10000000\n@@cxl.region0.commit=1\n\
             @@t2.0001:01:00.0.pre.io={io_pre}\n"
        );
        Console::parse(&t)
    }

    fn win() -> HostWindow {
        HostWindow {
            segment: 1,
            base: 0x50_0000_0000,
            size: 0x1_0000_0000,
            decoder_base: 0x50_0000_0000,
            decoder_size: 0x1000_0000,
        }
    }

    fn result(out: &[Check], name: &str) -> bool {
        out.iter()
            .find(|k| k.name == name)
            .unwrap_or_else(|| panic!("no check {name}"))
            .pass
    }

    #[test]
    fn a_good_console_passes_the_pre_flr_checks() {
        let nonce = 0x1234_5679u32;
        let io = format!(
            "seed=0x2d4c5843 0x2d4d4953 0x2d415044 0x44454553 io=0xc0:{nonce:#x} {:#x} 0x52443254 0x100c0",
            !nonce
        );
        let c = console(nonce, &io);
        let mut out = vec![];
        device(&c, "0001:01:00.0", &win(), &mut out);
        for name in [
            "t2_driver_region_is_window[0001:01:00.0]",
            "t2_memdev[0001:01:00.0]",
            "endpoint_decoder_locked_at_window[0001:01:00.0]",
            "region_committed_at_window[0001:01:00.0]",
            "t2_driver_reads_host_seed.pre[0001:01:00.0]",
        ] {
            assert!(result(&out, name), "{name}: {out:#?}");
        }
        // The console carries no tag for device index 0 at 0xc0 | 1 << 16: wrong tag.
        assert!(!result(&out, "t2_driver_io_readback.pre[0001:01:00.0]"));
        // No post-FLR records, no VMM view: those fail.
        assert!(!result(
            &out,
            "endpoint_decoder_locked_after_flr[0001:01:00.0]"
        ));
        assert!(!result(
            &out,
            "host_sees_t2_driver_pattern.pre[0001:01:00.0]"
        ));
        let mut one = vec![];
        regions_per_device(&c, 1, &mut one);
        assert!(one[0].pass);
        let mut two = vec![];
        regions_per_device(&c, 2, &mut two);
        assert!(!two[0].pass);
    }

    #[test]
    fn the_right_tag_reads_back_and_a_wrong_seed_fails() {
        let nonce = 7u32;
        let io = format!(
            "seed=0 0 0 0 io=0xc0:{nonce:#x} {:#x} 0x52443254 0xc0",
            !nonce
        );
        let c = console(nonce, &io);
        let mut out = vec![];
        device(&c, "0001:01:00.0", &win(), &mut out);
        assert!(result(&out, "t2_driver_io_readback.pre[0001:01:00.0]"));
        assert!(!result(&out, "t2_driver_reads_host_seed.pre[0001:01:00.0]"));
    }

    #[test]
    fn a_missing_driver_fails_naming_the_build_script() {
        let c = Console::parse("@@l2.kernel=7.3.4\n");
        let mut out = vec![];
        driver_loaded(&c, &mut out);
        assert!(!out[0].pass);
        assert!(out[0].detail.contains("build-guest-driver.sh"));
        assert!(has_type2_api(&c));
        assert!(!has_type2_api(&Console::parse("@@l2.kernel=6.12.117\n")));
    }

    #[test]
    fn a_type3_device_is_judged_by_cxl_mem_not_the_type2_driver() {
        let t = "@@pci.0001:01:00.0=vendor=0x8086 device=0x0d93 class=0x050210 parent=0001:00:00.0\n\
                 @@cxl.dev.mem0=cxl_mem\n@@cxl.endpoint2.uport=mem0\n\
                 @@cxl.decoder2.0.start=0x5000000000\n@@cxl.decoder2.0.size=0x10000000\n\
                 @@cxl.decoder2.0.locked=1\n@@cxl.dev.region0=cxl_region\n\
                 @@cxl.region0.resource=0x5000000000\n@@cxl.region0.size=0x10000000\n\
                 @@cxl.region0.commit=1\n";
        let mut out = Vec::new();
        device(&Console::parse(t), "0001:01:00.0", &win(), &mut out);
        let na: Vec<&str> = out
            .iter()
            .filter(|k| k.na)
            .map(|k| k.name.as_str())
            .collect();
        assert_eq!(na.len(), 3, "{out:#?}");
        assert!(na.iter().all(|n| n.starts_with("t2_driver")), "{na:?}");
        assert!(result(&out, "type3_memdev_bound_by_cxl_mem[0001:01:00.0]"));
        assert!(result(
            &out,
            "endpoint_decoder_locked_at_window[0001:01:00.0]"
        ));
        assert!(result(&out, "region_committed_at_window[0001:01:00.0]"));
        // Unbound (no cxl_mem): fails.
        let mut out = Vec::new();
        let unbound = t.replace("mem0=cxl_mem", "mem0=none");
        device(&Console::parse(&unbound), "0001:01:00.0", &win(), &mut out);
        assert!(!result(&out, "type3_memdev_bound_by_cxl_mem[0001:01:00.0]"));
    }
}
