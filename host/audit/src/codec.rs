//! The record schema's one declaration and everything derived from it:
//! strict decoding, the encoded-size bound and (in tests) generation.
//!
//! The record types are declared with [`wire_struct!`] and [`wire_enum!`]
//! (in `record.rs` and `state.rs`). Each declaration writes the Rust type
//! (serde derives as written beside it, so encoding stays postcard's) and
//! its [`Wire`] impl: a strict one-pass decoder, an upper bound of its
//! encoded bytes counted without encoding, and a generator for the property
//! tests. A variant or field added to a declaration is thereby decoded,
//! bounded and generated; the renderers match every variant without a
//! wildcard, so one left unrendered does not compile.
//!
//! postcard encodes a struct as its fields in order and an enum as a varint
//! variant index (declaration order) followed by the variant's fields. It
//! accepts overlong varints and ignores trailing bytes; this decoder
//! refuses, as it goes, anything that is not the one canonical encoding: an
//! overlong varint, a varint past its type, an option tag or enum index out
//! of range, a string that is not UTF-8, a length past the end, bytes left
//! over. It accepts exactly the bytes `postcard::to_stdvec` produces
//! (proven against postcard over generated records and their mutations in
//! `record.rs`'s tests).

/// Why bytes are not a canonical record.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes are not a record at all.
    #[error("undecodable record: {0}")]
    Malformed(&'static str),
    /// A record decoded but bytes were left after it.
    #[error("trailing bytes: {0} after the record")]
    TrailingBytes(usize),
    /// The bytes decode, but are not the canonical encoding (e.g. an overlong varint).
    #[error("non-canonical encoding")]
    NonCanonical,
}

/// Most bytes of a `u32` varint, and of a `u64` (or length) varint.
const U32_VARINT: usize = 5;
const U64_VARINT: usize = 10;

/// A type of the record schema, as postcard lays it out.
pub trait Wire: Sized {
    /// Reads one canonical value.
    fn decode(input: &mut Input<'_>) -> Result<Self, DecodeError>;

    /// At least the bytes of this value's encoding, counted without encoding.
    fn bound(&self) -> usize;

    /// A list of `len` values (a type may read them faster than one by one).
    #[inline]
    fn decode_list(input: &mut Input<'_>, len: usize) -> Result<Vec<Self>, DecodeError> {
        (0..len).map(|_| Self::decode(input)).collect()
    }

    /// A value for the property tests, every variant and edge reachable.
    #[cfg(test)]
    fn generate(g: &mut Gen) -> Self;
}

/// Decodes exactly one `T` from `bytes`: canonical, nothing left over.
pub fn decode_exact<T: Wire>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut input = Input { bytes, at: 0 };
    let value = T::decode(&mut input)?;
    match bytes.len() - input.at {
        0 => Ok(value),
        rest => Err(DecodeError::TrailingBytes(rest)),
    }
}

/// Bytes being decoded and how far.
pub struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

pub(crate) fn malformed(why: &'static str) -> DecodeError {
    DecodeError::Malformed(why)
}

impl<'a> Input<'a> {
    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or(malformed("ends inside a field"))?;
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    #[inline]
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .bytes
            .get(self.at)
            .ok_or(malformed("ends inside a field"))?;
        self.at += 1;
        Ok(b)
    }

    /// A LEB128 varint of at most `max` bytes whose last byte fits the
    /// type (`last_max`), without a redundant zero last byte.
    #[inline]
    fn varint(&mut self, max: usize, last_max: u8) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for i in 0..max {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                if i == max - 1 && b > last_max {
                    return Err(malformed("varint too large for its type"));
                }
                if i > 0 && b == 0 {
                    return Err(DecodeError::NonCanonical);
                }
                return Ok(value);
            }
        }
        Err(malformed("varint too long"))
    }

    #[inline]
    fn len(&mut self) -> Result<usize, DecodeError> {
        let len = u64::decode(self)?;
        // Every element takes at least a byte: a longer list cannot fit.
        usize::try_from(len)
            .ok()
            .filter(|&len| len <= self.bytes.len() - self.at)
            .ok_or(malformed("length past the end"))
    }

    /// An enum's variant index, below `count`.
    #[inline]
    pub fn variant(&mut self, count: usize) -> Result<usize, DecodeError> {
        let index = u32::decode(self)? as usize;
        if index >= count {
            return Err(malformed("unknown enum variant"));
        }
        Ok(index)
    }
}

impl Wire for u64 {
    #[inline]
    fn decode(input: &mut Input<'_>) -> Result<Self, DecodeError> {
        input.varint(U64_VARINT, 0x01)
    }
    #[inline]
    fn bound(&self) -> usize {
        U64_VARINT
    }
    #[cfg(test)]
    fn generate(g: &mut Gen) -> Self {
        g.u64()
    }
}

