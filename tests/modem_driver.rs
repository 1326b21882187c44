//! The modem driver and pool against the simulated modem in process, on tokio's
//! paused clock: send and receive, faults (hang, reboot mid-send, CMS errors,
//! unplug, storage full) and a pool where one modem fails.

mod modem_support;

use std::sync::Arc;
use std::time::Duration;

use modem_support::{PHONE, tpdus};
use smsbridge::modem::{
    CmsClass, Job, MemoryWork, ModemConfig, ModemState, Pool, PortSpec, SendOutcome, WorkEvent,
};
use smsbridge::pdu::{self, Pdu, Tpdu};
use smsbridge::sim::{Fault, LogEntry, PartOrder, SimConfig, SimPort, SimQuirk};
use tokio::sync::mpsc::UnboundedReceiver;

fn sim(name: &str, cfg: SimConfig) -> (SimPort, ModemConfig) {
    let port = SimPort::new(name, cfg, true);
    let modem = ModemConfig::new(name, PortSpec::Sim(port.clone()));
    (port, modem)
}

fn sim_config() -> SimConfig {
    SimConfig {
        send_delay: Duration::from_secs(3),
        report_delay: Duration::from_secs(2),
        reply_delay: Duration::from_secs(4),
        ..SimConfig::default()
    }
}

async fn until_ready(pool: &Pool, i: usize) -> ModemState {
    let mut w = pool.watch(i).unwrap();
    loop {
        {
            let s = w.borrow_and_update();
            if s.ready && s.info.registered() {
                return s.clone();
            }
        }
        w.changed().await.unwrap();
    }
}

async fn until_not_ready(pool: &Pool, i: usize) -> ModemState {
    let mut w = pool.watch(i).unwrap();
    loop {
        {
            let s = w.borrow_and_update();
            if !s.ready {
                return s.clone();
            }
        }
        w.changed().await.unwrap();
    }
}

async fn next_done(events: &mut UnboundedReceiver<WorkEvent>) -> (u64, SendOutcome) {
    loop {
        match tokio::time::timeout(Duration::from_secs(600), events.recv()).await {
            Ok(Some(WorkEvent::Done { job, outcome, .. })) => return (job, outcome),
            Ok(Some(_)) => continue,
            _ => panic!("no outcome"),
        }
    }
}

async fn next_received(events: &mut UnboundedReceiver<WorkEvent>) -> Pdu {
    loop {
        match tokio::time::timeout(Duration::from_secs(600), events.recv()).await {
            Ok(Some(WorkEvent::Received { pdu, .. })) => return Pdu::decode(&pdu).unwrap(),
            Ok(Some(_)) => continue,
            _ => panic!("nothing received"),
        }
    }
}

