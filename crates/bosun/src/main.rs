//! `bosun`: the CLI. Thin wiring of `bosun-config`, `bosun-core` and the
//! control API; the logic lives in those crates.
#![deny(unsafe_code)]

mod api;
mod check;
mod ctl;
mod fleet;
mod hooks;
mod import;
mod keeper;
mod logging;
mod protocol;
mod snapshot_cmd;

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
        /// Config file; repeat it for overlays, later files win (default:
        /// $BOSUN_CONFIG, `:`-separated, else /etc/bosun/bosun.toml).
        #[arg(short, long)]
        config: Vec<PathBuf>,
    },
    /// Validate the config and print the plan.
    Check {
        /// Config file; repeat it for overlays, later files win (default:
        /// $BOSUN_CONFIG, `:`-separated, else /etc/bosun/bosun.toml).
        #[arg(short, long)]
        config: Vec<PathBuf>,
        /// Role expression to plan for (default: from the roles env var, else roles_default).
        #[arg(long)]
        roles: Option<String>,
        /// Also list every value with the file:line:col that set it (overlays, includes).
        #[arg(long)]
        origin: bool,
    },
    /// Talk to a running bosun.
    Ctl(ctl::CtlArgs),
    /// Translate another supervisor's config into bosun.toml.
    #[command(subcommand)]
    Import(import::ImportCmd),
    /// Snapshots in the configured store, without a running bosun.
    Snapshot {
        /// Config file; repeat it for overlays (default: $BOSUN_CONFIG, else
        /// /etc/bosun/bosun.toml).
        #[arg(short, long)]
        config: Vec<PathBuf>,
        #[command(subcommand)]
        action: snapshot_cmd::SnapshotCmd,
    },
}

/// The config files: every `-c`, else `$BOSUN_CONFIG` (several separated by
/// `:`, like `$PATH`), else the default.
fn config_path(arg: Vec<PathBuf>) -> Vec<PathBuf> {
    if !arg.is_empty() {
        return arg;
    }
    let from_env: Vec<PathBuf> = std::env::var_os("BOSUN_CONFIG")
        .map(|v| {
            std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        })
        .unwrap_or_default();
    if from_env.is_empty() {
        return vec![PathBuf::from("/etc/bosun/bosun.toml")];
    }
    from_env
}

/// The config files for messages: `base.toml + site.toml`.
fn shown(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ")
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
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
    // The status and health queries a probe or a watch loop runs most, without clap's cost.
    if let Some(ctl_args) = ctl::CtlArgs::quick(&args[1..]) {
        return exit(ctl::main(ctl_args));
    }
    let cli = Cli::parse();
    match cli.command {
        Cmd::Run { config } => exit(run(config_path(config))),
        Cmd::Check {
            config,
            roles,
            origin,
        } => exit(check::check(&config_path(config), roles.as_deref(), origin)),
        Cmd::Ctl(args) => exit(ctl::main(args)),
        Cmd::Import(cmd) => exit(import::main(cmd)),
        Cmd::Snapshot { config, action } => exit(snapshot_cmd::main(config_path(config), action)),
    }
}

