//! Turning a unit's config into a process: argv, environment, user and group,
//! working directory, umask, its own process group, and its stdio.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bosun_config::Unit;
use nix::unistd::{Gid, Group, Uid, User};

/// Why a unit's process cannot be prepared: its identity or its environment.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The user database could not be read for `user`.
    #[error("cannot look up user {user:?}: {source}")]
    UserLookup {
        /// The name or id as configured.
        user: String,
        /// What the lookup said.
        source: nix::Error,
    },
    /// `user` is a name that the user database does not know.
    #[error("user {0:?} does not exist in /etc/passwd")]
    NoSuchUser(String),
    /// The group database could not be read for `group`.
    #[error("cannot look up group {group:?}: {source}")]
    GroupLookup {
        /// The name as configured.
        group: String,
        /// What the lookup said.
        source: nix::Error,
    },
    /// `group` is a name that the group database does not know.
    #[error("group {0:?} does not exist in /etc/group")]
    NoSuchGroup(String),
    /// The program could not be started.
    #[error("cannot run {program}: {source}")]
    Run {
        /// argv[0].
        program: String,
        /// What exec said.
        source: std::io::Error,
    },
    /// The `env_file` cannot be read.
    #[error("cannot read env_file {}: {source}", path.display())]
    EnvFile {
        /// The file.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// A file of `env_files` cannot be read (the unit does not start).
    #[error("cannot read the file of env_files.{var} for {unit}: {}: {source}", path.display())]
    SecretFile {
        /// The unit.
        unit: String,
        /// The variable it is for.
        var: String,
        /// The file.
        path: PathBuf,
        /// Why not.
        source: std::io::Error,
    },
    /// A file of `env_files` holds a NUL byte, which no environment value can.
    #[error("the file of env_files.{var} for {unit} holds a NUL byte, which an environment variable cannot: {}", path.display())]
    SecretNul {
        /// The unit.
        unit: String,
        /// The variable it is for.
        var: String,
        /// The file.
        path: PathBuf,
    },
    /// A line of the `env_file` is not `KEY=VALUE` (the line itself is not
    /// echoed: it may hold a secret).
    #[error("{}:{line}: expected KEY=VALUE", path.display())]
    EnvFileLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
}

/// Where a spawned process's stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdout {
    /// Pipes read by bosun (prefixing, ring buffer, log probe, log file).
    Piped,
    /// bosun's own stdout/stderr.
    Inherit,
    /// /dev/null.
    Null,
    /// stdout piped to bosun as data (a dump's output), stderr to bosun's stderr.
    Data,
}

/// The resolved identity a unit runs as.
#[derive(Debug, Clone)]
pub struct Identity {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    home: Option<OsString>,
    name: String,
}

impl Identity {
    /// Resolves `user`/`group` names or numeric ids against the system databases.
    pub fn resolve(
        user: Option<&str>,
        group: Option<&str>,
    ) -> Result<Option<Identity>, SpawnError> {
        if user.is_none() && group.is_none() {
            return Ok(None);
        }
        let (uid, mut gid, home, name) = match user {
            Some(u) => {
                let found = match u.parse::<u32>() {
                    Ok(n) => User::from_uid(Uid::from_raw(n)),
                    Err(_) => User::from_name(u),
                }
                .map_err(|source| SpawnError::UserLookup {
                    user: u.to_string(),
                    source,
                })?;
                match found {
                    Some(pw) => (pw.uid, pw.gid, Some(pw.dir.into_os_string()), pw.name),
                    None => match u.parse::<u32>() {
                        // A bare uid without a passwd entry is allowed (OpenShift-style).
                        Ok(n) => (Uid::from_raw(n), Gid::from_raw(n), None, u.to_string()),
                        Err(_) => return Err(SpawnError::NoSuchUser(u.to_string())),
                    },
                }
            }
            None => (Uid::current(), Gid::current(), None, String::new()),
        };
        if let Some(g) = group {
            gid = match g.parse::<u32>() {
                Ok(n) => Gid::from_raw(n),
                Err(_) => {
                    Group::from_name(g)
                        .map_err(|source| SpawnError::GroupLookup {
                            group: g.to_string(),
                            source,
                        })?
                        .ok_or_else(|| SpawnError::NoSuchGroup(g.to_string()))?
                        .gid
                }
            };
        }
        let groups = if user.is_some() && !name.is_empty() {
            supplementary_groups(&name, gid)
        } else {
            vec![gid]
        };
        Ok(Some(Identity {
            uid,
            gid,
            groups,
            home,
            name,
        }))
    }

