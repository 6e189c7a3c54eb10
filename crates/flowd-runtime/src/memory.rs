//! How much memory a process holds alone: what stopping it gives back.

/// `Private_Clean` + `Private_Dirty` of `/proc/<pid>/smaps_rollup`, in KiB (0 when unreadable):
/// pages shared with the base process a warm instance was forked from are not counted.
pub fn private_kb(pid: u32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
        return 0;
    };
    text.lines()
        .filter(|line| line.starts_with("Private_Clean:") || line.starts_with("Private_Dirty:"))
        .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_holds_some_private_memory() {
        assert!(private_kb(std::process::id()) > 0);
    }

    #[test]
    fn a_process_that_does_not_exist_holds_none() {
        assert_eq!(private_kb(u32::MAX), 0);
    }
}
