//! User namespaces for rootless use: the caller's uid and gid become root inside, and the
//! subordinate ranges of `/etc/subuid` and `/etc/subgid` (through the setuid helpers
//! `newuidmap`/`newgidmap`, as podman does) give the other ids 1..N. Without those, only root
//! exists inside, and the files of a rootless store (owned by the caller) all appear as root's.

use std::io::{self, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One line of `/proc/PID/uid_map` or `gid_map`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    /// First id inside the namespace.
    pub container: u32,
    /// The host id it maps to.
    pub host: u32,
    /// How many consecutive ids.
    pub size: u32,
}

/// The uid and gid mappings of a user namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMaps {
    /// uid mappings.
    pub uids: Vec<IdMap>,
    /// gid mappings.
    pub gids: Vec<IdMap>,
}

/// True when `id` is inside one of `maps` (as a container id).
pub fn is_mapped(maps: &[IdMap], id: u32) -> bool {
    maps.iter()
        .any(|m| id >= m.container && u64::from(id) < u64::from(m.container) + u64::from(m.size))
}

impl IdMaps {
    /// The rootless mapping for the calling user: its uid/gid as 0, then its first subordinate
    /// range from `/etc/subuid` and `/etc/subgid` as 1.. when both files have one and the
    /// `newuidmap`/`newgidmap` helpers are installed (they also need the user in
    /// `/etc/passwd`).
    pub fn rootless() -> IdMaps {
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        let name = user_name(uid);
        let mut maps = IdMaps {
            uids: vec![IdMap {
                container: 0,
                host: uid,
                size: 1,
            }],
            gids: vec![IdMap {
                container: 0,
                host: gid,
                size: 1,
            }],
        };
        let sub = |file: &str| {
            std::fs::read_to_string(file)
                .ok()
                .and_then(|text| subordinate_range(&text, uid, name.as_deref()))
        };
        if let (Some((us, un)), Some((gs, gn))) = (sub("/etc/subuid"), sub("/etc/subgid"))
            && name.is_some()
            && find_in_path("newuidmap").is_some()
            && find_in_path("newgidmap").is_some()
        {
            maps.uids.push(IdMap {
                container: 1,
                host: us,
                size: un,
            });
            maps.gids.push(IdMap {
                container: 1,
                host: gs,
                size: gn,
            });
        }
        maps
    }

    /// The maps of an OCI runtime config's `linux.uidMappings`/`gidMappings`, when it has both.
    pub fn of(oci: &oci_spec::runtime::Spec) -> Option<IdMaps> {
        let linux = oci.linux().as_ref()?;
        let maps = |m: &Vec<oci_spec::runtime::LinuxIdMapping>| -> Vec<IdMap> {
            m.iter()
                .map(|m| IdMap {
                    container: m.container_id(),
                    host: m.host_id(),
                    size: m.size(),
                })
                .collect()
        };
        Some(IdMaps {
            uids: maps(linux.uid_mappings().as_ref()?),
            gids: maps(linux.gid_mappings().as_ref()?),
        })
    }

    /// True when these maps are just the caller's own ids, which it may write itself.
    fn own_ids_only(&self) -> bool {
        let own = |maps: &[IdMap], id: u32| {
            maps.len() == 1 && maps[0].host == id && maps[0].size == 1 && maps[0].container == 0
        };
        own(&self.uids, rustix::process::geteuid().as_raw())
            && own(&self.gids, rustix::process::getegid().as_raw())
    }
}

/// The name of user `uid` from the system's user database (NSS: `/etc/passwd`, LDAP, SSSD),
/// as `newuidmap` looks it up.
fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain data; zeroed is a valid value.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; buf outlives the use of pwd's strings.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: getpwuid_r filled pw_name with a NUL-terminated string inside buf.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// The first `USER:START:COUNT` range of `/etc/subuid` (or subgid) text for the user, named
/// or by number.
pub fn subordinate_range(text: &str, uid: u32, name: Option<&str>) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut f = l.trim().split(':');
        let who = f.next()?;
        let start = f.next()?.parse::<u32>().ok()?;
        let count = f.next()?.parse::<u32>().ok()?;
        (count > 0 && (Some(who) == name || who.parse::<u32>().ok() == Some(uid)))
            .then_some((start, count))
    })
}

fn find_in_path(cmd: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .chain([
            std::path::PathBuf::from("/usr/bin"),
            std::path::PathBuf::from("/usr/sbin"),
        ])
        .map(|d| d.join(cmd))
        .find(|p| p.is_file())
}

fn map_text(maps: &[IdMap]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container, m.host, m.size))
        .collect()
}

fn map_args(maps: &[IdMap]) -> Vec<String> {
    maps.iter()
        .flat_map(|m| [m.container, m.host, m.size])
        .map(|n| n.to_string())
        .collect()
}

