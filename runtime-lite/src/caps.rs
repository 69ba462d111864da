//! Linux capabilities, resolved and applied the way docker does it.
//!
//! * [`resolve`] turns `--cap-add` / `--cap-drop` / `--privileged` into a [`CapSet`], following
//!   moby's `TweakCapabilities`: names are case-insensitive with an optional `CAP_` prefix, `ALL`
//!   is accepted in both lists, drops are applied to the default set before adds.
//! * [`prepare`] (may allocate; run it before forking) masks the set to the capabilities the
//!   running kernel knows (`/proc/sys/kernel/cap_last_cap`).
//! * [`PreparedCaps::apply_bounding`] and [`PreparedCaps::apply_sets`] only issue syscalls and are
//!   meant for the single-threaded helper right before `execve`:
//!
//! ```text
//! prepared.apply_bounding()?;        // needs CAP_SETPCAP, so before dropping privileges
//! setgroups / setgid / setuid        // the user switch
//! prepared.apply_sets()?;            // E/P = set for uid 0, nothing for other users
//! set_no_new_privs()?;               // optional
//! execve
//! ```
//!
//! Like docker (since 20.10.14), the inheritable and ambient sets are left empty, and a non-root
//! user gets empty permitted/effective sets: after `execve` it only gains capabilities from file
//! capabilities, limited by the bounding set.

use std::fmt;
use std::io;
use std::str::FromStr;

/// Errors from parsing capability names and preparing a capability set.
#[derive(Debug, thiserror::Error)]
pub enum CapError {
    /// A name in a capability list is not a known capability.
    #[error("unknown capability: {name:?}")]
    Unknown {
        /// The normalized (upper-case, `CAP_`-prefixed) name.
        name: String,
    },
    /// A name in `--cap-add` / `--cap-drop` is not a known capability.
    #[error("invalid --cap-{option}: unknown capability: {name:?}")]
    UnknownIn {
        /// `add` or `drop`.
        option: &'static str,
        /// The normalized (upper-case, `CAP_`-prefixed) name.
        name: String,
    },
    /// The kernel's last capability could not be determined.
    #[error("cannot determine the kernel's last capability: {0}")]
    LastCap(#[source] io::Error),
}

macro_rules! caps {
    ($($variant:ident = $num:literal => $name:literal, $doc:literal;)*) => {
        /// A Linux capability (`include/uapi/linux/capability.h`), numbered as the kernel does.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Cap {
            $(
                #[doc = $doc]
                $variant = $num,
            )*
        }

        impl Cap {
            /// Every capability this module knows, in kernel order (index == number).
            pub const ALL: [Cap; Cap::COUNT] = [$(Cap::$variant,)*];

            /// The canonical name, e.g. `CAP_NET_ADMIN`.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Cap::$variant => $name,)*
                }
            }
        }
    };
}