/// Loads and validates the config, printing every error (file:line:col: what is
/// wrong); `None` after errors, which every command answers with exit code 2.
pub(crate) fn load_config(
    paths: &[PathBuf],
    env: &dyn bosun_config::Vars,
) -> Option<bosun_config::Config> {
    match bosun_config::load_all(paths, env) {
        Ok(c) => Some(c),
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!(
                "bosun: {} config error(s) in {}",
                errors.len(),
                shown(paths)
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

/// Fails the boot when the active units' output pipes and the API's
/// connections do not fit the open-files limit (see `check_fd_budget`).
fn fd_budget(runtime: &bosun_config::Config, plan: &bosun_config::Plan) -> Result<(), String> {
    let piped = plan
        .units
        .iter()
        .filter(|u| {
            runtime
                .units
                .get(&u.name)
                .is_none_or(|c| c.output != bosun_config::Output::Inherit)
        })
        .count();
    bosun_core::pid1::check_fd_budget(piped, api::budget::Limits::current().all)
}

fn install_signals() -> Option<bosun_core::signals::Signals> {
    bosun_core::signals::Signals::install()
        .map_err(|e| eprintln!("bosun: cannot install signal handlers: {e}"))
        .ok()
}

/// What runs: the roles from the environment, one unit per instance (the
/// supervisor keeps the file's config), the plan, within the open-files limit.
fn planned(
    config: &bosun_config::Config,
    env: &bosun_config::Env,
) -> Result<(bosun_config::Config, bosun_config::Plan), String> {
    let roles_expr = config.roles_expr_checked(env)?;
    let runtime = config.instantiated(&Default::default());
    let plan = bosun_config::Plan::new(&runtime, &roles_expr)?;
    fd_budget(&runtime, &plan)?;
    Ok((runtime, plan))
}

/// A boot that failed before the supervisor ran: the `boot_failed` hook, given
/// the stop budget to finish.
async fn report_boot_failure(runner: &hooks::HookRunner, why: String, budget: std::time::Duration) {
    use bosun_core::EventSink;
    runner.emit(bosun_core::Event::new(
        bosun_core::EventKind::BootFailed,
        None,
        why,
    ));
    runner.flush(tokio::time::Instant::now() + budget).await;
}

fn run(paths: Vec<PathBuf>) -> i32 {
    let path = shown(&paths);
    let rt = runtime();
    rt.block_on(async {
        bosun_core::pid1::raise_fd_limit();
        // Signal handlers first: a SIGTERM during boot must start a stop, not be lost.
        let Some(mut signals) = install_signals() else {
            return 1;
        };
        // Never `std::env::vars`: it panics on a variable that is not UTF-8.
        let env = bosun_config::Env::current();
        let Some(config) = load_config(&paths, &env) else {
            return 2;
        };
        let _log_guard = logging::init(config.bosun.log_file.as_deref());
        for w in &config.warnings {
            tracing::warn!("{w}");
        }
        let (runtime, plan) = match planned(&config, &env) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("{}: {e}", path);
                return 2;
            }
        };
        let reaper = match bosun_core::reaper::Reaper::start() {
            Ok(mut r) => {
                r.start_spawners();
                r
            }
            Err(e) => {
                tracing::error!("cannot become a child subreaper: {e}");
                return 1;
            }
        };
        tracing::info!(
            pid = std::process::id(),
            "bosun {} starting with {}",
            env!("CARGO_PKG_VERSION"),
            path
        );
        supervise(config, runtime, plan, reaper, &path, &mut signals).await
    })
}

/// The boot proper, once the config is [`planned`] (`runtime`, `plan`) and bosun
/// is the subreaper: the hooks, the snapshot keeper (which restores), the fleet, the supervisor and the
/// control API; runs until the stop is over, then leaves the fleet and closes the
/// API. Returns the exit code.
async fn supervise(
    config: bosun_config::Config,
    runtime: bosun_config::Config,
    plan: bosun_config::Plan,
    reaper: bosun_core::reaper::Reaper,
    path: &str,
    signals: &mut bosun_core::signals::Signals,
) -> i32 {
    let hook_runner = config
        .hooks
        .as_ref()
        .map(|h| hooks::HookRunner::start(h, reaper.clone(), config.secrets.clone()));
    let keeper = match keeper::Keeper::new(&runtime, &plan, reaper.clone()).await {
        Ok(k) => k,
        Err(e) => {
            tracing::error!("boot failed: {e}");
            if let Some(r) = &hook_runner {
                report_boot_failure(r, format!("boot failed: {e}"), config.bosun.stop_budget).await;
            }
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
                tracing::error!("{}: {e}", path);
            }
            return 2;
        }
    };
    // The keeper and the fleet took what they need; the supervisor makes its own
    // unit table. Not kept for the container's life (about 2 KiB per unit).
    drop(runtime);
    let (mut supervisor, handle) = bosun_core::Supervisor::new(config, plan, reaper, hooks);
    let fleet = connect(
        &mut supervisor,
        &handle,
        hook_runner,
        fleet,
        keeper.as_ref(),
    );
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
    let code = supervisor.run(signals).await;
    // Every unit (the singletons too) is down: leave the fleet, releasing the
    // leases so that another peer takes over at once.
    if let Some(f) = &fleet {
        f.handle.shutdown().await;
        tracing::info!("fleet: left");
    }
    api.shutdown().await;
    tracing::info!("bosun exits with code {code}");
    code
}

/// Wires the supervisor to what was started beside it, in this order: the hooks
/// get its events, the fleet gates its singletons and serves its commands, the
/// keeper reports through its handle. Returns the fleet, for the control API.
fn connect(
    supervisor: &mut bosun_core::Supervisor,
    handle: &bosun_core::Handle,
    hook_runner: Option<std::sync::Arc<hooks::HookRunner>>,
    fleet: Option<(fleet::Fleet, fleet::Commands, bosun_core::lease::Permits)>,
    keeper: Option<&std::sync::Arc<keeper::Keeper>>,
) -> Option<fleet::Fleet> {
    if let Some(r) = hook_runner {
        supervisor.set_events(r);
    }
    let fleet = fleet.map(|(fleet, commands, permits)| {
        supervisor.set_permits(permits);
        commands.serve(handle.clone(), fleet.clone());
        fleet
    });
    if let Some(k) = keeper {
        k.attach(handle);
    }
    fleet
}
