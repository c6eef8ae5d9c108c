//! TLS to the fleet database: `sslmode=require` encrypts, `verify-full` checks the
//! chain and the name, `verify-ca` the chain only; a wrong CA is refused.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bosun_fleet::{Settings, SettingsError};
use common::{eventually, wait_up, Pg, TestPeer, PASSWORD};

const UP: Duration = Duration::from_secs(15);

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and localhost signed by it, and a second,
/// unrelated CA.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    for ca in ["ca", "other-ca"] {
        let mut args = vec!["req", "-x509"];
        args.extend(ec);
        let (key, pem, subj) = (
            format!("{ca}.key"),
            format!("{ca}.pem"),
            format!("/CN=bosun test {ca}"),
        );
        args.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
        args.extend([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(dir, &args);
    }
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &args);
    fs::write(
        dir.join("ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext",
        ],
    );
}

fn tls_pg() -> (Pg, PathBuf) {
    let mut tls_dir = PathBuf::new();
    let pg = Pg::start_with(&["ssl=on", "listen_addresses=127.0.0.1,127.0.0.2"], |dir| {
        let data = dir.join("data");
        make_certs(&data);
        for f in ["server.key", "server.pem"] {
            let p = data.join(f);
            let st = Command::new("chown")
                .args(["postgres:postgres", p.to_str().expect("utf8")])
                .status()
                .expect("chown");
            assert!(st.success());
        }
        let st = Command::new("chmod")
            .args(["600", data.join("server.key").to_str().expect("utf8")])
            .status()
            .expect("chmod");
        assert!(st.success());
        fs::write(
            data.join("postgresql.auto.conf"),
            "ssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\n",
        )
        .expect("conf");
        tls_dir = data;
    });
    (pg, tls_dir)
}

fn settings(pg: &Pg, host: &str, query: &str) -> Settings {
    let mut s = pg.settings("tls-1", "bosun");
    s.database = format!(
        "postgres://postgres:{PASSWORD}@{host}:{}/postgres?{query}",
        pg.port
    );
    s
}

/// Whether the fleet's own session is encrypted (from the server's side).
fn fleet_session_uses_tls(pg: &Pg) -> bool {
    pg.sql("SELECT coalesce(bool_and(s.ssl), false) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'bosun-fleet'") == "t"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_and_verify_modes_connect_over_tls() {
    let (pg, dir) = tls_pg();
    let ca = dir.join("ca.pem");
    let ca = ca.to_str().expect("utf8");
    for (host, query) in [
        ("127.0.0.1", "sslmode=require".to_owned()),
        ("127.0.0.1", "sslmode=prefer".to_owned()),
        ("127.0.0.1", format!("sslmode=verify-full&sslrootcert={ca}")),
        ("localhost", format!("sslmode=verify-full&sslrootcert={ca}")),
        // The certificate does not name 127.0.0.2: verify-ca does not care.
        ("127.0.0.2", format!("sslmode=verify-ca&sslrootcert={ca}")),
    ] {
        let p = TestPeer::start(&settings(&pg, host, &query), &[]);
        wait_up(p.handle(), UP).await;
        assert!(fleet_session_uses_tls(&pg), "{host} {query}: not encrypted");
        drop(p);
        assert!(
            eventually(UP, || pg.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bosun-fleet'"
            ) == "0")
            .await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_a_wrong_name_is_refused() {
    let (pg, dir) = tls_pg();
    let other = dir.join("other-ca.pem");
    let ca = dir.join("ca.pem");
    for (host, query, why) in [
        (
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={}", other.display()),
            "invalid peer certificate: UnknownIssuer",
        ),
        (
            "127.0.0.2",
            format!("sslmode=verify-full&sslrootcert={}", ca.display()),
            "certificate not valid for name",
        ),
    ] {
        let p = TestPeer::start(&settings(&pg, host, &query), &[]);
        let refused = eventually(UP, || {
            p.handle().last_error().is_some_and(|e| e.contains(why))
        })
        .await;
        assert!(refused, "{host} {query}: {:?}", p.handle().last_error());
        assert!(!*p.handle().database_up().borrow());
        assert!(!p
            .handle()
            .last_error()
            .unwrap_or_default()
            .contains(PASSWORD));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_root_certificate_is_a_settings_error() {
    let s = Settings::new(
        "postgres://u:pw@127.0.0.1:1/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        "p",
    );
    let errors = bosun_fleet::start(
        &s,
        bosun_fleet::PeerInfo {
            roles: vec![],
            version: "t".into(),
        },
        &[],
    )
    .expect_err("refused");
    assert!(
        matches!(&errors[..], [SettingsError::RootCert { path, .. }] if path == "/nonexistent/ca.pem"),
        "{errors:?}"
    );
    let text = errors[0].to_string();
    assert!(
        text.contains("sslrootcert") && !text.contains("pw@"),
        "{text}"
    );
}
