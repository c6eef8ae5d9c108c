//! Keeping secrets out of output: which names hold secrets, how to blank
//! credentials in URLs, conninfo strings and `KEY=value` pairs, and [`Redactor`],
//! which masks the secret values of one environment wherever they turn up. Used by
//! every config error and warning (one place: the end of [`crate::parse`]), by
//! `bosun check` ([`crate::Config::to_redacted_toml`]), by status output and by
//! probe messages.

use std::ops::Range;

use crate::interp::Vars;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Words that make a name secret when one of its parts (split at anything but a
/// letter or digit) contains them, in any case.
const SECRET_WORDS: &[&str] = &[
    "PASS",      // PASSWORD, PASSWD, PASSPHRASE, DB_PASS, PGPASS, REDIS_PASS
    "PWD",       // MYSQL_PWD
    "SECRET",    // AWS_SECRET_ACCESS_KEY, CLIENT_SECRET
    "TOKEN",     // GITHUB_TOKEN, access_token
    "KEY",       // API_KEY, apikey, SSH_PRIVATE_KEY
    "CRED",      // AWS_CREDENTIALS, GOOGLE_APPLICATION_CREDENTIALS, creds
    "AUTH",      // BASIC_AUTH, AUTHORIZATION
    "PRIVATE",   // PRIVATE_PEM
    "CERT",      // TLS_CERT, CERTIFICATE
    "SALT",      // AUTH_SALT, NONCE_SALT
    "SIGNATURE", // X-Amz-Signature
];

/// Parts that make a name secret only when they are the whole part (`sig=` in an
/// Azure SAS URL, `pw`), being too short to look for inside words.
const SECRET_PARTS: &[&str] = &["SIG", "PW"];

/// Names that contain a secret word but are known not to be secret: the shell's
/// working directories.
const NOT_SECRET: &[&str] = &["PWD", "OLDPWD"];

/// Whether a name (an env key, a `KEY=value` key, a query parameter) names a
/// secret: one of its parts (split at `_`, `-`, `.` and any other character that
/// is not a letter or digit) contains `PASS`, `PWD`, `SECRET`, `TOKEN`, `KEY`,
/// `CRED`, `AUTH`, `PRIVATE`, `CERT`, `SALT` or `SIGNATURE`, or is `SIG` or `PW`,
/// in any case (`DB_PASS`, `MYSQL_PWD`, `AWS_SECRET_ACCESS_KEY`, `apiKey`,
/// `GOOGLE_APPLICATION_CREDENTIALS`, `X-Amz-Signature`). `PWD` and `OLDPWD`
/// themselves (directories) are not secrets. Erring towards secret is on purpose: a
/// masked value that was not secret costs a look at the config file; the other
/// way round, a leaked password.
pub fn is_secret_key(key: &str) -> bool {
    let up = key.to_ascii_uppercase();
    if NOT_SECRET.contains(&up.as_str()) {
        return false;
    }
    up.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|part| SECRET_PARTS.contains(&part) || SECRET_WORDS.iter().any(|w| part.contains(w)))
}

/// Blanks credentials in `s`, wherever they occur in it:
///
/// - the password of every `scheme://user:password@host…` (→ `scheme://user:***@host…`);
/// - the value of every `KEY=value` whose key names a secret ([`is_secret_key`]):
///   PostgreSQL conninfo `host=db password='x y'`, URL queries `?access_token=…`,
///   `PGPASSWORD=… psql`, `--api-key=…`.
///
/// Text without credentials comes back unchanged.
pub fn redact_url(s: &str) -> String {
    let spans = credential_spans(s);
    if spans.is_empty() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    for r in spans {
        out.push_str(&s[at..r.start]);
        out.push_str(MASK);
        at = r.end;
    }
    out.push_str(&s[at..]);
    out
}

/// The credentials [`redact_url`] would blank in `s`, non-empty ones only.
pub fn credentials_in(s: &str) -> Vec<&str> {
    credential_spans(s)
        .into_iter()
        .map(|r| &s[r])
        .filter(|c| !c.is_empty())
        .collect()
}

