//! `max_memory`: while a unit that sets it runs (once it is ready), its process
//! tree's resident memory is read from `/proc` every [`CHECK_EVERY`]; past the
//! limit the unit is stopped like a failed health check (its stop signal, grace,
//! SIGKILL) and restarted by its `restart` policy, logged and counted
//! (`memory_restarts`). A unit without `max_memory` has no timer at all.

use std::time::Duration;

/// How often the memory of a unit with `max_memory` is read.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(5);

/// How old a pass over `/proc` a check accepts: units with `max_memory` share
/// passes instead of each making its own.
const MAX_AGE: Duration = Duration::from_secs(2);

/// `Some("memory 530 MB over max_memory 512 MB")` when the tree of `pid`
/// holds more than `limit` bytes.
pub(super) async fn over(pid: i32, limit: u64) -> Option<String> {
    let rss = crate::usage::tree_of(pid, MAX_AGE).await?.rss_bytes;
    (rss > limit).then(|| format!("memory {} over max_memory {}", mb(rss), mb(limit)))
}

/// Bytes as whole megabytes (10^6, as `512MB` in the config means).
fn mb(bytes: u64) -> String {
    format!("{} MB", (bytes + 500_000) / 1_000_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn megabytes_round() {
        assert_eq!(super::mb(512_000_000), "512 MB");
        assert_eq!(super::mb(530_400_000), "530 MB");
        assert_eq!(super::mb(1 << 29), "537 MB");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn this_process_is_over_one_byte_and_under_a_terabyte() {
        let me = std::process::id() as i32;
        let over = super::over(me, 1).await;
        assert!(over.is_some_and(|m| m.contains("over max_memory 0 MB")));
        assert_eq!(super::over(me, 1 << 40).await, None);
    }
}
