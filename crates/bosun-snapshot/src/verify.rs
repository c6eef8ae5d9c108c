//! Verification: reading every object of a snapshot back without restoring anything,
//! and the small record of the last verification kept beside its manifest.
//!
//! `snapshots/<id>/VERIFIED.json` (or `daily/…`) is written after each verification
//! (a whole object, replaced each time; the manifest is never touched). Deleting the
//! snapshot deletes it too.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::crypto::Identities;
use crate::error::{Error, Result};
use crate::id::SnapshotId;
use crate::reader::SnapshotReader;
use crate::store::Store;

/// The object, beside `MANIFEST.json`, that records the last verification.
pub const VERIFIED_NAME: &str = "VERIFIED.json";

/// How deep an item was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Depth {
    /// Stored bytes, then decrypted (when encrypted) and decompressed bytes: sizes and
    /// sha256s of both, as a restore would check them.
    Full,
    /// Encrypted and no identity at hand: the stored (cipher) bytes' size and sha256.
    Ciphertext,
}

/// One verified item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCheck {
    /// The item's name.
    pub item: String,
    /// Bytes checked (raw size for a full check, stored size for ciphertext only).
    pub bytes: u64,
    /// How deep.
    pub depth: Depth,
}

/// `VERIFIED.json`: when a snapshot was last verified, by whom, and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// When it finished, Unix milliseconds.
    pub at_ms: u64,
    /// The host that verified it.
    pub host: String,
    /// True when every item checked out.
    pub ok: bool,
    /// `full` when every item was checked fully, else `ciphertext`.
    pub depth: Depth,
    /// The items checked (up to the damaged one).
    pub items: Vec<ItemCheck>,
    /// What was wrong, when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damage: Option<String>,
}

/// Progress of a verification: item, bytes of it so far, its total, since when.
pub struct VerifyProgress<'a> {
    /// The item being read.
    pub item: &'a str,
    /// Its bytes read so far.
    pub done: u64,
    /// Its size.
    pub total: u64,
    /// When its reading began.
    pub started: Instant,
}

/// Reads every object of snapshot `id` to its end and checks sizes and sha256s: fully
/// (decrypting and decompressing) when possible, the stored bytes only for encrypted
/// items without an identity. Calls `progress` as bytes come (the caller throttles).
/// Records the outcome as `VERIFIED.json` (a failure to record is logged, not fatal).
///
/// `Ok` with `ok == false` when the snapshot is damaged (the record names the item and
/// what did not match); `Err` when it could not be checked (store unreachable, no such
/// snapshot, a manifest that cannot be read).
pub async fn verify_snapshot(
    store: Arc<dyn Store>,
    id: &SnapshotId,
    identities: Option<Identities>,
    host: &str,
    progress: &mut (dyn FnMut(VerifyProgress<'_>) + Send),
) -> Result<Verification> {
    let reader = SnapshotReader::open(store.clone(), id.clone())
        .await?
        .with_identities(identities.clone());
    let mut items = Vec::new();
    let mut damage = None;
    for item in reader.manifest().items.clone() {
        let full = match (&item.encryption, &identities) {
            (None, _) => true,
            (Some(enc), Some(ids)) => ids.can_open(&enc.recipients),
            (Some(_), None) => false,
        };
        let started = Instant::now();
        let checked = if full {
            read_all(&reader, &item.name, item.raw_size, started, progress).await
        } else {
            progress(VerifyProgress {
                item: &item.name,
                done: 0,
                total: item.stored_size,
                started,
            });
            reader.verify_stored(&item.name).await
        };
        match checked {
            Ok(bytes) => items.push(ItemCheck {
                item: item.name.clone(),
                bytes,
                depth: if full { Depth::Full } else { Depth::Ciphertext },
            }),
            Err(e) if e.is_integrity() || e.is_not_found() => {
                damage = Some(format!(
                    "object {} ({}): {e}",
                    id.key(&item.object),
                    item.name
                ));
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let depth = if items.iter().all(|i| i.depth == Depth::Full) {
        Depth::Full
    } else {
        Depth::Ciphertext
    };
    let record = Verification {
        at_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        host: host.to_string(),
        ok: damage.is_none(),
        depth,
        items,
        damage,
    };
    match serde_json::to_vec_pretty(&record) {
        Ok(json) => {
            if let Err(e) = store.put_small(&id.key(VERIFIED_NAME), &json).await {
                tracing::warn!(snapshot = %id, "cannot record the verification: {e}");
            }
        }
        Err(e) => tracing::warn!("serialising the verification record: {e}"),
    }
    Ok(record)
}

async fn read_all(
    reader: &SnapshotReader,
    name: &str,
    total: u64,
    started: Instant,
    progress: &mut (dyn FnMut(VerifyProgress<'_>) + Send),
) -> Result<u64> {
    let mut stream = reader.item_stream(name).await?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    loop {
        let n = stream.read(&mut buf).await.map_err(|e| {
            Error::io(
                format!("verifying item '{name}' of snapshot {}", reader.id()),
                e,
            )
        })?;
        if n == 0 {
            return Ok(done);
        }
        done += n as u64;
        progress(VerifyProgress {
            item: name,
            done,
            total,
            started,
        });
    }
}

/// The last verification recorded for `id`; `None` when it was never verified.
pub async fn last_verified(store: &dyn Store, id: &SnapshotId) -> Result<Option<Verification>> {
    match store.get_small(&id.key(VERIFIED_NAME)).await {
        Ok(data) => Ok(serde_json::from_slice(&data).ok()),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}
