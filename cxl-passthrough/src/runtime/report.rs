//! The probe report: what a VMM would build for a device, as printed by
//! `cxl-passthrough probe` (human or JSON; the JSON is documented in docs/cli.md).

use super::desc::ComponentDesc;
use super::device::CxlDevice;
use super::hdm_lock::DecoderState;
use crate::plan::{MappedArea, Window};
use crate::uapi::UapiRevision;

/// An `{offset, size}` pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Span {
    /// Offset.
    pub offset: u64,
    /// Size.
    pub size: u64,
}

/// Decoder 0 as read back after boot-time programming.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Decoder0Report {
    /// Base.
    pub base: u64,
    /// Size.
    pub size: u64,
    /// COMMITTED.
    pub committed: bool,
    /// LOCK.
    pub locked: bool,
    /// Device-coherent target type (Type-2).
    pub device_coherent: bool,
    /// HDM Decoder Enable in Global Control.
    pub hdm_enabled: bool,
    /// DVSEC Control.Mem_Enable (null without a visible DVSEC).
    pub mem_enabled: Option<bool>,
}

impl From<DecoderState> for Decoder0Report {
    fn from(d: DecoderState) -> Self {
        Self {
            base: d.base,
            size: d.size,
            committed: d.committed,
            locked: d.locked,
            device_coherent: d.device_coherent,
            hdm_enabled: d.hdm_enabled,
            mem_enabled: d.mem_enabled,
        }
    }
}

/// Everything `probe` reports.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct ProbeReport {
    /// Where the device came from (`sim:v2`, a path, ...).
    pub source: String,
    /// UAPI revision.
    pub uapi_revision: UapiRevision,
    /// Decoder 0 committed by firmware.
    pub firmware_committed: bool,
    /// CXL.cache capable (v2 only).
    pub cache_capable: Option<bool>,
    /// Device memory size.
    pub dpa_size: u64,
    /// DPA region index.
    pub dpa_region_index: u32,
    /// COMP_REGS region index.
    pub comp_regs_region_index: u32,
    /// COMP_REGS region size.
    pub comp_regs_size: u64,
    /// HDM decoder count.
    pub hdm_decoder_count: u32,
    /// HDM block offset inside the component block.
    pub hdm_block_offset: u64,
    /// The component block.
    pub component: ComponentDesc,
    /// Component BAR size.
    pub bar_size: u64,
    /// The kernel's sparse areas.
    pub sparse_areas: Vec<Span>,
    /// The directly mapped areas the VMM maps (page-aligned, clipped).
    pub mapped_areas: Vec<Span>,
    /// BAR ranges trapped and forwarded to the BAR region.
    pub forwarded_ranges: Vec<Span>,
    /// The CFMWS window.
    pub window: Window,
    /// Decoder 0 after boot-time programming.
    pub decoder0: Decoder0Report,
    /// The trapped overlay range (BAR offsets).
    pub overlay: Span,
}

impl ProbeReport {
    /// Builds the report for a booted device.
    pub fn new(source: String, dev: &CxlDevice, decoder0: DecoderState) -> Self {
        let d = dev.desc();
        let plan = dev.bar_plan();
        let span = |a: &MappedArea| Span {
            offset: a.offset,
            size: a.size,
        };
        Self {
            source,
            uapi_revision: d.revision,
            firmware_committed: d.firmware_committed,
            cache_capable: d.cache_capable,
            dpa_size: d.dpa.size,
            dpa_region_index: d.dpa.index,
            comp_regs_region_index: d.comp_regs.index,
            comp_regs_size: d.comp_regs.size,
            hdm_decoder_count: d.hdm.decoder_count,
            hdm_block_offset: d.hdm.block_offset,
            component: d.component,
            bar_size: d.bar.size,
            sparse_areas: d
                .sparse_areas
                .iter()
                .map(|&(offset, size)| Span { offset, size })
                .collect(),
            mapped_areas: plan.mapped.iter().map(span).collect(),
            forwarded_ranges: plan
                .forwarded
                .iter()
                .map(|r| Span {
                    offset: r.start,
                    size: r.end - r.start,
                })
                .collect(),
            window: dev.window(),
            decoder0: decoder0.into(),
            overlay: Span {
                offset: plan.overlay.start,
                size: plan.overlay.end - plan.overlay.start,
            },
        }
    }

    /// Human-readable rendering.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let mut line = |k: &str, v: String| s.push_str(&format!("{k:<22} {v}\n"));
        line("source", self.source.clone());
        line(
            "uapi revision",
            format!("{:?}", self.uapi_revision).to_lowercase(),
        );
        line("firmware committed", self.firmware_committed.to_string());
        line(
            "DPA",
            format!(
                "region {} size {:#x} ({} MiB)",
                self.dpa_region_index,
                self.dpa_size,
                self.dpa_size >> 20
            ),
        );
        line(
            "COMP_REGS",
            format!(
                "region {} size {:#x}",
                self.comp_regs_region_index, self.comp_regs_size
            ),
        );
        line(
            "component block",
            format!(
                "BAR{} +{:#x} size {:#x} (BAR size {:#x})",
                self.component.bar, self.component.offset, self.component.size, self.bar_size
            ),
        );
        line(
            "HDM decoders",
            format!(
                "{} at block +{:#x}",
                self.hdm_decoder_count, self.hdm_block_offset
            ),
        );
        let spans = |v: &[Span]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter()
                    .map(|a| format!("[{:#x}, +{:#x})", a.offset, a.size))
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        };
        line("sparse areas (kernel)", spans(&self.sparse_areas));
        line("mapped BAR areas", spans(&self.mapped_areas));
        line("forwarded BAR ranges", spans(&self.forwarded_ranges));
        line("overlay (trapped)", spans(&[self.overlay]));
        line(
            "CFMWS window",
            format!("{:#x} size {:#x}", self.window.base, self.window.size),
        );
        let d = self.decoder0;
        line(
            "decoder 0",
            format!(
                "base {:#x} size {:#x} committed={} locked={} type2={} hdm_enable={} mem_enable={}",
                d.base,
                d.size,
                d.committed,
                d.locked,
                d.device_coherent,
                d.hdm_enabled,
                d.mem_enabled.map_or("n/a".to_string(), |b| b.to_string())
            ),
        );
        s
    }
}
