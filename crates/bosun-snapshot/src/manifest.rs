//! The manifest: what a complete snapshot holds.

use serde::{Deserialize, Serialize};

use std::collections::HashSet;

use crate::id::{check_item_name, SnapshotId, SnapshotKind, MANIFEST_NAME};

/// Newest version of the manifest format this bosun reads. 2 adds encrypted items; a
/// snapshot without any is still written as format 1, which older bosuns read.
pub const MANIFEST_FORMAT: u32 = 2;

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
    /// sha256 (hex) of the stored bytes (the ciphertext when encrypted: checkable
    /// without a key).
    pub sha256_stored: String,
    /// How the stored bytes are encrypted; absent: they are not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<ItemEncryption>,
}

/// An encrypted item: to whom (public keys only, never an identity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemEncryption {
    /// `age-x25519`.
    pub scheme: String,
    /// The recipients' public keys (`age1…`): any of their identities decrypts it.
    pub recipients: Vec<String>,
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

    /// Whether any item is encrypted.
    pub fn encrypted(&self) -> bool {
        self.items.iter().any(|i| i.encryption.is_some())
    }

    /// Total stored size of its items.
    pub fn stored_size(&self) -> u64 {
        self.items.iter().map(|i| i.stored_size).sum()
    }

    /// Checks what a reader relies on as strictly as the writer produces it: the series
    /// of `id`, and per item a valid name (no `/`, `..`, leading `.`), no duplicate, the
    /// object name the writer derives from it, zstd, sha256s in lowercase hex.
    pub(crate) fn check(&self, id: &SnapshotId) -> Result<(), String> {
        if self.kind != id.kind() {
            return Err(format!(
                "the manifest says series {}, its place says {}",
                self.kind,
                id.kind()
            ));
        }
        if self.host != id.host() {
            return Err(format!(
                "the manifest says host {:?}, its name says {:?}",
                self.host,
                id.host()
            ));
        }
        let mut seen = HashSet::new();
        for item in &self.items {
            let bad = |why: &str| format!("its manifest lists item {:?}, {why}", item.name);
            check_item_name(&item.name).map_err(|e| bad(&format!("an invalid name ({e})")))?;
            if item.name == MANIFEST_NAME || !seen.insert(item.name.as_str()) {
                return Err(bad("twice (or named like the manifest)"));
            }
            let mut object = item.kind.object_name(&item.name);
            if let Some(enc) = &item.encryption {
                object.push_str(".age");
                let keys_ok = !enc.recipients.is_empty()
                    && enc
                        .recipients
                        .iter()
                        .all(|r| r.starts_with("age1") && r.len() < 200);
                if enc.scheme != crate::crypto::AGE_X25519 || !keys_ok {
                    return Err(bad(&format!(
                        "encrypted with {:?} to {} recipient(s) this bosun cannot use",
                        enc.scheme,
                        enc.recipients.len()
                    )));
                }
            }
            if item.object != object {
                return Err(bad(&format!(
                    "stored as {:?} instead of {object:?}",
                    item.object
                )));
            }
            if item.compression != "zstd" {
                return Err(bad(&format!("compressed with {:?}", item.compression)));
            }
            let hex = |s: &str| {
                s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            };
            if !hex(&item.sha256_raw) || !hex(&item.sha256_stored) {
                return Err(bad("with a malformed sha256"));
            }
        }
        Ok(())
    }
}

impl ItemKind {
    /// The object an item of this kind is stored as: `<name>.zst` or `<name>.tar.zst`.
    pub(crate) fn object_name(self, name: &str) -> String {
        match self {
            ItemKind::Stream => format!("{name}.zst"),
            ItemKind::Tar => format!("{name}.tar.zst"),
        }
    }
}
