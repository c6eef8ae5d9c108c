//! `bosun`: the CLI. Thin wiring of `bosun-config`, `bosun-core` and the
//! control API; the logic lives in those crates.
#![deny(unsafe_code)]

mod api;
mod check;
mod ctl;
mod fleet;
mod import;
mod keeper;
mod logging;
mod protocol;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// PID-1 init and process supervisor for containers.
#[derive(Parser)]
#[command(name = "bosun", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the supervisor (the image's ENTRYPOINT).
    Run {
        /// Config file (default: $BOSUN_CONFIG, else /etc/bosun/bosun.toml).
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Validate the config and print the plan.
    Check {
        /// Config file (default: $BOSUN_CONFIG, else /etc/bosun/bosun.toml).
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Role expression to plan for (default: from the roles env var, else roles_default).
        #[arg(long)]
        roles: Option<String>,
    },
    /// Talk to a running bosun.
    Ctl(ctl::CtlArgs),
    /// Translate another supervisor's config into bosun.toml.
    #[command(subcommand)]
    Import(import::ImportCmd),
    /// Snapshots in the configured store, without a running bosun.
    Snapshot {
        /// Config file (default: $BOSUN_CONFIG, else /etc/bosun/bosun.toml).
        #[arg(short, long)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: SnapshotCmd,
    },
}

#[derive(Subcommand)]
enum SnapshotCmd {
    /// List snapshots: id, time, host, size, complete.
    List,
    /// Make snapshot ID the one restored at the next start (sets LATEST).
    Restore {
        /// The snapshot id, as `bosun snapshot list` shows it.
        id: String,
    },
}

/// The config path: `-c`, else `$BOSUN_CONFIG`, else the default.
fn config_path(arg: Option<PathBuf>) -> PathBuf {
    arg.or_else(|| std::env::var_os("BOSUN_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/etc/bosun/bosun.toml"))
}

fn runtime() -> tokio::runtime::Runtime {
    // One thread: bosun waits on processes, pipes and sockets; it never computes
    // for long. One thread keeps it small and its scheduling simple.
    // The only other threads are short-lived spawners (see bosun-core's unit
    // runner) and the console writer: one malloc arena is plenty, and each
    // extra arena is resident memory for the container's whole life.
    bosun_core::pid1::limit_malloc_arenas();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Spawner threads go away soon after boot instead of idling for 10 s.
        .thread_keep_alive(std::time::Duration::from_millis(500))
        .build()
        .expect("cannot build the tokio runtime")
}

/// Records the signal mask and ignored signals bosun was started with, before `main`:
/// Rust's runtime sets SIGPIPE to ignored before `main` runs, and tini mode must hand
/// CMD the SIGPIPE disposition bosun inherited, not Rust's. `.init_array` entries run
/// before the runtime's setup, in a single thread.
// The one exception to this crate's `deny(unsafe_code)`: a link section (the
// lint counts it as unsafe). It must live in the binary; a library's object
// holding it may not be linked at all.
#[allow(unsafe_code)]
#[used]
#[link_section = ".init_array"]
static RECORD_INHERITED_SIGNALS: extern "C" fn() = record_inherited_signals;

extern "C" fn record_inherited_signals() {
    bosun_core::signals::Inherited::record();
}

fn main() -> ExitCode {
    // Before anything else (a no-op when the hook above ran), then bosun's own mask
    // is emptied: a SIGTERM blocked by whoever started bosun must still stop it, and
    // units must not inherit the block.
    bosun_core::signals::Inherited::record();
    bosun_core::signals::unblock_all();
    // Raw arguments: a CMD argument need not be UTF-8 (`std::env::args` panics on one).
    let args: Vec<OsString> = std::env::args_os().collect();
    // `bosun -- CMD ARGS`: tini mode, decided before anything else.
    if args.get(1).is_some_and(|a| a == "--") {
        return exit(tini_mode(&args[2..]));
    }
    // The status query a probe or a watch loop runs most, without clap's cost.
    if let Some(ctl_args) = ctl::CtlArgs::quick(&args[1..]) {
        return exit(ctl::main(ctl_args));
    }
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run { config } => exit(run(config_path(config))),
        Cmd::Check { config, roles } => exit(check::check(&config_path(config), roles.as_deref())),
        Cmd::Ctl(args) => exit(ctl::main(args)),
        Cmd::Import(cmd) => exit(import::main(cmd)),
        Cmd::Snapshot { config, action } => exit(snapshot_cmd(config_path(config), action)),
    }
}

/// Loads and validates the config, printing every error (file:line:col: what is
/// wrong); `None` after errors, which every command answers with exit code 2.
fn load_config(
    path: &std::path::Path,
    env: &dyn bosun_config::Vars,
) -> Option<bosun_config::Config> {
    match bosun_config::load(path, env) {
        Ok(c) => Some(c),
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "bosun: {} config error(s) in {}",
                errors.len(),
                path.display()
            );
            None
        }
    }
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(code.clamp(0, 255) as u8)
}

fn tini_mode(argv: &[OsString]) -> i32 {
    if argv.is_empty() {
        eprintln!("bosun: usage: bosun -- CMD [ARGS...]");
        return 2;
    }
    logging::init(None);
    let rt = runtime();
    rt.block_on(async {
        let mut signals = match bosun_core::signals::Forwarded::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("bosun: cannot install signal handlers: {e}");
                return 1;
            }
        };
        let reaper = match bosun_core::reaper::Reaper::start() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("bosun: cannot become a subreaper: {e}");
                return 1;
            }
        };
        bosun_core::tini::run(argv, &reaper, &mut signals).await
    })
}

