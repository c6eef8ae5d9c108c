//! `bosun ctl` (placeholder: replaced by the control-plane work).

/// Arguments of `bosun ctl`.
#[derive(clap::Args)]
pub struct CtlArgs {
    /// The command and its arguments.
    #[arg(trailing_var_arg = true)]
    pub args: Vec<String>,
}

/// Runs a ctl command; returns the exit code.
pub fn main(_args: CtlArgs) -> i32 {
    eprintln!("bosun ctl: not available yet");
    2
}
