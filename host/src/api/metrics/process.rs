//! The process's own figures for `/metrics`, under the names Prometheus's
//! client libraries give them, so stock dashboards and alerts work:
//! `process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_threads` and `process_start_time_seconds`.
//!
//! Read at each scrape from `/proc/self/stat` (CPU ticks, threads, start
//! tick, sizes), `/proc/stat` (boot time), `/proc/self/fd` (open files)
//! and `getrlimit(RLIMIT_NOFILE)`. Five numbers from three files did not
//! warrant a crate: `procfs` parses all of `/proc` for them, and the
//! `prometheus` crate's process collector belongs to another metrics
//! library. Where `/proc` is missing (not Linux) the figures are left out.

use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

/// What `/proc/self/stat` says, in the units it says it.
struct Stat {
    /// User plus system CPU time, in clock ticks.
    cpu_ticks: u64,
    threads: u64,
    /// Start time, in clock ticks after boot.
    start_ticks: u64,
    virtual_bytes: u64,
    resident_pages: u64,
}

/// Parses `/proc/self/stat` (proc(5)): the command name, field 2, is in
/// parentheses and may hold spaces, so fields are counted after the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field n of proc(5) is fields[n - 3]: the first after `)` is field 3.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)? + field(15)?,
        threads: field(20)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
        resident_pages: field(24)?,
    })
}

/// The boot time (Unix seconds) from `/proc/stat`'s `btime` line.
fn boot_time() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Registers the process figures in `registry` (unprefixed).
pub fn register(registry: &mut Registry) {
    let Some(stat) = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .as_deref()
        .and_then(parse_stat)
    else {
        return;
    };
    let ticks = rustix::param::clock_ticks_per_second().max(1) as f64;
    registry.register_with_unit(
        "process_cpu",
        "Total user and system CPU time spent",
        Unit::Seconds,
        ConstCounter::new(stat.cpu_ticks as f64 / ticks),
    );
    let page = rustix::param::page_size() as u64;
    registry.register_with_unit(
        "process_resident_memory",
        "Resident memory size",
        Unit::Bytes,
        ConstGauge::new(stat.resident_pages.saturating_mul(page) as i64),
    );
    registry.register_with_unit(
        "process_virtual_memory",
        "Virtual memory size",
        Unit::Bytes,
        ConstGauge::new(stat.virtual_bytes as i64),
    );
    registry.register(
        "process_threads",
        "Threads in the process",
        ConstGauge::new(stat.threads as i64),
    );
    if let Some(boot) = boot_time() {
        registry.register_with_unit(
            "process_start_time",
            "Start time of the process since the Unix epoch",
            Unit::Seconds,
            ConstGauge::new(boot as f64 + stat.start_ticks as f64 / ticks),
        );
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        registry.register(
            "process_open_fds",
            "Open file descriptors",
            ConstGauge::new(fds.count() as i64),
        );
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
    if let Some(max) = limit.current {
        registry.register(
            "process_max_fds",
            "Most file descriptors the process may open",
            ConstGauge::new(max.min(i64::MAX as u64) as i64),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::parse_stat;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        // proc(5)'s layout, fields 1 to 24; the name holds ") (".
        let line = "42 (ru) (nway x) S 1 42 42 0 -1 4194304 100 0 0 0 \
                    250 50 0 0 20 0 7 0 1234 987654 321 18446744073709551615";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.cpu_ticks, 300);
        assert_eq!(stat.threads, 7);
        assert_eq!(stat.start_ticks, 1234);
        assert_eq!(stat.virtual_bytes, 987654);
        assert_eq!(stat.resident_pages, 321);
    }
}
