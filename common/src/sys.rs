//! The raw system calls `nix` does not wrap, each behind a small safe function.
//!
//! Every `unsafe` block of the workspace that is not a one-line fd adoption lives here, with
//! the reason it is sound. Errors come back as `Errno`; callers add what they were doing.

use nix::errno::Errno;
use nix::libc;
use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Marks every fd from `first` up close-on-exec (`cloexec`), or closes them.
pub fn close_range_from(first: u32, cloexec: bool) -> Result<(), Errno> {
    let flags = if cloexec {
        libc::CLOSE_RANGE_CLOEXEC
    } else {
        0
    };
    // SAFETY: close_range only affects this process's fd table; callers own every fd in the
    // range by the protocol (nothing in the range is borrowed elsewhere while it runs).
    Errno::result(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, flags) }).map(drop)
}

/// The kernel's `struct clone_args` (clone3(2)), version 2 layout.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `CLONE_INTO_CGROUP` (Linux 5.7), a clone3-only flag above 32 bits, which libc declares
/// with a type that differs between its targets.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What [`fork_into`] returned in this process.
pub enum Forked {
    /// We are the parent; the child's pid and a pidfd for it.
    Parent(nix::unistd::Pid, OwnedFd),
    /// We are the child.
    Child,
}

/// `clone3` with fork semantics (no new stack): the child runs on from here, in the new
/// namespaces `flags` asks for, with `SIGCHLD` as its exit signal and a pidfd for the parent.
/// With `cgroup` (a cgroup2 directory), the child starts in that cgroup (`CLONE_INTO_CGROUP`):
/// it never runs anywhere else, and no migration (which takes the kernel's global cgroup
/// lock and waits for an RCU grace period) is needed.
///
/// # Safety
/// Like `fork`: the caller must be single-threaded, and the child must only do async-signal-safe
/// work until it execs or `_exit`s.
pub unsafe fn fork_into(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> Result<Forked, Errno> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: `args` is a valid clone_args of the size passed; stack 0 gives fork semantics
    // (the child continues on a copy of this stack), and the caller upholds fork's rules.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match Errno::result(ret)? {
        0 => Ok(Forked::Child),
        pid => {
            // SAFETY: with CLONE_PIDFD the kernel stored a new fd, owned by nobody else yet.
            let fd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            Ok(Forked::Parent(nix::unistd::Pid::from_raw(pid as i32), fd))
        }
    }
}

/// A stack for a [`vfork_into`] child: anonymous memory with an inaccessible page below it,
/// so running off its end faults instead of writing over whatever is mapped there.
pub struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

/// The guard page below a [`ChildStack`].
const GUARD: usize = 4096;

