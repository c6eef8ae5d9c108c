//! Instances: `instances = N` on a service runs N copies of it, the units
//! `NAME#1` … `NAME#N` (a `#` cannot occur in a unit name, so these never
//! clash with a unit of the file). `NAME` is the instances' *group*: `after =
//! ["NAME"]` waits for all of them, and `bosun ctl` takes either the group or
//! one instance.
//!
//! The [`Config`] is the file: a service with `instances` is one unit there, a
//! template. [`Config::instantiated`] makes the config the runtime runs, with
//! one unit per instance; `bosun ctl scale` makes it again with another count.
//!
//! `${BOSUN_INSTANCE}` (1 … N) cannot be interpolated when the file is read,
//! since one string stands for N values (and for more after a scale-up): in a
//! service with `instances` it reads as [`PLACEHOLDER`], which
//! [`Config::instantiated`] replaces with the instance's number.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::interp::{Lookup, Vars};
use crate::model::{Command, Config, Probe, Unit, WaitFor};

/// The most instances a service may have (`instances`, `bosun ctl scale`).
pub const MAX_INSTANCES: u32 = 1000;

/// The variable that holds an instance's number, in its config strings and in
/// its environment.
pub const VAR: &str = "BOSUN_INSTANCE";

/// What `${BOSUN_INSTANCE}` reads as in a service with `instances` until the
/// instances are made: two private-use characters around the name, which no
/// config has reason to hold.
pub const PLACEHOLDER: &str = "\u{F8FF}BOSUN_INSTANCE\u{F8FF}";

/// Instance counts by group, over the file's `instances` (`bosun ctl scale`).
pub type Scale = HashMap<String, u32>;

/// The unit name of instance `i` (1-based) of `group`: `worker#2`.
pub fn unit_name(group: &str, i: u32) -> String {
    format!("{group}#{i}")
}

/// Splits an instance's unit name into its group and number (`worker#2` →
/// `("worker", 2)`); `None` for a name that is not an instance's.
pub fn split(name: &str) -> Option<(&str, u32)> {
    let (group, n) = name.rsplit_once('#')?;
    let i: u32 = n.parse().ok()?;
    (i >= 1 && !n.starts_with('0') && !group.is_empty()).then_some((group, i))
}

/// The group of a unit name: `worker` for `worker#2` and for `worker`.
pub fn group_of(name: &str) -> &str {
    split(name).map_or(name, |(g, _)| g)
}

/// `s` as instance 1 would see it: for the checks of a value's syntax when it
/// is read (a `tcp` probe's port `900${BOSUN_INSTANCE}`).
pub(crate) fn sample(s: &str) -> Cow<'_, str> {
    fill_str(s, 1)
}

/// `s` with `${BOSUN_INSTANCE}` written back (for `bosun check`'s TOML).
pub(crate) fn unfill(s: &str) -> Cow<'_, str> {
    match s.contains(PLACEHOLDER) {
        true => Cow::Owned(s.replace(PLACEHOLDER, "${BOSUN_INSTANCE}")),
        false => Cow::Borrowed(s),
    }
}

fn fill_str(s: &str, i: u32) -> Cow<'_, str> {
    match s.contains(PLACEHOLDER) {
        true => Cow::Owned(s.replace(PLACEHOLDER, &i.to_string())),
        false => Cow::Borrowed(s),
    }
}

/// The environment a service with `instances` is read against: `BOSUN_INSTANCE`
/// is [`PLACEHOLDER`], the rest is `env`.
pub(crate) struct WithInstance<'a>(pub &'a dyn Vars);

impl Vars for WithInstance<'_> {
    fn lookup(&self, name: &str) -> Lookup<'_> {
        match name {
            VAR => Lookup::Set(PLACEHOLDER),
            _ => self.0.lookup(name),
        }
    }

    fn not_unicode_names(&self) -> Vec<String> {
        self.0.not_unicode_names()
    }

    fn each(&self, f: &mut dyn FnMut(&str, &str)) {
        self.0.each(f)
    }
}

