//! docker/k8s/ (the example as a fleet on Kubernetes): the manifests pass the
//! Kubernetes schemas (PyPI `kubernetes-validate`, strict, so an unknown field is an
//! error), and their values agree with what `bosun check` and the config say about
//! the image's config (docker/example/bosun.toml) under each pod's environment: roles,
//! the grace period above `stop_budget`, probes on `http_listen` and `/health`, the
//! secret files behind `http_token_file` and `DBPASSWORD_FILE`, the fleet's database
//! host. No cluster runs here.
//!
//! `kubernetes-validate` (and PyYAML, its dependency) live in a venv that
//! `tests/support/install.sh tests` makes: `$BOSUN_K8S_VENV`, else
//! `${XDG_CACHE_HOME:-$HOME/.cache}/bosun/kubernetes-validate`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const K8S: &str = "../../docker/k8s";
const CONFIG: &str = "../../docker/example/bosun.toml";
/// The oldest and the newest Kubernetes the manifests are checked against.
const VERSIONS: [&str; 2] = ["1.28.0", "1.37.0"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn venv() -> PathBuf {
    if let Some(v) = std::env::var_os("BOSUN_K8S_VENV") {
        return PathBuf::from(v);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .expect("HOME or XDG_CACHE_HOME");
    cache.join("bosun/kubernetes-validate")
}

fn tool(name: &str) -> PathBuf {
    let p = venv().join("bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run tests/support/install.sh tests (it installs PyPI kubernetes-validate into that venv)",
        p.display()
    );
    p
}

fn manifests() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(K8S))
        .expect("docker/k8s")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    assert!(v.len() >= 3, "{v:?}");
    v
}

