//! The control API: one HTTP/1.1 API (hyper) served on two transports.
//!
//! - The unix socket (`control_socket`, default `/run/bosun/ctl.sock`): mode
//!   0600 owned by bosun's user (root in a container), the way docker.sock
//!   works; with `control_group`, group-owned and 0660. The file mode is the
//!   gate; on top of it every connection's peer credentials (SO_PEERCRED) are
//!   checked, so a socket that was bind-mounted or chmod-ed open still only
//!   serves root, bosun's own user and members of `control_group` (others get
//!   403 on every request).
//! - TCP (`http_listen`), optional: every path but `GET /health`, `GET /metrics`
//!   and the static status page shell `GET /` (which holds no data: it fetches
//!   `/v1/status` with the token the admin types in) needs
//!   `Authorization: Bearer <token>`. Who may do what is decided in one place,
//!   [`auth::authorize`]. The token comes from `http_token_file`,
//!   else `$BOSUN_HTTP_TOKEN`; without one, [`serve`] fails and bosun does not
//!   start: a TCP API that anyone on the network could steer is never the
//!   intent.
//!
//! No endpoint runs an arbitrary command; the mutating ones only reach
//! [`bosun_core::Handle`] and the [`snapshots::Snapshots`] seam. The paths and
//! their handlers are in [`handlers`], one handler per path; errors and their
//! HTTP statuses in [`error`]; the wire types shared with `bosun ctl` in
//! [`crate::protocol`].
//! How many connections each transport and client may hold is in [`budget`]:
//! the socket keeps a share no TCP flood can take, so a health check on it
//! always gets in.

mod auth;
mod body;
pub(crate) mod budget;
mod error;
mod handlers;
mod logs;
mod metrics;
pub mod snapshots;
mod stall;
pub mod text;

use std::convert::Infallible;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bosun_config::Settings;
use bosun_core::Handle;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use auth::{Peer, Token};
use body::Body;
use budget::{turn_away, Budgets, Limits, Slot};
pub use error::ServeError;
use error::{ApiError, Busy};
use snapshots::Snapshots;
use stall::StallGuard;

/// How long a client may take to send a request's headers, counted from when
/// bosun starts waiting for them: on a new connection, and again whenever a
/// kept-alive connection goes idle after a response (hyper restarts the timer
/// then). So a silent, idle or slowloris client holds its connection slot (and
/// an fd) this long at most; `bosun ctl` sends its whole request at once.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a TCP client may leave bosun's answer unread (a write making no
/// progress at all) before bosun drops the connection: the other half of
/// "no client holds a slot forever" (see [`stall`]). Not on the socket, where
/// a paused `ctl logs -f | less` is root's own business.
const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long [`Api::shutdown`] waits for open connections (log followers
/// included) to finish after they were told to.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What every connection and handler shares.
pub(crate) struct Ctx {
    /// The supervisor.
    pub handle: Handle,
    /// Cancelled when bosun stops serving: log followers end their streams.
    pub stopping: CancellationToken,
    /// The data keeper, when the config has a `[snapshot]` table.
    pub keeper: Option<Arc<dyn Snapshots>>,
    /// Who may hold how many connections (see [`budget`]).
    pub budgets: Budgets,
    /// The fleet, when `[fleet]` has a database.
    pub fleet: Option<crate::fleet::Fleet>,
    /// The units' previous CPU samples: a status request or a scrape reads
    /// `/proc` and gives the rate since the one before.
    pub meter: bosun_core::usage::Meter,
}

/// The running API servers; [`Api::shutdown`] stops them.
pub struct Api {
    ctx: Arc<Ctx>,
    accept_loops: Vec<JoinHandle<()>>,
    /// Every connection task holds a clone; when all are gone, `recv` is `None`.
    conns_tx: mpsc::Sender<()>,
    conns_rx: mpsc::Receiver<()>,
    socket: PathBuf,
}

impl Api {
    /// Stops accepting, ends log streams, lets open requests finish (for at
    /// most a few seconds) and removes the socket file.
    pub async fn shutdown(self) {
        let Api {
            ctx,
            accept_loops,
            conns_tx,
            mut conns_rx,
            socket,
        } = self;
        ctx.stopping.cancel();
        for l in &accept_loops {
            l.abort();
        }
        drop(conns_tx);
        if tokio::time::timeout(SHUTDOWN_GRACE, conns_rx.recv())
            .await
            .is_err()
        {
            tracing::debug!(
                "control API: connections still open after {SHUTDOWN_GRACE:?}; closing them"
            );
        }
        let _ = std::fs::remove_file(&socket);
    }
}

/// Starts the API on the control socket, and on TCP when `http_listen` is set.
///
/// Fails (and bosun then refuses to start) when the socket cannot be set up,
/// when another bosun already answers on it, when `control_group` does not
/// exist, or when TCP is configured without a token.
pub async fn serve(
    handle: Handle,
    settings: &Settings,
    keeper: Option<Arc<dyn Snapshots>>,
    fleet: Option<crate::fleet::Fleet>,
) -> Result<Api, ServeError> {
    let group = match &settings.control_group {
        Some(name) => Some(auth::Group::lookup(name).map_err(ServeError::Group)?),
        None => None,
    };
    let token =
        match &settings.http_listen {
            Some(addr) => Some(Token::load(settings.http_token_file.as_deref()).map_err(
                |source| ServeError::Token {
                    addr: addr.clone(),
                    source,
                },
            )?),
            None => None,
        };
    if std::env::var_os(auth::TOKEN_ENV).is_some() {
        // Units inherit bosun's environment; a unit running as an unprivileged
        // user must not find the admin token in its /proc/self/environ. This
        // runs at boot, before any unit is spawned.
        std::env::remove_var(auth::TOKEN_ENV);
    }

    let ctx = Arc::new(Ctx {
        handle,
        stopping: CancellationToken::new(),
        keeper,
        budgets: Budgets::new(Limits::current()),
        fleet,
        meter: Default::default(),
    });
    let (conns_tx, conns_rx) = mpsc::channel(1);
    let mut accept_loops = Vec::new();

    let path = &settings.control_socket;
    let unix = bind_socket(path, group.as_ref())?;
    tracing::info!(socket = %path.display(), "control API listening");
    accept_loops.push(tokio::spawn(accept_unix(
        unix,
        Arc::new(group),
        ctx.clone(),
        conns_tx.clone(),
    )));

    if let (Some(addr), Some(token)) = (&settings.http_listen, token) {
        let tcp = TcpListener::bind(addr.as_str())
            .await
            .map_err(|source| ServeError::Listen {
                addr: addr.clone(),
                source,
            })?;
        let local = tcp
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| addr.clone());
        tracing::info!(addr = %local, "control API listening on TCP (bearer token required)");
        accept_loops.push(tokio::spawn(accept_tcp(
            tcp,
            Arc::new(token),
            ctx.clone(),
            conns_tx.clone(),
        )));
    }

    Ok(Api {
        ctx,
        accept_loops,
        conns_tx,
        conns_rx,
        socket: path.clone(),
    })
}

