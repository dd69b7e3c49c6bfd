//! The userfaultfd backend (SIGBUS mode): the default wherever the kernel allows it.
//!
//! The arena is registered with a userfaultfd created with `UFFD_USER_MODE_ONLY` (allowed
//! without privileges since Linux 5.11) and `UFFD_FEATURE_SIGBUS`, in MISSING and
//! write-protect (WP) modes. No thread reads the descriptor: the kernel raises SIGBUS in the
//! faulting thread instead, and the handler resolves the fault itself with one ioctl.
//!
//! ```text
//!   touch of a hole ──▶ SIGBUS ──▶ UFFDIO_COPY (the decoded page, or zeros) ──▶ retry
//!   evict:  UFFDIO_WRITEPROTECT ──▶ read final contents ──▶ store ──▶ madvise(MADV_DONTNEED)
//!             (stores now raise SIGBUS and wait;      (the page is a hole again:
//!              loads still see the final contents)     the next touch is a MISSING fault)
//! ```
//!
//! The arena is private anonymous memory ([`Backing::Anonymous`]): the final contents are read
//! through the mapping (the page is write-protected, so nothing changes under the copy), and
//! dropping the page makes its next touch a MISSING fault again.
//!
//! Compared with the signal backend: no `mprotect`, so the mapping is never split into one VMA
//! per page (no `vm.max_map_count` limit) and the process's mmap lock is only taken for reading,
//! so faults of several threads proceed at once.
//!
//! Limits: a system call that touches a hole fails with `EFAULT` (user-mode-only and SIGBUS
//! mode never serve faults taken inside the kernel), as with the signal backend; so does one
//! that writes into a write-protected page (a clean page, see `pager/clean.rs`).
//!
//! **Thread mode** (kernel access, [`crate::FaultBackend::UserfaultfdThread`]): the descriptor
//! is created without `UFFD_USER_MODE_ONLY` and without SIGBUS mode, so the kernel queues every
//! fault on the arena, taken in user mode or inside a system call, as a message on it, and the
//! faulting thread sleeps. One handler thread per instance reads the messages
//! ([`Userfaultfd::serve`]), runs the pager's fault path for each (the same one a signal
//! handler runs, with every signal blocked), whose `UFFDIO_COPY` wakes the
//! sleeper; then it wakes the page's waiters once more (`UFFDIO_WAKE`) for faults that found
//! the page resident already. The kernel allows such a descriptor only with `CAP_SYS_PTRACE`,
//! with `vm.unprivileged_userfaultfd = 1`, or through `/dev/userfaultfd` (Linux 6.1+).
//!
//! ```text
//!   thread T: touch / read(2) into a hole ──▶ kernel queues a message, T sleeps
//!   handler:  read msg ──▶ pager fault path ──▶ UFFDIO_COPY (wakes T) ──▶ UFFDIO_WAKE
//!             no message: spin up to `spin`, then poll(uffd, stop eventfd)
//! ```

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use rustix::io::Errno;

use super::arena::{Arena, Backing};
use crate::page::{PageId, PageRun, page_size};
use crate::sys::{Backend, BackendKind, Outcome};

// <linux/userfaultfd.h>; the `libc` crate does not define the userfaultfd ioctls.
const UFFD_API: u64 = 0xaa;
const UFFD_USER_MODE_ONLY: libc::c_int = 1;
const UFFD_FEATURE_SIGBUS: u64 = 1 << 7;
const UFFD_FEATURE_THREAD_ID: u64 = 1 << 8;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1 << 0;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
const UFFDIO_WRITEPROTECT_MODE_WP: u64 = 1 << 0;
const UFFDIO_COPY_MODE_WP: u64 = 1 << 1;
/// `UFFDIO_MOVE` (Linux 6.8+): spare pages (see [`Spares`]).
const UFFD_FEATURE_MOVE: u64 = 1 << 16;

const UFFDIO_API: libc::c_ulong = 0xc018_aa3f;
const UFFDIO_REGISTER: libc::c_ulong = 0xc020_aa00;
const UFFDIO_COPY: libc::c_ulong = 0xc028_aa03;
const UFFDIO_WRITEPROTECT: libc::c_ulong = 0xc018_aa06;
const UFFDIO_WAKE: libc::c_ulong = 0x8010_aa02;
const UFFDIO_MOVE: libc::c_ulong = 0xc028_aa05;
/// `/dev/userfaultfd`'s ioctl that returns a new userfaultfd (Linux 6.1+).
const USERFAULTFD_IOC_NEW: libc::c_ulong = 0xaa00;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;

