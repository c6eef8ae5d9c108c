//! `bosun import supervisord FILE [-o OUT]`: the translation lives in
//! `bosun-import`; this prints its warnings and writes its text.

use std::path::{Path, PathBuf};

use clap::Subcommand;

/// What to import from.
#[derive(Subcommand)]
pub enum ImportCmd {
    /// Translate a supervisord.conf (and the files it includes) into bosun.toml.
    Supervisord {
        /// The supervisord config file.
        file: PathBuf,
        /// Write the result here (default: stdout). Nothing is written when the input cannot be read.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// Runs the import: 0 when translated (warnings on stderr), 2 when the input
/// cannot be read, 1 when the output cannot be written.
pub fn main(cmd: ImportCmd) -> i32 {
    let ImportCmd::Supervisord { file, output } = cmd;
    // `%(here)s` is the directory of the file, absolute as supervisord makes it.
    let path = std::fs::canonicalize(&file)
        .or_else(|_| std::path::absolute(&file))
        .unwrap_or(file);
    let import = match bosun_import::supervisord(&path, &bosun_import::Disk) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("{e}");
            eprintln!(
                "bosun: {} cannot be read as a supervisord config; nothing was written",
                path.display()
            );
            return 2;
        }
    };
    for w in &import.warnings {
        eprintln!("warning: {w}");
    }
    let target = match &output {
        Some(out) => match write(out, &import.toml) {
            Ok(()) => out.display().to_string(),
            Err(e) => {
                eprintln!("bosun: cannot write {}: {e}", out.display());
                return 1;
            }
        },
        None => {
            print!("{}", import.toml);
            "stdout".to_string()
        }
    };
    eprintln!(
        "bosun: translated {} to {target} with {} warning(s) (each is also a comment there); check it with `bosun check -c FILE`",
        path.display(),
        import.warnings.len()
    );
    0
}

/// Writes `text` to `path` whole or not at all (a temporary file, then a rename).
fn write(path: &Path, text: &str) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.import-tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}
