//! Who may do what on the API: the whole authorization decision, here and
//! nowhere else.
//!
//! - [`Peer::classify`] sorts a unix-socket peer by its SO_PEERCRED: root and
//!   bosun's own user ([`Peer::Local`]), members of `control_group`
//!   ([`Peer::Member`], the same rights), everyone else ([`Peer::Refused`]).
//!   A TCP client is [`Peer::Tcp`], with the token it must show.
//! - [`authorize`] decides each request from the peer, the method and path and
//!   the `Authorization` header: a refused socket peer gets 403 on every path;
//!   on TCP every path but the open ones ([`is_open_on_tcp`]) needs
//!   `Authorization: Bearer <token>` (401 otherwise), compared in constant time.
//!
//! Both are pure: what the system databases and /proc say about a peer comes
//! through [`PeerFacts`], so the table test at the bottom runs without root.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::HeaderValue;
use hyper::Method;
use tokio::net::UnixStream;

use crate::protocol::paths;
pub use crate::protocol::TOKEN_ENV;

/// Who is on the other end of a connection.
pub enum Peer {
    /// The unix socket, from root or bosun's own user.
    Local,
    /// The unix socket, from a member of `control_group`: the same rights as
    /// [`Peer::Local`], but a smaller connection budget (see `budget`).
    Member,
    /// The unix socket, from a user who is not allowed: every request gets 403.
    Refused {
        /// The peer's uid, for the message and the log (`u32::MAX`: the
        /// kernel gave no credentials).
        uid: u32,
    },
    /// TCP: requests need the token (but for the open paths).
    Tcp(Arc<Token>),
}

/// A socket peer's credentials, as SO_PEERCRED gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cred {
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
    /// Its pid, when it is in bosun's pid namespace.
    pub pid: Option<i32>,
}

/// What the system knows about a peer beyond its credentials, asked only when
/// the decision needs it (a root peer costs no lookup).
pub trait PeerFacts {
    /// The name of user `uid` in the user database.
    fn user_name(&self, uid: u32) -> Option<String>;
    /// The supplementary groups of process `pid` (from /proc/PID/status).
    fn process_groups(&self, pid: i32) -> Option<Vec<u32>>;
}

/// The real system: the user database and /proc.
struct System;

impl PeerFacts for System {
    fn user_name(&self, uid: u32) -> Option<String> {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    }

    fn process_groups(&self, pid: i32) -> Option<Vec<u32>> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find_map(|l| l.strip_prefix("Groups:"))?;
        Some(
            line.split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect(),
        )
    }
}

impl Peer {
    /// Classifies a unix-socket peer by SO_PEERCRED.
    pub fn unix(stream: &UnixStream, group: Option<&Group>) -> Peer {
        let cred = stream.peer_cred().ok().map(|c| Cred {
            uid: c.uid(),
            gid: c.gid(),
            pid: c.pid(),
        });
        Peer::classify(cred, nix::unistd::geteuid().as_raw(), group, &System)
    }

    /// The socket rule: root, bosun's own user (`own_uid`) and members of
    /// `control_group` are allowed; no credentials (should not happen on
    /// Linux) is refused rather than guessed.
    pub fn classify(
        cred: Option<Cred>,
        own_uid: u32,
        group: Option<&Group>,
        facts: &dyn PeerFacts,
    ) -> Peer {
        let Some(cred) = cred else {
            return Peer::Refused { uid: u32::MAX };
        };
        if cred.uid == 0 || cred.uid == own_uid {
            return Peer::Local;
        }
        match group {
            Some(g) if g.has_member(&cred, facts) => Peer::Member,
            _ => Peer::Refused { uid: cred.uid },
        }
    }
}

/// Why a request was refused; the API answers 403 or 401 with these words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// A socket peer that is not allowed (403).
    #[error(
        "uid {uid} may not use the control socket (allowed: root, bosun's user, control_group)"
    )]
    Forbidden {
        /// The peer's uid.
        uid: u32,
    },
    /// TCP without a bearer token on a guarded path (401).
    #[error("this path needs Authorization: Bearer <token> (http_token_file / BOSUN_HTTP_TOKEN)")]
    NoToken,
    /// TCP with a token that is not bosun's (401).
    #[error("wrong token")]
    WrongToken,
}

/// The paths served on TCP without the token: probes and scrapers have no
/// token, and the page shell holds no data (its script fetches `/v1/status`
/// with one). Only GET and HEAD, only these exact paths.
pub fn is_open_on_tcp(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && [paths::HEALTH, paths::METRICS, paths::PAGE].contains(&path)
}

