//! The byte pipeline from an engine to a file: a row-counting tap on the raw stream, then
//! compression, then age encryption, then SHA-256 and a byte count of what is stored. Every
//! stage is a streaming `Write` adapter with its own `finish`; nothing holds a whole dump.

pub mod checked;
pub mod filter;
pub mod rows;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use dbkeep_config::config::Encryption;

use dbkeep_model::cancel::Cancel;
use dbkeep_model::stream::TableRows;
use dbkeep_model::stream::{CHUNK, Progress, RowFormat, copy};
use dbkeep_model::text::hex;
use dbkeep_model::vocab::Compression;
use rows::RowTap;

/// Hashes and counts the bytes written through it to the inner writer.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the byte count and the lowercase hex SHA-256 of everything written.
    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.bytes, hex(&self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The stored end of the pipeline: the file (hashed and counted), through age when the
/// backup is encrypted.
enum Sink {
    Plain(HashingWriter<File>),
    Age(age::stream::StreamWriter<HashingWriter<File>>),
}

impl Sink {
    fn finish(self) -> io::Result<HashingWriter<File>> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Age(w) => w.finish(),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Age(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Age(w) => w.flush(),
        }
    }
}

/// What a pipeline does to the raw stream, from configuration.
#[derive(Clone, Copy)]
pub struct Stages<'c> {
    /// How the stored file is compressed.
    pub compression: Compression,
    /// How the raw stream holds its rows, so a tap counts them; `None`: not counted.
    pub rows: Option<RowFormat>,
    /// Encrypt the compressed stream with age.
    pub encryption: Option<&'c Encryption>,
}

enum Encoder<W: Write + Send + 'static> {
    /// gzip in independent blocks on [`GZIP_THREADS`] threads (as `pigz` does): one gzip
    /// stream that `gunzip` reads.
    Gzip(gzp::par::compress::ParCompress<'static, gzp::deflate::Gzip, W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

/// What a finished pipeline stored.
#[derive(Debug)]
pub struct Written {
    /// Bytes stored in the file.
    pub size_bytes: u64,
    /// SHA-256 of the stored bytes, lowercase hex.
    pub sha256: String,
    /// Bytes the engine produced, before compression.
    pub raw_bytes: u64,
    /// Each table's rows, when a tap counted them on the raw stream.
    pub tables: Option<TableRows>,
}

/// The writer an engine streams into: compression, hashing, counting, then the file.
pub struct Pipeline<'p> {
    tap: Option<RowTap>,
    /// Taken by [`Pipeline::finish`]; when dropped unfinished, see `Drop`.
    encoder: Option<Encoder<Sink>>,
    progress: &'p dyn Progress,
    cancel: &'p Cancel,
    raw_bytes: u64,
}

/// gzip level: the level `gzip` itself uses by default, so sizes compare with `pg_dump | gzip`.
const GZIP_LEVEL: u32 = 6;
/// zstd level: the `zstd` command's default.
const ZSTD_LEVEL: i32 = 3;
/// zstd worker threads: compression runs beside the database tool on a second core.
const ZSTD_WORKERS: u32 = 2;
/// Bytes each zstd worker compresses at a time: with both workers busy and one job queued, what
/// zstd holds in memory (its default at level 3, 8 MiB, costs some 20 MiB more for no gain).
const ZSTD_JOB: u32 = 4 * 1024 * 1024;
/// gzip threads, each compressing its own blocks.
const GZIP_THREADS: usize = 2;
/// The size of a gzip block: large enough that compressing blocks without each other's
/// history costs little in size.
const GZIP_BLOCK: usize = 1024 * 1024;

impl<'p> Pipeline<'p> {
    /// A pipeline writing into `file` through `stages` (counting rows, compressing,
    /// encrypting); writes fail once `cancel` is raised.
    ///
    /// # Errors
    /// When the compressor or the encryption cannot be set up.
    pub fn new(
        file: File,
        stages: Stages<'_>,
        progress: &'p dyn Progress,
        cancel: &'p Cancel,
    ) -> io::Result<Self> {
        let hashed = HashingWriter::new(file);
        let sink = match stages.encryption {
            Some(encryption) => Sink::Age(
                crate::crypt::encryptor(encryption)
                    .map_err(io::Error::other)?
                    .wrap_output(hashed)?,
            ),
            None => Sink::Plain(hashed),
        };
        let rows = stages.rows;
        let encoder = match stages.compression {
            Compression::Gzip => Encoder::Gzip(
                gzp::par::compress::ParCompressBuilder::<gzp::deflate::Gzip>::new()
                    .num_threads(GZIP_THREADS)
                    .and_then(|b| b.buffer_size(GZIP_BLOCK))
                    .map_err(io::Error::other)?
                    .compression_level(flate2::Compression::new(GZIP_LEVEL))
                    .from_writer(sink),
            ),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(sink, ZSTD_LEVEL)?;
                enc.multithread(ZSTD_WORKERS)?;
                enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB))?;
                Encoder::Zstd(enc)
            }
            Compression::None => Encoder::None(sink),
        };
        Ok(Pipeline {
            tap: rows.map(RowTap::new),
            encoder: Some(encoder),
            progress,
            cancel,
            raw_bytes: 0,
        })
    }

    /// Ends compression, syncs the file to disk, and returns what was stored.
    ///
    /// # Errors
    /// When the last bytes cannot be written or synced.
    pub fn finish(mut self) -> io::Result<Written> {
        let sink = match self.encoder.take() {
            Some(Encoder::Gzip(mut e)) => {
                use gzp::ZWriter as _;
                e.finish().map_err(io::Error::other)?
            }
            Some(Encoder::Zstd(e)) => e.finish()?,
            Some(Encoder::None(s)) => s,
            None => return Err(io::Error::other("the pipeline was finished already")),
        };
        let sink = sink.finish()?;
        let (mut file, size_bytes, sha256) = sink.finish();
        file.flush()?;
        file.sync_all()?;
        Ok(Written {
            size_bytes,
            sha256,
            raw_bytes: self.raw_bytes,
            tables: self.tap.take().map(RowTap::tables),
        })
    }
}