/// Waits, in virtual time, for the simulator to log an entry `what`.
async fn until_logged(port: &SimPort, what: &str, found: impl Fn(&LogEntry) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !port.log().iter().any(|l| found(&l.entry)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the simulator never logged {what}: {:#?}",
            port.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn job(id: u64, tpdu: Vec<u8>) -> Job {
    Job {
        id,
        tpdu,
        smsc: None,
    }
}

#[tokio::test(start_paused = true)]
async fn sends_gets_the_report_and_the_echo_reply() {
    let (port, modem) = sim("m0", sim_config());
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![modem], Arc::clone(&work));
    let state = until_ready(&pool, 0).await;
    assert_eq!(
        state.info.imsi.as_deref(),
        Some(SimConfig::default().imsi.as_str())
    );
    for (i, t) in tpdus(PHONE, "Grüße 😁 from the pool", true)
        .into_iter()
        .enumerate()
    {
        work.push(job(i as u64, t));
    }
    assert_eq!(
        next_done(&mut events).await,
        (0, SendOutcome::Submitted { mr: 1 })
    );
    // The status report and the phone's echo arrive, in that order (2 s, 4 s).
    let report = next_received(&mut events).await;
    let Tpdu::StatusReport(r) = report.tpdu else {
        panic!("{report:?}")
    };
    assert_eq!(
        (r.mr, r.recipient.to_string(), r.status.0),
        (1, PHONE.to_owned(), 0)
    );
    let echo = next_received(&mut events).await;
    let Tpdu::Deliver(d) = echo.tpdu else {
        panic!("{echo:?}")
    };
    assert_eq!(d.originator.to_string(), PHONE);
    assert_eq!(d.user_data.body.text().unwrap(), "Grüße 😁 from the pool");
    // What the modem accepted is what we encoded.
    let sent = port.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].text().as_deref(), Some("Grüße 😁 from the pool"));
    pool.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_hung_modem_is_recovered_by_reopening_the_port() {
    let (_port, mut modem) = sim("m0", sim_config());
    modem.session.command_timeout = Duration::from_secs(10);
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![modem], Arc::clone(&work));
    until_ready(&pool, 0).await;
    _port.set_fault(Fault::HangAfter(0));
    let hung_at = tokio::time::Instant::now();
    work.push(job(1, tpdus(PHONE, "are you there", false).remove(0)));
    // No prompt: the part is reported not sent (ESC was sent), then the probe
    // gets no answer and the port is reopened, which clears the hang.
    let (id, outcome) = next_done(&mut events).await;
    let SendOutcome::Failed(e) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!((id, e.class()), (1, CmsClass::ModemState));
    let down = until_not_ready(&pool, 0).await;
    assert!(down.last_error.unwrap().contains("no answer to AT"));
    until_ready(&pool, 0).await;
    let recovered = hung_at.elapsed();
    // prompt timeout 5 s + probe timeout 10 s + reopen 0.5 s + start-up.
    assert!(
        recovered < Duration::from_secs(20),
        "recovered after {recovered:?}"
    );
    work.push(job(2, tpdus(PHONE, "are you there", false).remove(0)));
    assert!(matches!(
        next_done(&mut events).await,
        (2, SendOutcome::Submitted { .. })
    ));
    pool.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn a_reboot_after_the_pdu_left_is_outcome_unknown_never_resent() {
    let (port, modem) = sim("m0", sim_config());
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![modem], Arc::clone(&work));
    until_ready(&pool, 0).await;
    work.push(job(7, tpdus(PHONE, "mid-send reboot", false).remove(0)));
    // The network takes 3 s to answer; reboot as soon as the PDU is in.
    until_logged(
        &port,
        "the PDU ending in ^Z",
        |e| matches!(e, LogEntry::Data(d) if d.ends_with(" ^Z")),
    )
    .await;
    port.set_fault(Fault::Reboot);
    assert_eq!(
        next_done(&mut events).await,
        (7, SendOutcome::OutcomeUnknown)
    );
    until_ready(&pool, 0).await;
    // Half a minute of virtual time (health rounds included) to resend in:
    // the PDU went to the modem once, and the job is not back in the queue.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let log = port.log();
    let cmgs: Vec<&str> = log
        .iter()
        .filter_map(|l| match &l.entry {
            LogEntry::Command(c) if c.starts_with("AT+CMGS") => Some(c.as_str()),
            _ => None,
        })
        .collect();
    let pdus = log
        .iter()
        .filter(|l| matches!(&l.entry, LogEntry::Data(d) if d.ends_with(" ^Z")))
        .count();
    assert_eq!((cmgs.len(), pdus), (1, 1), "sent more than once: {cmgs:?}");
    assert!(work.is_empty());
    pool.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn cms_errors_are_classified_for_retry_or_failure() {
    let (port, modem) = sim("m0", sim_config());
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![modem], Arc::clone(&work));
    until_ready(&pool, 0).await;
    let t = tpdus(PHONE, "x", false).remove(0);
    for (code, class) in [
        (500, CmsClass::Transient),
        (42, CmsClass::Transient),
        (1, CmsClass::Permanent),
    ] {
        port.set_fault(Fault::CmsErrorRate {
            probability: 1.0,
            code,
        });
        work.push(job(u64::from(code), t.clone()));
        let (id, outcome) = next_done(&mut events).await;
        let SendOutcome::Failed(e) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!((id, e.class()), (u64::from(code), class), "{e}");
        assert!(
            e.to_string().starts_with(&format!("+CMS ERROR {code}:")),
            "{e}"
        );
    }
    // A retry once the network recovers goes through.
    port.set_fault(Fault::Clear);
    work.push(job(9, t));
    assert!(matches!(
        next_done(&mut events).await,
        (9, SendOutcome::Submitted { .. })
    ));
    pool.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn an_unplugged_modem_is_reopened_by_the_same_path_and_recognised() {
    let (port, modem) = sim("m0", sim_config());
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![modem], Arc::clone(&work));
    let before = until_ready(&pool, 0).await;
    port.unplug_for(Duration::from_secs(8));
    let down = until_not_ready(&pool, 0).await;
    assert!(
        down.last_error.as_deref().unwrap_or("").contains("closed"),
        "{down:?}"
    );
    let after = until_ready(&pool, 0).await;
    assert_eq!(after.info.imsi, before.info.imsi);
    // Messages that arrived while it was away are picked up.
    port.inject_mo(PHONE, "while you were out", PartOrder::InOrder)
        .unwrap();
    let got = next_received(&mut events).await;
    let Tpdu::Deliver(d) = got.tpdu else { panic!() };
    assert_eq!(d.user_data.body.text().unwrap(), "while you were out");
    pool.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn full_storage_drains_and_the_waiting_message_arrives() {
    let (port, modem) = sim("m0", sim_config());
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![modem], Arc::clone(&work));
    until_ready(&pool, 0).await;
    port.set_fault(Fault::StorageFull);
    port.inject_mo(PHONE, "the one that waited", PartOrder::InOrder)
        .unwrap();
    // The sweep hands up the stored (old) messages; each one is deleted once
    // taken, a slot frees, and the waiting message is delivered and read.
    loop {
        let p = next_received(&mut events).await;
        if let Tpdu::Deliver(d) = p.tpdu
            && d.user_data.body.text().as_deref() == Some("the one that waited")
        {
            break;
        }
    }
    pool.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn multipart_parts_out_of_order_are_all_handed_up() {
    let (port, modem) = sim("m0", sim_config());
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![modem], Arc::clone(&work));
    until_ready(&pool, 0).await;
    let text = "Ünïcödé ".repeat(30);
    let n = port.inject_mo(PHONE, &text, PartOrder::Reverse).unwrap();
    assert_eq!(n, 4);
    let mut parts = Vec::new();
    while parts.len() < n {
        if let Tpdu::Deliver(d) = next_received(&mut events).await.tpdu {
            parts.push(d);
        }
    }
    assert_eq!(parts[0].user_data.concat().unwrap().seq, 4);
    parts.sort_by_key(|d| d.user_data.concat().unwrap().seq);
    assert_eq!(
        pdu::join_text(parts.iter().map(|d| &d.user_data.body)),
        text
    );
    pool.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn one_unusable_modem_does_not_stop_the_other() {
    let (_a, bad) = sim(
        "locked",
        SimConfig {
            pin: Some("1234".into()),
            ..sim_config()
        },
    );
    let (b, good) = sim(
        "good",
        SimConfig {
            imsi: "262019999999999".into(),
            ..sim_config()
        },
    );
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![bad, good], Arc::clone(&work));
    for i in 0..4 {
        work.push(job(
            i,
            tpdus(PHONE, &format!("message {i}"), false).remove(0),
        ));
    }
    let mut done = Vec::new();
    while done.len() < 4 {
        let (id, outcome) = next_done(&mut events).await;
        assert!(
            matches!(outcome, SendOutcome::Submitted { .. }),
            "{outcome:?}"
        );
        done.push(id);
    }
    assert_eq!(b.sent().len(), 4);
    let states = pool.states();
    assert!(!states[0].ready);
    assert_eq!(
        states[0].last_error.as_deref(),
        Some("SIM PIN required (set the modem's pin in the configuration)")
    );
    pool.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test(start_paused = true)]
