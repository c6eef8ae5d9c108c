//! Keeping secrets out of output: which env keys hold secrets, and how to blank
//! credentials in URLs and PostgreSQL connection strings. Used by `bosun check`
//! ([`crate::Config::to_redacted_toml`]), by status output and by probe messages.

/// What replaces a secret.
pub const MASK: &str = "***";

/// Whether an env key names a secret: it contains `KEY`, `SECRET`, `PASSWORD`,
/// `PASSWD` or `TOKEN`, in any case (`AWS_SECRET_ACCESS_KEY`, `db_password`).
pub fn is_secret_key(key: &str) -> bool {
    let up = key.to_ascii_uppercase();
    ["KEY", "SECRET", "PASSWORD", "PASSWD", "TOKEN"]
        .iter()
        .any(|w| up.contains(w))
}

/// Blanks credentials in `s`, wherever they occur in it:
///
/// - the password of every `scheme://user:password@host…` (→ `scheme://user:***@host…`);
/// - the value of every `password=…` (PostgreSQL key/value conninfo
///   `host=db password='x y'`, or a URL query `?password=…`).
///
/// Text without credentials comes back unchanged.
pub fn redact_url(s: &str) -> String {
    redact_kv_password(&redact_userinfo(s))
}

fn redact_userinfo(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', '?', '#' or whitespace.
        let end = tail
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon + 1]);
                        out.push_str(MASK);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn redact_kv_password(s: &str) -> String {
    const KEY: &str = "password";
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(off) = lower[i..].find(KEY) {
        let k = i + off;
        // A whole key: not the tail of a longer word (`pgpassword=` stays a key too,
        // since PGPASSWORD=… in a command line is just as secret).
        let after_key = k + KEY.len();
        let mut j = after_key;
        let b = s.as_bytes();
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if j >= b.len() || b[j] != b'=' {
            out.push_str(&s[i..after_key]);
            i = after_key;
            continue;
        }
        j += 1;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        out.push_str(&s[i..j]);
        let end = if j < b.len() && b[j] == b'\'' {
            // Quoted conninfo value, with \' and \\ escapes.
            let mut e = j + 1;
            while e < b.len() && b[e] != b'\'' {
                e += if b[e] == b'\\' { 2 } else { 1 };
            }
            (e + 1).min(b.len())
        } else {
            s[j..]
                .find(|c: char| c.is_whitespace() || c == '&' || c == '"' || c == ';')
                .map(|e| j + e)
                .unwrap_or(s.len())
        };
        if end > j {
            out.push_str(MASK);
        }
        i = end;
    }
    out.push_str(&s[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        for k in [
            "AWS_SECRET_ACCESS_KEY",
            "db_password",
            "DBPASSWD",
            "GITHUB_TOKEN",
            "apikey",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["PGDATA", "HOME", "DBHOST", "USER"] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            redact_url("postgres://u:hunter2@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redact_url("s3://bucket/prefix"), "s3://bucket/prefix");
        assert_eq!(redact_url("http://user@host/"), "http://user@host/");
        assert_eq!(redact_url("redis://:pw@r:6379"), "redis://:***@r:6379");
        assert_eq!(
            redact_url("http://a:b@x/?q=1 then https://c:d@y"),
            "http://a:***@x/?q=1 then https://c:***@y"
        );
        assert_eq!(redact_url("p://u:p@ss@h/"), "p://u:***@h/");
        assert_eq!(redact_url("no url here"), "no url here");
        assert_eq!(redact_url("connect to x://"), "connect to x://");
    }

    #[test]
    fn conninfo() {
        assert_eq!(
            redact_url("host=/run/postgresql user=postgres password=s3cret dbname=x"),
            "host=/run/postgresql user=postgres password=*** dbname=x"
        );
        assert_eq!(
            redact_url("password = 'a b\\' c' host=h"),
            "password = *** host=h"
        );
        assert_eq!(
            redact_url("postgres://db/x?user=u&password=pw&sslmode=disable"),
            "postgres://db/x?user=u&password=***&sslmode=disable"
        );
        assert_eq!(redact_url("PGPASSWORD=abc psql"), "PGPASSWORD=*** psql");
        assert_eq!(
            redact_url("the password is secret"),
            "the password is secret"
        );
        assert_eq!(redact_url("password="), "password=");
        assert_eq!(redact_url("passwordé=x"), "passwordé=x");
    }
}
