//! A file whose bytes live in memory (memfd), reachable by path, so the targets exercise
//! the real open-by-path, mmap code of each reader without touching the disk.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::PathBuf;

pub struct MemFile {
    file: std::fs::File,
}

impl MemFile {
    pub fn new(bytes: &[u8]) -> MemFile {
        // SAFETY: memfd_create with a static C string; the descriptor is owned by `file`.
        let fd = unsafe { libc::memfd_create(c"fuzz-input".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create failed");
        // SAFETY: `fd` is a fresh descriptor we own.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        file.write_all(bytes).expect("write to memfd");
        MemFile { file }
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }
}
