//! Strict decoding of a record in one pass: reads postcard's encoding of
//! [`Record`] field by field and refuses, as it goes, anything that is not
//! the one canonical encoding: an overlong varint, a varint past its type,
//! an option tag or enum index out of range, a string that is not UTF-8, a
//! length past the end, bytes left over.
//!
//! postcard itself accepts overlong varints and ignores trailing bytes, so
//! checking canonical form with it took a decode and a re-encode; this
//! decoder accepts exactly the bytes `postcard::to_stdvec` produces (proven
//! against postcard over generated records and their mutations in
//! `record.rs`'s tests). Encoding stays postcard's.

use crate::State;
use crate::record::{
    Call, DecodeError, Entry, Event, FiledManifest, Hash, LockGrant, LockMode, LockRequest,
    Outcome, Record, RetryPolicy,
};

impl Record {
    /// Decodes exactly one record from `bytes`, rejecting anything that is
    /// not its canonical encoding.
    pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        let mut input = Input { bytes, at: 0 };
        let record = input.record()?;
        match bytes.len() - input.at {
            0 => Ok(record),
            rest => Err(DecodeError::TrailingBytes(rest)),
        }
    }
}

/// Most bytes of a `u32` varint, and of a `u64` (or length) varint.
const U32_VARINT: usize = 5;
const U64_VARINT: usize = 10;

struct Input<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn malformed(why: &'static str) -> DecodeError {
    DecodeError::Malformed(why)
}

impl<'a> Input<'a> {
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

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    /// A LEB128 varint of at most `max` bytes whose last byte fits the
    /// type (`last_max`), without a redundant zero last byte.
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

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.varint(U64_VARINT, 0x01)
    }

    /// postcard's i64: a zigzag varint.
    fn i64(&mut self) -> Result<i64, DecodeError> {
        let z = self.u64()?;
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        // The fifth byte holds the top 4 bits.
        Ok(self.varint(U32_VARINT, 0x0f)? as u32)
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let len = self.u64()?;
        // Every element takes at least a byte: a longer list cannot fit.
        usize::try_from(len)
            .ok()
            .filter(|&len| len <= self.bytes.len() - self.at)
            .ok_or(malformed("length past the end"))
    }

    /// An enum's variant index, below `count`.
    fn variant(&mut self, count: u32) -> Result<u32, DecodeError> {
        let index = self.u32()?;
        if index >= count {
            return Err(malformed("unknown enum variant"));
        }
        Ok(index)
    }

    fn hash(&mut self) -> Result<Hash, DecodeError> {
        let mut hash = [0; 32];
        hash.copy_from_slice(self.take(32)?);
        Ok(hash)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.len()?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| malformed("string is not UTF-8"))
    }

    /// postcard's bool: one byte, 0 or 1.
    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(malformed("bool is neither 0 nor 1")),
        }
    }

    fn option<T>(
        &mut self,
        value: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Option<T>, DecodeError> {
        match self.byte()? {
            0 => Ok(None),
            1 => value(self).map(Some),
            _ => Err(malformed("option tag is neither 0 nor 1")),
        }
    }

    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let len = self.len()?;
        (0..len).map(|_| item(self)).collect()
    }

    fn record(&mut self) -> Result<Record, DecodeError> {
        Ok(Record {
            seq: self.u64()?,
            time_ns: self.u64()?,
            prev: self.hash()?,
            prev_dataset: self.option(Self::hash)?,
            entry: Entry {
                runway: self.string()?,
                agent: self.string()?,
                plugin: self.option(Self::hash)?,
                dataset: self.option(Self::string)?,
                event: self.event()?,
            },
        })
    }

    fn mode(&mut self) -> Result<LockMode, DecodeError> {
        Ok(match self.variant(2)? {
            0 => LockMode::Shared,
            _ => LockMode::Exclusive,
        })
    }

    /// Variants in declaration order: postcard encodes the index.
    fn event(&mut self) -> Result<Event, DecodeError> {
        Ok(match self.variant(19)? {
            0 => Event::Filed {
                action: self.string()?,
                after: self.list(Self::string)?,
                locks: self.list(Self::request)?,
            },
            1 => Event::Rejected {
                reason: self.string()?,
            },
            2 => Event::Cleared {
                locks: self.list(Self::grant)?,
            },
            3 => Event::LockGranted {
                mode: self.mode()?,
                token: self.u64()?,
            },
            4 => Event::Started {
                attempt: self.u32()?,
            },
            5 => Event::Call {
                call: self.call()?,
                key: self.option(Self::string)?,
                token: self.option(Self::u64)?,
                args: self.hash()?,
                result: self.hash()?,
                outcome: self.outcome()?,
            },
            6 => Event::Committed {
                token: self.u64()?,
                writes: self.u32()?,
                deletes: self.u32()?,
            },
            7 => Event::LockReleased {
                mode: self.mode()?,
                token: self.u64()?,
            },
            8 => Event::Succeeded {
                output: self.hash()?,
            },
            9 => Event::Failed {
                reason: self.string()?,
            },
            10 => Event::PluginLoaded,
            11 => Event::PluginUnloaded,
            12 => Event::Committing {
                locks: self.list(Self::grant)?,
                changes: self.hash()?,
            },
            13 => Event::Recovered {
                committing: self.u64()?,
                landed: self.bool()?,
            },
            14 => Event::Moved {
                to: State::ALL[self.variant(State::ALL.len() as u32)? as usize],
                reason: self.string()?,
                by: self.option(Self::string)?,
            },
            15 => Event::Paused { by: self.string()? },
            16 => Event::Resumed { by: self.string()? },
            18 => Event::PlanFiled {
                by: self.string()?,
                source: self.string()?,
                digest: self.hash()?,
                runways: self.list(Self::string)?,
            },
            _ => Event::Filing(FiledManifest {
                action: self.string()?,
                after: self.list(Self::string)?,
                locks: self.list(Self::request)?,
                priority: self.i64()?,
                window_ms: self.option(Self::u64)?,
                earliest_start_ns: self.option(Self::u64)?,
                expires_ns: self.option(Self::u64)?,
                approval: self.option(Self::string)?,
                retry: self.option(|input| {
                    Ok(RetryPolicy {
                        attempts: input.u32()?,
                        exponential: input.bool()?,
                        initial_ms: input.u64()?,
                        max_ms: input.u64()?,
                        jitter: input.bool()?,
                    })
                })?,
                input_digest: self.hash()?,
                input: {
                    let len = self.len()?;
                    self.take(len)?.to_vec()
                },
            }),
        })
    }

    fn request(&mut self) -> Result<LockRequest, DecodeError> {
        Ok(LockRequest {
            dataset: self.string()?,
            mode: self.mode()?,
        })
    }

    fn grant(&mut self) -> Result<LockGrant, DecodeError> {
        Ok(LockGrant {
            dataset: self.string()?,
            mode: self.mode()?,
            token: self.u64()?,
        })
    }

    fn call(&mut self) -> Result<Call, DecodeError> {
        Ok(Call::ALL[self.variant(Call::ALL.len() as u32)? as usize])
    }

    fn outcome(&mut self) -> Result<Outcome, DecodeError> {
        let index = self.variant(6)?;
        if index == 0 {
            return Ok(Outcome::Ok);
        }
        let reason = self.string()?;
        Ok(match index {
            1 => Outcome::Denied(reason),
            2 => Outcome::LockLost(reason),
            3 => Outcome::NotFound(reason),
            4 => Outcome::Invalid(reason),
            _ => Outcome::Limit(reason),
        })
    }
}