impl Drop for Pipeline<'_> {
    /// An unfinished pipeline (a failed or cancelled backup, whose file is removed) stops its
    /// gzip threads here, quietly: dropping them unfinished would panic on a write error.
    fn drop(&mut self) {
        if let Some(Encoder::Gzip(mut e)) = self.encoder.take() {
            use gzp::ZWriter as _;
            let _ = e.finish();
        }
    }
}

impl Write for Pipeline<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(reason) = self.cancel.reason() {
            return Err(io::Error::other(reason));
        }
        let n = match &mut self.encoder {
            Some(Encoder::Gzip(e)) => e.write(buf)?,
            Some(Encoder::Zstd(e)) => e.write(buf)?,
            Some(Encoder::None(s)) => s.write(buf)?,
            None => return Err(io::Error::other("the pipeline was finished already")),
        };
        if let Some(tap) = &mut self.tap {
            tap.observe(&buf[..n]);
        }
        self.raw_bytes += n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.encoder {
            Some(Encoder::Gzip(e)) => e.flush(),
            Some(Encoder::Zstd(e)) => e.flush(),
            Some(Encoder::None(s)) => s.flush(),
            None => Ok(()),
        }
    }
}

/// The read side of the pipeline: the uncompressed stream of a stored backup file, decrypted
/// with `keys` first when it is encrypted.
///
/// # Errors
/// When the file does not decrypt with `keys`, or the decompressor cannot be set up.
pub fn open_reader(
    file: Box<dyn Read + Send>,
    compression: Compression,
    keys: Option<&crate::crypt::Keys>,
) -> io::Result<Box<dyn Read + Send>> {
    let stored: Box<dyn Read + Send> = match keys {
        Some(keys) => keys.decrypt(file)?,
        None => file,
    };
    let buffered = io::BufReader::with_capacity(CHUNK, stored);
    Ok(match compression {
        // Several gzip members in one file read as one stream, as `gunzip` reads them.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Compression::None => Box::new(buffered),
    })
}

/// The size and SHA-256 of what `reader` yields, read in chunks.
///
/// # Errors
/// When reading fails.
pub fn hash_reader(reader: &mut dyn Read) -> io::Result<(u64, String)> {
    let mut sink = HashingWriter::new(io::sink());
    copy(reader, &mut sink)?;
    let (_, size, sha256) = sink.finish();
    Ok((size, sha256))
}

/// The size and SHA-256 of a file, read in chunks.
///
/// # Errors
/// When the file cannot be read.
pub fn hash_file(path: &Path) -> io::Result<Written> {
    let mut sink = HashingWriter::new(io::sink());
    copy(&mut File::open(path)?, &mut sink)?;
    let (_, size_bytes, sha256) = sink.finish();
    Ok(Written {
        size_bytes,
        sha256,
        raw_bytes: size_bytes,
        tables: None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dbkeep_model::stream::NoProgress;

    /// Several megabytes of text that compresses like a dump does, not like zeros.
    fn sample() -> Vec<u8> {
        (0..120_000u32)
            .flat_map(|i| format!("{i}\tuser {}\t{}\n", i * 7919 % 1000, i % 97).into_bytes())
            .collect()
    }

    #[test]
    fn gzip_on_several_threads_is_one_stream_whose_hash_is_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.gz");
        let data = sample();
        assert!(data.len() > 2 * GZIP_BLOCK, "several blocks");
        let cancel = Cancel::new();
        let mut out = Pipeline::new(
            File::create(&path).unwrap(),
            Stages {
                compression: Compression::Gzip,
                rows: None,
                encryption: None,
            },
            &NoProgress,
            &cancel,
        )
        .unwrap();
        for part in data.chunks(10_000) {
            out.write_all(part).unwrap();
        }
        let written = out.finish().unwrap();
        assert_eq!(written.raw_bytes, data.len() as u64);
        let stored = std::fs::read(&path).unwrap();
        assert_eq!(written.size_bytes, stored.len() as u64);
        assert_eq!(written.sha256, hash_file(&path).unwrap().sha256);
        // One gzip member (what `gzip -t` and every gunzip accept), holding every byte.
        let mut single = flate2::read::GzDecoder::new(stored.as_slice());
        let mut back = Vec::new();
        single.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn an_unfinished_gzip_pipeline_drops_quietly() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = Cancel::new();
        let mut out = Pipeline::new(
            File::create(dir.path().join("part")).unwrap(),
            Stages {
                compression: Compression::Gzip,
                rows: None,
                encryption: None,
            },
            &NoProgress,
            &cancel,
        )
        .unwrap();
        out.write_all(&sample()).unwrap();
        cancel.cancel("stopped");
        assert!(out.write_all(b"more").is_err());
        drop(out);
    }
}