    /// The uid processes run as.
    pub fn uid(&self) -> Uid {
        self.uid
    }

    /// The gid processes run as.
    pub fn gid(&self) -> Gid {
        self.gid
    }
}

fn supplementary_groups(user: &str, primary: Gid) -> Vec<Gid> {
    let mut groups = vec![primary];
    if let Ok(text) = std::fs::read_to_string("/etc/group") {
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == user) {
                if let Ok(g) = f[2].parse::<u32>() {
                    let g = Gid::from_raw(g);
                    if !groups.contains(&g) {
                        groups.push(g);
                    }
                }
            }
        }
    }
    groups
}

/// Everything needed to start one process of a unit.
pub struct Spec<'a> {
    /// argv, non-empty.
    pub argv: Vec<String>,
    /// Extra environment on top of bosun's own (later entries win). Values are
    /// `OsString`: a secret file's content need not be UTF-8.
    pub env: Vec<(String, OsString)>,
    /// Working directory.
    pub cwd: Option<&'a Path>,
    /// User and groups.
    pub identity: Option<&'a Identity>,
    /// umask.
    pub umask: Option<u32>,
    /// stdout/stderr handling.
    pub stdout: Stdout,
    /// Give the process a pipe on stdin (dump/load streams) instead of /dev/null.
    pub stdin_piped: bool,
    /// Put it in a process group of its own (units: yes; so the whole group can be signalled).
    pub own_process_group: bool,
}

/// A [`Spec`]'s command, built to be spawned on another thread: its stdio is
/// piped, `/dev/null` or inherited, never one of bosun's own descriptors.
pub struct Prepared {
    pub(crate) command: Command,
    /// The command needs a fork (see [`Spec::needs_fork`]).
    pub(crate) fork: bool,
}

impl<'a> Spec<'a> {
    /// A process of `unit`, whatever it is for (the unit itself, an exec probe, a
    /// dump, a load): one rule for all of them. It runs as the unit's user and
    /// groups, with its environment, in its `cwd`, with its `umask`, in a process
    /// group of its own, stdin from /dev/null and output to /dev/null until told
    /// otherwise.
    pub fn for_unit(
        unit: &'a Unit,
        identity: Option<&'a Identity>,
        env: Vec<(String, OsString)>,
        argv: Vec<String>,
    ) -> Spec<'a> {
        Spec {
            argv,
            env,
            cwd: unit.cwd.as_deref(),
            identity,
            umask: unit.umask,
            stdout: Stdout::Null,
            stdin_piped: false,
            own_process_group: true,
        }
    }

    /// Where stdout and stderr go.
    pub fn output(mut self, stdout: Stdout) -> Spec<'a> {
        self.stdout = stdout;
        self
    }

    /// A pipe on stdin (a load's input).
    pub fn stdin_piped(mut self) -> Spec<'a> {
        self.stdin_piped = true;
        self
    }

    /// True when the command needs a `pre_exec` hook (a user, group or umask):
    /// std must then fork instead of `posix_spawn`, and the spawn must go
    /// through [`crate::reaper::Reaper::spawn`].
    pub fn needs_fork(&self) -> bool {
        self.umask.is_some()
            || self
                .identity
                .is_some_and(|i| i.uid != Uid::current() || i.gid != Gid::current())
    }

    /// The command, ready for [`crate::reaper::Reaper::spawn_prepared`].
    pub fn prepared(&self) -> Prepared {
        Prepared {
            command: self.command(),
            fork: self.needs_fork(),
        }
    }

    /// Builds the `std::process::Command`. Spawn it with [`crate::reaper::Reaper::spawn`].
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..]);
        if let Some(id) = self.identity {
            // Like su(1): the unit sees its own HOME/USER/LOGNAME unless the config sets them.
            if let Some(home) = &id.home {
                cmd.env("HOME", home);
            }
            if !id.name.is_empty() {
                cmd.env("USER", &id.name).env("LOGNAME", &id.name);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        if let Some(cwd) = self.cwd {
            cmd.current_dir(cwd);
        }
        if self.own_process_group {
            cmd.process_group(0);
        }
        cmd.stdin(if self.stdin_piped {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let (out, err) = match self.stdout {
            Stdout::Piped => (Stdio::piped(), Stdio::piped()),
            Stdout::Inherit => (Stdio::inherit(), Stdio::inherit()),
            Stdout::Null => (Stdio::null(), Stdio::null()),
            Stdout::Data => (Stdio::piped(), Stdio::inherit()),
        };
        cmd.stdout(out).stderr(err);

        let umask = self.umask;
        let ids = self
            .identity
            .map(|i| (i.uid, i.gid, i.groups.clone()))
            .filter(|(uid, gid, _)| *uid != Uid::current() || *gid != Gid::current());
        if umask.is_none() && ids.is_none() {
            // No pre_exec hook: std can use posix_spawn, much cheaper than fork.
            return cmd;
        }
        // SAFETY: the closure runs between fork and exec and only makes
        // async-signal-safe system calls on data prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(mask) = umask {
                    libc::umask(mask as libc::mode_t);
                }
                if let Some((uid, gid, groups)) = &ids {
                    nix::unistd::setgroups(groups)?;
                    nix::unistd::setgid(*gid)?;
                    nix::unistd::setuid(*uid)?;
                }
                Ok(())
            });
        }
        cmd
    }
}

