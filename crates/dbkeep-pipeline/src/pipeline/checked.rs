//! A stored file's stream that ends only once the whole file was read and matched its
//! recorded SHA-256: a load that commits at the end of its input commits only a file that is
//! what the catalog says, even if the file changed after the check before the load.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use dbkeep_model::vocab::Compression;

/// The stored bytes as read so far, hashed as they pass.
struct Stored {
    file: Box<dyn Read + Send>,
    hasher: Sha256,
    bytes: u64,
}

impl Stored {
    fn read_hashed(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn lock(stored: &Mutex<Stored>) -> std::sync::MutexGuard<'_, Stored> {
    stored.lock().unwrap_or_else(|p| p.into_inner())
}

/// The decoder's side: the stored bytes, hashed on their way.
struct Tap(Arc<Mutex<Stored>>);

impl Read for Tap {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        lock(&self.0).read_hashed(buf)
    }
}

/// The uncompressed stream, whose end waits for the check.
struct Checked {
    plain: Box<dyn Read + Send>,
    stored: Arc<Mutex<Stored>>,
    expected: String,
    checked: bool,
}

impl Read for Checked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.plain.read(buf)?;
        if n > 0 || buf.is_empty() || self.checked {
            return Ok(n);
        }
        // The decoder is done; what it did not need of the file is hashed too.
        let mut stored = lock(&self.stored);
        let mut rest = vec![0u8; dbkeep_model::stream::CHUNK];
        while stored.read_hashed(&mut rest)? > 0 {}
        let found = dbkeep_model::text::hex(&std::mem::take(&mut stored.hasher).finalize());
        if found != self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the file no longer matches its recorded SHA-256 (recorded {}, read {found}, {} bytes): it changed while it was read",
                    self.expected, stored.bytes
                ),
            ));
        }
        self.checked = true;
        Ok(0)
    }
}

/// The uncompressed stream of stored `file` (as [`super::open_reader`] gives it), which ends
/// only once the whole file has been read and its SHA-256 is `expected`; else its end is an
/// error of kind `InvalidData`.
///
/// # Errors
/// As [`super::open_reader`].
pub fn open_checked(
    file: Box<dyn Read + Send>,
    compression: Compression,
    keys: Option<&crate::crypt::Keys>,
    expected: &str,
) -> io::Result<Box<dyn Read + Send>> {
    let stored = Arc::new(Mutex::new(Stored {
        file,
        hasher: Sha256::new(),
        bytes: 0,
    }));
    let plain = super::open_reader(Box::new(Tap(Arc::clone(&stored))), compression, keys)?;
    Ok(Box::new(Checked {
        plain,
        stored,
        expected: expected.to_string(),
        checked: false,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn sha(data: &[u8]) -> String {
        dbkeep_model::text::hex(&Sha256::digest(data))
    }

    fn read_all(file: Vec<u8>, compression: Compression, expected: &str) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        open_checked(Box::new(io::Cursor::new(file)), compression, None, expected)?
            .read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn the_stream_ends_only_when_the_whole_file_matches() {
        let plain = b"COPY t (x) FROM stdin;\n1\n\\.\n".repeat(1000);
        assert_eq!(
            read_all(plain.clone(), Compression::None, &sha(&plain)).unwrap(),
            plain
        );
        let zipped = gzip(&plain);
        assert_eq!(
            read_all(zipped.clone(), Compression::Gzip, &sha(&zipped)).unwrap(),
            plain
        );
        // The stored bytes are what is checked, not what they decompress to.
        let error = read_all(zipped, Compression::Gzip, &sha(&plain)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        // Every byte passes, then the end is an error: a load that commits at the end of its
        // input never commits it.
        let mut stream = open_checked(
            Box::new(io::Cursor::new(plain.clone())),
            Compression::None,
            None,
            &sha(b"another file"),
        )
        .unwrap();
        let mut got = vec![0u8; plain.len()];
        stream.read_exact(&mut got).unwrap();
        assert_eq!(got, plain);
        let error = stream.read(&mut [0u8; 16]).unwrap_err();
        assert!(
            error.to_string().contains("changed while it was read"),
            "{error}"
        );
    }
}