async fn an_unregistered_modem_gets_a_radio_cycle() {
    let (port, mut modem) = sim(
        "m0",
        SimConfig {
            registration: smsbridge::sim::Registration::Searching,
            ..sim_config()
        },
    );
    modem.unregistered_cycle = Duration::from_secs(180);
    let (work, _events) = MemoryWork::new();
    let pool = Pool::start(vec![modem], Arc::clone(&work));
    let mut w = pool.watch(0).unwrap();
    while !w.borrow().ready {
        w.changed().await.unwrap();
    }
    assert!(!w.borrow().info.registered());
    // Health rounds every 60 s see it unregistered; after 180 s the radio is
    // switched off and on, and registration is asked again.
    tokio::time::sleep(Duration::from_secs(300)).await;
    let commands: Vec<String> = port
        .log()
        .into_iter()
        .filter_map(|l| match l.entry {
            LogEntry::Command(c) => Some(c),
            _ => None,
        })
        .collect();
    let off = commands
        .iter()
        .position(|c| c == "AT+CFUN=0")
        .expect("radio off");
    assert_eq!(commands[off + 1], "AT+CFUN=1");
    assert!(commands[off + 2..].iter().any(|c| c == "AT+CREG?"));
    // Not cycled again and again: at most once per period.
    assert_eq!(commands.iter().filter(|c| *c == "AT+CFUN=0").count(), 1);
    pool.shutdown(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn a_modem_that_stays_silent_after_reopens_is_reset() {
    // A "modem" behind TCP that accepts and never answers, and records what it got.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 256];
                let mut got = String::new();
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    got.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
                let _ = tx.send(got);
            });
        }
    });
    let mut cfg = ModemConfig::new("dead", PortSpec::Tcp(addr.to_string()));
    cfg.session.command_timeout = Duration::from_millis(200);
    cfg.reopen_min = Duration::from_millis(50);
    cfg.reset_wait = Duration::from_millis(100);
    let (work, _events) = MemoryWork::new();
    let pool = Pool::start(vec![cfg], Arc::clone(&work));
    // Two sessions write ESC (a prompt an earlier process left open would
    // swallow everything else), then AT, and get nothing; the third opening
    // sends the reset, after its own ESC.
    let mut sessions = Vec::new();
    while sessions.len() < 3 {
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        sessions.push(got);
    }
    assert_eq!(sessions[0], "\x1bAT\r");
    assert_eq!(sessions[1], "\x1bAT\r");
    assert_eq!(sessions[2], "\x1bAT+CFUN=1,1\r");
    let state = pool.states().remove(0);
    assert!(!state.ready);
    pool.shutdown(Duration::from_secs(5)).await;
}

