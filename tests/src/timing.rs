//! What the benches share to time one thing against its baseline in the
//! same process: rounds that alternate which side goes first, the median
//! round of each, and the machine's load to print beside them.

/// Runs every side once to warm up, then `rounds` rounds, each side once
/// per round in an order that rotates from round to round; the median of
/// each side's results.
pub fn interleaved(rounds: usize, sides: &mut [&mut dyn FnMut() -> f64]) -> Vec<f64> {
    for side in sides.iter_mut() {
        side();
    }
    let mut results = vec![Vec::new(); sides.len()];
    for round in 0..rounds {
        for k in 0..sides.len() {
            let i = (round + k) % sides.len();
            results[i].push(sides[i]());
        }
    }
    results.into_iter().map(median).collect()
}

/// The middle value (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The 1-minute load average: other work on the machine skews every row.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The bench's own arguments (those cargo's harness flags are not):
/// `cargo bench --bench NAME -- part part=SIZE`.
pub fn parts_asked() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

/// Whether part `name` runs: every part when none was asked for.
pub fn wanted(asked: &[String], name: &str) -> bool {
    asked.is_empty() || asked.iter().any(|a| a.split('=').next() == Some(name))
}
