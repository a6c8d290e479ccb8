//! Property tests: no sequence of guest accesses changes the block or panics.

use proptest::prelude::*;

use super::*;

fn config() -> impl Strategy<Value = ChbcrConfig> {
    prop_oneof![
        Just(ChbcrConfig::Passthrough),
        (0u64..0x1000, 1u64..0x100, 0u8..7, any::<u8>()).prop_map(|(b, s, g, p)| {
            ChbcrConfig::Committed(CommittedDecoder {
                base: b * WINDOW_GRANULE,
                size: s * WINDOW_GRANULE,
                granularity: [
                    Granularity::B256,
                    Granularity::B512,
                    Granularity::K1,
                    Granularity::K2,
                    Granularity::K4,
                    Granularity::K8,
                    Granularity::K16,
                ][usize::from(g)],
                target_port: p,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn guest_accesses_never_change_the_block(
        cfg in config(),
        writes in proptest::collection::vec(
            (prop_oneof![0u64..0x2_0000, any::<u64>()], proptest::collection::vec(any::<u8>(), 0..16)),
            0..64,
        ),
        reads in proptest::collection::vec((any::<u64>(), 0usize..16), 0..16),
    ) {
        let mut c = Chbcr::new(cfg).unwrap();
        let mut before = vec![0u8; Chbcr::SIZE as usize];
        c.read(0, &mut before);
        for (off, data) in &writes {
            c.write(*off, data);
        }
        for (off, len) in &reads {
            let mut b = vec![0u8; *len];
            c.read(*off, &mut b);
        }
        let mut after = vec![0u8; Chbcr::SIZE as usize];
        c.read(0, &mut after);
        prop_assert_eq!(before, after);
        prop_assert_eq!(c.ignored_writes(), writes.len() as u64);
    }
}
