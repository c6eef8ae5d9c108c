//! Encryption at rest with age (X25519 recipients): loading keys, and the streaming
//! encryptor a snapshot's items pass through on their way to the store.
//!
//! What is stored for an encrypted item: `<item>.zst.age`, the zstd stream encrypted
//! with age (ChaCha20-Poly1305 in 64 KiB chunks, each authenticated; a truncated or
//! reordered stream fails). The manifest records the recipients' public keys (never an
//! identity). Checksums: `sha256_stored`/`stored_size` are over the ciphertext, so a
//! store can be verified without any key; `sha256_raw`/`raw_size` over the plaintext,
//! checked after decryption.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use age::x25519;
use tokio::io::{AsyncRead, ReadBuf};

use crate::error::{Error, Result};

/// The `scheme` of an encrypted item in manifests.
pub const AGE_X25519: &str = "age-x25519";

/// The public keys new snapshots are encrypted to (`encrypt_to`).
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<x25519::Recipient>,
}

impl fmt::Debug for Recipients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Recipients {
    /// Loads `encrypt_to`: each entry an `age1…` public key or the path of a recipients
    /// file (one `age1…` a line; blank lines and `#` comments skipped). Fails naming the
    /// entry (or the file and line) that gives no key, and when there is none at all.
    pub fn load(entries: &[String]) -> Result<Recipients> {
        let mut keys = Vec::new();
        for e in entries {
            let e = e.trim();
            if e.starts_with("AGE-SECRET-KEY-") {
                parse_recipient(e, || "an encrypt_to entry".to_string())?;
            }
            if e.starts_with("age1") {
                keys.push(parse_recipient(e, || format!("encrypt_to entry {e:?}"))?);
                continue;
            }
            let text = std::fs::read_to_string(e).map_err(|err| {
                Error::Refused(format!(
                    "encrypt_to: cannot read the recipients file {e}: {err}. bosun will not \
                     write unencrypted snapshots when encryption is asked for: mount the file, \
                     or name the public key (age1…) itself"
                ))
            })?;
            let before = keys.len();
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                keys.push(parse_recipient(line, || {
                    format!("line {} of the recipients file {e}", n + 1)
                })?);
            }
            if keys.len() == before {
                return Err(Error::Refused(format!(
                    "encrypt_to: the recipients file {e} holds no age1… key"
                )));
            }
        }
        if keys.is_empty() {
            return Err(Error::Refused(
                "encrypt_to is set but names no recipient".into(),
            ));
        }
        Ok(Recipients { keys })
    }

    /// The recipients' public keys (`age1…`), as manifests record them.
    pub fn names(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.to_string()).collect()
    }

    /// An encryptor for one object.
    fn encryptor(&self) -> Result<age::Encryptor> {
        age::Encryptor::with_recipients(self.keys.iter().map(|k| k as &dyn age::Recipient))
            .map_err(|e| Error::Invalid(format!("setting up age encryption: {e}")))
    }
}

fn parse_recipient(s: &str, what: impl Fn() -> String) -> Result<x25519::Recipient> {
    if s.starts_with("AGE-SECRET-KEY-") {
        // Never echo a secret key.
        return Err(Error::Refused(format!(
            "{}: is a secret key (an identity), not a recipient: give its public key \
             (`age-keygen -y FILE`)",
            what()
        )));
    }
    s.parse::<x25519::Recipient>().map_err(|e| {
        Error::Refused(format!(
            "{}: not an age X25519 recipient ({e}); expected a public key like `age-keygen` prints (age1…)",
            what()
        ))
    })
}

/// The secret keys restores and verification decrypt with (`identity_file`). Its
/// `Debug` shows the file and the public keys, never a secret.
#[derive(Clone)]
pub struct Identities {
    file: PathBuf,
    keys: Arc<Vec<x25519::Identity>>,
}

impl fmt::Debug for Identities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Identities({}: {:?})",
            self.file.display(),
            self.public()
        )
    }
}

