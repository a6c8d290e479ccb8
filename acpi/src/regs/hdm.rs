//! HDM Decoder Capability structure (capability ID 5).

use bitfield_struct::bitfield;

/// Offset of the HDM Decoder Capability register in the HDM block.
pub const HDM_CAPABILITY: u64 = 0x00;
/// Offset of the HDM Decoder Global Control register in the HDM block.
pub const HDM_GLOBAL_CONTROL: u64 = 0x04;
/// Offset of decoder 0 in the HDM block; decoder n is at `0x10 + 0x20·n`.
pub const HDM_DECODER0: u64 = 0x10;
/// Stride between decoders.
pub const HDM_DECODER_STRIDE: u64 = 0x20;
/// Bits 27:0 of BASE_LO, SIZE_LO and DPA-skip LO are reserved (256 MiB granularity).
pub const HDM_LO_RESERVED_MASK: u32 = 0x0FFF_FFFF;
/// Decoder base and size granularity.
pub const HDM_GRANULE: u64 = 256 << 20;

/// Size in bytes of an HDM block with `count` decoders.
pub const fn hdm_block_size(count: u32) -> u64 {
    0x10 + 0x20 * count as u64
}

/// A register of one decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecoderReg {
    /// Base Low: HPA bits 31:28.
    BaseLo,
    /// Base High: HPA bits 63:32.
    BaseHi,
    /// Size Low: size bits 31:28.
    SizeLo,
    /// Size High: size bits 63:32.
    SizeHi,
    /// Control.
    Ctrl,
    /// Target List Low (ports) or DPA Skip Low (devices).
    TargetListLo,
    /// Target List High (ports) or DPA Skip High (devices).
    TargetListHi,
    /// Reserved dword at +0x1C.
    Reserved,
}

impl DecoderReg {
    /// All registers of a decoder, in address order.
    pub const ALL: [DecoderReg; 8] = [
        DecoderReg::BaseLo,
        DecoderReg::BaseHi,
        DecoderReg::SizeLo,
        DecoderReg::SizeHi,
        DecoderReg::Ctrl,
        DecoderReg::TargetListLo,
        DecoderReg::TargetListHi,
        DecoderReg::Reserved,
    ];

    /// Offset of this register inside its decoder.
    pub const fn offset(self) -> u64 {
        match self {
            DecoderReg::BaseLo => 0x0,
            DecoderReg::BaseHi => 0x4,
            DecoderReg::SizeLo => 0x8,
            DecoderReg::SizeHi => 0xC,
            DecoderReg::Ctrl => 0x10,
            DecoderReg::TargetListLo => 0x14,
            DecoderReg::TargetListHi => 0x18,
            DecoderReg::Reserved => 0x1C,
        }
    }

    /// Offset of register `self` of decoder `n` relative to the HDM block.
    pub const fn at(self, n: u32) -> u64 {
        HDM_DECODER0 + HDM_DECODER_STRIDE * n as u64 + self.offset()
    }
}

/// What an offset inside an HDM block addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HdmField {
    /// HDM Decoder Capability (+0x00).
    Capability,
    /// HDM Decoder Global Control (+0x04).
    GlobalControl,
    /// Reserved dwords +0x08 and +0x0C.
    Reserved,
    /// A decoder register.
    Decoder(u32, DecoderReg),
}

/// Decodes a dword offset relative to the HDM block (`None` when unaligned).
pub fn hdm_field(offset: u64) -> Option<HdmField> {
    if !offset.is_multiple_of(4) {
        return None;
    }
    Some(match offset {
        HDM_CAPABILITY => HdmField::Capability,
        HDM_GLOBAL_CONTROL => HdmField::GlobalControl,
        0x08 | 0x0C => HdmField::Reserved,
        _ => {
            let rel = offset - HDM_DECODER0;
            let n = u32::try_from(rel / HDM_DECODER_STRIDE).ok()?;
            let reg = DecoderReg::ALL[((rel % HDM_DECODER_STRIDE) / 4) as usize];
            HdmField::Decoder(n, reg)
        }
    })
}

