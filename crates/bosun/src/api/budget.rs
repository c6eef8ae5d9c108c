//! Connection budgets: how many API connections bosun holds open, and for whom.
//!
//! Every open connection costs PID 1 a file descriptor, and PID 1 out of fds
//! cannot spawn or pipe a unit; so all API connections together stay under a
//! quarter of bosun's fd limit ([`Limits::all`]). Inside that:
//!
//! - TCP may hold at most three quarters ([`Limits::tcp`]): however many
//!   clients flood `http_listen`, the control socket keeps a quarter for
//!   itself, so `bosun ctl health` (a Docker HEALTHCHECK) still gets in.
//! - One TCP client (a source IPv4 address, or an IPv6 /64) may hold at most
//!   [`Limits::per_client`]: one busy or hostile host does not starve the others.
//! - On the socket, everyone but root and bosun's own user (`control_group`
//!   members, refused peers) shares [`Limits::guests`], half the socket's
//!   quarter: a group member's slowloris cannot starve root.
//!
//! A full TCP share stops only TCP's accept loop (its clients wait in its
//! listen backlog); the socket may also use what TCP leaves of the overall
//! budget, and only a full overall budget pauses its accept loop. A client over
//! its own share is accepted and turned away at once with a 503
//! ([`turn_away`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The sizes of the budgets, derived from bosun's fd limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// All API connections, both transports.
    pub all: usize,
    /// TCP connections.
    pub tcp: usize,
    /// TCP connections from one client address.
    pub per_client: usize,
    /// Socket connections from peers other than root and bosun's own user.
    pub guests: usize,
}

impl Limits {
    /// The budgets for a soft `RLIMIT_NOFILE` of `fds`: a quarter of it (16 to
    /// 1024) in all; TCP three quarters of that, one client an eighth of TCP's
    /// (at least 4); guests on the socket an eighth of all (at least 2).
    pub fn for_fd_limit(fds: usize) -> Limits {
        let all = (fds / 4).clamp(16, 1024);
        let tcp = all - all / 4;
        Limits {
            all,
            tcp,
            per_client: (tcp / 8).max(4),
            guests: (all / 8).max(2),
        }
    }

    /// The budgets for bosun's own fd limit.
    pub fn current() -> Limits {
        let soft = bosun_core::pid1::fd_soft_limit()
            .and_then(|s| usize::try_from(s).ok())
            .unwrap_or(1024);
        Limits::for_fd_limit(soft)
    }
}