/// Every document of every manifest, as JSON (PyYAML from the venv).
fn documents() -> Vec<Value> {
    let out = Command::new(tool("python"))
        .args([
            "-c",
            "import json, sys, yaml\nprint(json.dumps([d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]))",
        ])
        .args(manifests())
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

fn validate(files: &[PathBuf], version: &str) -> (bool, String) {
    let out = Command::new(tool("kubernetes-validate"))
        .args(["--strict", "--no-warn", "-k", version])
        .args(files)
        .output()
        .expect("kubernetes-validate");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_manifests_pass_the_kubernetes_schemas() {
    for v in VERSIONS {
        let (ok, said) = validate(&manifests(), v);
        assert!(ok, "kubernetes {v}:\n{said}");
    }
    // The validator does reject: a misspelt field in a copy of the Deployment.
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(root().join(K8S).join("notes-app.yaml")).expect("read");
    assert!(text.contains("terminationGracePeriodSeconds"));
    std::fs::write(
        &bad,
        text.replace(
            "terminationGracePeriodSeconds",
            "terminationGracePeriodSecs",
        ),
    )
    .expect("write");
    let (ok, said) = validate(&[bad], VERSIONS[1]);
    assert!(!ok, "a misspelt field passed:\n{said}");
}

/// One workload (StatefulSet or Deployment) and what the config makes of its pod.
struct Workload {
    kind: String,
    name: String,
    replicas: i64,
    pod: Value,
    container: Value,
    env: HashMap<String, String>,
}

fn workloads(docs: &[Value]) -> Vec<Workload> {
    docs.iter()
        .filter(|d| d["kind"] == "StatefulSet" || d["kind"] == "Deployment")
        .map(|d| {
            let pod = d["spec"]["template"]["spec"].clone();
            let containers = pod["containers"].as_array().expect("containers");
            assert_eq!(containers.len(), 1, "one container, bosun as PID 1");
            let container = containers[0].clone();
            Workload {
                kind: d["kind"].as_str().unwrap_or_default().to_string(),
                name: d["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                replicas: d["spec"]["replicas"].as_i64().unwrap_or(1),
                env: env_of(&container),
                pod,
                container,
            }
        })
        .collect()
}

/// The container's environment as the kubelet sets it: `value`s, with `$(VAR)` of
/// earlier entries expanded, and a stand-in for `fieldRef`s (the pod IP).
fn env_of(container: &Value) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = HashMap::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().expect("env name").to_string();
        let mut value = match (&e["value"], &e["valueFrom"]) {
            (Value::String(v), _) => v.clone(),
            (_, Value::Object(from)) => {
                assert!(
                    from.contains_key("fieldRef"),
                    "{name}: secrets come as files, not as env values"
                );
                "10.0.0.7".to_string()
            }
            _ => String::new(),
        };
        for (k, v) in &env {
            value = value.replace(&format!("$({k})"), v);
        }
        env.insert(name, value);
    }
    env
}

/// Where each mounted Secret key lands in the container: path → (secret, key).
fn secret_files(w: &Workload, docs: &[Value]) -> HashMap<String, (String, String)> {
    let mut files = HashMap::new();
    for m in w.container["volumeMounts"].as_array().into_iter().flatten() {
        let vol = w.pod["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == m["name"]);
        let Some(secret) = vol.map(|v| &v["secret"]).filter(|s| s.is_object()) else {
            continue;
        };
        let sname = secret["secretName"].as_str().expect("secretName");
        let doc = docs
            .iter()
            .find(|d| d["kind"] == "Secret" && d["metadata"]["name"] == sname)
            .unwrap_or_else(|| panic!("{}: no Secret {sname} in docker/k8s", w.name));
        let keys: Vec<String> = doc["stringData"]
            .as_object()
            .or(doc["data"].as_object())
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        let mount = m["mountPath"].as_str().expect("mountPath");
        let items: Vec<(String, String)> = match secret["items"].as_array() {
            Some(items) => items
                .iter()
                .map(|i| {
                    let k = i["key"].as_str().expect("key").to_string();
                    (k, i["path"].as_str().expect("path").to_string())
                })
                .collect(),
            None => keys.iter().map(|k| (k.clone(), k.clone())).collect(),
        };
        for (key, path) in items {
            assert!(keys.contains(&key), "{sname} has no key {key}");
            files.insert(format!("{mount}/{path}"), (sname.to_string(), key));
        }
    }
    files
}

fn bosun_check(env: &HashMap<String, String>) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bosun"))
        .args(["check", "-c"])
        .arg(root().join(CONFIG))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env)
        .output()
        .expect("bosun check");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn probes(c: &Value) -> Vec<(&'static str, &Value)> {
    ["startupProbe", "readinessProbe", "livenessProbe"]
        .into_iter()
        .filter(|p| c[*p].is_object())
        .map(|p| (p, &c[p]))
        .collect()
}

#[test]
fn the_manifests_agree_with_bosun_check() {
    let docs = documents();
    let ws = workloads(&docs);
    let db = ws
        .iter()
        .find(|w| w.kind == "StatefulSet")
        .expect("a StatefulSet");
    let app = ws
        .iter()
        .find(|w| w.kind == "Deployment")
        .expect("a Deployment");
    assert_eq!(db.replicas, 1, "the sql role is one pod");
    assert_eq!(app.replicas, 2, "two app pods");

    for w in [db, app] {
        let ctx = format!("{} {}", w.kind, w.name);
        // `bosun check` passes under the pod's environment (lease timing included).
        let (code, said) = bosun_check(&w.env);
        assert_eq!(code, 0, "{ctx}: bosun check:\n{said}");
        assert!(
            said.contains("fleet: postgres://"),
            "{ctx}: no fleet:\n{said}"
        );

        let env = bosun_config::Env::from(w.env.clone());
        let config = bosun_config::load(&root().join(CONFIG), &env).expect("config");
        let roles = w.env.get("CONTAINERROLE").expect("CONTAINERROLE");
        assert!(
            bosun_config::Plan::new(&config, roles).is_ok(),
            "{ctx}: roles {roles}"
        );

        // bosun is PID 1 (through secrets-env.sh's exec) with the image's config.
        let cmd: Vec<&str> = w.container["command"]
            .as_array()
            .expect("command")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(cmd, ["/app/secrets-env.sh", "bosun", "run"], "{ctx}");
        assert!(root()
            .join("../../docker/example/app/secrets-env.sh")
            .exists());

        // The grace period covers the whole stop, snapshot included.
        let grace = w.pod["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("terminationGracePeriodSeconds");
        let budget = config.bosun.stop_budget.as_secs();
        assert!(
            grace > budget,
            "{ctx}: grace {grace}s <= stop_budget {budget}s"
        );
        assert!(
            said.contains(&format!("of stop_budget {budget}s")),
            "{said}"
        );

        // Probes: /health on http_listen's port, or `bosun ctl health|status`.
        let ps = probes(&w.container);
        assert!(ps.iter().any(|(n, _)| *n == "readinessProbe"), "{ctx}");
        for (name, p) in ps {
            if p["httpGet"].is_object() {
                let listen = config
                    .bosun
                    .http_listen
                    .as_deref()
                    .unwrap_or_else(|| panic!("{ctx}: {name} on HTTP, but no http_listen"));
                let port = listen.rsplit(':').next().unwrap_or_default();
                assert_eq!(p["httpGet"]["port"].to_string(), port, "{ctx}: {name}");
                assert_eq!(p["httpGet"]["path"], "/health", "{ctx}: {name}");
            } else {
                let c: Vec<&str> = p["exec"]["command"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{ctx}: {name} is neither httpGet nor exec"))
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                assert!(
                    c == ["bosun", "ctl", "health"] || c == ["bosun", "ctl", "status"],
                    "{ctx}: {name}: {c:?}"
                );
            }
        }

        // Secrets are files from a Secret: the token file and the database password.
        let files = secret_files(w, &docs);
        if let Some(token) = &config.bosun.http_token_file {
            let t = token.to_str().expect("utf8");
            assert!(
                files.contains_key(t),
                "{ctx}: http_token_file {t} not from a Secret: {files:?}"
            );
        }
        let pw = w.env.get("DBPASSWORD_FILE").expect("DBPASSWORD_FILE");
        assert!(
            files.contains_key(pw),
            "{ctx}: DBPASSWORD_FILE {pw} not from a Secret: {files:?}"
        );
        if let Some(t) = config
            .bosun
            .http_token_file
            .as_ref()
            .and_then(|t| t.to_str())
        {
            assert_ne!(
                files.get(t),
                files.get(pw.as_str()),
                "{ctx}: token and password are one file"
            );
        }

        // The fleet: on, through the db pod's PostgreSQL.
        let fleet = config
            .fleet
            .as_ref()
            .filter(|f| f.enabled())
            .expect("[fleet] on");
        let host = w.env.get("DBHOST").expect("DBHOST");
        assert!(
            fleet.database.contains(&format!("@{host}:5432/")),
            "{ctx}: the fleet database is not on DBHOST {host}"
        );
        if w.kind == "StatefulSet" {
            assert_eq!(
                host, "localhost",
                "{ctx}: the sql pod's fleet is its own PostgreSQL"
            );
        }
    }

    // Roles: the db pod runs sql and redis, the app pods web, worker and cron; cron is
    // a scheduled singleton (a task every minute, in the pod holding its lease: bosun's
    // timer, no CronJob); the app's DBHOST/REDIS_HOST is the db's Service (its serviceName).
    let roles = |w: &Workload| {
        let env = bosun_config::Env::from(w.env.clone());
        let config = bosun_config::load(&root().join(CONFIG), &env).expect("config");
        let plan = bosun_config::Plan::new(&config, &w.env["CONTAINERROLE"]).expect("plan");
        let singletons: Vec<(String, bosun_config::UnitKind, Option<String>)> = plan
            .units
            .iter()
            .map(|u| &config.units[&u.name])
            .filter(|u| u.singleton)
            .map(|u| {
                let schedule = u.schedule.as_ref().map(|s| s.expr().to_string());
                (u.name.clone(), u.kind, schedule)
            })
            .collect();
        (plan.roles, singletons)
    };
    assert_eq!(roles(db), (vec!["sql".into(), "redis".into()], vec![]));
    assert_eq!(
        roles(app),
        (
            vec!["web".into(), "worker".into(), "cron".into()],
            vec![(
                "cron".into(),
                bosun_config::UnitKind::Task,
                Some("* * * * *".into())
            )]
        )
    );
    let db_sts = docs
        .iter()
        .find(|d| d["kind"] == "StatefulSet")
        .expect("sts");
    let service = db_sts["spec"]["serviceName"].as_str().expect("serviceName");
    assert_eq!(app.env["DBHOST"], service);
    assert_eq!(app.env["REDIS_HOST"], service);

    // Every Service selects pods of a workload and targets a port they declare.
    for s in docs.iter().filter(|d| d["kind"] == "Service") {
        let sel = s["spec"]["selector"].as_object().expect("selector");
        let w = ws
            .iter()
            .find(|w| {
                let labels = docs
                    .iter()
                    .find(|d| {
                        d["metadata"]["name"] == w.name.as_str() && d["kind"] == w.kind.as_str()
                    })
                    .map(|d| d["spec"]["template"]["metadata"]["labels"].clone())
                    .unwrap_or_default();
                sel.iter().all(|(k, v)| labels[k] == *v)
            })
            .unwrap_or_else(|| panic!("Service {} selects no workload", s["metadata"]["name"]));
        let ports: Vec<i64> = w.container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["containerPort"].as_i64())
            .collect();
        for p in s["spec"]["ports"].as_array().into_iter().flatten() {
            let target = p["targetPort"].as_i64().expect("numeric targetPort");
            assert!(
                ports.contains(&target),
                "Service {}: {target} not in {ports:?}",
                s["metadata"]["name"]
            );
        }
    }
}