caps! {
    Chown = 0 => "CAP_CHOWN", "Make arbitrary changes to file UIDs and GIDs.";
    DacOverride = 1 => "CAP_DAC_OVERRIDE", "Bypass file read, write and execute permission checks.";
    DacReadSearch = 2 => "CAP_DAC_READ_SEARCH", "Bypass file read and directory search checks.";
    Fowner = 3 => "CAP_FOWNER", "Bypass checks that require the file owner's UID.";
    Fsetid = 4 => "CAP_FSETID", "Keep set-user/group-ID bits when a file is modified.";
    Kill = 5 => "CAP_KILL", "Bypass permission checks for sending signals.";
    Setgid = 6 => "CAP_SETGID", "Arbitrary manipulation of process GIDs and supplementary groups.";
    Setuid = 7 => "CAP_SETUID", "Arbitrary manipulation of process UIDs.";
    Setpcap = 8 => "CAP_SETPCAP", "Change the bounding set and inheritable capabilities.";
    LinuxImmutable = 9 => "CAP_LINUX_IMMUTABLE", "Set the immutable and append-only inode flags.";
    NetBindService = 10 => "CAP_NET_BIND_SERVICE", "Bind sockets to privileged ports (< 1024).";
    NetBroadcast = 11 => "CAP_NET_BROADCAST", "Socket broadcasting and multicast listening (unused).";
    NetAdmin = 12 => "CAP_NET_ADMIN", "Network administration.";
    NetRaw = 13 => "CAP_NET_RAW", "Use RAW and PACKET sockets.";
    IpcLock = 14 => "CAP_IPC_LOCK", "Lock memory.";
    IpcOwner = 15 => "CAP_IPC_OWNER", "Bypass permission checks on System V IPC objects.";
    SysModule = 16 => "CAP_SYS_MODULE", "Load and unload kernel modules.";
    SysRawio = 17 => "CAP_SYS_RAWIO", "Raw I/O port access.";
    SysChroot = 18 => "CAP_SYS_CHROOT", "Use chroot(2).";
    SysPtrace = 19 => "CAP_SYS_PTRACE", "Trace arbitrary processes.";
    SysPacct = 20 => "CAP_SYS_PACCT", "Use acct(2).";
    SysAdmin = 21 => "CAP_SYS_ADMIN", "A wide range of system administration operations.";
    SysBoot = 22 => "CAP_SYS_BOOT", "Use reboot(2) and kexec_load(2).";
    SysNice = 23 => "CAP_SYS_NICE", "Raise nice values and change scheduling of any process.";
    SysResource = 24 => "CAP_SYS_RESOURCE", "Override resource limits.";
    SysTime = 25 => "CAP_SYS_TIME", "Set the system clock.";
    SysTtyConfig = 26 => "CAP_SYS_TTY_CONFIG", "Use vhangup(2) and privileged tty ioctls.";
    Mknod = 27 => "CAP_MKNOD", "Create special files with mknod(2).";
    Lease = 28 => "CAP_LEASE", "Establish leases on arbitrary files.";
    AuditWrite = 29 => "CAP_AUDIT_WRITE", "Write records to the kernel audit log.";
    AuditControl = 30 => "CAP_AUDIT_CONTROL", "Configure kernel auditing.";
    Setfcap = 31 => "CAP_SETFCAP", "Set file capabilities.";
    MacOverride = 32 => "CAP_MAC_OVERRIDE", "Override Mandatory Access Control.";
    MacAdmin = 33 => "CAP_MAC_ADMIN", "Configure Mandatory Access Control.";
    Syslog = 34 => "CAP_SYSLOG", "Privileged syslog(2) operations.";
    WakeAlarm = 35 => "CAP_WAKE_ALARM", "Trigger something that will wake up the system.";
    BlockSuspend = 36 => "CAP_BLOCK_SUSPEND", "Block system suspend.";
    AuditRead = 37 => "CAP_AUDIT_READ", "Read the audit log via multicast netlink.";
    Perfmon = 38 => "CAP_PERFMON", "Privileged performance monitoring.";
    Bpf = 39 => "CAP_BPF", "Privileged BPF operations.";
    CheckpointRestore = 40 => "CAP_CHECKPOINT_RESTORE", "Checkpoint/restore related operations.";
}

impl Cap {
    /// Number of capabilities this module knows (`CAP_CHECKPOINT_RESTORE` + 1).
    pub const COUNT: usize = 41;

    /// The kernel's number for this capability.
    pub const fn index(self) -> u8 {
        self as u8
    }

    /// The capability with kernel number `index`, if known.
    pub fn from_index(index: u8) -> Option<Cap> {
        Cap::ALL.get(usize::from(index)).copied()
    }

    /// Parses a single capability name: case-insensitive, `CAP_` prefix optional
    /// (`net_admin`, `CAP_SYS_ADMIN`). `ALL` is not a capability; see [`CapName`].
    pub fn parse(name: &str) -> Result<Cap, CapError> {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        Cap::ALL
            .iter()
            .copied()
            .find(|cap| cap.name() == full)
            .ok_or(CapError::Unknown { name: full })
    }

    const fn bit(self) -> u64 {
        1u64 << (self as u8)
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Cap {
    type Err = CapError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cap::parse(s)
    }
}

/// An entry of a `--cap-add` / `--cap-drop` list: one capability or the magic `ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapName {
    /// `ALL` (case-insensitive; `CAP_ALL` is not accepted, as in docker).
    All,
    /// A single capability.
    One(Cap),
}

impl FromStr for CapName {
    type Err = CapError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("ALL") {
            Ok(CapName::All)
        } else {
            Cap::parse(s).map(CapName::One)
        }
    }
}

/// A set of capabilities (bit `n` = capability number `n`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CapSet(u64);

impl CapSet {
    /// The empty set.
    pub const fn empty() -> CapSet {
        CapSet(0)
    }

    /// Every capability in [`Cap::ALL`].
    pub const fn all() -> CapSet {
        CapSet((1u64 << Cap::COUNT) - 1)
    }

