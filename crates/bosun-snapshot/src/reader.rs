//! Reading a snapshot back: manifest, verified item streams, restoring paths.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_compression::tokio::bufread::ZstdDecoder;
use tokio::io::{AsyncBufRead, AsyncRead, BufReader, ReadBuf};
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use crate::crypto::Identities;
use crate::error::{Error, IntegrityError, Result};
use crate::id::{SnapshotId, LATEST_KEY};
use crate::manifest::{ItemKind, Manifest, ManifestItem, MANIFEST_FORMAT};
use crate::staging::{StageSlot, StagedFile, Staging, Tee};
use crate::store::{ObjectReader, Store};
use crate::stream::{ChannelReader, Chunk, Hashing, Progress, Tap, TapState};
use crate::tarball::RestoreOutcome;
use crate::unpack;
use bytes::BytesMut;

const READ_BUF: usize = 256 * 1024;

/// The snapshot that `LATEST` names.
///
/// `Ok(None)` only when the store answered that `LATEST` does not exist (a store that has
/// never held a snapshot). An unreachable store is an error, and so is a `LATEST` whose
/// content is not a snapshot id.
pub async fn latest(store: &dyn Store) -> Result<Option<SnapshotId>> {
    let data = match store.get_small(LATEST_KEY).await {
        Ok(d) => d,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&data);
    let id = text.trim().parse::<SnapshotId>().map_err(|e| {
        Error::Invalid(format!(
            "{LATEST_KEY} in {} is damaged ({e}): set it with `bosun snapshot restore ID`",
            store.describe()
        ))
    })?;
    Ok(Some(id))
}

/// Reads and checks a snapshot's manifest. A missing manifest means the snapshot is
/// incomplete (or does not exist): that is [`Error::NotFound`].
pub async fn read_manifest(store: &dyn Store, id: &SnapshotId) -> Result<Manifest> {
    let data = store
        .get_small(&id.manifest_key())
        .await
        .map_err(|e| match e {
            Error::NotFound { store, .. } => Error::NotFound {
                store,
                what: format!("snapshot {id} (no {})", id.manifest_key()),
            },
            other => other,
        })?;
    let manifest: Manifest = serde_json::from_slice(&data).map_err(|e| {
        Error::Invalid(format!(
            "manifest of snapshot {id} in {} is damaged: {e}",
            store.describe()
        ))
    })?;
    if manifest.format > MANIFEST_FORMAT {
        return Err(Error::Invalid(format!(
            "snapshot {id} has manifest format {} but this bosun reads up to {MANIFEST_FORMAT}: upgrade bosun",
            manifest.format
        )));
    }
    if manifest.id != id.to_string() {
        return Err(Error::Invalid(format!(
            "manifest at {} names snapshot {}, not {id}",
            id.manifest_key(),
            manifest.id
        )));
    }
    manifest.check(id).map_err(|why| {
        Error::Invalid(format!(
            "snapshot {id} in {}: {why}; bosun never writes such a manifest: the store was \
             tampered with or damaged. Pick another snapshot (`bosun snapshot list`, \
             `bosun snapshot restore ID`)",
            store.describe()
        ))
    })?;
    Ok(manifest)
}

/// Reads the items of one complete snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotReader {
    store: Arc<dyn Store>,
    id: SnapshotId,
    manifest: Manifest,
    /// `identity_file`, for encrypted items.
    identities: Option<Identities>,
}

impl SnapshotReader {
    /// Opens a snapshot (reads its manifest).
    pub async fn open(store: Arc<dyn Store>, id: SnapshotId) -> Result<SnapshotReader> {
        let manifest = read_manifest(store.as_ref(), &id).await?;
        Ok(SnapshotReader {
            store,
            id,
            manifest,
            identities: None,
        })
    }

    /// Decrypts encrypted items with `identities` (`identity_file`).
    pub fn with_identities(mut self, identities: Option<Identities>) -> SnapshotReader {
        self.identities = identities;
        self
    }

    /// Fails at once, before any byte is read, when an encrypted item cannot be
    /// decrypted with the identities at hand: none configured (naming `identity_file`),
    /// or none of them is one the item was encrypted to (naming the file and the keys
    /// needed). `Ok` for a snapshot without encrypted items.
    pub fn check_keys(&self) -> Result<()> {
        for item in &self.manifest.items {
            self.check_item_keys(item)?;
        }
        Ok(())
    }

