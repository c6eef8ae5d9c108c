//! A store in an S3 bucket (AWS or any S3-compatible server such as Garage or MinIO).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::{check_key, ObjectInfo, ObjectReader, Store};
use crate::error::{Error, Result};
use crate::stream::{ChannelReader, Chunk};

/// How to reach a bucket. [`Default`] gives AWS in `us-east-1`, 8 MiB parts, 3 uploads in
/// flight, downloads in 2 MiB ranges with 4 in flight, 5 attempts per request (backoff
/// from 0.5 s), 5 s to connect, 120 s per attempt.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// The bucket.
    pub bucket: String,
    /// A key prefix inside the bucket (no leading or trailing `/`), may be empty.
    pub prefix: String,
    /// A custom endpoint (`http://127.0.0.1:3900`); addressed path-style. `None`: AWS.
    pub endpoint: Option<String>,
    /// The region (`garage` for Garage's default).
    pub region: String,
    /// Size of the first multipart parts; later parts grow so that 10 000 parts hold
    /// hundreds of GiB. Objects smaller than this are sent in one request. At least 5 MiB.
    pub part_size: usize,
    /// Parts uploaded concurrently. Memory use is about `part_size * (parallel + 1)`.
    pub parallel: usize,
    /// Size of the ranged GETs a download is split into (objects up to this size are
    /// read with one plain GET). At least 1 MiB.
    pub get_range: usize,
    /// Ranged GETs in flight per download. Memory use is about
    /// `get_range * (get_parallel + 2)`.
    pub get_parallel: usize,
    /// Attempts per request (first try included) on connection errors, timeouts,
    /// throttling and 5xx answers, with exponential backoff.
    pub attempts: u32,
    /// First backoff between attempts; doubles up to 8 s, jittered.
    pub initial_backoff: Duration,
    /// Timeout for opening a connection.
    pub connect_timeout: Duration,
    /// Timeout for one attempt of one request, up to the answer's headers (a part upload
    /// included, a download's body excluded): a server that accepts connections but
    /// never answers cannot hang a boot forever.
    pub attempt_timeout: Duration,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            bucket: String::new(),
            prefix: String::new(),
            endpoint: None,
            region: "us-east-1".into(),
            // 3 × 8 MiB in flight (awscli: 10 × 8 MiB, 80 MiB): keeps Garage's threads
            // and the network busy while the compressor runs, and the process within
            // the 64 MiB budget (4 in flight measured 62 MiB peak RSS on the way up).
            part_size: 8 * 1024 * 1024,
            parallel: 3,
            // Downloads: 4 × 2 MiB ranges in flight, at most 12 MiB buffered (4 MiB
            // ranges measured 65-69 MiB peak RSS for the whole restoring process).
            get_range: 2 * 1024 * 1024,
            get_parallel: 4,
            attempts: 5,
            initial_backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(120),
        }
    }
}

/// A store in an S3 bucket, under an optional key prefix.
///
/// Large objects are sent as multipart uploads with bounded memory; an upload that fails
/// or is cancelled is aborted, so nothing appears under the final key. Requests are
/// retried with backoff; when every attempt fails to connect the error is
/// [`Error::Unreachable`], never [`Error::NotFound`].
#[derive(Debug, Clone)]
pub struct S3Store {
    client: Client,
    opts: Arc<S3Options>,
    describe: String,
}

/// Aborts a multipart upload when dropped armed (on error or cancellation).
struct AbortOnDrop {
    client: Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (client, bucket, key) = (self.client.clone(), self.bucket.clone(), self.key.clone());
        handle.spawn(async move {
            let _ = client
                .abort_multipart_upload()
                .bucket(bucket)
                .key(key)
                .upload_id(upload_id)
                .send()
                .await;
        });
    }
}

impl S3Store {
    /// The underlying S3 client (for diagnostics and tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The options in use (prefix trimmed, sizes clamped).
    pub fn options(&self) -> &S3Options {
        &self.opts
    }

