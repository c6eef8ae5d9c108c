//! Writing a snapshot: items streamed and compressed, then the manifest, then `LATEST`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_compression::tokio::bufread::ZstdEncoder;
use async_compression::Level;
use tokio::io::{AsyncRead, BufReader};
use tokio::sync::mpsc;

use crate::crypto::{Encrypting, Recipients, AGE_X25519};
use crate::error::{Error, Result};
use crate::id::{check_item_name, SnapshotId, SnapshotKind, LATEST_KEY, MANIFEST_NAME};
use crate::manifest::{ItemEncryption, ItemKind, Manifest, ManifestItem, MANIFEST_FORMAT};
use crate::store::Store;
use crate::stream::{ChannelReader, ChannelWriter, Chunk, Hashing, Progress};
use crate::tarball;
use crate::time;

/// The version written into manifests.
pub const BOSUN_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Chunk size of the archive producer.
const TAR_CHUNK: usize = 256 * 1024;
/// Chunks in flight between the archive producer and the upload.
const TAR_CHUNKS_IN_FLIGHT: usize = 4;
/// Read buffer in front of the compressor.
const READ_BUF: usize = 256 * 1024;

/// Sends what `reader` gives, in chunks, then [`Chunk::End`] (or its error). Stops
/// early when the other side went away (the upload failed).
async fn feed<R: AsyncRead + Unpin>(mut reader: R, tx: mpsc::Sender<Chunk>) {
    use tokio::io::AsyncReadExt;
    loop {
        let mut buf = bytes::BytesMut::with_capacity(TAR_CHUNK);
        let chunk = match reader.read_buf(&mut buf).await {
            Ok(0) => Chunk::End,
            Ok(_) => Chunk::Data(buf.freeze()),
            Err(e) => Chunk::Failed(e),
        };
        let last = !matches!(chunk, Chunk::Data(_));
        if tx.send(chunk).await.is_err() || last {
            return;
        }
    }
}

/// Reads `r` to its end on a blocking thread, sending it on in chunks; gives `r` back
/// (for its counts and digests).
fn pump<R>(mut r: R, tx: mpsc::Sender<Chunk>) -> tokio::task::JoinHandle<R>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    use tokio::io::AsyncReadExt;
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        loop {
            let mut buf = bytes::BytesMut::with_capacity(TAR_CHUNK);
            let read = handle.block_on(async {
                while buf.len() < TAR_CHUNK {
                    if r.read_buf(&mut buf).await? == 0 {
                        break;
                    }
                }
                Ok::<_, std::io::Error>(())
            });
            let chunk = match read {
                Ok(()) if buf.is_empty() => Chunk::End,
                Ok(()) => Chunk::Data(buf.freeze()),
                Err(e) => Chunk::Failed(e),
            };
            let last = !matches!(chunk, Chunk::Data(_));
            if tx.blocking_send(chunk).is_err() || last {
                break;
            }
        }
        r
    })
}

/// Writes one snapshot. Nothing it writes is visible as a snapshot until
/// [`commit`](SnapshotWriter::commit) has written the manifest and then `LATEST`: a writer
/// that is aborted, dropped, or whose process dies leaves `LATEST` (and the snapshot it
/// names) untouched. Objects of an uncommitted snapshot may remain in the store; they
/// never become `LATEST`, and retention ([`crate::prune`]) removes them.
#[derive(Debug)]
pub struct SnapshotWriter {
    store: Arc<dyn Store>,
    id: SnapshotId,
    roles: Vec<String>,
    started: SystemTime,
    items: Vec<ManifestItem>,
    finished: bool,
    /// `encrypt_to`: every item is encrypted to these.
    recipients: Option<Recipients>,
}

/// The stored bytes of an item: the compressed stream, encrypted or not.
enum Body<R> {
    Plain(R),
    Age(Encrypting<R>),
}

impl<R> Body<R> {
    fn inner_mut(&mut self) -> &mut R {
        match self {
            Body::Plain(r) => r,
            Body::Age(e) => e.get_mut(),
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Body<R> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Body::Plain(r) => std::pin::Pin::new(r).poll_read(cx, buf),
            Body::Age(e) => std::pin::Pin::new(e).poll_read(cx, buf),
        }
    }
}

impl SnapshotWriter {
    /// Starts a snapshot of `kind` taken on `host` by a container with `roles`.
    ///
    /// Contacts the store (so an unreachable store fails here, before any data is read)
    /// and picks an id that no object in the store uses yet.
    pub async fn begin(
        store: Arc<dyn Store>,
        host: &str,
        roles: &[String],
        kind: SnapshotKind,
    ) -> Result<SnapshotWriter> {
        SnapshotWriter::begin_at(store, host, roles, kind, SystemTime::now()).await
    }