/// HDM Decoder Capability register (+0x00, read-only).
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct HdmCapability {
    /// Encoded decoder count (see [`HdmCapability::decoder_count`]).
    #[bits(4)]
    pub decoder_count_raw: u8,
    /// Target-list entries per decoder.
    #[bits(4)]
    pub target_count: u8,
    /// HPA bits 11:8 usable for interleave.
    pub a11to8_interleave: bool,
    /// HPA bits 14:12 usable for interleave.
    pub a14to12_interleave: bool,
    /// Poison On Decode Error capable.
    pub poison_on_decode_error: bool,
    /// 3, 6, 12-way interleave capable.
    pub iw_3_6_12: bool,
    /// 16-way interleave capable.
    pub iw_16: bool,
    /// UIO capable.
    pub uio_capable: bool,
    #[bits(2)]
    __: u8,
    /// UIO capable decoder count.
    #[bits(4)]
    pub uio_decoder_count: u8,
    /// MemData-NXM capable.
    pub memdata_nxm: bool,
    /// Supported coherency models (1 device-coherent, 2 host-only, 3 both).
    #[bits(2)]
    pub coherency_models: u8,
    #[bits(9)]
    __: u16,
}

impl HdmCapability {
    /// Decoder count per the CXL r3.1 encoding (0→1, 1..8→2n, 9..C→20..32).
    pub fn decoder_count(&self) -> Option<u32> {
        match self.decoder_count_raw() {
            0 => Some(1),
            f @ 1..=8 => Some(2 * u32::from(f)),
            f @ 9..=0xC => Some(20 + 4 * (u32::from(f) - 9)),
            _ => None,
        }
    }

    /// Decoder count as Linux and every vfio-cxl revision compute it (`f ? 2f : 1`).
    /// Equal to the spec encoding up to field 8 (16 decoders).
    pub fn linux_decoder_count(&self) -> u32 {
        match self.decoder_count_raw() {
            0 => 1,
            f => 2 * u32::from(f),
        }
    }

    /// Encodes a decoder count (1, or an even number up to 16) as the raw field.
    pub fn encode_decoder_count(count: u32) -> Option<u8> {
        match count {
            1 => Some(0),
            2..=16 if count.is_multiple_of(2) => u8::try_from(count / 2).ok(),
            _ => None,
        }
    }
}

/// HDM Decoder Global Control register (+0x04).
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct HdmGlobalControl {
    /// Poison On Decode Error Enable.
    pub poison_on_decode_error_enable: bool,
    /// HDM Decoder Enable.
    pub hdm_decoder_enable: bool,
    #[bits(30)]
    __: u32,
}

/// Decoder n Control register.
#[bitfield(u32)]
#[derive(PartialEq, Eq)]
pub struct DecoderCtrl {
    /// Interleave granularity (encoded).
    #[bits(4)]
    pub ig: u8,
    /// Interleave ways (encoded; 0 = 1 way).
    #[bits(4)]
    pub iw: u8,
    /// Lock On Commit.
    pub lock_on_commit: bool,
    /// Commit request.
    pub commit: bool,
    /// Committed (set by hardware).
    pub committed: bool,
    /// Error Not Committed (set by hardware).
    pub error_not_committed: bool,
    /// Target type: 0 = device-coherent (Type-2), 1 = host-only coherent (Type-3).
    pub target_type_hostonly: bool,
    /// Back-Invalidate (HDM-DB).
    pub bi: bool,
    /// UIO decode enable.
    pub uio: bool,
    #[bits(1)]
    __: u8,
    /// Upstream interleave granularity.
    #[bits(4)]
    pub uig: u8,
    /// Upstream interleave ways.
    #[bits(4)]
    pub uiw: u8,
    /// Interleave set position.
    #[bits(4)]
    pub isp: u8,
    #[bits(4)]
    __: u8,
}

impl DecoderCtrl {
    /// Bits that are reserved in every revision (bit 15, bits 31:28).
    pub const RESERVED: u32 = (1 << 15) | 0xF000_0000;
}

/// Splits a 256 MiB-aligned address or size into its (LO, HI) register values.
pub const fn split_lo_hi(value: u64) -> (u32, u32) {
    ((value as u32) & !HDM_LO_RESERVED_MASK, (value >> 32) as u32)
}