/// `struct uffd_msg` as a page fault fills it.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct UffdMsg {
    event: u8,
    reserved1: u8,
    reserved2: u16,
    reserved3: u32,
    flags: u64,
    address: u64,
    ptid: u64,
}

/// How long the handler thread spins on an empty queue before it blocks in `poll` (thread
/// mode). Set by `GHOSTMEM_UFFD_SPIN_US` (microseconds; 0 blocks at once).
pub(crate) const SPIN_ENV: &str = "GHOSTMEM_UFFD_SPIN_US";
const DEFAULT_SPIN: Duration = Duration::from_micros(10);

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

#[repr(C)]
struct UffdioMove {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    moved: i64,
}

#[repr(C)]
struct UffdioWriteprotect {
    range: UffdioRange,
    mode: u64,
}

/// Why the userfaultfd backend is not available here.
#[derive(Debug)]
pub(crate) struct Unavailable {
    pub step: &'static str,
    pub source: io::Error,
}

/// The userfaultfd backend: the arena and the descriptor it is registered with.
pub(crate) struct Userfaultfd {
    arena: Arena,
    /// One page of zeros, the source of a zero page's `UFFDIO_COPY`.
    zeros: Box<[u8]>,
    uffd: OwnedFd,
    /// Thread mode: what stops the handler thread, and how long it spins.
    thread: Option<ThreadMode>,
    /// Where the kernel moves pages (`UFFDIO_MOVE`): the spare slots.
    spares: Option<Spares>,
}

/// Spare slots: a second private anonymous mapping, as many page-sized slots as the arena has
/// pages (the pager uses the first `budget` of them: a slot per CLOCK frame), registered with
/// the same userfaultfd (a `UFFDIO_MOVE` destination must be). The pager keeps
/// in a frame's slot the memory of the page it last evicted from that frame, and moves it back
/// under the next page the frame takes: eviction and restore then neither free, allocate,
/// charge nor copy a page (see `pager/spare.rs`).
///
/// ```text
///   evict:    arena page ──UFFDIO_MOVE──▶ slot of its frame   (the page is a hole at once:
///             encode from the slot                             a touch faults and waits)
///   restore:  decode into the slot ──UFFDIO_MOVE──▶ the hole
/// ```
struct Spares {
    area: Arena,
    /// Set once the kernel refused `UFFDIO_MOVE` (a seccomp filter, say): no more stashing.
    refused: AtomicBool,
}

struct ThreadMode {
    stop: OwnedFd,
    spin: Duration,
}

/// Why a userfaultfd that serves kernel faults could not be created.
#[derive(Debug)]
pub(crate) struct KernelAccessRefused {
    pub syscall: io::Error,
    pub device: io::Error,
}