/// Moves this (single-threaded) process into a new user namespace with `maps`, where it is
/// root with every capability. The caller's own ids it writes itself (denying setgroups, as
/// the kernel requires); wider maps are written by `newuidmap`/`newgidmap`, from a child forked
/// before the unshare so that it stays outside.
pub fn enter(maps: &IdMaps) -> io::Result<()> {
    let is_root = rustix::process::geteuid().is_root();
    let unshare = || {
        // SAFETY: plain syscall; the caller is single-threaded.
        if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "unshare user namespace: {e} (are unprivileged user namespaces enabled? \
                     see /proc/sys/user/max_user_namespaces)"
                ),
            ));
        }
        Ok(())
    };
    if is_root || maps.own_ids_only() {
        unshare()?;
        let write = |file: &str, text: &str| {
            std::fs::write(file, text)
                .map_err(|e| io::Error::new(e.kind(), format!("writing {file}: {e}")))
        };
        if !is_root {
            write("/proc/self/setgroups", "deny")?;
        }
        write("/proc/self/uid_map", &map_text(&maps.uids))?;
        return write("/proc/self/gid_map", &map_text(&maps.gids));
    }
    let pid = std::process::id().to_string();
    let (mut go_read, mut go_write) = crate::sandbox::pipe()?;
    let (mut done_read, mut done_write) = crate::sandbox::pipe()?;
    // SAFETY: the caller is single-threaded; the child only runs the two helpers and exits.
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    if child == 0 {
        drop(go_write);
        drop(done_read);
        let mut b = [0u8; 1];
        let ok = go_read.read(&mut b).map(|n| n == 1).unwrap_or(false)
            && [("newuidmap", &maps.uids), ("newgidmap", &maps.gids)]
                .iter()
                .all(|(cmd, m)| {
                    std::process::Command::new(cmd)
                        .arg(&pid)
                        .args(map_args(m))
                        .status()
                        .is_ok_and(|s| s.success())
                });
        let _ = done_write.write_all(if ok { b"y" } else { b"n" });
        // SAFETY: leave at once, running nothing of the parent's.
        unsafe { libc::_exit(0) };
    }
    drop(go_read);
    drop(done_write);
    let result = unshare();
    let _ = go_write.write_all(if result.is_ok() { b"g" } else { b"" });
    drop(go_write);
    let mut answer = Vec::new();
    let _ = done_read.read_to_end(&mut answer);
    let mut status = 0;
    // SAFETY: our own child; status is a valid out pointer.
    unsafe { libc::waitpid(child, &mut status, 0) };
    result?;
    if answer != b"y" {
        return Err(io::Error::other(
            "newuidmap/newgidmap could not map the ranges of /etc/subuid and /etc/subgid",
        ));
    }
    Ok(())
}

/// The hidden argument that makes the binary remove a directory from inside the rootless user
/// namespace ([`remove_main`]).
pub const REMOVE_ARG: &str = "__userns-remove";

/// Removes `dir`, a rootless container's, whose files may belong to subordinate ids the caller
/// cannot remove outside the namespace: runs `exe` (this binary) with [`REMOVE_ARG`], which
/// enters the namespace as root and removes it there, as `podman unshare rm` would.
pub fn remove_inside(exe: &Path, dir: &Path) -> io::Result<()> {
    let out = std::process::Command::new(exe)
        .arg(REMOVE_ARG)
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

/// The [`REMOVE_ARG`] helper: enters the rootless namespace and removes the directory given
/// after the argument. Must run in a single-threaded process.
pub fn remove_main() -> ! {
    let dir = std::env::args_os().nth(2).map(std::path::PathBuf::from);
    let result = match dir {
        Some(dir) => enter(&IdMaps::rootless()).and_then(|()| {
            // Overlay's work dir is left mode 000; as root inside that no longer matters.
            std::fs::remove_dir_all(&dir)
                .map_err(|e| io::Error::new(e.kind(), format!("remove {}: {e}", dir.display())))
        }),
        None => Err(io::Error::other("no directory given")),
    };
    match result {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            let _ = writeln!(io::stderr(), "hoist: {e}");
            std::process::exit(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subordinate_ranges_by_name_or_number() {
        let text = "alice:100000:65536\n1001:200000:1000\nbob:300000:0\n";
        assert_eq!(
            subordinate_range(text, 1000, Some("alice")),
            Some((100000, 65536))
        );
        assert_eq!(
            subordinate_range(text, 1001, Some("carol")),
            Some((200000, 1000))
        );
        assert_eq!(subordinate_range(text, 1002, Some("bob")), None);
        assert_eq!(subordinate_range("", 1, None), None);
    }

    #[test]
    fn mapped_ids_and_map_text() {
        let maps = [
            IdMap {
                container: 0,
                host: 1000,
                size: 1,
            },
            IdMap {
                container: 1,
                host: 100000,
                size: 65536,
            },
        ];
        assert!(is_mapped(&maps, 0));
        assert!(is_mapped(&maps, 65536));
        assert!(!is_mapped(&maps, 65537));
        assert!(!is_mapped(&maps[..1], 5));
        assert_eq!(map_text(&maps), "0 1000 1\n1 100000 65536\n");
        assert_eq!(map_args(&maps[1..]), ["1", "100000", "65536"]);
    }
}
