//! Rows of a batch grouped by key, so that a key is made current once per batch rather than per record.
//!
//! Making a key current in keyed state costs a key hash and a probe of the key index (with a likely cache
//! miss on a large key space); a batch of bids holds about 140 distinct auctions in 1024 records, so
//! grouping first (a cheap hash and a probe of a small open-addressing table that stays in cache,
//! reused from batch to batch) saves most of that. Rows of one key keep their arrival order, which is all that window
//! semantics need: different keys never share state. Keys are compared for equality, not just by hash.
use crate::expr::KeyExprs;
use eddy_api::key::key_datum_eq;
use eddy_api::{Batch, Datum, Row};
use std::hash::Hasher;
use std::sync::Arc;

/// End of a group's chain of rows.
const END: u32 = u32::MAX;

/// Marks an entry of the processing order as the first row of its key.
pub const FIRST: u32 = 1 << 31;

/// One key's rows in a batch.
#[derive(Clone, Copy, Debug)]
struct Group {
    hash: u64,
    first: u32,
    last: u32,
}

/// Reusable grouping of batch rows by key.
pub struct KeyGroups {
    keys: Option<Arc<KeyExprs>>,
    /// Field positions when every key part is a bare field (compared without evaluation).
    columns: Option<Box<[usize]>>,
    /// Open addressing over group ids + 1 (0: empty), at least twice as many slots as rows.
    slots: Vec<u32>,
    groups: Vec<Group>,
    next: Vec<u32>,
}

impl KeyGroups {
    /// Groups by `keys`; `None` puts every row in one group (one key for the whole stream).
    pub fn new(keys: Option<Arc<KeyExprs>>) -> Self {
        let columns = keys.as_deref().and_then(|k| k.exprs().iter().map(|e| e.column()).collect());
        KeyGroups { keys, columns, slots: Vec::new(), groups: Vec::new(), next: Vec::new() }
    }

    /// Groups `batch` and writes the order to process it in into `order`: row indices, the rows of one
    /// key together (keys in order of first appearance, each key's rows in arrival order), the first
    /// row of each key marked with [`FIRST`]. Rows of one key share that key.
    pub fn order(&mut self, batch: &Batch, order: &mut Vec<u32>) {
        order.clear();
        let n = batch.len().min((FIRST - 1) as usize);
        let Some(keys) = self.keys.as_deref() else {
            order.extend(0..n as u32);
            if let Some(first) = order.first_mut() {
                *first |= FIRST;
            }
            return;
        };
        self.groups.clear();
        self.next.clear();
        self.next.resize(n, END);
        let cap = (2 * n).next_power_of_two().max(16);
        self.slots.clear();
        self.slots.resize(cap, 0);
        let mask = cap - 1;
        let columns = self.columns.as_deref();
        for i in 0..n {
            let row = batch.row(i);
            let hash = match columns {
                Some(cols) => quick_hash(row, cols),
                None => keys.hash(row),
            };
            // The top bits pick the slot (the multiplicative hash mixes upwards).
            let mut at = (hash >> 32) as usize & mask;
            let i = i as u32;
            loop {
                let slot = self.slots[at];
                if slot == 0 {
                    self.slots[at] = self.groups.len() as u32 + 1;
                    self.groups.push(Group { hash, first: i, last: i });
                    break;
                }
                let g = &mut self.groups[slot as usize - 1];
                if g.hash == hash && same_key(keys, columns, batch.row(g.first as usize), row) {
                    self.next[g.last as usize] = i;
                    g.last = i;
                    break;
                }
                at = (at + 1) & mask;
            }
        }
        for g in &self.groups {
            order.push(g.first | FIRST);
            let mut i = self.next[g.first as usize];
            while i != END {
                order.push(i);
                i = self.next[i as usize];
            }
        }
    }
}

/// A cheap hash of a row's key fields for grouping within a batch (not the stable key hash of key
/// groups): equal keys under [`key_datum_eq`] hash equally (ints and timestamps alike, 0.0 = -0.0).
#[inline]
fn quick_hash(row: Row<'_>, cols: &[usize]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = 0u64;
    for &c in cols {
        let v = match row.get(c) {
            Datum::Null => 0x6e75_6c6c,
            Datum::Bool(b) => 2 + u64::from(b),
            Datum::Int(v) | Datum::Timestamp(v) => v as u64,
            Datum::Float(f) => {
                if f == 0.0 {
                    0
                } else {
                    f.to_bits()
                }
            }
            Datum::Str(s) => {
                let mut fx = rustc_hash::FxHasher::default();
                fx.write(s.as_bytes());
                fx.finish()
            }
        };
        h = (h.rotate_left(26) ^ v).wrapping_mul(K);
    }
    h
}

/// Whether two rows have equal keys (the equality of keyed state).
#[inline]
fn same_key(keys: &KeyExprs, columns: Option<&[usize]>, a: Row<'_>, b: Row<'_>) -> bool {
    match columns {
        Some(cols) => cols.iter().all(|&c| key_datum_eq(a.get(c), b.get(c))),
        None => keys.exprs().iter().all(|e| key_datum_eq(e.eval(a).as_datum(), e.eval(b).as_datum())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_api::{DataType, Datum, Field, Schema, Span, Spanned};

    #[test]
    fn rows_of_a_key_come_together_in_arrival_order() {
        let schema = Schema::new(vec![Field::new("k", DataType::Int), Field::new("v", DataType::String)]);
        let compile = |text: &str| {
            let keys = KeyExprs::compile(&[Spanned::new(Span::new(1, 1), text.to_string())], &schema);
            Arc::new(keys.unwrap_or_else(|d| panic!("{d:?}")))
        };
        let mut b = Batch::new(2);
        for (k, v) in [(1, "a"), (2, "B"), (1, "b"), (3, "c"), (2, "A"), (1, "A")] {
            b.push_row(&[Datum::Int(k), Datum::Str(v)]);
        }
        let mut order = Vec::new();
        KeyGroups::new(Some(compile("k"))).order(&b, &mut order);
        assert_eq!(order, [FIRST, 2, 5, 1 | FIRST, 4, 3 | FIRST]);
        KeyGroups::new(Some(compile("lower(v)"))).order(&b, &mut order);
        assert_eq!(order, [FIRST, 4, 5, 1 | FIRST, 2, 3 | FIRST]);
        KeyGroups::new(None).order(&b, &mut order);
        assert_eq!(order, [FIRST, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_quick_hash_agrees_with_key_equality() {
        let mut b = Batch::new(2);
        b.push_row(&[Datum::Int(7), Datum::Float(0.0)]);
        b.push_row(&[Datum::Timestamp(7), Datum::Float(-0.0)]);
        b.push_row(&[Datum::Int(8), Datum::Str("x")]);
        b.push_row(&[Datum::Int(8), Datum::Str("x")]);
        let cols = [0, 1];
        assert_eq!(quick_hash(b.row(0), &cols), quick_hash(b.row(1), &cols));
        assert_eq!(quick_hash(b.row(2), &cols), quick_hash(b.row(3), &cols));
        assert_ne!(quick_hash(b.row(0), &cols), quick_hash(b.row(2), &cols));
    }
}