/// Create a userfaultfd without `UFFD_USER_MODE_ONLY`: the system call, else the device.
fn kernel_uffd() -> Result<OwnedFd, KernelAccessRefused> {
    let flags = libc::O_CLOEXEC | libc::O_NONBLOCK;
    // SAFETY: userfaultfd(2) takes only flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, flags) };
    if fd >= 0 {
        let fd = i32::try_from(fd).expect("descriptors fit in i32");
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let syscall = last_error();
    let device = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/userfaultfd")
    {
        Err(e) => e,
        Ok(dev) => {
            // SAFETY: USERFAULTFD_IOC_NEW takes the flags as its argument and returns a new
            // descriptor or -1.
            let fd = unsafe { libc::ioctl(dev.as_raw_fd(), USERFAULTFD_IOC_NEW, flags) };
            if fd >= 0 {
                // SAFETY: as above.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            last_error()
        }
    };
    Err(KernelAccessRefused { syscall, device })
}

fn last_error() -> io::Error {
    io::Error::last_os_error()
}

/// Whole pages in `bytes`.
fn pages_in(bytes: usize) -> u32 {
    u32::try_from(bytes / page_size()).expect("arena pages fit in u32")
}

/// How many times a `UFFDIO_MOVE` that keeps failing with `EAGAIN` is retried.
const MOVE_TRIES: u32 = 16;

/// The values of [`crate::SPARES_ENV`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpareMode {
    Auto,
    Always,
    Never,
}

impl SpareMode {
    /// The mode [`crate::SPARES_ENV`] asks for; `Auto` when unset or not understood.
    pub fn from_env() -> SpareMode {
        use crate::SPARES_ENV;
        match std::env::var(SPARES_ENV).as_deref() {
            Ok("always") => SpareMode::Always,
            Ok("never") => SpareMode::Never,
            Ok("auto") | Err(_) => SpareMode::Auto,
            Ok(other) => {
                tracing::warn!(
                    value = other,
                    "{SPARES_ENV} is not auto, always or never; using auto"
                );
                SpareMode::Auto
            }
        }
    }
}

impl Spares {
    /// Map `len` bytes of slots and register them with `uffd` (a move's destination must be
    /// registered), in MISSING mode only: a page moved into a slot may carry the arena's
    /// write-protect bit (a swapped-out page keeps it in its swap entry), which must not
    /// make the slot's next write fault.
    fn new(uffd: &OwnedFd, len: usize) -> io::Result<Spares> {
        let area =
            Arena::new(len, Backing::Anonymous).map_err(|e| io::Error::other(e.to_string()))?;
        register(uffd, &area, UFFDIO_REGISTER_MODE_MISSING)?;
        Ok(Spares {
            area,
            refused: AtomicBool::new(false),
        })
    }
}

/// Register `area` with `uffd` in `mode`.
fn register(uffd: &OwnedFd, area: &Arena, mode: u64) -> io::Result<()> {
    let mut reg = UffdioRegister {
        range: UffdioRange {
            start: area.base() as u64,
            len: area.len() as u64,
        },
        mode,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_REGISTER reads and writes a `struct uffdio_register`; the range is our own
    // mapping.
    if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_REGISTER, &raw mut reg) } != 0 {
        return Err(last_error());
    }
    Ok(())
}

impl Userfaultfd {
    /// Reserve `len` bytes and register them. Fails (with the step that failed) where the
    /// kernel lacks the features or refuses `userfaultfd(2)` (seccomp, old kernels).
    pub fn new(len: usize) -> Result<Userfaultfd, crate::Error> {
        Self::try_new(len).map_err(|u| crate::Error::Sys {
            op: u.step,
            source: u.source,
        })
    }

    pub fn try_new(len: usize) -> Result<Userfaultfd, Unavailable> {
        let fail = |step| move |source| Unavailable { step, source };
        let open = || {
            // SAFETY: userfaultfd(2) takes only flags and returns a new descriptor or -1.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_userfaultfd,
                    libc::O_CLOEXEC | libc::O_NONBLOCK | UFFD_USER_MODE_ONLY,
                )
            };
            if fd < 0 {
                return Err(fail("userfaultfd(UFFD_USER_MODE_ONLY)")(last_error()));
            }
            let fd =
                i32::try_from(fd).map_err(|_| fail("userfaultfd")(io::Error::other("bad fd")))?;
            // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        };
        // Ask which features the kernel has (a descriptor takes `UFFDIO_API` once), so that
        // spare pages are used only where `UFFDIO_MOVE` exists.
        let probe = open()?;
        let mut api = UffdioApi {
            api: UFFD_API,
            features: 0,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_API reads and writes a `struct uffdio_api`, which `api` is.
        let moves = unsafe { libc::ioctl(probe.as_raw_fd(), UFFDIO_API, &raw mut api) } == 0
            && api.features & UFFD_FEATURE_MOVE != 0
            && SpareMode::from_env() != SpareMode::Never;
        drop(probe);
        Self::set_up(open()?, len, None, moves)
    }

