//! Outputs that flow: a manifest's input may take the output (JSON) of a
//! runway it runs after.
//!
//! A reference is a JSON object (a TOML table) whose keys are exactly
//! `from` and, optionally, `path`, both text: `{ from = "import" }` is the
//! whole output of the runway its plan calls `import`, `{ from = "score",
//! path = "risk.level" }` a field of it. References may sit anywhere in the
//! input tree; everything else is passed as written. A path is dotted: each
//! segment is a key of an object, or, when the value there is an array, a
//! number indexing it (`items.0.name`). Filing checks that every `from`
//! names a runway of the manifest's `after` ([`check`]); once those have
//! ended, the controller replaces each reference by the value it names
//! ([`resolve`]), by value. An output that is missing (the runway returned
//! nothing, or not JSON, or was skipped) or a path it does not have fails
//! the runway before it starts, naming both.
//!
//! Pure functions over JSON: the controller's side (when, with which
//! outputs, and the records) is `decide`'s.

use runway_audit::{Hash, PassedOutput};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::limits::{MAX_INPUT_BYTES, cut};

/// Why a manifest's references were refused, or could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FlowError {
    #[error("input takes the output of {from:?}, which is not in its `after`")]
    NotAfter { from: String },
    #[error("input: a reference's `from` and `path` are text (a runway's name, a dotted path)")]
    NotText,
    #[error("input: path {path:?} of {from}'s output has an empty segment")]
    EmptySegment { from: String, path: String },
    #[error("input: the output of {from} is missing: {why}")]
    Missing { from: String, why: String },
    #[error("input: the output of {from} has no {path:?} (no {segment:?} there)")]
    NoPath {
        from: String,
        path: String,
        segment: String,
    },
    #[error("input as resolved is {len} bytes (at most {max})")]
    TooLarge { len: usize, max: usize },
}

/// One reference in an input: the runway (as its plan names it) and the
/// path (empty: the whole output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub from: String,
    pub path: String,
}

/// An output a reference may take: the runway's id, its bytes and their
/// SHA-256; or why there is none.
pub type Output<'a> = Result<(&'a str, &'a [u8], Hash), String>;

/// An input as resolved and the outputs passed into it; `None` when it
/// took none (it is passed as filed).
pub type Resolved = Option<(Vec<u8>, Vec<PassedOutput>)>;

/// The reference `value` is, if it is one (`Err` when it has the shape of
/// one with a `from` or `path` that is not text).
fn reference(map: &Map<String, Value>) -> Option<Result<Reference, FlowError>> {
    let from = map.get("from")?;
    let path = map.get("path");
    if map.len() != 1 + usize::from(path.is_some()) {
        return None;
    }
    let path = match path {
        None => Some(String::new()),
        Some(Value::String(p)) => Some(p.clone()),
        Some(_) => None,
    };
    Some(match (from, path) {
        (Value::String(from), Some(path)) => Ok(Reference {
            from: from.clone(),
            path,
        }),
        _ => Err(FlowError::NotText),
    })
}

/// Every reference in `input`, in document order.
pub fn references(input: &Value) -> Result<Vec<Reference>, FlowError> {
    let mut found = Vec::new();
    let mut stack = vec![input];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => match reference(map) {
                Some(r) => found.push(r?),
                None => stack.extend(map.values().rev()),
            },
            Value::Array(items) => stack.extend(items.iter().rev()),
            _ => {}
        }
    }
    Ok(found)
}

/// Whether JSON `input` may hold a reference at all (a cheap look at its
/// bytes before parsing it).
pub fn may_refer(input: &[u8]) -> bool {
    input.windows(6).any(|w| w == b"\"from\"")
}

