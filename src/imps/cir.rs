//! The standalone TCP CIR channel (CSP transport binding, "STCP"): an idle
//! client keeps one TCP connection open to the address the
//! ClientCapability-Response gave it, names its session with
//! `HELO <SessionID>` and gets `OK`; from then on the server writes a
//! `WVCI <CSP version> <SessionCookie>` line (the version the client logged
//! in with) whenever something waits for the
//! session, and the client polls as usual. `PING` keeps NAT bindings alive and
//! is answered `OK`. Lines end in CRLF.
//!
//! [`Command::parse`] and [`wvci`] are the sans-IO part; [`serve_tcp`] is the
//! driver, under the connection caps (`crate::caps`) like the HTTP listeners. One
//! channel per session: a second HELO for the same session replaces the first
//! connection, and the channel closes when its session ends.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::server::Server;
use super::session::{CirAttached, SessionError};
use super::wbxml::Version;
use crate::caps::{CappedListener, ConnectionCaps};

/// The longest line read from a CIR client (`HELO` and a SessionID).
pub const MAX_LINE: usize = 256;

/// A line from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command<'a> {
    /// `HELO <SessionID>`: bind this connection to a session.
    Helo(&'a str),
    /// `PING`: keep-alive, answered `OK`.
    Ping,
}

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Not UTF-8, or not a command of the binding.
    #[error("not a CIR command")]
    Unknown,
    /// `HELO` without a SessionID.
    #[error("HELO without a SessionID")]
    NoSession,
}

impl<'a> Command<'a> {
    /// Parses one line, without its line end; surrounding blanks are ignored
    /// (the AOSP client sends `PING ` with a trailing space).
    pub fn parse(line: &'a [u8]) -> Result<Self, LineError> {
        let line = std::str::from_utf8(line)
            .map_err(|_| LineError::Unknown)?
            .trim();
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        if word.eq_ignore_ascii_case("PING") && rest.trim().is_empty() {
            Ok(Self::Ping)
        } else if word.eq_ignore_ascii_case("HELO") {
            let id = rest.trim();
            if id.is_empty() || id.contains(char::is_whitespace) {
                Err(LineError::NoSession)
            } else {
                Ok(Self::Helo(id))
            }
        } else {
            Err(LineError::Unknown)
        }
    }
}

/// The CIR line for a session: `WVCI <version> <cookie>` and CRLF.
#[must_use]
pub fn wvci(version: &str, cookie: &str) -> String {
    format!("WVCI {version} {cookie}\r\n")
}

/// A CSP version as `WVCI` names it.
fn version_text(v: Version) -> &'static str {
    match v {
        Version::V11 => "1.1",
        Version::V12 => "1.2",
        Version::V13 => "1.3",
    }
}

/// What the CIR listener allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CirLimits {
    /// Connections open at once.
    pub max_connections: usize,
    /// Connections open at once from one address.
    pub max_per_address: usize,
    /// Time from connecting to a complete `HELO` line.
    pub helo_timeout: Duration,
}

/// Serves CIR connections on `listener` until `shutdown`.
pub async fn serve_tcp(
    listener: TcpListener,
    server: Arc<Server>,
    limits: CirLimits,
    shutdown: CancellationToken,
) {
    let caps = ConnectionCaps::new(limits.max_connections, limits.max_per_address);
    let mut listener = CappedListener::new("IMPS CIR", listener, caps);
    while let Some((stream, peer, slot)) = listener.accept(&shutdown).await {
        let server = Arc::clone(&server);
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = connection(stream, peer, &server, limits, stop).await {
                tracing::debug!("IMPS CIR: connection from {peer}: {e}");
            }
        });
    }
}