    /// The raw bit mask (bit `n` = capability number `n`).
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Builds a set from a raw mask, ignoring bits of unknown capabilities.
    pub const fn from_bits_truncate(bits: u64) -> CapSet {
        CapSet(bits & CapSet::all().0)
    }

    /// Whether `cap` is in the set.
    pub const fn contains(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    /// Adds `cap`.
    pub fn insert(&mut self, cap: Cap) {
        self.0 |= cap.bit();
    }

    /// Removes `cap`.
    pub fn remove(&mut self, cap: Cap) {
        self.0 &= !cap.bit();
    }

    /// Number of capabilities in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The capabilities in the set, in kernel order.
    pub fn iter(self) -> impl Iterator<Item = Cap> {
        Cap::ALL.into_iter().filter(move |cap| self.contains(*cap))
    }

    /// The canonical names (`CAP_...`) of the capabilities in the set, in kernel order.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Cap::name).collect()
    }
}

impl FromIterator<Cap> for CapSet {
    fn from_iter<I: IntoIterator<Item = Cap>>(iter: I) -> Self {
        let mut set = CapSet::empty();
        for cap in iter {
            set.insert(cap);
        }
        set
    }
}

impl fmt::Debug for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Cap::name)).finish()
    }
}

impl fmt::Display for CapSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, cap) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(cap.name())?;
        }
        Ok(())
    }
}

/// Serialized as a list of canonical names (`["CAP_CHOWN", ...]`).
impl serde::Serialize for CapSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(Cap::name))
    }
}

/// Accepts a list of capability names (any form [`Cap::parse`] accepts; not `ALL`).
impl<'de> serde::Deserialize<'de> for CapSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        names
            .iter()
            .map(|name| Cap::parse(name))
            .collect::<Result<CapSet, CapError>>()
            .map_err(serde::de::Error::custom)
    }
}

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub fn docker_default() -> CapSet {
    [
        Cap::Chown,
        Cap::DacOverride,
        Cap::Fsetid,
        Cap::Fowner,
        Cap::Mknod,
        Cap::NetRaw,
        Cap::Setgid,
        Cap::Setuid,
        Cap::Setfcap,
        Cap::Setpcap,
        Cap::NetBindService,
        Cap::SysChroot,
        Cap::Kill,
        Cap::AuditWrite,
    ]
    .into_iter()
    .collect()
}

/// Parses a `--cap-add` / `--cap-drop` list: returns the named capabilities and whether `ALL`
/// was present.
fn parse_list(names: &[String], option: &'static str) -> Result<(CapSet, bool), CapError> {
    let mut set = CapSet::empty();
    let mut all = false;
    for name in names {
        match name.parse::<CapName>() {
            Ok(CapName::All) => all = true,
            Ok(CapName::One(cap)) => set.insert(cap),
            Err(CapError::Unknown { name }) => return Err(CapError::UnknownIn { option, name }),
            Err(other) => return Err(other),
        }
    }
    Ok((set, all))
}

/// Computes a container's capabilities from `--cap-add`, `--cap-drop` and `--privileged`, as
/// docker does:
///
/// * both lists are validated first (add, then drop); an unknown name is an error naming it,
///   even with `privileged`;
/// * `privileged` gives every capability (the lists are ignored);
/// * `ALL` in `add`: every capability except those in `drop` (even if `drop` has `ALL`);
/// * `ALL` in `drop`: exactly the capabilities in `add`;
/// * otherwise: the default set minus `drop`, then plus `add` (a capability in both is kept).
///
/// "Every capability" means every capability in [`Cap::ALL`]; [`prepare`] and
/// [`PreparedCaps::apply_sets`] reduce that to what the kernel and the process actually have.
pub fn resolve(add: &[String], drop: &[String], privileged: bool) -> Result<CapSet, CapError> {
    let (add, add_all) = parse_list(add, "add")?;
    let (drop, drop_all) = parse_list(drop, "drop")?;
    let set = if privileged {
        CapSet::all()
    } else if add_all {
        CapSet(CapSet::all().0 & !drop.0)
    } else if drop_all {
        add
    } else {
        CapSet((docker_default().0 & !drop.0) | add.0)
    };
    Ok(set)
}

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets as two 32-bit words.
const CAP_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Splits a 64-bit mask into the two words of a v3 `capset` call.
fn cap_data(effective: u64, permitted: u64, inheritable: u64) -> [CapData; 2] {
    let word = |mask: u64, i: u32| (mask >> (32 * i)) as u32;
    [0, 1].map(|i| CapData {
        effective: word(effective, i),
        permitted: word(permitted, i),
        inheritable: word(inheritable, i),
    })
}

