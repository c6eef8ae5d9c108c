//! Object stores: a directory (`file:///dir`) or an S3 bucket (`s3://bucket/prefix`).
//!
//! Both hold the same keys (`snapshots/<id>/<item>`, `LATEST`, …). Keys are relative,
//! `/`-separated, without `.` or `..` components.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::AsyncRead;

use crate::error::{Error, Result};

mod file;
mod s3;

pub use file::FileStore;
pub use s3::{S3Options, S3Store};

/// A readable stream of an object's bytes.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

/// One object found by [`Store::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key, relative to the store's root (no store prefix).
    pub key: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Where snapshots live. Implementations never leave a half-written object under its final
/// key, and keep "not found" ([`Error::NotFound`]) apart from "could not ask"
/// ([`Error::Unreachable`]).
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug {
    /// The store as a URL without credentials, for messages (`s3://bucket/prefix at
    /// http://127.0.0.1:3900`, `file:///var/lib/bosun/backup`).
    fn describe(&self) -> String;

    /// Writes an object from a stream, with bounded memory. Returns the number of bytes
    /// written. The object appears under `key` only once complete; on error nothing is
    /// left under `key` that was not there before (an older object stays as it was).
    async fn put(&self, key: &str, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<u64>;

    /// Opens an object for reading as a stream.
    async fn get(&self, key: &str) -> Result<ObjectReader>;

    /// Lists the objects whose key starts with `prefix` (a plain string prefix), sorted
    /// by key. A prefix with no objects gives an empty list, not [`Error::NotFound`].
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>>;

    /// Deletes an object. Deleting an object that does not exist succeeds.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Writes a small object (a manifest, `LATEST`) atomically.
    async fn put_small(&self, key: &str, data: &[u8]) -> Result<()>;

    /// Reads a small object whole.
    async fn get_small(&self, key: &str) -> Result<Vec<u8>>;

    /// The objects are files on this machine (a `file://` store): reading one twice
    /// costs no more than reading a local copy, so a restore does not stage it.
    fn is_local(&self) -> bool {
        false
    }
}

/// `create_store = true`: makes a missing `file://` store directory (0700, like the
/// volume an image would mount there); an existing one, or an `s3://` store, is
/// left as it is. Only for demos and development: in production a missing
/// directory means the backup volume is not mounted.
pub fn create_file_store(url: &str) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let Some(path) = url.strip_prefix("file://") else {
        return Ok(());
    };
    let path = std::path::Path::new(path);
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| {
            Error::io(
                format!(
                    "creating the store {} (create_store = true)",
                    path.display()
                ),
                e,
            )
        })?;
    tracing::info!(
        "created the snapshot store directory {} (create_store = true)",
        path.display()
    );
    Ok(())
}

/// Opens the store named by a URL: `file:///dir` or `s3://bucket[/prefix]`.
///
/// `endpoint` is the S3 endpoint (`S3ENDPOINTURL`, e.g. `http://127.0.0.1:3900`; `None`
/// or empty: AWS itself, virtual-host addressing), used with path-style addressing;
/// `region` is the S3 region. Credentials come from the standard AWS chain (environment
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, shared files, web identity, ECS, IMDS).
/// Opening does not contact the store; the first operation does.
pub async fn open_store(url: &str, endpoint: Option<&str>, region: &str) -> Result<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(Error::InvalidUrl {
                url: url.into(),
                reason: "a file store needs an absolute path: file:///var/lib/bosun/backup".into(),
            });
        }
        return Ok(Arc::new(FileStore::new(path)));
    }
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = match rest.split_once('/') {
            Some((b, p)) => (b, p.trim_matches('/')),
            None => (rest, ""),
        };
        if bucket.is_empty() {
            return Err(Error::InvalidUrl {
                url: url.into(),
                reason: "no bucket: use s3://bucket or s3://bucket/prefix".into(),
            });
        }
        let options = S3Options {
            bucket: bucket.into(),
            prefix: prefix.into(),
            endpoint: endpoint
                .filter(|e| !e.trim().is_empty())
                .map(|e| e.trim().to_string()),
            region: region.into(),
            ..S3Options::default()
        };
        return Ok(Arc::new(S3Store::connect(options).await?));
    }
    Err(Error::InvalidUrl {
        url: url.into(),
        reason: "unknown scheme: use file:///dir or s3://bucket/prefix".into(),
    })
}

/// Checks a key: relative, `/`-separated, no empty, `.` or `..` component.
pub(crate) fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.ends_with('/')
        || key.contains('\0')
        || key
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(Error::Invalid(format!("invalid object key {key:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_key;

    #[test]
    fn keys() {
        assert!(check_key("LATEST").is_ok());
        assert!(check_key("snapshots/20260101T000000Z-h/files.tar.zst").is_ok());
        for bad in ["", "/a", "a/", "a//b", "a/../b", "./a", "a\0b"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
