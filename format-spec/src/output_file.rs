//! How every writer in this crate (HCT, GGUF) and the converter (safetensors) puts a file
//! at its output path (SPEC.md §9):
//!
//! - The output path must be absent or a regular file. A symlink, FIFO, socket, device or
//!   directory there is refused before anything is written and again just before the
//!   rename, so `hct convert x.hct /dev/null` run as root never replaces the device node.
//! - Bytes go to a temporary file `.NAME.XXXXXX.tmp` beside the output, locked (`flock`)
//!   by the writing process for as long as it lives. A temporary file whose lock nobody
//!   holds was left by a killed writer; the next writer of the same output removes it.
//! - The temporary file is created with mode 0666 minus the umask, like any file `cp` or a
//!   shell redirection creates, whatever the output format.
//! - The finished file is fsynced by the caller, renamed over the output path, and the
//!   directory is fsynced.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use tempfile::NamedTempFile;

/// The directory a file at `path` lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Refuse an output path that holds anything but a regular file: renaming over it would
/// replace a device node, a FIFO or a symlink (not the file it points to), and a directory
/// cannot be replaced at all.
pub fn check_target(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let ft = meta.file_type();
    if ft.is_file() {
        return Ok(());
    }
    let what = describe(&ft);
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "the output path is {what}, not a regular file; hct writes a new file and renames \
             it into place, which would replace the {what} itself, so it refuses (remove it or \
             choose another output path)"
        ),
    ))
}

fn describe(ft: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// The error for an input path that is not a regular file (mapping a directory fails with
/// ENODEV, "no such device", which names the wrong problem).
pub fn not_a_file(meta: &std::fs::Metadata) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {}, not a regular file", describe(&meta.file_type())),
    )
}

/// The temporary file name prefix for an output path: `.NAME.`.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.")
}

/// Create the locked temporary file for `path`, after checking the target and removing
/// temporary files that killed writers of the same output left behind.
pub fn create_temp(path: &Path) -> io::Result<NamedTempFile> {
    check_target(path)?;
    let dir = parent_dir(path);
    let prefix = temp_prefix(path);
    remove_stale_temps(&dir, &prefix);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // tempfile's default is 0600; open(2) applies the umask to this mode, as it does for
    // any new file.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let tmp = builder.tempfile_in(&dir)?;
    lock(tmp.as_file(), true);
    Ok(tmp)
}

/// Rename a complete, fsynced temporary file over `path` and make the rename durable.
pub fn persist(tmp: NamedTempFile, path: &Path) -> io::Result<()> {
    // The target may have changed since `create_temp` (a FIFO made meanwhile).
    check_target(path)?;
    tmp.persist(path).map_err(|e| e.error)?;
    // Failure to sync the directory is not fatal: the data itself is synced.
    if let Ok(d) = File::open(parent_dir(path)) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Remove `.NAME.*.tmp` files in `dir` that no live writer holds locked. Best effort: a
/// file that cannot be opened or locked is left alone.
fn remove_stale_temps(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(prefix) || !name.ends_with(".tmp") {
            continue;
        }
        // Only the six random characters tempfile puts between prefix and suffix.
        let middle = &name[prefix.len()..name.len() - ".tmp".len()];
        if middle.len() != 6 || !middle.bytes().all(|b| b.is_ascii_alphanumeric()) {
            continue;
        }
        let p = e.path();
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_file() => {}
            _ => continue,
        }
        let Ok(f) = File::open(&p) else { continue };
        if lock(&f, false) {
            tracing::info!(path = %p.display(), "removing a temporary file left by an interrupted writer");
            let _ = std::fs::remove_file(&p);
        }
    }
}

/// Take an exclusive `flock` on `f`; with `wait == false`, only if nobody holds it.
/// Returns whether the lock is held. Without flock (non-Unix), nothing is stale.
fn lock(f: &File, wait: bool) -> bool {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let op = if wait {
            libc::LOCK_EX
        } else {
            libc::LOCK_EX | libc::LOCK_NB
        };
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        unsafe { libc::flock(f.as_raw_fd(), op) == 0 }
    }
    #[cfg(not(unix))]
    {
        let _ = (f, wait);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_regular_targets_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, b"keep me").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = check_target(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let err = check_target(dir.path()).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
        let err = check_target(Path::new("/dev/null")).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        assert!(check_target(&real).is_ok());
        assert!(check_target(&dir.path().join("absent")).is_ok());
    }

    #[test]
    fn stale_temporary_files_are_removed_but_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("m.hct");
        let stale = dir.path().join(".m.hct.AbC123.tmp");
        std::fs::write(&stale, b"left by a killed writer").unwrap();
        let unrelated = dir.path().join(".m.hct.notours.tmp");
        std::fs::write(&unrelated, b"x").unwrap();
        let live = create_temp(&out).unwrap();
        assert!(!stale.exists(), "stale temporary file survived");
        assert!(unrelated.exists(), "a file not named like ours was removed");
        let second = create_temp(&out).unwrap();
        assert!(
            live.path().exists(),
            "a live writer's temporary file was removed"
        );
        drop(second);
        drop(live);
    }
}
