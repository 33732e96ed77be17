//! Ctrl-C and `kill`: SIGINT and SIGTERM, turned into something the loop
//! can wait for like a socket.
//!
//! By default either signal ends the process on the spot, and every client
//! sees its connection vanish (1006 in a browser) as if the server had
//! crashed. We catch them instead, with `sigaction(2)`. But a signal
//! handler runs *between any two instructions* of the program, in the
//! middle of whatever the loop was doing, maybe while it held the memory
//! allocator's lock: it may call only "async-signal-safe" functions (see
//! `signal-safety(7)`), which leaves out allocating, locking, and so
//! `println!` and nearly everything else. What it may do is `write(2)`.
//!
//! So the handler writes one byte into a socket pair (the "self-pipe
//! trick"), and the loop waits on the other end with its clients' sockets:
//! a signal wakes the wait like any readable socket, in the loop's own
//! time, without a race. (Linux's `signalfd(2)` would hand the signal over
//! as a readable descriptor by itself, but it only works if every thread
//! blocks the signal, and it exists only on Linux: the self-pipe works
//! everywhere, with `poll` too.)

use std::io;
use std::os::fd::{IntoRawFd, RawFd};
use std::os::raw::{c_int, c_ulong};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};

// ANCHOR: constants
/// Ctrl-C on the terminal. The same number everywhere.
const SIGINT: c_int = 2;
/// What `kill`, systemd and Docker send to ask a process to stop.
const SIGTERM: c_int = 15;

/// Restart system calls the signal interrupts (a `read` in the log's
/// thread, say), rather than failing them with `EINTR`.
#[cfg(target_os = "linux")]
const SA_RESTART: c_int = 0x1000_0000;
#[cfg(not(target_os = "linux"))]
const SA_RESTART: c_int = 0x0002;
// ANCHOR_END: constants

// ANCHOR: sigaction
/// `struct sigaction`: what to do with a signal. Its layout differs from
/// one system to the next, like `epoll_event`'s (see `epoll.rs`), and a
/// wrong guess here would make the system read the wrong bytes as the
/// handler's address: each layout is written out from the system's
/// headers.
#[cfg(all(
    target_os = "linux",
    not(any(target_arch = "mips", target_arch = "mips64"))
))]
#[repr(C)]
struct SigAction {
    /// The handler's address.
    handler: usize,
    /// Signals blocked while the handler runs: 1024 bits in glibc and musl,
    /// as an array of `unsigned long` (which is what sets its alignment:
    /// `[u64; 16]` would be wrong on 32-bit ARM, where it moves the fields
    /// after it by 4 bytes).
    mask: [c_ulong; 1024 / c_ulong::BITS as usize],
    flags: c_int,
    /// Used by the C library itself.
    restorer: usize,
}

// MIPS puts the flags first: a layout nobody here could test.
#[cfg(all(target_os = "linux", any(target_arch = "mips", target_arch = "mips64")))]
compile_error!("struct sigaction on MIPS Linux is laid out differently: see signal.rs");

#[cfg(any(target_os = "macos", target_os = "ios", target_os = "openbsd"))]
#[repr(C)]
struct SigAction {
    handler: usize,
    mask: u32,
    flags: c_int,
}

#[cfg(any(target_os = "freebsd", target_os = "dragonfly"))]
#[repr(C)]
struct SigAction {
    handler: usize,
    flags: c_int,
    mask: [u32; 4],
}

#[cfg(target_os = "netbsd")]
#[repr(C)]
struct SigAction {
    handler: usize,
    mask: [u32; 4],
    flags: c_int,
}