impl Config {
    /// The config the runtime runs: every service with `instances` replaced, in
    /// place, by its instances `NAME#1` … `NAME#N` (N from `scale`, else from the
    /// file), each with `${BOSUN_INSTANCE}` filled in and `BOSUN_INSTANCE` in its
    /// `env`. The other units are as they are; `after = ["NAME"]` stays, and the
    /// plan reads it as every instance of NAME.
    pub fn instantiated(&self, scale: &Scale) -> Config {
        let mut out = self.clone();
        out.units.clear();
        for (name, u) in &self.units {
            let Some(n) = u.instances else {
                out.units.insert(name.clone(), u.clone());
                continue;
            };
            let n = scale.get(name).copied().unwrap_or(n);
            for i in 1..=n {
                let x = instance(u, i);
                // A secret-named `env` entry is masked under each instance's value too.
                for (k, v) in &x.env {
                    out.secrets.add(k, v);
                }
                out.units.insert(x.name.clone(), x);
            }
        }
        out
    }
}

/// Instance `i` of the template `t`. Its `instances` is `None`: the unit of an
/// instance is the same whatever the count, so a scale leaves it alone.
pub fn instance(t: &Unit, i: u32) -> Unit {
    let mut u = t.clone();
    u.name = unit_name(&t.name, i);
    u.instances = None;
    let f = |s: &mut String| {
        if let Cow::Owned(x) = fill_str(s, i) {
            *s = x;
        }
    };
    let fp = |p: &mut std::path::PathBuf| {
        if let Some(s) = p.to_str() {
            if let Cow::Owned(x) = fill_str(s, i) {
                *p = x.into();
            }
        }
    };
    fill_command(&mut u.run, &f);
    u.env.values_mut().for_each(f);
    u.env.insert(VAR.to_string(), i.to_string());
    u.user.iter_mut().for_each(f);
    u.group.iter_mut().for_each(f);
    u.cwd.iter_mut().for_each(fp);
    u.env_file.iter_mut().for_each(fp);
    u.env_files.values_mut().for_each(fp);
    if let Some(l) = &mut u.log_file {
        fp(&mut l.path);
    }
    for w in &mut u.wait_for {
        match w {
            WaitFor::Tcp(s) | WaitFor::Http(s) | WaitFor::Postgres(s) => f(s),
            WaitFor::File(p) => fp(p),
        }
    }
    if let Some(p) = &mut u.ready.probe {
        fill_probe(p, &f, &fp);
    }
    if let Some(h) = &mut u.health {
        fill_probe(&mut h.probe, &f, &fp);
    }
    u
}

fn fill_command(c: &mut Command, f: &impl Fn(&mut String)) {
    match c {
        Command::Argv(v) => v.iter_mut().for_each(f),
        Command::Shell(s) => f(s),
    }
}

