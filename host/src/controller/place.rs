//! Where a record sits: its sequence number in the shard (the host's own
//! trail) that wrote it. On one host there is one shard, and a record's
//! number alone names it. Hosts sharing a database each number their
//! shard from 0, so there a place names its shard too: a trigger's
//! firing for one host's COMMITTED #57 is never taken for another's.
//!
//! A place is written into keys (`commit:57`, or `commit:ORIGIN:57` on a
//! shared database) and into the causes a trigger's runways are given.

use std::fmt;

use serde_json::Value;

/// A record's place: its shard, when there are several, and its number.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Place {
    /// The origin of the shard, on a shared database.
    pub shard: Option<String>,
    pub seq: u64,
}

impl Place {
    /// Record `seq` of `shard`.
    pub fn new(shard: Option<&str>, seq: u64) -> Place {
        Place {
            shard: shard.map(str::to_string),
            seq,
        }
    }

    /// The place written after `kind:` in a key (see [`fmt::Display`]).
    pub fn parse(text: &str) -> Option<Place> {
        match text.rsplit_once(':') {
            Some((shard, seq)) => Some(Place::new(Some(shard), seq.parse().ok()?)),
            None => Some(Place::new(None, text.parse().ok()?)),
        }
    }

    /// The place a cause names: its `seq`, and its `shard` if it has one.
    pub fn of_cause(cause: &Value) -> Option<Place> {
        let seq = cause["seq"].as_u64()?;
        Some(Place::new(cause["shard"].as_str(), seq))
    }

    /// Puts the place into `cause`: `seq`, and `shard` when there is one.
    pub fn write_into(&self, cause: &mut Value) {
        cause["seq"] = self.seq.into();
        if let Some(shard) = &self.shard {
            cause["shard"] = shard.as_str().into();
        }
    }
}

/// `SEQ`, or `ORIGIN:SEQ` on a shared database.
impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.shard {
            Some(shard) => write!(f, "{shard}:{}", self.seq),
            None => write!(f, "{}", self.seq),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_place_reads_back_as_written_in_a_key_and_a_cause() {
        for place in [Place::new(None, 57), Place::new(Some("host-b"), 57)] {
            assert_eq!(Place::parse(&place.to_string()), Some(place.clone()));
            let mut cause = json!({ "id": "t" });
            place.write_into(&mut cause);
            assert_eq!(Place::of_cause(&cause), Some(place));
        }
        assert_ne!(
            Place::new(None, 57).to_string(),
            Place::new(Some("b"), 57).to_string()
        );
        assert_eq!(Place::parse("x"), None);
        assert_eq!(Place::parse("b:x"), None);
    }
}
