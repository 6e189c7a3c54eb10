//! What `/proc` says about a process: resident memory, proportional and private memory, CPU time,
//! its children.

use std::time::{Duration, Instant};

/// Memory of one process, in KiB (from `/proc/<pid>/smaps_rollup`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss_kb: u64,
    pub pss_kb: u64,
    /// `Private_Clean` + `Private_Dirty`: what this process alone holds.
    pub private_kb: u64,
}

/// The resident set (`VmRSS`) of `pid`, in KiB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// The peak resident set (`VmHWM`) of `pid`, in KiB.
pub fn peak_rss_kb(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM:")
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|line| line.starts_with(name))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// RSS, PSS and private memory of `pid`.
pub fn memory(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let mut memory = Memory::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(value) = value.parse::<u64>() else {
            continue;
        };
        match name {
            "Rss:" => memory.rss_kb = value,
            "Pss:" => memory.pss_kb = value,
            "Private_Clean:" | "Private_Dirty:" => memory.private_kb += value,
            _ => {}
        }
    }
    (memory.rss_kb > 0).then_some(memory)
}

/// User + system CPU time of `pid` (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second.
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as u64
    } else {
        100
    }
}

/// The parent of `pid`.
pub fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The direct children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| parent(child) == Some(pid))
        .collect()
}

/// The command line of `pid`, its arguments separated by spaces.
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|&b| b == 0)
            .filter(|part| !part.is_empty())
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect(),
    )
}

/// The share of one CPU `pid` used over `window` (1.0 = one core busy).
pub async fn cpu_share(pid: u32, window: Duration) -> Option<f64> {
    let before = cpu_ticks(pid)?;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let after = cpu_ticks(pid)?;
    let seconds = started.elapsed().as_secs_f64();
    Some((after.saturating_sub(before)) as f64 / ticks_per_second() as f64 / seconds)
}

/// Samples `pid`'s RSS every `every` until `stop` flips, answering the largest seen (KiB).
pub async fn sample_peak_rss(
    pid: u32,
    every: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> u64 {
    let mut peak = 0;
    loop {
        if let Some(rss) = rss_kb(pid) {
            peak = peak.max(rss);
        }
        if *stop.borrow() {
            return peak;
        }
        tokio::time::sleep(every).await;
    }
}
