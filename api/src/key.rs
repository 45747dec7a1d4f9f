//! Keys and key groups: how keyed streams are partitioned across subtasks.
//!
//! As in Flink, a key hashes into one of `max_parallelism` key groups, and each subtask owns a contiguous
//! range of key groups, so rescaling moves whole groups. The hash is fixed (FxHash over a canonical byte
//! form, then a murmur finaliser) so that the same key lands in the same group in every process and run.
use crate::batch::Row;
use crate::value::{Datum, OwnedDatum};
use std::hash::Hasher;

/// Selects the key of a row (implemented by the expression layer for `key_by`): its stable hash for
/// partitioning, and equality with and conversion to an owned key for keyed state.
///
/// The three methods must agree: rows whose keys are equal by [`key_matches`](Self::key_matches) have the
/// same [`key_hash`](Self::key_hash), which is also [`hash_key`] of [`key_of`](Self::key_of). Use
/// [`KeyHasher`] and [`key_datum_eq`] to get this for free.
pub trait KeySelector: Send + Sync {
    /// The stable hash of the row's key.
    fn key_hash(&self, row: Row<'_>) -> u64;

    /// Whether the row's key equals `key` (an owned key from [`key_of`](Self::key_of)); no allocation.
    fn key_matches(&self, row: Row<'_>, key: &[OwnedDatum]) -> bool;

    /// The row's key, owned (e.g. to intern it in keyed state).
    fn key_of(&self, row: Row<'_>) -> Box<[OwnedDatum]>;
}

/// Key selection by field positions.
#[derive(Clone, Debug)]
pub struct FieldKeys(pub Vec<usize>);

impl KeySelector for FieldKeys {
    fn key_hash(&self, row: Row<'_>) -> u64 {
        let mut h = KeyHasher::new();
        for &i in &self.0 {
            h.add(row.get(i));
        }
        h.finish()
    }

    fn key_matches(&self, row: Row<'_>, key: &[OwnedDatum]) -> bool {
        key.len() == self.0.len() && self.0.iter().zip(key).all(|(&i, k)| key_datum_eq(row.get(i), k.as_datum()))
    }

    fn key_of(&self, row: Row<'_>) -> Box<[OwnedDatum]> {
        self.0.iter().map(|&i| row.get(i).to_owned()).collect()
    }
}

/// Key equality, consistent with [`KeyHasher`]: NULL equals NULL (as in GROUP BY), ints equal timestamps
/// with the same value, and floats compare by value (0.0 = -0.0) or identical bits (NaN).
#[inline]
pub fn key_datum_eq(a: Datum<'_>, b: Datum<'_>) -> bool {
    match (a, b) {
        (Datum::Int(x) | Datum::Timestamp(x), Datum::Int(y) | Datum::Timestamp(y)) => x == y,
        (Datum::Float(x), Datum::Float(y)) => x == y || x.to_bits() == y.to_bits(),
        (a, b) => a == b,
    }
}

/// Whether two owned keys are equal under [`key_datum_eq`].
pub fn owned_keys_eq(a: &[OwnedDatum], b: &[OwnedDatum]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| key_datum_eq(x.as_datum(), y.as_datum()))
}

/// The hash of an owned key: equal to [`KeySelector::key_hash`] of a row with that key.
pub fn hash_key(key: &[OwnedDatum]) -> u64 {
    let mut h = KeyHasher::new();
    key.iter().for_each(|k| h.add(k.as_datum()));
    h.finish()
}

/// Builds a stable hash over key values.
#[derive(Default)]
pub struct KeyHasher(rustc_hash::FxHasher);

impl KeyHasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one key value; equal values hash equally whatever batch they come from.
    #[inline]
    pub fn add(&mut self, v: Datum<'_>) {
        match v {
            Datum::Null => self.0.write_u8(0),
            Datum::Bool(b) => self.0.write_u8(1 + b as u8),
            Datum::Int(i) | Datum::Timestamp(i) => self.0.write_i64(i),
            Datum::Float(f) => self.0.write_u64(if f == 0.0 { 0 } else { f.to_bits() }),
            Datum::Str(s) => {
                self.0.write(s.as_bytes());
                self.0.write_u8(0xff);
            }
        }
    }

    /// The final hash, mixed so that low bits are well distributed.
    #[inline]
    pub fn finish(&self) -> u64 {
        fmix64(self.0.finish())
    }
}

/// Murmur3's 64-bit finaliser.
#[inline]
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// The key group of a key hash.
#[inline]
pub fn key_group(hash: u64, max_parallelism: usize) -> usize {
    (hash % max_parallelism as u64) as usize
}

/// The subtask that owns a key group (Flink's `computeOperatorIndexForKeyGroup`).
#[inline]
pub fn subtask_for_key_group(group: usize, max_parallelism: usize, parallelism: usize) -> usize {
    group * parallelism / max_parallelism
}

/// A contiguous, inclusive range of key groups owned by one subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeyGroupRange {
    /// First group.
    pub start: usize,
    /// Last group (inclusive); `end < start` means empty.
    pub end: usize,
}

