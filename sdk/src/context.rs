//! The run's [`Context`]: who and what this run is, its input, and handles to
//! the datasets it holds locks on.

use serde::de::DeserializeOwned;

use crate::{Dataset, Error, HeldLock, LockMode, RunInfo, host};

/// What the host told this run about itself, fetched once per run by
/// [`export_agent!`](crate::export_agent) and passed to
/// [`Agent::run`](crate::Agent::run).
#[derive(Debug, Clone)]
pub struct Context {
    info: RunInfo,
}

impl Context {
    /// Ask the host who this run is (one `context.info` call).
    pub(crate) fn from_host() -> Self {
        Self::from_info(host::info())
    }

    pub(crate) fn from_info(info: RunInfo) -> Self {
        Self { info }
    }

    /// The run's identity: runway id, agent name, action, raw input, attempt
    /// number (1 for the first try) and the locks granted, in manifest order.
    pub fn info(&self) -> &RunInfo {
        &self.info
    }

    /// The manifest's input, decoded from JSON.
    ///
    /// Input bytes are JSON. Empty (or all-whitespace) input is read as `{}`,
    /// so a struct whose fields are all `#[serde(default)]` (or `Option`)
    /// gets its defaults when the manifest gives no input. Malformed input
    /// is [`Error::Invalid`].
    pub fn input<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let raw = &self.info.input;
        let bytes: &[u8] = if raw.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            raw
        };
        serde_json::from_slice(bytes).map_err(|e| {
            // The field, not serde's place in a one-line document: the words
            // the Python and JavaScript agents say too.
            let message = e.to_string();
            let cut = message.rfind(" at line ").unwrap_or(message.len());
            Error::Invalid(format!("input: {}", &message[..cut]))
        })
    }

    /// A handle to the dataset `name`. Creating it makes no host call; every
    /// call through it is checked against the locks this run holds.
    pub fn dataset(&self, name: &str) -> Dataset {
        Dataset::new(name)
    }

    /// The lock this run holds on `dataset`, if any:
    /// `ctx.lock("fafsa_2024_03_16").map(|l| l.token)`.
    pub fn lock(&self, dataset: &str) -> Option<&HeldLock> {
        self.info.locks.iter().find(|l| l.dataset == dataset)
    }

    /// The locks this run holds, in the manifest's order.
    pub fn locks(&self) -> &[HeldLock] {
        &self.info.locks
    }

    /// The first lock (in manifest order) this run holds in `mode`.
    pub fn first_lock(&self, mode: LockMode) -> Option<&HeldLock> {
        self.info.locks.iter().find(|l| l.mode == mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn ctx(input: &[u8]) -> Context {
        let lock = |dataset: &str, mode, token| HeldLock {
            dataset: dataset.into(),
            mode,
            token,
        };
        Context::from_info(RunInfo {
            runway: "rw-1".into(),
            agent: "test".into(),
            action: "go".into(),
            input: input.to_vec(),
            attempt: 1,
            locks: vec![
                lock("ref", LockMode::Shared, 3),
                lock("apps", LockMode::Exclusive, 4),
                lock("more", LockMode::Exclusive, 5),
            ],
        })
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Input {
        #[serde(default)]
        count: u32,
        dataset: Option<String>,
    }

    #[test]
    fn empty_input_reads_as_empty_object() {
        let want = Input {
            count: 0,
            dataset: None,
        };
        assert_eq!(ctx(b"").input::<Input>().unwrap(), want);
        assert_eq!(ctx(b" \n").input::<Input>().unwrap(), want);
    }

    #[test]
    fn input_is_json() {
        let got: Input = ctx(br#"{"count": 3, "dataset": "x"}"#).input().unwrap();
        assert_eq!(got.count, 3);
        assert_eq!(got.dataset.as_deref(), Some("x"));
        assert!(matches!(ctx(b"{").input::<Input>(), Err(Error::Invalid(_))));
    }

    #[test]
    fn a_missing_input_field_is_named() {
        let e = ctx(br#"{"count": 3}"#).input::<Strict>().unwrap_err();
        assert!(
            matches!(&e, Error::Invalid(m) if m.contains("missing field `dataset`")),
            "{e}"
        );
    }

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Strict {
        count: u32,
        dataset: String,
    }

    #[test]
    fn locks_are_found_by_dataset() {
        let c = ctx(b"");
        assert_eq!(c.lock("more").unwrap().token, 5);
        assert_eq!(c.lock("ref").unwrap().mode, LockMode::Shared);
        assert!(c.lock("elsewhere").is_none());
        let names: Vec<_> = c.locks().iter().map(|l| l.dataset.as_str()).collect();
        assert_eq!(names, ["ref", "apps", "more"]);
    }

    #[test]
    fn first_lock_follows_manifest_order() {
        let c = ctx(b"");
        assert_eq!(c.first_lock(LockMode::Exclusive).unwrap().dataset, "apps");
        assert_eq!(c.first_lock(LockMode::Shared).unwrap().token, 3);
    }
}