    /// Builds the client (loading region and credentials from the standard AWS chain).
    /// Does not contact the endpoint.
    pub async fn connect(opts: S3Options) -> Result<S3Store> {
        if opts.bucket.is_empty() {
            return Err(Error::Invalid("S3 store without a bucket".into()));
        }
        let mut opts = opts;
        opts.prefix = opts.prefix.trim_matches('/').to_string();
        opts.part_size = opts.part_size.max(5 * 1024 * 1024);
        opts.parallel = opts.parallel.max(1);
        opts.get_range = opts.get_range.max(1024 * 1024);
        opts.get_parallel = opts.get_parallel.max(1);
        opts.attempts = opts.attempts.max(1);
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let retry = RetryConfig::standard()
            .with_max_attempts(opts.attempts)
            .with_initial_backoff(opts.initial_backoff)
            .with_max_backoff(Duration::from_secs(8));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(opts.connect_timeout)
            .operation_attempt_timeout(opts.attempt_timeout)
            .build();
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .region(Region::new(opts.region.clone()))
            .retry_config(retry)
            .timeout_config(timeouts)
            .load()
            .await;
        let mut builder = aws_sdk_s3::config::Builder::from(&sdk)
            // Our own sha256 covers integrity; plain requests work with every S3 server.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        if let Some(endpoint) = &opts.endpoint {
            builder = builder
                .endpoint_url(endpoint.clone())
                .force_path_style(true);
        }
        let client = Client::from_conf(builder.build());
        let mut describe = format!("s3://{}", opts.bucket);
        if !opts.prefix.is_empty() {
            describe.push('/');
            describe.push_str(&opts.prefix);
        }
        if let Some(endpoint) = &opts.endpoint {
            describe.push_str(" at ");
            describe.push_str(endpoint);
        }
        Ok(S3Store {
            client,
            opts: Arc::new(opts),
            describe,
        })
    }

    fn full_key(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(if self.opts.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{}", self.opts.prefix, key)
        })
    }

    /// Size of part number `n` (1-based): grows by `part_size` every 1000 parts.
    fn part_size(&self, n: i32) -> usize {
        let step = usize::try_from((n.max(1) - 1) / 1000).unwrap_or(0);
        self.opts.part_size * (1 + step)
    }

    fn map_err<E>(&self, op: &str, key: &str, err: SdkError<E>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        map_sdk_error(&self.describe, &self.opts, op, key, err)
    }

    async fn put_multipart(
        &self,
        key: &str,
        full: &str,
        first: Bytes,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<u64> {
        tracing::debug!(key = %full, "multipart upload");
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.opts.bucket)
            .key(full)
            .send()
            .await
            .map_err(|e| self.map_err("starting the upload of", key, e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        if upload_id.is_empty() {
            return Err(Error::Store {
                store: self.describe.clone(),
                detail: format!("no upload id in the answer to CreateMultipartUpload for {key}"),
            });
        }
        let mut guard = AbortOnDrop {
            client: self.client.clone(),
            bucket: self.opts.bucket.clone(),
            key: full.to_string(),
            upload_id: Some(upload_id.clone()),
        };
        let result = self.upload_parts(key, full, &upload_id, first, body).await;
        match result {
            Ok((parts, total)) => {
                self.client
                    .complete_multipart_upload()
                    .bucket(&self.opts.bucket)
                    .key(full)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| self.map_err("completing the upload of", key, e))?;
                guard.upload_id = None;
                Ok(total)
            }
            Err(e) => {
                guard.upload_id = None;
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.opts.bucket)
                    .key(full)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                Err(e)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        full: &str,
        upload_id: &str,
        first: Bytes,
        body: &mut (dyn AsyncRead + Send + Unpin),
    ) -> Result<(Vec<CompletedPart>, u64)> {
        let mut tasks: JoinSet<Result<CompletedPart>> = JoinSet::new();
        let mut parts = Vec::new();
        let mut total = 0u64;
        let mut number: i32 = 1;
        let mut next = first;
        loop {
            while tasks.len() >= self.opts.parallel {
                parts.push(join_one(&mut tasks).await?);
            }
            total += next.len() as u64;
            let (client, store, opts) = (
                self.client.clone(),
                self.describe.clone(),
                self.opts.clone(),
            );
            let (full_key, id, item) = (full.to_string(), upload_id.to_string(), key.to_string());
            let data = std::mem::take(&mut next);
            let n = number;
            tasks.spawn(async move {
                let out = client
                    .upload_part()
                    .bucket(&opts.bucket)
                    .key(&full_key)
                    .upload_id(id)
                    .part_number(n)
                    .content_length(data.len() as i64)
                    // CRC32 instead of a signed sha256 of the body (as awscli does): the
                    // server still checks every part, without a sha256 pass on each side
                    // (Garage spent ~40 % more CPU on signed parts). The manifest's
                    // sha256 of the stored bytes stays the integrity check of record.
                    .checksum_algorithm(ChecksumAlgorithm::Crc32)
                    .body(ByteStream::from(data))
                    .customize()
                    .disable_payload_signing()
                    .send()
                    .await
                    .map_err(|e| map_sdk_error(&store, &opts, "uploading a part of", &item, e))?;
                Ok(CompletedPart::builder()
                    .part_number(n)
                    .set_e_tag(out.e_tag().map(str::to_string))
                    .build())
            });
            number += 1;
            if number > 10_000 {
                return Err(Error::Store {
                    store: self.describe.clone(),
                    detail: format!("{key} needs more than 10000 parts: raise the part size"),
                });
            }
            next = read_full(body, self.part_size(number), key).await?;
            if next.is_empty() {
                break;
            }
        }
        while !tasks.is_empty() {
            parts.push(join_one(&mut tasks).await?);
        }
        parts.sort_by_key(|p| p.part_number());
        Ok((parts, total))
    }
}

async fn join_one(tasks: &mut JoinSet<Result<CompletedPart>>) -> Result<CompletedPart> {
    match tasks.join_next().await {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(Error::io("a part upload task", std::io::Error::other(e))),
        None => Err(Error::Invalid("no part upload in flight".into())),
    }
}

/// Reads until `size` bytes or end of stream.
async fn read_full(
    body: &mut (dyn AsyncRead + Send + Unpin),
    size: usize,
    key: &str,
) -> Result<Bytes> {
    let mut buf = BytesMut::with_capacity(size);
    while buf.len() < size {
        let n = body
            .read_buf(&mut buf)
            .await
            .map_err(|e| Error::io(format!("reading the data for {key}"), e))?;
        if n == 0 {
            break;
        }
    }
    Ok(buf.freeze())
}

/// An error and its sources, joined with ": ", without repeats.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = e.source();
    }
    parts.join(": ")
}

