//! `-t`: a pseudo-terminal for the container. Its PID 1 opens the pty in the container's own
//! devpts (so `tty` names /dev/pts/0 there) and sends the master to the helper over a socket
//! pair, as runc's console socket does; the helper relays
//! between the user's terminal (switched to raw mode, restored afterwards) and the master, and
//! passes window-size changes on.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// The helper's side of a container terminal: first a socket on which the container sends the
/// master it opened in its own devpts, then the master itself.
pub struct Pty {
    master: OwnedFd,
}

/// The channel the container's PID 1 sends its pty master over.
pub struct ConsoleSocket {
    parent: OwnedFd,
    child: OwnedFd,
}

static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_winch(_: libc::c_int) {
    RESIZED.store(true, Ordering::SeqCst);
}

impl ConsoleSocket {
    /// A socket pair, made before the fork.
    pub fn new() -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh descriptors we own.
        Ok(unsafe {
            Self {
                parent: OwnedFd::from_raw_fd(fds[0]),
                child: OwnedFd::from_raw_fd(fds[1]),
            }
        })
    }

    /// The child's end (its raw descriptor, valid in the forked child).
    pub fn child_fd(&self) -> RawFd {
        self.child.as_raw_fd()
    }

    /// In the helper: waits for the master from the container. `None` when the container
    /// closed the socket without sending one (its setup failed).
    pub fn receive(self) -> io::Result<Option<Pty>> {
        drop(self.child);
        let mut byte = [0u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        // SAFETY: CMSG_SPACE is a pure computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
        let mut cbuf = vec![0u8; space];
        // SAFETY: msghdr is plain data; zeroed is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: msg points at live buffers.
        let n = unsafe { libc::recvmsg(self.parent.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: CMSG_FIRSTHDR reads the header we passed in.
        let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        if n == 0 || cmsg.is_null() {
            return Ok(None);
        }
        // SAFETY: the kernel wrote one SCM_RIGHTS descriptor after the header.
        let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>()) };
        // SAFETY: a descriptor the kernel just gave us.
        let pty = Pty {
            master: unsafe { OwnedFd::from_raw_fd(fd) },
        };
        pty.copy_size();
        Ok(Some(pty))
    }
}

/// In the container's PID 1, after pivot_root and setsid: opens a pty in the container's own
/// devpts, sends the master to the helper over `socket`, and makes the slave the controlling
/// terminal and stdin, stdout and stderr.
pub fn attach(socket: RawFd) -> io::Result<()> {
    // SAFETY: plain calls on descriptors we own; buffers are live.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if master < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::grantpt(master) != 0
            || libc::unlockpt(master) != 0
            || libc::ptsname_r(master, name.as_mut_ptr(), name.len()) != 0
        {
            return Err(io::Error::last_os_error());
        }
        let slave = libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        if slave < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut byte = [b't'];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let mut cbuf = vec![0u8; space];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), master);
        if libc::sendmsg(socket, &msg, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
        libc::close(master);
        libc::close(socket);
        if libc::ioctl(slave, libc::TIOCSCTTY, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        for target in 0..3 {
            if libc::dup2(slave, target) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if slave > 2 {
            libc::close(slave);
        }
    }
    Ok(())
}

impl Pty {
    fn copy_size(&self) {
        // SAFETY: winsize is plain data; ioctls on valid descriptors.
        unsafe {
            let mut ws: libc::winsize = std::mem::zeroed();
            if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
                libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws);
            }
        }
    }

    /// Relays between our stdio and the container's terminal until the container side closes
    /// it. Our stdin is forwarded only when `stdin` is set (`-i`).
    pub fn relay(self, stdin: bool) -> io::Result<()> {
        let Self { master } = self;
        // SAFETY: the handler only stores to an atomic.
        unsafe { libc::signal(libc::SIGWINCH, on_winch as *const () as libc::sighandler_t) };
        // Raw mode only when the user types into the container (-it), as docker does.
        let raw = if stdin {
            RawMode::enter()
        } else {
            RawMode(None)
        };
        let mut out = io::stdout().lock();
        let mut buf = [0u8; 16 * 1024];
        let mut stdin_open = stdin;
        let mut m = std::fs::File::from(master);
        loop {
            if RESIZED.swap(false, Ordering::SeqCst) {
                // SAFETY: as in copy_size.
                unsafe {
                    let mut ws: libc::winsize = std::mem::zeroed();
                    if libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) == 0 {
                        libc::ioctl(m.as_raw_fd(), libc::TIOCSWINSZ, &ws);
                    }
                }
            }
            let mut fds = [
                libc::pollfd {
                    fd: m.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: if stdin_open { 0 } else { -1 },
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: valid pollfd array.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 200) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                drop(raw);
                return Err(e);
            }
            if fds[0].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                match m.read(&mut buf) {
                    Ok(0) => break,
                    Ok(k) => {
                        out.write_all(&buf[..k])?;
                        out.flush()?;
                    }
                    // EIO: every slave descriptor is closed — the container is gone.
                    Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        drop(raw);
                        return Err(e);
                    }
                }
            }
            if stdin_open && fds[1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                match io::stdin().lock().read(&mut buf) {
                    Ok(0) | Err(_) => stdin_open = false,
                    Ok(k) => m.write_all(&buf[..k])?,
                }
            }
        }
        drop(raw);
        Ok(())
    }
}

/// Our terminal in raw mode for as long as this lives.
struct RawMode(Option<rustix::termios::Termios>);

impl RawMode {
    fn enter() -> Self {
        let stdin = io::stdin();
        let Ok(orig) = rustix::termios::tcgetattr(stdin.as_fd()) else {
            return Self(None);
        };
        let mut raw = orig.clone();
        raw.make_raw();
        let _ =
            rustix::termios::tcsetattr(stdin.as_fd(), rustix::termios::OptionalActions::Now, &raw);
        Self(Some(orig))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(orig) = &self.0 {
            let _ = rustix::termios::tcsetattr(
                io::stdin().as_fd(),
                rustix::termios::OptionalActions::Now,
                orig,
            );
        }
    }
}
