//! The swap file itself: opening it safely, positional I/O, removal on drop.

use std::ffi::OsString;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use super::DiskOpenError;

/// An open swap file.
pub(crate) struct SwapFile {
    fd: OwnedFd,
    /// Where to unlink the file on drop (a named file we created or truncated), with the
    /// identity it had, so that a file someone put in its place is left alone.
    named: Option<Named>,
    path: PathBuf,
}

struct Named {
    dir: OwnedFd,
    name: OsString,
    dev: u64,
    ino: u64,
}

fn open_err(path: &Path) -> impl FnOnce(Errno) -> DiskOpenError + '_ {
    move |e| DiskOpenError::Open {
        path: path.to_owned(),
        source: io::Error::from(e),
    }
}

fn setup_err<'p>(path: &'p Path, what: &'static str) -> impl FnOnce(Errno) -> DiskOpenError + 'p {
    move |e| DiskOpenError::Setup {
        path: path.to_owned(),
        what,
        source: io::Error::from(e),
    }
}

impl SwapFile {
    /// Open the swap file at `path` (see [`super::DiskStore::open`] for the semantics).
    pub fn open(path: &Path) -> Result<SwapFile, DiskOpenError> {
        let mode = Mode::from_raw_mode(0o600);
        let Some(name) = path.file_name() else {
            // "/", "..", "": no file name, so it can only be a directory.
            let fd = rustix::fs::open(path, OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC, mode)
                .map_err(|e| tmpfile_err(path, e))?;
            return Ok(SwapFile {
                fd,
                named: None,
                path: path.to_owned(),
            });
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // The directory is held open, so a later change of working directory or a rename of
        // a parent cannot make the removal on drop hit another file.
        let dir = rustix::fs::open(
            parent,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(open_err(path))?;
        // No O_TRUNC here: truncation waits until the file is known to be a regular file of
        // ours with no other name (below). NOFOLLOW refuses a symlink planted at the path;
        // NONBLOCK keeps a FIFO planted there from blocking the open, NOCTTY a terminal from
        // becoming ours.
        let opened = rustix::fs::openat(
            &dir,
            name,
            OFlags::RDWR
                | OFlags::CREATE
                | OFlags::NOFOLLOW
                | OFlags::CLOEXEC
                | OFlags::NONBLOCK
                | OFlags::NOCTTY,
            mode,
        );
        let fd = match opened {
            Ok(fd) => fd,
            Err(Errno::LOOP) => {
                let is_link = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
                return Err(if is_link {
                    DiskOpenError::Symlink {
                        path: path.to_owned(),
                    }
                } else {
                    open_err(path)(Errno::LOOP)
                });
            }
            Err(Errno::ISDIR) => {
                // An anonymous file in that directory: it has no name, so nothing to remove.
                let fd = rustix::fs::openat(
                    &dir,
                    name,
                    OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                    mode,
                )
                .map_err(|e| tmpfile_err(path, e))?;
                return Ok(SwapFile {
                    fd,
                    named: None,
                    path: path.to_owned(),
                });
            }
            Err(e) => return Err(open_err(path)(e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(setup_err(path, "fstat"))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(DiskOpenError::NotRegularFile {
                path: path.to_owned(),
            });
        }
        if st.st_uid != rustix::process::geteuid().as_raw() {
            return Err(DiskOpenError::Foreign {
                path: path.to_owned(),
                reason: "it belongs to another user",
            });
        }
        if st.st_nlink != 1 {
            return Err(DiskOpenError::Foreign {
                path: path.to_owned(),
                reason: "it has other hard links",
            });
        }
        // Ours, regular, one name: now it is safe to empty it and make it private.
        rustix::fs::ftruncate(&fd, 0).map_err(setup_err(path, "ftruncate"))?;
        rustix::fs::fchmod(&fd, mode).map_err(setup_err(path, "fchmod"))?;
        let (dev, ino) = identity(&st);
        Ok(SwapFile {
            fd,
            named: Some(Named {
                dir,
                name: name.to_owned(),
                dev,
                ino,
            }),
            path: path.to_owned(),
        })
    }

    /// The path the store was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file is anonymous (`O_TMPFILE` in a directory).
    pub fn is_anonymous(&self) -> bool {
        self.named.is_none()
    }

    /// Write all of `buf` at `offset`, retrying short writes and interruptions. Returns the
    /// errno of a failure. Allocates nothing.
    pub fn write_all(&self, mut buf: &[u8], mut offset: u64) -> Result<(), i32> {
        while !buf.is_empty() {
            match rustix::io::pwrite(&self.fd, buf, offset) {
                Ok(0) => return Err(Errno::IO.raw_os_error()),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.raw_os_error()),
            }
        }
        Ok(())
    }

    /// Fill `buf` from `offset`, retrying short reads and interruptions; reaching the end of
    /// the file first is `EIO`. Allocates nothing.
    pub fn read_exact(&self, mut buf: &mut [u8], mut offset: u64) -> Result<(), i32> {
        while !buf.is_empty() {
            match rustix::io::pread(&self.fd, &mut *buf, offset) {
                Ok(0) => return Err(Errno::IO.raw_os_error()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.raw_os_error()),
            }
        }
        Ok(())
    }

    /// The file's size in bytes.
    pub fn size(&self) -> Result<u64, i32> {
        let st = rustix::fs::fstat(&self.fd).map_err(Errno::raw_os_error)?;
        u64::try_from(st.st_size).map_err(|_| Errno::OVERFLOW.raw_os_error())
    }

    /// Cut the file to `len` bytes.
    pub fn truncate(&self, len: u64) -> Result<(), i32> {
        rustix::fs::ftruncate(&self.fd, len).map_err(Errno::raw_os_error)
    }
}

/// Device and inode of a file.
#[allow(
    clippy::useless_conversion,
    reason = "dev_t and ino_t differ between targets"
)]
fn identity(st: &Stat) -> (u64, u64) {
    (u64::from(st.st_dev), u64::from(st.st_ino))
}

fn tmpfile_err(path: &Path, e: Errno) -> DiskOpenError {
    DiskOpenError::TempFile {
        path: path.to_owned(),
        source: io::Error::from(e),
    }
}

impl Drop for SwapFile {
    fn drop(&mut self) {
        self.unlink();
    }
}

impl SwapFile {
    /// Remove the file's name now (once), if it still names our file; the data stays
    /// reachable through the open descriptor.
    pub(super) fn unlink(&mut self) {
        let Some(n) = self.named.take() else { return };
        // Remove the name only if it still names our file.
        let ours = rustix::fs::statat(&n.dir, &n.name, AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| identity(&st) == (n.dev, n.ino));
        if !ours {
            tracing::warn!(path = %self.path.display(), "swap file was replaced or removed; leaving the path alone");
            return;
        }
        if let Err(e) = rustix::fs::unlinkat(&n.dir, &n.name, AtFlags::empty()) {
            tracing::warn!(path = %self.path.display(), error = %e, "removing the swap file failed");
        }
    }
}
