//! The fleet (`[fleet]`, `singleton = true`, `ctl fleet`), as a user meets it:
//! `bosun check` on fleet configs.

mod common;

use common::{bosun, Scratch};

/// A fleet config with one singleton whose `stop_timeout` is `stop`.
fn fleet_config(s: &Scratch, lease_ttl: &str, stop: &str) -> String {
    let body = format!(
        r#"
[fleet]
database = "postgres://bosun:Sup3rSecretPw@127.0.0.1:5432/app"
name = "web-1"
lease_ttl = "{lease_ttl}"
renew_every = "1s"

[service.cron]
run = "exec sleep 300"
singleton = true
stop_timeout = "{stop}"
"#
    );
    s.config("", &body).to_str().expect("utf8").to_string()
}

#[test]
fn check_refuses_a_lease_ttl_too_short_for_a_singletons_stop_timeout() {
    let s = Scratch::new();
    let path = fleet_config(&s, "5s", "30s");
    let (code, out, err) = bosun(&["check", "-c", &path], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("lease_ttl"), "{err}");
    assert!(err.contains("stop_timeout"), "{err}");
    assert!(err.contains("`cron`"), "{err}");
    assert!(
        !format!("{out}{err}").contains("Sup3rSecretPw"),
        "{out}{err}"
    );
}

#[test]
fn check_shows_the_fleet_and_the_singleton_without_the_password() {
    let s = Scratch::new();
    let path = fleet_config(&s, "20s", "2s");
    let (code, out, err) = bosun(&["check", "-c", &path], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("fleet: postgres://bosun:"), "{out}");
    assert!(out.contains("singleton"), "{out}");
    assert!(out.contains("[fleet]"), "{out}");
    assert!(
        !format!("{out}{err}").contains("Sup3rSecretPw"),
        "{out}{err}"
    );
}

#[test]
fn check_refuses_a_bad_fleet_database_url_without_printing_its_password() {
    let s = Scratch::new();
    let body = r#"
[fleet]
database = "postgres://bosun:Sup3rSecretPw@127.0.0.1:5432/app?sslmode=bogus"
name = "web-1"
"#;
    let path = s.config("", body);
    let (code, out, err) = bosun(&["check", "-c", path.to_str().expect("utf8")], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("[fleet] database"), "{err}");
    assert!(
        !format!("{out}{err}").contains("Sup3rSecretPw"),
        "{out}{err}"
    );
}
