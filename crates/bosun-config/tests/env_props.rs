//! Properties of reading and interpolating an arbitrary environment: names and
//! values of any bytes (names without `=` and NUL, values without NUL, as
//! `execve(2)` can deliver them). Nothing panics; valid variables interpolate to
//! their value; the others read as unset and are named in a warning; no value of a
//! secret-named variable shows in an error or in the rendered config.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use bosun_config::{parse, Env};
use proptest::prelude::*;

/// Bytes for a name: any but `=` and NUL; often ASCII identifier characters (so
/// that `${…}` can name them), sometimes anything, non-UTF-8 included.
fn name_bytes() -> impl Strategy<Value = Vec<u8>> {
    let ident = proptest::collection::vec(
        prop::sample::select(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_".to_vec(),
        ),
        1..8,
    );
    let prefix = prop::sample::select(vec![
        "",
        "",
        "",
        "DB_PASS",
        "MYSQL_PWD",
        "API_TOKEN",
        "AWS_CREDENTIALS",
        "X",
        "CONTAINERROLE",
    ]);
    let any = proptest::collection::vec(any::<u8>(), 1..8).prop_map(|v| {
        v.into_iter()
            .filter(|b| *b != b'=' && *b != 0)
            .collect::<Vec<u8>>()
    });
    prop_oneof![
        3 => (prefix, ident).prop_map(|(p, mut i)| {
            let mut v = p.as_bytes().to_vec();
            if !v.is_empty() {
                v.push(b'_');
            }
            v.append(&mut i);
            v
        }),
        1 => any,
    ]
    .prop_filter("a name is not empty", |v| !v.is_empty())
}

/// Bytes for a value: any but NUL, often text (with quotes, `$`, `@`, `:`), often
/// not UTF-8.
fn value_bytes() -> impl Strategy<Value = Vec<u8>> {
    let chars = proptest::collection::vec(
        prop::sample::select(
            b"abcXYZ019 \"'$@:/?=&{}\\.-_"
                .iter()
                .map(|b| vec![*b])
                .chain([vec![0xc3, 0xa9], vec![0xe9], vec![0xff], vec![0x80]])
                .collect::<Vec<_>>(),
        ),
        0..24,
    );
    chars.prop_map(|parts| parts.concat())
}

fn ident(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_environment_is_read_and_interpolated_without_panic(
        pairs in proptest::collection::vec((name_bytes(), value_bytes()), 0..12)
    ) {
        let os: Vec<(OsString, OsString)> = pairs
            .iter()
            .map(|(k, v)| (OsString::from_vec(k.clone()), OsString::from_vec(v.clone())))
            .collect();
        let env = Env::from_os(os);

        // What each name means: the first occurrence counts.
        let mut first: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for (k, v) in &pairs {
            first.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &first {
            match (std::str::from_utf8(k), std::str::from_utf8(v)) {
                (Ok(k), Ok(v)) => prop_assert_eq!(env.vars().get(k).map(String::as_str), Some(v)),
                _ => {
                    let lossy = String::from_utf8_lossy(k).into_owned();
                    prop_assert!(env.not_unicode().any(|n| n == lossy), "{:?} not listed", lossy);
                    let quoted = format!("{lossy:?}");
                    prop_assert!(env.warnings().iter().any(|w| w.contains(&quoted)), "{:?}", env.warnings());
                }
            }
        }

        // A config that uses every variable a `${…}` can name.
        let names: Vec<String> = first
            .keys()
            .filter_map(|k| std::str::from_utf8(k).ok())
            .filter(|k| ident(k))
            .map(str::to_string)
            .collect();
        let mut text = String::from("[service.app]\nrun = [\"prog\"");
        for n in &names {
            text.push_str(&format!(", \"${{{n}:-}}\""));
        }
        text.push_str("]\n[service.app.env]\n");
        for (i, n) in names.iter().enumerate() {
            text.push_str(&format!("V{i} = \"${{{n}}}\"\nD{i} = \"${{{n}-dflt}}\"\n"));
        }
        let result = std::panic::catch_unwind(|| parse(&text, Path::new("p.toml"), &env));
        prop_assert!(result.is_ok(), "parse panicked on {text}");
        let config = match result {
            Ok(Ok(c)) => c,
            Ok(Err(errors)) => {
                // Only a NUL-free, UTF-8 value can be interpolated, so nothing fails.
                return Err(TestCaseError::fail(format!("{errors:?}\n{text}")));
            }
            Err(_) => unreachable!(),
        };
        let unit = &config.units["app"];
        for (i, n) in names.iter().enumerate() {
            let (v, d) = (&unit.env[&format!("V{i}")], &unit.env[&format!("D{i}")]);
            match env.vars().get(n) {
                Some(value) => {
                    prop_assert_eq!(v, value);
                    prop_assert_eq!(d, value);
                }
                None => {
                    // Not UTF-8: read as unset, and a located warning names it.
                    prop_assert_eq!(v, "");
                    prop_assert_eq!(d, "dflt");
                    let named = format!("environment variable `{n}` is not valid UTF-8");
                    prop_assert!(config.warnings.iter().any(|w| w.contains(&named)), "{:?}", config.warnings);
                }
            }
        }
        for lossy in env.not_unicode() {
            let quoted = format!("{lossy:?}");
            let backticked = format!("`{lossy}`");
            prop_assert!(
                config.warnings.iter().any(|w| w.contains(&quoted) || w.contains(&backticked)),
                "{:?} not warned about: {:?}", lossy, config.warnings
            );
        }

        // No value of a secret-named variable (4 characters or more) in the
        // rendered config, read back as the strings it holds.
        let secrets: Vec<&String> = env
            .vars()
            .iter()
            .filter(|(k, v)| bosun_config::redact::is_secret_key(k) && v.trim().chars().count() >= 4)
            .map(|(_, v)| v)
            .collect();
        let rendered = config.to_redacted_toml();
        let back = parse(&rendered, Path::new("p.toml"), &HashMap::new());
        prop_assert!(back.is_ok(), "the rendered config does not parse: {:?}\n{}", back, rendered);
        if let Ok(back) = back {
            let u = &back.units["app"];
            let mut shown: Vec<String> = u.env.values().cloned().collect();
            shown.push(u.run.display());
            for s in &secrets {
                for x in &shown {
                    prop_assert!(!x.contains(s.trim()), "{:?} shown in {:?}\n{}", s, x, rendered);
                }
            }
        }

        // Nor in an error that quotes it.
        for n in names.iter().filter(|n| env.vars().get(*n).is_some_and(|v| secrets.contains(&v))) {
            let bad = format!("[service.app]\nrun = \"true\"\nrestart = \"<${{{n}}}>\"\nwait_for = [\"x://${{{n}}}\"]\n");
            if let Err(errors) = parse(&bad, Path::new("p.toml"), &env) {
                let value = env.vars()[n].trim().to_string();
                for e in errors {
                    prop_assert!(!e.to_string().contains(&value), "{:?} in {}", value, e);
                }
            }
        }
    }
}