/// Turns an SDK error into ours: connection failures and timeouts are
/// [`Error::Unreachable`]; `NoSuchKey` and a bare 404 are [`Error::NotFound`]; the rest
/// are [`Error::Store`] with a hint.
fn map_sdk_error<E>(store: &str, opts: &S3Options, op: &str, key: &str, err: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let endpoint = opts
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("AWS S3 ({})", opts.region));
    let unreachable = |detail: String| Error::Unreachable {
        store: format!("S3 endpoint {endpoint}"),
        attempts: opts.attempts,
        detail,
        hint:
            "check S3ENDPOINTURL (s3_endpoint) and S3REGION, the network, and that the store is up"
                .into(),
    };
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
            unreachable(format!("{op} {key}: {}", chain(&err)))
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            match (status, code) {
                (_, "NoSuchBucket") => Error::Store {
                    store: store.into(),
                    detail: format!(
                        "bucket {} does not exist: create it, or fix the store URL",
                        opts.bucket
                    ),
                },
                (_, "NoSuchKey") | (404, "") | (404, "NotFound") => Error::NotFound {
                    store: store.into(),
                    what: key.into(),
                },
                (401 | 403, _) => Error::Store {
                    store: store.into(),
                    detail: format!(
                        "access denied while {op} {key} ({code}): check the credentials \
                         (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) and the bucket policy"
                    ),
                },
                _ => Error::Store {
                    store: store.into(),
                    detail: format!("{op} {key} failed (HTTP {status}): {}", chain(&err)),
                },
            }
        }
        SdkError::ConstructionFailure(_) => Error::Store {
            store: store.into(),
            detail: format!(
                "could not build the request for {op} {key} (are AWS credentials set? \
                 AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY): {}",
                chain(&err)
            ),
        },
        _ => Error::Store {
            store: store.into(),
            detail: format!(
                "{op} {key}: unexpected answer (is {endpoint} an S3 endpoint?): {}",
                chain(&err)
            ),
        },
    }
}

