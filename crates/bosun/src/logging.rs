//! bosun's own log: tracing to stderr, human by default, JSON with
//! `BOSUN_LOG_FORMAT=json`; level from `BOSUN_LOG` (default `info`).

use std::path::Path;

use tracing_subscriber::EnvFilter;

/// Keeps the optional file writer flushing; drop it at exit.
pub struct Guard;

/// Installs the subscriber. `file`: also append bosun's log there.
pub fn init(file: Option<&Path>) -> Guard {
    let filter = EnvFilter::try_from_env("BOSUN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("BOSUN_LOG_FORMAT").is_ok_and(|v| v == "json");
    let file = file.and_then(|p| {
        if let Some(dir) = p.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let writer = move || -> Box<dyn std::io::Write> {
        match &file {
            Some(f) => match f.try_clone() {
                Ok(f) => Box::new(Tee(std::io::stderr(), f)),
                Err(_) => Box::new(std::io::stderr()),
            },
            None => Box::new(std::io::stderr()),
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
    Guard
}

/// Writes to stderr and to the log file.
struct Tee(std::io::Stderr, std::fs::File);

impl std::io::Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = self.1.write_all(buf);
        self.0.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}