impl ChildStack {
    /// Reserves `size` bytes (plus the guard); pages cost memory only once the child uses them.
    pub fn new(size: usize) -> Result<ChildStack, Errno> {
        let len = size + GUARD;
        // SAFETY: a new private anonymous mapping, placed by the kernel; nothing else uses it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let stack = ChildStack { base, len };
        // SAFETY: the part above the guard page lies inside the mapping made above.
        Errno::result(unsafe {
            libc::mprotect(
                base.cast::<u8>().add(GUARD).cast(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        })?;
        Ok(stack)
    }

    /// The lowest usable address and the size above it.
    fn span(&self) -> (u64, u64) {
        (
            (self.base as usize + GUARD) as u64,
            (self.len - GUARD) as u64,
        )
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, which no child runs on any more (a vfork child is done
        // with it once vfork_into returns).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

// SAFETY: the stack is plain memory that only the child of the thread holding it uses.
unsafe impl Send for ChildStack {}

/// Starts a child that shares this process's memory (`CLONE_VM | CLONE_VFORK`), in the new
/// namespaces `flags` asks for (and in `cgroup`, a cgroup2 directory, as [`fork_into`] does),
/// running `child(arg)` on `stack`. The calling thread sleeps until the child execs or exits,
/// as with vfork(2); other threads run on. Before the child runs, the kernel stores its pid in
/// `tid` and a pidfd for it (installed in this process's fd table) in `pidfd`, where another
/// thread can read them once `tid` is non-zero. Returns the child's pid once the caller wakes.
///
/// No page table is copied, no page is copied on write and nothing is torn down at the child's
/// exec, which is what a fork costs; the child does not get this process's later fds (its fd
/// table is a copy, as with fork), nor its signal handlers.
///
/// # Safety
/// `child` runs in this process's memory, with the calling thread's thread-local storage: it
/// must not return, must end in an exec or `_exit` (never `exit`, which would run this
/// process's atexit handlers), and may use only data that no other thread changes or frees
/// before this function returns. `stack` must stay mapped until then.
#[cfg(target_arch = "x86_64")]
pub unsafe fn vfork_into(
    flags: u64,
    cgroup: Option<BorrowedFd<'_>>,
    stack: &ChildStack,
    tid: &std::sync::atomic::AtomicI32,
    pidfd: &std::sync::atomic::AtomicI32,
    child: extern "C" fn(*mut libc::c_void) -> !,
    arg: *mut libc::c_void,
) -> Result<i32, Errno> {
    let (low, size) = stack.span();
    let mut args = CloneArgs {
        flags: flags
            | (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::CLONE_PARENT_SETTID)
                as u64,
        pidfd: pidfd.as_ptr() as u64,
        parent_tid: tid.as_ptr() as u64,
        exit_signal: libc::SIGCHLD as u64,
        // The child starts with its stack pointer at low + size (16-byte aligned: both are
        // page multiples), so its first call sees the ABI's alignment.
        stack: low,
        stack_size: size,
        ..Default::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    let ret: i64;
    // SAFETY: `args` is a valid clone_args of the size passed, with a stack that stays mapped
    // while the child can run (this thread sleeps until it execs or exits). The parent only
    // gets rax back. The child returns from the syscall on the new stack with rax 0 and every
    // other register as here: r12 and r13 (which the syscall preserves) carry `arg` and
    // `child`, called with the C calling convention and no frame above it; it never returns
    // (`ud2` would trap), per the caller's contract.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &mut args as *mut CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") child as usize,
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    // The kernel's own convention (no libc wrapper here): -errno on failure.
    if ret < 0 {
        return Err(Errno::from_raw(-ret as i32));
    }
    Ok(ret as i32)
}

/// Sleeps while `word` holds `expected` (`FUTEX_WAIT`); returns on a wake, on a change, or on
/// a signal. Callers loop on their condition.
pub fn futex_wait(word: &std::sync::atomic::AtomicI32, expected: i32) {
    // SAFETY: a futex wait on a live, aligned i32 of this process, with no timeout.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            std::ptr::null::<libc::timespec>(),
        )
    };
}

/// Wakes every thread (or vfork child) sleeping in [`futex_wait`] on `word`.
pub fn futex_wake(word: &std::sync::atomic::AtomicI32) {
    // SAFETY: a futex wake on a live, aligned i32 of this process.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        )
    };
}

/// `setgroups(2)` for this task alone. glibc's wrappers of the credential calls change every
/// thread of a multi-threaded process (taking a lock of its thread list and signalling each
/// thread): what a thread of a program wants, never what ns-exec's vfork-style child wants,
/// which runs in the memory of a multi-threaded ns-exec (spawn.rs) and must take no lock of it.
pub fn set_groups(groups: &[u32]) -> Result<(), Errno> {
    // SAFETY: a pointer to `groups.len()` gids, read by the kernel during the call.
    Errno::result(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) })
        .map(drop)
}

/// `setresgid(gid, gid, gid)` for this task alone (see [`set_groups`]).
pub fn set_all_gids(gid: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    Errno::result(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) }).map(drop)
}