impl Wire for u32 {
    #[inline]
    fn decode(input: &mut Input<'_>) -> Result<Self, DecodeError> {
        // The fifth byte holds the top 4 bits.
        Ok(input.varint(U32_VARINT, 0x0f)? as u32)
    }
    #[inline]
    fn bound(&self) -> usize {
        U32_VARINT
    }
    #[cfg(test)]
    fn generate(g: &mut Gen) -> Self {
        g.u64() as u32
    }
}

/// postcard's i64: a zigzag varint.
impl Wire for i64 {
    #[inline]
    fn decode(input: &mut Input<'_>) -> Result<Self, DecodeError> {
        let z = u64::decode(input)?;
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }
    #[inline]
    fn bound(&self) -> usize {
        U64_VARINT
    }
    #[cfg(test)]
    fn generate(g: &mut Gen) -> Self {
        g.u64() as i64
    }
}

/// postcard's u8: the byte itself.
impl Wire for u8 {
    #[inline]
    fn decode(input: &mut Input<'_>) -> Result<Self, DecodeError> {
        input.byte()
    }
    #[inline]
    fn bound(&self) -> usize {
        1
    }
    #[inline]
    fn decode_list(input: &mut Input<'_>, len: usize) -> Result<Vec<Self>, DecodeError> {
        Ok(input.take(len)?.to_vec())
    }
    #[cfg(test)]
    fn generate(g: &mut Gen) -> Self {
        g.next() as u8
    }
}

/// postcard's bool: one byte, 0 or 1.
impl Wire for bool {
    #[inline]
    fn decode(input: &mut Input<'_>) -> Result<Self, DecodeError> {
        match input.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(malformed("bool is neither 0 nor 1")),
        }
    }
    #[inline]
    fn bound(&self) -> usize {
        1
    }
    #[cfg(test)]
    fn generate(g: &mut Gen) -> Self {
        g.below(2) == 1
    }
}

/// A digest: 32 bytes as they are.
impl Wire for [u8; 32] {
    #[inline]
    fn decode(input: &mut Input<'_>) -> Result<Self, DecodeError> {
        let mut hash = [0; 32];
        hash.copy_from_slice(input.take(32)?);
        Ok(hash)
    }
    #[inline]
    fn bound(&self) -> usize {
        32
    }
    #[cfg(test)]
    fn generate(g: &mut Gen) -> Self {
        let mut hash = [0; 32];
        hash.iter_mut().for_each(|b| *b = g.next() as u8);
        hash
    }
}

/// A length, then UTF-8.
impl Wire for String {
    #[inline]
    fn decode(input: &mut Input<'_>) -> Result<Self, DecodeError> {
        let len = input.len()?;
        let bytes = input.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| malformed("string is not UTF-8"))
    }
    #[inline]
    fn bound(&self) -> usize {
        U64_VARINT + self.len()
    }
    #[cfg(test)]
    fn generate(g: &mut Gen) -> Self {
        g.string()
    }
}

/// A length, then the items.
impl<T: Wire> Wire for Vec<T> {
    #[inline]
    fn decode(input: &mut Input<'_>) -> Result<Self, DecodeError> {
        let len = input.len()?;
        T::decode_list(input, len)
    }
    #[inline]
    fn bound(&self) -> usize {
        U64_VARINT + self.iter().map(Wire::bound).sum::<usize>()
    }
    #[cfg(test)]
    fn generate(g: &mut Gen) -> Self {
        (0..g.below(4)).map(|_| T::generate(g)).collect()
    }
}

/// A tag byte 0 or 1, then the value if 1.
impl<T: Wire> Wire for Option<T> {
    #[inline]
    fn decode(input: &mut Input<'_>) -> Result<Self, DecodeError> {
        match input.byte()? {
            0 => Ok(None),
            1 => T::decode(input).map(Some),
            _ => Err(malformed("option tag is neither 0 nor 1")),
        }
    }
    #[inline]
    fn bound(&self) -> usize {
        1 + self.as_ref().map_or(0, Wire::bound)
    }
    #[cfg(test)]
    fn generate(g: &mut Gen) -> Self {
        (g.below(2) == 1).then(|| T::generate(g))
    }
}

/// Declares a struct of the schema and derives its [`Wire`] impl: the
/// fields in order. Attributes (derives, docs) are kept as written.
macro_rules! wire_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field : $fty ),*
        }

        impl $crate::codec::Wire for $name {
            #[inline]
            fn decode(
                input: &mut $crate::codec::Input<'_>,
            ) -> Result<Self, $crate::codec::DecodeError> {
                Ok($name { $( $field: $crate::codec::Wire::decode(input)? ),* })
            }
            fn bound(&self) -> usize {
                0 $( + $crate::codec::Wire::bound(&self.$field) )*
            }
            #[cfg(test)]
            fn generate(g: &mut $crate::codec::Gen) -> Self {
                $name { $( $field: <$fty as $crate::codec::Wire>::generate(g) ),* }
            }
        }
    };
}