fn run(path: PathBuf) -> i32 {
    let rt = runtime();
    rt.block_on(async {
        bosun_core::pid1::raise_fd_limit();
        // Signal handlers first: a SIGTERM during boot must start a stop, not be lost.
        let mut signals = match bosun_core::signals::Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("bosun: cannot install signal handlers: {e}");
                return 1;
            }
        };
        // Never `std::env::vars`: it panics on a variable that is not UTF-8.
        let env = bosun_config::Env::current();
        let Some(config) = load_config(&path, &env) else {
            return 2;
        };
        let _log_guard = logging::init(config.bosun.log_file.as_deref());
        for w in &config.warnings {
            tracing::warn!("{w}");
        }
        let roles_expr = match config.roles_expr_checked(&env) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{}: {e}", path.display());
                return 2;
            }
        };
        // What runs: one unit per instance (the supervisor keeps the file's config).
        let runtime = config.instantiated(&Default::default());
        let plan = match bosun_config::Plan::new(&runtime, &roles_expr) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("{}: {e}", path.display());
                return 2;
            }
        };
        let reaper = match bosun_core::reaper::Reaper::start() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot become a child subreaper: {e}");
                return 1;
            }
        };
        tracing::info!(
            pid = std::process::id(),
            "bosun {} starting with {}",
            env!("CARGO_PKG_VERSION"),
            path.display()
        );
        let keeper = match keeper::Keeper::new(&runtime, &plan, reaper.clone()).await {
            Ok(k) => k,
            Err(e) => {
                tracing::error!("boot failed: {e}");
                return 1;
            }
        };
        let hooks = keeper
            .clone()
            .map(|k| k as std::sync::Arc<dyn bosun_core::DataHooks>);
        let settings = config.bosun.clone();
        let fleet = match fleet::start(&runtime, &plan) {
            Ok(f) => f,
            Err(errors) => {
                for e in errors {
                    tracing::error!("{}: {e}", path.display());
                }
                return 2;
            }
        };
        let (mut supervisor, handle) = bosun_core::Supervisor::new(config, plan, reaper, hooks);
        let fleet = fleet.map(|(fleet, commands, permits)| {
            supervisor.set_permits(permits);
            commands.serve(handle.clone(), fleet.clone());
            fleet
        });
        if let Some(k) = &keeper {
            k.set_handle(handle.clone());
            k.spawn_daily();
        }
        let snapshots = keeper
            .clone()
            .map(|k| k as std::sync::Arc<dyn api::snapshots::Snapshots>);
        let api = match api::serve(handle.clone(), &settings, snapshots, fleet.clone()).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!("control API: {e}");
                return 1;
            }
        };
        let code = supervisor.run(&mut signals).await;
        // Every unit (the singletons too) is down: leave the fleet, releasing the
        // leases so that another peer takes over at once.
        if let Some(f) = &fleet {
            f.handle.shutdown().await;
            tracing::info!("fleet: left");
        }
        api.shutdown().await;
        tracing::info!("bosun exits with code {code}");
        code
    })
}

fn snapshot_cmd(path: PathBuf, action: SnapshotCmd) -> i32 {
    let Some(config) = load_config(&path, &bosun_config::Env::current()) else {
        return 2;
    };
    let Some(snap) = config.snapshot else {
        eprintln!("bosun: {} has no [snapshot] table", path.display());
        return 2;
    };
    runtime().block_on(async move {
        let store = match bosun_snapshot::open_store(&snap.store, snap.s3_endpoint.as_deref(), &snap.s3_region).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("bosun: snapshot store: {e}");
                return 1;
            }
        };
        match action {
            SnapshotCmd::List => match bosun_snapshot::list_snapshots(store.as_ref()).await {
                Ok(list) => {
                    println!("{:<40} {:<6} {:<20} {:>10}  {:<8} LATEST", "ID", "KIND", "HOST", "SIZE", "COMPLETE");
                    for s in list {
                        println!(
                            "{:<40} {:<6} {:<20} {:>10}  {:<8} {}",
                            s.id.to_string(),
                            if s.kind == bosun_snapshot::SnapshotKind::Daily { "daily" } else { "stop" },
                            s.host,
                            keeper::human_bytes(s.size),
                            if s.complete { "yes" } else { "no" },
                            if s.latest { "*" } else { "" }
                        );
                    }
                    0
                }
                Err(e) => {
                    eprintln!("bosun: listing snapshots: {e}");
                    1
                }
            },
            SnapshotCmd::Restore { id } => {
                let list = match bosun_snapshot::list_snapshots(store.as_ref()).await {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("bosun: listing snapshots: {e}");
                        return 1;
                    }
                };
                let Some(found) = list.into_iter().find(|s| s.id.to_string() == id) else {
                    eprintln!("bosun: no snapshot {id:?} (see: bosun snapshot list)");
                    return 1;
                };
                if !found.complete {
                    eprintln!("bosun: snapshot {id} is incomplete (no manifest): it cannot be restored");
                    return 1;
                }
                match bosun_snapshot::set_latest(store.as_ref(), &found.id).await {
                    Ok(()) => {
                        println!("snapshot {id} is now LATEST: the next start of a container on a disk that does not hold it restores it");
                        0
                    }
                    Err(e) => {
                        eprintln!("bosun: {e}");
                        1
                    }
                }
            }
        }
    })
}
