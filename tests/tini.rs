//! `bosun -- CMD` as a tini drop-in, and the signal rules around it: every signal
//! tini forwards reaches CMD; CMD starts with the signal mask and ignored signals
//! bosun was started with (units of `bosun run` with neither); a stray signal does
//! not kill `bosun run` when it is not PID 1; `ctl signal` takes every signal name
//! the config takes. bosun runs for real, as PID 1 of a fresh pid namespace
//! (`unshare --pid --fork --mount-proc`), under a real parent process.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(30);

/// The standard signals tini forwards (its src/tini.c: everything but KILL, STOP,
/// CHLD, the synchronous SEGV, BUS, FPE, ILL, TRAP, ABRT, SYS, and TTIN/TTOU).
const TINI_FORWARDS: [i32; 19] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGTERM,
    libc::SIGSTKFLT,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGURG,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGWINCH,
    libc::SIGIO,
    libc::SIGPWR,
];

/// A shell script that traps each of `sigs` (by number: dash knows no names for
/// STKFLT, PWR or the real-time ones) by appending the number to `{dir}/got`, writes
/// `{dir}/up`, then waits (a trapped signal interrupts `wait` at once) until
/// `{dir}/stop` exists, and exits 3.
fn trapping_script(dir: &str, sigs: &[i32]) -> String {
    let list: Vec<String> = sigs.iter().map(i32::to_string).collect();
    format!(
        "for n in {list}; do trap \"echo $n >> {dir}/got\" $n; done; \
         sleep 1000 & echo up > {dir}/up; \
         while [ ! -e {dir}/stop ]; do wait; done; exit 3",
        list = list.join(" ")
    )
}

fn got(s: &Scratch) -> Vec<i32> {
    s.read("got")
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

#[test]
fn tini_mode_forwards_every_signal_tini_forwards() {
    let s = Scratch::new();
    let dir = s.dir.path().display().to_string();
    let sigs: Vec<i32> = TINI_FORWARDS
        .into_iter()
        .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
        .collect();
    let script = trapping_script(&dir, &sigs);
    let mut b = Pid1::start(&s, &["--", "sh", "-c", &script], &[]);
    assert!(eventually(T, || s.path("up").exists()), "{}", b.output());
    // One at a time, each confirmed before the next: a shell runs one trap per
    // pending signal, so two of the same kind in flight would count once.
    for &sig in &sigs {
        b.signal(sig);
        assert!(
            eventually(T, || got(&s).contains(&sig)),
            "signal {sig} never reached the child (got {:?})\n{}",
            got(&s),
            b.output()
        );
    }
    fs::write(s.path("stop"), "").expect("stop file");
    b.signal(libc::SIGHUP);
    assert_eq!(b.wait(T), 3, "{}", b.output());
}

/// The parent that starts bosun, as a supervisor or CI runner might: ignores the
/// signals in argv[1], blocks those in argv[2] (comma-separated numbers), puts every
/// other signal to its default (Python itself ignores PIPE and XFSZ), then execs the
/// rest of argv.
const PARENT: &str = r#"
import os, signal, sys
ign = [int(x) for x in sys.argv[1].split(",") if x]
blk = [int(x) for x in sys.argv[2].split(",") if x]
for s in range(1, signal.NSIG):
    try:
        signal.signal(s, signal.SIG_IGN if s in ign else signal.SIG_DFL)
    except (OSError, ValueError, RuntimeError):
        pass
signal.pthread_sigmask(signal.SIG_SETMASK, blk)
os.execvp(sys.argv[3], sys.argv[3:])
"#;

/// A process tree started by a test; the pid namespace under it dies with it.
struct Tree {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Tree {
    fn start(s: &Scratch, argv: &[String]) -> Tree {
        let (out, err) = (s.path("tree.stdout"), s.path("tree.stderr"));
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("stdout file"))
            .stderr(fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn");
        Tree { child, out, err }
    }

    /// `python3 PARENT` ignoring `ignore` and blocking `block`, then
    /// `unshare … CMD…`: whatever CMD is, it is PID 1 of a new pid namespace.
    fn under_parent(s: &Scratch, ignore: &[i32], block: &[i32], cmd: &[String]) -> Tree {
        let csv = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
        let mut argv: Vec<String> = ["python3", "-c", PARENT].map(String::from).to_vec();
        argv.extend([csv(ignore), csv(block)]);
        argv.extend(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"].map(String::from),
        );
        argv.extend_from_slice(cmd);
        Tree::start(s, &argv)
    }

    /// The host pid `depth` generations below the process started (each the first child).
    fn pid_at(&self, depth: usize) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(10);
        'retry: loop {
            assert!(Instant::now() < deadline, "no process at depth {depth}");
            let mut pid = self.child.id() as i32;
            for _ in 0..depth {
                let kids = fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                    .unwrap_or_default();
                match kids.split_whitespace().next().and_then(|p| p.parse().ok()) {
                    Some(p) => pid = p,
                    None => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue 'retry;
                    }
                }
            }
            return pid;
        }
    }

    fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            slurp(&self.out),
            slurp(&self.err)
        )
    }

    fn wait(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                use std::os::unix::process::ExitStatusExt;
                return st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
            }
            assert!(
                Instant::now() < deadline,
                "did not exit within {timeout:?}\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn send(pid: i32, sig: i32) {
    // SAFETY: kill(2) with a pid this test started and a valid signal number.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill {pid} {sig}");
}