/// Declares an enum of the schema and derives its [`Wire`] impl: the
/// variant index (declaration order), then the variant's fields. A variant
/// is a unit, has named fields, or holds one value, declared with a name
/// for it (`Denied(reason: String)` declares `Denied(String)`). Also
/// derives `VARIANTS` (the variant names in order) and `variant_name`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident
                $( { $( $(#[$fmeta:meta])* $field:ident : $fty:ty ),* $(,)? } )?
                $( ( $one:ident : $oty:ty ) )?
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant
                $( { $( $(#[$fmeta])* $field : $fty ),* } )?
                $( ( $oty ) )?
            ),*
        }

        impl $name {
            /// Every variant's name, in declaration (and so encoding) order.
            pub const VARIANTS: &'static [&'static str] = &[$(stringify!($variant)),*];

            /// This value's variant name, as in [`Self::VARIANTS`].
            pub fn variant_name(&self) -> &'static str {
                match self {
                    $( $name::$variant { .. } => stringify!($variant), )*
                }
            }
        }

        impl $crate::codec::Wire for $name {
            #[allow(unused_assignments)]
            #[inline]
            fn decode(
                input: &mut $crate::codec::Input<'_>,
            ) -> Result<Self, $crate::codec::DecodeError> {
                let mut index = input.variant(Self::VARIANTS.len())?;
                $(
                    if index == 0 {
                        return Ok($name::$variant
                            $( { $( $field: $crate::codec::Wire::decode(input)? ),* } )?
                            $( ( <$oty as $crate::codec::Wire>::decode(input)? ) )?
                        );
                    }
                    index -= 1;
                )*
                Err($crate::codec::malformed("unknown enum variant"))
            }
            fn bound(&self) -> usize {
                // The variant index is a u32 varint.
                5 + match self {
                    $(
                        $name::$variant
                            $( { $( $field ),* } )?
                            $( ( $one ) )?
                        => 0
                            $( $( + $crate::codec::Wire::bound($field) )* )?
                            $( + $crate::codec::Wire::bound($one) )?,
                    )*
                }
            }
            #[cfg(test)]
            #[allow(unused_assignments)]
            fn generate(g: &mut $crate::codec::Gen) -> Self {
                let mut index = g.below(Self::VARIANTS.len() as u64);
                $(
                    if index == 0 {
                        return $name::$variant
                            $( { $( $field: <$fty as $crate::codec::Wire>::generate(g) ),* } )?
                            $( ( <$oty as $crate::codec::Wire>::generate(g) ) )?;
                    }
                    index -= 1;
                )*
                unreachable!("below the variant count")
            }
        }
    };
}

/// Declares an enum of unit variants with [`wire_enum!`], and derives
/// `ALL`: every variant, in declaration (and so encoding) order.
macro_rules! wire_units {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident ),* $(,)?
        }
    ) => {
        $crate::codec::wire_enum! {
            $(#[$meta])*
            $vis enum $name {
                $( $(#[$vmeta])* $variant ),*
            }
        }

        impl $name {
            /// Every variant, in declaration (and so encoding) order.
            pub const ALL: [$name; [$(stringify!($variant)),*].len()] = [$($name::$variant),*];
        }
    };
}

pub(crate) use {wire_enum, wire_struct, wire_units};

/// A small deterministic generator (xorshift64*), so the property tests
/// need no dependency and fail the same way every run.
#[cfg(test)]
pub struct Gen(pub u64);

#[cfg(test)]
impl Gen {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Values of every varint width, edges included.
    pub fn u64(&mut self) -> u64 {
        let bits = self.below(65) as u32;
        let edge = [0, 1, 127, 128, 16_383, 16_384, u64::MAX][self.below(7) as usize];
        match self.below(4) {
            0 => edge,
            _ => self.next().checked_shr(64 - bits).unwrap_or(0),
        }
    }
    /// Strings of every length-prefix width, in 1- to 4-byte characters.
    pub fn string(&mut self) -> String {
        let len = [0, 1, 5, 127, 128, 200][self.below(6) as usize];
        (0..len)
            .map(|_| ['a', 'Z', '/', 'é', '✓', '\u{1F600}'][self.below(6) as usize])
            .collect()
    }
    /// A value of any schema type.
    pub fn of<T: Wire>(&mut self) -> T {
        T::generate(self)
    }
}
