//! Readiness and health probes, and `wait_for` gates. One attempt is
//! [`check`]; callers loop with an interval and bound the whole wait.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bosun_config::{Probe, WaitFor};
use bytes::Bytes;
use http_body_util::Empty;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::reaper::{Exit, Reaper};
use crate::spawn::{Identity, Spec};

/// Why one probe or gate attempt failed, in words for `ctl status` and the log.
/// URLs in it are shown with their credentials redacted.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// `log`: no output line matched the regex yet.
    #[error("no output line matched /{0}/ yet")]
    NoLogMatch(String),
    /// `notify`: the unit has not sent `READY=1` yet.
    #[error("no READY=1 on $NOTIFY_SOCKET yet")]
    NotNotified,
    /// `file`: the path does not exist.
    #[error("{} does not exist yet", .0.display())]
    NoFile(PathBuf),
    /// `tcp`: the connection failed.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// `tcp`: no answer in time.
    #[error("connect to {addr}: no answer within {limit:?}")]
    ConnectTimeout {
        /// `host:port`.
        addr: String,
        /// The attempt's bound.
        limit: Duration,
    },
    /// `http`: not an `http://` URL.
    #[error("{0}: only http:// URLs are supported")]
    NotHttp(String),
    /// `http`: the request failed before an answer.
    #[error("GET {url}: {detail}")]
    Http {
        /// The URL, redacted.
        url: String,
        /// What failed (connect, handshake, send).
        detail: String,
    },
    /// `http`: an answer that is not 2xx.
    #[error("GET {url}: HTTP {status}")]
    HttpStatus {
        /// The URL, redacted.
        url: String,
        /// The answer's status.
        status: hyper::StatusCode,
    },
    /// `http`: no answer in time.
    #[error("GET {url}: no answer within {limit:?}")]
    HttpTimeout {
        /// The URL, redacted.
        url: String,
        /// The attempt's bound.
        limit: Duration,
    },
    /// `postgres`: the connection failed.
    #[error("postgres connect: {0}")]
    PostgresConnect(tokio_postgres::Error),
    /// `postgres`: `SELECT 1` failed.
    #[error("postgres SELECT 1: {0}")]
    PostgresQuery(tokio_postgres::Error),
    /// `postgres`: no answer in time.
    #[error("postgres: no answer within {0:?}")]
    PostgresTimeout(Duration),
    /// `exec`: the command could not be started.
    #[error("cannot run {program}: {source}")]
    ExecSpawn {
        /// The program (`argv[0]`).
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// `exec`: the command exited non-zero or was killed.
    #[error("{program} failed ({exit})")]
    ExecFailed {
        /// The program (`argv[0]`).
        program: String,
        /// How it ended.
        exit: Exit,
    },
    /// `exec`: the reaper lost the exit status (bosun is exiting).
    #[error("{0}: exit status lost")]
    ExecLost(String),
    /// `exec`: the command did not finish in time (its group was SIGKILLed).
    #[error("{program} did not finish within {limit:?}")]
    ExecTimeout {
        /// The program (`argv[0]`).
        program: String,
        /// The attempt's bound.
        limit: Duration,
    },
}

/// What a probe attempt may need from the unit it checks.
pub struct ProbeCtx<'a> {
    /// The unit probed (`exec` probes run as one of its processes: user, cwd, umask).
    pub unit: &'a bosun_config::Unit,
    /// The reaper, for `exec` probes.
    pub reaper: &'a Reaper,
    /// Identity the unit runs as (`exec` probes run as the unit's user).
    pub identity: Option<&'a Identity>,
    /// Environment of the unit.
    pub env: &'a [(String, std::ffi::OsString)],
    /// Set by the output pump when the `log` regex matched.
    pub log_matched: Option<&'a tokio::sync::watch::Receiver<bool>>,
    /// Set by the notify socket on `READY=1`.
    pub notified: Option<&'a tokio::sync::watch::Receiver<bool>>,
}

/// One probe attempt, bounded by `limit`. `Err` says why it failed, in words.
pub async fn check(probe: &Probe, ctx: &ProbeCtx<'_>, limit: Duration) -> Result<(), ProbeError> {
    match probe {
        Probe::Tcp(addr) => tcp(addr, limit).await,
        Probe::Http(url) => http(url, limit).await,
        Probe::Postgres(conninfo) => postgres(conninfo, limit).await,
        Probe::File(path) => file(path),
        Probe::Exec(cmd) => exec(&cmd.argv(), ctx, limit).await,
        Probe::Log(re) => flag(ctx.log_matched, || ProbeError::NoLogMatch(re.clone())),
        Probe::Notify => flag(ctx.notified, || ProbeError::NotNotified),
    }
}