/// Reads the calling thread's permitted set with `capget` (no allocation).
fn current_permitted() -> io::Result<u64> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are valid, properly sized v3 structures for capget.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u64::from(data[0].permitted) | (u64::from(data[1].permitted) << 32))
}

/// The capabilities of the calling thread's permitted set (those a root process can keep).
/// Useful to warn about requested capabilities that [`PreparedCaps::apply_sets`] will not be able
/// to grant.
pub fn permitted() -> io::Result<CapSet> {
    current_permitted().map(CapSet::from_bits_truncate)
}

/// The highest capability number the running kernel knows: `/proc/sys/kernel/cap_last_cap`,
/// falling back to probing with `PR_CAPBSET_READ` when that file cannot be read.
pub fn kernel_last_cap() -> Result<u8, CapError> {
    match std::fs::read_to_string("/proc/sys/kernel/cap_last_cap") {
        Ok(text) => text
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|last| *last < 64)
            .ok_or_else(|| {
                CapError::LastCap(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected /proc/sys/kernel/cap_last_cap content {text:?}"),
                ))
            }),
        Err(read_err) => {
            // PR_CAPBSET_READ fails with EINVAL for numbers past the last capability.
            let mut last = None;
            for cap in 0..64u8 {
                // SAFETY: prctl(PR_CAPBSET_READ) only reads process state.
                let rc = unsafe {
                    libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0)
                };
                if rc < 0 {
                    break;
                }
                last = Some(cap);
            }
            last.ok_or(CapError::LastCap(read_err))
        }
    }
}

/// A capability set ready to be applied with syscalls only; see [`prepare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreparedCaps {
    /// The set, without capabilities the kernel does not know.
    set: CapSet,
    /// The kernel's last capability number.
    last_cap: u8,
}

/// Prepares `set` for applying: reads the kernel's last capability (this may allocate, so call
/// it before forking) and drops capabilities the kernel does not know, as docker does.
pub fn prepare(set: &CapSet) -> Result<PreparedCaps, CapError> {
    let last_cap = kernel_last_cap()?;
    Ok(PreparedCaps::with_last_cap(*set, last_cap))
}

impl PreparedCaps {
    /// Prepares `set` for a kernel whose last capability is `last_cap` (no `/proc` access).
    /// `last_cap` is clamped to 63, the largest number a v3 capability set can hold.
    pub fn with_last_cap(set: CapSet, last_cap: u8) -> PreparedCaps {
        let last_cap = last_cap.min(63);
        let kernel_mask = if last_cap == 63 {
            u64::MAX
        } else {
            (1u64 << (last_cap + 1)) - 1
        };
        PreparedCaps {
            set: CapSet(set.0 & kernel_mask),
            last_cap,
        }
    }

    /// The capabilities that will be kept (the requested set limited to the kernel's).
    pub fn set(&self) -> CapSet {
        self.set
    }

    /// The kernel's last capability number, as read by [`prepare`].
    pub fn last_cap(&self) -> u8 {
        self.last_cap
    }

    /// Drops from the bounding set every capability (up to the kernel's last) not in the set.
    ///
    /// Needs `CAP_SETPCAP` in the effective set, so call it before switching to the container
    /// user. Capabilities already missing from the bounding set are skipped. Syscalls only.
    pub fn apply_bounding(&self) -> io::Result<()> {
        for cap in 0..=self.last_cap {
            if self.set.0 & (1u64 << cap) != 0 {
                continue;
            }
            let cap = libc::c_ulong::from(cap);
            // SAFETY: prctl(PR_CAPBSET_READ) only reads process state.
            let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) };
            if present < 0 {
                return Err(io::Error::last_os_error());
            }
            if present == 0 {
                continue;
            }
            // SAFETY: prctl(PR_CAPBSET_DROP) takes a capability number and touches no memory.
            if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Sets the effective, permitted and inheritable sets the way docker's spec does, for the
    /// user the process has already switched to:
    ///
    /// * effective uid 0: effective = permitted = the set (limited to what the process still has
    ///   in its permitted set, since capabilities cannot be regained), inheritable = empty;
    /// * any other user: all three empty (even if `PR_SET_KEEPCAPS` kept some across
    ///   `setuid`); file capabilities of executed programs are then limited by the bounding set.
    ///
    /// The ambient set is cleared as well. Syscalls only.
    pub fn apply_sets(&self) -> io::Result<()> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let keep = if root {
            self.set.0 & current_permitted()?
        } else {
            0
        };
        let mut header = CapHeader {
            version: CAP_VERSION_3,
            pid: 0,
        };
        let data = cap_data(keep, keep, 0);
        // SAFETY: header and data are valid, properly sized v3 structures for capset.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_capset,
                &mut header as *mut CapHeader,
                data.as_ptr(),
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        clear_ambient()
    }
}

