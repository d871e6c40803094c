//! The object-storage [`Store`], over `object_store` (S3-compatible, Azure, GCS, or a path on
//! another disk). The async library meets the synchronous core here only: each call runs on a
//! runtime of this module's own, on a thread of its own, and uploads and downloads stream in
//! bounded chunks.

use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

use super::{Sending, Store, Stored};
use dbkeep_model::error::{Error, Result};

/// The size of each uploaded part, and of the chunks read from the file.
const PART: usize = 8 * 1024 * 1024;
/// Parts in flight at once: with [`PART`], what an upload holds in memory.
const PARTS_IN_FLIGHT: usize = 4;
/// Downloaded chunks buffered ahead of the reader.
const CHUNKS_AHEAD: usize = 4;

/// A [`Store`] on object storage.
pub struct ObjectStorage {
    name: String,
    store: Arc<dyn ObjectStore>,
    prefix: Key,
    /// Always `Some` until dropped (see `Drop`).
    runtime: Option<Arc<tokio::runtime::Runtime>>,
}

impl Drop for ObjectStorage {
    /// A runtime may not be dropped inside another (an embedding application's, the
    /// service's): it is shut down in the background instead.
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take().and_then(|rt| Arc::try_unwrap(rt).ok()) {
            rt.shutdown_background();
        }
    }
}

impl ObjectStorage {
    /// The store at `url` (`s3://bucket/prefix`, `az://container/prefix`,
    /// `gs://bucket/prefix`, `file:///path`), with `options` such as `endpoint` and `region`;
    /// credentials come from each provider's standard environment variables.
    ///
    /// # Errors
    /// [`Error::Engine`] when the URL or the options are not usable.
    pub fn new(name: &str, url: &url::Url, options: &[(String, String)]) -> Result<ObjectStorage> {
        let fail = |e: String| Error::Engine(format!("off-site `{name}` ({url}): {e}"));
        // One TLS provider for the whole process (ring, as the mail and webhook clients use);
        // installed by the first store, kept if something installed one before.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (store, prefix) = if url.scheme() == "file" {
            // A path on another disk: created when absent, as the local folder is.
            let dir = url
                .to_file_path()
                .map_err(|()| fail("not a file path".into()))?;
            dbkeep_model::storage::create_private_dir(&dir).map_err(|e| fail(e.to_string()))?;
            let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| fail(e.to_string()))?;
            (Box::new(local) as Box<dyn ObjectStore>, Key::default())
        } else {
            let prefix =
                Key::parse(url.path().trim_start_matches('/')).map_err(|e| fail(e.to_string()))?;
            (
                cloud(url, options).map_err(|e| fail(e.to_string()))?,
                prefix,
            )
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        Ok(ObjectStorage {
            name: name.to_string(),
            store: Arc::from(store),
            prefix,
            runtime: Some(Arc::new(runtime)),
        })
    }

    fn key(&self, key: &str) -> Key {
        key.split('/')
            .fold(self.prefix.clone(), |k, part| k.clone().join(part))
    }

    /// Runs `future` to its end on this store's runtime, on a thread with no runtime of its
    /// own (the caller may be inside the service's).
    fn run<T: Send>(&self, future: impl std::future::Future<Output = T> + Send) -> T {
        let runtime = self.runtime();
        std::thread::scope(|s| {
            s.spawn(|| runtime.block_on(future))
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    fn runtime(&self) -> Arc<tokio::runtime::Runtime> {
        match &self.runtime {
            Some(rt) => Arc::clone(rt),
            // Only `drop` takes it, and nothing runs after that.
            None => unreachable!("the store's runtime is used after drop"),
        }
    }

    fn fail(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Engine(format!("off-site `{}`: {what}: {e}", self.name))
    }
}

impl Store for ObjectStorage {
    fn name(&self) -> &str {
        &self.name
    }

    fn put_file(&self, key: &str, path: &Path, sending: Sending<'_>) -> Result<Stored> {
        let Sending { progress, cancel } = sending;
        let location = self.key(key);
        let mut file =
            std::fs::File::open(path).map_err(|e| self.fail("cannot read the file", e))?;
        let store = Arc::clone(&self.store);
        let sent = self.run(async move {
            let read_error = |e: io::Error| object_store::Error::Generic {
                store: "dbkeep",
                source: Box::new(e),
            };
            let cancelled = || {
                cancel
                    .reason()
                    .map(|reason| read_error(io::Error::other(reason)))
            };
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; PART];
            let first = fill(&mut file, &mut buf).map_err(read_error)?;
            hasher.update(&buf[..first]);
            progress.advance(first as u64);
            if let Some(e) = cancelled() {
                return Err(e);
            }
            if first < PART {
                // A file of one part goes in one request.
                buf.truncate(first);
                store.put(&location, PutPayload::from(buf)).await?;
                let meta = store.head(&location).await?;
                return Ok((
                    first as u64,
                    dbkeep_model::text::hex(&hasher.finalize()),
                    meta.size,
                ));
            }
            let upload = store.put_multipart(&location).await?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
            writer.write(&buf[..first]);
            let mut size = first as u64;
            // Whatever stops the upload (the file, the store, a cancel) discards the parts
            // sent so far with it: an upload left open keeps them, and they are billed.
            let sent = async {
                loop {
                    let n = match fill(&mut file, &mut buf) {
                        Ok(0) => return Ok(()),
                        Ok(n) => n,
                        Err(e) => return Err(read_error(e)),
                    };
                    if let Some(e) = cancelled() {
                        return Err(e);
                    }
                    // Memory stays bounded: at most this many parts wait to be sent.
                    writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                    writer.write(&buf[..n]);
                    hasher.update(&buf[..n]);
                    size += n as u64;
                    progress.advance(n as u64);
                }
            }
            .await;
            if let Err(e) = sent {
                writer.abort().await.ok();
                return Err(e);
            }
            writer.finish().await?;
            let meta = store.head(&location).await?;
            Ok((size, dbkeep_model::text::hex(&hasher.finalize()), meta.size))
        });
        let (size_bytes, sha256, stored) = sent.map_err(|e| self.fail("upload failed", e))?;
        if stored != size_bytes {
            return Err(self.fail(
                "upload incomplete",
                format!("sent {size_bytes} bytes, the store holds {stored}"),
            ));
        }
        Ok(Stored { size_bytes, sha256 })
    }

    fn open(&self, key: &str) -> Result<Box<dyn Read + Send>> {
        let location = self.key(key);
        let store = Arc::clone(&self.store);
        let got = self
            .run(async move { store.get(&location).await })
            .map_err(|e| self.fail("cannot read the copy", e))?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<bytes::Bytes>>(CHUNKS_AHEAD);
        let runtime = self.runtime();
        // Chunks are pumped from the async stream into a bounded channel the reader drains.
        std::thread::Builder::new()
            .name("dbkeep-download".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let mut stream = got.into_stream();
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(io::Error::other);
                        let stop = chunk.is_err();
                        if tx.send(chunk).is_err() || stop {
                            break;
                        }
                    }
                });
            })
            .map_err(|e| self.fail("cannot start the download", e))?;
        Ok(Box::new(ChannelReader {
            rx,
            chunk: bytes::Bytes::new(),
        }))
    }

    fn exists(&self, key: &str) -> Result<bool> {
        let location = self.key(key);
        let store = Arc::clone(&self.store);
        match self.run(async move { store.head(&location).await }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail("cannot look up the copy", e)),
        }
    }

    fn delete(&self, key: &str) -> Result<()> {
        let location = self.key(key);
        let store = Arc::clone(&self.store);
        match self.run(async move { store.delete(&location).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail("cannot delete the copy", e)),
        }
    }
}