    /// Thread mode (kernel access): reserve `len` bytes and register them with a userfaultfd
    /// that serves faults taken inside the kernel too. Its faults wait for [`Self::serve`].
    pub fn new_thread_mode(len: usize) -> Result<Userfaultfd, crate::Error> {
        let uffd = kernel_uffd().map_err(|r| crate::Error::KernelAccess {
            syscall: r.syscall,
            device: r.device,
        })?;
        // SAFETY: eventfd(2) takes an initial value and flags; returns a descriptor or -1.
        let stop = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if stop < 0 {
            return Err(crate::Error::Sys {
                op: "eventfd",
                source: last_error(),
            });
        }
        // SAFETY: `stop` was just returned by the kernel and is owned by nobody else.
        let stop = unsafe { OwnedFd::from_raw_fd(stop) };
        let spin = std::env::var(SPIN_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map_or(DEFAULT_SPIN, Duration::from_micros);
        Self::set_up(uffd, len, Some(ThreadMode { stop, spin }), false).map_err(|u| {
            crate::Error::Sys {
                op: u.step,
                source: u.source,
            }
        })
    }

    fn set_up(
        uffd: OwnedFd,
        len: usize,
        thread: Option<ThreadMode>,
        moves: bool,
    ) -> Result<Userfaultfd, Unavailable> {
        let fail = |step| move |source| Unavailable { step, source };
        let mut api = UffdioApi {
            api: UFFD_API,
            features: if thread.is_some() {
                UFFD_FEATURE_THREAD_ID
            } else if moves {
                UFFD_FEATURE_SIGBUS | UFFD_FEATURE_MOVE
            } else {
                UFFD_FEATURE_SIGBUS
            },
            ioctls: 0,
        };
        // SAFETY: UFFDIO_API reads and writes a `struct uffdio_api`, which `api` is.
        if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_API, &raw mut api) } != 0 {
            return Err(fail("ioctl(UFFDIO_API: SIGBUS)")(last_error()));
        }
        let arena = Arena::new(len, Backing::Anonymous).map_err(|e| Unavailable {
            step: "creating the arena",
            source: io::Error::other(e.to_string()),
        })?;
        register(
            &uffd,
            &arena,
            UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
        )
        .map_err(fail("ioctl(UFFDIO_REGISTER: missing + write-protect)"))?;
        // Without its spare slots the backend works as on a kernel without moves.
        let spares = moves.then(|| Spares::new(&uffd, len)).and_then(|made| {
            made.map_err(|e| {
                tracing::info!(error = %e, "no spare slots; evicted pages' memory is freed");
            })
            .ok()
        });
        Ok(Userfaultfd {
            arena,
            zeros: vec![0; page_size()].into_boxed_slice(),
            uffd,
            thread,
            spares,
        })
    }

    /// `UFFDIO_MOVE` of `len` bytes from `src` to `dst` (both ours, page-aligned), retried while
    /// the kernel asks to (`EAGAIN`: a page was busy for a moment). On failure, how many bytes
    /// moved first, and the error.
    fn move_pages(&self, dst: usize, src: usize, len: usize) -> Result<(), (usize, Errno)> {
        let mut done = 0;
        let mut tries = 0;
        while done < len {
            let mut mv = UffdioMove {
                dst: (dst + done) as u64,
                src: (src + done) as u64,
                len: (len - done) as u64,
                mode: 0,
                moved: 0,
            };
            // SAFETY: UFFDIO_MOVE reads and writes a `struct uffdio_move`; both ranges lie in
            // mappings of ours registered with this descriptor (checked by the callers), and
            // moving pages between them cannot invalidate Rust references: the arena is reached
            // only through raw pointers, and the pager owns the spare slots it names.
            if unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_MOVE, &raw mut mv) } == 0 {
                return Ok(());
            }
            let e = Errno::from_io_error(&last_error()).unwrap_or(Errno::IO);
            if let Ok(moved) = usize::try_from(mv.moved) {
                done += moved;
            }
            tries += 1;
            if e != Errno::AGAIN || tries > MOVE_TRIES {
                return Err((done, e));
            }
        }
        Ok(())
    }

    /// The spare slots, while the kernel moves pages.
    fn spares(&self) -> Option<&Spares> {
        self.spares.as_ref().filter(|s| !s.refused.load(SeqCst))
    }

    /// The address of spare slot `slot`, checked to hold `count` pages.
    fn slot_addr(&self, slot: u32, count: u32) -> usize {
        let area = &self.spares.as_ref().expect("spare slots exist").area;
        assert!(
            (slot as usize + count as usize) * page_size() <= area.len(),
            "spare slots outside their mapping"
        );
        area.base() + slot as usize * page_size()
    }

    /// Wake the threads waiting on `page` (their fault is resolved).
    fn wake(&self, page: PageId) -> rustix::io::Result<()> {
        let mut range = self.range(PageRun::one(page));
        // SAFETY: UFFDIO_WAKE reads a `struct uffdio_range` over our range.
        if unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_WAKE, &raw mut range) } == 0 {
            return Ok(());
        }
        Err(rustix::io::Errno::from_io_error(&last_error()).unwrap_or(rustix::io::Errno::IO))
    }

    /// Thread mode: read fault messages and resolve each with `fault` until [`Self::stop`].
    /// Runs on the instance's handler thread, every signal blocked. A fault that cannot be
    /// resolved is fatal (its thread could never continue): reported, then abort.
    fn serve(&self, stop: &AtomicBool, fault: &dyn Fn(PageId) -> Outcome) {
        let Some(mode) = &self.thread else {
            return;
        };
        let mut msgs = [UffdMsg::default(); 16];
        let mut idle_since: Option<Instant> = None;
        let mut last_invalid: Option<(u64, u64)> = None;
        while !stop.load(SeqCst) {
            // SAFETY: read(2) into `msgs`, a buffer of that many bytes.
            let n = unsafe {
                libc::read(
                    self.uffd.as_raw_fd(),
                    msgs.as_mut_ptr().cast(),
                    std::mem::size_of_val(&msgs),
                )
            };
            if n > 0 {
                idle_since = None;
                let count = n.unsigned_abs() / std::mem::size_of::<UffdMsg>();
                for msg in &msgs[..count] {
                    if msg.event == UFFD_EVENT_PAGEFAULT {
                        self.resolve(msg, fault, &mut last_invalid);
                    }
                }
                continue;
            }
            let e = last_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => {}
                Some(libc::EINTR) => continue,
                _ => {
                    super::fatal_fault(0, "reading the userfaultfd", e.raw_os_error().unwrap_or(0))
                }
            }
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() < mode.spin {
                std::hint::spin_loop();
                continue;
            }
            let mut fds = [
                libc::pollfd {
                    fd: self.uffd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: mode.stop.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll(2) on two valid descriptors described by `fds`.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if rc < 0 && last_error().raw_os_error() != Some(libc::EINTR) {
                super::fatal_fault(
                    0,
                    "poll on the userfaultfd",
                    last_error().raw_os_error().unwrap_or(0),
                );
            }
            idle_since = None;
        }
    }

    /// Resolve one fault message. A message about a page that is not allocated is usually
    /// stale: several threads touched one page, the first message's fill woke them all (or a
    /// readahead filled the page), and the page was freed before the others' messages were
    /// read. So such a message only wakes its thread; the thread's access is fatal when the
    /// same thread faults on the same page again right after (`last_invalid`: thread and page
    /// of the last such message), which a real access to freed memory does at once.
    fn resolve(
        &self,
        msg: &UffdMsg,
        fault: &dyn Fn(PageId) -> Outcome,
        last_invalid: &mut Option<(u64, u64)>,
    ) {
        let addr = usize::try_from(msg.address).expect("addresses fit in usize");
        let base = self.arena.base();
        let page =
            PageId(u32::try_from((addr - base) / page_size()).expect("arena pages fit in u32"));
        let wake = |what| {
            if let Err(e) = self.wake(page) {
                super::fatal_fault(addr, what, e.raw_os_error());
            }
        };
        match fault(page) {
            Outcome::Handled => {
                *last_invalid = None;
                wake("waking the faulting thread (UFFDIO_WAKE)");
            }
            Outcome::Invalid | Outcome::NotOurs => {
                let this = (msg.ptid & u64::from(u32::MAX), u64::from(page.0));
                if *last_invalid == Some(this) {
                    super::fatal_fault(
                        addr,
                        "serving an access to ghost memory that is not allocated (freed, or never allocated) in kernel-access mode: accessing it",
                        0,
                    );
                }
                *last_invalid = Some(this);
                wake("waking a thread whose fault message was stale (UFFDIO_WAKE)");
            }
            Outcome::Fatal { what, errno } => super::fatal_fault(addr, what, errno),
        }
    }

    /// Thread mode: make [`Self::serve`] return (with its `stop` flag set).
    fn wake_server(&self) {
        if let Some(mode) = &self.thread {
            let one: u64 = 1;
            // SAFETY: write(2) of eight bytes to our eventfd.
            let n = unsafe { libc::write(mode.stop.as_raw_fd(), (&raw const one).cast(), 8) };
            // EAGAIN: the counter is full, so the server is woken anyway.
            if n != 8 && last_error().raw_os_error() != Some(libc::EAGAIN) {
                tracing::error!(error = %last_error(), "waking the fault handler thread failed");
            }
        }
    }

    /// `UFFDIO_COPY` of `bytes` (`run.bytes()` long) into the hole `run`.
    fn copy(&self, run: PageRun, bytes: &[u8]) -> rustix::io::Result<()> {
        self.copy_mode(run, bytes, 0)
    }

    /// [`Self::copy`] with `UFFDIO_COPY_MODE_*` flags `mode`.
    fn copy_mode(&self, run: PageRun, bytes: &[u8], mode: u64) -> rustix::io::Result<()> {
        let range = self.range(run);
        let mut copy = UffdioCopy {
            dst: range.start,
            src: bytes.as_ptr() as u64,
            len: range.len,
            mode,
            copy: 0,
        };
        // SAFETY: UFFDIO_COPY reads `range.len` bytes from `bytes` (a live buffer of that
        // length, checked by the callers) into our registered range, and writes back the
        // `copy` result field.
        if unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_COPY, &raw mut copy) } == 0 {
            return Ok(());
        }
        match rustix::io::Errno::from_io_error(&last_error()).unwrap_or(rustix::io::Errno::IO) {
            // The page is already there: another path filled it first. Only one thread
            // restores a page, so its contents are the ones the pager wrote: success.
            rustix::io::Errno::EXIST => Ok(()),
            e => Err(e),
        }
    }

    fn range(&self, run: PageRun) -> UffdioRange {
        assert!(
            run.first.offset() + run.bytes() <= self.arena.len(),
            "page run outside the arena"
        );
        UffdioRange {
            start: (self.arena.base() + run.first.offset()) as u64,
            len: run.bytes() as u64,
        }
    }

    fn write_protect(&self, run: PageRun, on: bool) -> rustix::io::Result<()> {
        let mut wp = UffdioWriteprotect {
            range: self.range(run),
            mode: if on { UFFDIO_WRITEPROTECT_MODE_WP } else { 0 },
        };
        loop {
            // SAFETY: UFFDIO_WRITEPROTECT reads a `struct uffdio_writeprotect` over our range.
            let rc =
                unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_WRITEPROTECT, &raw mut wp) };
            if rc == 0 {
                return Ok(());
            }
            let e =
                rustix::io::Errno::from_io_error(&last_error()).unwrap_or(rustix::io::Errno::IO);
            // EAGAIN: the mapping changed under us (another thread's fault); try again.
            if e != rustix::io::Errno::AGAIN {
                return Err(e);
            }
        }
    }
}

