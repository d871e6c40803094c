//! The local backup folder: private files and folders, durable writes, atomic publication.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every backup file: readable and writable by its owner only.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every folder dbkeep creates for backups.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and its parents) and makes it mode 0700 whatever the umask.
///
/// # Errors
/// When a component cannot be created, or exists and is not a folder.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
}

/// Creates a new, empty file at `path`, mode 0600 whatever the umask; fails if it exists.
///
/// # Errors
/// When the file exists or cannot be created.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)?;
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Flushes `dir`'s entries to disk, so a rename inside it survives a crash.
///
/// # Errors
/// When the folder cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Publishes a fully written and synced temporary file under its final name, atomically.
/// Refuses to replace an existing file.
///
/// # Errors
/// When the final name is taken or the rename or folder sync fails.
pub fn publish(temp: &Path, final_path: &Path) -> io::Result<()> {
    if final_path.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} already exists; refusing to overwrite a backup",
                final_path.display()
            ),
        ));
    }
    fs::rename(temp, final_path)?;
    if let Some(dir) = final_path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Removes `path` if it exists; a missing file is not an error.
///
/// # Errors
/// When the file exists and cannot be removed.
pub fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