/// One attempt at a `wait_for` gate.
pub async fn check_gate(gate: &WaitFor, limit: Duration) -> Result<(), ProbeError> {
    match gate {
        WaitFor::Tcp(addr) => tcp(addr, limit).await,
        WaitFor::Http(url) => http(url, limit).await,
        WaitFor::Postgres(url) => postgres(url, limit).await,
        WaitFor::File(path) => file(path),
    }
}

fn flag(
    rx: Option<&tokio::sync::watch::Receiver<bool>>,
    why: impl Fn() -> ProbeError,
) -> Result<(), ProbeError> {
    match rx {
        Some(rx) if *rx.borrow() => Ok(()),
        _ => Err(why()),
    }
}

fn file(path: &Path) -> Result<(), ProbeError> {
    if path.exists() {
        Ok(())
    } else {
        Err(ProbeError::NoFile(path.to_path_buf()))
    }
}

async fn tcp(addr: &str, limit: Duration) -> Result<(), ProbeError> {
    match timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(ProbeError::Connect {
            addr: addr.to_string(),
            source,
        }),
        Err(_) => Err(ProbeError::ConnectTimeout {
            addr: addr.to_string(),
            limit,
        }),
    }
}

/// Splits `http://host:port/path` into (`host:port`, `host`, `/path`); credentials
/// in the URL are dropped (the webhook of `[hooks]` shares it).
pub fn split_http_url(url: &str) -> Result<(String, String, String), ProbeError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| ProbeError::NotHttp(url.to_string()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    // Credentials in the URL are never sent nor logged here.
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let addr = if authority
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((addr, authority.to_string(), path.to_string()))
}

async fn http(url: &str, limit: Duration) -> Result<(), ProbeError> {
    let (addr, host, path) = split_http_url(url)?;
    let shown = bosun_config::redact::redact_url(url);
    let failed = |detail: &dyn std::fmt::Display| ProbeError::Http {
        url: shown.clone(),
        detail: detail.to_string(),
    };
    let attempt = async {
        let stream = TcpStream::connect(&addr).await.map_err(|e| failed(&e))?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
            .await
            .map_err(|e| failed(&e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "bosun-probe")
            .body(Empty::<Bytes>::new())
            .map_err(|e| failed(&e))?;
        let resp = sender.send_request(req).await.map_err(|e| failed(&e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ProbeError::HttpStatus {
                url: shown.clone(),
                status: resp.status(),
            })
        }
    };
    match timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::HttpTimeout {
            url: shown.clone(),
            limit,
        }),
    }
}

async fn postgres(conninfo: &str, limit: Duration) -> Result<(), ProbeError> {
    let attempt = async {
        let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
            .await
            .map_err(ProbeError::PostgresConnect)?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        let r = client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(ProbeError::PostgresQuery);
        drop(client);
        let _ = task.await;
        r
    };
    match timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::PostgresTimeout(limit)),
    }
}

async fn exec(argv: &[String], ctx: &ProbeCtx<'_>, limit: Duration) -> Result<(), ProbeError> {
    let spec = Spec::for_unit(ctx.unit, ctx.identity, ctx.env.to_vec(), argv.to_vec());
    let (child, exit) =
        ctx.reaper
            .spawn(&mut spec.command())
            .map_err(|source| ProbeError::ExecSpawn {
                program: argv[0].clone(),
                source,
            })?;
    let pid = child.id() as i32;
    let program = argv[0].clone();
    match timeout(limit, exit).await {
        Ok(Ok(e)) if e.success() => Ok(()),
        Ok(Ok(exit)) => Err(ProbeError::ExecFailed { program, exit }),
        Ok(Err(_)) => Err(ProbeError::ExecLost(program)),
        Err(_) => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            Err(ProbeError::ExecTimeout { program, limit })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_http_url;

    #[test]
    fn http_urls_split_into_address_host_and_path() {
        assert_eq!(
            split_http_url("http://127.0.0.1:8080/health").unwrap(),
            (
                "127.0.0.1:8080".into(),
                "127.0.0.1:8080".into(),
                "/health".into()
            )
        );
        assert_eq!(
            split_http_url("http://web").unwrap(),
            ("web:80".into(), "web".into(), "/".into())
        );
        assert_eq!(
            split_http_url("http://u:p@web:81/x?y=1").unwrap().0,
            "web:81".to_string()
        );
        assert!(split_http_url("https://x").is_err());
    }
}
