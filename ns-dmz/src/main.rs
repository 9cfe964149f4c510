//! ns-dmz: `ns-dmz REPORT-FD PATH ARG0 [ARG...]` runs `execve(PATH, [ARG0, ARG...], environ)`.
//!
//! It is the last program the container's first process runs before its command, and the
//! first one `ns-exec enter` runs inside a container. ns-exec executes it from a sealed
//! in-memory copy of its file, so while it runs, and in the `execve` of the command,
//! `/proc/self/exe` names that protected file. A command that re-enters `/proc/self/exe` (a
//! `#!/proc/self/exe` script, an ELF interpreter of that name) therefore reaches ns-dmz, never
//! the host's ns-exec, and a container process that grabs `/proc/PID/exe` cannot reopen it for
//! writing (CVE-2019-5736). runc did the same with its `runc-dmz`.
//!
//! It is as small as a program can be, because it runs once per container start: no C library
//! (whose start-up alone costs more than the rest of ns-dmz: glibc queries the CPU's caches
//! with `cpuid`, a trap to the hypervisor on a virtual machine, over a hundred times), no
//! allocation, four system calls. The caller has already set everything else: identity,
//! capabilities, signals, the working directory, and every fd above 2 close-on-exec.
//!
//! `REPORT-FD` is an fd number, or `-` for none. ns-dmz marks it close-on-exec (the caller
//! leaves it open so that it survives the exec into ns-dmz), so the command never sees it. If
//! the `execve` fails, ns-dmz writes `{"v":1,"type":"exec_failed","errno":N}` to it in one
//! write (a message of the sync protocol, docs/handoff.md) and exits 127 when the errno means
//! "not found" (`ENOENT`, `ENOTDIR`), else 126, as `docker run` does. Without a report fd, or
//! when run with too few arguments, it prints one line on stderr instead.

#![no_std]
#![no_main]

mod sys;

use core::panic::PanicInfo;

/// Exit status when the command was not found.
const NOT_FOUND: i32 = 127;
/// Exit status when the command could not be run, or ns-dmz was misused.
const NOT_EXECUTABLE: i32 = 126;
const ENOENT: isize = 2;
const ENOTDIR: isize = 20;

/// The program proper, called by `_start` with the initial stack pointer: `argc`, then the
/// `argv` pointers and a null, then the `envp` pointers and a null.
///
/// # Safety
/// `sp` must be the stack pointer the kernel started the process with.
#[unsafe(no_mangle)]
unsafe extern "C" fn dmz_main(sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack layout, as described above.
    let (argc, argv, envp) = unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const u8;
        (argc, argv, argv.add(argc + 1))
    };
    if argc < 4 {
        sys::write_all(
            2,
            b"ns-dmz: usage: ns-dmz REPORT-FD PATH ARG0 [ARG...] (ns-exec runs it; \
              a container command that re-enters /proc/self/exe gets this)\n",
        );
        sys::exit(NOT_EXECUTABLE);
    }
    // SAFETY: argc >= 4, so argv[1] and argv[2] are NUL-terminated strings, and argv + 3 is
    // a null-terminated array of them, as envp is.
    let (report, err) = unsafe {
        let report = parse_fd(*argv.add(1));
        if let Some(fd) = report {
            // If this fails the fd is not open, and there is nothing to leak.
            sys::set_cloexec(fd);
        }
        (report, sys::execve(*argv.add(2), argv.add(3), envp))
    };
    let errno = -err;
    let mut buf = [0u8; 64];
    match report {
        Some(fd) => {
            let n = message(
                &mut buf,
                b"{\"v\":1,\"type\":\"exec_failed\",\"errno\":",
                errno,
                b"}",
            );
            sys::write_all(fd, &buf[..n]);
        }
        None => {
            let n = message(&mut buf, b"ns-dmz: exec failed: errno ", errno, b"\n");
            sys::write_all(2, &buf[..n]);
        }
    }
    sys::exit(if errno == ENOENT || errno == ENOTDIR {
        NOT_FOUND
    } else {
        NOT_EXECUTABLE
    })
}

/// `-` is no fd; otherwise a decimal fd number (anything else is no fd).
///
/// # Safety
/// `s` must point to a NUL-terminated string.
unsafe fn parse_fd(s: *const u8) -> Option<i32> {
    let mut fd: i32 = 0;
    let mut i = 0;
    loop {
        // SAFETY: reading up to and including the NUL terminator.
        let c = unsafe { *s.add(i) };
        match c {
            0 if i > 0 => return Some(fd),
            b'0'..=b'9' if i < 9 => fd = fd * 10 + i32::from(c - b'0'),
            _ => return None,
        }
        i += 1;
    }
}

/// Writes `head`, the decimal `n` and `tail` into `buf`; returns the length. Byte by byte, so
/// the compiler has no reason to call a `memcpy` that does not exist here.
fn message(buf: &mut [u8; 64], head: &[u8], n: isize, tail: &[u8]) -> usize {
    let mut len = 0;
    let mut push = |b: u8| {
        if len < buf.len() {
            buf[len] = b;
            len += 1;
        }
    };
    for &b in head {
        push(b);
    }
    let mut digits = [0u8; 20];
    let mut count = 0;
    let mut v = n.unsigned_abs();
    loop {
        digits[count] = b'0' + (v % 10) as u8;
        count += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        push(b'-');
    }
    while count > 0 {
        count -= 1;
        push(digits[count]);
    }
    for &b in tail {
        push(b);
    }
    len
}

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    sys::exit(NOT_EXECUTABLE)
}

/// Referenced by the prebuilt `core` of a debug build, never called: panics abort.
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

/// The compiler zeroes arrays with `memset`, which no C library provides here. Volatile
/// stores, so this loop is never itself turned into a call to `memset`.
///
/// # Safety
/// `dest` must be valid for `n` bytes of writes.
#[unsafe(no_mangle)]
unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: within the `n` bytes the caller promised.
        unsafe { core::ptr::write_volatile(dest.add(i), c as u8) };
    }
    dest
}