impl Backend for Userfaultfd {
    fn kind(&self) -> BackendKind {
        if self.thread.is_some() {
            BackendKind::UserfaultfdThread
        } else {
            BackendKind::Userfaultfd
        }
    }

    fn serve_faults(&self, stop: &AtomicBool, fault: &dyn Fn(PageId) -> Outcome) {
        self.serve(stop, fault);
    }

    fn stop_serving(&self) {
        self.wake_server();
    }

    fn arena(&self) -> &Arena {
        &self.arena
    }

    fn revoke(&self, run: PageRun) -> rustix::io::Result<()> {
        self.write_protect(run, true)
    }

    fn unrevoke(&self, run: PageRun) -> rustix::io::Result<()> {
        self.write_protect(run, false)
    }

    fn revoked_pages_are_readable(&self) -> bool {
        true
    }

    fn fill_revoked(&self, run: PageRun, contents: &[u8]) -> rustix::io::Result<()> {
        assert_eq!(
            contents.len(),
            run.bytes(),
            "contents and run differ in size"
        );
        // Installed write-protected in the same call: no second ioctl, no TLB flush.
        self.copy_mode(run, contents, UFFDIO_COPY_MODE_WP)
    }

    fn fill(&self, run: PageRun, contents: Option<&[u8]>) -> rustix::io::Result<()> {
        match contents {
            Some(bytes) => {
                assert_eq!(bytes.len(), run.bytes(), "contents and run differ in size");
                self.copy(run, bytes)
            }
            // A zero page is copied too, rather than mapped with UFFDIO_ZEROPAGE: that maps the
            // shared zero page read-only, and the write that usually follows (a first touch
            // is a store more often than not) takes a second fault to replace it. `bench
            // --workload seq` (256 MiB, 16 MiB budget): 214,000 page faults and 1.73–1.82 s of
            // CPU with UFFDIO_ZEROPAGE; 149,000 and 1.64–1.66 s with a copy of zeros.
            None => run
                .pages()
                .try_for_each(|page| self.copy(PageRun::one(page), &self.zeros)),
        }
    }