/// The references of a manifest's JSON `input`, checked at filing: each
/// `from` is one of `after` (as its plan names them), each path has no
/// empty segment. Gives whether it has any.
pub fn check(input: &[u8], after: &[String]) -> Result<bool, FlowError> {
    if !may_refer(input) {
        return Ok(false);
    }
    let Ok(value) = serde_json::from_slice::<Value>(input) else {
        return Ok(false);
    };
    let found = references(&value)?;
    for r in &found {
        if !after.contains(&r.from) {
            return Err(FlowError::NotAfter {
                from: cut(&r.from, 64),
            });
        }
        if !r.path.is_empty() && r.path.split('.').any(str::is_empty) {
            return Err(FlowError::EmptySegment {
                from: r.from.clone(),
                path: cut(&r.path, 128),
            });
        }
    }
    Ok(!found.is_empty())
}

/// The value at `path` (dotted) in `value`.
pub fn at_path<'v>(value: &'v Value, from: &str, path: &str) -> Result<&'v Value, FlowError> {
    if path.is_empty() {
        return Ok(value);
    }
    let mut here = value;
    for segment in path.split('.') {
        let next = match here {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|n| items.get(n)),
            _ => None,
        };
        here = next.ok_or_else(|| FlowError::NoPath {
            from: from.to_string(),
            path: cut(path, 128),
            segment: cut(segment, 64),
        })?;
    }
    Ok(here)
}

/// An output's bytes as JSON, or why they are not.
pub fn parse_output(from: &str, bytes: &[u8]) -> Result<Value, FlowError> {
    if bytes.is_empty() {
        return Err(FlowError::Missing {
            from: from.to_string(),
            why: "it returned nothing".into(),
        });
    }
    serde_json::from_slice(bytes).map_err(|e| FlowError::Missing {
        from: from.to_string(),
        why: format!("it is not JSON ({})", cut(&e.to_string(), 80)),
    })
}

/// `input` with every reference replaced by the value it names, read
/// through `output` (by the name the plan gave the runway); with each
/// output passed. `None` when `input` holds no reference (it is passed as
/// filed).
pub fn resolve<'a>(
    input: &[u8],
    output: impl Fn(&str) -> Output<'a>,
) -> Result<Resolved, FlowError> {
    if !may_refer(input) {
        return Ok(None);
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(input) else {
        return Ok(None);
    };
    let mut passed = Vec::new();
    let mut parsed: Vec<(String, Value)> = Vec::new();
    substitute(&mut value, &mut |r: &Reference| {
        let (id, bytes, digest) = output(&r.from).map_err(|why| FlowError::Missing {
            from: r.from.clone(),
            why,
        })?;
        if !parsed.iter().any(|(name, _)| *name == r.from) {
            parsed.push((r.from.clone(), parse_output(&r.from, bytes)?));
        }
        let whole = &parsed
            .iter()
            .find(|(name, _)| *name == r.from)
            .expect("parsed")
            .1;
        let taken = at_path(whole, &r.from, &r.path)?.clone();
        passed.push(PassedOutput {
            runway: id.to_string(),
            path: r.path.clone(),
            digest,
        });
        Ok(taken)
    })?;
    if passed.is_empty() {
        return Ok(None);
    }
    let bytes = serde_json::to_vec(&value).expect("JSON values encode");
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(FlowError::TooLarge {
            len: bytes.len(),
            max: MAX_INPUT_BYTES,
        });
    }
    Ok(Some((bytes, passed)))
}

/// Replaces, in place, each reference to `from` in `value` by what `take`
/// gives for its path (empty: the whole); references to others stay.
pub fn replace_references(
    value: &mut Value,
    from: &str,
    take: &mut impl FnMut(&str) -> Result<Value, FlowError>,
) -> Result<(), FlowError> {
    substitute(value, &mut |r: &Reference| {
        if r.from == from {
            return take(&r.path);
        }
        let mut map = Map::new();
        map.insert("from".into(), Value::String(r.from.clone()));
        if !r.path.is_empty() {
            map.insert("path".into(), Value::String(r.path.clone()));
        }
        Ok(Value::Object(map))
    })
}

