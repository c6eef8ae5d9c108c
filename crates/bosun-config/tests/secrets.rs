//! No secret reaches an error, a warning or `bosun check`'s rendered config:
//! passwords in URLs, values of secret-named variables, token-ish query
//! parameters, values of the config's own secret-named `env` entries.

use std::collections::HashMap;
use std::path::Path;

use bosun_config::{parse, Config, ConfigError};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn errors(text: &str, env: &HashMap<String, String>) -> String {
    let errs: Vec<ConfigError> =
        parse(text, Path::new("/etc/bosun/bosun.toml"), env).expect_err("should fail");
    errs.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn ok(text: &str, env: &HashMap<String, String>) -> Config {
    parse(text, Path::new("/etc/bosun/bosun.toml"), env)
        .unwrap_or_else(|e| panic!("unexpected errors: {e:?}"))
}

const UNIT: &str = "[service.web]\nrun = \"true\"\n";

#[test]
fn a_gate_from_a_url_variable_never_prints_its_password() {
    // The issue's case: an unsupported scheme, the URL from ${DB_URL}, long
    // enough to be cut short in the message.
    let e = env(&[(
        "DB_URL",
        "pgsql://app:Sup3r-Secret-Pw@db.internal.example:5432/application_database?sslmode=require",
    )]);
    let out = errors(&format!("{UNIT}wait_for = [\"${{DB_URL}}\"]\n"), &e);
    assert!(
        out.contains("unsupported gate \"pgsql://app:***@db"),
        "{out}"
    );
    assert!(out.contains("(from \"${DB_URL}\")"), "{out}");
    assert!(!out.contains("Sup3r"), "{out}");

    // The password alone in a message (no `://` left around it).
    let e = env(&[("DB_URL", "postgres://app:Sup3r-Secret-Pw@db:5432/app")]);
    let out = errors(
        &format!("{UNIT}wait_for = [\"tcp://app:Sup3r-Secret-Pw@db\"]\n"),
        &e,
    );
    assert!(out.contains("expected tcp://host:port"), "{out}");
    assert!(!out.contains("Sup3r"), "{out}");
}

#[test]
fn a_bad_http_listen_from_a_secret_variable_is_masked() {
    let e = env(&[("API_TOKEN", "tok_live_51Hx9aBcDeFgHiJ")]);
    let out = errors(
        &format!("[bosun]\nhttp_listen = \"${{API_TOKEN}}\"\n{UNIT}"),
        &e,
    );
    assert!(
        out.contains("`http_listen` in [bosun]: expected an address like \"0.0.0.0:9001\", found \"***\" (from \"${API_TOKEN}\")"),
        "{out}"
    );
    assert!(!out.contains("tok_live"), "{out}");
}

#[test]
fn every_error_that_quotes_a_secret_value_masks_it() {
    let secret = "R3dis-Pass-Value";
    for var in [
        "DB_PASS",
        "MYSQL_PWD",
        "REDIS_PASS",
        "SMTP_PASS",
        "PGPASS",
        "AWS_CREDENTIALS",
    ] {
        let e = env(&[(var, secret)]);
        for line in [
            format!("restart = \"${{{var}}}\""),
            format!("stop_signal = \"${{{var}}}\""),
            format!("stop_timeout = \"${{{var}}}\""),
            format!("umask = \"${{{var}}}\""),
            format!("output = \"x-${{{var}}}-y\""),
            format!("ready = {{ tcp = \"${{{var}}}\" }}"),
            format!("ready = {{ http = \"https://h/?q=${{{var}}}\" }}"),
            format!("ready = {{ log = \"(${{{var}}}\" }}"),
            format!("roles = [\"${{{var}}}!\"]"),
            format!("after = [\"${{{var}}}\"]"),
        ] {
            let out = errors(&format!("{UNIT}{line}\n"), &e);
            assert!(!out.contains(secret), "{var}: {line}\n{out}");
            assert!(out.contains("***"), "{var}: {line}: no mask shown\n{out}");
        }
    }
}

#[test]
fn secrets_with_quotes_and_long_secrets_are_masked_whole() {
    // Quoted with {:?} in messages: the escaped form is masked too.
    let e = env(&[("APP_SECRET", "with\"quote\\and-more")]);
    let out = errors(&format!("{UNIT}restart = \"${{APP_SECRET}}\"\n"), &e);
    assert!(!out.contains("quote"), "{out}");
    // Longer than a message shows: masked before the cut, no prefix left.
    let long = format!("{}-end", "k".repeat(90));
    let e = env(&[("SIGNING_KEY", long.as_str())]);
    let out = errors(
        &format!("{UNIT}wait_for = [\"ftp://x/${{SIGNING_KEY}}\"]\n"),
        &e,
    );
    assert!(!out.contains("kkkk"), "{out}");
}

#[test]
fn token_ish_query_parameters_are_masked_in_errors() {
    let out = errors(
        &format!("{UNIT}wait_for = [\"ftp://files/x?access_token=Tok3n-in-url&x=1\"]\n"),
        &HashMap::new(),
    );
    assert!(
        out.contains("\"ftp://files/x?access_token=***&x=1\""),
        "{out}"
    );
    let out = errors(
        &format!("{UNIT}ready = {{ http = \"https://h/?X-Amz-Signature=abc123def&sig=s1g\" }}\n"),
        &HashMap::new(),
    );
    assert!(!out.contains("abc123def") && !out.contains("s1g"), "{out}");
}

#[test]
fn a_secret_env_entry_of_the_config_is_masked_elsewhere_too() {
    // The value is written in the file under a secret name, and used again in a
    // bad value: the error shows neither.
    let text = "[service.web]\nrun = \"true\"\nenv = { DB_PASS = \"Lit3ral-Pw\", URL = \"x\" }\nwait_for = [\"mysql://u:Lit3ral-Pw@db\"]\nrestart = \"Lit3ral-Pw\"\n";
    let out = errors(text, &HashMap::new());
    assert!(!out.contains("Lit3ral"), "{out}");
}

#[test]
fn check_renders_common_secret_variables_masked() {
    let names = [
        "DB_PASS",
        "MYSQL_PWD",
        "MYSQL_ROOT_PASSWORD",
        "REDIS_PASS",
        "SMTP_PASS",
        "PGPASS",
        "PGPASSWORD",
        "AWS_CREDENTIALS",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GITHUB_TOKEN",
        "BASIC_AUTH",
        "TLS_PRIVATE_PEM",
        "SSL_CERT",
        "DJANGO_SECRET_KEY",
        "NONCE_SALT",
        "api_key",
    ];
    let mut text = String::from("[service.app]\nrun = \"true\"\n[service.app.env]\n");
    let mut vars = Vec::new();
    for (i, n) in names.iter().enumerate() {
        text.push_str(&format!("{n} = \"${{{n}}}\"\n"));
        vars.push((n.to_string(), format!("value-of-secret-{i:02}")));
    }
    text.push_str("PGDATA = \"/var/lib/postgresql/data\"\nWORKDIR = \"${PWD}\"\n");
    vars.push(("PWD".into(), "/srv/app".into()));
    let e: HashMap<String, String> = vars.into_iter().collect();
    let c = ok(&text, &e);
    let out = c.to_redacted_toml();
    for n in names {
        assert!(out.contains(&format!("{n} = \"***\"")), "{n}:\n{out}");
    }
    assert!(!out.contains("value-of-secret"), "{out}");
    // Not secrets: shown as they are.
    assert!(
        out.contains("PGDATA = \"/var/lib/postgresql/data\""),
        "{out}"
    );
    assert!(out.contains("WORKDIR = \"/srv/app\""), "{out}");
}

#[test]
fn check_masks_secret_variables_wherever_they_were_interpolated() {
    let e = env(&[
        ("DB_PASS", "Interp-Secret-1"),
        ("DATABASE_URL", "postgres://app:Interp-Secret-2@db/app"),
    ]);
    let text = r#"
[service.app]
run = ["migrate", "--password", "${DB_PASS}", "--db=${DATABASE_URL}"]
wait_for = ["${DATABASE_URL}"]
ready = { postgres = "host=db user=app password=${DB_PASS}" }
"#;
    let c = ok(text, &e);
    let out = c.to_redacted_toml();
    assert!(!out.contains("Interp-Secret"), "{out}");
    assert!(out.contains("\"--password\", \"***\""), "{out}");
    assert!(out.contains("postgres://app:***@db/app"), "{out}");
    // Also for whatever else shows the config (check's backup lines, status).
    assert_eq!(
        c.redact("PGPASSWORD=Interp-Secret-1 pg_dump"),
        "PGPASSWORD=*** pg_dump"
    );
}

#[test]
fn non_utf8_variables_are_named_and_a_required_one_says_why() {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;
    let env = bosun_config::Env::from_os([
        (OsString::from("X"), OsString::from_vec(b"caf\xe9".to_vec())),
        (OsString::from("A"), OsString::from("alpha")),
    ]);
    let c = parse(
        &format!("{UNIT}env = {{ A = \"${{A}}\", B = \"${{X:-fallback}}\" }}\n"),
        Path::new("b.toml"),
        &env,
    )
    .expect("parses");
    assert_eq!(c.units["web"].env["B"], "fallback");
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("environment variable `X` is not valid UTF-8"),
        "{:?}",
        c.warnings
    );
    // Not referenced: still warned about, by name.
    let c = parse(UNIT, Path::new("b.toml"), &env).expect("parses");
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("environment variable \"X\" is not valid UTF-8")),
        "{:?}",
        c.warnings
    );
    let errs = parse(
        &format!("{UNIT}user = \"${{X:?the app user}}\"\n"),
        Path::new("b.toml"),
        &env,
    )
    .expect_err("required");
    assert!(
        errs[0]
            .message
            .contains("required variable `X` is set but not valid UTF-8: the app user"),
        "{errs:?}"
    );
    // The roles variable: an error, not a silent fallback to roles_default.
    let env = bosun_config::Env::from_os([(
        OsString::from("CONTAINERROLE"),
        OsString::from_vec(b"w\xffb".to_vec()),
    )]);
    let c = parse(UNIT, Path::new("b.toml"), &env).expect("parses");
    let err = c.roles_expr_checked(&env).expect_err("not UTF-8");
    assert!(
        err.contains("CONTAINERROLE ([bosun] roles_env) is not valid UTF-8"),
        "{err}"
    );
}

#[test]
fn a_long_literal_secret_quoted_before_its_env_entry_is_read_stays_masked() {
    // `stop_signal` is read before `env`: its quote of the secret, cut to 60
    // characters, must still be masked (the secret is learned before the walk).
    let secret = "Literal-Secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789-XYZ";
    let text = format!(
        "[service.web]\nrun = \"true\"\nstop_signal = \"{secret}\"\nenv = {{ APP_PASSWORD = \"{secret}\" }}\n"
    );
    let out = errors(&text, &env(&[]));
    assert!(out.contains("stop_signal"), "{out}");
    assert!(
        !out.contains(&secret[..20]),
        "a prefix of the secret leaked: {out}"
    );
}