#[async_trait]
impl Store for S3Store {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn put(&self, key: &str, body: &mut (dyn AsyncRead + Send + Unpin)) -> Result<u64> {
        let full = self.full_key(key)?;
        let first = read_full(body, self.part_size(1), key).await?;
        if first.len() < self.part_size(1) {
            let len = first.len() as u64;
            self.put_bytes(key, &full, first).await?;
            return Ok(len);
        }
        self.put_multipart(key, &full, first, body).await
    }

    async fn get(&self, key: &str) -> Result<ObjectReader> {
        let full = self.full_key(key)?;
        let head = self
            .client
            .head_object()
            .bucket(&self.opts.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.map_err("reading", key, e))?;
        let size = u64::try_from(head.content_length().unwrap_or(0)).unwrap_or(0);
        let etag = head.e_tag().map(str::to_string);
        tracing::debug!(key = %full, size, etag = ?etag, "download");
        if size <= self.opts.get_range as u64 {
            let out = self
                .client
                .get_object()
                .bucket(&self.opts.bucket)
                .key(&full)
                .set_if_match(etag)
                .send()
                .await
                .map_err(|e| self.map_err("reading", key, e))?;
            return Ok(Box::pin(out.body.into_async_read()));
        }
        Ok(Box::pin(RangedGet::start(self, key, full, size, etag)))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let full_prefix = if self.opts.prefix.is_empty() {
            prefix.to_string()
        } else {
            format!("{}/{}", self.opts.prefix, prefix)
        };
        let strip = if self.opts.prefix.is_empty() {
            0
        } else {
            self.opts.prefix.len() + 1
        };
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.opts.bucket)
                .prefix(&full_prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.map_err("listing", prefix, e))?;
            for obj in page.contents() {
                if let Some(k) = obj.key() {
                    if let Some(rel) = k.get(strip..) {
                        out.push(ObjectInfo {
                            key: rel.to_string(),
                            size: obj.size().unwrap_or(0).max(0) as u64,
                        });
                    }
                }
            }
            match (page.is_truncated(), page.next_continuation_token()) {
                (Some(true), Some(next)) => token = Some(next.to_string()),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let full = self.full_key(key)?;
        self.client
            .delete_object()
            .bucket(&self.opts.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.map_err("deleting", key, e))?;
        Ok(())
    }

    async fn put_small(&self, key: &str, data: &[u8]) -> Result<()> {
        let full = self.full_key(key)?;
        self.put_bytes(key, &full, Bytes::copy_from_slice(data))
            .await
    }

    async fn get_small(&self, key: &str) -> Result<Vec<u8>> {
        let full = self.full_key(key)?;
        let out = self
            .client
            .get_object()
            .bucket(&self.opts.bucket)
            .key(&full)
            .send()
            .await
            .map_err(|e| self.map_err("reading", key, e))?;
        let data = out.body.collect().await.map_err(|e| {
            Error::io(
                format!("reading {key} from {}", self.describe),
                std::io::Error::other(e),
            )
        })?;
        Ok(data.into_bytes().to_vec())
    }
}

impl S3Store {
    async fn put_bytes(&self, key: &str, full: &str, data: Bytes) -> Result<()> {
        self.client
            .put_object()
            .bucket(&self.opts.bucket)
            .key(full)
            .content_length(data.len() as i64)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(|e| self.map_err("writing", key, e))?;
        Ok(())
    }
}

/// A download in ranged GETs, `get_parallel` in flight, handed to the reader in order
/// through a bounded channel: the network runs ahead of the reader by at most
/// `get_parallel + 2` ranges. Every range asks for the `ETag` the download began with
/// (`If-Match`), so an object replaced half-way fails the download instead of mixing
/// two objects; a range shorter or longer than asked for fails it too.
struct RangedGet;

/// Aborts the range tasks still running when the download ends or is dropped.
struct AbortTasks(VecDeque<tokio::task::JoinHandle<Result<Bytes>>>);

