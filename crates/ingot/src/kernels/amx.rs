//! Asking the OS for the AMX tile state.
//!
//! Linux hands a process AMX's 8 KiB of tile registers only after `arch_prctl(ARCH_REQ_XCOMP_PERM,
//! XFEATURE_XTILEDATA)`; until then a tile instruction faults. [`request_tiles`] checks the CPU
//! (CPUID leaf 7: AMX-TILE, AMX-INT8, AMX-BF16) and asks once; a refusal (an older kernel, a
//! sandbox that filters the call) leaves the AMX level unavailable and the kernels on AVX-512.
//! The permission is per process, so asking once covers every thread.

/// Whether this process may run AMX-INT8 and AMX-BF16 tile instructions (asks the OS on the
/// first call that finds them in the CPU).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
pub(crate) fn request_tiles() -> bool {
    use std::arch::x86_64::__cpuid_count;
    // CPUID.(EAX=7, ECX=0):EDX bit 22 AMX-BF16, bit 24 AMX-TILE, bit 25 AMX-INT8.
    let edx = __cpuid_count(7, 0).edx;
    let has = |bit: u32| edx >> bit & 1 == 1;
    if !(has(22) && has(24) && has(25)) {
        return false;
    }
    const SYS_ARCH_PRCTL: i64 = 158;
    const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
    const XFEATURE_XTILEDATA: i64 = 18;
    let ret: i64;
    // SAFETY: the arch_prctl system call with ARCH_REQ_XCOMP_PERM only changes which extended
    // states this process may use; it reads no memory of ours. `syscall` clobbers rcx and r11.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

/// Other systems: AMX is not used.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
pub(crate) fn request_tiles() -> bool {
    false
}
