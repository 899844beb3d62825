//! Duplicate detection in bounded memory: 128-bit row keys, a fixed-size Bloom filter that
//! picks candidate keys, and the exact `DuplicateIndex` a second pass builds from them.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, DefaultHasher, Hasher};

/// 2^16 blocks of 64 bytes: a 4 MiB filter. At 1,000,000 distinct keys its false-positive rate
/// is about 1e-5 (a handful of candidates); it stays useful well past 4,000,000 rows.
pub(crate) const DEFAULT_LOG2_BLOCKS: u32 = 16;

/// Bits set per key, all within one 512-bit block (one cache line), so a lookup costs one
/// cache miss instead of seven.
const BITS_PER_KEY: u32 = 7;

/// The identity of a row for duplicate purposes: a 128-bit hash of (token, device,
/// lowercased user, lowercased email), the fields as the input gives them. Offline the email
/// cannot be resolved to a user, so a row naming its user by email repeats another only when
/// it names the same address (in any case) and the same device and token; a row naming the
/// same user by userId is told apart by the run, which resolves the address
/// (docs/design.md#people-by-email). Two different keys with equal hashes would be taken for
/// duplicates; with 128 bits the chance is about n²/2^129 (1e-27 for a million rows), far
/// below any hardware error rate, so it is accepted rather than checked.
pub(crate) type RowKey = u128;

/// Hashes a valid row's key. Deterministic within the process (std's `DefaultHasher::new()` has
/// fixed keys), which is all the two passes of one `scan` need. The two halves use distinct
/// prefixes, so they are independent SipHash outputs.
pub(crate) fn row_key(token: &str, device: &str, user: &str, email: &str) -> RowKey {
    // The key as one byte string: token 0xFF device 0xFF lowercased user 0xFF lowercased
    // email (userIds and addresses compare case-insensitively). 0xFF never occurs in UTF-8,
    // so the fields stay apart. Rows without an email (the usual case) need at most
    // 36 + 1 + 36 + 1 + 36 + 1 bytes and stay on the stack; one `write` per half is markedly
    // faster than one per field.
    let mut buf = [0u8; 112];
    let len = token.len() + device.len() + user.len() + 3;
    let bytes: std::borrow::Cow<'_, [u8]> = match buf.get_mut(..len) {
        Some(out) if email.is_empty() => {
            let (t, rest) = out.split_at_mut(token.len());
            t.copy_from_slice(token.as_bytes());
            let (sep, rest) = rest.split_at_mut(1);
            sep[0] = 0xFF;
            let (d, rest) = rest.split_at_mut(device.len());
            d.copy_from_slice(device.as_bytes());
            let (sep, rest) = rest.split_at_mut(1);
            sep[0] = 0xFF;
            let (u, sep) = rest.split_at_mut(user.len());
            u.copy_from_slice(user.as_bytes());
            u.make_ascii_lowercase();
            sep[0] = 0xFF;
            std::borrow::Cow::Borrowed(out)
        }
        // An email, or fields longer than valid rows have.
        _ => {
            let email = crate::credential::email_key(email);
            let mut v = Vec::with_capacity(len + email.len());
            v.extend_from_slice(token.as_bytes());
            v.push(0xFF);
            v.extend_from_slice(device.as_bytes());
            v.push(0xFF);
            v.extend(user.bytes().map(|b| b.to_ascii_lowercase()));
            v.push(0xFF);
            v.extend_from_slice(email.as_bytes());
            std::borrow::Cow::Owned(v)
        }
    };
    let half = |prefix: u8| {
        let mut h = DefaultHasher::new();
        h.write_u8(prefix);
        h.write(&bytes);
        h.finish()
    };
    (u128::from(half(0x5A)) << 64) | u128::from(half(0xA5))
}

/// A blocked Bloom filter of fixed size: memory does not depend on the file.
pub(crate) struct Bloom {
    blocks: Vec<[u64; 8]>,
    mask: usize,
}

impl Bloom {
    /// A filter of 2^`log2_blocks` 64-byte blocks. Tests use tiny ones to force false positives.
    pub(crate) fn with_log2_blocks(log2_blocks: u32) -> Bloom {
        let n = 1usize << log2_blocks.min(30);
        Bloom {
            blocks: vec![[0u64; 8]; n],
            mask: n - 1,
        }
    }