impl Drop for AbortTasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

impl RangedGet {
    fn start(
        store: &S3Store,
        key: &str,
        full: String,
        size: u64,
        etag: Option<String>,
    ) -> ChannelReader {
        let (tx, rx) = mpsc::channel(1);
        let range = RangeCtx {
            client: store.client.clone(),
            opts: store.opts.clone(),
            describe: store.describe.clone(),
            key: key.to_string(),
            full,
            etag,
        };
        tokio::spawn(async move {
            let chunk = match range.fetch_all(size, &tx).await {
                Ok(()) => Chunk::End,
                Err(e) => Chunk::Failed(std::io::Error::other(e)),
            };
            let _ = tx.send(chunk).await;
        });
        ChannelReader::with_context(rx, "the download stopped without finishing")
    }
}

/// What each ranged GET of one download needs.
#[derive(Clone)]
struct RangeCtx {
    client: Client,
    opts: Arc<S3Options>,
    describe: String,
    key: String,
    full: String,
    etag: Option<String>,
}

impl RangeCtx {
    /// Fetches `[0, size)` in ranges and sends them in order; `Ok` once all are sent
    /// (or the reader went away).
    async fn fetch_all(&self, size: u64, tx: &mpsc::Sender<Chunk>) -> Result<()> {
        let step = self.opts.get_range as u64;
        let mut tasks = AbortTasks(VecDeque::new());
        let mut next = 0u64;
        loop {
            while tasks.0.len() < self.opts.get_parallel && next < size {
                let (start, end) = (next, (next + step).min(size));
                let me = self.clone();
                tasks
                    .0
                    .push_back(tokio::spawn(async move { me.fetch(start, end).await }));
                next = end;
            }
            let Some(task) = tasks.0.pop_front() else {
                return Ok(());
            };
            let data = task
                .await
                .map_err(|e| Error::io("a ranged download task", std::io::Error::other(e)))??;
            if tx.send(Chunk::Data(data)).await.is_err() {
                return Ok(());
            }
        }
    }

    /// One range `[start, end)`, whole; a body that breaks off is asked for again.
    async fn fetch(&self, start: u64, end: u64) -> Result<Bytes> {
        let mut attempt = 1;
        loop {
            match self.fetch_once(start, end).await {
                Err(Error::Io { context, source }) if attempt < self.opts.attempts => {
                    tracing::debug!(key = %self.full, "{context}: {source}; asking again");
                    tokio::time::sleep(self.opts.initial_backoff * attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn fetch_once(&self, start: u64, end: u64) -> Result<Bytes> {
        let want = usize::try_from(end - start).expect("a range fits in memory");
        let out = self
            .client
            .get_object()
            .bucket(&self.opts.bucket)
            .key(&self.full)
            .range(format!("bytes={start}-{}", end - 1))
            .set_if_match(self.etag.clone())
            .send()
            .await
            .map_err(|e| {
                let changed =
                    matches!(&e, SdkError::ServiceError(s) if s.raw().status().as_u16() == 412);
                if changed {
                    return Error::Store {
                        store: self.describe.clone(),
                        detail: format!(
                            "{} changed while it was read (its ETag is no longer {}): \
                             another writer replaced it; read it again",
                            self.key,
                            self.etag.as_deref().unwrap_or("-")
                        ),
                    };
                }
                map_sdk_error(&self.describe, &self.opts, "reading", &self.key, e)
            })?;
        let mut body = out.body.into_async_read();
        let mut buf = BytesMut::with_capacity(want);
        let context = || format!("reading bytes {start}-{end} of {}", self.key);
        loop {
            // Read one byte past the range: a longer answer is as wrong as a shorter one.
            let n = (&mut body)
                .take((want + 1 - buf.len()) as u64)
                .read_buf(&mut buf)
                .await
                .map_err(|e| Error::io(context(), e))?;
            if n == 0 || buf.len() > want {
                break;
            }
        }
        if buf.len() != want {
            return Err(Error::io(
                context(),
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("the store sent {} bytes of the {want} asked for", buf.len()),
                ),
            ));
        }
        Ok(buf.freeze())
    }
}