fn fill_probe(p: &mut Probe, f: &impl Fn(&mut String), fp: &impl Fn(&mut std::path::PathBuf)) {
    match p {
        Probe::Tcp(s) | Probe::Http(s) | Probe::Postgres(s) | Probe::Log(s) => f(s),
        Probe::Exec(c) => fill_command(c, f),
        Probe::File(path) => fp(path),
        Probe::Notify => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Config {
        crate::parse(
            text,
            std::path::Path::new("/x/bosun.toml"),
            &HashMap::<String, String>::new(),
        )
        .expect("a valid config")
    }

    #[test]
    fn names_split_back() {
        for i in [1, 2, 10, MAX_INSTANCES] {
            assert_eq!(split(&unit_name("web-1.x", i)), Some(("web-1.x", i)));
        }
        for bad in ["worker", "worker#", "worker#0", "worker#01", "#2", "w#x"] {
            assert_eq!(split(bad), None, "{bad}");
        }
        assert_eq!(group_of("worker#3"), "worker");
        assert_eq!(group_of("worker"), "worker");
    }

    #[test]
    fn the_number_is_filled_in_everywhere_it_is_written() {
        let c = parse(
            r#"
[service.worker]
run = ["work", "--port", "900${BOSUN_INSTANCE}"]
instances = 2
env = { SLOT = "slot-${BOSUN_INSTANCE}" }
cwd = "/srv/w${BOSUN_INSTANCE}"
log_file = "/var/log/w${BOSUN_INSTANCE}.log"
ready = { tcp = "127.0.0.1:900${BOSUN_INSTANCE}" }
health = { http = "http://127.0.0.1:900${BOSUN_INSTANCE}/" }

[service.web]
run = "web ${BOSUN_INSTANCE:-none}"
after = ["worker"]
"#,
        );
        let r = c.instantiated(&Scale::new());
        let names: Vec<&str> = r.units.keys().map(String::as_str).collect();
        assert_eq!(names, ["worker#1", "worker#2", "web"]);
        let w2 = &r.units["worker#2"];
        assert_eq!(w2.run.argv(), ["work", "--port", "9002"]);
        assert_eq!(w2.env["SLOT"], "slot-2");
        assert_eq!(w2.env[VAR], "2");
        assert_eq!(w2.cwd.as_deref(), Some(std::path::Path::new("/srv/w2")));
        assert_eq!(w2.ready.probe, Some(Probe::Tcp("127.0.0.1:9002".into())));
        assert_eq!(
            w2.health.as_ref().map(|h| &h.probe),
            Some(&Probe::Http("http://127.0.0.1:9002/".into()))
        );
        assert_eq!(w2.instances, None);
        // A unit without `instances` reads the variable from the environment.
        assert_eq!(r.units["web"].run.display(), "sh -c \"web none\"");
        let six = c.instantiated(&Scale::from([("worker".to_string(), 6)]));
        assert_eq!(six.units.len(), 7);
        assert_eq!(six.units["worker#6"].env["SLOT"], "slot-6");
        let c = parse("[service.w]\nrun = \"w\"\ninstances = 2\nenv = { API_TOKEN = \"tok-${BOSUN_INSTANCE}-s3cret\" }\n");
        let r = c.instantiated(&Scale::new());
        assert_eq!(r.redact("token tok-2-s3cret"), "token ***");
    }

    #[test]
    fn after_a_group_waits_for_every_instance() {
        let c = parse(
            "[service.db]\nrun = \"db\"\n[service.worker]\nrun = \"w\"\ninstances = 3\nafter = [\"db\"]\n[service.web]\nrun = \"web\"\nafter = [\"worker\"]\n",
        );
        let plan = crate::Plan::new(&c.instantiated(&Scale::new()), "all").expect("a plan");
        let web = plan.unit("web").expect("web is active");
        assert_eq!(web.deps, ["worker#1", "worker#2", "worker#3"]);
        assert_eq!(
            plan.unit("worker#2").map(|u| u.deps.clone()),
            Some(vec!["db".to_string()])
        );
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            plan.start_waves,
            [
                w(&["db"]),
                w(&["worker#1", "worker#2", "worker#3"]),
                w(&["web"])
            ]
        );
        assert_eq!(plan.stop_waves.first(), Some(&w(&["web"])));
    }

    proptest! {
        /// Instance i is the same unit whatever the count: a scale from m to n
        /// keeps instances 1..=min(m, n) equal (their processes are left alone).
        #[test]
        fn an_instance_does_not_depend_on_the_count(m in 1u32..40, n in 1u32..40) {
            let c = parse("[service.w]\nrun = \"work ${BOSUN_INSTANCE}\"\ninstances = 3\n");
            let a = c.instantiated(&Scale::from([("w".to_string(), m)]));
            let b = c.instantiated(&Scale::from([("w".to_string(), n)]));
            prop_assert_eq!(a.units.len() as u32, m);
            prop_assert_eq!(b.units.len() as u32, n);
            for i in 1..=m.min(n) {
                let name = unit_name("w", i);
                prop_assert_eq!(&a.units[&name], &b.units[&name]);
            }
            for (i, name) in a.units.keys().enumerate() {
                prop_assert_eq!(split(name), Some(("w", i as u32 + 1)));
            }
        }
    }
}
