//! The four system calls ns-dmz makes, and its entry point, for x86_64 and aarch64.

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("ns-dmz has system calls for x86_64 and aarch64 only; add this architecture's");

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const WRITE: usize = 1;
    pub const EXECVE: usize = 59;
    pub const FCNTL: usize = 72;
    pub const EXIT_GROUP: usize = 231;
}

#[cfg(target_arch = "aarch64")]
mod nr {
    pub const WRITE: usize = 64;
    pub const EXECVE: usize = 221;
    pub const FCNTL: usize = 25;
    pub const EXIT_GROUP: usize = 94;
}

const F_SETFD: usize = 2;
const FD_CLOEXEC: usize = 1;
const EINTR: isize = 4;

// The entry point: hand the initial stack pointer to `dmz_main`, on a 16-byte aligned stack.
#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,@function",
    "_start:",
    "xor ebp, ebp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {main}",
    "ud2",
    main = sym super::dmz_main,
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".globl _start",
    ".type _start,%function",
    "_start:",
    "mov x29, #0",
    "mov x30, #0",
    "mov x0, sp",
    "bl {main}",
    "udf #0",
    main = sym super::dmz_main,
);

/// A system call with three arguments; returns the kernel's result (negative errno on failure).
///
/// # Safety
/// The arguments must be valid for system call `n`.
#[cfg(target_arch = "x86_64")]
unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 Linux system call convention; rcx and r11 are clobbered by `syscall`.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") n as isize => ret,
            in("rdi") a,
            in("rsi") b,
            in("rdx") c,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// A system call with three arguments; returns the kernel's result (negative errno on failure).
///
/// # Safety
/// The arguments must be valid for system call `n`.
#[cfg(target_arch = "aarch64")]
unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> isize {
    let ret: isize;
    // SAFETY: the aarch64 Linux system call convention.
    unsafe {
        core::arch::asm!(
            "svc #0",
            in("x8") n,
            inlateout("x0") a as isize => ret,
            in("x1") b,
            in("x2") c,
            options(nostack),
        );
    }
    ret
}

/// Writes all of `bytes` to `fd`, best effort (there is nobody to tell of a failure).
pub fn write_all(fd: i32, bytes: &[u8]) {
    let mut done = 0;
    while done < bytes.len() {
        // SAFETY: the pointer and length describe the rest of `bytes`.
        let n = unsafe {
            syscall3(
                nr::WRITE,
                fd as usize,
                bytes.as_ptr() as usize + done,
                bytes.len() - done,
            )
        };
        match n {
            n if n > 0 => done += n as usize,
            n if n == -EINTR => continue,
            _ => return,
        }
    }
}

/// Marks `fd` close-on-exec.
pub fn set_cloexec(fd: i32) {
    // SAFETY: F_SETFD takes an integer; a bad fd only fails.
    unsafe { syscall3(nr::FCNTL, fd as usize, F_SETFD, FD_CLOEXEC) };
}

/// `execve(path, argv, envp)`; returns only on failure, with the negative errno.
///
/// # Safety
/// `path` must be a NUL-terminated string, `argv` and `envp` null-terminated arrays of them.
pub unsafe fn execve(path: *const u8, argv: *const *const u8, envp: *const *const u8) -> isize {
    // SAFETY: as the caller promises.
    unsafe { syscall3(nr::EXECVE, path as usize, argv as usize, envp as usize) }
}

/// Ends the process with `code`.
pub fn exit(code: i32) -> ! {
    loop {
        // SAFETY: exit_group takes an integer and does not return.
        unsafe { syscall3(nr::EXIT_GROUP, code as usize, 0, 0) };
    }
}