    /// Adds `key`; true when all its bits were set already, i.e. the key may have been added
    /// before (or is a false positive).
    pub(crate) fn insert(&mut self, key: RowKey) -> bool {
        // The low half picks the block, the high half the bits: independent hash outputs.
        let block = &mut self.blocks[(key as u64 as usize) & self.mask];
        let mut bits = (key >> 64) as u64;
        let mut seen = true;
        for _ in 0..BITS_PER_KEY {
            let bit = (bits & 511) as usize;
            bits >>= 9;
            let (word, mask) = (bit >> 6, 1u64 << (bit & 63));
            seen &= block[word] & mask != 0;
            block[word] |= mask;
        }
        seen
    }
}

/// Row keys are already uniform hashes, so the sets and maps keyed by them skip rehashing.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u128` is used for keys; this keeps the hasher correct for anything else.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, v: u128) {
        self.0 = (v as u64) ^ ((v >> 64) as u64);
    }
}

pub(crate) type KeySet = HashSet<RowKey, BuildHasherDefault<KeyHasher>>;
pub(crate) type KeyMap<V> = HashMap<RowKey, V, BuildHasherDefault<KeyHasher>>;

/// Which rows repeat an earlier row, and which row they repeat. Holds only the true duplicates,
/// as (row, first_row) pairs sorted by row: 16 bytes per duplicate row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DuplicateIndex {
    pairs: Vec<(u64, u64)>,
}

impl DuplicateIndex {
    /// An index with no duplicates, for reading rows without a prior `scan`.
    pub(crate) fn empty() -> Self {
        Self::default()
    }

    /// The earlier row that `row` repeats, if it is a duplicate.
    pub(crate) fn first_of(&self, row: u64) -> Option<u64> {
        self.pairs
            .binary_search_by_key(&row, |&(r, _)| r)
            .ok()
            .map(|i| self.pairs[i].1)
    }

    /// The number of duplicate rows.
    pub(crate) fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Builds the index from pairs pushed in increasing row order (the order of a pass).
    pub(crate) fn from_sorted(mut pairs: Vec<(u64, u64)>) -> Self {
        debug_assert!(pairs.windows(2).all(|w| w[0].0 < w[1].0));
        pairs.shrink_to_fit();
        DuplicateIndex { pairs }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_case_is_ignored_and_fields_are_separated() {
        let u = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
        assert_eq!(
            row_key("T", "D", u, ""),
            row_key("T", "D", &u.to_ascii_uppercase(), "")
        );
        assert_ne!(row_key("T1", "D", u, ""), row_key("T", "1D", u, ""));
        assert_ne!(row_key("", "D", "", ""), row_key("D", "", "", ""));
        assert_ne!(row_key("t", "D", "", ""), row_key("T", "D", "", ""));
    }

    #[test]
    fn emails_compare_ignoring_case_and_apart_from_the_user() {
        let u = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
        assert_eq!(
            row_key("", "D", "", "Ann.Leaver@ACME.com"),
            row_key("", "D", "", "ann.leaver@acme.com")
        );
        assert_ne!(
            row_key("", "D", "", "ann@acme.com"),
            row_key("", "D", "", "bob@acme.com")
        );
        // Offline, an address is not known to be any user: not a repeat of a userId row.
        assert_ne!(row_key("", "D", u, "ann@acme.com"), row_key("", "D", u, ""));
        assert_ne!(
            row_key("", "D", "", "ann@acme.com"),
            row_key("", "D", "", "")
        );
        assert_ne!(
            row_key("", "D", "", "ann@acme.com"),
            row_key("", "D2", "", "ann@acme.com")
        );
    }

    #[test]
    fn bloom_says_seen_after_insert() {
        let mut bloom = Bloom::with_log2_blocks(4);
        let keys: Vec<RowKey> = (0..100)
            .map(|i| row_key("T", &format!("D{i}"), "", ""))
            .collect();
        for &k in &keys {
            bloom.insert(k);
        }
        for &k in &keys {
            assert!(bloom.insert(k));
        }
    }

    #[test]
    fn bloom_false_positive_rate_is_small_at_a_million_keys() {
        let mut bloom = Bloom::with_log2_blocks(DEFAULT_LOG2_BLOCKS);
        let n_fp = (0..1_000_000u64)
            .filter(|i| bloom.insert(row_key("T", &i.to_string(), "", "")))
            .count();
        assert!(n_fp < 200, "{n_fp} false positives");
    }

    #[test]
    fn index_lookup() {
        let idx = DuplicateIndex::from_sorted(vec![(3, 1), (7, 1), (9, 4)]);
        assert_eq!(idx.first_of(3), Some(1));
        assert_eq!(idx.first_of(9), Some(4));
        assert_eq!(idx.first_of(4), None);
        assert_eq!(idx.len(), 3);
        assert_eq!(DuplicateIndex::empty().len(), 0);
    }
}
