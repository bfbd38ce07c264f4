//! The remote cache: the store's objects and action records on S3-compatible
//! object storage (`s3://bucket/prefix`) or a shared folder
//! (`file:///shared/radpipe-cache`), through `object_store`. The layout is the
//! local store's: `objects/<aa>/<rest>` named by blake3 digest and
//! `actions/<key>.json`. Records are created once (`PutMode::Create`, on S3
//! `If-None-Match: *`): the first writer of a key wins and every other writer
//! adopts its record and outputs ([`sync`]). Blobs are uploaded before the
//! record that names them. Credentials come from the standard AWS environment
//! variables and stay inside `object_store`'s client: no message, record or
//! log of radpipe contains them.

mod runtime;
pub mod sync;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig, WriteMultipart};
use std::collections::HashSet;
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use runtime::block_on;

/// Objects at least this large go up as multipart uploads, in parts of this size.
const MULTIPART_PART: usize = 8 << 20;

/// What kind of storage a remote is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    S3,
    File,
}

impl fmt::Display for RemoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoteKind::S3 => "S3-compatible object storage",
            RemoteKind::File => "shared folder",
        })
    }
}

/// A remote call that failed: which remote, what radpipe was doing, why.
#[derive(Debug, thiserror::Error)]
#[error("remote cache {url}: {what}: {cause}")]
pub struct RemoteError {
    pub url: String,
    pub what: String,
    pub cause: String,
}

/// An opened remote store. Opening makes no request.
pub struct Remote {
    url: String,
    kind: RemoteKind,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// Objects this process knows the remote holds (uploaded or seen), so
    /// that one log shared by many nodes is looked up once.
    known: Mutex<HashSet<String>>,
}

/// An object fetched into a local file: the digest of what arrived.
pub enum Fetched {
    Missing,
    Arrived { digest: String },
}

