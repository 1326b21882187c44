//! Issue 12, radio side: the modem driver against the simulated modem showing
//! real-modem behaviours (`SimQuirk`), on tokio's paused clock. A routed `+CDS`
//! left unacknowledged when the port closed, banners around answers, a reboot,
//! messages waiting in the memory we do not receive into, a status report with a
//! broken zone octet: after each, reports and messages keep arriving, bounded by
//! the reopen and not by the 5-minute sweep or the 10-minute CNMI refresh.

mod modem_support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modem_support::{PHONE, tpdus};
use smsbridge::modem::{
    BoxFuture, Job, JobId, MemoryWork, ModemConfig, ModemInfo, ModemState, Pool, PortSpec,
    SendOutcome, Work, WorkEvent,
};
use smsbridge::pdu::{Pdu, Tpdu};
use smsbridge::sim::{LogEntry, Model, PartOrder, PhoneBehaviour, SimConfig, SimPort, SimQuirk};
use tokio::sync::Notify;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::time::Instant;

/// The periodic sweep and CNMI refresh of `SessionConfig::default()`: recovery
/// must not wait for either.
const SWEEP: Duration = Duration::from_secs(300);

fn job(id: u64, to: &str, text: &str) -> Job {
    Job {
        id,
        tpdu: tpdus(to, text, true).remove(0),
        smsc: None,
    }
}

/// Silent phones (no echo replies to tell apart), reports after 2 s, a 30 s
/// acknowledgement timeout in the modem.
fn sim_config(quirks: &[SimQuirk]) -> SimConfig {
    SimConfig {
        send_delay: Duration::from_secs(1),
        report_delay: Duration::from_secs(2),
        ack_timeout: Duration::from_secs(30),
        default_phone: PhoneBehaviour::Silent,
        quirks: quirks.to_vec(),
        ..SimConfig::default()
    }
}

fn modem(port: &SimPort) -> ModemConfig {
    ModemConfig::new(port.name().to_owned(), PortSpec::Sim(port.clone()))
}

/// The modem's state once `cond` holds; fails if that takes a periodic sweep.
async fn state_when(pool: &Pool, cond: impl Fn(&ModemState) -> bool) -> ModemState {
    let mut w = pool.watch(0).unwrap();
    let waited = tokio::time::timeout(SWEEP, w.wait_for(|s| cond(s))).await;
    match waited {
        Ok(Ok(s)) => s.clone(),
        _ => panic!("the modem never got there: {:?}", pool.states()),
    }
}

async fn until_ready(pool: &Pool) -> ModemState {
    state_when(pool, |s| s.ready && s.info.registered()).await
}

/// The next received PDU, decoded; the wait is bounded by the test's caller.
async fn next_received(events: &mut UnboundedReceiver<WorkEvent>) -> Pdu {
    loop {
        match events.recv().await {
            Some(WorkEvent::Received { pdu, .. }) => return Pdu::decode(&pdu).unwrap(),
            Some(_) => continue,
            None => panic!("the pool stopped"),
        }
    }
}

/// What arrived, sorted into status report MRs and message texts, until `done`
/// says enough; fails if that takes as long as a periodic sweep.
async fn collect(
    port: &SimPort,
    events: &mut UnboundedReceiver<WorkEvent>,
    done: impl Fn(&[u8], &[String]) -> bool,
) -> (Vec<u8>, Vec<String>) {
    let (mut mrs, mut texts) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + SWEEP;
    while !done(&mrs, &texts) {
        let p = tokio::time::timeout_at(deadline, next_received(events))
            .await
            .unwrap_or_else(|_| {
                let log: Vec<_> = port.log().into_iter().map(|l| l.entry).collect();
                panic!("only reports {mrs:?} and messages {texts:?} arrived; modem log: {log:#?}")
            });
        match p.tpdu {
            Tpdu::StatusReport(r) => mrs.push(r.mr),
            Tpdu::Deliver(d) => texts.push(d.user_data.body.text().unwrap_or_default()),
            Tpdu::Submit(s) => panic!("a SUBMIT was handed up: {s:?}"),
        }
    }
    (mrs, texts)
}

