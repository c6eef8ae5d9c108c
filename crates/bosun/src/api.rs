//! The control API (placeholder: replaced by the control-plane work).

use bosun_config::Settings;
use bosun_core::Handle;

/// The running API servers.
pub struct Api;

impl Api {
    /// Stops serving.
    pub async fn shutdown(self) {}
}

/// Starts the API on the control socket (and TCP when configured).
pub async fn serve(_handle: Handle, _settings: &Settings) -> Result<Api, String> {
    Ok(Api)
}