    fn check_item_keys(&self, item: &ManifestItem) -> Result<()> {
        let Some(enc) = &item.encryption else {
            return Ok(());
        };
        let to = enc.recipients.join(", ");
        match &self.identities {
            None => Err(Error::Refused(format!(
                "item '{}' of snapshot {} is encrypted (to {to}): reading it needs the                  matching age identity; set identity_file in [snapshot] to the file that                  holds it. Nothing was read or changed",
                item.name, self.id
            ))),
            Some(ids) if !ids.can_open(&enc.recipients) => Err(Error::Refused(format!(
                "item '{}' of snapshot {} is encrypted to {to}, and no identity in {}                  (public keys {}) is one of those: add the identity of one of them to {}                  (it may hold several, e.g. the old key after a rotation). Nothing was                  read or changed",
                item.name,
                self.id,
                ids.file().display(),
                ids.public().join(", "),
                ids.file().display()
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Opens the snapshot that `LATEST` names; `Ok(None)` only when the store has no
    /// `LATEST`. A `LATEST` naming a snapshot without manifest is [`Error::Invalid`]
    /// (never [`Error::NotFound`], which a caller might take for "no snapshot").
    pub async fn open_latest(store: Arc<dyn Store>) -> Result<Option<SnapshotReader>> {
        let Some(id) = latest(store.as_ref()).await? else {
            return Ok(None);
        };
        match SnapshotReader::open(store.clone(), id.clone()).await {
            Ok(r) => Ok(Some(r)),
            // Not "no snapshot": LATEST exists, so the store is damaged.
            Err(e) if e.is_not_found() => Err(Error::Invalid(format!(
                "{LATEST_KEY} in {} names snapshot {id}, whose manifest is missing: \
                 pick a complete snapshot with `bosun snapshot restore ID` ({e})",
                store.describe()
            ))),
            Err(e) => Err(e),
        }
    }

    /// The snapshot id.
    pub fn id(&self) -> &SnapshotId {
        &self.id
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn item(&self, name: &str) -> Result<&ManifestItem> {
        self.manifest.item(name).ok_or_else(|| Error::NotFound {
            store: self.store.describe(),
            what: format!("item '{name}' in snapshot {}", self.id),
        })
    }

    /// Opens an item's raw bytes as a stream: decompressed while read, with size and
    /// sha256 of both the stored and the raw bytes checked at end of stream. A mismatch is
    /// an [`io::Error`] of kind `InvalidData` carrying an [`IntegrityError`] that names
    /// the item and the snapshot; read the stream to its end before trusting the data.
    /// Reads the store; [`item_stream_verified`](Self::item_stream_verified) reads a
    /// copy staged by the verifying pass.
    pub async fn item_stream(&self, name: &str) -> Result<ItemReader> {
        self.open_item(name, "restoring", Via::Store).await
    }

    /// The second pass after [`verify_item_staged`](Self::verify_item_staged): like
    /// [`item_stream`](Self::item_stream), with exactly the same decryption,
    /// decompression and checks, but reading the staged copy when the first pass made
    /// one (else the store, as `item_stream`). The staged copy's name is removed as it
    /// is opened and its bytes are freed when the stream ends or is dropped: a staged
    /// file changed since the first pass fails this one with an [`IntegrityError`],
    /// exactly like an object changed in the store.
    pub async fn item_stream_verified(&self, verified: VerifiedItem) -> Result<ItemReader> {
        let via = match verified.staged {
            Some(staged) => Via::Staged(staged),
            None => Via::Store,
        };
        self.open_item(&verified.name, "restoring", via).await
    }

    async fn open_item(&self, name: &str, action: &'static str, via: Via) -> Result<ItemReader> {
        let item = self.item(name)?.clone();
        self.check_item_keys(&item)?;
        let key = self.id.key(&item.object);
        let source: ObjectReader = match via {
            Via::Store => self.store.get(&key).await?,
            Via::Tee(slot) => Box::pin(Tee::new(self.store.get(&key).await?, slot, name)),
            Via::Staged(staged) => {
                let path = staged.path().to_path_buf();
                match staged.into_reader() {
                    Ok(f) => Box::pin(BufReader::with_capacity(READ_BUF, f)),
                    Err(e) => {
                        tracing::info!(
                            item = %name,
                            "cannot read the staged copy {} ({e}): reading item '{name}' from the store again",
                            path.display()
                        );
                        self.store.get(&key).await?
                    }
                }
            }
        };
        let (tap, stored) = Tap::new(source);
        let compressed: Source = match (&item.encryption, &self.identities) {
            (Some(_), Some(ids)) => {
                let buffered = BufReader::with_capacity(READ_BUF, tap).compat();
                let decryptor = age::Decryptor::new_async_buffered(buffered)
                    .await
                    .map_err(|e| self.age_error(&item, &stored, e))?;
                let plain = decryptor
                    .decrypt_async(ids.as_dyn())
                    .map_err(|e| self.age_error(&item, &stored, e))?;
                Box::pin(plain.compat())
            }
            _ => Box::pin(tap),
        };
        Ok(ItemReader::spawn(Verifying::new(
            compressed,
            stored,
            item,
            self.id.to_string(),
            action,
        )))
    }

    /// An age header that does not open: the store failed, the key is not one it was
    /// encrypted to, or the header is damaged.
    fn age_error(
        &self,
        item: &ManifestItem,
        stored: &Arc<Mutex<TapState>>,
        e: age::DecryptError,
    ) -> Error {
        let failed = stored.lock().expect("poisoned").failed;
        match e {
            age::DecryptError::Io(io) if failed => Error::io(
                format!("reading item '{}' of snapshot {}", item.name, self.id),
                io,
            ),
            // The manifest names a key we hold (checked before): the header was
            // tampered with or replaced.
            age::DecryptError::NoMatchingKeys => Error::Integrity(IntegrityError {
                snapshot: self.id.to_string(),
                item: item.name.clone(),
                detail: format!(
                    "the age header of {} does not open with the identity the manifest names (tampered or replaced)",
                    item.object
                ),
            }),
            other => Error::Integrity(IntegrityError {
                snapshot: self.id.to_string(),
                item: item.name.clone(),
                detail: format!("the age header of {} does not open ({other})", item.object),
            }),
        }
    }

    /// Reads an item's stored object to its end and checks its size and sha256 against
    /// the manifest, without decrypting or decompressing it: what can be checked
    /// without a key. Returns the stored size.
    pub async fn verify_stored(&self, name: &str) -> Result<u64> {
        let item = self.item(name)?.clone();
        let source = self.store.get(&self.id.key(&item.object)).await?;
        let mut hashing = Hashing::new(source, None);
        let context = || format!("verifying item '{name}' of snapshot {}", self.id);
        tokio::io::copy(&mut hashing, &mut tokio::io::sink())
            .await
            .map_err(|e| Error::io(context(), e))?;
        let (size, digest) = (hashing.bytes(), hashing.digest());
        let bad = |detail: String| {
            Error::Integrity(IntegrityError {
                snapshot: self.id.to_string(),
                item: name.to_string(),
                detail,
            })
        };
        if size != item.stored_size {
            return Err(bad(format!(
                "stored size {size} bytes, manifest says {} (truncated or damaged object {})",
                item.stored_size, item.object
            )));
        }
        if digest != item.sha256_stored {
            return Err(bad(format!(
                "stored sha256 {digest}, manifest says {} (object {})",
                item.sha256_stored, item.object
            )));
        }
        Ok(size)
    }

    /// Reads an item to its end without keeping any of it, checking sizes and sha256s:
    /// run it before feeding the item to a command that acts on its input as it reads
    /// (a `load`), so that it never sees damaged bytes. Returns the raw size.
    ///
    /// The bytes are read from the store again by the second pass
    /// ([`item_stream`](Self::item_stream)), which checks them again;
    /// [`verify_item_staged`](Self::verify_item_staged) keeps a local copy instead.
    pub async fn verify_item(&self, name: &str) -> Result<u64> {
        Ok(self.verify_item_staged(name, None).await?.raw_size)
    }

    /// The first pass of a restore: [`verify_item`](Self::verify_item), and with
    /// `staging`, the stored bytes as they come from the store (still compressed and
    /// encrypted) also written to a file in `staging.dir` (0600, `O_EXCL|O_NOFOLLOW`),
    /// streamed, never held in memory. The parallel ranged GETs are the same.
    ///
    /// Hand the result to [`item_stream_verified`](Self::item_stream_verified): it reads
    /// the staged copy instead of the store and checks it again, all the same. Staging
    /// never fails a restore: when the copy would not fit (`stored_size` + `raw_size` +
    /// `keep_free` against the filesystem's free space, checked first), or cannot be made
    /// or written (no space, read-only, permission), it is dropped, said once at info
    /// level, and the second pass reads the store. A failed first pass, or a
    /// [`VerifiedItem`] dropped unused, removes the staged copy.
    pub async fn verify_item_staged(
        &self,
        name: &str,
        staging: Option<&Staging>,
    ) -> Result<VerifiedItem> {
        let item = self.item(name)?;
        let slot: StageSlot = Arc::new(Mutex::new(
            staging.and_then(|s| s.create(&self.id.to_string(), item)),
        ));
        let via = if slot.lock().expect("poisoned").is_some() {
            Via::Tee(slot.clone())
        } else {
            Via::Store
        };
        let result = match self.open_item(name, "verifying", via).await {
            Ok(mut stream) => tokio::io::copy(&mut stream, &mut tokio::io::sink())
                .await
                .map_err(|e| {
                    Error::io(
                        format!("verifying item '{name}' of snapshot {}", self.id),
                        e,
                    )
                }),
            Err(e) => Err(e),
        };
        // Taken (or dropped, which removes it) now, whatever the outcome: the decoding
        // thread wrote its last byte before the stream ended.
        let staged = slot.lock().expect("poisoned").take();
        let raw_size = result?;
        let stored_size = self.item(name)?.stored_size;
        Ok(VerifiedItem {
            name: name.to_string(),
            raw_size,
            staged: staged.filter(|s| s.written() == stored_size),
        })
    }

    /// Restores a file or directory item (written by
    /// [`put_path`](crate::SnapshotWriter::put_path)) to `dest`.
    ///
    /// Safe against bad data and a hostile store: the archive is unpacked into a
    /// temporary sibling of `dest` through directory descriptors (no link followed), every
    /// entry must be one bosun's writer could have produced (no `..`, absolute names,
    /// hard links, devices, fifos, symlink root, …) and every byte is verified; only then
    /// is the existing `dest` replaced (renamed aside, the new tree renamed in, the old one
    /// deleted). A failed restore (checksum, tampered archive, network, full disk) leaves
    /// `dest` as it was. When `dest` is a mount point the swap happens inside it, with the
    /// same rule. A symlink at `dest` or above it is followed only when root's in
    /// directories only root can change (the restore then goes to its target and the link
    /// stays); any other symlink is refused. Owners are restored when running as root.
    pub async fn restore_path(&self, name: &str, dest: &Path) -> Result<RestoreOutcome> {
        let item = self.item(name)?;
        if item.kind != ItemKind::Tar {
            return Err(Error::Invalid(format!(
                "item '{name}' of snapshot {} is a stream, not a file or directory: use item_stream",
                self.id
            )));
        }
        let stream = self.item_stream(name).await?;
        let bridge = tokio_util::io::SyncIoBridge::new(stream);
        let target = dest.to_path_buf();
        let outcome = tokio::task::spawn_blocking(move || unpack::restore_tar(bridge, &target))
            .await
            .map_err(|e| Error::io("restore task", io::Error::other(e)))?;
        outcome.map_err(|e| {
            Error::io(
                format!(
                    "restoring item '{name}' of snapshot {} to {} (left unchanged)",
                    self.id,
                    dest.display()
                ),
                e,
            )
        })
    }
}

/// An item whose first pass ([`SnapshotReader::verify_item_staged`]) succeeded, with
/// the staged copy of its stored bytes when one was made (removed when this is dropped).
#[derive(Debug)]
pub struct VerifiedItem {
    name: String,
    raw_size: u64,
    staged: Option<StagedFile>,
}

impl VerifiedItem {
    /// The item's raw size, as verified.
    pub fn raw_size(&self) -> u64 {
        self.raw_size
    }

    /// The staged copy, when the first pass made one.
    pub fn staged_path(&self) -> Option<&Path> {
        self.staged.as_ref().map(|s| s.path())
    }
}

/// Where an item's stored bytes come from.
enum Via {
    Store,
    /// The store, with a copy written to a staging file.
    Tee(StageSlot),
    /// A staged copy.
    Staged(StagedFile),
}

/// The compressed stream of an item: the stored object, decrypted when encrypted.
type Source = Pin<Box<dyn AsyncRead + Send>>;
type Decoder = ZstdDecoder<BufReader<Source>>;

/// Chunks the decoding thread hands to the reader: its lead on the reader.
const PIPE_CHUNK: usize = 256 * 1024;
const PIPE_CHUNKS: usize = 4;

/// An item's raw bytes, verified at end of stream (see
/// [`SnapshotReader::item_stream`]).
///
/// Decryption, decompression and both sha256s run on a blocking thread (the network
/// stays on the runtime's thread), so a restore uses two cores; the bytes come through
/// a bounded channel ([`PIPE_CHUNKS`] × [`PIPE_CHUNK`]), in order, with the verifying
/// reader's errors unchanged.
pub struct ItemReader {
    pipe: ChannelReader,
    item: String,
    snapshot: String,
}

impl std::fmt::Debug for ItemReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemReader")
            .field("snapshot", &self.snapshot)
            .field("item", &self.item)
            .finish_non_exhaustive()
    }
}

impl ItemReader {
    fn spawn(mut v: Verifying) -> ItemReader {
        let (item, snapshot) = (v.item.name.clone(), v.snapshot.clone());
        let (tx, rx) = tokio::sync::mpsc::channel(PIPE_CHUNKS);
        let handle = tokio::runtime::Handle::current();
        // Detached: it ends when the item ends or fails, or when the reader is dropped
        // (its next send fails).
        drop(tokio::task::spawn_blocking(move || loop {
            let mut buf = BytesMut::with_capacity(PIPE_CHUNK);
            let chunk = match handle.block_on(fill(&mut v, &mut buf)) {
                Ok(()) if buf.is_empty() => Chunk::End,
                Ok(()) => Chunk::Data(buf.freeze()),
                Err(e) => Chunk::Failed(e),
            };
            if !matches!(chunk, Chunk::Data(_)) {
                // The source closed (a staged copy's bytes freed) before the reader
                // learns the end.
                drop(v);
                let _ = tx.blocking_send(chunk);
                return;
            }
            if tx.blocking_send(chunk).is_err() {
                return;
            }
        }));
        ItemReader {
            pipe: ChannelReader::with_context(rx, "the decoding thread stopped without finishing"),
            item,
            snapshot,
        }
    }
}

/// Reads into `buf` until it is full or the stream ends.
async fn fill(r: &mut Verifying, buf: &mut BytesMut) -> io::Result<()> {
    use tokio::io::AsyncReadExt;
    while buf.len() < PIPE_CHUNK {
        if r.read_buf(buf).await? == 0 {
            break;
        }
    }
    Ok(())
}

impl AsyncRead for ItemReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().pipe).poll_read(cx, buf)
    }
}

/// An item's raw bytes, verified at end of stream: the work [`ItemReader`] runs on its
/// thread.
struct Verifying {
    /// `restoring` or `verifying`, for log lines.
    action: &'static str,
    decoder: Hashing<Decoder>,
    /// What was read of the stored object.
    stored: Arc<Mutex<TapState>>,
    item: ManifestItem,
    snapshot: String,
    state: State,
    decode_error: Option<io::Error>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    /// The decoder failed: drain the source to tell corruption from a broken stream.
    Draining,
    Done,
}

impl Verifying {
    fn new(
        source: Source,
        stored: Arc<Mutex<TapState>>,
        item: ManifestItem,
        snapshot: String,
        action: &'static str,
    ) -> Verifying {
        let mut decoder = ZstdDecoder::new(BufReader::with_capacity(READ_BUF, source));
        decoder.multiple_members(true);
        let progress = Progress::new(action, &snapshot, &item.name);
        progress.expect(item.raw_size);
        Verifying {
            action,
            decoder: Hashing::new(decoder, Some(progress)),
            stored,
            item,
            snapshot,
            state: State::Reading,
            decode_error: None,
        }
    }