/// Joins (LO, HI) register values into an address or size, ignoring LO bits 27:0.
pub const fn join_lo_hi(lo: u32, hi: u32) -> u64 {
    ((hi as u64) << 32) | (lo & !HDM_LO_RESERVED_MASK) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ctrl_bit_positions() {
        assert_eq!(
            DecoderCtrl::new().with_lock_on_commit(true).into_bits(),
            1 << 8
        );
        assert_eq!(DecoderCtrl::new().with_commit(true).into_bits(), 1 << 9);
        assert_eq!(DecoderCtrl::new().with_committed(true).into_bits(), 1 << 10);
        assert_eq!(
            DecoderCtrl::new()
                .with_error_not_committed(true)
                .into_bits(),
            1 << 11
        );
        assert_eq!(
            DecoderCtrl::new()
                .with_target_type_hostonly(true)
                .into_bits(),
            1 << 12
        );
        assert_eq!(DecoderCtrl::new().with_bi(true).into_bits(), 1 << 13);
        assert_eq!(DecoderCtrl::new().with_uio(true).into_bits(), 1 << 14);
        assert_eq!(DecoderCtrl::new().with_isp(0xF).into_bits(), 0x0F00_0000);
        assert_eq!(
            HdmGlobalControl::new()
                .with_hdm_decoder_enable(true)
                .into_bits(),
            2
        );
        assert_eq!(
            HdmCapability::new().with_coherency_models(3).into_bits(),
            3 << 21
        );
        assert_eq!(
            HdmCapability::new().with_uio_capable(true).into_bits(),
            1 << 13
        );
    }

    #[test]
    fn decoder_count_encodings() {
        let c = |raw| HdmCapability::new().with_decoder_count_raw(raw);
        assert_eq!(c(0).decoder_count(), Some(1));
        assert_eq!(c(8).decoder_count(), Some(16));
        assert_eq!(c(9).decoder_count(), Some(20));
        assert_eq!(c(0xC).decoder_count(), Some(32));
        assert_eq!(c(0xD).decoder_count(), None);
        assert_eq!(c(9).linux_decoder_count(), 18);
        for n in [1, 2, 4, 10, 16] {
            let raw = HdmCapability::encode_decoder_count(n).unwrap();
            assert_eq!(c(raw).decoder_count(), Some(n));
        }
        assert_eq!(HdmCapability::encode_decoder_count(3), None);
        assert_eq!(HdmCapability::encode_decoder_count(0), None);
    }

    #[test]
    fn field_decoding() {
        assert_eq!(
            hdm_field(0x20),
            Some(HdmField::Decoder(0, DecoderReg::Ctrl))
        );
        assert_eq!(
            hdm_field(0x30),
            Some(HdmField::Decoder(1, DecoderReg::BaseLo))
        );
        assert_eq!(
            hdm_field(0x2C),
            Some(HdmField::Decoder(0, DecoderReg::Reserved))
        );
        assert_eq!(hdm_field(0x08), Some(HdmField::Reserved));
        assert_eq!(hdm_field(0x22), None);
        assert_eq!(DecoderReg::Ctrl.at(0), 0x20);
        assert_eq!(DecoderReg::BaseHi.at(2), 0x54);
    }

    proptest! {
        #[test]
        fn ctrl_roundtrip(v: u32) {
            prop_assert_eq!(DecoderCtrl::from_bits(v).into_bits() | DecoderCtrl::RESERVED, v | DecoderCtrl::RESERVED);
        }

        #[test]
        fn lo_hi_roundtrip(v in any::<u64>()) {
            let aligned = v & !(HDM_GRANULE - 1);
            let (lo, hi) = split_lo_hi(aligned);
            prop_assert_eq!(join_lo_hi(lo, hi), aligned);
            prop_assert_eq!(lo & HDM_LO_RESERVED_MASK, 0);
        }

        #[test]
        fn field_decoding_total(off in 0u64..0x1_0000) {
            match hdm_field(off) {
                None => prop_assert!(!off.is_multiple_of(4)),
                Some(HdmField::Decoder(n, r)) => prop_assert_eq!(r.at(n), off),
                Some(_) => prop_assert!(off < 0x10),
            }
        }
    }
}