/// `setresuid(uid, uid, uid)` for this task alone (see [`set_groups`]).
pub fn set_all_uids(uid: u32) -> Result<(), Errno> {
    // SAFETY: plain syscall with integer arguments.
    Errno::result(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

/// Sends `sig` to the process behind `pidfd` (no pid-reuse race).
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> Result<(), Errno> {
    // SAFETY: plain syscall on a borrowed, open fd; no pointers passed.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
    .map(drop)
}

/// A pidfd for `pid`, close-on-exec.
pub fn pidfd_open(pid: i32) -> Result<OwnedFd, Errno> {
    // SAFETY: plain syscall, no pointers; a success returns a new fd we own.
    let fd = Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: pidfd_open returned a fresh fd owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// What [`sealed_memfd`] fills its memfd with.
#[derive(Clone, Copy)]
pub enum Contents<'a> {
    /// These bytes.
    Bytes(&'a [u8]),
    /// All that this regular file holds, from its start, whatever its fd's offset. The kernel
    /// copies it (`sendfile`): no buffer of ours, whose pages would each be a fault to fill
    /// in on ns-exec's way to the clone, and no read-write loop.
    File(BorrowedFd<'a>),
}

/// A sealed, close-on-exec memfd named `name` holding `contents`: it cannot be
/// written, grown or shrunk, so whoever receives it reads exactly what we wrote. With
/// `executable`, the memfd is made executable (`MFD_EXEC`, where the kernel has it) and its
/// mode is sealed too, for running a program from a copy nobody can change.
pub fn sealed_memfd(
    name: &CStr,
    contents: Contents<'_>,
    executable: bool,
) -> Result<OwnedFd, Errno> {
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // MFD_EXEC (Linux 6.3) keeps the copy executable when vm.memfd_noexec asks for
    // non-executable memfds by default; older kernels refuse the flag, and there every memfd
    // is executable anyway.
    let attempts: &[u32] = if executable {
        &[base | libc::MFD_EXEC, base]
    } else {
        &[base]
    };
    let mut created = Err(Errno::EINVAL);
    for flags in attempts {
        // SAFETY: `name` is a valid C string; memfd_create returns a new fd we own.
        created = Errno::result(unsafe { libc::memfd_create(name.as_ptr(), *flags) });
        if created != Err(Errno::EINVAL) {
            break;
        }
    }
    // SAFETY: fresh fd from memfd_create.
    let fd = unsafe { OwnedFd::from_raw_fd(created?) };
    let fd = match contents {
        Contents::Bytes(bytes) => {
            let mut file = std::fs::File::from(fd);
            std::io::Write::write_all(&mut file, bytes).map_err(io_errno)?;
            OwnedFd::from(file)
        }
        Contents::File(source) => {
            let mut offset: libc::off_t = 0;
            loop {
                // SAFETY: two open fds and a valid offset pointer; the offset is ours, so the
                // source's own file position is neither used nor moved.
                let n = unsafe {
                    libc::sendfile(fd.as_raw_fd(), source.as_raw_fd(), &mut offset, 1 << 20)
                };
                match Errno::result(n) {
                    Ok(0) => break,
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(e) => return Err(e),
                }
            }
            fd
        }
    };
    // The readers share this file offset: start them at the beginning.
    nix::unistd::lseek(&fd, 0, nix::unistd::Whence::SeekSet)?;
    let mut seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    if executable {
        // F_SEAL_EXEC (6.3) stops a chmod of the copy; older kernels refuse it.
        // SAFETY: fcntl on our own open fd with an integer argument.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_EXEC) };
    }
    seals |= libc::F_SEAL_SEAL;
    // SAFETY: fcntl on our own open fd with an integer argument.
    Errno::result(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) })?;
    Ok(fd)
}

/// The errno of an I/O error (`EIO` when it carries none).
fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// The kernel's `struct open_how` (libc's is non-exhaustive).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(2)`: opens `path` below `dir` with `flags` (O_CLOEXEC is always added) and the
/// `RESOLVE_*` bits in `resolve`.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> Result<OwnedFd, Errno> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
            mode as u64
        } else {
            0
        },
        resolve,
    };
    loop {
        // SAFETY: `path` is a valid C string and `how` a valid open_how of the size passed.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match Errno::result(ret) {
            // SAFETY: a successful openat2 returns a fresh fd we own.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: runs the program `fd` refers to. Returns
/// only on failure.
pub fn execveat_fd(fd: BorrowedFd<'_>, argv: &[CString], envp: &[CString]) -> Errno {
    let argv_ptrs: Vec<*const libc::c_char> = argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp_ptrs: Vec<*const libc::c_char> = envp
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: both pointer arrays are NULL-terminated and point into CStrings that outlive
    // the call; an empty path with AT_EMPTY_PATH means "the file fd refers to".
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv_ptrs.as_ptr(),
            envp_ptrs.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Errno::last()
}

/// `setns(2)` into the namespace `fd` refers to.
pub fn setns(fd: impl AsFd, nstype: i32) -> Result<(), Errno> {
    // SAFETY: plain syscall on a borrowed, open fd.
    Errno::result(unsafe { libc::setns(fd.as_fd().as_raw_fd(), nstype) }).map(drop)
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets in two 32-bit halves.
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The three capability sets of a thread, as bit masks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CapSets {
    /// Effective set.
    pub effective: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Inheritable set.
    pub inheritable: u64,
}

/// `capget(2)` for this thread.
pub fn capget() -> Result<CapSets, Errno> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and a two-element data array, as version 3 requires.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    })?;
    let join = |lo: u32, hi: u32| (lo as u64) | ((hi as u64) << 32);
    Ok(CapSets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// `capset(2)` for this thread.
pub fn capset(sets: CapSets) -> Result<(), Errno> {
    let mut header = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(sets.effective);
    let (p0, p1) = split(sets.permitted);
    let (i0, i1) = split(sets.inheritable);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and a two-element data array, as version 3 requires.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    })
    .map(drop)
}