    fn discard(&self, run: PageRun) -> rustix::io::Result<()> {
        self.arena.discard(run)
    }

    fn discard_runs(&self, runs: &[PageRun]) -> Result<(), (usize, rustix::io::Errno)> {
        self.arena.discard_runs(runs)
    }

    fn release(&self, run: PageRun) -> rustix::io::Result<()> {
        // A hole with no write-protection left: its next touch is a MISSING fault, which the
        // pager sees is on a free page and passes on.
        self.arena.discard(run)
    }

    fn read(&self, run: PageRun, buf: &mut [u8]) -> rustix::io::Result<()> {
        self.arena.read_run(run, buf)
    }

    fn spare_slots(&self) -> usize {
        self.spares().map_or(0, |s| s.area.pages())
    }

    fn stash(&self, run: PageRun, slot: u32) -> Result<(), (u32, Errno)> {
        let src = usize::try_from(self.range(run).start).expect("addresses fit in usize");
        let dst = self.slot_addr(slot, run.count);
        self.move_pages(dst, src, run.bytes()).map_err(|(done, e)| {
            if matches!(e, Errno::PERM | Errno::NOTTY | Errno::INVAL | Errno::NOSYS)
                && let Some(s) = &self.spares
            {
                s.refused.store(true, SeqCst);
            }
            (pages_in(done), e)
        })
    }