impl Identities {
    /// Reads an identity file: `AGE-SECRET-KEY-1…` lines (several after a key rotation),
    /// blank lines and `#` comments (as `age-keygen` writes them). Errors name the file
    /// and the line, never its content.
    pub fn load(file: &Path) -> Result<Identities> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::Refused(format!(
                "identity_file: cannot read {}: {e}. Restoring and verifying encrypted snapshots needs it: mount it, or remove identity_file",
                file.display()
            ))
        })?;
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = line.parse::<x25519::Identity>().map_err(|_| {
                Error::Refused(format!(
                    "identity_file: line {} of {} is not an age X25519 identity \
                     (AGE-SECRET-KEY-1…, as `age-keygen` writes)",
                    n + 1,
                    file.display()
                ))
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(Error::Refused(format!(
                "identity_file: {} holds no AGE-SECRET-KEY-1… line",
                file.display()
            )));
        }
        Ok(Identities {
            file: file.to_path_buf(),
            keys: Arc::new(keys),
        })
    }

    /// The file they came from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Their public keys (`age1…`).
    pub fn public(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.to_public().to_string())
            .collect()
    }

    /// Whether one of them can open an object encrypted to `recipients`.
    pub fn can_open(&self, recipients: &[String]) -> bool {
        let mine = self.public();
        recipients.iter().any(|r| mine.contains(r))
    }

    pub(crate) fn as_dyn(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.keys.iter().map(|k| k as &dyn age::Identity)
    }
}

/// A `Write` into a buffer shared with the reader side of [`Encrypting`].
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("poisoned").extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Encrypts what `inner` yields as it is read: an `AsyncRead` of the age file. Memory
/// is bounded by one age chunk (64 KiB) and one read buffer, whatever the size.
pub(crate) struct Encrypting<R> {
    inner: R,
    writer: Option<age::stream::StreamWriter<Shared>>,
    sink: Arc<Mutex<Vec<u8>>>,
    out: Vec<u8>,
    pos: usize,
    buf: Box<[u8]>,
}

impl<R> Encrypting<R> {
    /// Starts an age file to `recipients` (its header is the first output).
    pub(crate) fn new(inner: R, recipients: &Recipients) -> Result<Encrypting<R>> {
        let sink = Arc::new(Mutex::new(Vec::new()));
        let writer = recipients
            .encryptor()?
            .wrap_output(Shared(sink.clone()))
            .map_err(|e| Error::io("writing the age header", e))?;
        Ok(Encrypting {
            inner,
            writer: Some(writer),
            sink,
            out: Vec::new(),
            pos: 0,
            buf: vec![0; 64 * 1024].into_boxed_slice(),
        })
    }

    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Encrypting<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.out.len() {
                let n = (this.out.len() - this.pos).min(buf.remaining());
                buf.put_slice(&this.out[this.pos..this.pos + n]);
                this.pos += n;
                return Poll::Ready(Ok(()));
            }
            let Some(writer) = this.writer.as_mut() else {
                return Poll::Ready(Ok(())); // finished: end of stream
            };
            let mut rb = ReadBuf::new(&mut this.buf);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                // The last chunk is marked as such: a stream cut short never decrypts.
                if let Some(w) = this.writer.take() {
                    w.finish()?;
                }
            } else {
                writer.write_all(&this.buf[..n])?;
            }
            this.out = std::mem::take(&mut *this.sink.lock().expect("poisoned"));
            this.pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn encrypting_reader_round_trips_through_age() {
        let id = x25519::Identity::generate();
        let r = Recipients::load(&[id.to_public().to_string()]).expect("recipient");
        let plain: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = Encrypting::new(&plain[..], &r).expect("encryptor");
        let mut cipher = Vec::new();
        enc.read_to_end(&mut cipher).await.expect("encrypt");
        assert!(cipher.len() > plain.len());
        let dec = age::Decryptor::new(&cipher[..]).expect("header");
        let mut back = Vec::new();
        std::io::Read::read_to_end(
            &mut dec
                .decrypt(std::iter::once(&id as &dyn age::Identity))
                .expect("key"),
            &mut back,
        )
        .expect("decrypt");
        assert_eq!(back, plain);
    }

    #[test]
    fn bad_keys_are_named_never_echoed() {
        let id = x25519::Identity::generate();
        let secret = id.to_string();
        let secret = age::secrecy::ExposeSecret::expose_secret(&secret).to_string();
        let err = Recipients::load(std::slice::from_ref(&secret)).expect_err("a secret");
        assert!(!err.to_string().contains(&secret[15..]), "{err}");
        let err = Recipients::load(&["/nonexistent/recipients".into()]).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/recipients"), "{err}");
        let dir = tempfile::tempdir().expect("tmp");
        let f = dir.path().join("key.txt");
        std::fs::write(
            &f,
            format!("# created: now\n{secret}\nAGE-SECRET-KEY-1BROKEN\n"),
        )
        .expect("write");
        let err = Identities::load(&f).expect_err("line 3");
        let msg = err.to_string();
        assert!(msg.contains("line 3") && !msg.contains("BROKEN"), "{msg}");
        std::fs::write(&f, format!("# created: now\n{secret}\n")).expect("write");
        let ids = Identities::load(&f).expect("load");
        assert_eq!(ids.public(), vec![id.to_public().to_string()]);
        assert!(!format!("{ids:?}").contains(&secret[15..]));
    }
}