/// The decision for one request: `Ok` to serve it, else why not.
pub fn authorize(
    peer: &Peer,
    method: &Method,
    path: &str,
    authorization: Option<&HeaderValue>,
) -> Result<(), Denied> {
    match peer {
        Peer::Local | Peer::Member => Ok(()),
        Peer::Refused { uid } => Err(Denied::Forbidden { uid: *uid }),
        Peer::Tcp(_) if is_open_on_tcp(method, path) => Ok(()),
        Peer::Tcp(token) => token.check(authorization),
    }
}

/// Why the `control_group` or the TCP token cannot be set up (bosun then
/// refuses to start).
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// `control_group` names no group.
    #[error("control_group = {0:?}: no such group")]
    NoSuchGroup(String),
    /// The group database could not be read.
    #[error("control_group = {name:?}: cannot look it up: {source}")]
    GroupLookup {
        /// The group as configured.
        name: String,
        /// What the lookup said.
        source: nix::Error,
    },
    /// `http_token_file` cannot be read.
    #[error("the token file {} cannot be read ({source})", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// Neither `http_token_file` nor the variable is set.
    #[error("no token: set http_token_file or {TOKEN_ENV}")]
    NoToken,
    /// The variable holds bytes that are not UTF-8.
    #[error("{TOKEN_ENV} is not valid UTF-8: a token is text (HTTP headers carry it)")]
    TokenNotUtf8,
    /// The token file holds only blanks.
    #[error("the token file {} is empty", .0.display())]
    EmptyTokenFile(PathBuf),
    /// The variable holds only blanks.
    #[error("{TOKEN_ENV} is empty")]
    EmptyTokenVar,
}

/// The `control_group`, resolved once at start.
pub struct Group {
    /// Its name.
    pub name: String,
    /// Its id.
    pub gid: u32,
    /// Names of its supplementary members (from the group database).
    members: Vec<String>,
}

impl Group {
    /// Resolves a group by name (or numeric id).
    pub fn lookup(name: &str) -> Result<Group, AuthSetupError> {
        let found = match name.parse::<u32>() {
            Ok(gid) => nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)),
            Err(_) => nix::unistd::Group::from_name(name),
        };
        match found {
            Ok(Some(g)) => Ok(Group {
                name: g.name,
                gid: g.gid.as_raw(),
                members: g.mem,
            }),
            Ok(None) => Err(AuthSetupError::NoSuchGroup(name.to_string())),
            Err(source) => Err(AuthSetupError::GroupLookup {
                name: name.to_string(),
                source,
            }),
        }
    }

    /// Whether a peer belongs to the group: its primary gid, its user listed as
    /// a member, or (when the peer is in bosun's pid namespace, so its pid is
    /// known) the supplementary groups of its process.
    fn has_member(&self, cred: &Cred, facts: &dyn PeerFacts) -> bool {
        if cred.gid == self.gid {
            return true;
        }
        if facts
            .user_name(cred.uid)
            .is_some_and(|user| self.members.contains(&user))
        {
            return true;
        }
        cred.pid
            .filter(|&p| p > 0)
            .and_then(|pid| facts.process_groups(pid))
            .is_some_and(|groups| groups.contains(&self.gid))
    }
}

/// The TCP bearer token.
pub struct Token(Vec<u8>);

impl Token {
    /// Reads the token from `file`, else from `$BOSUN_HTTP_TOKEN`; trimmed,
    /// never empty.
    pub fn load(file: Option<&Path>) -> Result<Token, AuthSetupError> {
        let raw = match file {
            Some(p) => std::fs::read_to_string(p).map_err(|source| AuthSetupError::TokenFile {
                path: p.to_path_buf(),
                source,
            })?,
            None => std::env::var(TOKEN_ENV).map_err(|e| match e {
                std::env::VarError::NotPresent => AuthSetupError::NoToken,
                std::env::VarError::NotUnicode(_) => AuthSetupError::TokenNotUtf8,
            })?,
        };
        let t = raw.trim();
        if t.is_empty() {
            return Err(match file {
                Some(p) => AuthSetupError::EmptyTokenFile(p.to_path_buf()),
                None => AuthSetupError::EmptyTokenVar,
            });
        }
        Ok(Token(t.as_bytes().to_vec()))
    }