/// The `SigIgn` and `SigBlk` sets of a `/proc/PID/status` text, as bit masks of
/// the standard and real-time signals. The C library's own signals between them
/// (32 and 33 under glibc) are left out: no program can set them through it (nor
/// can tini or bosun), so they pass through unchanged from the test's environment.
fn ign_blk(status: &str) -> (u64, u64) {
    let reserved: u64 = (32..libc::SIGRTMIN()).fold(0, |m, s| m | 1 << (s - 1));
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or_else(|| panic!("no {name} in {status:?}"))
            & !reserved
    };
    (field("SigIgn:"), field("SigBlk:"))
}

fn bits(sigs: &[i32]) -> u64 {
    sigs.iter().fold(0, |m, s| m | 1 << (s - 1))
}

/// What tini's own test/sigconf checks: TTOU and TTIN (which tini touches), SEGV and
/// ILL (which it does not), INT and TERM (which it catches to forward).
const IGNORED: [i32; 4] = [libc::SIGINT, libc::SIGTTOU, libc::SIGSEGV, libc::SIGPIPE];
const BLOCKED: [i32; 3] = [libc::SIGTERM, libc::SIGTTIN, libc::SIGILL];

#[test]
fn tini_mode_child_keeps_the_signal_mask_and_ignored_signals_bosun_inherited() {
    let bosun = bosun_bin().display().to_string();
    let cat = [&bosun, "--", "cat", "/proc/self/status"].map(String::from);

    let s = Scratch::new();
    let mut t = Tree::under_parent(&s, &IGNORED, &BLOCKED, &cat);
    assert_eq!(t.wait(T), 0, "{}", t.output());
    let (ign, blk) = ign_blk(&slurp(&t.out));
    // Exactly these: nothing of bosun's own (its ignored SIGTTIN/SIGTTOU, Rust's
    // ignored SIGPIPE) leaks, and SIGPIPE, ignored by the parent, stays ignored.
    assert_eq!(ign, bits(&IGNORED), "SigIgn {ign:x}\n{}", t.output());
    assert_eq!(blk, bits(&BLOCKED), "SigBlk {blk:x}\n{}", t.output());

    // A parent that ignores and blocks nothing: neither does the child.
    let s = Scratch::new();
    let mut t = Tree::under_parent(&s, &[], &[], &cat);
    assert_eq!(t.wait(T), 0, "{}", t.output());
    assert_eq!(ign_blk(&slurp(&t.out)), (0, 0), "{}", t.output());
}

#[test]
fn run_mode_units_start_clean_and_a_blocked_sigterm_still_stops_bosun() {
    let s = Scratch::new();
    let cfg = s.config(
        "stop_budget = \"10s\"",
        r#"
[task.probe]
run = "cat /proc/self/status > {dir}/unit-status"

[service.idle]
after = ["probe"]
run = "exec sleep 1000"
"#,
    );
    let bosun = bosun_bin().display().to_string();
    let argv = [&bosun, "run", "-c", cfg.to_str().expect("utf8")].map(String::from);
    let mut t = Tree::under_parent(&s, &IGNORED, &BLOCKED, &argv);
    assert!(
        eventually(T, || slurp(&t.err).contains("boot complete")),
        "{}",
        t.output()
    );
    assert_eq!(
        ign_blk(&s.read("unit-status")),
        (0, 0),
        "a unit inherited a mask or ignored signals\n{}",
        t.output()
    );
    // SIGTERM was blocked by bosun's parent; bosun must still act on it.
    send(t.pid_at(1), libc::SIGTERM);
    assert_eq!(t.wait(T), 0, "{}", t.output());
}