    fn integrity(&self, detail: String) -> io::Error {
        IntegrityError {
            snapshot: self.snapshot.clone(),
            item: self.item.name.clone(),
            detail,
        }
        .into()
    }

    fn stored(&mut self) -> &mut BufReader<Source> {
        self.decoder.get_mut().get_mut()
    }

    /// Reads the stored stream to its end (bytes the decoder did not need still count).
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let buf = self.stored();
            let n = match Pin::new(&mut *buf).poll_fill_buf(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(data)) => data.len(),
            };
            if n == 0 {
                return Poll::Ready(Ok(()));
            }
            Pin::new(buf).consume(n);
        }
    }

    /// Checks the stored bytes (size and sha256). `failure`: why reading them to their
    /// end failed, when it did without a store failure (decryption refused them).
    fn check_stored(&mut self, failure: Option<String>) -> io::Result<()> {
        let (size, digest, eof) = {
            let st = self.stored.lock().expect("poisoned");
            (st.bytes, st.digest(), st.eof)
        };
        if let (Some(why), false) = (&failure, eof) {
            return Err(self.integrity(format!(
                "the stored bytes of {} fail to decrypt after {size} bytes (damaged or tampered): {why}",
                self.item.object
            )));
        }
        if size != self.item.stored_size {
            return Err(self.integrity(format!(
                "stored size {size} bytes, manifest says {} (truncated or damaged object {})",
                self.item.stored_size, self.item.object
            )));
        }
        if digest != self.item.sha256_stored {
            return Err(self.integrity(format!(
                "stored sha256 {digest}, manifest says {}",
                self.item.sha256_stored
            )));
        }
        Ok(())
    }

    fn check_raw(&self) -> io::Result<()> {
        let (size, digest) = (self.decoder.bytes(), self.decoder.digest());
        if size != self.item.raw_size {
            return Err(self.integrity(format!(
                "decompressed size {size} bytes, manifest says {}",
                self.item.raw_size
            )));
        }
        if digest != self.item.sha256_raw {
            return Err(self.integrity(format!(
                "decompressed sha256 {digest}, manifest says {}",
                self.item.sha256_raw
            )));
        }
        Ok(())
    }

    /// The stream was read to its end (`drained`: how the rest of the stored bytes
    /// read): a source failure is a read error; otherwise the stored bytes are
    /// checked first (damage explains a decoding failure), then the decoded ones.
    fn finish(&mut self, drained: io::Result<()>) -> io::Result<()> {
        let decode_error = self.decode_error.take();
        let source_failed = self.stored.lock().expect("poisoned").failed;
        // The source itself failed (the network, the store): a read error,
        // not damage, whatever the stored bytes so far look like.
        let source_error = match (&drained, &decode_error) {
            (_, Some(e)) | (Err(e), None) => Some(e),
            (Ok(()), None) => None,
        };
        if let (Some(e), true) = (source_error, source_failed) {
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "reading item '{}' of snapshot {}: {e}",
                    self.item.name, self.snapshot
                ),
            ));
        }
        // Damaged stored bytes explain any decoding failure: say so first.
        let failure = drained
            .err()
            .or(decode_error
                .as_ref()
                .map(|e| io::Error::new(e.kind(), e.to_string())))
            .map(|e| e.to_string());
        self.check_stored(failure)?;
        if let Some(e) = decode_error {
            return Err(
                self.integrity(format!("the stored bytes match but do not decompress: {e}"))
            );
        }
        self.check_raw()?;
        tracing::info!(
            snapshot = %self.snapshot,
            item = %self.item.name,
            bytes = self.item.raw_size,
            "{} {}: verified",
            self.action,
            self.item.name
        );
        Ok(())
    }
}

impl AsyncRead for Verifying {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match this.state {
                State::Done => return Poll::Ready(Ok(())),
                State::Draining => {
                    let drained = match this.poll_drain(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(r) => r,
                    };
                    this.state = State::Done;
                    return Poll::Ready(this.finish(drained));
                }
                State::Reading => {
                    let before = buf.filled().len();
                    match Pin::new(&mut this.decoder).poll_read(cx, buf) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) if buf.filled().len() > before => {
                            if this.decoder.bytes() > this.item.raw_size {
                                this.state = State::Done;
                                return Poll::Ready(Err(this.integrity(format!(
                                    "more than the {} bytes the manifest records",
                                    this.item.raw_size
                                ))));
                            }
                            return Poll::Ready(Ok(()));
                        }
                        // End of the decoded stream: verify everything.
                        Poll::Ready(Ok(())) => this.state = State::Draining,
                        // Decoding failed or the source broke: drain what is left to
                        // tell damaged data from a broken connection.
                        Poll::Ready(Err(e)) => {
                            this.decode_error = Some(e);
                            this.state = State::Draining;
                        }
                    }
                }
            }
        }
    }
}