    /// Checks `Authorization: Bearer <token>` (the scheme in any case, blanks
    /// around the token ignored).
    fn check(&self, authorization: Option<&HeaderValue>) -> Result<(), Denied> {
        let given = authorization
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        match given {
            None => Err(Denied::NoToken),
            Some(t) if constant_time_eq(t.as_bytes(), &self.0) => Ok(()),
            Some(_) => Err(Denied::WrongToken),
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths, so
/// that a wrong token's timing tells nothing about how much of it was right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xff);
        diff |= usize::from(x ^ y);
    }
    // Keep the optimiser from short-circuiting the loop above.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
        // Lengths differing by a multiple of 256 must not compare equal.
        assert!(!constant_time_eq(&[0u8; 256], &[]));
    }

    /// bosun's own uid in the table (not root, to tell the two rules apart).
    const OWN: u32 = 1000;
    /// The `control_group` of the table.
    const GID: u32 = 100;
    const TOKEN: &str = "s3cret-token";

    /// A fake user database and /proc: uid 2001 is "listed" (a named member of
    /// the group); pid 42 has the group as a supplementary one.
    struct Fake;

    impl PeerFacts for Fake {
        fn user_name(&self, uid: u32) -> Option<String> {
            match uid {
                2001 => Some("listed".into()),
                2002 => Some("stranger".into()),
                _ => None,
            }
        }
        fn process_groups(&self, pid: i32) -> Option<Vec<u32>> {
            (pid == 42).then(|| vec![27, GID])
        }
    }

    fn group() -> Group {
        Group {
            name: "users".into(),
            gid: GID,
            members: vec!["listed".into()],
        }
    }

    fn cred(uid: u32, gid: u32, pid: Option<i32>) -> Option<Cred> {
        Some(Cred { uid, gid, pid })
    }

