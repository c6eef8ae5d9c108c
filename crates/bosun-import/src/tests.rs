//! Whole translations, in memory: what comes out reads back as a valid bosun.toml.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::{supervisord, Import, MemFiles};

fn translate(files: &[(&str, &str)]) -> Import {
    let mem = MemFiles(
        files
            .iter()
            .map(|(p, t)| (PathBuf::from(p), t.to_string()))
            .collect(),
    );
    supervisord(Path::new(files[0].0), &mem).expect("translates")
}

fn config(i: &Import) -> bosun_config::Config {
    let env: HashMap<String, String> = HashMap::new();
    bosun_config::parse(&i.toml, Path::new("/x/bosun.toml"), &env)
        .unwrap_or_else(|e| panic!("{e:?}\n{}", i.toml))
}

#[test]
fn a_one_shot_is_a_task_and_the_rest_services() {
    let i = translate(&[(
        "/etc/s/supervisord.conf",
        "[program:init]\ncommand=/init.sh\nautorestart=false\nstartsecs=0\n\n\
         [program:web]\ncommand=nginx -g 'daemon off;'\nstopsignal=QUIT\nstopwaitsecs=30\nuser=www-data\n",
    )]);
    let c = config(&i);
    assert_eq!(c.units["init"].kind, bosun_config::UnitKind::Task);
    let web = &c.units["web"];
    assert_eq!(web.kind, bosun_config::UnitKind::Service);
    assert_eq!(web.stop_timeout.as_secs(), 30);
    assert_eq!(web.user.as_deref(), Some("www-data"));
    assert_eq!(
        web.restart,
        bosun_config::Restart::OnFailure,
        "autorestart=unexpected by default"
    );
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
}

#[test]
fn includes_are_relative_to_the_including_file() {
    let i = translate(&[
        (
            "/etc/s/supervisord.conf",
            "[include]\nfiles = conf.d/*.conf\n",
        ),
        ("/etc/s/conf.d/b.conf", "[program:b]\ncommand=/b\n"),
        (
            "/etc/s/conf.d/a.conf",
            "[program:a]\ncommand=%(here)s/a\n[group:g]\nprograms=a,b\n",
        ),
        ("/etc/s/conf.d/c.ini", "[program:c]\ncommand=/c\n"),
    ]);
    let c = config(&i);
    let names: Vec<&str> = c.units.keys().map(String::as_str).collect();
    assert_eq!(names, ["a", "b"], "sorted, *.ini not matched");
    assert!(
        matches!(&c.units["a"].run, bosun_config::Command::Argv(v) if v[0] == "/etc/s/conf.d/a")
    );
    assert_eq!(c.units["b"].roles, ["g"]);
}

#[test]
fn every_unknown_key_is_a_warning_with_its_line() {
    let i = translate(&[(
        "/s.conf",
        "[program:x]\ncommand=/x\nfrobnicate=1\n\n[weird]\nk=v\n",
    )]);
    let w: Vec<String> = i.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter()
            .any(|w| w.starts_with("/s.conf:3: [program:x] frobnicate: ")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w.starts_with("/s.conf:5: [weird] section: ")),
        "{w:?}"
    );
    assert_eq!(
        i.toml.matches("# warning: ").count() + i.toml.matches("] warning: ").count(),
        2,
        "{}",
        i.toml
    );
    config(&i);
}

#[test]
fn a_missing_command_is_an_error_at_the_section() {
    let mem = MemFiles(vec![(
        PathBuf::from("/s.conf"),
        "\n[program:x]\nuser=a\n".into(),
    )]);
    let e = supervisord(Path::new("/s.conf"), &mem).unwrap_err();
    assert_eq!((e.file.as_str(), e.line), ("/s.conf", 2));
    assert!(e.message.contains("no `command=`"), "{e}");
}

#[test]
fn the_fatal_listener_is_recognised_by_its_command() {
    let base = "[program:web]\ncommand=/web\n[program:once]\ncommand=/once\nautorestart=false\nstartsecs=0\n";
    for cmd in [
        "bash -c \"printf 'READY\\n' && while read line; do kill -SIGQUIT $PPID; done < /dev/stdin\"",
        "/usr/local/bin/stop-supervisor.sh",
        "python /opt/%(program_name)s/kill_supervisor.py",
    ] {
        let text = format!("{base}[eventlistener:x]\ncommand={cmd}\nevents=PROCESS_STATE_FATAL\n");
        let i = translate(&[("/s.conf", &text)]);
        let c = config(&i);
        assert!(c.units["web"].essential, "{cmd}: {}", i.toml);
        assert!(!c.units["once"].essential, "a task's failure already fails the boot");
        assert!(i.warnings.is_empty(), "{cmd}: {:?}", i.warnings);
    }
    let text = format!("{base}[eventlistener:x]\ncommand=crashmail -a -m ops@example.com\nevents=PROCESS_STATE_FATAL\n");
    let i = translate(&[("/s.conf", &text)]);
    assert!(!config(&i).units["web"].essential);
    assert_eq!(i.warnings.len(), 1);
    assert_eq!(
        (i.warnings[0].line, i.warnings[0].key.as_str()),
        (7, "eventlistener")
    );
}
