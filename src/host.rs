//! This host's name: the default `instance` label of pushed metrics and the holder named in
//! job locks.

/// This host's name, for the default `instance` label and lock holders.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}