/// The environment a unit gets on top of bosun's: `env_file` (read now, at each
/// start, so an edited file applies on restart), then `env`, then `env_files`
/// (each file read now too: a rotated secret applies on restart).
pub fn unit_env(unit: &Unit) -> Result<Vec<(String, OsString)>, SpawnError> {
    let mut env = Vec::new();
    if let Some(path) = &unit.env_file {
        env.extend(
            dotenv(path)?
                .into_iter()
                .map(|(k, v)| (k, OsString::from(v))),
        );
    }
    env.extend(unit.env.iter().map(|(k, v)| (k.clone(), OsString::from(v))));
    for (var, path) in &unit.env_files {
        env.push((var.clone(), secret_file(unit, var, path)?));
    }
    Ok(env)
}

/// The value of one `env_files` entry: the file's bytes as they are (they need
/// not be UTF-8), less one trailing `\n` or `\r\n` (what `echo` and most editors
/// leave at the end, and what Docker and Kubernetes secrets often carry). The
/// content is never put in an error.
fn secret_file(unit: &Unit, var: &str, path: &Path) -> Result<OsString, SpawnError> {
    use std::os::unix::ffi::OsStringExt;
    let mut bytes = std::fs::read(path).map_err(|source| SpawnError::SecretFile {
        unit: unit.name.clone(),
        var: var.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    } else if bytes.ends_with(b"\n") {
        bytes.truncate(bytes.len() - 1);
    }
    if bytes.contains(&0) {
        return Err(SpawnError::SecretNul {
            unit: unit.name.clone(),
            var: var.to_string(),
            path: path.to_path_buf(),
        });
    }
    Ok(OsString::from_vec(bytes))
}

/// The `KEY=VALUE` lines of an `env_file`.
fn dotenv(path: &Path) -> Result<Vec<(String, String)>, SpawnError> {
    let mut env = Vec::new();
    let text = std::fs::read_to_string(path).map_err(|source| SpawnError::EnvFile {
        path: path.to_path_buf(),
        source,
    })?;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            // The line itself is not echoed: it may hold a secret.
            return Err(SpawnError::EnvFileLine {
                path: path.to_path_buf(),
                line: n + 1,
            });
        };
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(v);
        env.push((k.trim().to_string(), v.to_string()));
    }
    Ok(env)
}