/// The highest capability number the running kernel knows (what
/// `/proc/sys/kernel/cap_last_cap` says), found as libcap does without a procfs: the kernel
/// answers `PR_CAPBSET_READ` for every number up to it and `EINVAL` above, so a binary search
/// over 0..=255 takes eight calls, where opening the sysctl in a container's fresh procfs costs
/// more than all of them. `EINVAL` when even capability 0 is refused (no such kernel).
pub fn cap_last_cap() -> Result<u8, Errno> {
    let known = |cap: u8| match prctl(libc::PR_CAPBSET_READ, cap.into(), 0) {
        Ok(_) => Ok(true),
        Err(Errno::EINVAL) => Ok(false),
        Err(e) => Err(e),
    };
    if !known(0)? {
        return Err(Errno::EINVAL);
    }
    // Invariant: `low` is known, everything above `high` is not.
    let (mut low, mut high) = (0u8, u8::MAX);
    while low < high {
        let mid = low + (high - low).div_ceil(2);
        if known(mid)? {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    Ok(low)
}

/// The supplementary groups (`getgroups(2)`), asked for their number first: nix's version
/// sizes its buffer from `sysconf(_SC_NGROUPS_MAX)`, which glibc reads from procfs.
pub fn getgroups() -> Result<Vec<u32>, Errno> {
    loop {
        // SAFETY: size 0 with a null list only returns the count.
        let n = Errno::result(unsafe { libc::getgroups(0, std::ptr::null_mut()) })?;
        let mut groups = vec![0 as libc::gid_t; n as usize];
        // SAFETY: the list has room for `n` entries, the size we pass.
        match Errno::result(unsafe { libc::getgroups(n, groups.as_mut_ptr()) }) {
            Ok(got) => {
                groups.truncate(got as usize);
                return Ok(groups);
            }
            // The list grew between the two calls (another thread): ask again.
            Err(Errno::EINVAL) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `prctl(2)` with integer arguments.
pub fn prctl(option: i32, arg2: libc::c_ulong, arg3: libc::c_ulong) -> Result<i32, Errno> {
    // SAFETY: every prctl option we use takes integer arguments only.
    Errno::result(unsafe {
        libc::prctl(option, arg2, arg3, 0 as libc::c_ulong, 0 as libc::c_ulong)
    })
}

/// The kernel's `struct sigaction` for `rt_sigaction(2)` on x86-64 and most 64-bit
/// architectures: handler, flags, restorer, then a 64-bit mask.
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// The highest signal number of the kernel (`_NSIG`).
const KERNEL_NSIG: i32 = 64;

/// Sets every catchable signal's disposition to the default and empties the signal mask, so
/// the next program starts with a clean signal state (Rust ignores SIGPIPE before `main`; a
/// signalfd user blocks signals; a caller may leave any signal ignored, and ignored
/// dispositions survive `execve`). Uses the raw system call: glibc refuses signals 32 and 33,
/// which it keeps for itself, but a caller can still have left them ignored.
pub fn reset_signals() {
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=KERNEL_NSIG {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a valid kernel sigaction with SIG_DFL and the kernel's sigset size; no old
        // action is read back; async-signal-safe. Errors (none expected) are ignored.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                std::mem::size_of::<u64>(),
            );
        }
    }
    unblock_signals();
}

/// Opens `/dev/null` on any of fds 0, 1 and 2 that is closed, as Rust's runtime start-up would
/// have (a `#![no_main]` program skips it): otherwise the sync socket, a state file or the
/// trace file could be given one of those numbers, an error line would be written into it, and
/// the container's command would start with that standard fd missing. For `main`, before
/// anything opens a file.
pub fn standard_fds_open() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only asks whether the fd is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: open returns the lowest free number, which is this one; failing, there
            // is nothing better to do than to go on.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

/// Unblocks every signal (`sigprocmask(SIG_SETMASK, {})`); async-signal-safe.
pub fn unblock_signals() {
    let empty: u64 = 0;
    // SAFETY: an empty 64-bit kernel sigset; async-signal-safe.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            std::mem::size_of::<u64>(),
        );
    }
}

/// `_exit(2)`: ends the process at once, without running destructors or atexit handlers
/// (for a forked child that must not touch the parent's state).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call.
    unsafe { libc::_exit(code) }
}

