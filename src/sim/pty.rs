//! The simulator's serial port: a pseudo-terminal in raw mode whose slave side a
//! symlink names, as udev names a USB modem's tty. The master side stays with us:
//! when the client closes the slave, reads give EIO and we poll until someone
//! opens it again. "Vanishing" closes the master (the client sees a hang-up, as
//! when a USB modem is unplugged) and later makes a new PTY behind the same link.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::openpty;
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::unix::AsyncFd;

/// How often a closed port is checked for a client that opened it again.
const REOPEN_POLL: Duration = Duration::from_millis(50);

/// What happened on the port.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum PortEvent {
    /// This many bytes were read into the buffer.
    Data(usize),
    /// The client closed the port.
    Closed,
}

#[derive(Debug)]
pub(super) struct Pty {
    /// `None` only for the moment of a re-registration.
    master: Option<AsyncFd<OwnedFd>>,
    slave_name: PathBuf,
    link: PathBuf,
    connected: bool,
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn gone() -> io::Error {
    io::Error::other("PTY master missing")
}

// `AsyncFd::new` is deprecated in recent tokio in favour of the unsafe
// `register`; it is sound here (the AsyncFd owns the OwnedFd) and exists in every
// tokio 1.x, which keeps merges with other branches' lock files easy.
#[allow(deprecated)]
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    AsyncFd::new(fd)
}

impl Pty {
    /// A new PTY in raw mode with `link` pointing at its slave (an old symlink at
    /// `link` is replaced; any other file there is an error).
    pub(super) fn open(link: &Path) -> io::Result<Self> {
        let pair = openpty(None, None).map_err(errno)?;
        let mut t = tcgetattr(&pair.slave).map_err(errno)?;
        cfmakeraw(&mut t);
        tcsetattr(&pair.slave, SetArg::TCSANOW, &t).map_err(errno)?;
        let slave_name = nix::unistd::ttyname(&pair.slave).map_err(errno)?;
        let flags = fcntl(&pair.master, FcntlArg::F_GETFL).map_err(errno)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&pair.master, FcntlArg::F_SETFL(flags)).map_err(errno)?;
        // Our slave fd goes: the port then looks closed until a client opens it.
        drop(pair.slave);
        match std::fs::symlink_metadata(link) {
            Ok(m) if m.file_type().is_symlink() => std::fs::remove_file(link)?,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a symlink", link.display()),
                ));
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&slave_name, link)?;
        Ok(Self {
            master: Some(register(pair.master)?),
            slave_name,
            link: link.to_path_buf(),
            connected: false,
        })
    }

    pub(super) fn slave_name(&self) -> &Path {
        &self.slave_name
    }

    /// A client opened the port. Tokio never clears a "read closed" readiness
    /// (for a socket a hang-up is final), but a PTY master's hang-up ends when the
    /// slave is reopened: register the fd afresh so readiness starts clean.
    fn connect(&mut self) -> io::Result<()> {
        let fd = self.master.take().ok_or_else(gone)?.into_inner();
        self.master = Some(register(fd)?);
        self.connected = true;
        Ok(())
    }

    /// Waits for bytes from the client, or for it to close the port.
    pub(super) async fn read(&mut self, buf: &mut [u8]) -> io::Result<PortEvent> {
        loop {
            let master = self.master.as_ref().ok_or_else(gone)?;
            if !self.connected {
                // No client: the master reads EIO until the slave is opened.
                match nix::unistd::read(master.get_ref().as_fd(), buf) {
                    Ok(n) if n > 0 => {
                        self.connect()?;
                        return Ok(PortEvent::Data(n));
                    }
                    Err(Errno::EAGAIN) => self.connect()?,
                    Ok(_) | Err(Errno::EIO) => tokio::time::sleep(REOPEN_POLL).await,
                    Err(e) => return Err(errno(e)),
                }
                continue;
            }
            let mut guard = master.readable().await?;
            let fd = guard.get_inner().as_raw_fd();
            match guard
                .try_io(|inner| nix::unistd::read(inner.get_ref().as_fd(), buf).map_err(errno))
            {
                Ok(Ok(n)) if n > 0 => return Ok(PortEvent::Data(n)),
                Ok(Ok(_)) => {
                    self.connected = false;
                    return Ok(PortEvent::Closed);
                }
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::EIO as i32) => {
                    tracing::debug!(fd, "client closed the port");
                    self.connected = false;
                    return Ok(PortEvent::Closed);
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes to the client; dropped when no client has the port open (a USB
    /// modem's output with nobody reading is lost too).
    pub(super) async fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            if !self.connected {
                return Ok(());
            }
            let master = self.master.as_ref().ok_or_else(gone)?;
            let mut guard = master.writable().await?;
            match guard
                .try_io(|inner| nix::unistd::write(inner.get_ref().as_fd(), bytes).map_err(errno))
            {
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(e)) if e.raw_os_error() == Some(Errno::EIO as i32) => {
                    self.connected = false;
                    return Ok(());
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Removes the link; the PTY closes when this is dropped.
    pub(super) fn remove_link(&self) {
        if std::fs::symlink_metadata(&self.link).is_ok_and(|m| m.file_type().is_symlink()) {
            let _ = std::fs::remove_file(&self.link);
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        self.remove_link();
    }
}
