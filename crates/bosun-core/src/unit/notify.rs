//! sd_notify for the `notify` ready probe.

use std::path::PathBuf;

use tokio::sync::watch;

use crate::spawn::Identity;

/// A per-unit `$NOTIFY_SOCKET` (sd_notify): `READY=1` sets the flag,
/// `STATUS=` is logged. Removed when dropped.
pub(super) struct NotifySocket {
    pub(super) path: PathBuf,
    pub(super) ready: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl NotifySocket {
    pub(super) fn bind(
        dir: &std::path::Path,
        unit: &str,
        identity: Option<&Identity>,
    ) -> std::io::Result<NotifySocket> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{unit}.sock"));
        let _ = std::fs::remove_file(&path);
        let sock = tokio::net::UnixDatagram::bind(&path)?;
        if let Some(id) = identity {
            let _ = nix::unistd::chown(&path, Some(id.uid()), Some(id.gid()));
        }
        let (tx, rx) = watch::channel(false);
        let name = unit.to_string();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf).await {
                let msg = String::from_utf8_lossy(&buf[..n]);
                for line in msg.lines() {
                    if line == "READY=1" {
                        let _ = tx.send(true);
                    } else if let Some(s) = line.strip_prefix("STATUS=") {
                        tracing::info!(unit = %name, "status: {s}");
                    }
                }
            }
        });
        Ok(NotifySocket {
            path,
            ready: rx,
            task,
        })
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}