/// Clears the ambient set (`PR_CAP_AMBIENT_CLEAR_ALL`); a no-op on kernels without ambient
/// capabilities (before 4.3). Syscalls only.
pub fn clear_ambient() -> io::Result<()> {
    // SAFETY: prctl(PR_CAP_AMBIENT, CLEAR_ALL) touches no memory.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) {
            return Err(err);
        }
    }
    Ok(())
}

/// Sets `PR_SET_NO_NEW_PRIVS` (docker's `--security-opt no-new-privileges`): `execve` will not
/// grant privileges through set-user-ID bits or file capabilities. Syscalls only.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets or clears `PR_SET_KEEPCAPS`: whether the permitted set survives a switch from uid 0 to
/// a non-zero uid (the effective set is cleared regardless; the kernel resets the flag on
/// `execve`). Not needed for docker semantics, where non-root users get no capabilities, but
/// available to callers that must keep e.g. `CAP_SETPCAP` across `setuid`. Syscalls only.
pub fn set_keep_caps(keep: bool) -> io::Result<()> {
    let flag = libc::c_ulong::from(keep);
    // SAFETY: prctl(PR_SET_KEEPCAPS) touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, flag, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn set(caps: &[Cap]) -> CapSet {
        caps.iter().copied().collect()
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(Cap::ALL.len(), Cap::COUNT);
        for (i, cap) in Cap::ALL.iter().enumerate() {
            assert_eq!(usize::from(cap.index()), i, "{cap}");
            assert_eq!(Cap::from_index(cap.index()), Some(*cap));
            assert_eq!(Cap::parse(cap.name()).ok(), Some(*cap));
        }
        assert_eq!(Cap::from_index(41), None);
        assert_eq!(Cap::NetAdmin.index(), 12);
        assert_eq!(Cap::SysAdmin.index(), 21);
        assert_eq!(Cap::AuditRead.index(), 37);
        assert_eq!(Cap::CheckpointRestore.index(), 40);
        assert_eq!(Cap::CheckpointRestore.name(), "CAP_CHECKPOINT_RESTORE");
    }

    #[test]
    fn parse_names() {
        let cases: &[(&str, Option<Cap>)] = &[
            ("net_admin", Some(Cap::NetAdmin)),
            ("NET_ADMIN", Some(Cap::NetAdmin)),
            ("CAP_SYS_ADMIN", Some(Cap::SysAdmin)),
            ("cap_sys_admin", Some(Cap::SysAdmin)),
            ("Cap_Chown", Some(Cap::Chown)),
            ("checkpoint_restore", Some(Cap::CheckpointRestore)),
            ("bpf", Some(Cap::Bpf)),
            ("all", None),
            ("CAP_ALL", None),
            ("", None),
            ("CAP_", None),
            ("net admin", None),
            (" net_admin", None),
            ("CAP_CAP_CHOWN", None),
        ];
        for (input, want) in cases {
            assert_eq!(Cap::parse(input).ok(), *want, "{input:?}");
        }
        let err = Cap::parse("foo").err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("unknown capability: \"CAP_FOO\""));

        assert_eq!("ALL".parse::<CapName>().ok(), Some(CapName::All));
        assert_eq!("all".parse::<CapName>().ok(), Some(CapName::All));
        assert_eq!("aLl".parse::<CapName>().ok(), Some(CapName::All));
        assert!("CAP_ALL".parse::<CapName>().is_err());
        assert_eq!(
            "kill".parse::<CapName>().ok(),
            Some(CapName::One(Cap::Kill))
        );
    }

    #[test]
    fn default_set() {
        let d = docker_default();
        assert_eq!(d.len(), 14);
        assert_eq!(
            d.to_string(),
            "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,CAP_SETGID,CAP_SETUID,\
             CAP_SETPCAP,CAP_NET_BIND_SERVICE,CAP_NET_RAW,CAP_SYS_CHROOT,CAP_MKNOD,\
             CAP_AUDIT_WRITE,CAP_SETFCAP"
        );
        // The mask docker containers show as CapBnd on a kernel with these capabilities.
        assert_eq!(d.bits(), 0xa80425fb);
        assert!(!d.contains(Cap::NetAdmin));
        assert!(!d.contains(Cap::SysAdmin));
    }

    #[test]
    fn set_operations_and_serde() -> Result<(), Box<dyn std::error::Error>> {
        let mut s = CapSet::empty();
        assert!(s.is_empty());
        s.insert(Cap::Kill);
        s.insert(Cap::CheckpointRestore);
        s.insert(Cap::Kill);
        assert_eq!(s.len(), 2);
        assert!(s.contains(Cap::CheckpointRestore));
        s.remove(Cap::Kill);
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![Cap::CheckpointRestore]);
        assert_eq!(CapSet::all().len(), Cap::COUNT);
        assert_eq!(CapSet::from_bits_truncate(u64::MAX), CapSet::all());
        assert_eq!(
            format!("{:?}", set(&[Cap::Chown, Cap::Kill])),
            "{\"CAP_CHOWN\", \"CAP_KILL\"}"
        );

        let json = serde_json::to_string(&set(&[Cap::NetRaw, Cap::Chown]))?;
        assert_eq!(json, r#"["CAP_CHOWN","CAP_NET_RAW"]"#);
        let back: CapSet = serde_json::from_str(r#"["net_raw","CAP_CHOWN"]"#)?;
        assert_eq!(back, set(&[Cap::NetRaw, Cap::Chown]));
        assert!(serde_json::from_str::<CapSet>(r#"["nope"]"#).is_err());
        assert!(serde_json::from_str::<CapSet>(r#"["ALL"]"#).is_err());
        Ok(())
    }

    #[test]
    fn resolve_like_docker() {
        let d = docker_default();
        let all = CapSet::all();
        let with = |extra: &[Cap]| CapSet(d.0 | set(extra).0);
        let without = |gone: &[Cap]| CapSet(d.0 & !set(gone).0);
        // (add, drop, privileged, expected)
        let cases: Vec<(&[&str], &[&str], bool, CapSet)> = vec![
            (&[], &[], false, d),
            (&["NET_ADMIN"], &[], false, with(&[Cap::NetAdmin])),
            (
                &["net_admin", "CAP_SYS_ADMIN"],
                &[],
                false,
                with(&[Cap::NetAdmin, Cap::SysAdmin]),
            ),
            (&["chown"], &[], false, d),
            (&[], &["chown"], false, without(&[Cap::Chown])),
            (
                &[],
                &["CAP_NET_RAW", "mknod"],
                false,
                without(&[Cap::NetRaw, Cap::Mknod]),
            ),
            // dropping something not in the default set is fine
            (&[], &["sys_admin"], false, d),
            // drop happens before add: a capability in both lists is kept
            (&["NET_RAW"], &["NET_RAW"], false, d),
            (
                &["SYS_ADMIN"],
                &["SYS_ADMIN"],
                false,
                with(&[Cap::SysAdmin]),
            ),
            // ALL in add: everything but the drops
            (&["ALL"], &[], false, all),
            (
                &["all"],
                &["NET_ADMIN"],
                false,
                CapSet(all.0 & !Cap::NetAdmin.bit()),
            ),
            (
                &["ALL", "NET_ADMIN"],
                &["net_admin"],
                false,
                CapSet(all.0 & !Cap::NetAdmin.bit()),
            ),
            // ALL in both: add wins
            (&["ALL"], &["ALL"], false, all),
            // ALL in drop: only the adds
            (&[], &["ALL"], false, CapSet::empty()),
            (
                &["chown", "kill"],
                &["ALL"],
                false,
                set(&[Cap::Chown, Cap::Kill]),
            ),
            (&["chown"], &["all", "chown"], false, set(&[Cap::Chown])),
            // privileged: everything, lists ignored
            (&[], &[], true, all),
            (&[], &["ALL"], true, all),
            (&["kill"], &["chown"], true, all),
        ];
        for (add, drop, privileged, want) in cases {
            let got = resolve(&strings(add), &strings(drop), privileged);
            assert_eq!(
                got.ok(),
                Some(want),
                "add={add:?} drop={drop:?} privileged={privileged}"
            );
        }
    }

    #[test]
    fn resolve_errors() {
        let cases: &[(&[&str], &[&str], bool, &str)] = &[
            (
                &["foo"],
                &[],
                false,
                "invalid --cap-add: unknown capability: \"CAP_FOO\"",
            ),
            (
                &[],
                &["bar"],
                false,
                "invalid --cap-drop: unknown capability: \"CAP_BAR\"",
            ),
            (
                &["CAP_ALL"],
                &[],
                false,
                "invalid --cap-add: unknown capability: \"CAP_ALL\"",
            ),
            (
                &["chown", "nope"],
                &["bad"],
                false,
                "invalid --cap-add: unknown capability: \"CAP_NOPE\"",
            ),
            (
                &[""],
                &[],
                false,
                "invalid --cap-add: unknown capability: \"CAP_\"",
            ),
            // validated even when privileged, like docker's host config validation
            (
                &[],
                &["wat"],
                true,
                "invalid --cap-drop: unknown capability: \"CAP_WAT\"",
            ),
        ];
        for (add, drop, privileged, want) in cases {
            let got = resolve(&strings(add), &strings(drop), *privileged)
                .err()
                .map(|e| e.to_string());
            assert_eq!(got.as_deref(), Some(*want), "add={add:?} drop={drop:?}");
        }
    }

    #[test]
    fn prepare_masks_to_kernel() -> Result<(), CapError> {
        let p = PreparedCaps::with_last_cap(CapSet::all(), 37);
        assert_eq!(p.set().len(), 38);
        assert!(!p.set().contains(Cap::Perfmon));
        assert!(p.set().contains(Cap::AuditRead));
        assert_eq!(
            PreparedCaps::with_last_cap(CapSet::all(), 63).set(),
            CapSet::all()
        );

        let p = prepare(&docker_default())?;
        assert!(p.last_cap() >= 36, "kernel last cap {}", p.last_cap());
        assert_eq!(p.set(), docker_default());
        assert_eq!(kernel_last_cap()?, p.last_cap());
        assert_eq!(cap_data(u64::MAX, 1 << 33, 0)[1].permitted, 2);
        Ok(())
    }

    // ---- as-root test: a forked child applies capabilities and inspects itself ----

    /// Reads `/proc/self/status` into `buf` with raw syscalls (safe after fork).
    fn read_status(buf: &mut [u8; 8192]) -> Option<usize> {
        let path = c"/proc/self/status";
        // SAFETY: path is NUL-terminated.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        let mut len = 0;
        while len < buf.len() {
            // SAFETY: the pointer and length stay within buf.
            let n = unsafe { libc::read(fd, buf[len..].as_mut_ptr().cast(), buf.len() - len) };
            if n <= 0 {
                break;
            }
            len += n as usize;
        }
        // SAFETY: fd is ours.
        unsafe { libc::close(fd) };
        Some(len)
    }

    /// Finds `key` (e.g. `b"CapEff:"`) at the start of a line and parses its hex value.
    fn status_hex(status: &[u8], key: &[u8]) -> Option<u64> {
        let mut start = 0;
        while start < status.len() {
            let end = status[start..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(status.len(), |p| start + p);
            let line = &status[start..end];
            if line.starts_with(key) {
                let mut value: u64 = 0;
                let mut digits = 0;
                for b in &line[key.len()..] {
                    let d = match b {
                        b' ' | b'\t' if digits == 0 => continue,
                        b'0'..=b'9' => b - b'0',
                        b'a'..=b'f' => b - b'a' + 10,
                        _ => return None,
                    };
                    value = value.checked_mul(16)?.checked_add(u64::from(d))?;
                    digits += 1;
                }
                return (digits > 0).then_some(value);
            }
            start = end + 1;
        }
        None
    }

    /// The calling process's bounding set, probed with `PR_CAPBSET_READ`.
    fn current_bounding(last_cap: u8) -> u64 {
        (0..=last_cap)
            .filter(|cap| {
                // SAFETY: prctl(PR_CAPBSET_READ) only reads process state.
                unsafe {
                    libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(*cap), 0, 0, 0) == 1
                }
            })
            .fold(0, |mask, cap| mask | (1u64 << cap))
    }

    fn is_root_or_skip(test: &str) -> bool {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            return true;
        }
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test} needs root, and CI=true");
        }
        eprintln!("skipping {test}: needs root");
        false
    }

    /// What the child checks after applying.
    struct Expect {
        eff: u64,
        prm: u64,
        bnd: u64,
        no_new_privs: bool,
    }

    /// Forks; the child runs `setup` (raw syscalls only), compares its status with `expect`
    /// and exits 0 on success or a code naming the first mismatch.
    fn run_in_child(setup: impl Fn() -> Result<(), i32>, expect: &Expect) -> i32 {
        // SAFETY: the child only makes raw syscalls on pre-allocated data and then _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let code = (|| {
                setup()?;
                let mut buf = [0u8; 8192];
                let len = read_status(&mut buf).ok_or(20)?;
                let status = &buf[..len];
                let field = |key: &[u8], code| status_hex(status, key).ok_or(code);
                if field(b"CapEff:", 21)? != expect.eff {
                    return Err(31);
                }
                if field(b"CapPrm:", 22)? != expect.prm {
                    return Err(32);
                }
                if field(b"CapInh:", 23)? != 0 {
                    return Err(33);
                }
                if field(b"CapBnd:", 24)? != expect.bnd {
                    return Err(34);
                }
                if field(b"CapAmb:", 25)? != 0 {
                    return Err(35);
                }
                if field(b"NoNewPrivs:", 26)? != u64::from(expect.no_new_privs) {
                    return Err(36);
                }
                Ok(())
            })()
            .err()
            .unwrap_or(0);
            // SAFETY: terminating the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(rc, pid, "waitpid: {}", io::Error::last_os_error());
        assert!(
            libc::WIFEXITED(status),
            "child did not exit normally: {status:#x}"
        );
        libc::WEXITSTATUS(status)
    }

    #[test]
    fn apply_as_root_keeps_reduced_set() -> Result<(), Box<dyn std::error::Error>> {
        if !is_root_or_skip("apply_as_root_keeps_reduced_set") {
            return Ok(());
        }
        let wanted = set(&[
            Cap::Chown,
            Cap::Kill,
            Cap::NetRaw,
            Cap::Setuid,
            Cap::Setpcap,
        ]);
        let prepared = prepare(&wanted)?;
        let parent_prm = current_permitted()?;
        let expect = Expect {
            eff: wanted.bits() & parent_prm,
            prm: wanted.bits() & parent_prm,
            bnd: wanted.bits() & current_bounding(prepared.last_cap()),
            no_new_privs: false,
        };
        let code = run_in_child(
            || {
                prepared.apply_bounding().map_err(|_| 10)?;
                prepared.apply_sets().map_err(|_| 11)
            },
            &expect,
        );
        assert_eq!(code, 0, "child failed with code {code}");
        Ok(())
    }

    #[test]
    fn apply_as_root_then_non_root_user_drops_everything() -> Result<(), Box<dyn std::error::Error>>
    {
        if !is_root_or_skip("apply_as_root_then_non_root_user_drops_everything") {
            return Ok(());
        }
        let prepared = prepare(&docker_default())?;
        let expect = Expect {
            eff: 0,
            prm: 0,
            bnd: docker_default().bits() & current_bounding(prepared.last_cap()),
            no_new_privs: true,
        };
        let code = run_in_child(
            || {
                prepared.apply_bounding().map_err(|_| 10)?;
                // Keep the permitted set across setuid, to check apply_sets still clears it.
                set_keep_caps(true).map_err(|_| 12)?;
                // SAFETY: plain id-changing syscalls in the forked child.
                unsafe {
                    if libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setgid(65534) != 0
                        || libc::setuid(65534) != 0
                    {
                        return Err(13);
                    }
                }
                prepared.apply_sets().map_err(|_| 11)?;
                set_no_new_privs().map_err(|_| 14)
            },
            &expect,
        );
        assert_eq!(code, 0, "child failed with code {code}");
        Ok(())
    }

    #[test]
    fn status_parser() {
        let status =
            b"Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\nNoNewPrivs:\t1\n";
        assert_eq!(status_hex(status, b"CapEff:"), Some(0x1ff_ffff_ffff));
        assert_eq!(status_hex(status, b"CapInh:"), Some(0));
        assert_eq!(status_hex(status, b"NoNewPrivs:"), Some(1));
        assert_eq!(status_hex(status, b"CapBnd:"), None);
    }
}