/// Byte ranges of the credentials in `s`, sorted, not overlapping. A range may be
/// empty (`u:@host`: the empty password is still shown as masked).
fn credential_spans(s: &str) -> Vec<Range<usize>> {
    let mut spans = userinfo_spans(s);
    spans.extend(kv_spans(s));
    spans.sort_by_key(|r| (r.start, r.end));
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for r in spans {
        match merged.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// The password of every `scheme://user:password@host`.
fn userinfo_spans(s: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(i) = s[from..].find("://") {
        let start = from + i + 3;
        // The authority ends at the first '/', '?', '#', quote or whitespace.
        let end = s[start..]
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\''
            })
            .map_or(s.len(), |e| start + e);
        let authority = &s[start..end];
        if let Some(at) = authority.rfind('@') {
            if let Some(colon) = authority[..at].find(':') {
                spans.push(start + colon + 1..start + at);
            }
        }
        from = end;
    }
    spans
}

/// A character of a `KEY` in `KEY=value`.
fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// The value of every `KEY=value` (spaces allowed around `=`) whose key names a
/// secret. A value is a conninfo-quoted `'…'` (with `\'` escapes), or runs to
/// whitespace, `&`, `;` or a double quote.
fn kv_spans(s: &str) -> Vec<Range<usize>> {
    let b = s.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while let Some(off) = s[i..].find('=') {
        let eq = i + off;
        let mut k_end = eq;
        while k_end > 0 && b[k_end - 1] == b' ' {
            k_end -= 1;
        }
        let mut k_start = k_end;
        while k_start > 0 && is_key_char(b[k_start - 1]) {
            k_start -= 1;
        }
        let key = &s[k_start..k_end];
        let mut j = eq + 1;
        if key.is_empty() || !is_secret_key(key) {
            i = j;
            continue;
        }
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        let end = if j < b.len() && b[j] == b'\'' {
            let mut e = j + 1;
            while e < b.len() && b[e] != b'\'' {
                e += if b[e] == b'\\' { 2 } else { 1 };
            }
            (e + 1).min(b.len())
        } else {
            s[j..]
                .find(|c: char| c.is_whitespace() || c == '&' || c == '"' || c == ';')
                .map_or(s.len(), |e| j + e)
        };
        if end > j {
            spans.push(j..end);
        }
        i = end.max(j);
    }
    spans
}

/// Secrets shorter than this are masked only where they are a whole value: inside
/// longer text, 1-3 characters would mask half the words of a message.
const MIN_SECRET_IN_TEXT: usize = 4;

/// The secret values of one environment (and of the config's secret-named `env`
/// entries), masked wherever they turn up in a text, plus [`redact_url`].
///
/// Its `Debug` shows only how many secrets it holds.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    /// What to mask inside any text: each secret of 4 characters or more, and its
    /// `{:?}`-escaped form (messages quote values that way). Longest first, so
    /// that a secret holding another is masked whole.
    long: Vec<String>,
    /// Shorter secrets, masked only where they are the whole text.
    short: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Redactor({} patterns)",
            self.long.len() + self.short.len()
        )
    }
}

impl Redactor {
    /// The secrets in `env`: the value of every secret-named variable, and the
    /// credentials ([`credentials_in`]) in every value (`DATABASE_URL` with a
    /// password).
    pub fn from_vars(env: &dyn Vars) -> Redactor {
        let mut r = Redactor::default();
        env.each(&mut |k, v| r.add(k, v));
        r
    }

    /// Takes note of one variable (or `env` entry): its value when `name` names a
    /// secret, and the credentials inside the value in any case.
    pub fn add(&mut self, name: &str, value: &str) {
        if is_secret_key(name) {
            self.add_secret(value);
        }
        for c in credentials_in(value) {
            self.add_secret(c);
        }
    }

