//! [`Batch`]: the unit records travel in.
//!
//! A batch stores its rows as fixed-width slots in one vector and all string bytes in one arena, so
//! building, sending and dropping a batch of thousands of records costs a handful of allocations, and a
//! cleared batch is reused without any. Rows are read through [`Row`], which hands out [`Datum`]s that
//! borrow from the batch.
use crate::value::Datum;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Storage of one field value inside a batch (strings point into the arena).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
enum Slot {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str { off: u32, len: u32 },
    Timestamp(i64),
}

/// A batch of records that all have the same number of fields.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    width: usize,
    slots: Vec<Slot>,
    arena: String,
    /// Complete rows.
    rows: usize,
    /// Number of fields pushed for the row being written (0 when no row is open).
    open: usize,
}

impl Batch {
    /// An empty batch for rows of `width` fields.
    pub fn new(width: usize) -> Self {
        Batch { width, slots: Vec::new(), arena: String::new(), rows: 0, open: 0 }
    }

    /// An empty batch with room for `rows` rows of `width` fields and `bytes` string bytes.
    pub fn with_capacity(width: usize, rows: usize, bytes: usize) -> Self {
        Batch { width, slots: Vec::with_capacity(rows * width), arena: String::with_capacity(bytes), rows: 0, open: 0 }
    }

    /// Fields per row.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Number of complete rows.
    #[inline]
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when the batch holds no complete row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of string data held.
    pub fn arena_bytes(&self) -> usize {
        self.arena.len()
    }

    /// An estimate of the memory the batch occupies, for metrics.
    pub fn size_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>() + self.arena.len()
    }

    /// Removes every row, keeping the allocations for reuse.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.arena.clear();
        self.rows = 0;
        self.open = 0;
    }

    /// Removes every row and sets a new width.
    pub fn reset(&mut self, width: usize) {
        self.clear();
        self.width = width;
    }

    /// Row `idx` (panics when out of range, like slice indexing).
    #[inline]
    pub fn row(&self, idx: usize) -> Row<'_> {
        let start = idx * self.width;
        Row { slots: &self.slots[start..start + self.width], arena: &self.arena }
    }

    /// The rows in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = Row<'_>> + '_ {
        (0..self.len()).map(move |i| self.row(i))
    }

    /// Appends one field of the row being written; a row is complete after `width` pushes.
    #[inline]
    pub fn push(&mut self, value: Datum<'_>) {
        let slot = match value {
            Datum::Null => Slot::Null,
            Datum::Bool(v) => Slot::Bool(v),
            Datum::Int(v) => Slot::Int(v),
            Datum::Float(v) => Slot::Float(v),
            Datum::Timestamp(v) => Slot::Timestamp(v),
            Datum::Str(s) => self.push_str_slot(s),
        };
        self.push_slot(slot);
    }

    /// Appends a string field (same as `push(Datum::Str(s))`).
    #[inline]
    pub fn push_str(&mut self, s: &str) {
        let slot = self.push_str_slot(s);
        self.push_slot(slot);
    }

    /// Appends an integer field.
    #[inline]
    pub fn push_int(&mut self, v: i64) {
        self.push_slot(Slot::Int(v));
    }

    /// Appends a float field.
    #[inline]
    pub fn push_float(&mut self, v: f64) {
        self.push_slot(Slot::Float(v));
    }

    /// Appends a NULL field.
    #[inline]
    pub fn push_null(&mut self) {
        self.push_slot(Slot::Null);
    }

    /// Appends a whole row of `width` values.
    pub fn push_row(&mut self, values: &[Datum<'_>]) {
        debug_assert_eq!(values.len(), self.width, "row width");
        for v in values {
            self.push(*v);
        }
    }

    /// Copies a row (of the same width) from another batch.
    #[inline]
    pub fn push_row_from(&mut self, row: Row<'_>) {
        debug_assert_eq!(row.slots.len(), self.width, "row width");
        for slot in row.slots {
            let slot = match *slot {
                Slot::Str { off, len } => {
                    let s = &row.arena[off as usize..(off + len) as usize];
                    self.push_str_slot(s)
                }
                other => other,
            };
            self.push_slot(slot);
        }
    }

    /// Copies field `idx` of `row` (any width) as the next field of the row being written.
    #[inline]
    pub fn push_field_from(&mut self, row: Row<'_>, idx: usize) {
        self.push(row.get(idx));
    }

    /// Discards a partly written row (e.g. after a parse error midway through a record).
    pub fn abandon_row(&mut self) {
        let keep = self.slots.len() - self.open;
        self.slots.truncate(keep);
        self.open = 0;
    }

    /// Removes the last complete row, if any (its string bytes stay in the arena until the batch is
    /// cleared).
    pub fn pop_row(&mut self) {
        debug_assert_eq!(self.open, 0, "pop_row with a half-written row");
        if self.rows > 0 && self.open == 0 {
            self.rows -= 1;
            self.slots.truncate(self.rows * self.width);
        }
    }

    /// Moves the rows out, leaving an empty batch with the same width and capacity behind, so the next
    /// batch is filled without regrowing its buffers.
    pub fn take(&mut self) -> Batch {
        debug_assert_eq!(self.open, 0, "take with a half-written row");
        let next = Batch {
            width: self.width,
            slots: Vec::with_capacity(self.slots.capacity()),
            arena: String::with_capacity(self.arena.capacity()),
            rows: 0,
            open: 0,
        };
        std::mem::replace(self, next)
    }

    #[inline]
    fn push_slot(&mut self, slot: Slot) {
        self.slots.push(slot);
        self.open += 1;
        if self.open == self.width {
            self.open = 0;
            self.rows += 1;
        }
    }

    #[inline]
    fn push_str_slot(&mut self, s: &str) -> Slot {
        let off = self.arena.len();
        self.arena.push_str(s);
        // Batches are bounded by the runtime far below 4 GiB of text; saturate rather than wrap if not.
        Slot::Str { off: u32::try_from(off).unwrap_or(u32::MAX), len: u32::try_from(s.len()).unwrap_or(u32::MAX) }
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.rows()).finish()
    }
}

