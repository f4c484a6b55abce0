//! The decoder child's own sandbox, applied after it opened its input and before it parses a
//! byte of it (issue 14, item 10). The parent already clears its environment and it already
//! caps its memory, CPU time, file size and open files (`child.rs`); here:
//! - **Landlock** (Linux 5.13+, where the kernel has it): no file can be opened at all, and
//!   (Linux 6.7+) no TCP connection made or port bound. The input is already open.
//! - **seccomp**: `socket`, `socketpair`, `execve` and `execveat` fail with EPERM, so no
//!   network of any kind and no other program, whatever the kernel's Landlock version.
//!
//! Both are best effort on kernels without them: the resource limits and the cleared
//! environment still hold, and the parent still kills the child at its time limit.

use std::collections::BTreeMap;

use landlock::{Access, AccessFs, AccessNet, Ruleset, RulesetAttr, ABI};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, TargetArch};

/// Confines this process; an error means a sandbox could not be installed where the kernel
/// has it (a kernel without Landlock or seccomp is not an error).
pub fn confine() -> Result<(), String> {
    landlock_nothing().map_err(|e| format!("landlock: {e}"))?;
    deny_sockets_and_exec()
}

fn landlock_nothing() -> Result<(), landlock::RulesetError> {
    let abi = ABI::V4;
    // Handling every access right and adding no rule denies them all.
    Ruleset::default()
        .handle_access(AccessFs::from_all(abi))?
        .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)?
        .create()?
        .restrict_self()?;
    Ok(())
}

fn deny_sockets_and_exec() -> Result<(), String> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => TargetArch::x86_64,
        "aarch64" => TargetArch::aarch64,
        "riscv64" => TargetArch::riscv64,
        // No filter for other architectures: the rest of the sandbox still holds.
        _ => return Ok(()),
    };
    let denied = [
        libc_sys::SOCKET,
        libc_sys::SOCKETPAIR,
        libc_sys::EXECVE,
        libc_sys::EXECVEAT,
    ];
    let rules: BTreeMap<i64, Vec<seccompiler::SeccompRule>> =
        denied.iter().map(|&n| (n, vec![])).collect();
    const EPERM: u32 = 1;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(EPERM),
        arch,
    )
    .map_err(|e| format!("seccomp filter: {e}"))?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| format!("seccomp program: {e}"))?;
    seccompiler::apply_filter(&program).map_err(|e| format!("seccomp: {e}"))
}

/// System call numbers of the calls the filter denies, per architecture.
mod libc_sys {
    #[cfg(target_arch = "x86_64")]
    mod nr {
        pub const SOCKET: i64 = 41;
        pub const SOCKETPAIR: i64 = 53;
        pub const EXECVE: i64 = 59;
        pub const EXECVEAT: i64 = 322;
    }
    #[cfg(not(target_arch = "x86_64"))]
    mod nr {
        // aarch64 and riscv64 share the generic table.
        pub const SOCKET: i64 = 198;
        pub const SOCKETPAIR: i64 = 199;
        pub const EXECVE: i64 = 221;
        pub const EXECVEAT: i64 = 281;
    }
    pub use nr::*;
}
