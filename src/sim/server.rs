//! The simulator as a process: one tokio loop that owns the port (a PTY behind
//! a symlink, or a TCP listener taking one client at a time), the clock, the
//! control socket and the transcript file, and moves bytes and time in and out
//! of the sans-IO [`SimModem`].

use std::future::Future;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::{mpsc, oneshot};

use super::clock::after;
use super::config::{Fault, PartOrder, SimConfig};
use super::control::{ControlRequest, ControlResponse, SentSummary};
use super::modem::SimModem;
use super::pty::{PortEvent, Pty};

/// Where the simulated modem's port is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    /// A PTY whose slave `PATH` links to.
    Pty(PathBuf),
    /// A TCP listener (`tcp://127.0.0.1:PORT`); a new connection is a port reset.
    Tcp(SocketAddr),
}

/// How to run a simulated modem.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The modem.
    pub config: SimConfig,
    /// The port.
    pub listen: Listen,
    /// The control socket, if any.
    pub control: Option<PathBuf>,
    /// Append every transcript entry here, with wall-clock time stamps.
    pub transcript: Option<PathBuf>,
}

enum Port {
    Pty(Pty),
    Tcp {
        listener: TcpListener,
        conn: Option<TcpStream>,
    },
}

enum Happened {
    Data(usize),
    Closed,
    NewClient,
}

impl Port {
    async fn open(listen: &Listen) -> io::Result<Self> {
        Ok(match listen {
            Listen::Pty(link) => Port::Pty(Pty::open(link)?),
            Listen::Tcp(addr) => Port::Tcp {
                listener: TcpListener::bind(addr).await?,
                conn: None,
            },
        })
    }

    fn describe(&self, listen: &Listen) -> String {
        match (self, listen) {
            (Port::Pty(p), Listen::Pty(link)) => {
                format!("{} ({})", link.display(), p.slave_name().display())
            }
            (Port::Tcp { listener, .. }, _) => match listener.local_addr() {
                Ok(a) => format!("tcp://{a}"),
                Err(_) => "tcp".into(),
            },
            _ => String::new(),
        }
    }

    async fn next(&mut self, buf: &mut [u8]) -> io::Result<Happened> {
        match self {
            Port::Pty(p) => Ok(match p.read(buf).await? {
                PortEvent::Data(n) => Happened::Data(n),
                PortEvent::Closed => Happened::Closed,
            }),
            Port::Tcp { listener, conn } => {
                let accepted = match conn {
                    Some(c) => tokio::select! {
                        r = c.read(buf) => match r {
                            Ok(0) | Err(_) => {
                                *conn = None;
                                return Ok(Happened::Closed);
                            }
                            Ok(n) => return Ok(Happened::Data(n)),
                        },
                        a = listener.accept() => a?,
                    },
                    None => listener.accept().await?,
                };
                tracing::info!(peer = %accepted.1, "client connected");
                *conn = Some(accepted.0);
                Ok(Happened::NewClient)
            }
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Port::Pty(p) => p.write(bytes).await,
            Port::Tcp { conn, .. } => {
                if let Some(c) = conn
                    && c.write_all(bytes).await.is_err()
                {
                    *conn = None;
                }
                Ok(())
            }
        }
    }
}

/// Time between the fault falling due and the port disappearing.
const VANISH_GRACE: Duration = Duration::from_millis(200);

type ControlMsg = (ControlRequest, oneshot::Sender<ControlResponse>);