    /// Like [`begin`](SnapshotWriter::begin) with an explicit start time, which names the
    /// snapshot (for imports and tests of retention).
    pub async fn begin_at(
        store: Arc<dyn Store>,
        host: &str,
        roles: &[String],
        kind: SnapshotKind,
        started: SystemTime,
    ) -> Result<SnapshotWriter> {
        let mut id = SnapshotId::new(kind, started, host);
        let mut tries = 0;
        loop {
            let existing = store.list(&format!("{}/", id.dir())).await?;
            if existing.is_empty() {
                break;
            }
            tries += 1;
            if tries > 10 {
                return Err(Error::Invalid(format!(
                    "snapshot names {} and the next 10 seconds are taken in {}",
                    id,
                    store.describe()
                )));
            }
            id = id.next_second();
        }
        // Skipping a taken name moves into the future: wait for it, so that the next
        // snapshot of this host cannot get the same name again.
        if let Ok(ahead) = id.time().duration_since(SystemTime::now()) {
            if ahead > Duration::ZERO && ahead <= Duration::from_secs(11) {
                tokio::time::sleep(ahead).await;
            }
        }
        tracing::info!(snapshot = %id, store = %store.describe(), "snapshot started");
        Ok(SnapshotWriter {
            store,
            id,
            roles: roles.to_vec(),
            started,
            items: Vec::new(),
            finished: false,
            recipients: None,
        })
    }

    /// Encrypts every item written from now on to `recipients` (age, streaming).
    pub fn encrypt_to(&mut self, recipients: Recipients) {
        self.recipients = Some(recipients);
    }

    /// The id of the snapshot being written.
    pub fn id(&self) -> &SnapshotId {
        &self.id
    }

    /// The items written so far.
    pub fn items(&self) -> &[ManifestItem] {
        &self.items
    }

    fn check_new_item(&self, name: &str) -> Result<()> {
        check_item_name(name)?;
        if name == MANIFEST_NAME || self.items.iter().any(|i| i.name == name) {
            return Err(Error::Invalid(format!(
                "item {name:?} written twice in snapshot {}",
                self.id
            )));
        }
        Ok(())
    }

    /// Stores an opaque stream (e.g. a dump command's stdout) as item `name`, compressed
    /// with zstd on the fly: no temporary file, bounded memory. Records sizes and sha256
    /// of the raw and stored bytes. A read error from `reader` fails the item, and nothing
    /// is recorded for it.
    pub async fn put_stream<R>(&mut self, name: &str, reader: R) -> Result<ManifestItem>
    where
        R: AsyncRead + Unpin + Send,
    {
        self.check_new_item(name)?;
        self.store_item(name, ItemKind::Stream, reader).await
    }

