//! Instances: `instances = N` on a service runs N copies of it, the units
//! `NAME#1` … `NAME#N` (the `#` cannot occur in a unit name, so these never
//! clash with a unit of the file). `NAME` is the instances' *group*: `after =
//! ["NAME"]` waits for all of them, and `bosun ctl` takes either the group or
//! one instance.

/// The most instances a service may have (`instances`, `bosun ctl scale`).
pub const MAX_INSTANCES: u32 = 1000;

/// The unit name of instance `i` (1-based) of `group`: `worker#2`.
pub fn unit_name(group: &str, i: u32) -> String {
    format!("{group}#{i}")
}

/// Splits an instance's unit name into its group and number (`worker#2` →
/// `("worker", 2)`); `None` for a name that is not an instance's.
pub fn split(name: &str) -> Option<(&str, u32)> {
    let (group, n) = name.rsplit_once('#')?;
    let i: u32 = n.parse().ok()?;
    (i >= 1 && !n.starts_with('0') && !group.is_empty()).then_some((group, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_back() {
        for i in [1, 2, 10, MAX_INSTANCES] {
            assert_eq!(split(&unit_name("web-1.x", i)), Some(("web-1.x", i)));
        }
        for bad in ["worker", "worker#", "worker#0", "worker#01", "#2", "w#x"] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }
}
