//! Who may talk to the API: peer credentials on the unix socket, a bearer
//! token on TCP.

use std::path::Path;

use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Response, StatusCode};
use tokio::net::UnixStream;

use super::body::Body;
use super::handlers;

/// The env var that may hold the TCP token when `http_token_file` is unset.
pub const TOKEN_ENV: &str = "BOSUN_HTTP_TOKEN";

/// Who is on the other end of a connection.
pub enum Peer {
    /// The unix socket, from root or bosun's own user.
    Local,
    /// The unix socket, from a member of `control_group`: the same rights as
    /// [`Peer::Local`], but a smaller connection budget (see `budget`).
    Member,
    /// The unix socket, from a user who is not allowed: every request gets 403.
    Refused {
        /// The peer's uid, for the message and the log.
        uid: u32,
    },
    /// TCP: requests need the token (but for the open paths).
    Tcp(std::sync::Arc<Token>),
}

impl Peer {
    /// Classifies a unix-socket peer by SO_PEERCRED: root, bosun's own user and
    /// members of `control_group` are allowed.
    pub fn unix(stream: &UnixStream, group: Option<&Group>) -> Peer {
        let Ok(cred) = stream.peer_cred() else {
            // No credentials (should not happen on Linux): refuse rather than guess.
            return Peer::Refused { uid: u32::MAX };
        };
        let uid = cred.uid();
        if uid == 0 || uid == nix::unistd::geteuid().as_raw() {
            return Peer::Local;
        }
        if let Some(g) = group {
            if g.has_member(uid, cred.gid(), cred.pid()) {
                return Peer::Member;
            }
        }
        Peer::Refused { uid }
    }
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
    pub fn lookup(name: &str) -> Result<Group, String> {
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
            Ok(None) => Err(format!("control_group = {name:?}: no such group")),
            Err(e) => Err(format!("control_group = {name:?}: cannot look it up: {e}")),
        }
    }

    /// Whether a peer belongs to the group: its primary gid, its user listed as
    /// a member, or (when the peer is in bosun's pid namespace, so its pid is
    /// known) the supplementary groups of its process.
    fn has_member(&self, uid: u32, gid: u32, pid: Option<i32>) -> bool {
        if gid == self.gid {
            return true;
        }
        if let Ok(Some(user)) = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
            if self.members.contains(&user.name) {
                return true;
            }
        }
        let Some(pid) = pid.filter(|&p| p > 0) else {
            return false;
        };
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            return false;
        };
        status
            .lines()
            .find_map(|l| l.strip_prefix("Groups:"))
            .is_some_and(|g| g.split_whitespace().any(|x| x.parse() == Ok(self.gid)))
    }
}

/// The TCP bearer token.
pub struct Token(Vec<u8>);

impl Token {
    /// Reads the token from `file`, else from `$BOSUN_HTTP_TOKEN`; trimmed,
    /// never empty.
    pub fn load(file: Option<&Path>) -> Result<Token, String> {
        let raw = match file {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| format!("the token file {} cannot be read ({e})", p.display()))?,
            None => std::env::var(TOKEN_ENV).map_err(|e| match e {
                std::env::VarError::NotPresent => {
                    format!("no token: set http_token_file or {TOKEN_ENV}")
                }
                std::env::VarError::NotUnicode(_) => {
                    format!(
                        "{TOKEN_ENV} is not valid UTF-8: a token is text (HTTP headers carry it)"
                    )
                }
            })?,
        };
        let t = raw.trim();
        if t.is_empty() {
            return Err(match file {
                Some(p) => format!("the token file {} is empty", p.display()),
                None => format!("{TOKEN_ENV} is empty"),
            });
        }
        Ok(Token(t.as_bytes().to_vec()))
    }

    /// Checks `Authorization: Bearer <token>`; the error says what was wrong.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        let given = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        match given {
            None => Err("this path needs Authorization: Bearer <token> (http_token_file / BOSUN_HTTP_TOKEN)"),
            Some(t) if constant_time_eq(t.as_bytes(), &self.0) => Ok(()),
            Some(_) => Err("wrong token"),
        }
    }
}

/// The 401 for a failed [`Token::check`].
pub fn unauthorized(why: &str) -> Response<Body> {
    let mut resp = handlers::error(StatusCode::UNAUTHORIZED, why.to_string());
    resp.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
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
}
