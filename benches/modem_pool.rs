//! Throughput of the modem pool against simulated modems that take 3 s per SMS
//! (a real modem's pace): messages per minute with 1, 2 and 4 modems, against
//! the ideal of 20 per minute per modem. Real time, so it takes about a minute.
//! Run with `cargo bench --bench modem_pool`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smsbridge::modem::{Job, MemoryWork, ModemConfig, Pool, PortSpec, SendOutcome, WorkEvent};
use smsbridge::pdu::{self, Address, Body, DataCoding, EncodeOptions, Submit, Tpdu, UserData};
use smsbridge::sim::{SimConfig, SimPort};

const PER_MODEM: usize = 6;
const SEND_DELAY: Duration = Duration::from_secs(3);

fn tpdu(i: usize) -> Vec<u8> {
    let t = Submit {
        reject_duplicates: false,
        status_report_request: true,
        reply_path: false,
        mr: 0,
        destination: Address::from_number("+4915112345678").unwrap(),
        pid: 0,
        dcs: DataCoding::GSM7,
        validity: None,
        user_data: UserData {
            header: None,
            body: Body::Data(Vec::new()),
        },
    };
    let part = pdu::segment(
        &t,
        &format!("benchmark message {i}"),
        0,
        &EncodeOptions::default(),
    )
    .unwrap()
    .remove(0);
    let mut b = Vec::new();
    Tpdu::Submit(part).encode(&mut b).unwrap();
    b
}

async fn run(modems: usize) -> (usize, Duration) {
    let configs = (0..modems)
        .map(|i| {
            let cfg = SimConfig {
                imsi: format!("2620100000000{i:02}"),
                send_delay: SEND_DELAY,
                noise_interval: Some(Duration::ZERO),
                ..SimConfig::default()
            };
            ModemConfig::new(
                format!("m{i}"),
                PortSpec::Sim(SimPort::new(format!("m{i}"), cfg, false)),
            )
        })
        .collect();
    let (work, mut events) = MemoryWork::accepting(Box::new(|_| true));
    let pool = Pool::start(configs, Arc::clone(&work));
    for i in 0..modems {
        let mut w = pool.watch(i).unwrap();
        while !w.borrow().ready {
            w.changed().await.unwrap();
        }
    }
    let total = modems * PER_MODEM;
    let start = Instant::now();
    for i in 0..total {
        work.push(Job {
            id: i as u64,
            tpdu: tpdu(i),
            smsc: None,
        });
    }
    let mut sent = 0;
    while sent < total {
        match events.recv().await {
            Some(WorkEvent::Done {
                outcome: SendOutcome::Submitted { .. },
                ..
            }) => sent += 1,
            Some(WorkEvent::Done { outcome, .. }) => panic!("{outcome:?}"),
            Some(_) => {}
            None => break,
        }
    }
    let elapsed = start.elapsed();
    pool.shutdown(Duration::from_secs(10)).await;
    (sent, elapsed)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("modems  messages  seconds  msg/min  ideal/min  of ideal");
    for modems in [1, 2, 4] {
        let (sent, elapsed) = rt.block_on(run(modems));
        let per_min = sent as f64 * 60.0 / elapsed.as_secs_f64();
        let ideal = modems as f64 * 60.0 / SEND_DELAY.as_secs_f64();
        println!(
            "{modems:>6}  {sent:>8}  {:>7.2}  {per_min:>7.2}  {ideal:>9.1}  {:>7.1}%",
            elapsed.as_secs_f64(),
            100.0 * per_min / ideal
        );
    }
}