    /// Takes note of one secret value (trimmed; an empty one is ignored).
    pub fn add_secret(&mut self, value: &str) {
        let v = value.trim();
        if v.is_empty() || v == MASK {
            return;
        }
        if v.chars().count() < MIN_SECRET_IN_TEXT {
            if !self.short.iter().any(|s| s == v) {
                self.short.push(v.to_string());
            }
            return;
        }
        let quoted = format!("{v:?}");
        for pattern in [v, &quoted[1..quoted.len() - 1]] {
            if !self.long.iter().any(|s| s == pattern) {
                self.long.push(pattern.to_string());
            }
        }
        self.long.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// `s` with every known secret (also in its `{:?}`-escaped form) and every
    /// credential ([`redact_url`]) masked. No secret is left in the result, not
    /// even one that masking another put together.
    pub fn redact(&self, s: &str) -> String {
        if self.short.iter().any(|x| x == s.trim()) {
            return MASK.to_string();
        }
        // Masking can complete a URL's credentials and masking those can complete
        // a secret: repeat to a fixed point (two rounds in practice; bounded).
        let mut out = redact_url(&self.mask(s));
        for _ in 0..8 {
            let next = redact_url(&self.mask(&out));
            if next == out {
                break;
            }
            out = next;
        }
        out
    }

    /// Masks the long secrets until none is left. Ends: every replacement
    /// shortens the text (a pattern is longer than [`MASK`]).
    fn mask(&self, s: &str) -> String {
        let mut out = s.to_string();
        loop {
            let mut changed = false;
            for pattern in &self.long {
                if out.contains(pattern.as_str()) {
                    out = out.replace(pattern.as_str(), MASK);
                    changed = true;
                }
            }
            if !changed {
                return out;
            }
        }
    }

    /// `s` redacted, then quoted and cut to a readable length (secrets are masked
    /// before the cut, so that no part of one is shown).
    pub fn quote(&self, s: &str) -> String {
        crate::tree::quote_short(&self.redact(s))
    }
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
            "DB_PASS",
            "MYSQL_PWD",
            "REDIS_PASS",
            "SMTP_PASS",
            "PGPASS",
            "AWS_CREDENTIALS",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "basic_auth",
            "TLS_PRIVATE_PEM",
            "SSL_CERT",
            "NONCE_SALT",
            "X-Amz-Signature",
            "sig",
            "apiKey",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "PGDATA", "HOME", "DBHOST", "USER", "PWD", "OLDPWD", "PATH", "PORT",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn key_value_pairs() {
        assert_eq!(
            redact_url("http://h/x?access_token=abc&page=2"),
            "http://h/x?access_token=***&page=2"
        );
        assert_eq!(
            redact_url("s3://b/k?X-Amz-Credential=AKIA/x&X-Amz-Signature=f00d"),
            "s3://b/k?X-Amz-Credential=***&X-Amz-Signature=***"
        );
        assert_eq!(
            redact_url("https://a/b?sv=1&sig=zz"),
            "https://a/b?sv=1&sig=***"
        );
        assert_eq!(
            redact_url("app --api-key=k3y --port=80"),
            "app --api-key=*** --port=80"
        );
        assert_eq!(redact_url("MYSQL_PWD=x mysql"), "MYSQL_PWD=*** mysql");
        assert_eq!(redact_url("a=b c==d =e"), "a=b c==d =e");
        assert_eq!(credentials_in("p://u:pw@h/?token=t&x=1"), vec!["pw", "t"]);
    }

    #[test]
    fn redactor_masks_secret_values_everywhere() {
        let env: std::collections::HashMap<String, String> = [
            ("DB_PASS", "hunter2-pass"),
            ("QUOTED_SECRET", "a\"b\\c-long"),
            ("SHORT_KEY", "ab"),
            ("DATABASE_URL", "postgres://app:url-pw-123@db/app"),
            ("PLAIN", "visible-value"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let r = Redactor::from_vars(&env);
        assert_eq!(r.redact("pw is hunter2-pass!"), "pw is ***!");
        // As a message quotes it, escaped.
        let quoted = format!("{:?}", "x a\"b\\c-long");
        assert_eq!(r.redact(&quoted), "\"x ***\"");
        // A short secret only as a whole value.
        assert_eq!(r.redact("ab"), "***");
        assert_eq!(r.redact("absent"), "absent");
        // The password of a URL variable, also outside a URL.
        assert_eq!(r.redact("app:url-pw-123@db:5432"), "app:***@db:5432");
        assert_eq!(r.redact("visible-value"), "visible-value");
        // Cut short after masking: no prefix of a long secret survives.
        let long = "L".repeat(50) + "-the-long-secret-tail";
        let mut r2 = Redactor::default();
        r2.add("API_TOKEN", &format!("{long}{long}"));
        let q = r2.quote(&format!("x{long}{long}"));
        assert!(!q.contains("LLLLL"), "{q}");
        assert!(!format!("{r2:?}").contains('L'));
    }

    #[test]
    fn masking_never_puts_a_secret_back_together() {
        let mut r = Redactor::default();
        r.add_secret("a***");
        r.add_secret("xa**");
        for s in ["xa***", "xa**a***", "aa****"] {
            let out = r.redact(s);
            assert!(
                !out.contains("a***") && !out.contains("xa**"),
                "{s} -> {out}"
            );
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