    fn unstash(&self, run: PageRun, slot: u32) -> Result<(), (u32, Errno)> {
        let dst = usize::try_from(self.range(run).start).expect("addresses fit in usize");
        let src = self.slot_addr(slot, run.count);
        self.move_pages(dst, src, run.bytes())
            .map_err(|(done, e)| (pages_in(done), e))
    }

    fn with_spare(&self, slot: u32, f: &mut dyn FnMut(&mut [u8])) {
        let addr = self.slot_addr(slot, 1);
        // SAFETY: the slot lies inside the spare mapping (checked by `slot_addr`); the caller
        // owns it (the pager gives each slot, through its frame, to one fault or background
        // eviction at a time) and it
        // holds a page, so the bytes are initialized, nobody else reads or writes them while
        // `f` runs, and the slice does not outlive this call.
        let page = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, page_size()) };
        f(page);
    }

    fn drop_spares(&self, slot: u32, count: u32) -> rustix::io::Result<()> {
        let Some(spares) = &self.spares else {
            return Ok(());
        };
        let count = count.min(pages_in(spares.area.len()).saturating_sub(slot));
        if count == 0 {
            return Ok(());
        }
        let addr = self.slot_addr(slot, count);
        // SAFETY: the slots lie inside the spare mapping (checked by `slot_addr`), a private
        // anonymous mapping nothing but the pager refers to; dropping their pages leaves holes.
        unsafe {
            rustix::mm::madvise(
                addr as *mut core::ffi::c_void,
                count as usize * page_size(),
                rustix::mm::Advice::LinuxDontNeed,
            )
        }
    }

    fn lend(
        &self,
        page: PageId,
        _buf: &mut [u8],
        f: &mut dyn FnMut(&[u8]),
    ) -> rustix::io::Result<()> {
        // Write-protected, so readable in place: no copy into `_buf`.
        self.arena.lend(page, f);
        Ok(())
    }
}