/// Replaces, in place, each reference in `value` by what `take` gives.
fn substitute(
    value: &mut Value,
    take: &mut impl FnMut(&Reference) -> Result<Value, FlowError>,
) -> Result<(), FlowError> {
    match value {
        Value::Object(map) => match reference(map) {
            Some(r) => *value = take(&r?)?,
            None => {
                for v in map.values_mut() {
                    substitute(v, take)?;
                }
            }
        },
        Value::Array(items) => {
            for v in items {
                substitute(v, take)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn after(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn references_anywhere_in_the_tree_are_found_and_checked() {
        let input = json!({
            "apps": {"from": "import"},
            "threshold": 3,
            "deep": [{"x": {"from": "score", "path": "risk.0"}}],
            "not_one": {"from": "import", "other": 1},
        });
        let bytes = serde_json::to_vec(&input).unwrap();
        assert_eq!(check(&bytes, &after(&["import", "score"])), Ok(true));
        assert_eq!(
            check(&bytes, &after(&["import"])),
            Err(FlowError::NotAfter {
                from: "score".into()
            })
        );
        let plain = serde_json::to_vec(&json!({"n": 3})).unwrap();
        assert_eq!(check(&plain, &[]), Ok(false));
        let bad = serde_json::to_vec(&json!({"a": {"from": "x", "path": "a..b"}})).unwrap();
        assert!(matches!(
            check(&bad, &after(&["x"])),
            Err(FlowError::EmptySegment { .. })
        ));
        let number = serde_json::to_vec(&json!({"a": {"from": 3}})).unwrap();
        assert_eq!(check(&number, &after(&["x"])), Err(FlowError::NotText));
    }

    #[test]
    fn resolving_takes_fields_and_whole_outputs_by_value() {
        let score = br#"{"risk": [{"level": 7}], "name": "s"}"#;
        let import = br#"[1, 2]"#;
        let input = json!({
            "apps": {"from": "import"},
            "level": {"from": "score", "path": "risk.0.level"},
            "keep": {"from": "import", "other": 1},
        });
        let bytes = serde_json::to_vec(&input).unwrap();
        let (resolved, passed) = resolve(&bytes, |name| match name {
            "import" => Ok(("import-2", &import[..], [1; 32])),
            "score" => Ok(("score", &score[..], [2; 32])),
            _ => Err("unknown".into()),
        })
        .unwrap()
        .unwrap();
        let resolved: Value = serde_json::from_slice(&resolved).unwrap();
        assert_eq!(
            resolved,
            json!({"apps": [1, 2], "level": 7, "keep": {"from": "import", "other": 1}})
        );
        let passed: Vec<(&str, &str)> = passed
            .iter()
            .map(|p| (p.runway.as_str(), p.path.as_str()))
            .collect();
        assert_eq!(passed, [("import-2", ""), ("score", "risk.0.level")]);
    }

    #[test]
    fn a_missing_output_or_path_names_the_runway_and_path() {
        let input =
            serde_json::to_vec(&json!({"r": {"from": "score", "path": "risk.level"}})).unwrap();
        let none = resolve(&input, |_| Err("it was skipped".into())).unwrap_err();
        assert_eq!(
            none.to_string(),
            "input: the output of score is missing: it was skipped"
        );
        let text = resolve(&input, |_| Ok(("score", &b"plain text"[..], [0; 32]))).unwrap_err();
        assert!(text.to_string().contains("is not JSON"), "{text}");
        let empty = resolve(&input, |_| Ok(("score", &b""[..], [0; 32]))).unwrap_err();
        assert!(empty.to_string().contains("returned nothing"), "{empty}");
        let short = resolve(&input, |_| Ok(("score", &br#"{"risk": 3}"#[..], [0; 32])));
        assert_eq!(
            short.unwrap_err().to_string(),
            "input: the output of score has no \"risk.level\" (no \"level\" there)"
        );
    }
}
