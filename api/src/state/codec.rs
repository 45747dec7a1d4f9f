//! Byte encodings of keyed state: a minimal MessagePack writer and reader for the snapshot framing, and
//! the canonical byte form of a key.
//!
//! Snapshots are MessagePack throughout, but their framing (counts, integers, byte strings) is written
//! and read here by hand rather than through serde: it is a few lines per marker, several times faster per
//! value than a serde round trip, and lets a reader step over a key group's section without parsing it.
//! State values themselves go through rmp-serde ([`encode_value`], [`decode_value`]).
//!
//! # Canonical keys
//! A key is written as its values one after another, each a tag byte and a payload:
//!
//! | value | bytes |
//! |---|---|
//! | NULL | `00` |
//! | bool | `01`, then `00` or `01` |
//! | int or timestamp | `02`, then the value big-endian with the sign bit flipped (8 bytes) |
//! | float | `03`, then the IEEE bits big-endian, -0.0 written as 0.0 (8 bytes) |
//! | text | `04`, the byte length as u32 big-endian, the UTF-8 bytes |
//!
//! Keys that are equal for keyed state (an int equals a timestamp of the same value, -0.0 equals 0.0; see
//! [`key_datum_eq`](crate::key::key_datum_eq)) get the same bytes, so the bytes can be looked up in a
//! store. What the bytes leave out travels beside them as a **mask**: bit `i` set means value `i` is a
//! timestamp (for an int tag) or -0.0 (for a float tag), so decoding gives back exactly the values that
//! were encoded (for the first 64 values of a key; later ones come back as int and 0.0).
use super::Namespace;
use crate::error::{EddyError, Result};
use crate::key::KeyHasher;
use crate::value::{Datum, OwnedDatum};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The error for bytes that are not what the reader expected.
#[cold]
pub(crate) fn corrupt(what: &str) -> EddyError {
    EddyError::user(format!("cannot decode keyed state from the snapshot: {what}"))
}