#[test]
fn stray_signals_do_not_kill_bosun_run_when_it_is_not_pid_1() {
    let s = Scratch::new();
    let cfg = s.config(
        "stop_budget = \"10s\"",
        "[service.idle]\nrun = \"exec sleep 1000\"\n",
    );
    // sh is PID 1 of the namespace and bosun its child (the `exit` keeps sh from
    // exec'ing bosun in its place).
    let script = format!(
        "{} run -c {}; exit $?",
        bosun_bin().display(),
        cfg.display()
    );
    let argv = [
        "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        "--kill-child",
        "sh",
        "-c",
        &script,
    ]
    .map(String::from);
    let mut t = Tree::start(&s, &argv);
    assert!(
        eventually(T, || slurp(&t.err).contains("boot complete")),
        "{}",
        t.output()
    );
    let pid = t.pid_at(2);
    let nspid = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    assert!(
        nspid
            .lines()
            .any(|l| l.starts_with("NSpid:") && !l.ends_with("\t1")),
        "bosun is PID 1 after all: {nspid}"
    );
    let strays = [
        libc::SIGALRM,
        libc::SIGALRM,
        libc::SIGSTKFLT,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGRTMIN(),
        libc::SIGRTMAX(),
    ];
    for sig in strays {
        send(pid, sig);
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            t.child.try_wait().expect("try_wait").is_none(),
            "signal {sig} killed bosun\n{}",
            t.output()
        );
    }
    assert!(
        eventually(T, || slurp(&t.err).contains("ignoring SIGRTMIN+")),
        "{}",
        t.output()
    );
    // Logged once per kind.
    assert_eq!(
        slurp(&t.err).matches("ignoring SIGALRM").count(),
        1,
        "{}",
        t.output()
    );
    send(pid, libc::SIGTERM);
    assert_eq!(t.wait(T), 0, "{}", t.output());
}

#[test]
fn ctl_signal_takes_every_name_the_config_takes() {
    let s = Scratch::new();
    let dir = s.dir.path().display().to_string();
    // (name as typed, number): aliases, cases, with and without SIG, a number.
    let names = [
        ("ALRM", libc::SIGALRM),
        ("SIGIOT", libc::SIGABRT),
        ("poll", libc::SIGIO),
        ("SIGPWR", libc::SIGPWR),
        ("STKFLT", libc::SIGSTKFLT),
        ("xcpu", libc::SIGXCPU),
        ("VTALRM", libc::SIGVTALRM),
        ("SIGPROF", libc::SIGPROF),
        ("URG", libc::SIGURG),
        ("CONT", libc::SIGCONT),
        ("TSTP", libc::SIGTSTP),
        ("XFSZ", libc::SIGXFSZ),
        ("Pipe", libc::SIGPIPE),
        ("10", libc::SIGUSR1),
    ];
    let sigs: Vec<i32> = names.iter().map(|n| n.1).collect();
    let body = format!(
        "[service.web]\nrun = '''{}'''\n",
        trapping_script(&dir, &sigs)
    );
    let cfg = s.config("stop_budget = \"10s\"", &body);
    let mut b = Pid1::run(&s, &cfg, &[]);
    b.wait_for_output("boot complete", T);
    assert!(eventually(T, || s.path("up").exists()), "{}", b.output());
    let sock = s.path("run/ctl.sock").display().to_string();
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--socket", &sock];
        all.extend_from_slice(args);
        bosun(&all, &[])
    };
    for (name, sig) in names {
        let (code, out, err) = ctl(&["signal", name, "web"]);
        assert_eq!(code, 0, "ctl signal {name}: {out}{err}\n{}", b.output());
        assert!(
            eventually(T, || got(&s).contains(&sig)),
            "{name} never reached the unit (got {:?})\n{}",
            got(&s),
            b.output()
        );
    }
    // A name no table knows is refused, with what to use instead.
    let (code, _, err) = ctl(&["signal", "SIGFOO", "web"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unknown signal \"SIGFOO\""), "{err}");
    b.signal(libc::SIGTERM);
    assert_eq!(b.wait(T), 0, "{}", b.output());
}