    /// The answer a caller gets on a path, as the table spells it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Want {
        Allow,
        Forbidden(u32),
        NoToken,
        WrongToken,
    }

    fn outcome(r: Result<(), Denied>) -> Want {
        match r {
            Ok(()) => Want::Allow,
            Err(Denied::Forbidden { uid }) => Want::Forbidden(uid),
            Err(Denied::NoToken) => Want::NoToken,
            Err(Denied::WrongToken) => Want::WrongToken,
        }
    }

    /// Every path and method the API knows, and some it does not.
    const OPEN: &[(&str, &str)] = &[
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/health"),
        ("HEAD", "/health"),
        ("GET", "/metrics"),
        ("HEAD", "/metrics"),
    ];
    const GUARDED: &[(&str, &str)] = &[
        ("GET", "/v1/status"),
        ("HEAD", "/v1/status"),
        ("POST", "/v1/units/web/start"),
        ("POST", "/v1/units/web/stop"),
        ("POST", "/v1/units/web/restart"),
        ("POST", "/v1/units/web/signal"),
        ("POST", "/v1/units/all/restart"),
        ("POST", "/v1/units/role:web/stop"),
        ("GET", "/v1/units/web/logs"),
        ("GET", "/v1/units/all/logs"),
        ("GET", "/v1/logs"),
        ("POST", "/v1/shutdown"),
        ("POST", "/v1/reload"),
        ("GET", "/v1/snapshots"),
        ("POST", "/v1/backup"),
        // The open paths with another method, or another spelling.
        ("POST", "/health"),
        ("PUT", "/metrics"),
        ("DELETE", "/"),
        ("OPTIONS", "/health"),
        ("GET", "/health/"),
        ("GET", "//health"),
        ("GET", "/HEALTH"),
        ("GET", "/metrics/x"),
        ("GET", "/v1/health"),
        // Unknown paths are guarded too: on TCP a stranger learns nothing, not even a 404.
        ("GET", "/v1/nothing"),
        ("GET", "/status_page.html"),
    ];

    #[test]
    fn authorization_table() {
        let g = group();
        let token = Arc::new(Token(TOKEN.as_bytes().to_vec()));
        let socket = |c: Option<Cred>, group: Option<&Group>| Peer::classify(c, OWN, group, &Fake);
        let tcp = || Peer::Tcp(token.clone());
        use Want::*;
        // (who, peer, Authorization header, on the open paths, on the guarded ones)
        let rows: Vec<(&str, Peer, Option<&str>, Want, Want)> = vec![
            (
                "socket: root",
                socket(cred(0, 0, Some(7)), None),
                None,
                Allow,
                Allow,
            ),
            (
                "socket: bosun's user",
                socket(cred(OWN, OWN, None), None),
                None,
                Allow,
                Allow,
            ),
            (
                "socket: root, with a group set",
                socket(cred(0, 0, None), Some(&g)),
                None,
                Allow,
                Allow,
            ),
            (
                "socket: member by primary gid",
                socket(cred(3000, GID, None), Some(&g)),
                None,
                Allow,
                Allow,
            ),
            (
                "socket: member by the group's list",
                socket(cred(2001, 5, None), Some(&g)),
                None,
                Allow,
                Allow,
            ),
            (
                "socket: member by its process's groups",
                socket(cred(3001, 5, Some(42)), Some(&g)),
                None,
                Allow,
                Allow,
            ),
            (
                "socket: a stranger",
                socket(cred(2002, 5, Some(43)), Some(&g)),
                None,
                Forbidden(2002),
                Forbidden(2002),
            ),
            (
                "socket: a would-be member, no group set",
                socket(cred(3000, GID, Some(42)), None),
                None,
                Forbidden(3000),
                Forbidden(3000),
            ),
            (
                "socket: nobody",
                socket(cred(65534, 65534, None), None),
                None,
                Forbidden(65534),
                Forbidden(65534),
            ),
            (
                "socket: no credentials",
                socket(None, Some(&g)),
                None,
                Forbidden(u32::MAX),
                Forbidden(u32::MAX),
            ),
            // A token means nothing on the socket.
            (
                "socket: a stranger with the token",
                socket(cred(2002, 5, None), Some(&g)),
                Some("Bearer s3cret-token"),
                Forbidden(2002),
                Forbidden(2002),
            ),
            ("tcp: no header", tcp(), None, Allow, NoToken),
            (
                "tcp: the token",
                tcp(),
                Some("Bearer s3cret-token"),
                Allow,
                Allow,
            ),
            (
                "tcp: the token, scheme in lower case",
                tcp(),
                Some("bearer s3cret-token"),
                Allow,
                Allow,
            ),
            (
                "tcp: the token with blanks",
                tcp(),
                Some("Bearer   s3cret-token  "),
                Allow,
                Allow,
            ),
            (
                "tcp: a wrong token",
                tcp(),
                Some("Bearer wrong"),
                Allow,
                WrongToken,
            ),
            (
                "tcp: a prefix of the token",
                tcp(),
                Some("Bearer s3cret-toke"),
                Allow,
                WrongToken,
            ),
            (
                "tcp: the token and more",
                tcp(),
                Some("Bearer s3cret-tokenX"),
                Allow,
                WrongToken,
            ),
            (
                "tcp: an empty token",
                tcp(),
                Some("Bearer "),
                Allow,
                WrongToken,
            ),
            (
                "tcp: another scheme",
                tcp(),
                Some("Basic s3cret-token"),
                Allow,
                NoToken,
            ),
            (
                "tcp: the bare token",
                tcp(),
                Some("s3cret-token"),
                Allow,
                NoToken,
            ),
        ];
        let mut checked = 0;
        for (who, peer, header, on_open, on_guarded) in &rows {
            let header = header.map(|h| HeaderValue::from_str(h).expect("a header value"));
            for (paths, want) in [(OPEN, on_open), (GUARDED, on_guarded)] {
                for (method, path) in paths {
                    let method = Method::from_bytes(method.as_bytes()).expect("a method");
                    let got = outcome(authorize(peer, &method, path, header.as_ref()));
                    assert_eq!(got, *want, "{who}: {method} {path}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, rows.len() * (OPEN.len() + GUARDED.len()));
        // A header that is not text is no token.
        let bytes = HeaderValue::from_bytes(b"Bearer \xff").expect("opaque header");
        assert_eq!(
            outcome(authorize(&tcp(), &Method::GET, "/v1/status", Some(&bytes))),
            NoToken
        );
    }

    #[test]
    fn open_paths_are_only_probes_and_the_page() {
        assert!(is_open_on_tcp(&Method::GET, "/health"));
        assert!(is_open_on_tcp(&Method::HEAD, "/metrics"));
        assert!(is_open_on_tcp(&Method::GET, "/"));
        assert!(!is_open_on_tcp(&Method::POST, "/health"));
        assert!(!is_open_on_tcp(&Method::GET, "/v1/status"));
        assert!(!is_open_on_tcp(&Method::GET, "/health/"));
    }
}