/// One record of a batch.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    slots: &'a [Slot],
    arena: &'a str,
}

impl<'a> Row<'a> {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when the row has no fields.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Field `idx` (panics when out of range).
    #[inline]
    pub fn get(&self, idx: usize) -> Datum<'a> {
        match self.slots[idx] {
            Slot::Null => Datum::Null,
            Slot::Bool(v) => Datum::Bool(v),
            Slot::Int(v) => Datum::Int(v),
            Slot::Float(v) => Datum::Float(v),
            Slot::Timestamp(v) => Datum::Timestamp(v),
            Slot::Str { off, len } => Datum::Str(&self.arena[off as usize..(off + len) as usize]),
        }
    }

    /// Field `idx` as an integer (or timestamp), None when NULL or another type.
    #[inline]
    pub fn int(&self, idx: usize) -> Option<i64> {
        self.get(idx).as_int()
    }

    /// Field `idx` as a float (integers widen).
    #[inline]
    pub fn float(&self, idx: usize) -> Option<f64> {
        self.get(idx).as_float()
    }

    /// Field `idx` as text.
    #[inline]
    pub fn str(&self, idx: usize) -> Option<&'a str> {
        self.get(idx).as_str()
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = Datum<'a>> + '_ {
        (0..self.slots.len()).map(move |i| self.get(i))
    }
}

impl fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_copy_between_batches() {
        let mut a = Batch::new(3);
        a.push_row(&[Datum::Int(1), Datum::Str("x"), Datum::Float(1.5)]);
        a.push_int(2);
        a.push_str("hello");
        a.push_null();
        assert_eq!(a.len(), 2);
        let mut b = Batch::new(3);
        b.push_str("pad");
        b.abandon_row();
        b.push_row_from(a.row(1));
        assert_eq!(b.len(), 1);
        assert_eq!(b.row(0).get(1), Datum::Str("hello"));
        assert_eq!(b.row(0).get(2), Datum::Null);
        assert_eq!(a.row(0).str(1), Some("x"));
    }

    #[test]
    fn partial_row_is_not_counted() {
        let mut a = Batch::new(2);
        a.push_int(1);
        assert_eq!(a.len(), 0);
        a.push_int(2);
        assert_eq!(a.len(), 1);
    }
}
