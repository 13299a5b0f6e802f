//! Key-to-partition mapping, identical to Apache Kafka's default partitioner
//! for keyed records: `toPositive(murmur2(key)) % partitions`.
//!
//! This module owns only that arithmetic. It must never change its output for
//! a given key and partition count: records already stored were placed with
//! it, and Kafka-fed topics must agree with the Java client byte for byte.

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with seed `0x9747b28c`, reading
/// the input in little-endian 4-byte words, returned as Java's signed `int`.
pub fn murmur2(bytes: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java takes `data.length` as an int; only its low 32 bits enter the hash.
    let mut h: u32 = SEED ^ (bytes.len() as u32);

    let mut words = bytes.chunks_exact(4);
    for word in &mut words {
        let mut k = match word {
            [a, b, c, d] => u32::from_le_bytes([*a, *b, *c, *d]),
            _ => 0, // chunks_exact(4) only yields 4-byte slices
        };
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }

    // The last 1 to 3 bytes, as Java's fall-through switch folds them in.
    match words.remainder() {
        [a, b, c] => {
            h ^= u32::from(*c) << 16;
            h ^= u32::from(*b) << 8;
            h ^= u32::from(*a);
            h = h.wrapping_mul(M);
        }
        [a, b] => {
            h ^= u32::from(*b) << 8;
            h ^= u32::from(*a);
            h = h.wrapping_mul(M);
        }
        [a] => {
            h ^= u32::from(*a);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }

    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (this is not `abs`).
pub fn to_positive(hash: i32) -> u32 {
    (hash & 0x7fff_ffff) as u32
}

/// The partition of `key` (its UTF-8 bytes) among `partitions`, as Kafka's
/// default partitioner chooses it for a keyed record.
///
/// # Panics
///
/// If `partitions` is zero: a topic always has at least one partition, so a
/// zero here is a bug in the caller.
pub fn partition_for_key(key: &str, partitions: u32) -> u32 {
    partition_for_bytes(key.as_bytes(), partitions)
}

/// [`partition_for_key`] for a key that is raw bytes.
///
/// # Panics
///
/// If `partitions` is zero.
pub fn partition_for_bytes(key: &[u8], partitions: u32) -> u32 {
    assert!(partitions > 0, "a topic has at least one partition");
    to_positive(murmur2(key)) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of `testMurmur2` in Apache Kafka's
    /// `clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java`
    /// (apache/kafka, read at commit f55581dc73953c3509a4702433aeeeddc2970779).
    const KAFKA_VECTORS: [(&[u8], i32); 6] = [
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107), // Kafka writes it as new byte[] {'a', 'b', 'c'},
    ];

    /// The Java client's hashes that librdkafka checks itself against in
    /// `unittest_murmur2` of `src/rdmurmur2.c` (confluentinc/librdkafka, read at
    /// commit 6cbbd2f7aee9cad3be4aea2c169f12b5b3d787b0). They add inputs with
    /// one trailing byte, which Kafka's own vectors lack.
    const LIBRDKAFKA_JAVA_VECTORS: [(&[u8], u32); 11] = [
        (b"kafka", 0xd067_cf64),
        (b"giberish123456789", 0x8f55_2b0c),
        (b"1234", 0x9fc9_7b14),
        (b"234", 0xe7c0_09ca),
        (b"34", 0x8739_30da),
        (b"4", 0x5a4b_5ca1),
        (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x7842_4f1c),
        (b"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62_b377),
        (b"eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4_e09e),
        (b"AmbleWillBeRemoved,ThePrePartThatIs", 0x62b8_b43f),
        (b"", 0x106e_08d9),
    ];

    #[test]
    fn murmur2_matches_librdkafka_java_vectors() {
        for (input, expected) in LIBRDKAFKA_JAVA_VECTORS {
            assert_eq!(
                murmur2(input) as u32,
                expected,
                "murmur2({:?})",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn murmur2_matches_kafka_utils_test() {
        for (input, expected) in KAFKA_VECTORS {
            assert_eq!(
                murmur2(input),
                expected,
                "murmur2({:?})",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn vectors_cover_every_tail_length() {
        let tails: Vec<usize> = KAFKA_VECTORS
            .iter()
            .map(|(k, _)| k.len() % 4)
            .chain(LIBRDKAFKA_JAVA_VECTORS.iter().map(|(k, _)| k.len() % 4))
            .collect();
        for tail in 0..4 {
            assert!(
                tails.contains(&tail),
                "no reference vector with {tail} trailing bytes"
            );
        }
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(-790_332_482), 1_357_151_166);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), 0x7fff_ffff);
        assert_eq!(to_positive(42), 42);
    }

    /// Partitions worked out by hand from the Kafka hashes above:
    /// toPositive(h) = h & 0x7fffffff, then the remainder.
    #[test]
    fn partition_vectors() {
        // toPositive(-790332482) = 1357151166
        assert_eq!(partition_for_key("foobar", 50), 16);
        assert_eq!(partition_for_key("foobar", 10), 6);
        assert_eq!(partition_for_key("foobar", 12), 6);
        assert_eq!(partition_for_key("foobar", 1), 0);
        // toPositive(-973932308) = 1173551340
        assert_eq!(partition_for_key("21", 12), 0);
        assert_eq!(partition_for_key("21", 7), 3);
        // toPositive(479470107) = 479470107
        assert_eq!(partition_for_key("abc", 3), 0);
        assert_eq!(partition_for_key("abc", 16), 11);
        // toPositive(-985981536) = 1161502112
        assert_eq!(partition_for_key("a-little-bit-long-string", 100), 12);
        // toPositive(0xd067cf64) = 1348980580, the value librdkafka's older
        // unit test lists for "kafka" (it stored the positive form)
        assert_eq!(partition_for_key("kafka", 6), 4);
        assert_eq!(partition_for_key("kafka", 10), 0);
        // toPositive(-1486304829) = 661178819
        assert_eq!(partition_for_bytes(b"a-little-bit-longer-string", 32), 3);
    }

    #[test]
    fn partitions_are_in_range_and_stable() {
        for partitions in 1..=64 {
            for tenant in 0..50 {
                let key = format!("tenant-{tenant}");
                let p = partition_for_key(&key, partitions);
                assert!(p < partitions);
                assert_eq!(p, partition_for_key(&key, partitions));
            }
        }
    }

    #[test]
    #[should_panic(expected = "at least one partition")]
    fn zero_partitions_is_a_caller_bug() {
        partition_for_key("k", 0);
    }
}
