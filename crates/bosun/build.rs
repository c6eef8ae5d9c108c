//! The release link of `bosun`.
//!
//! - **Hot code together.** The functions a running bosun executes (boot,
//!   supervision, the control API, `ctl`) are linked next to each other, so the
//!   kernel's fault-around (64 KiB around each page fault) maps one dense run of
//!   code instead of windows all over a 6 MiB `.text`: the daemon's resident pages
//!   of its own binary drop from ~3.6 MiB to ~1.5 MiB. The list is
//!   `layout/hot-functions.txt`, written by `tests/bench/layout.sh`. A stale list
//!   costs memory, never correctness: the linker ignores names it does not know.
//! - **Stripped at link time.** The release profile keeps symbols and the link
//!   strips them, so a build with `BOSUN_KEEP_SYMBOLS=1` (for the layout script)
//!   differs from the shipped one only in this step and has the shipped names.
//!
//! `BOSUN_LAYOUT=0` links without the list (to measure what it buys).
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=layout/hot-functions.txt");
    println!("cargo:rerun-if-env-changed=BOSUN_LAYOUT");
    println!("cargo:rerun-if-env-changed=BOSUN_KEEP_SYMBOLS");
    if std::env::var("PROFILE").map_or(true, |p| p != "release") {
        return;
    }
    if std::env::var("BOSUN_KEEP_SYMBOLS").map_or(true, |v| v != "1") {
        println!("cargo:rustc-link-arg-bin=bosun=-s");
    }
    // x86_64 GNU/Linux is where rustc links with its own LLD, whose flags these are.
    let lld = std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    if lld && std::env::var("BOSUN_LAYOUT").map_or(true, |v| v != "0") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        let list = Path::new(&dir).join("layout/hot-functions.txt");
        println!(
            "cargo:rustc-link-arg-bin=bosun=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bin=bosun=-Wl,--no-warn-symbol-ordering");
    }
}