    /// Stores a file or directory (recursively) as item `name`: a tar archive (regular
    /// files, directories, symlinks, with modes, owners and mtimes; sockets and fifos are
    /// skipped with a warning), compressed with zstd, streamed without a temporary file.
    ///
    /// A symlink at `path` or above it is followed only when it is root's and every
    /// directory down to it is one only root can change; any other symlink (one a unit
    /// could have made or swapped) fails the item: configure the real path. Below `path`,
    /// symlinks are archived as links, never followed.
    pub async fn put_path(&mut self, name: &str, path: &Path) -> Result<ManifestItem> {
        self.check_new_item(name)?;
        if let Err(e) = tokio::fs::symlink_metadata(path).await {
            return Err(Error::io(
                format!("backing up {} as item '{name}'", path.display()),
                e,
            ));
        }
        let (tx, rx) = mpsc::channel(TAR_CHUNKS_IN_FLIGHT);
        let src = path.to_path_buf();
        let producer = tokio::task::spawn_blocking(move || {
            let failed = tx.clone();
            let w = ChannelWriter::new(tx, TAR_CHUNK);
            // The writer is moved into the archive and back out on success.
            let result = tarball::write_tar(&src, w).and_then(ChannelWriter::finish);
            if let Err(e) = &result {
                // Make the upload fail (not end early): a truncated archive must never be
                // stored as if complete.
                let _ = failed
                    .blocking_send(Chunk::Failed(std::io::Error::new(e.kind(), e.to_string())));
            }
            result
        });
        let reader = ChannelReader::new(rx);
        let result = self.store_item(name, ItemKind::Tar, reader).await;
        let produced = producer.await;
        let context = || {
            format!(
                "item '{name}' of snapshot {}: archiving {}",
                self.id,
                path.display()
            )
        };
        match (result, produced) {
            (_, Ok(Err(e))) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(Error::io(context(), e))
            }
            (_, Err(e)) => Err(Error::io(context(), std::io::Error::other(e))),
            (result, _) => result,
        }
    }

    async fn store_item<R>(&mut self, name: &str, kind: ItemKind, reader: R) -> Result<ManifestItem>
    where
        R: AsyncRead + Unpin + Send,
    {
        let mut object = kind.object_name(name);
        let encryption = self.recipients.as_ref().map(|r| ItemEncryption {
            scheme: AGE_X25519.into(),
            recipients: r.names(),
        });
        if encryption.is_some() {
            object.push_str(".age");
        }
        let progress = Progress::new("backing up", &self.id.to_string(), name);
        // The dump's bytes go through a channel to a blocking thread that hashes,
        // compresses and encrypts them, and on through another channel to the upload:
        // the compression and the network each get a core.
        let (raw_tx, raw_rx) = mpsc::channel(TAR_CHUNKS_IN_FLIGHT);
        let (out_tx, out_rx) = mpsc::channel(TAR_CHUNKS_IN_FLIGHT);
        let raw = Hashing::new(ChannelReader::new(raw_rx), Some(progress));
        let compressed =
            // Level 1: a stop has a budget; database dumps still shrink several-fold.
            ZstdEncoder::with_quality(BufReader::with_capacity(READ_BUF, raw), Level::Fastest);
        let body = match &self.recipients {
            Some(r) => Body::Age(Encrypting::new(compressed, r)?),
            None => Body::Plain(compressed),
        };
        let worker = pump(Hashing::new(body, None), out_tx);
        let key = self.id.key(&object);
        let store = self.store.clone();
        let put = async move {
            // Owned here, so that a failed upload drops it and the pump stops.
            let mut stored = ChannelReader::with_context(out_rx, "the compressor stopped");
            store.put(&key, &mut stored).await
        };
        let written = {
            let mut put = std::pin::pin!(put);
            let mut feeding = std::pin::pin!(feed(reader, raw_tx));
            tokio::select! {
                // The upload ended first (it failed): the rest of the dump is not needed,
                // and dropping the feed lets the compressor stop.
                w = &mut put => w,
                () = &mut feeding => put.await,
            }
        };
        let mut stored = worker
            .await
            .map_err(|e| Error::io("the compression task", std::io::Error::other(e)))?;
        let written = written.map_err(|e| match e {
            Error::Io { context, source } => Error::Io {
                context: format!("item '{name}' of snapshot {}: {context}", self.id),
                source,
            },
            other => other,
        })?;
        let (stored_size, sha256_stored) = (stored.bytes(), stored.digest());
        let raw = stored.get_mut().inner_mut().get_mut().get_mut();
        let item = ManifestItem {
            name: name.to_string(),
            kind,
            object,
            compression: "zstd".into(),
            raw_size: raw.bytes(),
            stored_size,
            sha256_raw: raw.digest(),
            sha256_stored,
            encryption,
        };
        if written != item.stored_size {
            return Err(Error::Invalid(format!(
                "item '{name}' of snapshot {}: the store took {written} bytes of {}",
                self.id, item.stored_size
            )));
        }
        if let Some(p) = raw.progress() {
            p.finish(item.raw_size, item.stored_size);
        }
        self.items.push(item.clone());
        Ok(item)
    }

    /// Makes the snapshot exist: checks that every item's object is in the store with
    /// the size written, writes `MANIFEST.json`, then, for the regular series, `LATEST`.
    /// Returns the manifest. On error `LATEST` is unchanged (unless only the `LATEST`
    /// write failed, in which case the snapshot is complete but not `LATEST`).
    pub async fn commit(mut self) -> Result<Manifest> {
        let manifest = Manifest {
            // Format 1 when nothing is encrypted: older bosuns read it.
            format: if self.items.iter().any(|i| i.encryption.is_some()) {
                MANIFEST_FORMAT
            } else {
                1
            },
            id: self.id.to_string(),
            kind: self.id.kind(),
            host: self.id.host().to_string(),
            roles: self.roles.clone(),
            bosun_version: BOSUN_VERSION.to_string(),
            started: time::format_rfc3339(self.started),
            finished: time::format_rfc3339(SystemTime::now()),
            items: self.items.clone(),
        };
        // Every object must be in the store, whole, before the manifest says so.
        let present = self.store.list(&format!("{}/", self.id.dir())).await?;
        for item in &self.items {
            let key = self.id.key(&item.object);
            match present.iter().find(|o| o.key == key) {
                Some(o) if o.size == item.stored_size => {}
                found => {
                    return Err(Error::Invalid(format!(
                        "not committing snapshot {}: object {key} is {} (expected {} bytes); \
                         was it deleted while the snapshot was written?",
                        self.id,
                        found.map_or("missing".to_string(), |o| format!("{} bytes", o.size)),
                        item.stored_size
                    )))
                }
            }
        }
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::Invalid(format!("serialising the manifest: {e}")))?;
        self.store.put_small(&self.id.manifest_key(), &json).await?;
        if self.id.kind() == SnapshotKind::Regular {
            self.store
                .put_small(LATEST_KEY, format!("{}\n", self.id).as_bytes())
                .await?;
        }
        self.finished = true;
        tracing::info!(
            snapshot = %self.id,
            items = manifest.items.len(),
            stored_bytes = manifest.stored_size(),
            "snapshot committed"
        );
        Ok(manifest)
    }

    /// Gives the snapshot up: `LATEST` stays where it was. Objects already written stay
    /// in the store as an incomplete snapshot (see [`crate::gc_incomplete`]).
    pub fn abort(mut self) {
        self.finished = true;
        tracing::warn!(snapshot = %self.id, "snapshot aborted; LATEST is unchanged");
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if !self.finished {
            tracing::warn!(
                snapshot = %self.id,
                "snapshot dropped without commit; LATEST is unchanged"
            );
        }
    }
}
