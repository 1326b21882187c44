//! A simulated modem inside the daemon or a test: the same [`SimModem`] behind an
//! in-memory pipe instead of a PTY. Each [`SimPort::connect`] is a new opening of
//! the port (the previous one is closed and the modem sees a port reset), so the
//! driver's reopen logic runs as it would on a USB modem. Uses tokio's clock, so a
//! paused test clock drives the modem's timers too.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::Notify;

use super::{Fault, PartOrder, SentSms, SimConfig, SimError, SimLog, SimModem};

/// A simulated modem that can be opened like a port.
#[derive(Clone)]
pub struct SimPort {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    modem: Mutex<SimModem>,
    wake: Notify,
    connection: AtomicU64,
    log: Mutex<Vec<SimLog>>,
    keep_log: bool,
    /// Unplugged until then: opening fails, as for a vanished /dev node.
    gone_until: Mutex<Option<tokio::time::Instant>>,
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl std::fmt::Debug for SimPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SimPort({})", self.inner.name)
    }
}

impl PartialEq for SimPort {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for SimPort {}

impl SimPort {
    /// A simulated modem named `name`. `keep_log` keeps its transcript for
    /// [`SimPort::log`] (tests); otherwise it only goes to the debug log.
    pub fn new(name: impl Into<String>, config: SimConfig, keep_log: bool) -> Self {
        Self {
            inner: Arc::new(Inner {
                name: name.into(),
                modem: Mutex::new(SimModem::new(config, now())),
                wake: Notify::new(),
                connection: AtomicU64::new(0),
                log: Mutex::new(Vec::new()),
                keep_log,
                gone_until: Mutex::new(None),
            }),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    fn modem(&self) -> Option<MutexGuard<'_, SimModem>> {
        self.inner.modem.lock().ok()
    }

    /// Opens the port: the modem is served on the returned stream until the next
    /// `connect` (which resets the port, as a re-plug would) or until the stream
    /// is dropped.
    pub fn connect(&self) -> std::io::Result<DuplexStream> {
        let gone = self.inner.gone_until.lock().ok().and_then(|g| *g);
        if gone.is_some_and(|t| tokio::time::Instant::now() < t) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is unplugged", self.inner.name),
            ));
        }
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        let id = self.inner.connection.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(mut m) = self.modem() {
            m.port_reset(now());
        }
        let port = self.clone();
        tokio::spawn(async move { port.serve(id, ours).await });
        Ok(theirs)
    }

    /// Pulls the plug: the open connection ends and the port cannot be opened for
    /// `duration`. The modem keeps its state (stored messages, MR counter), as a
    /// USB stick that re-enumerates does.
    pub fn unplug_for(&self, duration: Duration) {
        if let Ok(mut g) = self.inner.gone_until.lock() {
            *g = Some(tokio::time::Instant::now() + duration);
        }
        self.inner.connection.fetch_add(1, Ordering::SeqCst);
        self.inner.wake.notify_waiters();
    }

    async fn serve(self, id: u64, mut io: DuplexStream) {
        let mut rx = vec![0u8; 4096];
        let mut out = Vec::new();
        loop {
            if self.inner.connection.load(Ordering::SeqCst) != id {
                return;
            }
            let deadline = {
                let Some(mut m) = self.modem() else { return };
                while m.poll_output(&mut out) {}
                while let Some(l) = m.poll_log() {
                    tracing::debug!(sim = %self.inner.name, "{}", l.entry);
                    if self.inner.keep_log
                        && let Ok(mut log) = self.inner.log.lock()
                    {
                        log.push(l);
                    }
                }
                m.poll_timeout()
            };
            if !out.is_empty() {
                if io.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
            }
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                n = io.read(&mut rx) => match n {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if let Some(mut m) = self.modem() {
                            m.handle_input(now(), &rx[..n]);
                        }
                    }
                },
                () = sleep => {
                    if let Some(mut m) = self.modem() {
                        m.handle_timeout(now());
                    }
                }
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(3600)) => {}
            }
        }
    }

    /// A phone sends an SMS to this modem.
    pub fn inject_mo(&self, from: &str, text: &str, order: PartOrder) -> Result<usize, SimError> {
        let n = self
            .modem()
            .map_or(Ok(0), |mut m| m.inject_mo(now(), from, text, order))?;
        self.inner.wake.notify_waiters();
        Ok(n)
    }

    /// Turns on a fault.
    pub fn set_fault(&self, fault: Fault) {
        if let Some(mut m) = self.modem() {
            m.set_fault(fault);
        }
        self.inner.wake.notify_waiters();
    }

    /// Every SMS the modem accepted so far.
    pub fn sent(&self) -> Vec<SentSms> {
        self.modem().map(|m| m.sent().to_vec()).unwrap_or_default()
    }

    /// The transcript so far (with `keep_log`).
    pub fn log(&self) -> Vec<SimLog> {
        self.inner.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}
