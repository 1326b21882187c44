//! The thin tokio layer around a [`Session`]: it owns the port and the clock,
//! reopens the port when the modem stops answering or disappears, and asks a
//! [`Work`] source for parts to send whenever the modem can send. It makes no
//! protocol decisions.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::error::SubmitError;
use super::session::{Event, JobId, ModemInfo, Receipt, Session, SessionConfig};
use super::transport::{self, PortSpec};
use crate::pdu::Address;

/// A boxed future, for the [`Work`] trait.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One part to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The caller's id for it (an outbox part).
    pub id: JobId,
    /// SMS-SUBMIT TPDU without the SMSC field.
    pub tpdu: Vec<u8>,
    /// Service centre to name in the PDU (`None`: the SIM's).
    pub smsc: Option<Address>,
}

/// What became of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// `+CMGS: <mr>`.
    Submitted {
        /// TP-MR.
        mr: u8,
    },
    /// Not sent, or refused; `error.class()` says whether to retry.
    Failed(SubmitError),
    /// The PDU left and no answer came: never resend blindly (DESIGN rule 4).
    OutcomeUnknown,
}

/// What a modem worker reports about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModemState {
    /// The configured name.
    pub name: String,
    /// The port.
    pub port: String,
    /// Whether the port is open and the modem started up.
    pub ready: bool,
    /// What the modem told us (identity, registration, signal, …).
    pub info: ModemInfo,
    /// The last problem, in the modem's terms.
    pub last_error: Option<String>,
    /// The last problem is one that trying again will not fix without a
    /// person (SIM PIN required or rejected, no SIM): the driver still retries
    /// now and then, but a one-shot command can give up at once.
    pub needs_attention: bool,
}

/// The work a modem does: parts to send, and somewhere durable for what arrives.
/// Implemented by an in-memory queue for `smsbridge sms send`, and by the store
/// for the daemon.
pub trait Work: Send + Sync + 'static {
    /// Resolves when there may be a part for this modem to send. Must be
    /// cancel-safe: the driver drops it whenever something else happens.
    fn wait(&self, modem: ModemInfo) -> BoxFuture<()>;
    /// Takes the next part for this modem, if any. Awaited to the end, never
    /// cancelled, so a claim is never lost between the source and the modem.
    fn claim(&self, modem: ModemInfo) -> BoxFuture<Option<Job>>;
    /// The outcome of a job.
    fn done(&self, modem: ModemInfo, job: JobId, outcome: SendOutcome) -> BoxFuture<()>;
    /// A received PDU (SMSC field first). Resolve `true` once it is stored durably:
    /// only then is it deleted from the modem or acknowledged.
    fn received(&self, modem: ModemInfo, pdu: Vec<u8>) -> BoxFuture<bool>;
}

/// How one modem is driven.
#[derive(Debug, Clone)]
pub struct ModemConfig {
    /// A name for logs and status.
    pub name: String,
    /// Where it is.
    pub port: PortSpec,
    /// The AT conversation's settings.
    pub session: SessionConfig,
    /// First wait before reopening a port that failed; doubles up to `reopen_max`.
    pub reopen_min: Duration,
    /// Longest wait between reopen attempts.
    pub reopen_max: Duration,
    /// After a fatal SIM problem, how long before trying the modem again.
    pub fatal_retry: Duration,
    /// Ready but unregistered this long: cycle the radio (at most once per this
    /// period).
    pub unregistered_cycle: Duration,
    /// After this many reopens in a row that never got the modem started, reset
    /// it with the model's reset command and give it `reset_wait` to come back.
    pub reset_after_failures: u32,
    /// How long a reset modem gets to re-enumerate.
    pub reset_wait: Duration,
    /// Unix milliseconds of the driver loop's last turn, for a watchdog: it turns
    /// at least every [`HEARTBEAT`] while the task is alive and not stuck.
    pub heartbeat: Arc<AtomicU64>,
}

/// The longest the driver loop waits without turning (see `heartbeat`).
pub const HEARTBEAT: Duration = Duration::from_secs(20);

fn beat(h: &AtomicU64) {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    h.store(ms, Ordering::Relaxed);
}