impl KeyGroupRange {
    /// The range owned by `subtask` (Flink's `computeKeyGroupRangeForOperatorIndex`).
    pub fn for_subtask(max_parallelism: usize, parallelism: usize, subtask: usize) -> Self {
        let start = (subtask * max_parallelism).div_ceil(parallelism);
        let end = ((subtask + 1) * max_parallelism).div_ceil(parallelism) - 1;
        KeyGroupRange { start, end }
    }

    /// Whether `group` is inside.
    pub fn contains(&self, group: usize) -> bool {
        group >= self.start && group <= self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_every_group_once_and_agree_with_assignment() {
        for max in [1, 7, 128, 1000] {
            for p in 1..=max.min(9) {
                let mut next = 0;
                for s in 0..p {
                    let r = KeyGroupRange::for_subtask(max, p, s);
                    assert_eq!(r.start, next);
                    for g in r.start..=r.end {
                        assert_eq!(subtask_for_key_group(g, max, p), s, "max {max} p {p} g {g}");
                    }
                    next = r.end + 1;
                }
                assert_eq!(next, max);
            }
        }
    }

    #[test]
    fn hash_is_stable() {
        let mut h = KeyHasher::new();
        h.add(Datum::Int(42));
        h.add(Datum::Str("abc"));
        let a = h.finish();
        let mut h = KeyHasher::new();
        h.add(Datum::Int(42));
        h.add(Datum::Str("abc"));
        assert_eq!(a, h.finish());
    }

    #[test]
    fn field_keys_match_and_own_consistently_with_the_hash() {
        let mut b = crate::Batch::new(3);
        b.push_row(&[Datum::Int(7), Datum::Str("x"), Datum::Float(-0.0)]);
        b.push_row(&[Datum::Timestamp(7), Datum::Str("y"), Datum::Float(0.0)]);
        b.push_row(&[Datum::Int(8), Datum::Str("x"), Datum::Null]);
        let k = FieldKeys(vec![0, 2]);
        let owned = k.key_of(b.row(0));
        assert_eq!(&*owned, &[OwnedDatum::Int(7), OwnedDatum::Float(-0.0)]);
        assert!(k.key_matches(b.row(0), &owned));
        assert!(k.key_matches(b.row(1), &owned), "int = timestamp, -0.0 = 0.0");
        assert!(!k.key_matches(b.row(2), &owned));
        assert!(!k.key_matches(b.row(0), &owned[..1]));
        assert_eq!(hash_key(&owned), k.key_hash(b.row(1)));
        assert!(owned_keys_eq(&owned, &k.key_of(b.row(1))));
        assert!(!owned_keys_eq(&owned, &k.key_of(b.row(2))));
    }
}