/// Appends a non-negative integer in its shortest MessagePack form.
#[inline]
pub(crate) fn put_uint(out: &mut Vec<u8>, v: u64) {
    if v < 0x80 {
        out.push(v as u8);
    } else if v <= u64::from(u8::MAX) {
        out.extend_from_slice(&[0xcc, v as u8]);
    } else if v <= u64::from(u16::MAX) {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if v <= u64::from(u32::MAX) {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends a signed integer in its shortest MessagePack form.
#[inline]
pub(crate) fn put_int(out: &mut Vec<u8>, v: i64) {
    if v >= 0 {
        put_uint(out, v as u64);
    } else if v >= -32 {
        out.push(v as u8);
    } else if v >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, v as u8]);
    } else if v >= i64::from(i16::MIN) {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if v >= i64::from(i32::MIN) {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends the header of a byte string of `len` bytes.
#[inline]
pub(crate) fn put_bin_header(out: &mut Vec<u8>, len: usize) {
    if len <= usize::from(u8::MAX) {
        out.extend_from_slice(&[0xc4, len as u8]);
    } else if len <= usize::from(u16::MAX) {
        out.push(0xc5);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xc6);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Appends a byte string written by `f` straight into `out` (no scratch buffer): a one-byte length is
/// reserved and the bytes moved in the rare case that a longer one is needed.
#[inline]
pub(crate) fn put_bin_with(out: &mut Vec<u8>, f: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<()> {
    let at = out.len();
    out.extend_from_slice(&[0xc4, 0]);
    f(out)?;
    let len = out.len() - at - 2;
    if len <= usize::from(u8::MAX) {
        out[at + 1] = len as u8;
    } else {
        let mut header = Vec::with_capacity(5);
        put_bin_header(&mut header, len);
        out.splice(at..at + 2, header);
    }
    Ok(())
}

/// Appends a byte string.
#[inline]
pub(crate) fn put_bin(out: &mut Vec<u8>, bytes: &[u8]) {
    put_bin_header(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends a text string.
pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= usize::from(u8::MAX) {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= usize::from(u16::MAX) {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s.as_bytes());
}

/// Appends an array header.
pub(crate) fn put_array_len(out: &mut Vec<u8>, len: usize) {
    if len < 16 {
        out.push(0x90 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(0xdc);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdd);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

/// Appends nil.
pub(crate) fn put_nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

/// Appends a boolean.
pub(crate) fn put_bool(out: &mut Vec<u8>, b: bool) {
    out.push(if b { 0xc3 } else { 0xc2 });
}

/// Something whose 32-bit length is written once its content is: a byte string or array header with a
/// placeholder (the 32-bit forms are valid MessagePack for any length).
pub(crate) struct Patch {
    at: usize,
    array: bool,
}

impl Patch {
    /// Starts a byte string whose length is patched by [`Patch::bin_end`].
    pub(crate) fn bin(out: &mut Vec<u8>) -> Patch {
        out.extend_from_slice(&[0xc6, 0, 0, 0, 0]);
        Patch { at: out.len(), array: false }
    }

    /// Starts an array whose length is given to [`Patch::array_end`].
    pub(crate) fn array(out: &mut Vec<u8>) -> Patch {
        out.extend_from_slice(&[0xdd, 0, 0, 0, 0]);
        Patch { at: out.len(), array: true }
    }

    /// Ends a byte string: its length is everything written since it started.
    pub(crate) fn bin_end(self, out: &mut [u8]) -> Result<()> {
        debug_assert!(!self.array);
        let len = u32::try_from(out.len() - self.at).map_err(|_| EddyError::internal("snapshot section over 4 GiB"))?;
        out[self.at - 4..self.at].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Ends an array of `len` elements.
    pub(crate) fn array_end(self, out: &mut [u8], len: usize) -> Result<()> {
        debug_assert!(self.array);
        let len = u32::try_from(len).map_err(|_| EddyError::internal("snapshot array over 4G elements"))?;
        out[self.at - 4..self.at].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}

/// Reads MessagePack values one after another from a byte slice; every error is a [`corrupt`] one.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from the start of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Whether everything was read.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// What is left to read.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| corrupt("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or_else(|| corrupt("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn be<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// An integer of any MessagePack width, as i128 (so that u64 and i64 both fit).
    #[inline]
    fn integer(&mut self) -> Result<i128> {
        let m = self.byte()?;
        Ok(match m {
            0x00..=0x7f => i128::from(m),
            0xe0..=0xff => i128::from(m as i8),
            0xcc => i128::from(self.byte()?),
            0xcd => i128::from(u16::from_be_bytes(self.be()?)),
            0xce => i128::from(u32::from_be_bytes(self.be()?)),
            0xcf => i128::from(u64::from_be_bytes(self.be()?)),
            0xd0 => i128::from(self.byte()? as i8),
            0xd1 => i128::from(i16::from_be_bytes(self.be()?)),
            0xd2 => i128::from(i32::from_be_bytes(self.be()?)),
            0xd3 => i128::from(i64::from_be_bytes(self.be()?)),
            _ => return Err(corrupt(&format!("expected an integer, found marker {m:#04x}"))),
        })
    }

    /// A non-negative integer.
    #[inline]
    pub(crate) fn uint(&mut self) -> Result<u64> {
        u64::try_from(self.integer()?).map_err(|_| corrupt("expected a non-negative integer"))
    }

    /// A non-negative integer that fits in u32 (counts, indexes).
    #[inline]
    pub(crate) fn u32(&mut self) -> Result<u32> {
        u32::try_from(self.integer()?).map_err(|_| corrupt("expected a count"))
    }

    /// A signed 64-bit integer.
    #[inline]
    pub(crate) fn int(&mut self) -> Result<i64> {
        i64::try_from(self.integer()?).map_err(|_| corrupt("integer out of range"))
    }

    /// A byte string, borrowed.
    #[inline]
    pub(crate) fn bin(&mut self) -> Result<&'a [u8]> {
        let len = match self.byte()? {
            0xc4 => usize::from(self.byte()?),
            0xc5 => usize::from(u16::from_be_bytes(self.be()?)),
            0xc6 => u32::from_be_bytes(self.be()?) as usize,
            m => return Err(corrupt(&format!("expected bytes, found marker {m:#04x}"))),
        };
        self.take(len)
    }

    /// A text string, borrowed.
    pub(crate) fn str(&mut self) -> Result<&'a str> {
        let m = self.byte()?;
        let len = match m {
            0xa0..=0xbf => usize::from(m & 0x1f),
            0xd9 => usize::from(self.byte()?),
            0xda => usize::from(u16::from_be_bytes(self.be()?)),
            0xdb => u32::from_be_bytes(self.be()?) as usize,
            _ => return Err(corrupt(&format!("expected text, found marker {m:#04x}"))),
        };
        std::str::from_utf8(self.take(len)?).map_err(|_| corrupt("text is not UTF-8"))
    }

    /// An array header: the number of elements.
    pub(crate) fn array_len(&mut self) -> Result<usize> {
        let m = self.byte()?;
        Ok(match m {
            0x90..=0x9f => usize::from(m & 0x0f),
            0xdc => usize::from(u16::from_be_bytes(self.be()?)),
            0xdd => u32::from_be_bytes(self.be()?) as usize,
            _ => return Err(corrupt(&format!("expected an array, found marker {m:#04x}"))),
        })
    }

    /// True (and consumed) when the next value is nil.
    pub(crate) fn nil(&mut self) -> bool {
        if self.buf.get(self.pos) == Some(&0xc0) {
            self.pos += 1;
            return true;
        }
        false
    }

    /// A boolean.
    pub(crate) fn bool(&mut self) -> Result<bool> {
        match self.byte()? {
            0xc2 => Ok(false),
            0xc3 => Ok(true),
            m => Err(corrupt(&format!("expected a boolean, found marker {m:#04x}"))),
        }
    }
}

/// Appends a namespace: nil for [`Namespace::NONE`] (most keyed state), else its start and end.
#[inline]
pub(crate) fn put_namespace(out: &mut Vec<u8>, ns: Namespace) {
    if ns == Namespace::NONE {
        put_nil(out);
    } else {
        put_int(out, ns.start);
        put_int(out, ns.end);
    }
}

impl Reader<'_> {
    /// A namespace written by [`put_namespace`].
    #[inline]
    pub(crate) fn namespace(&mut self) -> Result<Namespace> {
        if self.nil() {
            return Ok(Namespace::NONE);
        }
        Ok(Namespace { start: self.int()?, end: self.int()? })
    }
}

/// Appends the MessagePack encoding of a state value (rmp-serde, compact).
#[inline]
pub(crate) fn encode_value<V: Serialize>(out: &mut Vec<u8>, v: &V) -> Result<()> {
    rmp_serde::encode::write(out, v).map_err(|e| EddyError::internal(format!("cannot encode a keyed state value: {e}")))
}

/// Decodes a state value written by [`encode_value`].
#[inline]
pub(crate) fn decode_value<V: DeserializeOwned>(bytes: &[u8]) -> Result<V> {
    rmp_serde::from_slice(bytes).map_err(|e| corrupt(&format!("a state value does not decode as its type: {e}")))
}

const NULL: u8 = 0;
const BOOL: u8 = 1;
const INT: u8 = 2;
const FLOAT: u8 = 3;
const STR: u8 = 4;
const SIGN: u64 = 1 << 63;

/// Appends the canonical form of `key` (see the module docs) and returns its mask.
#[inline]
pub(crate) fn put_key(out: &mut Vec<u8>, key: &[OwnedDatum]) -> u64 {
    let mut mask = 0u64;
    for (i, d) in key.iter().enumerate() {
        let bit = if i < 64 { 1u64 << i } else { 0 };
        match d {
            OwnedDatum::Null => out.push(NULL),
            OwnedDatum::Bool(b) => out.extend_from_slice(&[BOOL, u8::from(*b)]),
            OwnedDatum::Int(v) | OwnedDatum::Timestamp(v) => {
                if matches!(d, OwnedDatum::Timestamp(_)) {
                    mask |= bit;
                }
                out.push(INT);
                out.extend_from_slice(&((*v as u64) ^ SIGN).to_be_bytes());
            }
            OwnedDatum::Float(f) => {
                let bits = if *f == 0.0 {
                    if f.is_sign_negative() {
                        mask |= bit;
                    }
                    0
                } else {
                    f.to_bits()
                };
                out.push(FLOAT);
                out.extend_from_slice(&bits.to_be_bytes());
            }
            OwnedDatum::Str(s) => {
                out.push(STR);
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    mask
}

/// The length of the canonical form of `key`.
#[inline]
pub(crate) fn key_len(key: &[OwnedDatum]) -> usize {
    key.iter()
        .map(|d| match d {
            OwnedDatum::Null => 1,
            OwnedDatum::Bool(_) => 2,
            OwnedDatum::Int(_) | OwnedDatum::Timestamp(_) | OwnedDatum::Float(_) => 9,
            OwnedDatum::Str(s) => 5 + s.len(),
        })
        .sum()
}

/// Walks the values of a canonical key.
pub(crate) fn walk_key<'a>(mut bytes: &'a [u8], mut f: impl FnMut(usize, Datum<'a>)) -> Result<()> {
    let mut i = 0;
    let bad = || corrupt("malformed key");
    while let Some((&tag, rest)) = bytes.split_first() {
        let (d, rest) = match tag {
            NULL => (Datum::Null, rest),
            BOOL => {
                let (&b, rest) = rest.split_first().ok_or_else(bad)?;
                (Datum::Bool(b != 0), rest)
            }
            INT | FLOAT => {
                let (v, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
                let v = u64::from_be_bytes(*v);
                let d = if tag == INT { Datum::Int((v ^ SIGN) as i64) } else { Datum::Float(f64::from_bits(v)) };
                (d, rest)
            }
            STR => {
                let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
                let len = u32::from_be_bytes(*len) as usize;
                let s = rest.get(..len).ok_or_else(bad)?;
                (Datum::Str(std::str::from_utf8(s).map_err(|_| bad())?), &rest[len..])
            }
            _ => return Err(bad()),
        };
        f(i, d);
        bytes = rest;
        i += 1;
    }
    Ok(())
}

/// Value `i` of a canonical key as it was encoded, given the key's mask.
#[inline]
pub(crate) fn owned_datum(i: usize, d: Datum<'_>, mask: u64) -> OwnedDatum {
    let flagged = i < 64 && mask & (1 << i) != 0;
    match d {
        Datum::Int(v) if flagged => OwnedDatum::Timestamp(v),
        Datum::Float(_) if flagged => OwnedDatum::Float(-0.0),
        d => d.to_owned(),
    }
}

/// The value of a canonical key of one int, timestamp or text (the common keys), decoded without a
/// walk; `None` for other keys.
#[inline]
pub(crate) fn single_value(bytes: &[u8], mask: u64) -> Option<OwnedDatum> {
    let (&tag, rest) = bytes.split_first()?;
    match tag {
        INT => {
            let v = (u64::from_be_bytes(rest.try_into().ok()?) ^ SIGN) as i64;
            Some(if mask & 1 != 0 { OwnedDatum::Timestamp(v) } else { OwnedDatum::Int(v) })
        }
        STR => {
            let (len, s) = rest.split_first_chunk::<4>()?;
            let s = std::str::from_utf8(s).ok().filter(|s| s.len() == u32::from_be_bytes(*len) as usize)?;
            Some(OwnedDatum::Str(s.into()))
        }
        _ => None,
    }
}

/// The key values of a canonical key with its mask.
pub(crate) fn decode_key(bytes: &[u8], mask: u64) -> Result<Box<[OwnedDatum]>> {
    let mut out = Vec::with_capacity(1);
    walk_key(bytes, |i, d| out.push(owned_datum(i, d, mask)))?;
    Ok(out.into_boxed_slice())
}

/// The key hash ([`hash_key`](crate::key::hash_key)) of a canonical key, without decoding it.
pub(crate) fn hash_canonical(bytes: &[u8]) -> Result<u64> {
    let mut h = KeyHasher::new();
    walk_key(bytes, |_, d| h.add(d))?;
    Ok(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::hash_key;

    #[test]
    fn integers_and_frames_round_trip_and_match_rmp() {
        let ints = [0i64, 1, 127, 128, 255, 256, 65_535, 65_536, -1, -32, -33, -128, -129, -32_769, i64::MIN, i64::MAX];
        let mut out = Vec::new();
        for v in ints {
            let mut mine = Vec::new();
            put_int(&mut mine, v);
            assert_eq!(mine, rmp_serde::to_vec(&v).unwrap_or_default(), "{v}");
            out.extend_from_slice(&mine);
        }
        put_uint(&mut out, u64::MAX);
        put_bin(&mut out, &[1, 2, 3]);
        put_bin(&mut out, &vec![7; 300]);
        put_str(&mut out, "name");
        put_str(&mut out, &"x".repeat(40));
        put_nil(&mut out);
        put_bool(&mut out, true);
        put_namespace(&mut out, Namespace::NONE);
        put_namespace(&mut out, Namespace::window(-1, 5));
        put_array_len(&mut out, 20);
        put_bin_with(&mut out, |o| {
            o.extend_from_slice(&[5; 3]);
            Ok(())
        })
        .unwrap();
        put_bin_with(&mut out, |o| {
            o.extend_from_slice(&[6; 70_000]);
            Ok(())
        })
        .unwrap();
        let p = Patch::bin(&mut out);
        out.extend_from_slice(b"abc");
        p.bin_end(&mut out).unwrap();
        let mut r = Reader::new(&out);
        for v in ints {
            assert_eq!(r.int().unwrap(), v);
        }
        assert_eq!(r.uint().unwrap(), u64::MAX);
        assert_eq!(r.bin().unwrap(), [1, 2, 3]);
        assert_eq!(r.bin().unwrap().len(), 300);
        assert_eq!(r.str().unwrap(), "name");
        assert_eq!(r.str().unwrap().len(), 40);
        assert!(r.nil());
        assert!(!r.nil());
        assert!(r.bool().unwrap());
        assert_eq!(r.namespace().unwrap(), Namespace::NONE);
        assert_eq!(r.namespace().unwrap(), Namespace::window(-1, 5));
        assert_eq!(r.array_len().unwrap(), 20);
        assert_eq!(r.bin().unwrap(), [5; 3]);
        assert_eq!(r.bin().unwrap(), [6; 70_000]);
        assert_eq!(r.bin().unwrap(), b"abc");
        assert!(r.is_empty());
        assert!(r.int().is_err(), "truncated");
        assert!(Reader::new(&[0xc4, 5, 1]).bin().unwrap_err().to_string().contains("truncated"));
    }

    #[test]
    fn canonical_keys_are_equal_for_equal_keys_and_decode_exactly() {
        let keys: [&[OwnedDatum]; 4] = [
            &[OwnedDatum::Int(-5), OwnedDatum::Str("ab\0c".into())],
            &[OwnedDatum::Timestamp(7), OwnedDatum::Float(-0.0), OwnedDatum::Null, OwnedDatum::Bool(true)],
            &[OwnedDatum::Float(f64::NAN), OwnedDatum::Float(1.5)],
            &[],
        ];
        for key in keys {
            let mut b = Vec::new();
            let mask = put_key(&mut b, key);
            assert_eq!(b.len(), key_len(key));
            let back = decode_key(&b, mask).unwrap();
            if let Some(one) = single_value(&b, mask) {
                assert_eq!(format!("{:?}", [one]), format!("{key:?}"));
            }
            assert_eq!(format!("{back:?}"), format!("{key:?}"), "exact round trip, -0.0 and timestamps included");
            assert_eq!(hash_canonical(&b).unwrap(), hash_key(key));
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        put_key(&mut a, &[OwnedDatum::Int(7), OwnedDatum::Float(0.0)]);
        put_key(&mut b, &[OwnedDatum::Timestamp(7), OwnedDatum::Float(-0.0)]);
        assert_eq!(a, b, "equal keys, equal bytes");
        assert!(decode_key(&[9], 0).is_err());
        assert!(decode_key(&[STR, 0, 0, 0, 9, b'a'], 0).is_err());
    }
}
