//! Several modems as one pool: one task per modem, each pulling work when its
//! modem can send, so parts go to healthy, registered modems and a failing modem
//! does not hold up the others. [`MemoryWork`] is an in-memory work source for the
//! command line and benchmarks; the daemon's source is the store.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::driver::{self, BoxFuture, Job, ModemConfig, ModemState, SendOutcome, Work};
use super::session::{JobId, ModemInfo};

/// Running modems.
pub struct Pool {
    states: Vec<watch::Receiver<ModemState>>,
    heartbeats: Vec<Arc<std::sync::atomic::AtomicU64>>,
    tasks: Vec<JoinHandle<()>>,
    shutdown: CancellationToken,
}

impl Pool {
    /// Starts one task per modem, all taking work from `work`.
    pub fn start<W: Work>(configs: Vec<ModemConfig>, work: Arc<W>) -> Self {
        let shutdown = CancellationToken::new();
        let mut states = Vec::new();
        let mut tasks = Vec::new();
        let mut heartbeats = Vec::new();
        for cfg in configs {
            heartbeats.push(Arc::clone(&cfg.heartbeat));
            let (tx, rx) = watch::channel(ModemState {
                name: cfg.name.clone(),
                port: cfg.port.to_string(),
                ..ModemState::default()
            });
            states.push(rx);
            tasks.push(tokio::spawn(driver::run(
                cfg,
                Arc::clone(&work),
                tx,
                shutdown.child_token(),
            )));
        }
        Self {
            states,
            heartbeats,
            tasks,
            shutdown,
        }
    }

    /// How many modems.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether the pool has no modems.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// A check for a watchdog: every modem task is running and its loop turned
    /// within three heartbeats (it is not stuck on an await).
    pub fn liveness(&self) -> Arc<dyn Fn() -> bool + Send + Sync> {
        let handles: Vec<tokio::task::AbortHandle> =
            self.tasks.iter().map(|t| t.abort_handle()).collect();
        let beats = self.heartbeats.clone();
        let stale_after = 3 * driver::HEARTBEAT.as_millis() as u64;
        Arc::new(move || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let fresh = |b: &Arc<std::sync::atomic::AtomicU64>| {
                let last = b.load(std::sync::atomic::Ordering::Relaxed);
                last == 0 || now.saturating_sub(last) <= stale_after
            };
            handles.iter().all(|h| !h.is_finished()) && beats.iter().all(fresh)
        })
    }

    /// A snapshot of every modem's state.
    pub fn states(&self) -> Vec<ModemState> {
        self.states.iter().map(|s| s.borrow().clone()).collect()
    }

    /// A watch on modem `i`'s state.
    pub fn watch(&self, i: usize) -> Option<watch::Receiver<ModemState>> {
        self.states.get(i).cloned()
    }

    /// Whether any modem can send now.
    pub fn any_ready(&self) -> bool {
        self.states.iter().any(|s| {
            let s = s.borrow();
            s.ready && s.info.registered()
        })
    }

    /// Stops every modem, letting exchanges in progress finish, within `limit`.
    pub async fn shutdown(self, limit: Duration) {
        self.shutdown.cancel();
        let all = futures_join(self.tasks);
        if tokio::time::timeout(limit, all).await.is_err() {
            tracing::warn!("modems did not stop within {limit:?}");
        }
    }
}

async fn futures_join(tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        let _ = t.await;
    }
}

/// What happened to work handed to a [`MemoryWork`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkEvent {
    /// A job's outcome, and which modem had it.
    Done {
        /// The modem's IMSI (or name when unknown).
        modem: String,
        /// The job.
        job: JobId,
        /// What happened.
        outcome: SendOutcome,
    },
    /// A PDU that arrived.
    Received {
        /// The modem's IMSI (or name when unknown).
        modem: String,
        /// The PDU, SMSC field first.
        pdu: Vec<u8>,
    },
}

/// Which received PDUs a [`MemoryWork`] takes (and so lets the modem delete).
pub type Accept = Box<dyn Fn(&[u8]) -> bool + Send + Sync>;

/// An in-memory queue of parts; every outcome and received PDU is reported on a
/// channel. A received PDU the `accept` rule takes counts as stored once the
/// channel took it; others are left on the modem.
pub struct MemoryWork {
    queue: Mutex<VecDeque<Job>>,
    notify: Arc<Notify>,
    events: mpsc::UnboundedSender<WorkEvent>,
    accept: Accept,
}

impl MemoryWork {
    /// An empty queue that takes every received PDU, and the receiving end of its
    /// reports.
    pub fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<WorkEvent>) {
        Self::accepting(Box::new(|_| true))
    }

    /// An empty queue that takes the received PDUs `accept` says yes to; the others
    /// are reported but left on the modem.
    pub fn accepting(accept: Accept) -> (Arc<Self>, mpsc::UnboundedReceiver<WorkEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let w = Self {
            queue: Mutex::new(VecDeque::new()),
            notify: Arc::new(Notify::new()),
            events: tx,
            accept,
        };
        (Arc::new(w), rx)
    }

    /// Adds a part at the end of the queue.
    pub fn push(&self, job: Job) {
        if let Ok(mut q) = self.queue.lock() {
            q.push_back(job);
        }
        // notify_one keeps a permit when no modem waits, so no wake-up is lost.
        self.notify.notify_one();
    }

    /// Parts waiting.
    pub fn len(&self) -> usize {
        self.queue.lock().map_or(0, |q| q.len())
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn modem_id(info: &ModemInfo) -> String {
    info.imsi.clone().unwrap_or_else(|| "unknown".into())
}

impl Work for MemoryWork {
    fn wait(&self, _modem: ModemInfo) -> BoxFuture<()> {
        let has_work = !self.is_empty();
        let notify = Arc::clone(&self.notify);
        Box::pin(async move {
            if !has_work {
                notify.notified().await;
            }
        })
    }

    fn claim(&self, _modem: ModemInfo) -> BoxFuture<Option<Job>> {
        let job = self.queue.lock().ok().and_then(|mut q| q.pop_front());
        Box::pin(async move { job })
    }

    fn done(&self, modem: ModemInfo, job: JobId, outcome: SendOutcome) -> BoxFuture<()> {
        let _ = self.events.send(WorkEvent::Done {
            modem: modem_id(&modem),
            job,
            outcome,
        });
        Box::pin(async {})
    }

    fn received(&self, modem: ModemInfo, pdu: Vec<u8>) -> BoxFuture<bool> {
        let take = (self.accept)(&pdu);
        let reported = self
            .events
            .send(WorkEvent::Received {
                modem: modem_id(&modem),
                pdu,
            })
            .is_ok();
        let ok = take && reported;
        Box::pin(async move { ok })
    }
}
