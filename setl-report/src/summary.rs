//! The compact forms a job prints when it ends: its factories' benchmark table, byte counts
//! in readable units, and what the process used (CPU time, peak resident memory), so that a
//! job need not write them by hand.

use std::fmt::Write as _;
use std::time::Duration;

use setl_core::BenchmarkResult;

/// The benchmark results as a compact table, one row per factory (stage, start offset, read,
/// process, write and total, in milliseconds, and the worker thread), and `exec ms`: the CPU
/// time of the factory's lazy plans wherever they executed (see
/// [`BenchmarkResult::executed`]), so that a reader that hands on a scan shows what reading cost.
pub fn benchmark_table(results: &[BenchmarkResult]) -> String {
    let width = results.iter().map(|result| result.factory.len()).max().unwrap_or(7).max(7);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6}",
        "factory", "stage", "start ms", "read ms", "proc ms", "write ms", "total ms", "exec ms", "thread"
    );
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    for result in results {
        let thread = result.thread.map_or_else(|| "-".to_owned(), |thread| thread.to_string());
        let _ = writeln!(
            out,
            "{:<width$} {:>5} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>6}",
            result.factory,
            result.stage,
            ms(result.start),
            ms(result.read),
            ms(result.process),
            ms(result.write),
            ms(result.total),
            ms(result.executed_compute()),
            thread
        );
    }
    out
}

/// A byte count in readable units.
pub fn bytes(count: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// CPU time of this process so far (user + system), from `/proc/self/stat`; `None` elsewhere.
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    // The kernel counts in clock ticks, 100 per second on Linux.
    Some(Duration::from_millis((user + system) * 10))
}

/// The peak resident memory of this process, from `/proc/self/status`; `None` elsewhere.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Restarts the peak resident memory from the current one (Linux 4.0+), so that one part of a
/// program can be measured; returns whether it worked.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn the_table_has_a_row_per_factory() {
        let result = BenchmarkResult {
            factory: "Load".to_owned(),
            stage: 0,
            read: Duration::ZERO,
            process: Duration::from_millis(12),
            write: Duration::ZERO,
            total: Duration::from_millis(15),
            start: Duration::ZERO,
            thread: Some(1),
            executed: Vec::new(),
        };
        let table = benchmark_table(&[result]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 2, "{table}");
        assert!(lines[1].starts_with("Load") && lines[1].contains("12.0") && lines[1].contains("15.0"), "{table}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_reports_its_cpu_and_memory() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(30) {}
        assert!(cpu_time().is_some_and(|cpu| cpu > Duration::ZERO));
        assert!(peak_rss().is_some_and(|rss| rss > 0));
    }
}
