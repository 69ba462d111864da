//! Running a [`Spec`]: the caller re-executes its own binary with [`HELPER_ARG`] (see
//! [`run`]); that helper process is single-threaded, so it may unshare namespaces and fork
//! safely ([`helper_main`]). The helper forks the container's PID 1, forwards signals to it,
//! waits, and exits with docker's code: the process's status, 128+N after signal N, 125 when the
//! sandbox could not be set up, 126 when the command cannot be executed, 127 when it is not
//! found.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::cgroups::{Cgroup, CgroupRoot};
use crate::plan::{Kernel, RealKernel, plan_oci, rootfs_ops};
use crate::spec::Spec;
use oci_spec::runtime::{LinuxNamespaceType, Spec as OciSpec};

/// The hidden argument that turns the binary into the sandbox helper.
pub const HELPER_ARG: &str = "__sandbox";
/// The environment variable carrying the JSON spec to the helper.
pub const SPEC_ENV: &str = "HOIST_SANDBOX_SPEC";

/// Exit code when the sandbox itself fails (docker's 125).
pub const EXIT_SANDBOX: i32 = 125;
/// Exit code when the command cannot be executed.
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code when the command is not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// A sandbox that could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The spec could not be encoded.
    #[error("cannot encode the sandbox spec: {0}")]
    Spec(#[from] serde_json::Error),
    /// The helper could not be started.
    #[error("cannot start the sandbox helper `{exe}`: {source}")]
    Spawn {
        /// The executable.
        exe: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Runs `spec` in a sandbox through the helper executable `exe` (normally
/// `/proc/self/exe`), with stdio inherited. Returns the docker-style exit code.
pub fn run(spec: &Spec, exe: &Path) -> Result<i32, SandboxError> {
    run_with_output(
        spec,
        exe,
        std::process::Stdio::inherit(),
        std::process::Stdio::inherit(),
    )
}

/// Like [`run`], with the sandbox's stdout and stderr (the helper's and the container's)
/// sent to `stdout` and `stderr` instead of the caller's: a build captures a RUN's output
/// this way and keeps its own stdout for data.
pub fn run_with_output(
    spec: &Spec,
    exe: &Path,
    stdout: std::process::Stdio,
    stderr: std::process::Stdio,
) -> Result<i32, SandboxError> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let json = serde_json::to_string(spec)?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(HELPER_ARG)
        .env(SPEC_ENV, json)
        .stdout(stdout)
        .stderr(stderr)
        .stdin(if spec.stdin || spec.tty {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        });
    // Without a terminal or stdin to share, the helper gets a process group of its own: a
    // signal for hoist (Ctrl-C, `kill`) then reaches the container once, through us.
    let proxy = !spec.stdin && !spec.tty;
    if proxy {
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
        exe: exe.to_path_buf(),
        source,
    })?;
    if proxy {
        forward_signals_to(child.id() as i32);
    }
    let status = loop {
        match child.wait() {
            Ok(s) => break s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(SandboxError::Spawn {
                    exe: exe.to_path_buf(),
                    source,
                });
            }
        }
    };
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

static CHILD: AtomicI32 = AtomicI32::new(0);

/// Forwards the signals docker forwards (and SIGWINCH) to `pid`: the helper to the container's
/// PID 1, and `--init` to the command.
fn forward_signals_to(pid: i32) {
    CHILD.store(pid, Ordering::SeqCst);
    for sig in [
        libc::SIGINT,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
    ] {
        // SAFETY: `forward` only calls kill, which is async-signal-safe.
        unsafe { libc::signal(sig, forward as *const () as libc::sighandler_t) };
    }
}

extern "C" fn forward(sig: libc::c_int) {
    let pid = CHILD.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

/// The helper: reads the spec, sets up namespaces, runs the container's PID 1 and exits with
/// its docker-style code. Must run in a single-threaded process.
pub fn helper_main() -> ! {
    let code = match helper() {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(io::stderr(), "hoist: sandbox: {e}");
            EXIT_SANDBOX
        }
    };
    std::process::exit(code)
}

fn helper() -> io::Result<i32> {
    // Die with the hoist process that started us, so nothing is ever orphaned.
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let json =
        std::env::var(SPEC_ENV).map_err(|_| io::Error::other(format!("{SPEC_ENV} is not set")))?;
    let spec: Spec =
        serde_json::from_str(&json).map_err(|e| io::Error::other(format!("bad spec: {e}")))?;
    // SAFETY: single-threaded process; removing our own variable.
    unsafe { std::env::remove_var(SPEC_ENV) };
    // Everything about the container comes from its OCI runtime config, as with runc; `spec`
    // adds what hoist does around it (the overlay rootfs, --init, stdin, the cgroup's name).
    let oci = crate::oci::runtime_spec(&spec, spec.rootfs.target())?;
    if let Some((runtime, bundle)) = &spec.runtime {
        if spec.user_namespace.is_some() {
            return Err(io::Error::other(
                "--runtime needs root: a rootless run uses hoist's own sandbox",
            ));
        }
        // The external runtime makes its own namespaces and cgroups; we only provide the
        // mounted rootfs, in a mount namespace of our own so it vanishes with us.
        // SAFETY: plain syscall; single-threaded.
        if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut kernel = RealKernel;
        for op in rootfs_ops(&spec.rootfs, spec.volatile_upper, false) {
            kernel.apply(&op)?;
        }
        return crate::oci::delegate(&oci, &spec.name, runtime, bundle);
    }
    let linux = oci.linux().as_ref();
    let userns = crate::userns::IdMaps::of(&oci);
    if let Some(maps) = &userns {
        // First, so that the other namespaces belong to it and we hold every capability there.
        crate::userns::enter(maps)?;
    }
    // The mount namespace is the child's own (unshared after fork): pivot_root must not move
    // the helper's root, which still has to reach the host's cgroup filesystem afterwards.
    let mut flags = 0;
    for ns in linux
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        flags |= match ns.typ() {
            LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
            LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
            LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
            LinuxNamespaceType::Network => libc::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
            LinuxNamespaceType::Mount | LinuxNamespaceType::User => 0,
            other => {
                return Err(io::Error::other(format!(
                    "the {other} namespace is not supported"
                )));
            }
        };
    }
    // SAFETY: unshare has no memory-safety preconditions.
    if unsafe { libc::unshare(flags) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("unshare namespaces: {e} (hoist run needs root)"),
        ));
    }
    let cgroup = match linux.and_then(|l| l.resources().as_ref()) {
        Some(resources) => {
            let limits = crate::cgroups::Limits::from_oci(resources);
            let created = CgroupRoot::detect()
                .and_then(|root| Cgroup::create(&root, &spec.name, &limits))
                .map_err(|e| io::Error::other(format!("cgroups: {e}")));
            match created {
                Ok((cg, warnings)) => {
                    for w in warnings {
                        let _ = writeln!(io::stderr(), "hoist: warning: {w}");
                    }
                    Some(cg)
                }
                // Without root the host's cgroup tree is usually not ours to write: docker's
                // rootless mode warns and runs without limits too.
                Err(e) if userns.is_some() => {
                    let _ = writeln!(
                        io::stderr(),
                        "hoist: warning: rootless: resource limits ignored ({e})"
                    );
                    None
                }
                Err(e) => return Err(e),
            }
        }
        None => None,
    };
    let result = supervise(&spec, &oci, cgroup.as_ref());
    if let Some(cg) = cgroup
        && let Err(e) = cg.remove()
    {
        let _ = writeln!(io::stderr(), "hoist: warning: cgroup cleanup: {e}");
    }
    result
}

