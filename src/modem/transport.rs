//! The byte pipe to a modem: a serial port (tokio-serial), a TCP socket (ser2net
//! and the simulator's `--listen`), or the in-process simulated modem.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use tokio::io::{AsyncRead, AsyncWrite};

/// Where a modem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// A serial device (`/dev/ttyUSB2`, `/dev/serial/by-id/…`, `/dev/smsbridge/…`).
    Serial {
        /// The device path; reopened by this path after a USB re-plug.
        path: PathBuf,
        /// Baud rate (USB modems ignore it; real UARTs do not).
        baud: u32,
    },
    /// `tcp://host:port`, e.g. a modem behind ser2net.
    Tcp(String),
    /// The simulated modem, in process (the demo, tests, benchmarks).
    Sim(crate::sim::SimPort),
}

/// The default baud rate.
pub const DEFAULT_BAUD: u32 = 115_200;

impl FromStr for PortSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(addr) = s.strip_prefix("tcp://") {
            if addr
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(format!("{s:?}: expected tcp://<host>:<port>"));
            }
            return Ok(Self::Tcp(addr.to_owned()));
        }
        if s.is_empty() {
            return Err("empty port".into());
        }
        Ok(Self::Serial {
            path: s.into(),
            baud: DEFAULT_BAUD,
        })
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Serial { path, .. } => write!(f, "{}", path.display()),
            Self::Tcp(a) => write!(f, "tcp://{a}"),
            Self::Sim(p) => write!(f, "sim:{}", p.name()),
        }
    }
}

/// An open port.
pub trait Port: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Port for T {}

/// Opens a port. Serial ports are opened exclusively (`TIOCEXCL`), so a second
/// program (ModemManager, a stray minicom) cannot interleave commands.
pub async fn open(spec: &PortSpec) -> std::io::Result<Box<dyn Port>> {
    match spec {
        PortSpec::Serial { path, baud } => {
            let path = path.to_string_lossy().into_owned();
            let port = tokio_serial::SerialStream::open(&tokio_serial::new(path, *baud))
                .map_err(std::io::Error::from)?;
            Ok(Box::new(port))
        }
        PortSpec::Tcp(addr) => {
            let s = tokio::net::TcpStream::connect(addr).await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s))
        }
        PortSpec::Sim(p) => Ok(Box::new(p.connect()?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_port_specs() {
        assert_eq!(
            "/dev/ttyUSB2".parse(),
            Ok(PortSpec::Serial {
                path: "/dev/ttyUSB2".into(),
                baud: DEFAULT_BAUD
            })
        );
        assert_eq!(
            "tcp://127.0.0.1:7000".parse(),
            Ok(PortSpec::Tcp("127.0.0.1:7000".into()))
        );
        assert!("tcp://127.0.0.1".parse::<PortSpec>().is_err());
        assert!("tcp://:70".parse::<PortSpec>().is_err());
        assert!("".parse::<PortSpec>().is_err());
    }
}
