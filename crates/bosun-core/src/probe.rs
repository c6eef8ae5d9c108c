//! Readiness and health probes, and `wait_for` gates. One attempt is
//! [`check`]; callers loop with an interval and bound the whole wait.

use std::path::Path;
use std::time::Duration;

use bosun_config::{Probe, WaitFor};
use bytes::Bytes;
use http_body_util::Empty;
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::reaper::Reaper;
use crate::spawn::{Identity, Spec};

/// What a probe attempt may need from the unit it checks.
pub struct ProbeCtx<'a> {
    /// The unit probed (`exec` probes run as one of its processes: user, cwd, umask).
    pub unit: &'a bosun_config::Unit,
    /// The reaper, for `exec` probes.
    pub reaper: &'a Reaper,
    /// Identity the unit runs as (`exec` probes run as the unit's user).
    pub identity: Option<&'a Identity>,
    /// Environment of the unit.
    pub env: &'a [(String, String)],
    /// Set by the output pump when the `log` regex matched.
    pub log_matched: Option<&'a tokio::sync::watch::Receiver<bool>>,
    /// Set by the notify socket on `READY=1`.
    pub notified: Option<&'a tokio::sync::watch::Receiver<bool>>,
}

/// One probe attempt, bounded by `limit`. `Err` says why it failed, in words.
pub async fn check(probe: &Probe, ctx: &ProbeCtx<'_>, limit: Duration) -> Result<(), String> {
    match probe {
        Probe::Tcp(addr) => tcp(addr, limit).await,
        Probe::Http(url) => http(url, limit).await,
        Probe::Postgres(conninfo) => postgres(conninfo, limit).await,
        Probe::File(path) => file(path),
        Probe::Exec(cmd) => exec(&cmd.argv(), ctx, limit).await,
        Probe::Log(re) => flag(ctx.log_matched, || {
            format!("no output line matched /{re}/ yet")
        }),
        Probe::Notify => flag(ctx.notified, || {
            "no READY=1 on $NOTIFY_SOCKET yet".to_string()
        }),
    }
}

/// One attempt at a `wait_for` gate.
pub async fn check_gate(gate: &WaitFor, limit: Duration) -> Result<(), String> {
    match gate {
        WaitFor::Tcp(addr) => tcp(addr, limit).await,
        WaitFor::Http(url) => http(url, limit).await,
        WaitFor::Postgres(url) => postgres(url, limit).await,
        WaitFor::File(path) => file(path),
    }
}

fn flag(
    rx: Option<&tokio::sync::watch::Receiver<bool>>,
    why: impl Fn() -> String,
) -> Result<(), String> {
    match rx {
        Some(rx) if *rx.borrow() => Ok(()),
        _ => Err(why()),
    }
}

fn file(path: &Path) -> Result<(), String> {
    if path.exists() {
        Ok(())
    } else {
        Err(format!("{} does not exist yet", path.display()))
    }
}

async fn tcp(addr: &str, limit: Duration) -> Result<(), String> {
    match timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("connect to {addr}: {e}")),
        Err(_) => Err(format!("connect to {addr}: no answer within {limit:?}")),
    }
}

/// Splits `http://host:port/path` into (`host:port`, `host`, `/path`).
fn split_http_url(url: &str) -> Result<(String, String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
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

async fn http(url: &str, limit: Duration) -> Result<(), String> {
    let (addr, host, path) = split_http_url(url)?;
    let shown = bosun_config::redact::redact_url(url);
    let attempt = async {
        let stream = TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("GET {shown}: {e}"))?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(io)
            .await
            .map_err(|e| format!("GET {shown}: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = hyper::Request::get(path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "bosun-probe")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("GET {shown}: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("GET {shown}: {e}"))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("GET {shown}: HTTP {}", resp.status()))
        }
    };
    match timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("GET {shown}: no answer within {limit:?}")),
    }
}

async fn postgres(conninfo: &str, limit: Duration) -> Result<(), String> {
    let attempt = async {
        let (client, conn) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("postgres connect: {e}"))?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        let r = client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| format!("postgres SELECT 1: {e}"));
        drop(client);
        let _ = task.await;
        r
    };
    match timeout(limit, attempt).await {
        Ok(r) => r,
        Err(_) => Err(format!("postgres: no answer within {limit:?}")),
    }
}

async fn exec(argv: &[String], ctx: &ProbeCtx<'_>, limit: Duration) -> Result<(), String> {
    let spec = Spec::for_unit(ctx.unit, ctx.identity, ctx.env.to_vec(), argv.to_vec());
    let (child, exit) = ctx
        .reaper
        .spawn(&mut spec.command())
        .map_err(|e| format!("cannot run {}: {e}", argv[0]))?;
    let pid = child.id() as i32;
    match timeout(limit, exit).await {
        Ok(Ok(e)) if e.success() => Ok(()),
        Ok(Ok(e)) => Err(format!("{} failed ({e})", argv[0])),
        Ok(Err(_)) => Err(format!("{}: exit status lost", argv[0])),
        Err(_) => {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            Err(format!("{} did not finish within {limit:?}", argv[0]))
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