/// The live budgets, shared by both accept loops.
pub struct Budgets {
    /// Their sizes.
    pub limits: Limits,
    /// One permit per open connection, either transport.
    pub all: Arc<Semaphore>,
    /// One permit per open TCP connection.
    pub tcp: Arc<Semaphore>,
    /// One permit per open socket connection from a guest.
    guests: Arc<Semaphore>,
    /// Open TCP connections by client key (see [`client_key`]); no zero entries.
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// What one open connection holds; dropping it gives its places back.
pub struct Slot {
    _all: OwnedSemaphorePermit,
    _share: Option<OwnedSemaphorePermit>,
    _client: Option<ClientSlot>,
}

/// One connection counted against a TCP client's share.
struct ClientSlot {
    clients: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut map = lock(&self.clients);
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// The map stays consistent even if a holder panicked: every update is a
/// single step.
fn lock(m: &Mutex<HashMap<IpAddr, usize>>) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Budgets {
    /// Fresh budgets of these sizes.
    pub fn new(limits: Limits) -> Budgets {
        Budgets {
            limits,
            all: Arc::new(Semaphore::new(limits.all)),
            tcp: Arc::new(Semaphore::new(limits.tcp)),
            guests: Arc::new(Semaphore::new(limits.guests)),
            clients: Arc::default(),
        }
    }

    /// A socket connection from root or bosun's own user: only the overall
    /// budget, whose permit the accept loop took before accepting.
    pub fn owner(all: OwnedSemaphorePermit) -> Slot {
        Slot {
            _all: all,
            _share: None,
            _client: None,
        }
    }

    /// A socket connection from a guest, if the guests' share has room.
    pub fn guest(&self, all: OwnedSemaphorePermit) -> Option<Slot> {
        let share = self.guests.clone().try_acquire_owned().ok()?;
        Some(Slot {
            _all: all,
            _share: Some(share),
            _client: None,
        })
    }

    /// A TCP connection from `ip`, if that client's share has room.
    pub fn tcp_client(
        &self,
        all: OwnedSemaphorePermit,
        tcp: OwnedSemaphorePermit,
        ip: IpAddr,
    ) -> Option<Slot> {
        let key = client_key(ip);
        {
            let mut map = lock(&self.clients);
            let n = map.entry(key).or_insert(0);
            if *n >= self.limits.per_client {
                return None;
            }
            *n += 1;
        }
        Some(Slot {
            _all: all,
            _share: Some(tcp),
            _client: Some(ClientSlot {
                clients: self.clients.clone(),
                key,
            }),
        })
    }
}

/// Who counts as one TCP client: an IPv4 address (IPv4-mapped IPv6 included),
/// or an IPv6 /64, since one host commonly holds a whole /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Turns away a connection over its share: whatever request bytes already
/// arrived are read (so closing sends FIN, not a reset that would swallow the
/// answer), a 503 with `why` is written if the socket takes it at once, and
/// the connection is dropped. Never waits: the accept loop calls it.
pub fn turn_away(
    try_read: impl Fn(&mut [u8]) -> std::io::Result<usize>,
    try_write: impl Fn(&[u8]) -> std::io::Result<usize>,
    why: &str,
) {
    let mut scratch = [0u8; 4096];
    let _ = try_read(&mut scratch);
    let _ = try_write(refusal(why).as_bytes());
}

/// The 503 that [`turn_away`] sends: a JSON error like every other API error.
fn refusal(why: &str) -> String {
    let reply = crate::protocol::ErrorReply {
        error: why.to_string(),
        results: Vec::new(),
    };
    let body = serde_json::to_string(&reply).unwrap_or_default();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_the_fd_limit_and_keep_a_share_for_the_socket() {
        for fds in [0, 64, 256, 1024, 4096, 20_000, 1 << 20, usize::MAX] {
            let l = Limits::for_fd_limit(fds);
            assert!((16..=1024).contains(&l.all), "{fds}: {l:?}");
            assert!(l.all <= fds.max(64) / 4, "{fds}: {l:?}");
            // TCP never takes the socket's quarter.
            assert!(l.tcp < l.all && l.all - l.tcp >= l.all / 4, "{fds}: {l:?}");
            // Guests never take all of what TCP leaves to the socket.
            assert!(l.guests < l.all - l.tcp, "{fds}: {l:?}");
            assert!(l.per_client >= 4 && l.per_client <= l.tcp, "{fds}: {l:?}");
        }
        assert_eq!(
            Limits::for_fd_limit(20_000),
            Limits {
                all: 1024,
                tcp: 768,
                per_client: 96,
                guests: 128
            }
        );
        assert_eq!(Limits::for_fd_limit(1024).all, 256);
    }

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_slash_64() {
        let k = |s: &str| client_key(s.parse().expect("an address"));
        assert_eq!(k("127.0.0.2"), k("::ffff:127.0.0.2"));
        assert_ne!(k("127.0.0.2"), k("127.0.0.3"));
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:ffff::9"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
    }

    #[test]
    fn a_client_over_its_share_is_refused_until_one_of_its_connections_ends() {
        let b = Budgets::new(Limits::for_fd_limit(256));
        let per = b.limits.per_client;
        let ip: IpAddr = "10.0.0.1".parse().expect("ip");
        let mut open = Vec::new();
        for _ in 0..per {
            let all = b.all.clone().try_acquire_owned().expect("all");
            let tcp = b.tcp.clone().try_acquire_owned().expect("tcp");
            open.push(b.tcp_client(all, tcp, ip).expect("within the share"));
        }
        let all = b.all.clone().try_acquire_owned().expect("all");
        let tcp = b.tcp.clone().try_acquire_owned().expect("tcp");
        assert!(b.tcp_client(all, tcp, ip).is_none(), "over the share");
        // The refused attempt gave its permits back.
        assert_eq!(b.all.available_permits(), b.limits.all - per);
        // Another client is not affected.
        let all = b.all.clone().try_acquire_owned().expect("all");
        let tcp = b.tcp.clone().try_acquire_owned().expect("tcp");
        let other = b.tcp_client(all, tcp, "10.0.0.2".parse().expect("ip"));
        assert!(other.is_some());
        open.pop();
        let all = b.all.clone().try_acquire_owned().expect("all");
        let tcp = b.tcp.clone().try_acquire_owned().expect("tcp");
        assert!(b.tcp_client(all, tcp, ip).is_some(), "room again");
        drop(open);
        drop(other);
        assert!(lock(&b.clients).is_empty(), "no zero entries left");
        assert_eq!(b.all.available_permits(), b.limits.all);
    }

    #[test]
    fn the_refusal_is_a_complete_json_503() {
        let r = refusal("too many");
        let (head, body) = r.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["error"], "too many");
    }
}
