//! The local backup folder: private files and folders, durable writes, atomic publication.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every backup file: readable and writable by its owner only.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every folder dbkeep creates for backups.
pub const DIR_MODE: u32 = 0o700;

/// Creates `dir` (and its parents) and makes it mode 0700 whatever the umask. Refuses a `dir`
/// that is a symbolic link: dbkeep writes only into real folders.
///
/// # Errors
/// When a component cannot be created, or exists and is not a folder, or `dir` is a link.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    create_private_parents(dir)?;
    refuse_link(dir)?;
    fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
}

/// Creates whichever of `dir` and its parents are missing, each mode 0700 whatever the umask;
/// folders that exist already keep their mode.
///
/// # Errors
/// When a component cannot be created, or exists and is not a folder.
pub fn create_private_parents(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(()); // The current folder.
    }
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && fs::symlink_metadata(p).is_err())
        .collect();
    for p in missing.into_iter().rev() {
        match DirBuilder::new().mode(DIR_MODE).create(p) {
            Ok(()) => fs::set_permissions(p, Permissions::from_mode(DIR_MODE))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {} // Made by another process.
            Err(e) => return Err(e),
        }
    }
    if fs::metadata(dir)?.is_dir() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{} exists and is not a folder",
            dir.display()
        )))
    }
}

/// Refuses a path that is a symbolic link.
fn refuse_link(path: &Path) -> io::Result<()> {
    if fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(io::Error::other(format!(
            "{} is a symbolic link; dbkeep does not follow links in the backup folder: replace it with a real folder or file",
            path.display()
        )));
    }
    Ok(())
}

/// Whether `name` is one plain path component (no `/`, not `.` or `..`, not empty).
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

/// The stored backup `file_name` of `database`: `backup_dir/<database>/<file_name>`, provided
/// both names are plain, neither the folder nor the file is a symbolic link, and the file is a
/// regular file inside that folder. Whatever path a catalog row holds, dbkeep only ever opens
/// or deletes a file found this way.
///
/// # Errors
/// `NotFound` when the file is missing; another error naming the path when it is refused.
pub fn backup_file(backup_dir: &Path, database: &str, file_name: &str) -> io::Result<PathBuf> {
    if !plain_name(database) || !plain_name(file_name) {
        return Err(io::Error::other(format!(
            "`{database}/{file_name}` is not a backup file name; refusing it"
        )));
    }
    let folder = backup_dir.join(database);
    refuse_link(&folder)?;
    let file = folder.join(file_name);
    refuse_link(&file)?;
    if !fs::metadata(&file)?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file; refusing it",
            file.display()
        )));
    }
    let inside = fs::canonicalize(&file)?.parent() == Some(fs::canonicalize(&folder)?.as_path());
    if !inside {
        return Err(io::Error::other(format!(
            "{} resolves outside {}; refusing it",
            file.display(),
            folder.display()
        )));
    }
    Ok(file)
}

/// The folder `backup_dir/<database>` opened as a directory, never through a link: the file
/// operations below act inside this very folder even if its path is swapped meanwhile.
fn open_database_dir(backup_dir: &Path, database: &str) -> io::Result<rustix::fd::OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    let folder = backup_dir.join(database);
    rustix::fs::open(
        &folder,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR => io::Error::other(format!(
            "{} is a symbolic link or not a folder; dbkeep does not follow links in the backup folder",
            folder.display()
        )),
        e => io::Error::from(e),
    })
}

/// Opens the stored backup `file_name` of `database` for reading: inside the folder opened by
/// [`open_database_dir`], never through a link, and only a regular file.
///
/// # Errors
/// `NotFound` when it is missing; another error naming the path when it is refused.
pub fn open_backup(backup_dir: &Path, database: &str, file_name: &str) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    backup_file(backup_dir, database, file_name)?;
    let dir = open_database_dir(backup_dir, database)?;
    let fd = rustix::fs::openat(
        &dir,
        file_name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file; refusing it",
            backup_dir.join(database).join(file_name).display()
        )));
    }
    Ok(file)
}

/// Deletes the stored backup `file_name` of `database`: inside the folder opened by
/// [`open_database_dir`], and only a regular file (a link there is refused, never followed).
///
/// # Errors
/// `NotFound` when it is missing; another error naming the path when it is refused.
pub fn remove_backup(backup_dir: &Path, database: &str, file_name: &str) -> io::Result<()> {
    remove_backups(backup_dir, database, &[file_name])?
        .pop()
        .unwrap_or(Ok(()))
}