/// Creates the socket: parent directory, stale socket removed, mode and owner.
fn bind_socket(path: &Path, group: Option<&auth::Group>) -> Result<UnixListener, ServeError> {
    let at = || path.to_path_buf();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ServeError::SocketDir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            // A socket file is left behind by a bosun that died (a container
            // restarted with /run on a volume). If something still answers on
            // it, it is not stale: do not steal another bosun's socket.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServeError::SocketInUse(at()));
            }
            std::fs::remove_file(path)
                .map_err(|source| ServeError::StaleSocket { path: at(), source })?;
        }
        Ok(_) => return Err(ServeError::NotASocket(at())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(ServeError::Inspect { path: at(), source }),
    }
    // bind(2) creates the file with 0777 & ~umask; a narrow umask around it
    // means the socket is never, even for an instant, more open than 0600.
    // This runs at boot, before any unit is spawned, so the process-wide umask
    // affects no one else.
    let bound = bosun_core::pid1::with_umask(0o177, || UnixListener::bind(path));
    let listener = bound.map_err(|source| ServeError::Bind { path: at(), source })?;
    let mode = match group {
        Some(g) => {
            nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(g.gid))).map_err(
                |source| ServeError::Chown {
                    path: at(),
                    group: g.name.clone(),
                    source,
                },
            )?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|source| ServeError::Chmod { path: at(), source })?;
    Ok(listener)
}

/// Pauses accepting after an error such as EMFILE, instead of spinning.
async fn accept_error(what: &str, e: std::io::Error) {
    tracing::warn!("control API: accept on {what} failed: {e}");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

async fn accept_unix(
    listener: UnixListener,
    group: Arc<Option<auth::Group>>,
    ctx: Arc<Ctx>,
    conns: mpsc::Sender<()>,
) {
    static ALL_FULL: AtomicU64 = AtomicU64::new(0);
    static REFUSED: AtomicU64 = AtomicU64::new(0);
    let full = format!("{} connections open", ctx.budgets.limits.all);
    loop {
        let Some(all) = permit(&ctx, &ctx.budgets.all, &full, &ALL_FULL).await else {
            return;
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => { accept_error("the control socket", e).await; continue; }
            },
            _ = ctx.stopping.cancelled() => return,
        };
        let peer = Peer::unix(&stream, (*group).as_ref());
        if let Peer::Refused { uid } = peer {
            // Once a minute: a refused peer's flood must not flood the log.
            if once_a_minute(&REFUSED) {
                tracing::warn!(uid, "control socket: refused a connection from uid {uid} (not root, bosun's user, or control_group)");
            }
        }
        match unix_slot(&ctx.budgets, &peer, all) {
            Ok(slot) => spawn_conn(TokioIo::new(stream), peer, ctx.clone(), conns.clone(), slot),
            Err(why) => turn_away(
                |b| stream.try_read(b),
                |b| stream.try_write(b),
                &why.to_string(),
            ),
        }
    }
}

