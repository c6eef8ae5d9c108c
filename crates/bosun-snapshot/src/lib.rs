//! bosun's backup and restore.
//!
//! A [`Store`] is a directory (`file:///var/lib/bosun/backup`, [`FileStore`]) or an S3
//! bucket (`s3://bucket/prefix`, [`S3Store`]); [`open_store`] picks one from a URL. Both
//! hold the same layout:
//!
//! ```text
//! snapshots/<YYYYMMDDTHHMMSSZ>-<host>/<item>.zst | <item>.tar.zst   items, zstd
//! snapshots/<id>/MANIFEST.json    items, sizes, sha256s, versions: written after the items
//! LATEST                          id of the newest complete snapshot: written last
//! daily/<id>/...                  daily snapshots, same format, kept by the date in the name
//! snapshots/<id>/VERIFIED.json    the last verification of a snapshot ([`verify_snapshot`])
//! running/<roles>                 the writer marker: one writer per prefix ([`lifecycle`])
//! ```
//!
//! Items may be encrypted with age ([`Recipients`], [`Identities`]): stored as
//! `<item>.zst.age`, the manifest naming the recipients. Retention ([`Retention`],
//! [`plan_prune`], [`prune`]) runs after every commit in the [`Lifecycle`].
//!
//! A snapshot exists once its manifest is written, and becomes the one restored at boot
//! once `LATEST` names it. [`SnapshotWriter`] streams items into the store (compressing
//! and hashing on the fly, no temporary files) and commits; [`SnapshotReader`] streams
//! them back, verifying sizes and checksums, and restores paths without deleting the
//! existing data before the new data is verified.
//!
//! "Not found" ([`Error::NotFound`], [`latest`] returning `Ok(None)`) and "store
//! unreachable" ([`Error::Unreachable`]) never mix: a boot that cannot reach its store
//! must fail, not start empty and later back the emptiness up over the good snapshot.
//!
//! This crate knows nothing of processes: callers feed dump commands' stdout to
//! [`SnapshotWriter::put_stream`] and load commands' stdin from
//! [`SnapshotReader::item_stream`].

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod crypto;
mod error;
mod id;
pub mod lifecycle;
mod manifest;
pub mod progress;
mod prune;
mod reader;
mod retention;
mod safe_fs;
mod staging;
mod store;
mod stream;
mod tarball;
/// The one civil-date routine of bosun (UTC, no time zone database).
pub mod time;
mod unpack;
mod verify;
mod writer;

pub use crypto::{Identities, Recipients, AGE_X25519};
pub use error::{Error, IntegrityError, Result};
pub use id::{SnapshotId, SnapshotKind, LATEST_KEY, MANIFEST_NAME};
pub use lifecycle::{DataCommands, Lifecycle};
pub use manifest::{ItemEncryption, ItemKind, Manifest, ManifestItem, MANIFEST_FORMAT};
pub use prune::{plan_prune, PrunePlan, Retention};
pub use reader::{latest, read_manifest, ItemReader, SnapshotReader, VerifiedItem};
pub use retention::{
    delete_snapshot, gc_incomplete, list_snapshots, prune, set_latest, SnapshotInfo,
};
pub use staging::{clear_staging, Staging, STAGING_DIR, STAGING_KEEP_FREE};
pub use store::{
    create_file_store, open_store, FileStore, ObjectInfo, ObjectReader, S3Options, S3Store, Store,
};
pub use tarball::RestoreOutcome;
pub use verify::{
    last_verified, verify_snapshot, Depth, ItemCheck, Verification, VerifyProgress, VERIFIED_NAME,
};
pub use writer::{SnapshotWriter, BOSUN_VERSION};
