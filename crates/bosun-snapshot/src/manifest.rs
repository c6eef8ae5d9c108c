//! The manifest: what a complete snapshot holds.

use serde::{Deserialize, Serialize};

use crate::id::SnapshotKind;

/// Version of the manifest format.
pub const MANIFEST_FORMAT: u32 = 1;

/// How an item's raw bytes are to be understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// An opaque stream (a dump command's output).
    Stream,
    /// A tar archive of a file or directory whose root entry is named `data`.
    Tar,
}

/// One item of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestItem {
    /// The item's name (`postgres`, `files`).
    pub name: String,
    /// Stream or tar.
    pub kind: ItemKind,
    /// The object's name inside the snapshot directory (`files.tar.zst`).
    pub object: String,
    /// Compression of the stored bytes (`zstd`).
    pub compression: String,
    /// Size before compression.
    pub raw_size: u64,
    /// Size as stored.
    pub stored_size: u64,
    /// sha256 (hex) of the raw bytes.
    pub sha256_raw: String,
    /// sha256 (hex) of the stored bytes.
    pub sha256_stored: String,
}

/// `MANIFEST.json`: written after every item, before `LATEST`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The snapshot id (its string form).
    pub id: String,
    /// The series.
    pub kind: SnapshotKind,
    /// The host that took it.
    pub host: String,
    /// The roles active in the container that took it.
    pub roles: Vec<String>,
    /// The bosun version that wrote it.
    pub bosun_version: String,
    /// When it was started (RFC 3339, UTC).
    pub started: String,
    /// When it was committed (RFC 3339, UTC).
    pub finished: String,
    /// Its items, in the order they were written.
    pub items: Vec<ManifestItem>,
}

impl Manifest {
    /// The item with that name.
    pub fn item(&self, name: &str) -> Option<&ManifestItem> {
        self.items.iter().find(|i| i.name == name)
    }

    /// Total stored size of its items.
    pub fn stored_size(&self) -> u64 {
        self.items.iter().map(|i| i.stored_size).sum()
    }
}