/// The slot of a socket connection: root and bosun's own user only need the
/// overall permit `all`; everyone else also a place in the guests' share, or
/// is turned away (the `Err` says why).
fn unix_slot(budgets: &Budgets, peer: &Peer, all: OwnedSemaphorePermit) -> Result<Slot, Busy> {
    static GUESTS_FULL: AtomicU64 = AtomicU64::new(0);
    if let Peer::Local = peer {
        return Ok(Budgets::owner(all));
    }
    budgets.guest(all).ok_or_else(|| {
        let why = Busy::GuestsFull(budgets.limits.guests);
        if once_a_minute(&GUESTS_FULL) {
            tracing::warn!("control API: {why}; turning new ones away (root keeps its own share)");
        }
        why
    })
}

async fn accept_tcp(
    listener: TcpListener,
    token: Arc<Token>,
    ctx: Arc<Ctx>,
    conns: mpsc::Sender<()>,
) {
    static ALL_FULL: AtomicU64 = AtomicU64::new(0);
    static TCP_FULL: AtomicU64 = AtomicU64::new(0);
    static CLIENT_FULL: AtomicU64 = AtomicU64::new(0);
    let limits = ctx.budgets.limits;
    let tcp_full = format!(
        "{} TCP connections open (the control socket keeps its own share)",
        limits.tcp
    );
    let all_full = format!("{} connections open", limits.all);
    loop {
        // TCP's share first: a full one leaves the socket's share alone.
        let Some(tcp) = permit(&ctx, &ctx.budgets.tcp, &tcp_full, &TCP_FULL).await else {
            return;
        };
        let Some(all) = permit(&ctx, &ctx.budgets.all, &all_full, &ALL_FULL).await else {
            return;
        };
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => { accept_error("TCP", e).await; continue; }
            },
            _ = ctx.stopping.cancelled() => return,
        };
        let Some(slot) = ctx.budgets.tcp_client(all, tcp, addr.ip()) else {
            let why = Busy::ClientFull {
                ip: addr.ip(),
                limit: limits.per_client,
            };
            if once_a_minute(&CLIENT_FULL) {
                tracing::warn!("control API: turning a TCP connection away: {why}");
            }
            turn_away(
                |b| stream.try_read(b),
                |b| stream.try_write(b),
                &why.to_string(),
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        spawn_conn(
            TokioIo::new(StallGuard::new(stream, WRITE_STALL_TIMEOUT)),
            Peer::Tcp(token.clone()),
            ctx.clone(),
            conns.clone(),
            slot,
        );
    }
}

/// Waits for a permit of a connection budget; `None` when bosun stops
/// serving. When the budget is full, says `full` (at most once a minute per
/// budget): past it bosun stops accepting on that transport, and clients wait
/// in the listen backlog until a connection ends (idle ones end after
/// [`HEADER_READ_TIMEOUT`]).
async fn permit(
    ctx: &Ctx,
    budget: &Arc<Semaphore>,
    full: &str,
    last_warning: &AtomicU64,
) -> Option<OwnedSemaphorePermit> {
    if budget.available_permits() == 0 && once_a_minute(last_warning) {
        tracing::warn!("control API: {full}; new ones wait until some end");
    }
    tokio::select! {
        p = budget.clone().acquire_owned() => p.ok(),
        _ = ctx.stopping.cancelled() => None,
    }
}

/// Whether a warning last given at `last` (ms since the epoch) may be given
/// again; if so, `last` becomes now. A flood must not flood the log too.
fn once_a_minute(last: &AtomicU64) -> bool {
    let now = bosun_core::status::now_ms();
    if now.saturating_sub(last.load(Ordering::Relaxed)) < 60_000 {
        return false;
    }
    last.store(now, Ordering::Relaxed);
    true
}

/// Serves one connection until the client closes it or bosun stops.
fn spawn_conn<I>(io: TokioIo<I>, peer: Peer, ctx: Arc<Ctx>, conns: mpsc::Sender<()>, slot: Slot)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let _alive = (conns, slot);
        let peer = Arc::new(peer);
        let svc_ctx = ctx.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let ctx = svc_ctx.clone();
            let peer = peer.clone();
            async move { Ok::<_, Infallible>(dispatch(&ctx, &peer, req).await) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(io, service);
        tokio::pin!(conn);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!("control API connection: {e}");
                }
            }
            _ = ctx.stopping.cancelled() => {
                // Let a request in flight finish; close the connection after it.
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    });
}

/// Authorises the request ([`auth::authorize`]), then routes it.
async fn dispatch(ctx: &Arc<Ctx>, peer: &Peer, req: Request<Incoming>) -> Response<Body> {
    let authorization = req.headers().get(hyper::header::AUTHORIZATION);
    if let Err(denied) = auth::authorize(peer, req.method(), req.uri().path(), authorization) {
        return ApiError::from(denied).response();
    }
    handlers::route(ctx, req).await
}
