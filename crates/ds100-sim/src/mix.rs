//! Small deterministic hashing: generated data and seeded fault draws must repeat across runs.

/// SplitMix64's finaliser: a bijection on u64 with good avalanche, so distinct inputs give
/// distinct, well-spread outputs.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over several byte strings, with a separator so ("ab","c") and ("a","bc") differ.
/// Chosen over `DefaultHasher`, whose output may change between Rust releases.
pub(crate) fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A uniform number in [0, 1) for the `n`th event of `stream` under `seed`. Counter-based
/// rather than a shared generator: no lock on the hot path, and the `n`th matching request
/// gets the same draw whatever the interleaving of other requests.
pub(crate) fn unit_draw(seed: u64, stream: u64, n: u64) -> f64 {
    let x = splitmix64(splitmix64(seed ^ splitmix64(stream)).wrapping_add(n));
    // The top 53 bits fill an f64 mantissa exactly.
    (x >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_repeatable_and_roughly_uniform() {
        assert_eq!(unit_draw(7, 1, 42), unit_draw(7, 1, 42));
        assert_ne!(unit_draw(7, 1, 42), unit_draw(8, 1, 42));
        assert_ne!(unit_draw(7, 1, 42), unit_draw(7, 2, 42));
        let n = 100_000;
        let below = (0..n).filter(|&i| unit_draw(1, 0, i) < 0.1).count();
        assert!((9_000..11_000).contains(&below), "{below}");
        assert!((0..n).all(|i| (0.0..1.0).contains(&unit_draw(3, 3, i))));
    }

    #[test]
    fn fnv_separates_parts() {
        assert_ne!(fnv1a(&[b"ab", b"c"]), fnv1a(&[b"a", b"bc"]));
        assert_eq!(fnv1a(&[b"x"]), fnv1a(&[b"x"]));
    }
}