/// Why a CIR connection ended early.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no HELO in time")]
    HeloTimeout,
    #[error("line longer than {MAX_LINE} bytes")]
    LongLine,
    #[error("{0}")]
    Line(#[from] LineError),
    #[error("HELO for an unknown or expired session")]
    Session(SessionError),
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    server: &Server,
    limits: CirLimits,
    stop: CancellationToken,
) -> Result<(), ConnError> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = Vec::with_capacity(64);
    let first = tokio::time::timeout(limits.helo_timeout, read_line(&mut read, &mut line))
        .await
        .map_err(|_| ConnError::HeloTimeout)??;
    if !first {
        return Ok(());
    }
    let (
        CirAttached {
            mut wake,
            cookie,
            version,
        },
        id,
    ) = match Command::parse(&line)? {
        Command::Helo(id) => (attach(server, id, peer.ip())?, id.to_owned()),
        Command::Ping => return Err(LineError::Unknown.into()),
    };
    // Without a SessionCookie the line names the session itself; the AOSP
    // client ignores the cookie, the Nokia engine looks for its own in it.
    let cookie = cookie.unwrap_or(id);
    write.write_all(b"OK\r\n").await?;
    loop {
        tokio::select! {
            changed = wake.changed() => {
                if changed.is_err() {
                    // The session ended, or a newer channel replaced this one.
                    return Ok(());
                }
                write.write_all(wvci(version_text(version), &cookie).as_bytes()).await?;
            }
            got = read_line(&mut read, &mut line) => {
                if !got? {
                    return Ok(());
                }
                match Command::parse(&line)? {
                    Command::Ping => write.write_all(b"OK\r\n").await?,
                    Command::Helo(_) => return Err(LineError::Unknown.into()),
                }
            }
            () = stop.cancelled() => return Ok(()),
        }
    }
}

fn attach(server: &Server, id: &str, client: IpAddr) -> Result<CirAttached, ConnError> {
    server.attach_cir(id, client).map_err(|e| {
        tracing::info!(%client, "IMPS CIR: HELO for an unknown session refused");
        ConnError::Session(e)
    })
}

/// Reads one line into `buf`, line end included; `false` at the end of the
/// stream. A line longer than [`MAX_LINE`] is an error. Cancel-safe: bytes of
/// a line cut short by the other `select!` arm stay in `buf`, and the next
/// call goes on with them (`buf` is cleared only after a complete line).
async fn read_line<R: AsyncRead + Unpin>(
    read: &mut BufReader<R>,
    buf: &mut Vec<u8>,
) -> Result<bool, ConnError> {
    if buf.last() == Some(&b'\n') {
        buf.clear();
    }
    let room = (MAX_LINE + 2).saturating_sub(buf.len()) as u64;
    let n = (&mut *read).take(room).read_until(b'\n', buf).await?;
    if buf.last() != Some(&b'\n') {
        if n == 0 && buf.is_empty() {
            return Ok(false);
        }
        if buf.len() > MAX_LINE {
            return Err(ConnError::LongLine);
        }
        if n == 0 {
            // End of stream in the middle of a line.
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_parsed_as_the_binding_and_real_clients_write_them() {
        assert_eq!(Command::parse(b"HELO abc123"), Ok(Command::Helo("abc123")));
        assert_eq!(
            Command::parse(b"HELO abc123\r"),
            Ok(Command::Helo("abc123"))
        );
        assert_eq!(Command::parse(b"PING \r"), Ok(Command::Ping));
        assert_eq!(Command::parse(b"ping"), Ok(Command::Ping));
        assert_eq!(Command::parse(b"HELO"), Err(LineError::NoSession));
        assert_eq!(Command::parse(b"HELO a b"), Err(LineError::NoSession));
        assert_eq!(Command::parse(b"PING x"), Err(LineError::Unknown));
        assert_eq!(Command::parse(b"GET / HTTP/1.1"), Err(LineError::Unknown));
        assert_eq!(Command::parse(b"\xff\xfe"), Err(LineError::Unknown));
        assert_eq!(wvci("1.3", "c00k1e"), "WVCI 1.3 c00k1e\r\n");
    }
}