fn sim_events(port: &SimPort) -> Vec<String> {
    port.log()
        .into_iter()
        .filter_map(|l| match l.entry {
            LogEntry::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}

/// A daemon that stops dead while storing a received PDU (SIGKILL, a hung
/// disk): the modem never gets its AT+CNMA. Sends like `MemoryWork`.
struct FrozenWork {
    queue: Mutex<VecDeque<Job>>,
    notify: Notify,
    received: UnboundedSender<Vec<u8>>,
}

impl FrozenWork {
    fn new(jobs: Vec<Job>) -> (Arc<Self>, UnboundedReceiver<Vec<u8>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let w = Self {
            queue: Mutex::new(jobs.into()),
            notify: Notify::new(),
            received: tx,
        };
        w.notify.notify_one();
        (Arc::new(w), rx)
    }
}

impl Work for FrozenWork {
    fn wait(&self, _modem: ModemInfo) -> BoxFuture<()> {
        let has_work = !self.queue.lock().unwrap().is_empty();
        Box::pin(async move {
            if !has_work {
                std::future::pending::<()>().await;
            }
        })
    }

    fn claim(&self, _modem: ModemInfo) -> BoxFuture<Option<Job>> {
        let job = self.queue.lock().unwrap().pop_front();
        Box::pin(async move { job })
    }

    fn done(&self, _modem: ModemInfo, _job: JobId, _outcome: SendOutcome) -> BoxFuture<()> {
        Box::pin(async {})
    }

    fn received(&self, _modem: ModemInfo, pdu: Vec<u8>) -> BoxFuture<bool> {
        let _ = self.received.send(pdu);
        Box::pin(std::future::pending())
    }
}

/// Sends one part with a report through a daemon that freezes on the routed
/// `+CDS`; returns once the report reached it, unacknowledged.
async fn leave_a_routed_report_unacknowledged(port: &SimPort) {
    let (work, mut got) = FrozenWork::new(vec![job(1, PHONE, "first")]);
    // The frozen daemon's pool is never shut down: its driver waits forever,
    // as a killed process would; the next opening of the port takes over.
    std::mem::forget(Pool::start(vec![modem(port)], work));
    let pdu = got.recv().await.expect("the +CDS reached the daemon");
    let Tpdu::StatusReport(r) = Pdu::decode(&pdu).unwrap().tpdu else {
        panic!("not a report: {pdu:?}")
    };
    assert_eq!(r.mr, 1);
}

/// After the reopen: the report left behind, a new report and a new SMS all
/// arrive; returns how long that took from the new daemon's start.
async fn everything_arrives_after_the_reopen(port: &SimPort) -> Duration {
    let started = Instant::now();
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![modem(port)], Arc::clone(&work));
    until_ready(&pool).await;
    work.push(job(2, PHONE, "second"));
    port.inject_mo("+4917000000001", "after the reopen", PartOrder::InOrder)
        .unwrap();
    let (mut mrs, texts) = collect(port, &mut events, |mrs, texts| {
        mrs.contains(&1) && mrs.contains(&2) && !texts.is_empty()
    })
    .await;
    let took = started.elapsed();
    mrs.sort_unstable();
    mrs.dedup();
    assert_eq!(mrs, [1, 2]);
    assert_eq!(texts, ["after the reopen"]);
    pool.shutdown(Duration::from_secs(10)).await;
    took
}

// The core of issue 12: the +CDS went unacknowledged, the modem switched
// routing off (TS 27.005 §3.4.4) and stored it in SR. The next daemon sets
// routing again at start-up and sweeps SR: nothing waits for a timer.
#[tokio::test(start_paused = true)]
async fn after_the_modem_switched_routing_off_reports_and_messages_arrive_at_reopen() {
    let port = SimPort::new("m0", sim_config(&[]), true);
    leave_a_routed_report_unacknowledged(&port).await;
    // The daemon stays dead past the modem's acknowledgement timeout.
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert!(
        sim_events(&port)
            .iter()
            .any(|e| e.starts_with("no +CNMA in time: AT+CNMI <mt> and <ds> reset to 0")),
        "{:?}",
        sim_events(&port)
    );
    let took = everything_arrives_after_the_reopen(&port).await;
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

// The daemon comes back before the modem gave up waiting for the AT+CNMA: the
// pending report is refused at start-up (AT+CNMA=2) and offered again at once,
// instead of blocking routing until the modem's own 30 s timeout switches it off.
#[tokio::test(start_paused = true)]
async fn a_report_still_waiting_for_its_ack_at_reopen_does_not_block_routing() {
    let port = SimPort::new("m0", sim_config(&[]), true);
    leave_a_routed_report_unacknowledged(&port).await;
    let took = everything_arrives_after_the_reopen(&port).await;
    // Less than the modem's acknowledgement timeout: nothing waited for it.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(
        !sim_events(&port)
            .iter()
            .any(|e| e.starts_with("no +CNMA in time")),
        "{:?}",
        sim_events(&port)
    );
}

// hw-tests' check, on the simulator: report routing survives a modem reset
// (AT+CFUN=1,1 loses AT+CNMI and AT+CSMS); with banners around the answers
// after the reboot, the model is still recognised.
#[tokio::test(start_paused = true)]
async fn report_routing_and_identity_survive_a_reset_with_banners() {
    let port = SimPort::new(
        "m0",
        SimConfig {
            model: Model::Sim800,
            ..sim_config(&[SimQuirk::BannersAroundAnswers])
        },
        true,
    );
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![modem(&port)], Arc::clone(&work));
    let state = until_ready(&pool).await;
    assert_eq!(state.info.manufacturer.as_deref(), Some("SIMCOM_Ltd"));
    assert_eq!(state.info.model.as_deref(), Some("SIMCOM_SIM800L"));
    assert_eq!(state.info.quirks, "simcom-sim800");
    work.push(job(1, PHONE, "before the reset"));
    assert_eq!(
        collect(&port, &mut events, |m, _| m.contains(&1)).await.0,
        [1]
    );
    let started = Instant::now();
    port.set_fault(smsbridge::sim::Fault::Reboot);
    // The session sees RDY and starts up again, routing included; the banners
    // come inside the identity answers this time. (A part handed over while
    // the modem is still rebooting fails "not sent", and MemoryWork does not
    // retry: wait for the new start-up.)
    let routing_again = |port: &SimPort| {
        let log = port.log();
        let rdy = log
            .iter()
            .position(|l| matches!(&l.entry, LogEntry::Urc(u) if u.contains("RDY")));
        rdy.is_some_and(|i| {
            log[i..]
                .iter()
                .any(|l| matches!(&l.entry, LogEntry::Command(c) if c == "AT+CNMI=2,1,0,1,0"))
        })
    };
    let until = Instant::now() + Duration::from_secs(60);
    while !routing_again(&port) {
        assert!(
            Instant::now() < until,
            "routing was not set again after RDY"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    state_when(&pool, |s| {
        s.info.quirks == "simcom-sim800" && s.info.registered()
    })
    .await;
    work.push(job(2, PHONE, "after the reset"));
    assert_eq!(
        collect(&port, &mut events, |m, _| m.contains(&2)).await.0,
        [2]
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    let log = port.log();
    let rdy = log
        .iter()
        .position(|l| matches!(&l.entry, LogEntry::Urc(u) if u.contains("RDY")))
        .expect("the modem rebooted");
    let cgmi = log[rdy..]
        .iter()
        .position(|l| matches!(&l.entry, LogEntry::Command(c) if c == "AT+CGMI"))
        .expect("identity asked again after the reboot");
    assert!(
        matches!(&log[rdy + cgmi + 1].entry, LogEntry::Response(r) if r.contains("Call Ready")),
        "{:?}",
        &log[rdy + cgmi + 1]
    );
    let state = pool.states().remove(0);
    assert_eq!(state.info.manufacturer.as_deref(), Some("SIMCOM_Ltd"));
    assert_eq!(state.info.model.as_deref(), Some("SIMCOM_SIM800L"));
    assert_eq!(state.info.quirks, "simcom-sim800");
    pool.shutdown(Duration::from_secs(10)).await;
}

// Receive memory ME only, slots from 1, and two unread messages on the SIM
// from before the daemon started: both are read (and deleted), and a new SMS
// into ME still arrives.
#[tokio::test(start_paused = true)]
async fn messages_waiting_in_the_other_memory_are_read_at_start() {
    let port = SimPort::new(
        "m0",
        SimConfig {
            unread_on_sim: vec![
                ("+4917000000001".into(), "waiting one".into()),
                ("+4917000000002".into(), "waiting two".into()),
            ],
            ..sim_config(&[SimQuirk::ReceiveMeOnly, SimQuirk::SlotsFromOne])
        },
        true,
    );
    let started = Instant::now();
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![modem(&port)], Arc::clone(&work));
    until_ready(&pool).await;
    port.inject_mo("+4917000000003", "new one", PartOrder::InOrder)
        .unwrap();
    let (_, mut texts) = collect(&port, &mut events, |_, t| t.len() == 3).await;
    texts.sort();
    assert_eq!(texts, ["new one", "waiting one", "waiting two"]);
    assert!(started.elapsed() < Duration::from_secs(30));
    // Deleted from the SIM (slots 1 and 2) once stored.
    let deleted = |port: &SimPort| {
        let log = port.log();
        ["AT+CMGD=1", "AT+CMGD=2"].map(|want| {
            log.iter()
                .any(|l| matches!(&l.entry, LogEntry::Command(c) if c == want))
        }) == [true, true]
    };
    let until = Instant::now() + Duration::from_secs(60);
    while !deleted(&port) {
        assert!(Instant::now() < until, "never deleted from SM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pool.shutdown(Duration::from_secs(10)).await;
}

// A service centre whose reports carry a zone octet that is not BCD: the report
// is decoded and acknowledged, so the next one is routed too.
#[tokio::test(start_paused = true)]
async fn reports_with_a_broken_zone_octet_are_taken_and_acknowledged() {
    let port = SimPort::new("m0", sim_config(&[SimQuirk::BrokenReportZone]), true);
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![modem(&port)], Arc::clone(&work));
    until_ready(&pool).await;
    work.push(job(1, PHONE, "one"));
    let report = next_received(&mut events).await;
    let Tpdu::StatusReport(r) = report.tpdu else {
        panic!("{report:?}")
    };
    assert_eq!((r.mr, r.status.0), (1, 0));
    assert!(!r.discharge_time.is_valid());
    work.push(job(2, PHONE, "two"));
    assert_eq!(
        collect(&port, &mut events, |m, _| m.contains(&2)).await.0,
        [2]
    );
    assert!(
        !sim_events(&port)
            .iter()
            .any(|e| e.starts_with("no +CNMA in time")),
    );
    pool.shutdown(Duration::from_secs(10)).await;
}

/// `MemoryWork` whose first store of a received PDU takes `delay` (a slow
/// disk): a routed report waits that long for its AT+CNMA.
struct SlowFirstStore {
    inner: Arc<MemoryWork>,
    delay: Duration,
    slowed: Mutex<bool>,
}

impl Work for SlowFirstStore {
    fn wait(&self, modem: ModemInfo) -> BoxFuture<()> {
        self.inner.wait(modem)
    }

    fn claim(&self, modem: ModemInfo) -> BoxFuture<Option<Job>> {
        self.inner.claim(modem)
    }

    fn done(&self, modem: ModemInfo, job: JobId, outcome: SendOutcome) -> BoxFuture<()> {
        self.inner.done(modem, job, outcome)
    }

    fn received(&self, modem: ModemInfo, pdu: Vec<u8>) -> BoxFuture<bool> {
        let first = !std::mem::replace(&mut *self.slowed.lock().unwrap(), true);
        let stored = self.inner.received(modem, pdu);
        let delay = if first { self.delay } else { Duration::ZERO };
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            stored.await
        })
    }
}

// The port stays open but one AT+CNMA comes after the modem's 30 s timeout:
// the TA has switched routing off without a word, and answers the late
// AT+CNMA with +CMS ERROR: 340. Routing is set again right then (not at the
// 10-minute refresh); the SMS stored meanwhile without +CMTI and the report
// the TA kept in SR are swept, and later reports are routed again.
#[tokio::test(start_paused = true)]
async fn routing_switched_off_while_the_port_is_open_is_set_again_at_the_late_ack() {
    let port = SimPort::new("m0", sim_config(&[]), true);
    let (inner, mut events) = MemoryWork::new();
    let work = Arc::new(SlowFirstStore {
        inner: Arc::clone(&inner),
        delay: Duration::from_secs(40),
        slowed: Mutex::new(false),
    });
    let pool = Pool::start(vec![modem(&port)], work);
    until_ready(&pool).await;
    inner.push(job(1, PHONE, "slowly stored"));
    assert_eq!(
        collect(&port, &mut events, |m, _| m.contains(&1)).await.0,
        [1]
    );
    // The modem gives up waiting for the AT+CNMA and switches routing off; an
    // SMS arriving now is stored without +CMTI.
    let routing_off = |port: &SimPort| {
        sim_events(port)
            .iter()
            .any(|e| e.starts_with("no +CNMA in time: AT+CNMI <mt> and <ds> reset to 0"))
    };
    let until = Instant::now() + Duration::from_secs(60);
    while !routing_off(&port) {
        assert!(Instant::now() < until, "{:?}", sim_events(&port));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let off_at = Instant::now();
    port.inject_mo(
        "+4917000000001",
        "while routing was off",
        PartOrder::InOrder,
    )
    .unwrap();
    // The late AT+CNMA (+CMS ERROR: 340) is followed at once by AT+CNMI.
    let restored = |port: &SimPort| {
        let log: Vec<_> = port.log().into_iter().map(|l| l.entry).collect();
        log.windows(3).any(|w| {
            matches!(&w[0], LogEntry::Command(c) if c == "AT+CNMA")
                && matches!(&w[1], LogEntry::Response(r) if r.contains("+CMS ERROR: 340"))
                && matches!(&w[2], LogEntry::Command(c) if c == "AT+CNMI=2,1,0,1,0")
        })
    };
    while !restored(&port) {
        assert!(
            Instant::now() < off_at + Duration::from_secs(60),
            "{:#?}",
            port.log().into_iter().map(|l| l.entry).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    inner.push(job(2, PHONE, "after routing came back"));
    let (mut mrs, texts) =
        collect(&port, &mut events, |m, t| m.contains(&2) && !t.is_empty()).await;
    mrs.sort_unstable();
    mrs.dedup();
    // Report 1 again (the TA kept it in SR), report 2 routed, the stored SMS.
    assert_eq!(mrs, [1, 2]);
    assert_eq!(texts, ["while routing was off"]);
    assert!(
        off_at.elapsed() < Duration::from_secs(60),
        "{:?}",
        off_at.elapsed()
    );
    pool.shutdown(Duration::from_secs(10)).await;
}
