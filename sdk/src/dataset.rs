//! [`Dataset`]: records in one dataset, reached through the WIT `datasets`
//! interface under a lock the run holds.
//!
//! Reads need a shared or exclusive lock; write and delete need exclusive.
//! Writes are staged by the host and become visible to others only when the
//! run succeeds.
//!
//! Typed records ([`Dataset::get`], [`Dataset::put`]) are JSON via
//! `serde_json`: self-describing, tolerant of added fields, and readable by an
//! operator who `cat`s a file under the data root. Raw bytes go through
//! [`Dataset::read`] and [`Dataset::write`].

use std::iter::FusedIterator;
use std::vec;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::host as datasets;

/// Keys fetched per `list` call by [`Dataset::keys`].
pub const PAGE_SIZE: u32 = 500;

/// A handle to one dataset, by name. Obtain it with
/// [`Context::dataset`](crate::Context::dataset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    name: String,
}

impl Dataset {
    pub(crate) fn new(name: &str) -> Self {
        Self { name: name.into() }
    }

    /// The dataset's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bytes stored under `key`; [`Error::NotFound`] if there are none.
    pub fn read(&self, key: &str) -> Result<Vec<u8>, Error> {
        datasets::read(&self.name, key)
    }

    /// Store `value` under `key`, replacing any previous value.
    pub fn write(&self, key: &str, value: &[u8]) -> Result<(), Error> {
        datasets::write(&self.name, key, value)
    }

    /// Remove `key`; [`Error::NotFound`] if it does not exist.
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        datasets::delete(&self.name, key)
    }

    /// The JSON record under `key`, decoded; a record that does not decode
    /// as `T` is [`Error::Invalid`].
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, Error> {
        let bytes = self.read(key)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("{}/{key}: {e}", self.name)))
    }

    /// Like [`get`](Self::get), with a missing record as `None` instead of
    /// [`Error::NotFound`]:
    ///
    /// ```no_run
    /// # use runway_sdk::{Context, Error};
    /// # fn f(ctx: &Context) -> Result<(), Error> {
    /// let hits: u64 = ctx.dataset("counters").get_opt("hits")?.unwrap_or(0);
    /// # Ok(()) }
    /// ```
    pub fn get_opt<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.get(key) {
            Err(Error::NotFound(_)) => Ok(None),
            other => other.map(Some),
        }
    }

    /// Store `value` under `key` as a JSON record.
    pub fn put<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), Error> {
        self.write(key, &serde_json::to_vec(value)?)
    }

    /// How many keys start with `prefix` (all of them for `""`), the run's
    /// own staged writes and deletes counted in: one host call, whatever
    /// the number; the same lock as [`keys`](Self::keys) needs.
    ///
    /// ```no_run
    /// # use runway_sdk::{Context, Error};
    /// # fn f(ctx: &Context) -> Result<(), Error> {
    /// let apps = ctx.dataset("fafsa_2024_03_16");
    /// let pending = apps.count("pending/")?;
    /// # Ok(()) }
    /// ```
    pub fn count(&self, prefix: &str) -> Result<u64, Error> {
        datasets::count(&self.name, prefix)
    }

    /// Every key starting with `prefix`, in ascending byte order, fetched
    /// lazily [`PAGE_SIZE`] at a time by paging through `list` with its
    /// cursor. An error ends the iteration after it is yielded.
    pub fn keys(&self, prefix: &str) -> Keys {
        Keys {
            dataset: self.name.clone(),
            prefix: prefix.into(),
            page: Vec::new().into_iter(),
            cursor: None,
            done: false,
        }
    }
}

/// Iterator over the keys of a dataset with a given prefix; see
/// [`Dataset::keys`].
#[derive(Debug)]
pub struct Keys {
    dataset: String,
    prefix: String,
    page: vec::IntoIter<String>,
    cursor: Option<String>,
    done: bool,
}

impl Iterator for Keys {
    type Item = Result<String, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(key) = self.page.next() {
                return Some(Ok(key));
            }
            if self.done {
                return None;
            }
            match datasets::list(
                &self.dataset,
                &self.prefix,
                self.cursor.as_deref(),
                PAGE_SIZE,
            ) {
                Ok(page) => {
                    // An empty page ends the listing even if it carries a
                    // cursor, so a misbehaving host cannot make this spin.
                    self.done = page.next_cursor.is_none() || page.keys.is_empty();
                    self.cursor = page.next_cursor;
                    self.page = page.keys.into_iter();
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl FusedIterator for Keys {}
