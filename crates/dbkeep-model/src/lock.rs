//! Lock files across processes: a SQLite catalog's migration runs in one process at a time.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

/// The folder of lock files for the catalog at `catalog`: `<catalog>.locks/`.
pub fn lock_dir(catalog: &Path) -> PathBuf {
    let mut name = catalog.file_name().unwrap_or_default().to_os_string();
    name.push(".locks");
    catalog.with_file_name(name)
}

/// Waits for and takes an exclusive lock on the file at `path` (created if absent, with its
/// folder), held until the returned file is dropped.
///
/// # Errors
/// When the file cannot be created or locked.
pub fn exclusive(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        crate::storage::create_private_dir(dir)?;
    }
    let file = open_lock_file(path)?;
    file.lock()?;
    Ok(file)
}

/// Opens (creating, mode 0600 whatever the umask) the lock file at `path`.
fn open_lock_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // Never through a link planted in the lock folder: it would have its target chmod'ed.
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(crate::storage::FILE_MODE)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(crate::storage::FILE_MODE))?;
    Ok(file)
}
