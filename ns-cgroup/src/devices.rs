//! The cgroup v2 device controller: an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`
//! attached to the container's cgroup, as runc (`libcontainer/cgroups/devices/ebpf`) and crun
//! (`ebpf.c`) do, since v2 has no `devices.allow` file.
//!
//! The program is built here from the allow rules (a pure function, unit-tested), loaded with
//! `bpf(BPF_PROG_LOAD)` and attached with `bpf(BPF_PROG_ATTACH)` without `BPF_F_ALLOW_MULTI` or
//! `BPF_F_ALLOW_OVERRIDE`: a second attach replaces the first (so `set` can change the rules), and
//! nothing below the container's cgroup can attach a program that would widen them. The attached
//! program lives as long as the cgroup, so the fds are closed at once. See
//! [bpf(2)](https://man7.org/linux/man-pages/man2/bpf.2.html) and the kernel's
//! `include/uapi/linux/bpf.h` (`struct bpf_cgroup_dev_ctx`).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::limits::Rule;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;

/// `bpf_cgroup_dev_ctx.access_type` low half: the device type.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
/// `bpf_cgroup_dev_ctx.access_type` high half: the access asked for.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

// Opcodes (include/uapi/linux/bpf.h, bpf_common.h).
const LDX_W_MEM: u8 = 0x61;
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const JMP_JNE_K: u8 = 0x55;
const JMP_JSET_K: u8 = 0x45;
const JMP_EXIT: u8 = 0x95;

/// One eBPF instruction, encoded as the kernel's `struct bpf_insn` (little-endian fields).
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | (u64::from(dst & 0xf | (src & 0xf) << 4) << 8)
        | (u64::from(off as u16) << 16)
        | (u64::from(imm as u32) << 32)
}

/// The program allowing exactly `rules` (everything else is denied): registers r2 = type,
/// r3 = access, r4 = major, r5 = minor, then one block per rule that returns 1 when every
/// condition holds, and a final `return 0`.
pub fn program(rules: &[Rule]) -> Vec<u64> {
    let mut p = vec![
        insn(LDX_W_MEM, 2, 1, 0, 0),
        insn(ALU64_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_W_MEM, 3, 1, 0, 0),
        insn(ALU64_RSH_K, 3, 0, 0, 16),
        insn(LDX_W_MEM, 4, 1, 4, 0),
        insn(LDX_W_MEM, 5, 1, 8, 0),
    ];
    for r in rules {
        // Each condition is (opcode, register, immediate); a failing one jumps past the block.
        let mut conds: Vec<(u8, u8, i32)> = Vec::new();
        match r.kind {
            Some('b') => conds.push((JMP_JNE_K, 2, DEV_BLOCK)),
            Some(_) => conds.push((JMP_JNE_K, 2, DEV_CHAR)),
            None => {}
        }
        let allowed = r.access.chars().fold(0, |m, c| {
            m | match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                _ => 0,
            }
        });
        let denied = !allowed & (ACC_READ | ACC_WRITE | ACC_MKNOD);
        if denied != 0 {
            // Any asked-for bit outside the rule's access fails this rule.
            conds.push((JMP_JSET_K, 3, denied));
        }
        if let Some(major) = r.major {
            conds.push((JMP_JNE_K, 4, major as i32));
        }
        if let Some(minor) = r.minor {
            conds.push((JMP_JNE_K, 5, minor as i32));
        }
        let len = conds.len() + 2;
        for (i, (code, reg, imm)) in conds.into_iter().enumerate() {
            p.push(insn(code, reg, 0, (len - i - 1) as i16, imm));
        }
        p.push(insn(ALU64_MOV_K, 0, 0, 0, 1));
        p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// `union bpf_attr` as `BPF_PROG_LOAD` reads it (the fields we set; the rest zero).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

/// `union bpf_attr` as `BPF_PROG_ATTACH` reads it.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// Loads the program for `rules` and attaches it to the cgroup directory `cgroup`.
pub fn attach(cgroup: &impl AsFd, rules: &[Rule]) -> Result<(), (&'static str, Errno)> {
    let insns = program(rules);
    let license = c"Apache-2.0";
    let load = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    // SAFETY: bpf(2) reads `size_of::<ProgLoadAttr>()` bytes of `load`, whose pointers refer to
    // `insns` and `license`, both alive until the call returns; the kernel copies them.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &load as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if fd < 0 {
        return Err(("load the device eBPF program", Errno::last()));
    }
    // SAFETY: a successful BPF_PROG_LOAD returns a new fd that this process owns alone (the
    // kernel sets O_CLOEXEC on bpf fds).
    let prog = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let att = AttachAttr {
        target_fd: cgroup.as_fd().as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: bpf(2) reads `att`, which holds only fd numbers of fds alive across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &att as *const AttachAttr,
            std::mem::size_of::<AttachAttr>(),
        )
    };
    if rc < 0 {
        return Err(("attach the device eBPF program", Errno::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        Rule::parse(text).unwrap()
    }

    #[test]
    fn empty_rules_deny_everything() {
        let p = program(&[]);
        assert_eq!(p.len(), 8);
        assert_eq!(p[6], insn(ALU64_MOV_K, 0, 0, 0, 0));
    }

    #[test]
    fn a_block_jumps_past_itself_when_a_condition_fails() {
        // c 1:3 rw: type, access, major, minor, mov, exit = 6 instructions.
        let p = program(&[rule("c 1:3 rw")]);
        assert_eq!(p.len(), 6 + 6 + 2);
        assert_eq!(p[6], insn(JMP_JNE_K, 2, 0, 5, DEV_CHAR));
        assert_eq!(p[7], insn(JMP_JSET_K, 3, 0, 4, ACC_MKNOD));
        assert_eq!(p[8], insn(JMP_JNE_K, 4, 0, 3, 1));
        assert_eq!(p[9], insn(JMP_JNE_K, 5, 0, 2, 3));
        assert_eq!(p[10], insn(ALU64_MOV_K, 0, 0, 0, 1));
        // A wildcard rule with full access has no conditions at all.
        assert_eq!(program(&[rule("a *:* rwm")]).len(), 6 + 2 + 2);
    }

    #[test]
    fn instructions_encode_like_struct_bpf_insn() {
        // r2 = *(u32 *)(r1 + 4): code 0x61, dst 2, src 1, off 4.
        assert_eq!(insn(LDX_W_MEM, 2, 1, 4, 0), 0x0004_1261);
        assert_eq!(insn(JMP_JNE_K, 4, 0, -1, -1) >> 16, 0xffff_ffff_ffff);
    }
}