unsafe extern "C" {
    // NetBSD keeps `sigaction` for programs built against its old, 32-bit
    // signal mask; its C headers rename the call for today's layout.
    #[cfg_attr(target_os = "netbsd", link_name = "__sigaction14")]
    fn sigaction(signal: c_int, action: *const SigAction, old: *mut SigAction) -> c_int;
    fn write(fd: c_int, buffer: *const u8, count: usize) -> isize;
    /// Where this thread's `errno` lives.
    #[cfg_attr(target_os = "linux", link_name = "__errno_location")]
    #[cfg_attr(
        any(
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd",
            target_os = "dragonfly"
        ),
        link_name = "__error"
    )]
    #[cfg_attr(
        any(target_os = "openbsd", target_os = "netbsd"),
        link_name = "__errno"
    )]
    fn errno_location() -> *mut c_int;
}
// ANCHOR_END: sigaction

// ANCHOR: handler
/// The write end of the socket pair, for the handler; -1 until
/// [`stop_signals`] sets it. An atomic, because the handler may run on any
/// thread, at any moment.
static WAKE_UP: AtomicI32 = AtomicI32::new(-1);

/// Runs when SIGINT or SIGTERM arrives: writes one byte, and nothing else.
/// The socket is nonblocking: if a flood of signals filled it, the write
/// fails, which is fine, since the loop has bytes to wake up for already.
/// A failed `write` sets `errno`, and the code the signal interrupted may
/// be between a system call of its own and reading that call's `errno`:
/// the handler puts it back as it found it.
extern "C" fn on_stop_signal(_signal: c_int) {
    let fd = WAKE_UP.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: `write` is async-signal-safe, and reads one byte from a
        // static; `errno_location` returns this thread's `errno`, valid
        // for as long as the thread runs.
        unsafe {
            let errno = errno_location();
            let saved = *errno;
            write(fd, b"!".as_ptr(), 1);
            *errno = saved;
        }
    }
}
// ANCHOR_END: handler

// ANCHOR: stop_signals
/// From now on, SIGINT and SIGTERM no longer end the process: each makes
/// the returned socket readable (with a byte to read), for the loop to
/// wait on. Call it once, early in `main`.
pub fn stop_signals() -> io::Result<UnixStream> {
    let (stop, wake_up) = UnixStream::pair()?;
    stop.set_nonblocking(true)?;
    wake_up.set_nonblocking(true)?;
    // The handler's end stays open for as long as the process runs.
    let fd: RawFd = wake_up.into_raw_fd();
    WAKE_UP.store(fd, Ordering::Relaxed);
    // SAFETY: an all-zero `sigaction` is valid (no flags, an empty mask);
    // then the handler is a function that lives for the whole program.
    let mut action: SigAction = unsafe { std::mem::zeroed() };
    action.handler = on_stop_signal as extern "C" fn(c_int) as usize;
    action.flags = SA_RESTART;
    for signal in [SIGINT, SIGTERM] {
        // SAFETY: `action` is a valid `struct sigaction` for this system
        // (see above), and we do not ask for the old one.
        if unsafe { sigaction(signal, &action, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(stop)
}
// ANCHOR_END: stop_signals

#[cfg(test)]
mod tests {
    use super::*;

    // ANCHOR: layout_test
    #[test]
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    fn sigaction_has_the_layout_of_linux_headers() {
        // glibc's `struct sigaction` on x86-64 and AArch64: 152 bytes, the
        // flags after the 128-byte mask, the restorer after 4 bytes of
        // padding.
        assert_eq!(std::mem::size_of::<SigAction>(), 152);
        assert_eq!(std::mem::offset_of!(SigAction, mask), 8);
        assert_eq!(std::mem::offset_of!(SigAction, flags), 136);
        assert_eq!(std::mem::offset_of!(SigAction, restorer), 144);
    }
    // ANCHOR_END: layout_test

    #[test]
    fn a_signal_becomes_a_byte_to_read() {
        use std::io::Read;
        unsafe extern "C" {
            fn raise(signal: c_int) -> c_int;
        }
        let mut stop = stop_signals().unwrap();
        // SAFETY: SIGTERM now runs our handler instead of ending the test.
        assert_eq!(unsafe { raise(SIGTERM) }, 0);
        stop.set_nonblocking(false).unwrap();
        let mut byte = [0];
        assert_eq!(stop.read(&mut byte).unwrap(), 1);
    }
}