/// An object store in the cloud for `url`, its credentials from the provider's standard
/// environment variables, with `options` (`endpoint`, `region`, `allow_http`) on top.
fn cloud(
    url: &url::Url,
    options: &[(String, String)],
) -> std::result::Result<Box<dyn ObjectStore>, object_store::Error> {
    /// Applies the options the builder knows; an unknown one is an error.
    macro_rules! build {
        ($builder:expr) => {{
            let mut builder = $builder.with_url(url.as_str());
            for (key, value) in options {
                // GCS calls its endpoint the base URL.
                let key = match (url.scheme(), key.as_str()) {
                    ("gs", "endpoint") => "base_url",
                    _ => key.as_str(),
                };
                builder = builder.with_config(key.parse()?, value.clone());
            }
            Box::new(builder.build()?) as Box<dyn ObjectStore>
        }};
    }
    Ok(match url.scheme() {
        "s3" => build!(object_store::aws::AmazonS3Builder::from_env()),
        "az" => build!(object_store::azure::MicrosoftAzureBuilder::from_env()),
        "gs" => build!(object_store::gcp::GoogleCloudStorageBuilder::from_env()),
        other => {
            return Err(object_store::Error::Generic {
                store: "dbkeep",
                source: format!("unknown scheme {other}://").into(),
            });
        }
    })
}

/// Reads from `file` until `buf` is full or the file ends; returns how much it read.
fn fill(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads the chunks a download thread sends.
struct ChannelReader {
    rx: std::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    chunk: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => self.chunk = chunk,
                Ok(Err(e)) => return Err(e),
                // The sender is done: the end of the copy.
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