/// A close-on-exec pipe (read end, write end).
pub(crate) fn pipe() -> io::Result<(std::fs::File, std::fs::File)> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors we own.
    Ok(unsafe {
        (
            std::fs::File::from(OwnedFd::from_raw_fd(fds[0])),
            std::fs::File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    })
}

/// Forks PID 1 into the cgroup, forwards signals, waits, and reports.
fn supervise(spec: &Spec, oci: &OciSpec, cgroup: Option<&Cgroup>) -> io::Result<i32> {
    let (mut reader, writer) = pipe()?;
    let (mut go_read, mut go_write) = pipe()?;
    let tty = oci
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false);
    let console = if tty {
        Some(crate::tty::ConsoleSocket::new()?)
    } else {
        None
    };
    // SAFETY: the helper is single-threaded, so the child may allocate and run Rust code.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        drop(reader);
        drop(go_write);
        let mut report = writer;
        // Wait until the parent has put us in the cgroup.
        let mut go = [0u8; 1];
        let ready = go_read
            .read(&mut go)
            .map(|n| n == 1 && go[0] == b'g')
            .unwrap_or(false);
        let outcome = if ready {
            child(
                spec,
                oci,
                console.as_ref().map(crate::tty::ConsoleSocket::child_fd),
            )
        } else {
            Err(Failure::Setup(
                "the sandbox helper went away before the start".into(),
            ))
        };
        let (tag, msg, code) = match outcome {
            Err(Failure::Setup(m)) => (b'S', m, EXIT_SANDBOX),
            Err(Failure::Exec(errno, m)) => {
                let code = if errno == libc::ENOENT {
                    EXIT_NOT_FOUND
                } else {
                    EXIT_NOT_EXECUTABLE
                };
                (b'E', m, code)
            }
            Ok(never) => match never {},
        };
        let _ = report.write_all(&[tag]);
        let _ = report.write_all(msg.as_bytes());
        // SAFETY: leave the child at once, without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    drop(writer);
    drop(go_read);
    if let Some(cg) = cgroup
        && let Err(e) = cg.add(pid)
    {
        // SAFETY: our own child; it is waiting on the go pipe.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        return Err(io::Error::other(format!("cgroups: {e}")));
    }
    go_write.write_all(b"g")?;
    drop(go_write);
    forward_signals_to(pid);
    if let Some(c) = console
        && let Some(p) = c.receive()?
    {
        if let Err(e) = p.relay(spec.stdin) {
            let _ = writeln!(io::stderr(), "hoist: terminal: {e}");
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let mut report = Vec::new();
    let _ = reader.read_to_end(&mut report);
    if let Some((&tag, msg)) = report.split_first() {
        let msg = String::from_utf8_lossy(msg);
        let _ = writeln!(
            io::stderr(),
            "hoist: {}{msg}",
            if tag == b'S' {
                "sandbox setup failed: "
            } else {
                ""
            }
        );
    }
    if cgroup.is_some_and(Cgroup::oom_killed) {
        let _ = writeln!(
            io::stderr(),
            "hoist: the container ran out of memory (OOM killed)"
        );
    }
    Ok(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        EXIT_SANDBOX
    })
}

