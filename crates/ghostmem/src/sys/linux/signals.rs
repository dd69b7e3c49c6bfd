//! The fault handlers (SIGSEGV for the mprotect backend, SIGBUS for the userfaultfd backend),
//! and signal masking for critical sections.
//!
//! The handlers are installed with a decision function ([`Decide`]) and name nothing above
//! this module. Rules they keep (they run at an arbitrary instruction of an arbitrary thread):
//! - never allocate and never take a lock that a thread can hold while it can be interrupted:
//!   ordinary code takes the pager lock only with every signal blocked ([`SignalsBlocked`]),
//!   and the handlers themselves run with every signal blocked (`sa_mask`);
//! - save and restore `errno`;
//! - a fault they do not own goes to the handler that was installed before (chaining), so wild
//!   pointers still kill the process with SIGSEGV, a truncated file mapping elsewhere still
//!   raises SIGBUS, and Rust's stack-overflow report works;
//! - a fatal error is reported with `write(2)` and `abort()`.

use std::cell::UnsafeCell;
use std::ffi::c_void;
use std::io;
use std::mem::MaybeUninit;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

use crate::sys::{Decide, FaultSignal, Outcome};

struct PreviousAction(UnsafeCell<MaybeUninit<libc::sigaction>>);
// SAFETY: written exactly once, inside `INSTALL.call_once`, before our handler is installed;
// only read afterwards (by the handler), so there is no concurrent write.
unsafe impl Sync for PreviousAction {}

/// `si_code` of a fault on a mapped page without the needed permission
/// (`<asm-generic/siginfo.h>`; the `libc` crate does not export it for Linux).
const SEGV_ACCERR: libc::c_int = 2;
/// `si_code` of SIGBUS for a nonexistent physical address, which is what a userfaultfd in
/// SIGBUS mode raises.
const BUS_ADRERR: libc::c_int = 2;

static PREVIOUS_SEGV: PreviousAction = PreviousAction(UnsafeCell::new(MaybeUninit::uninit()));
static PREVIOUS_BUS: PreviousAction = PreviousAction(UnsafeCell::new(MaybeUninit::uninit()));
static INSTALL: Once = Once::new();
static INSTALL_ERROR: AtomicI32 = AtomicI32::new(0);
/// The decision function, stored as an address (a `Decide`), 0 until installed.
static DECIDE: AtomicUsize = AtomicUsize::new(0);

/// Install the process-wide SIGSEGV and SIGBUS handlers (once), which ask `decide` about every
/// fault. Returns the error of the first attempt. Later calls must pass the same function.
pub(crate) fn install_fault_handler(decide: Decide) -> io::Result<()> {
    INSTALL.call_once(|| {
        DECIDE.store(decide as usize, Ordering::SeqCst);
        for (signum, previous) in [
            (libc::SIGSEGV, &PREVIOUS_SEGV),
            (libc::SIGBUS, &PREVIOUS_BUS),
        ] {
            // SAFETY: `sigaction` with a zeroed struct filled field by field is the documented
            // way to install a handler; the previous action is written before the new handler
            // can run (see `PreviousAction`).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_fault_signal as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
                libc::sigfillset(&mut action.sa_mask);
                let previous = (*previous.0.get()).as_mut_ptr();
                if libc::sigaction(signum, &action, previous) != 0 {
                    let errno = io::Error::last_os_error()
                        .raw_os_error()
                        .unwrap_or(libc::EINVAL);
                    INSTALL_ERROR.store(errno, Ordering::Relaxed);
                    return;
                }
            }
        }
    });
    match INSTALL_ERROR.load(Ordering::Relaxed) {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

fn previous_for(signum: libc::c_int) -> &'static PreviousAction {
    if signum == libc::SIGBUS {
        &PREVIOUS_BUS
    } else {
        &PREVIOUS_SEGV
    }
}

extern "C" fn on_fault_signal(
    signum: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut c_void,
) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler, and errno is this
    // thread's own.
    let (saved_errno, addr, code) = unsafe {
        (
            *libc::__errno_location(),
            (*info).si_addr() as usize,
            (*info).si_code,
        )
    };
    // Our faults are protection faults (mprotect backend) or userfaultfd's SIGBUS. Anything
    // else (an unmapped address, a signal sent with kill, a forked child without the arena) is
    // not ours.
    let signal = match (signum, code) {
        (libc::SIGSEGV, SEGV_ACCERR) => Some(FaultSignal::Protection),
        (libc::SIGBUS, BUS_ADRERR) => Some(FaultSignal::Userfault),
        _ => None,
    };
    let decide = DECIDE.load(Ordering::SeqCst);
    let outcome = match signal {
        Some(signal) if decide != 0 => {
            // SAFETY: DECIDE holds a `Decide` stored by `install_fault_handler` (never changed
            // afterwards), and it was stored before the handler was installed.
            let decide: Decide = unsafe { std::mem::transmute::<usize, Decide>(decide) };
            decide(addr, signal)
        }
        _ => Outcome::NotOurs,
    };
    match outcome {
        Outcome::Handled => {}
        Outcome::NotOurs => chain(signum, info, context),
        Outcome::Invalid if signum == libc::SIGSEGV => chain(signum, info, context),
        Outcome::Invalid => segfault(info, context),
        Outcome::Fatal { what, errno } => fatal_fault(addr, what, errno),
    }
    // SAFETY: restoring this thread's errno as the interrupted code left it.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// Report a SIGBUS on dead ghost memory as the segmentation fault it is: to the previous