impl Remote {
    /// Open `s3://bucket[/prefix]` or `file:///absolute/folder` (created when absent).
    pub fn open(url: &str) -> Result<Remote, String> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(format!("`{url}` names no bucket (expected s3://BUCKET/PREFIX)"));
            }
            let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_retry(retry()).with_client_options(client_options());
            // An endpoint the user spelled with http:// (a server on the local
            // network or loopback) is meant as such.
            if ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"].iter().any(|v| std::env::var(v).is_ok_and(|e| e.starts_with("http://"))) {
                builder = builder.with_allow_http(true);
            }
            let store = builder.build().map_err(|e| format!("cannot configure the S3 remote `{url}`: {e}"))?;
            return Ok(Remote::new(url, RemoteKind::S3, Arc::new(store), ObjectPath::from(prefix)));
        }
        if let Some(folder) = url.strip_prefix("file://") {
            if !folder.starts_with('/') {
                return Err(format!("`{url}`: a file:// remote needs an absolute folder (file:///shared/radpipe-cache)"));
            }
            std::fs::create_dir_all(folder).map_err(|e| format!("cannot create the remote folder {folder}: {e}"))?;
            let store = LocalFileSystem::new_with_prefix(folder).map_err(|e| format!("cannot open the remote folder {folder}: {e}"))?;
            return Ok(Remote::new(url, RemoteKind::File, Arc::new(store), ObjectPath::default()));
        }
        Err(format!("`{url}` is not a remote cache: use s3://BUCKET/PREFIX or file:///FOLDER"))
    }

    fn new(url: &str, kind: RemoteKind, store: Arc<dyn ObjectStore>, prefix: ObjectPath) -> Remote {
        Remote { url: url.to_string(), kind, store, prefix, known: Mutex::new(HashSet::new()) }
    }

    pub(crate) fn knows(&self, digest: &str) -> bool {
        self.known.lock().is_ok_and(|k| k.contains(digest))
    }

    fn learn(&self, digest: &str) {
        if let Ok(mut k) = self.known.lock() {
            k.insert(digest.to_string());
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn kind(&self) -> RemoteKind {
        self.kind
    }

    fn error(&self, what: impl Into<String>, cause: impl fmt::Display) -> RemoteError {
        RemoteError { url: self.url.clone(), what: what.into(), cause: cause.to_string() }
    }

    fn path(&self, rel: &str) -> ObjectPath {
        rel.split('/').fold(self.prefix.clone(), |p, part| p.join(part))
    }

    fn object(&self, digest: &str) -> ObjectPath {
        let (a, b) = digest.split_at(2.min(digest.len()));
        self.path(&format!("objects/{a}/{b}"))
    }

    fn record(&self, key: &str) -> ObjectPath {
        self.path(&format!("actions/{key}.json"))
    }

    /// The action record of `key`, when the remote has one.
    pub fn get_record(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        match block_on(async { self.store.get(&self.record(key)).await?.bytes().await }) {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(format!("cannot read the action record {key}"), e)),
        }
    }

    /// Create the record of `key` unless one exists: `true` when this call
    /// created it, `false` when another writer was first.
    pub fn create_record(&self, key: &str, bytes: Vec<u8>) -> Result<bool, RemoteError> {
        let opts = PutOptions { mode: PutMode::Create, ..Default::default() };
        match block_on(self.store.put_opts(&self.record(key), PutPayload::from(bytes), opts)) {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(self.error(format!("cannot create the action record {key}"), e)),
        }
    }

    /// Replace a record whose objects are lost or corrupt (see [`sync::publish`]).
    pub fn replace_record(&self, key: &str, bytes: Vec<u8>) -> Result<(), RemoteError> {
        block_on(self.store.put(&self.record(key), PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| self.error(format!("cannot replace the action record {key}"), e))
    }

    /// Whether the remote holds the object `digest` (its content is not checked).
    pub fn has_object(&self, digest: &str) -> Result<bool, RemoteError> {
        if self.knows(digest) {
            return Ok(true);
        }
        match block_on(self.store.head(&self.object(digest))) {
            Ok(_) => {
                self.learn(digest);
                Ok(true)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.error(format!("cannot look up the object {digest}"), e)),
        }
    }

    /// Upload the local file `path` as the object `digest`: one request
    /// below [`MULTIPART_PART`], a multipart upload from there on.
    pub fn put_object(&self, digest: &str, path: &Path) -> Result<(), RemoteError> {
        self.upload(digest, path)?;
        self.learn(digest);
        Ok(())
    }

    fn upload(&self, digest: &str, path: &Path) -> Result<(), RemoteError> {
        let failed = |e: &dyn fmt::Display| self.error(format!("cannot upload the object {digest}"), e);
        let mut file = std::fs::File::open(path).map_err(|e| failed(&e))?;
        let size = file.metadata().map_err(|e| failed(&e))?.len();
        let location = self.object(digest);
        if size < MULTIPART_PART as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).map_err(|e| failed(&e))?;
            return block_on(self.store.put(&location, PutPayload::from(bytes))).map(|_| ()).map_err(|e| failed(&e));
        }
        block_on(async {
            let upload = self.store.put_multipart(&location).await.map_err(|e| failed(&e))?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART);
            let mut buf = vec![0u8; MULTIPART_PART];
            loop {
                let n = file.read(&mut buf).map_err(|e| failed(&e))?;
                if n == 0 {
                    break;
                }
                writer.wait_for_capacity(4).await.map_err(|e| failed(&e))?;
                writer.write(&buf[..n]);
            }
            writer.finish().await.map(|_| ()).map_err(|e| failed(&e))
        })
    }

    /// Stream the object `digest` into the file `dest`, hashing on the way.
    pub fn fetch_object(&self, digest: &str, dest: &Path) -> Result<Fetched, RemoteError> {
        let failed = |e: &dyn fmt::Display| self.error(format!("cannot download the object {digest}"), e);
        block_on(async {
            let got = match self.store.get(&self.object(digest)).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => return Ok(Fetched::Missing),
                Err(e) => return Err(failed(&e)),
            };
            let mut file = std::fs::File::create(dest).map_err(|e| failed(&e))?;
            let mut hasher = blake3::Hasher::new();
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| failed(&e))?;
                hasher.update(&chunk);
                file.write_all(&chunk).map_err(|e| failed(&e))?;
            }
            file.sync_all().map_err(|e| failed(&e))?;
            Ok(Fetched::Arrived { digest: hasher.finalize().to_hex().to_string() })
        })
    }

    /// Move a corrupt object to `quarantine/<digest>`, so that no run uses it.
    pub fn quarantine(&self, digest: &str) -> Result<String, RemoteError> {
        if let Ok(mut k) = self.known.lock() {
            k.remove(digest);
        }
        let dest = self.path(&format!("quarantine/{digest}"));
        match block_on(self.store.rename(&self.object(digest), &dest)) {
            // Another run (or `verify --remote`) moved it first.
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(dest.to_string()),
            Err(e) => Err(self.error(format!("cannot quarantine the object {digest}"), e)),
        }
    }

    /// Digests of every object, sorted.
    pub fn object_digests(&self) -> Result<Vec<String>, RemoteError> {
        let names = self.list("objects")?;
        let mut digests: Vec<String> = names.into_iter().map(|n| n.replace('/', "")).collect();
        digests.sort();
        Ok(digests)
    }

    /// Keys of every action record, sorted.
    pub fn record_keys(&self) -> Result<Vec<String>, RemoteError> {
        let mut keys: Vec<String> = self.list("actions")?.into_iter().filter_map(|n| n.strip_suffix(".json").map(str::to_string)).collect();
        keys.sort();
        Ok(keys)
    }

    /// Names under `folder`, relative to it.
    fn list(&self, folder: &str) -> Result<Vec<String>, RemoteError> {
        let base = self.path(folder);
        let strip = format!("{base}/");
        block_on(async {
            let mut out = Vec::new();
            let mut stream = self.store.list(Some(&base));
            while let Some(meta) = stream.next().await {
                let meta = meta.map_err(|e| self.error(format!("cannot list {folder}/"), e))?;
                out.push(meta.location.as_ref().strip_prefix(&strip).unwrap_or(meta.location.as_ref()).to_string());
            }
            Ok(out)
        })
    }

    /// `radpipe doctor`'s check: write, read back and delete a probe object.
    pub fn probe(&self) -> Result<Duration, RemoteError> {
        let started = std::time::Instant::now();
        let name = self.path(&format!("doctor/probe-{}-{}", std::process::id(), crate::store::now_unix()));
        let body = b"radpipe doctor probe".to_vec();
        block_on(async {
            self.store.put(&name, PutPayload::from(body.clone())).await.map_err(|e| self.error("cannot write (probe object)", e))?;
            let back = self.store.get(&name).await.map_err(|e| self.error("cannot read back the probe object", e))?.bytes().await;
            let back = back.map_err(|e| self.error("cannot read back the probe object", e))?;
            self.store.delete(&name).await.map_err(|e| self.error("cannot delete the probe object", e))?;
            if back.as_ref() != body.as_slice() {
                return Err(self.error("the probe object", "read back different bytes than were written"));
            }
            Ok(started.elapsed())
        })
    }
}

/// Few, short retries: a remote that does not answer fails the node within
/// seconds, naming the remote, instead of stalling a run for minutes.
fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(2), base: 2.0 },
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
    }
}

fn client_options() -> ClientOptions {
    ClientOptions::new().with_connect_timeout(Duration::from_secs(5)).with_timeout(Duration::from_secs(600))
}