/// A value that cannot exist: `child` only returns on failure.
enum Never {}

enum Failure {
    Setup(String),
    Exec(i32, String),
}

fn setup<T>(what: &str, r: io::Result<T>) -> Result<T, Failure> {
    r.map_err(|e| Failure::Setup(format!("{what}: {e}")))
}

/// The container's PID 1 before exec: builds the filesystem, then sets up the process as
/// `oci` says.
fn child(spec: &Spec, oci: &OciSpec, tty: Option<std::os::fd::RawFd>) -> Result<Never, Failure> {
    // Die with the supervising helper, whatever kills it.
    // SAFETY: prctl with constant arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    // Its own session and process group: `kill 0` or a group signal inside the container must
    // never reach hoist's own process group.
    // SAFETY: plain syscall.
    if unsafe { libc::setsid() } < 0 {
        return Err(Failure::Setup(format!(
            "setsid: {}",
            io::Error::last_os_error()
        )));
    }
    // SAFETY: plain syscall; this process is single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(Failure::Setup(format!(
            "unshare mount namespace: {}",
            io::Error::last_os_error()
        )));
    }
    let mut kernel = RealKernel;
    for op in plan_oci(oci, &spec.rootfs, spec.volatile_upper) {
        setup("building the root filesystem", kernel.apply(&op))?;
    }
    let own_network = oci
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    if own_network {
        setup("bringing up loopback", loopback_up())?;
    }
    if let Some(socket) = tty {
        setup(
            "opening the container's terminal",
            crate::tty::attach(socket),
        )?;
    }
    let Some(p) = oci.process().as_ref() else {
        return Err(Failure::Setup("the OCI spec has no process".into()));
    };
    let wanted: crate::caps::CapSet = p
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().as_ref())
        .into_iter()
        .flatten()
        .map(|c| {
            let name = serde_json::to_value(c).unwrap_or_default();
            crate::caps::Cap::parse(name.as_str().unwrap_or_default())
        })
        .collect::<Result<_, _>>()
        .map_err(|e| Failure::Setup(format!("capabilities: {e}")))?;
    let caps =
        crate::caps::prepare(&wanted).map_err(|e| Failure::Setup(format!("capabilities: {e}")))?;
    if let Some(hostname) = oci.hostname() {
        setup(
            "sethostname",
            rustix::system::sethostname(hostname.as_bytes()).map_err(io::Error::from),
        )?;
    }
    let cwd = p.cwd().to_string_lossy();
    let cwd = if cwd.is_empty() { "/" } else { &cwd };
    setup(
        &format!("creating the working directory `{cwd}`"),
        std::fs::create_dir_all(cwd),
    )?;
    if p.no_new_privileges() == Some(true) {
        // SAFETY: prctl with constant arguments.
        setup(
            "no_new_privs",
            check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) }),
        )?;
    }
    setup("capability bounding set", caps.apply_bounding())?;
    let user = p.user();
    let mut groups = user.additional_gids().clone().unwrap_or_default();
    let userns = crate::userns::IdMaps::of(oci);
    let gid_maps = userns.as_ref().map(|m| m.gids.as_slice());
    let uid_maps = userns.as_ref().map(|m| m.uids.as_slice());
    let mapped = |maps: Option<&[crate::userns::IdMap]>, id: u32| {
        maps.is_none_or(|m| crate::userns::is_mapped(m, id))
    };
    // In a user namespace only mapped groups exist, and a rootless one whose own map we wrote
    // may not call setgroups at all.
    groups.retain(|g| mapped(gid_maps, *g));
    let setgroups_denied = gid_maps.is_some()
        && std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    if !setgroups_denied {
        // SAFETY: the group list is a valid slice.
        setup(
            "setgroups",
            check(unsafe { libc::setgroups(groups.len(), groups.as_ptr()) }),
        )?;
    }
    for (what, id, maps) in [
        ("user", user.uid(), uid_maps),
        ("group", user.gid(), gid_maps),
    ] {
        if !mapped(maps, id) {
            return Err(Failure::Setup(format!(
                "{what} {id} does not exist in the rootless user namespace: only root does \
                 unless /etc/subuid and /etc/subgid give your user a range (and newuidmap is \
                 installed)"
            )));
        }
    }
    // SAFETY: plain syscalls.
    setup("setgid", check(unsafe { libc::setgid(user.gid()) }))?;
    // SAFETY: plain syscall.
    setup("setuid", check(unsafe { libc::setuid(user.uid()) }))?;
    setup("capabilities", caps.apply_sets())?;
    setup(&format!("chdir to `{cwd}`"), std::env::set_current_dir(cwd))?;
    let args = p.args().as_deref().unwrap_or_default();
    let env = p.env().as_deref().unwrap_or_default();
    let Some(arg0) = args.first() else {
        return Err(Failure::Setup(
            "no command given: the image has no CMD or ENTRYPOINT; give a command".into(),
        ));
    };
    let path = find_executable(arg0, env).map_err(|e| {
        Failure::Exec(
            e.raw_os_error().unwrap_or(libc::ENOENT),
            exec_message(arg0, &e),
        )
    })?;
    let c =
        |s: &str| CString::new(s).map_err(|_| Failure::Setup(format!("`{s}` contains a NUL byte")));
    let argv: Vec<CString> = args.iter().map(|a| c(a)).collect::<Result<_, _>>()?;
    let envp: Vec<CString> = env.iter().map(|a| c(a)).collect::<Result<_, _>>()?;
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Failure::Setup("path contains NUL".into()))?;
    if spec.init {
        init_then_exec()?;
    }
    // SAFETY: NUL-terminated arrays of valid C strings that outlive the call.
    unsafe { libc::execve(cpath.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
    let e = io::Error::last_os_error();
    Err(Failure::Exec(
        e.raw_os_error().unwrap_or(libc::EACCES),
        exec_message(arg0, &e),
    ))
}

/// `--init`: this process stays PID 1, forks the command, forwards signals to it, reaps every
/// zombie, and exits with the command's status. Returns only in the forked command, which then
/// execs.
fn init_then_exec() -> Result<(), Failure> {
    // SAFETY: single-threaded; the child only execs.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Failure::Setup(format!(
            "fork for --init: {}",
            io::Error::last_os_error()
        )));
    }
    if pid == 0 {
        return Ok(());
    }
    forward_signals_to(pid);
    loop {
        let mut status = 0;
        // SAFETY: status is a valid out pointer.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            // SAFETY: exit without running anything else in this process.
            unsafe { libc::_exit(code) };
        }
        if r < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD) {
            // SAFETY: as above.
            unsafe { libc::_exit(EXIT_SANDBOX) };
        }
    }
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// docker's wording for a failed exec.
fn exec_message(arg0: &str, e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOENT) if !arg0.contains('/') => {
            format!("exec: \"{arg0}\": executable file not found in $PATH")
        }
        Some(libc::ENOENT) => format!("exec: \"{arg0}\": no such file or directory"),
        Some(libc::EISDIR) => format!("exec: \"{arg0}\": is a directory"),
        _ => format!(
            "exec: \"{arg0}\": {}",
            e.to_string()
                .split(" (os error")
                .next()
                .unwrap_or_default()
                .to_lowercase()
        ),
    }
}

/// Resolves `arg0` as execvp would, using the PATH of the container's environment.
fn find_executable(arg0: &str, env: &[String]) -> io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_exec = |p: &Path| -> io::Result<()> {
        let m = std::fs::metadata(p)?;
        if m.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        if m.permissions().mode() & 0o111 == 0 {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(())
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        is_exec(&p)?;
        return Ok(p);
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut denied = None;
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = Path::new(dir).join(arg0);
        match is_exec(&cand) {
            Ok(()) => return Ok(cand),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => denied = Some(e),
            Err(_) => {}
        }
    }
    Err(denied.unwrap_or_else(|| io::Error::from_raw_os_error(libc::ENOENT)))
}

/// Brings up `lo` in a fresh network namespace (docker's `none` network has loopback).
fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: we own fd.
    let _sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zeroed is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: valid ifreq pointer for SIOCGIFFLAGS / SIOCSIFFLAGS.
    unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(fd, libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