// Issue 12: a daemon killed between `AT+CMGS` and its PDU leaves the `> `
// prompt open on a modem that keeps it until ESC; the next process knows
// nothing of it. Its session writes ESC first, so its commands are not typed
// into the prompt: it starts, sends, and nothing was sent on the dead one's
// behalf.
#[tokio::test(start_paused = true)]
async fn a_prompt_left_open_by_a_killed_process_is_cancelled_by_the_next() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (port, modem) = sim(
        "m0",
        SimConfig {
            quirks: vec![SimQuirk::PromptUntilEsc],
            ..sim_config()
        },
    );
    // The killed process: it asked for the prompt, got it, and vanished.
    {
        let mut dead = port.connect().unwrap();
        dead.write_all(b"AT+CMGS=20\r").await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while !got.ends_with(b"> ") {
            let n = tokio::time::timeout(Duration::from_secs(5), dead.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_ne!(n, 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"AT+CMGS=20\r\r\n> ");
    }
    let (work, mut events) = MemoryWork::new();
    let pool = Pool::start(vec![modem], Arc::clone(&work));
    until_ready(&pool, 0).await;
    work.push(job(1, tpdus(PHONE, "after the crash", false).remove(0)));
    assert_eq!(
        next_done(&mut events).await,
        (1, SendOutcome::Submitted { mr: 1 })
    );
    let sent = port.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].text().as_deref(), Some("after the crash"));
    // The open prompt got nothing but the ESC; the new session's first
    // command came after it.
    let log: Vec<LogEntry> = port.log().into_iter().map(|l| l.entry).collect();
    let data: Vec<&LogEntry> = log
        .iter()
        .filter(|e| matches!(e, LogEntry::Data(_)))
        .collect();
    assert_eq!(data[0], &LogEntry::Data(" ESC".into()), "{log:#?}");
    let esc = log.iter().position(|e| e == data[0]).unwrap();
    let commands: Vec<&LogEntry> = log
        .iter()
        .filter(|e| matches!(e, LogEntry::Command(_)))
        .collect();
    assert_eq!(commands[0], &LogEntry::Command("AT+CMGS=20".into()));
    assert_eq!(commands[1], &LogEntry::Command("AT".into()));
    assert!(log.iter().position(|e| e == commands[1]).unwrap() > esc);
    pool.shutdown(Duration::from_secs(10)).await;
}