/// Unmaps this program's code pages from the process before a long wait: `MADV_DONTNEED` on
/// the read-only start of the executable, from its ELF headers to the end of its text
/// (`__executable_start` to `etext`, which every GNU-compatible linker defines).
///
/// A waiting ns-exec runs a few functions in a loop, yet the start-up touched most of its code,
/// and the kernel maps clean file pages around every fault (fault-around): 2 MiB of resident
/// code that the wait never uses. Those pages are never written (the linker puts nothing
/// writable below `etext`, and RELRO data lies above it), so dropping them loses nothing: they
/// stay in the page cache, shared with every other ns-exec, and the wait loop's few pages fault
/// back in from there. Best effort; a failure changes nothing.
pub fn release_code_pages() {
    unsafe extern "C" {
        static __executable_start: u8;
        static etext: u8;
    }
    // Only the addresses of the two linker symbols are taken, never their contents.
    let (start, end) = (
        &raw const __executable_start as usize,
        &raw const etext as usize,
    );
    let page = 4096;
    let start = start & !(page - 1);
    if end <= start {
        return;
    }
    // SAFETY: the range lies within this executable's read-only, never-written mappings (see
    // above); MADV_DONTNEED on clean private file pages only drops their page table entries,
    // and the next access refaults the same bytes from the page cache.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both kinds of contents arrive whole, read from the memfd's start: a file's from its own
    /// start whatever its fd's offset (a copy of the checked file, not of what is left of it).
    #[test]
    fn sealed_memfds_hold_their_contents_from_the_start() {
        use std::io::{Read, Seek, SeekFrom, Write};
        let bytes: Vec<u8> = (0..70_000u32).map(|i| (i % 253) as u8).collect();
        let mut source = tempfile_in_tmp("sealed-memfd");
        source.write_all(&bytes).unwrap();
        source.seek(SeekFrom::Start(123)).unwrap();
        for contents in [Contents::Bytes(&bytes), Contents::File(source.as_fd())] {
            let fd = sealed_memfd(c"test", contents, false).unwrap();
            let mut read = Vec::new();
            std::fs::File::from(fd).read_to_end(&mut read).unwrap();
            assert!(read == bytes, "{} bytes read", read.len());
        }
    }

    /// An unlinked scratch file in the temporary directory.
    fn tempfile_in_tmp(name: &str) -> std::fs::File {
        let path = std::env::temp_dir().join(format!("ns-{name}-{}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }

    /// The search finds what the sysctl says.
    #[test]
    fn the_last_capability_is_the_sysctls() {
        let sysctl = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").unwrap();
        assert_eq!(cap_last_cap().unwrap().to_string(), sysctl.trim());
    }

    /// The same groups as nix's `getgroups`, in the same order.
    #[test]
    fn getgroups_lists_the_processs_groups() {
        let nix: Vec<u32> = nix::unistd::getgroups()
            .unwrap()
            .into_iter()
            .map(|g| g.as_raw())
            .collect();
        assert_eq!(getgroups().unwrap(), nix);
    }

    /// The code pages leave the resident set (and everything still runs after, refaulting them).
    #[test]
    fn released_code_pages_leave_the_resident_set() {
        let file_rss = || -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("RssFile:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        let before = file_rss();
        release_code_pages();
        let after = file_rss();
        assert!(
            after < before,
            "RssFile {before} kB before, {after} kB after"
        );
    }
}
