//! Conditions: `when = "<CEL expression>"` on a manifest (the Common
//! Expression Language, through the `cel` crate).
//!
//! The expression is parsed at filing (a parse error refuses the plan) and
//! read once the runway's dependencies have ended, over:
//! - `outputs`: a map from the name (the plan's id) of each runway it runs
//!   after to its output as JSON; a runway with no output (nothing, not
//!   JSON, or skipped) is absent (`has(outputs.score)`); an id that is not
//!   an identifier is read as `outputs['import-2']`;
//! - `input`: its own input, references resolved (absent when they could
//!   not be: the runway then fails on them, unless the condition is false);
//! - `skipped('x')`: whether `x`, a runway it runs after, ended SKIPPED.
//!
//! True lets the runway go on, false skips it; any other value, or an
//! error, fails it naming why. JSON numbers are CEL `int` when whole and
//! within `int`, else `uint` or `double`; CEL compares them across types.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use cel::{Context, Env, Program, Value as Cel};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use thiserror::Error;

use crate::limits::{MAX_PROBLEM_CHARS, MAX_WHEN_BYTES, cut};

/// The standard environment, built once (building one registers every
/// standard function).
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// Why a condition was refused at filing.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConditionError {
    #[error("when is {len} bytes (at most {max})")]
    TooLong { len: usize, max: usize },
    #[error("when does not parse: {0}")]
    Parse(String),
}

/// A parsed condition, kept with its text (what the trail and the views
/// show; a FILING record keeps the text and a restart parses it again).
#[derive(Clone)]
pub struct Condition {
    text: String,
    program: Arc<Program>,
}

/// What a condition reads: the outputs of the runways it runs after, its
/// input, and which of them were skipped.
#[derive(Default)]
pub struct Scope {
    /// Each runway it runs after that has a JSON output: its name and
    /// output.
    pub outputs: Vec<(String, Value)>,
    /// Its input, resolved; `None` when it could not be.
    pub input: Option<Value>,
    /// The names of the runways it runs after.
    pub after: Vec<String>,
    /// Those of them that ended SKIPPED.
    pub skipped: Vec<String>,
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, ConditionError> {
        if text.len() > MAX_WHEN_BYTES {
            return Err(ConditionError::TooLong {
                len: text.len(),
                max: MAX_WHEN_BYTES,
            });
        }
        let program = ENV.compile(text).map_err(|e| {
            let message = runway_audit::render::escape(&e.to_string()).into_owned();
            ConditionError::Parse(cut(&message, MAX_PROBLEM_CHARS))
        })?;
        Ok(Condition {
            text: text.to_string(),
            program: Arc::new(program),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether it reads `outputs` at all (the outputs it read are then
    /// recorded with its value).
    pub fn reads_outputs(&self) -> bool {
        self.program.references().has_variable("outputs")
    }

    /// Its value over `scope`: `Ok` with a bool, else `Err` saying what it
    /// gave instead (another value, or the evaluation's error).
    pub fn evaluate(&self, scope: Scope) -> Result<bool, String> {
        let mut context = Context::with_env(ENV.clone());
        let outputs: HashMap<String, Cel> = scope
            .outputs
            .iter()
            .map(|(name, v)| (name.clone(), cel(v)))
            .collect();
        context.add_variable_from_value("outputs", outputs);
        if let Some(input) = &scope.input {
            context.add_variable_from_value("input", cel(input));
        }
        let Scope { after, skipped, .. } = scope;
        let skipped_fn = move |name: Arc<String>| -> Result<bool, cel::ExecutionError> {
            if !after.contains(&*name) {
                let why = format!("{name:?} is not a runway it runs after");
                return Err(cel::ExecutionError::function_error("skipped", why));
            }
            Ok(skipped.contains(&*name))
        };
        context
            .add_function("skipped", skipped_fn)
            .map_err(|e| e.to_string())?;
        match self.program.execute(&context) {
            Ok(Cel::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("gave {}, not a bool", shown(&other))),
            Err(e) => Err(cut(&e.to_string(), MAX_PROBLEM_CHARS * 4)),
        }
    }
}

/// A JSON value as CEL sees it.
fn cel(value: &Value) -> Cel {
    match value {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cel::Int(i),
            (None, Some(u)) => Cel::UInt(u),
            _ => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(items) => Cel::List(Arc::new(items.iter().map(cel).collect())),
        Value::Object(map) => {
            let map: HashMap<String, Cel> = map.iter().map(|(k, v)| (k.clone(), cel(v))).collect();
            Cel::from(map)
        }
    }
}

/// A value that is not a bool, as a refusal names it.
fn shown(value: &Cel) -> String {
    match value {
        Cel::Int(i) => i.to_string(),
        Cel::UInt(u) => format!("{u}u"),
        Cel::Float(f) => f.to_string(),
        Cel::String(s) => format!("{:?}", cut(s, 64)),
        Cel::Null => "null".into(),
        Cel::List(_) => "a list".into(),
        Cel::Map(_) => "a map".into(),
        _ => "a value of another type".into(),
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Condition, D::Error> {
        let text = String::deserialize(d)?;
        Condition::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(outputs: &[(&str, Value)], skipped: &[&str]) -> Scope {
        Scope {
            outputs: outputs
                .iter()
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect(),
            input: Some(json!({"threshold": 3})),
            after: ["score", "import", "x"].map(String::from).to_vec(),
            skipped: skipped.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn reads_outputs_input_and_skipped() {
        let score = [("score", json!({"risk": 7, "tags": ["a"]}))];
        let holds = |text: &str, s: Scope| Condition::parse(text).unwrap().evaluate(s);
        assert_eq!(
            holds("outputs.score.risk > input.threshold", scope(&score, &[])),
            Ok(true)
        );
        assert_eq!(
            holds("outputs.score.risk < 5", scope(&score, &[])),
            Ok(false)
        );
        assert_eq!(
            holds("'a' in outputs.score.tags", scope(&score, &[])),
            Ok(true)
        );
        assert_eq!(holds("has(outputs.import)", scope(&score, &[])), Ok(false));
        assert_eq!(holds("!skipped('x')", scope(&score, &["x"])), Ok(false));
        assert_eq!(holds("!skipped('x')", scope(&score, &[])), Ok(true));
        assert_eq!(
            holds("outputs.score.risk > 6.5", scope(&score, &[])),
            Ok(true)
        );
    }

    #[test]
    fn a_value_that_is_not_a_bool_or_an_error_is_named() {
        let c = Condition::parse("outputs.score.risk + 1").unwrap();
        let score = [("score", json!({"risk": 7}))];
        assert_eq!(
            c.evaluate(scope(&score, &[])),
            Err("gave 8, not a bool".into())
        );
        let missing = Condition::parse("outputs.nobody.risk > 1").unwrap();
        let err = missing.evaluate(scope(&score, &[])).unwrap_err();
        assert!(err.contains("nobody"), "{err}");
        let stranger = Condition::parse("skipped('y')").unwrap();
        let err = stranger.evaluate(scope(&score, &[])).unwrap_err();
        assert!(err.contains("not a runway it runs after"), "{err}");
    }

    #[test]
    fn a_parse_error_is_refused_and_the_text_round_trips() {
        let err = Condition::parse("outputs.score.risk >").unwrap_err();
        assert!(matches!(err, ConditionError::Parse(_)), "{err}");
        let c = Condition::parse("true && !skipped('x')").unwrap();
        assert!(!c.reads_outputs());
        assert!(Condition::parse("outputs.a == 1").unwrap().reads_outputs());
        let text = serde_json::to_string(&c).unwrap();
        let back: Condition = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c);
    }
}