/// SIGSEGV handler, with a siginfo saying SIGSEGV / `SEGV_ACCERR` at the same address, then
/// raise SIGSEGV (pending until this handler returns), so the program stops with SIGSEGV
/// unless that handler recovers (jumps away) or changed its disposition to something else.
fn segfault(info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: `info` is the kernel's valid siginfo; we copy it and change the signal fields.
    let mut segv = unsafe { info.read() };
    segv.si_signo = libc::SIGSEGV;
    segv.si_code = SEGV_ACCERR;
    // SAFETY: the previous action was initialized before our handler was installed.
    let previous = unsafe { (*PREVIOUS_SEGV.0.get()).assume_init_ref() };
    if previous.sa_sigaction == libc::SIG_DFL || previous.sa_sigaction == libc::SIG_IGN {
        // SAFETY: a zeroed sigaction with SIG_DFL is a valid argument.
        let rc = unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGSEGV, &dfl, std::ptr::null_mut())
        };
        if rc != 0 {
            fatal("ghostmem: cannot restore the default SIGSEGV action\n");
        }
    } else {
        chain(libc::SIGSEGV, &mut segv, context);
    }
    // SAFETY: raise is async-signal-safe; SIGSEGV stays pending until this handler returns.
    if unsafe { libc::raise(libc::SIGSEGV) } != 0 {
        fatal("ghostmem: cannot raise SIGSEGV for a touch of freed ghost memory\n");
    }
}

/// Hand a fault that is not ours to the handler that was installed before ours.
fn chain(signum: libc::c_int, info: *mut libc::siginfo_t, context: *mut c_void) {
    // SAFETY: the previous action was initialized by `sigaction` before this handler was
    // installed.
    let previous = unsafe { (*previous_for(signum).0.get()).assume_init_ref() };
    let handler = previous.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        // Restore the default action. A fault returns and runs the faulting instruction again,
        // and the kernel terminates the process with the signal, exactly as without ghostmem;
        // a signal sent by a process (si_code <= 0) is raised again so it is not lost.
        // SAFETY: a zeroed sigaction with SIG_DFL is a valid argument; `info` is valid.
        let (rc, sent) = unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            (
                libc::sigaction(signum, &dfl, std::ptr::null_mut()),
                (*info).si_code <= 0,
            )
        };
        if rc != 0 {
            fatal("ghostmem: cannot restore the default action for a foreign fault signal\n");
        }
        // SAFETY: raise is async-signal-safe; the signal stays pending until we return.
        if sent && unsafe { libc::raise(signum) } != 0 {
            fatal("ghostmem: cannot raise a foreign fault signal again\n");
        }
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so this is its signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut c_void) =
            unsafe { std::mem::transmute(handler) };
        f(signum, info, context);
    } else {
        // SAFETY: a handler installed without SA_SIGINFO takes only the signal number.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(handler) };
        f(signum);
    }
}

/// Whether SIGSEGV has its default disposition (no handler installed by anyone yet).
pub(crate) fn segv_is_default() -> bool {
    // SAFETY: querying the current action into a zeroed struct; nothing is changed.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGSEGV, std::ptr::null(), &mut current) == 0
            && current.sa_sigaction == libc::SIG_DFL
    }
}

/// Write `msg` to standard error and abort. Async-signal-safe.
pub(crate) fn fatal(msg: &str) -> ! {
    write_stderr(msg.as_bytes());
    // SAFETY: abort is async-signal-safe and never returns.
    unsafe { libc::abort() }
}

fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writing from a valid buffer to fd 2.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return; // nothing more can be done for a diagnostic on the way to abort
        }
        bytes = &bytes[n.unsigned_abs()..];
    }
}

/// Format a number into `buf` without allocating; returns the digits.
fn fmt_num(mut n: u64, radix: u64, buf: &mut [u8; 24]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        let d = u8::try_from(n % radix).expect("radix <= 16");
        buf[i] = if d < 10 { b'0' + d } else { b'a' + d - 10 };
        n /= radix;
        if n == 0 {
            return &buf[i..];
        }
    }
}

pub(crate) fn fatal_fault(addr: usize, what: &'static str, errno: i32) -> ! {
    let mut b = [0u8; 24];
    let page = addr & !(crate::page::page_size() - 1);
    write_stderr(b"ghostmem: fatal: ghost page 0x");
    write_stderr(fmt_num(page as u64, 16, &mut b));
    write_stderr(b" (fault at 0x");
    write_stderr(fmt_num(addr as u64, 16, &mut b));
    write_stderr(b") cannot be restored: ");
    write_stderr(what.as_bytes());
    write_stderr(b" failed");
    if errno != 0 {
        write_stderr(b" with errno ");
        write_stderr(fmt_num(u64::from(errno.unsigned_abs()), 10, &mut b));
    }
    if errno == libc::ENOMEM {
        write_stderr(
            b" (ENOMEM: out of memory, or the process reached vm.max_map_count; \
              lower max_memory_pages, raise the sysctl, or use the userfaultfd backend)",
        );
    }
    fatal(". Stopping the process rather than letting it read wrong data.\n")
}

/// Blocks every signal on this thread while alive; restores the previous mask on drop.
///
/// Ordinary code holds the pager lock only inside one of these, so no signal handler on the
/// same thread (ours, or an application handler that touches ghost memory) can run while the
/// lock is held, and the fault handler can never wait for a lock its own thread holds.
pub(crate) struct SignalsBlocked {
    previous: libc::sigset_t,
}

impl SignalsBlocked {
    pub fn new() -> Self {
        // SAFETY: sigset_t is plain data initialized by sigfillset/pthread_sigmask.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut previous);
            if rc != 0 {
                fatal("ghostmem: pthread_sigmask(SIG_BLOCK) failed\n");
            }
            SignalsBlocked { previous }
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restoring the mask saved by `new` on this same thread.
        let rc = unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut())
        };
        if rc != 0 {
            fatal("ghostmem: pthread_sigmask(SIG_SETMASK) failed\n");
        }
    }
}
