//! `key_by` keys: expressions whose values partition a stream and identify its keyed state.
//!
//! Hashing goes through [`KeyHasher`] over the key values, so equal keys hash equally wherever they
//! come from (another batch, an owned key restored from state). Key equality treats int and timestamp
//! values alike and compares floats by value (0.0 = -0.0), matching the hash.
use super::Expr;
use eddy_api::key::{hash_key, key_datum_eq, KeyHasher};
use eddy_api::{Batch, Diagnostics, Field, KeySelector, OwnedDatum, Row, Schema, Spanned};

/// Compiled `key_by` expressions.
#[derive(Clone, Debug)]
pub struct KeyExprs {
    exprs: Box<[Expr]>,
    names: Box<[String]>,
    /// Set when every key is a bare field: the hash then reads the fields directly.
    columns: Option<Box<[usize]>>,
}

impl KeyExprs {
    /// Compiles `key_by: [auction]` or `[auction, "lower(channel)"]`, reporting every bad key.
    pub fn compile(keys: &[Spanned<String>], schema: &Schema) -> Result<KeyExprs, Diagnostics> {
        let mut diags = Diagnostics::new();
        let mut exprs = Vec::with_capacity(keys.len());
        for k in keys {
            match Expr::compile(k, schema) {
                Ok(e) => exprs.push(e),
                Err(d) => diags.extend(d.0),
            }
        }
        diags.into_result(())?;
        let names = exprs
            .iter()
            .map(|e| match e.column().and_then(|i| schema.fields().get(i)) {
                Some(f) => f.name.clone(),
                None => e.text().to_owned(),
            })
            .collect();
        let columns = exprs.iter().map(Expr::column).collect::<Option<Vec<_>>>().map(Vec::into_boxed_slice);
        Ok(KeyExprs { exprs: exprs.into(), names, columns })
    }

    /// The key expressions.
    pub fn exprs(&self) -> &[Expr] {
        &self.exprs
    }

    /// Number of key parts.
    pub fn len(&self) -> usize {
        self.exprs.len()
    }

    /// True when there are no key parts (every record has the same key).
    pub fn is_empty(&self) -> bool {
        self.exprs.is_empty()
    }

    /// Output fields: the field name for bare fields, else the expression text.
    pub fn fields(&self) -> Vec<Field> {
        self.names.iter().zip(self.exprs.iter()).map(|(n, e)| Field::new(n.clone(), e.data_type())).collect()
    }

    /// The stable hash of the row's key.
    #[inline]
    pub fn hash(&self, row: Row<'_>) -> u64 {
        let mut h = KeyHasher::new();
        match &self.columns {
            Some(cols) => cols.iter().for_each(|&i| h.add(row.get(i))),
            None => self.exprs.iter().for_each(|e| h.add(e.eval(row).as_datum())),
        }
        h.finish()
    }

    /// The hash of an owned key; equal to [`hash`](Self::hash) of a row with that key.
    pub fn hash_owned(key: &[OwnedDatum]) -> u64 {
        hash_key(key)
    }

    /// Whether the row's key equals `key`.
    #[inline]
    pub fn matches(&self, row: Row<'_>, key: &[OwnedDatum]) -> bool {
        key.len() == self.exprs.len()
            && match &self.columns {
                Some(cols) => cols.iter().zip(key).all(|(&i, k)| key_datum_eq(row.get(i), k.as_datum())),
                None => self.exprs.iter().zip(key).all(|(e, k)| key_datum_eq(e.eval(row).as_datum(), k.as_datum())),
            }
    }

    /// The row's key, owned (for state).
    pub fn to_owned_key(&self, row: Row<'_>) -> Box<[OwnedDatum]> {
        self.exprs.iter().map(|e| e.eval(row).into_owned_datum()).collect()
    }

    /// Appends the key values as the next fields of the row being written to `out`.
    #[inline]
    pub fn push_into(&self, row: Row<'_>, out: &mut Batch) {
        self.exprs.iter().for_each(|e| e.push_into(row, out));
    }
}

impl KeySelector for KeyExprs {
    #[inline]
    fn key_hash(&self, row: Row<'_>) -> u64 {
        self.hash(row)
    }

    #[inline]
    fn key_matches(&self, row: Row<'_>, key: &[OwnedDatum]) -> bool {
        self.matches(row, key)
    }

    fn key_of(&self, row: Row<'_>) -> Box<[OwnedDatum]> {
        self.to_owned_key(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_api::key::FieldKeys;
    use eddy_api::{DataType, Datum, Span};

    fn compile(list: &[&str]) -> KeyExprs {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int),
            Field::new("name", DataType::String),
            Field::new("ts", DataType::Timestamp),
        ]);
        let specs: Vec<Spanned<String>> = list.iter().map(|k| Spanned::new(Span::new(0, 1), k.to_string())).collect();
        KeyExprs::compile(&specs, &schema).unwrap_or_else(|d| panic!("{d:?}"))
    }

    fn batch() -> Batch {
        let mut b = Batch::new(3);
        b.push_row(&[Datum::Int(1), Datum::Str("Ann"), Datum::Timestamp(5)]);
        b.push_row(&[Datum::Int(1), Datum::Str("ANN"), Datum::Timestamp(5)]);
        b.push_row(&[Datum::Int(2), Datum::Str("ann"), Datum::Null]);
        b
    }

    #[test]
    fn selector_methods_agree_for_columns_and_expressions() {
        let b = batch();
        let by_columns = compile(&["id", "ts"]);
        let by_exprs = compile(&["id", "lower(name)"]);
        let sel: [&dyn KeySelector; 2] = [&by_columns, &by_exprs];
        for k in sel {
            let owned = k.key_of(b.row(0));
            assert!(k.key_matches(b.row(0), &owned));
            assert!(k.key_matches(b.row(1), &owned), "rows 0 and 1 have equal keys");
            assert!(!k.key_matches(b.row(2), &owned));
            assert_eq!(hash_key(&owned), k.key_hash(b.row(1)));
        }
        assert_eq!(&*by_exprs.key_of(b.row(1)), &[OwnedDatum::Int(1), OwnedDatum::Str("ann".into())]);
        let fields = FieldKeys(vec![0, 2]);
        assert_eq!(fields.key_hash(b.row(0)), by_columns.key_hash(b.row(0)));
        assert!(fields.key_matches(b.row(0), &by_columns.key_of(b.row(1))));
    }
}
