//! The control API's protocol: every type and name on the wire, in one place
//! that the server ([`crate::api`]) and the client ([`crate::ctl`]) both
//! compile against, so the two can never disagree about a field, a path or an
//! environment variable (pueue's `pueue_lib::message` is the model).
//!
//! - [`replies`]: the API's own request and answer bodies (errors, messages,
//!   unit results, the snapshot list, backup answers).
//! - [`paths`]: the paths, their percent-encoding, and signal names.
//! - The daemon's types (`DaemonStatus`, `UnitStatus`, `HealthReport`,
//!   `LogLine`, …) are defined in `bosun-core`, which fills them, and
//!   re-exported here. They stay there because core cannot depend on the
//!   binary, and a crate of its own for a dozen plain types would add a crate
//!   without logic; what matters is the rule that `api` and `ctl` import every
//!   wire type from this module and nowhere else.

pub mod fleet;
pub mod paths;
pub mod replies;

pub use bosun_core::output::{LogLine, Stream};
// The whole vocabulary, including the parts that only appear as fields today
// (`BackupInfo`, `ExitInfo`): a new client or handler starts from here.
#[allow(unused_imports)]
pub use bosun_core::status::{
    BackupInfo, DaemonStatus, ExitInfo, HealthReport, Phase, ScheduleStatus, State, UnitStatus,
};
pub use fleet::{
    FleetCommandReply, FleetCommandRequest, FleetCommandRow, FleetPeer, FleetSingleton, FleetStatus,
};
pub use paths::{parse_signal, percent_decode, signal_name};
pub use replies::{
    ActionReply, BackupReply, ErrorReply, MessageReply, RunEvent, ScaleRequest, SignalRequest,
    SnapshotEntry, SnapshotSeries, SnapshotVerified, UnitLogLine, UnitLogLineRef, UnitResult,
};

/// Where bosun listens and `bosun ctl` connects when nothing else is said:
/// the config's own default for `control_socket`.
pub const DEFAULT_SOCKET: &str = bosun_config::DEFAULT_CONTROL_SOCKET;

/// The environment variable that holds the TCP bearer token: read by bosun
/// when `http_token_file` is unset, and by `bosun ctl` when `--token-file` is.
pub const TOKEN_ENV: &str = "BOSUN_HTTP_TOKEN";

/// The environment variable `bosun ctl` reads for the socket path.
pub const SOCKET_ENV: &str = "BOSUN_SOCKET";
