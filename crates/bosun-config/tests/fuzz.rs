//! Garbage in, errors out: `parse` must never panic, whatever the input.

use std::collections::HashMap;
use std::path::Path;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn must_not_panic(text: &str, env: &HashMap<String, String>) {
    let result = std::panic::catch_unwind(|| {
        if let Ok(c) = bosun_config::parse(text, Path::new("/etc/bosun/fuzz.toml"), env) {
            // What parses must also render and plan without panicking.
            let _ = c.to_redacted_toml();
            let _ = bosun_config::Plan::new(&c, "all");
            let _ = bosun_config::Plan::new(&c, "web:x");
        }
    });
    assert!(result.is_ok(), "parse panicked on:\n{text}");
}

#[test]
fn handpicked_garbage() {
    let env: HashMap<String, String> = [("E".to_string(), String::new())].into();
    let inputs = [
        "",
        "\0",
        "\u{feff}",
        "[",
        "]]]]",
        "=",
        "a = ",
        "[service]",
        "[service.web]",
        "[service.web]\nrun = [[]]",
        "[service.web]\nrun = [1, 2]",
        "[service.web]\nrun = [\"\"]",
        "[service.web]\nrun = \"${\"",
        "[service.web]\nrun = \"${${${${\"",
        "[service.web]\nrun = \"${E:?}\"",
        "[service.web]\nrun = \"${A:-${B:-${C:-${D:-${E:-${F:-${G:-${H:-${I:-${J:-${K:-${L:-${M:-${N:-${O:-${P:-${Q:-${R:-x}}}}}}}}}}}}}}}}}}\"",
        "[service.web]\nrun = \"$\"\nstop_timeout = \"99999999999999999999999999h\"",
        "[service.web]\nrun = \"x\"\nstop_timeout = \"1.\"\nstart_secs = \".5s\"\numask = -1",
        "[service.web]\nrun = \"x\"\nstop_signal = -9",
        "[service.web]\nrun = \"x\"\nstop_signal = 9223372036854775807",
        "[service.web]\nrun = \"x\"\nlog_file = { path = \"/x\", max_bytes = -1, backups = 99999999999 }",
        "[service.web]\nrun = \"x\"\nlog_file = { path = \"/x\", max_bytes = \"18446744073709551616\" }",
        "[service.web]\nrun = \"x\"\nready = { log = \"(((((((((((((((((((((((((((((((((\" }",
        "[service.web]\nrun = \"x\"\nready = { log = \"\\\\p{Greek}\" }",
        "[service.web]\nrun = \"x\"\nready = 1979-05-27T07:32:00Z",
        "[service.web]\nrun = \"x\"\nenv = { \"\" = \"\", \"A=B\" = 1.5 }",
        "[service.web]\nrun = \"x\"\nafter = [\"web\", \"web\", \"nope\", 3]",
        "[service.\"\"]\nrun = \"x\"",
        "[service.\"é\"]\nrun = \"x\"\nrestrat = 1",
        "[[service]]\nrun = \"x\"",
        "[[service.web]]\nrun = \"x\"",
        "service = [1, 2]",
        "task = \"x\"",
        "roles = { a = [\"a\"], b = \"b\", c = [1] }",
        "[roles]\nall = [\"all\"]",
        "[snapshot]\nstore = 1\npaths = 2",
        "[snapshot]\nstore = \"s3://\"\ndaily_at = \"99:99\"\nkeep_daily = 99999999999",
        "[snapshot]\nstore = \"file://\"\n[snapshot.paths]\n\"a b\" = 1",
        "[bosun]\nroles_env = \"1X\"\nroles_default = \"::\"\nhttp_listen = \"[\"",
        "[service.a]\nrun = \"a\"\nafter = [\"b\"]\n[service.b]\nrun = \"b\"\nafter = [\"c\"]\n[service.c]\nrun = \"c\"\nafter = [\"a\", \"b\"]\n[task.d]\nrun = \"d\"\nafter = [\"d\", \"a\"]",
        "[roles]\na = [\"b\"]\nb = [\"c\"]\nc = [\"a\", \"b\"]",
        "x = \"\u{10FFFF}\u{0}\"\n\u{1F600} = 1",
        "[service.web]\nrun = \"x\"\nwait_for = [\"tcp://[::1]:\", \"tcp://:\", \"http://\", \"file://\", \"postgres://\"]",
        "[service.web]\nrun = \"x\"\nhealth = { tcp = \"a:1\", http = \"http://x\" }\nready = {}",
    ];
    for text in inputs {
        must_not_panic(text, &env);
    }
}

#[test]
fn mutated_example_configs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let env: HashMap<String, String> = [("DBHOST", "db"), ("BACKUP_URL", "s3://b/p")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let alphabet: Vec<char> = "[]{}=\"'$:-?,.#\n \\0aZ9_é".chars().collect();
    let mut rng = Rng(0x05ee_db05_u64);
    for name in [
        "config/docassemble.toml",
        "config/demo.toml",
        "tests/configs/good/design.toml",
    ] {
        let original = std::fs::read_to_string(root.join(name)).unwrap();
        let chars: Vec<char> = original.chars().collect();
        for _ in 0..400 {
            let mut c = chars.clone();
            for _ in 0..1 + rng.below(4) {
                if c.is_empty() {
                    break;
                }
                let at = rng.below(c.len());
                let ch = alphabet[rng.below(alphabet.len())];
                match rng.below(4) {
                    0 => {
                        c.remove(at);
                    }
                    1 => c.insert(at, ch),
                    2 => c[at] = ch,
                    _ => {
                        // Duplicate a line somewhere else.
                        let text: String = c.iter().collect();
                        let lines: Vec<&str> = text.lines().collect();
                        let line = lines[rng.below(lines.len())].to_string();
                        let mut lines: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
                        let to = rng.below(lines.len());
                        lines.insert(to, line);
                        c = lines.join("\n").chars().collect();
                    }
                }
            }
            let text: String = c.iter().collect();
            must_not_panic(&text, &env);
        }
        // Truncated at every 11th character.
        for cut in (0..chars.len()).step_by(11) {
            let text: String = chars[..cut].iter().collect();
            must_not_panic(&text, &env);
        }
    }
}

#[test]
fn random_interpolations() {
    let env: HashMap<String, String> = [("A", "1"), ("E", "")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let pieces = [
        "$", "{", "}", "A", "E", ":", "-", "?", "+", "$$", "${", "x", "é", " ",
    ];
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let s: String = (0..rng.below(12))
            .map(|_| pieces[rng.below(pieces.len())])
            .collect();
        let _ = bosun_config::interp::expand(&s, &env);
        let text = format!("[service.w]\nrun = {s:?}\nstop_timeout = {s:?}\n");
        must_not_panic(&text, &env);
    }
}