/// Deletes many stored backups of `database` as [`remove_backup`] deletes one, with one sync
/// of the folder at the end: what each deletion did, in the order of `file_names`.
///
/// # Errors
/// When the folder cannot be opened or synced (then no deletion is known to be durable).
pub fn remove_backups(
    backup_dir: &Path,
    database: &str,
    file_names: &[&str],
) -> io::Result<Vec<io::Result<()>>> {
    use rustix::fs::{AtFlags, FileType};
    let dir = open_database_dir(backup_dir, database)?;
    let one = |file_name: &str| -> io::Result<()> {
        backup_file(backup_dir, database, file_name)?;
        let stat = rustix::fs::statat(&dir, file_name, AtFlags::SYMLINK_NOFOLLOW)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(io::Error::other(format!(
                "{} is not a regular file; refusing it",
                backup_dir.join(database).join(file_name).display()
            )));
        }
        Ok(rustix::fs::unlinkat(&dir, file_name, AtFlags::empty())?)
    };
    let done: Vec<io::Result<()>> = file_names.iter().map(|name| one(name)).collect();
    rustix::fs::fsync(&dir)?;
    Ok(done)
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
    if fs::symlink_metadata(final_path).is_ok() {
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

/// The bytes free for an unprivileged writer on the file system that holds `path` (or, when
/// `path` does not exist yet, its nearest existing parent: where it would be created).
///
/// # Errors
/// When no part of `path` exists or the file system cannot be asked.
pub fn free_space(path: &Path) -> io::Result<u64> {
    let mut at = path;
    loop {
        match rustix::fs::statvfs(at) {
            Ok(stat) => return Ok(stat.f_bavail.saturating_mul(stat.f_frsize)),
            Err(rustix::io::Errno::NOENT) => match at.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => at = parent,
                // A relative path's first part is in the current folder.
                Some(_) if at != Path::new(".") => at = Path::new("."),
                _ => return Err(io::Error::from(rustix::io::Errno::NOENT)),
            },
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// How often (in bytes written) [`LeavesRoom`] asks how much of its disk is free.
const ROOM_CHECK_EVERY: u64 = 4 * 1024 * 1024;

/// `dir/.NAME.suffix`: a hidden temporary beside the final file, on the same file system.
pub fn temp_path(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{suffix}"))
}

/// A writer into `file` that stops, with an error of kind `StorageFull`, before the file's
/// disk would have less than `margin` bytes free: a file expanding from a small compressed one
/// never fills the disk (other programs' files live there too).
pub struct LeavesRoom<W> {
    inner: W,
    dir: PathBuf,
    margin: u64,
    /// Bytes the disk may take before it is asked again.
    allowance: u64,
}

impl<W: io::Write> LeavesRoom<W> {
    /// `inner`, writing `file`, leaving `margin` bytes free on its disk.
    pub fn new(inner: W, file: &Path, margin: u64) -> Self {
        let dir = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        LeavesRoom {
            inner,
            dir: dir.to_path_buf(),
            margin,
            allowance: 0,
        }
    }

    fn ask(&mut self, wanted: u64) -> io::Result<()> {
        let free = free_space(&self.dir)?;
        let room = free.saturating_sub(self.margin);
        if room < wanted {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "stopped: the disk of {} would have less than min_free_space ({}) free, with {} left; free some space there, or lower min_free_space",
                    self.dir.display(),
                    crate::text::exact_size(self.margin),
                    indicatif::HumanBytes(free)
                ),
            ));
        }
        self.allowance = room.min(ROOM_CHECK_EVERY.max(wanted));
        Ok(())
    }
}

impl<W: io::Write> io::Write for LeavesRoom<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let wanted = buf.len() as u64;
        if wanted > self.allowance {
            self.ask(wanted)?;
        }
        let n = self.inner.write(buf)?;
        self.allowance = self.allowance.saturating_sub(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_free_space_of_a_folder_not_made_yet_is_that_of_its_nearest_parent() {
        let missing = std::env::temp_dir().join("dbkeep-not-made-yet/app");
        assert!(!missing.exists());
        assert!(free_space(&std::env::temp_dir()).unwrap() > 0);
        assert!(free_space(&missing).unwrap() > 0);
        assert!(free_space(Path::new("dbkeep-not-made-yet/backups")).unwrap() > 0);
    }
}