impl ModemConfig {
    /// Defaults for a port.
    pub fn new(name: impl Into<String>, port: PortSpec) -> Self {
        Self {
            name: name.into(),
            port,
            session: SessionConfig::default(),
            reopen_min: Duration::from_millis(500),
            reopen_max: Duration::from_secs(30),
            fatal_retry: Duration::from_secs(300),
            unregistered_cycle: Duration::from_secs(300),
            reset_after_failures: 2,
            reset_wait: Duration::from_secs(20),
            heartbeat: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// Why a port session ended.
enum End {
    Shutdown,
    Reopen(String),
    Fatal(String),
}

fn now() -> std::time::Instant {
    // Honours a paused tokio test clock.
    tokio::time::Instant::now().into_std()
}

/// Runs one modem until `shutdown`: open, drive, reopen, forever. `state` is
/// updated as the modem's state changes.
pub async fn run<W: Work>(
    cfg: ModemConfig,
    work: Arc<W>,
    state: watch::Sender<ModemState>,
    shutdown: CancellationToken,
) {
    let mut backoff = cfg.reopen_min;
    let mut pin_rejected = cfg.session.pin_rejected;
    let mut known: Option<(Option<String>, Option<String>)> = None;
    let mut failures = 0u32;
    let mut reset: Option<&'static str> = Some("AT+CFUN=1,1");
    state.send_modify(|s| {
        s.name = cfg.name.clone();
        s.port = cfg.port.to_string();
    });
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        let port = tokio::select! {
            p = transport::open(&cfg.port) => p,
            () = shutdown.cancelled() => return,
        };
        let wait = match port {
            Err(e) => {
                let msg = format!("cannot open {}: {e}", cfg.port);
                tracing::warn!(modem = %cfg.name, "{msg}; retrying in {backoff:?}");
                state.send_modify(|s| {
                    s.ready = false;
                    s.last_error = Some(msg);
                });
                let w = backoff;
                backoff = (backoff * 2).min(cfg.reopen_max);
                w
            }
            Ok(mut port) => {
                tracing::info!(modem = %cfg.name, port = %cfg.port, "port open");
                if failures >= cfg.reset_after_failures
                    && let Some(cmd) = reset
                {
                    // The modem did not come back by reopening: reset it blindly
                    // (it may still obey) and give it time to re-enumerate. ESC
                    // first, as every session starts: a `> ` prompt left open
                    // would swallow the reset.
                    tracing::warn!(modem = %cfg.name, "{failures} reopens did not help; resetting with {cmd}");
                    let _ = port.write_all(format!("\x1b{cmd}\r").as_bytes()).await;
                    drop(port);
                    failures = 0;
                    state.send_modify(|s| s.last_error = Some(format!("modem reset ({cmd})")));
                    tokio::select! {
                        () = tokio::time::sleep(cfg.reset_wait) => {}
                        () = shutdown.cancelled() => return,
                    }
                    continue;
                }
                let mut session_cfg = cfg.session.clone();
                session_cfg.pin_rejected = pin_rejected;
                let mut session = Session::new(session_cfg, now());
                let end = drive(
                    &cfg,
                    &mut session,
                    port,
                    &work,
                    &state,
                    &shutdown,
                    &mut known,
                )
                .await;
                // Whatever the session still had in hand is reported, never lost.
                session.abort("the port closed");
                while let Some(ev) = session.poll_event() {
                    let info = session.info().clone();
                    match ev {
                        Event::SubmitFailed { job, error } => {
                            work.done(info, job, SendOutcome::Failed(error)).await
                        }
                        Event::OutcomeUnknown { job } => {
                            work.done(info, job, SendOutcome::OutcomeUnknown).await
                        }
                        Event::Submitted { job, mr } => {
                            work.done(info, job, SendOutcome::Submitted { mr }).await
                        }
                        _ => {}
                    }
                }
                pin_rejected |= session.pin_rejected();
                if session.was_ready() {
                    // Learned from the model; keep the last known one otherwise.
                    reset = session.reset_command();
                    failures = 0;
                }
                state.send_modify(|s| s.ready = false);
                match end {
                    End::Shutdown => return,
                    End::Reopen(why) => {
                        failures += 1;
                        tracing::warn!(modem = %cfg.name, "{why}; reopening {}", cfg.port);
                        state.send_modify(|s| {
                            s.last_error = Some(why);
                            s.needs_attention = false;
                        });
                        backoff = cfg.reopen_min;
                        backoff
                    }
                    End::Fatal(why) => {
                        state.send_modify(|s| {
                            s.last_error = Some(why);
                            s.needs_attention = true;
                        });
                        cfg.fatal_retry
                    }
                }
            }
        };
        // Sleep in short steps so the heartbeat keeps going while the port is away.
        let until = tokio::time::Instant::now() + wait;
        while tokio::time::Instant::now() < until {
            beat(&cfg.heartbeat);
            let step = until
                .saturating_duration_since(tokio::time::Instant::now())
                .min(HEARTBEAT);
            tokio::select! {
                () = tokio::time::sleep(step) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }
}

/// Drives one open port until it must be reopened, the modem is unusable, or
/// shutdown. On shutdown, an exchange in progress is allowed to finish (bounded by
/// the session's own timeouts).
async fn drive<W: Work>(
    cfg: &ModemConfig,
    s: &mut Session,
    mut port: Box<dyn transport::Port>,
    work: &Arc<W>,
    state: &watch::Sender<ModemState>,
    shutdown: &CancellationToken,
    known: &mut Option<(Option<String>, Option<String>)>,
) -> End {
    let mut rx = vec![0u8; 4096];
    let mut tx = Vec::with_capacity(512);
    let mut waiting: Option<BoxFuture<()>> = None;
    let mut stopping = false;
    let mut unregistered_since: Option<tokio::time::Instant> = None;
    loop {
        while let Some(ev) = s.poll_event() {
            match ev {
                Event::Ready(info) => {
                    let id = (info.imsi.clone(), info.imei.clone());
                    if let Some(prev) = known.as_ref().filter(|p| **p != id) {
                        tracing::warn!(modem = %cfg.name, "a different modem is now at {}: IMSI {:?} IMEI {:?} (was {:?} {:?})", cfg.port, id.0, id.1, prev.0, prev.1);
                    }
                    *known = Some(id);
                    state.send_modify(|st| {
                        st.ready = true;
                        st.info = *info;
                        st.last_error = None;
                        st.needs_attention = false;
                    });
                }
                Event::Status(info) => {
                    let t = tokio::time::Instant::now();
                    if info.registered() {
                        unregistered_since = None;
                    } else {
                        let since = *unregistered_since.get_or_insert(t);
                        if t - since >= cfg.unregistered_cycle {
                            tracing::warn!(modem = %cfg.name, "not registered for {:?}", t - since);
                            s.radio_cycle(now());
                            unregistered_since = Some(t);
                        }
                    }
                    state.send_modify(|st| st.info = *info);
                }
                Event::Submitted { job, mr } => {
                    work.done(s.info().clone(), job, SendOutcome::Submitted { mr })
                        .await;
                }
                Event::SubmitFailed { job, error } => {
                    state.send_modify(|st| st.last_error = Some(error.to_string()));
                    work.done(s.info().clone(), job, SendOutcome::Failed(error))
                        .await;
                }
                Event::OutcomeUnknown { job } => {
                    state.send_modify(|st| {
                        st.last_error = Some("no answer after the PDU was sent".into())
                    });
                    work.done(s.info().clone(), job, SendOutcome::OutcomeUnknown)
                        .await;
                }
                Event::Received { receipt, pdu } => {
                    if work.received(s.info().clone(), pdu).await {
                        s.confirm(now(), receipt);
                    } else {
                        s.release(now(), &receipt);
                        if receipt != Receipt::Unacknowledged {
                            tracing::warn!(modem = %cfg.name, "received PDU not stored; left on the modem for the next sweep");
                        }
                    }
                }
                Event::Fatal(why) => return End::Fatal(why),
                Event::Reopen(why) => return End::Reopen(why),
            }
        }
        // Events first: confirming a PDU queues a command, which must go out now.
        while s.poll_transmit(&mut tx) {
            if let Err(e) = port.write_all(&tx).await {
                return End::Reopen(format!("write to {} failed: {e}", cfg.port));
            }
            tx.clear();
        }
        if stopping && !s.is_busy() {
            return End::Shutdown;
        }
        if waiting.is_none() && !stopping && s.can_send() {
            waiting = Some(work.wait(s.info().clone()));
        }
        beat(&cfg.heartbeat);
        // Turn at least every HEARTBEAT, so a stuck driver is seen by the watchdog.
        let heartbeat = tokio::time::Instant::now() + HEARTBEAT;
        let deadline = Some(
            s.poll_timeout()
                .map(tokio::time::Instant::from_std)
                .map_or(heartbeat, |d| d.min(heartbeat)),
        );
        tokio::select! {
            // Input first: an answer already in the buffer must win over a
            // deadline that passed while we were busy.
            biased;
            n = port.read(&mut rx) => match n {
                Ok(0) => return End::Reopen(format!("{} closed (modem unplugged?)", cfg.port)),
                Ok(n) => s.handle_input(now(), &rx[..n]),
                Err(e) => return End::Reopen(format!("read from {} failed: {e}", cfg.port)),
            },
            () = wait_on(&mut waiting), if waiting.is_some() => {
                waiting = None;
                if s.can_send()
                    && let Some(job) = work.claim(s.info().clone()).await
                {
                    s.submit(now(), job.id, &job.tpdu, job.smsc.as_ref());
                }
            }
            () = sleep_until(deadline) => s.handle_timeout(now()),
            () = shutdown.cancelled(), if !stopping => {
                stopping = true;
                waiting = None;
            }
        }
    }
}

async fn wait_on(f: &mut Option<BoxFuture<()>>) {
    match f {
        Some(f) => f.await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