/// Runs a simulated modem until `shutdown` completes. Prints one line on stdout
/// when the port is ready: `simulated modem on <PATH> (<slave>)`.
pub async fn serve(opts: ServeOptions, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let mut config = opts.config;
    let start = Instant::now();
    let wall = SystemTime::now();
    config.unix_time = wall
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut modem = SimModem::new(config, start);
    let mut port = Some(Port::open(&opts.listen).await?);
    let describe = port.as_ref().map(|p| p.describe(&opts.listen));
    println!("simulated modem on {}", describe.unwrap_or_default());
    let _ = io::stdout().flush();

    let (ctl_tx, mut ctl_rx) = mpsc::channel::<ControlMsg>(16);
    let _control = match &opts.control {
        Some(path) => Some(ControlSocket::start(path, ctl_tx)?),
        None => None,
    };
    let mut transcript = match &opts.transcript {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None => None,
    };

    tokio::pin!(shutdown);
    let mut rbuf = vec![0u8; 4096];
    let mut vanished_until: Option<tokio::time::Instant> = None;
    let mut vanish_at: Option<(tokio::time::Instant, Duration)> = None;
    loop {
        let mut out = Vec::new();
        if modem.poll_output(&mut out)
            && let Some(p) = port.as_mut()
        {
            p.write(&out).await?;
        }
        while let Some(entry) = modem.poll_log() {
            tracing::debug!("{}", entry.entry);
            if let Some(f) = transcript.as_mut() {
                let when = wall + entry.at.saturating_duration_since(start);
                let stamp = humantime::format_rfc3339_millis(when);
                writeln!(f, "{stamp} {}", entry.entry)?;
            }
        }
        if let Some(d) = modem.poll_vanish() {
            // A short grace so the last answer reaches the client: closing the
            // master discards what the slave has not read yet.
            vanish_at = Some((tokio::time::Instant::now() + VANISH_GRACE, d));
        }
        let deadline = modem
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            ev = next_port_event(&mut port, &mut rbuf) => match ev? {
                Happened::Data(n) => modem.handle_input(Instant::now(), &rbuf[..n]),
                Happened::Closed | Happened::NewClient => modem.port_reset(Instant::now()),
            },
            _ = tokio::time::sleep_until(deadline) => modem.handle_timeout(Instant::now()),
            _ = sleep_until_opt(vanish_at.map(|v| v.0)) => {
                if let Some((_, d)) = vanish_at.take() {
                    tracing::info!("port vanishes for {}", humantime::format_duration(d));
                    port = None;
                    vanished_until = Some(tokio::time::Instant::from_std(after(Instant::now(), d)));
                }
            }
            _ = sleep_until_opt(vanished_until) => {
                vanished_until = None;
                let p = Port::open(&opts.listen).await?;
                tracing::info!("port back: {}", p.describe(&opts.listen));
                port = Some(p);
                modem.port_reset(Instant::now());
            }
            Some((req, answer)) = ctl_rx.recv() => {
                let resp = control(&mut modem, Instant::now(), req);
                let _ = answer.send(resp);
            }
            () = &mut shutdown => break,
        }
    }
    drop(port);
    tracing::info!("simulated modem stopped");
    Ok(())
}

async fn next_port_event(port: &mut Option<Port>, buf: &mut [u8]) -> io::Result<Happened> {
    match port {
        Some(p) => p.next(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn control(modem: &mut SimModem, now: Instant, req: ControlRequest) -> ControlResponse {
    modem.handle_timeout(now);
    match req {
        ControlRequest::Inject { from, text, order } => {
            let order = match order.as_deref().map(str::parse::<PartOrder>) {
                None => PartOrder::InOrder,
                Some(Ok(o)) => o,
                Some(Err(e)) => return ControlResponse::failed(e),
            };
            match modem.inject_mo(now, &from, &text, order) {
                Ok(n) => ControlResponse {
                    ok: true,
                    parts: Some(n),
                    ..ControlResponse::default()
                },
                Err(e) => ControlResponse::failed(e),
            }
        }
        ControlRequest::Fault { fault } => match fault.parse::<Fault>() {
            Ok(f) => {
                modem.set_fault(f);
                ControlResponse {
                    ok: true,
                    ..ControlResponse::default()
                }
            }
            Err(e) => ControlResponse::failed(e),
        },
        ControlRequest::Sent => ControlResponse {
            ok: true,
            sent: Some(
                modem
                    .sent()
                    .iter()
                    .map(|s| SentSummary {
                        mr: s.mr,
                        to: s.to(),
                        text: s.text(),
                        pdu: s.pdu_hex.clone(),
                        report: s.submit.status_report_request,
                    })
                    .collect(),
            ),
            ..ControlResponse::default()
        },
    }
}

/// The control socket; removed when dropped.
struct ControlSocket {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl ControlSocket {
    fn start(path: &Path, tx: mpsc::Sender<ControlMsg>) -> io::Result<Self> {
        if std::fs::symlink_metadata(path).is_ok() {
            std::fs::remove_file(path)?;
        }
        let listener = UnixListener::bind(path)?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let (rd, mut wr) = stream.into_split();
                    let mut lines = BufReader::new(rd).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let resp = match serde_json::from_str::<ControlRequest>(&line) {
                            Ok(req) => {
                                let (otx, orx) = oneshot::channel();
                                if tx.send((req, otx)).await.is_err() {
                                    return;
                                }
                                orx.await.unwrap_or_else(|_| {
                                    ControlResponse::failed("simulator stopped")
                                })
                            }
                            Err(e) => ControlResponse::failed(format!("bad request: {e}")),
                        };
                        let Ok(mut text) = serde_json::to_string(&resp) else {
                            return;
                        };
                        text.push('\n');
                        if wr.write_all(text.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Ok(Self {
            path: path.to_path_buf(),
            task,
        })
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}
