//! `smsbridge sms send|listen`: one modem from the command line, without the
//! daemon or its database.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use super::modem::PortArgs;
use crate::config::Config;
use crate::modem::{CmsClass, Job, MemoryWork, SendOutcome, WorkEvent};
use crate::pdu::{
    self, Address, Body, DataCoding, Deliver, EncodeOptions, Offer, PartKey, Pdu, Reassembly,
    Submit, Tpdu, UserData,
};
use crate::store::normalise_msisdn;

#[derive(Debug, Args)]
pub(super) struct SendArgs {
    #[command(flatten)]
    port: PortArgs,
    /// Recipient: `+` and the number in E.164, `00` and the number, or a
    /// national number (with `numbers.default_country_code` from `--config`).
    #[arg(long)]
    to: String,
    /// Request status reports and wait for them.
    #[arg(long)]
    report: bool,
    /// How long to wait for status reports.
    #[arg(long, default_value = "180s", value_parser = humantime::parse_duration)]
    report_wait: Duration,
    /// The text (long texts are sent as concatenated parts).
    text: String,
}

#[derive(Debug, Args)]
pub(super) struct ListenArgs {
    #[command(flatten)]
    port: PortArgs,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
    /// Leave messages on the modem instead of deleting them once printed.
    #[arg(long)]
    keep: bool,
    /// How long to wait for the missing parts of a concatenated message.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    reassembly_timeout: Duration,
}

const TRANSIENT_RETRIES: u32 = 3;

/// Sends `args.text` to `args.to`, read as `contacts add` reads a number: E.164
/// with `+` or `00`, or national with `numbers.default_country_code` of the
/// configuration (when one is given).
pub(super) fn send(args: &SendArgs, config: Option<&PathBuf>) -> ExitCode {
    let country_code = match config.map(|p| Config::load(p)).transpose() {
        Ok(c) => c.and_then(|c| c.numbers.default_country_code),
        Err(e) => return super::invalid_input(e),
    };
    if args.text.is_empty() {
        return super::invalid_input("the text is empty: nothing to send");
    }
    let to = match normalise_msisdn(&args.to, country_code.as_deref()) {
        Ok(m) => m,
        Err(e) => return super::invalid_input(e),
    };
    let destination = match Address::from_number(to.as_str()) {
        Ok(a) => a,
        Err(e) => return super::invalid_input(e),
    };
    let template = Submit {
        reject_duplicates: false,
        status_report_request: args.report,
        reply_path: false,
        mr: 0,
        destination: destination.clone(),
        pid: 0,
        dcs: DataCoding::GSM7,
        validity: None,
        user_data: UserData {
            header: None,
            body: Body::Data(Vec::new()),
        },
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let reference = (std::process::id() ^ (nanos >> 8)) as u16;
    let parts = match pdu::segment(&template, &args.text, reference, &EncodeOptions::default()) {
        Ok(p) => p,
        Err(e) => return super::invalid_input(e),
    };
    let mut jobs = Vec::new();
    for p in parts {
        let mut tpdu = Vec::new();
        if let Err(e) = Tpdu::Submit(p).encode(&mut tpdu) {
            return super::invalid_input(e);
        }
        jobs.push(tpdu);
    }
    let cfg = match args.port.config() {
        Ok(c) => c,
        Err(e) => return super::invalid_input(e),
    };
    let Ok(rt) = super::runtime() else {
        return super::failure("cannot start the async runtime");
    };
    let total = jobs.len();
    rt.block_on(async move {
        // Only status reports for our recipient are taken off the modem.
        let recipient = destination.clone();
        let accept = Box::new(move |raw: &[u8]| {
            matches!(Pdu::decode(raw), Ok(Pdu { tpdu: Tpdu::StatusReport(r), .. }) if r.recipient == recipient)
        });
        let (work, mut events) = MemoryWork::accepting(accept);
        let (pool, _) = match super::modem::start(cfg, work.clone(), args.port.timeout()).await {
            Ok(x) => x,
            Err((pool, e)) => {
                pool.shutdown(super::modem::STARTUP_FAILED_STOP).await;
                return super::failure(&e);
            }
        };
        for (i, tpdu) in jobs.iter().enumerate() {
            work.push(Job {
                id: i as u64,
                tpdu: tpdu.clone(),
                smsc: None,
            });
        }
        let mut mrs: BTreeMap<u8, usize> = BTreeMap::new();
        // Reports from the moment the first part is submitted: part 1's report
        // often comes while later parts are still being sent.
        let mut early: Vec<Vec<u8>> = Vec::new();
        let mut attempts = vec![0u32; total];
        let mut failed = false;
        let mut settled = 0;
        // Bounded: a modem that stops answering or loses its SIM must not leave
        // the command waiting forever.
        let deadline = tokio::time::Instant::now() + args.port.timeout() + Duration::from_secs(90 * total as u64);
        while settled < total {
            let Ok(Some(ev)) = tokio::time::timeout_at(deadline, events.recv()).await else {
                println!("gave up after {:?}: {} of {total} parts settled", args.port.timeout() + Duration::from_secs(90 * total as u64), settled);
                failed = true;
                break;
            };
            let (job, outcome) = match ev {
                WorkEvent::Done { job, outcome, .. } => (job, outcome),
                WorkEvent::Received { pdu, .. } => {
                    early.push(pdu);
                    continue;
                }
            };
            let i = job as usize;
            match outcome {
                SendOutcome::Submitted { mr } => {
                    println!("part {}/{total}: submitted, MR {mr}", i + 1);
                    mrs.insert(mr, i);
                    settled += 1;
                }
                SendOutcome::Failed(e) if e.class() != CmsClass::Permanent && attempts[i] < TRANSIENT_RETRIES => {
                    attempts[i] += 1;
                    let wait = Duration::from_secs(2u64 << attempts[i]);
                    eprintln!("part {}/{total}: {e}; retrying in {wait:?}", i + 1);
                    tokio::time::sleep(wait).await;
                    work.push(Job {
                        id: job,
                        tpdu: jobs[i].clone(),
                        smsc: None,
                    });
                }
                SendOutcome::Failed(e) => {
                    println!("part {}/{total}: failed: {e}", i + 1);
                    failed = true;
                    settled += 1;
                }
                SendOutcome::OutcomeUnknown => {
                    println!("part {}/{total}: outcome unknown (no answer after the PDU was sent; not resent)", i + 1);
                    failed = true;
                    settled += 1;
                }
            }
        }
        if args.report && !failed {
            failed = !wait_reports(&mut events, early, &mrs, &destination, total, args.report_wait).await;
        }
        pool.shutdown(Duration::from_secs(10)).await;
        if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
    })
}

/// Prints the status report of each part, those that came while parts were
/// still being sent (`early`) first; `true` if every part was delivered.
async fn wait_reports(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<WorkEvent>,
    early: Vec<Vec<u8>>,
    mrs: &BTreeMap<u8, usize>,
    recipient: &Address,
    total: usize,
    limit: Duration,
) -> bool {
    let mut pending: HashSet<u8> = mrs.keys().copied().collect();
    let mut all_delivered = true;
    let deadline = tokio::time::Instant::now() + limit;
    let mut early = early.into_iter();
    while !pending.is_empty() {
        let pdu = match early.next() {
            Some(pdu) => pdu,
            None => match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(WorkEvent::Received { pdu, .. })) => pdu,
                Ok(Some(_)) => continue,
                _ => break,
            },
        };
        let Ok(Pdu {
            tpdu: Tpdu::StatusReport(r),
            ..
        }) = Pdu::decode(&pdu)
        else {
            continue;
        };
        if r.recipient.value != recipient.value || !pending.contains(&r.mr) {
            continue;
        }
        let i = mrs.get(&r.mr).copied().unwrap_or(0);
        if r.status.outcome() == pdu::Outcome::StillTrying {
            // Not final: the service centre keeps trying; wait for the next report.
            println!(
                "part {}/{total}: still trying (status {:#04x})",
                i + 1,
                r.status.0
            );
            continue;
        }
        pending.remove(&r.mr);
        let outcome = match r.status.outcome() {
            pdu::Outcome::Delivered => "delivered",
            pdu::Outcome::StillTrying => "still trying",
            pdu::Outcome::Failed => "failed",
        };
        if r.status.outcome() != pdu::Outcome::Delivered {
            all_delivered = false;
        }
        println!(
            "part {}/{total}: {outcome} (status {:#04x} at {})",
            i + 1,
            r.status.0,
            r.discharge_time
        );
    }
    for mr in &pending {
        let i = mrs.get(mr).copied().unwrap_or(0);
        println!("part {}/{total}: no status report within {limit:?}", i + 1);
    }
    all_delivered && pending.is_empty()
}

pub(super) fn listen(args: &ListenArgs) -> ExitCode {
    let cfg = match args.port.config() {
        Ok(c) => c,
        Err(e) => return super::invalid_input(e),
    };
    let Ok(rt) = super::runtime() else {
        return super::failure("cannot start the async runtime");
    };
    let keep = args.keep;
    rt.block_on(async move {
        let (work, mut events) = MemoryWork::accepting(Box::new(move |_| !keep));
        let (pool, state) = match super::modem::start(cfg, work, args.port.timeout()).await {
            Ok(x) => x,
            Err((pool, e)) => {
                pool.shutdown(super::modem::STARTUP_FAILED_STOP).await;
                return super::failure(&e);
            }
        };
        eprintln!(
            "listening on {} ({}); Ctrl-C to stop",
            state.port,
            state.info.receive_mode()
        );
        let mut reassembly: Reassembly<Deliver> = Reassembly::new(args.reassembly_timeout);
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        loop {
            let timer = reassembly
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            tokio::select! {
                ev = events.recv() => {
                    let Some(WorkEvent::Received { pdu, .. }) = ev else {
                        if ev.is_none() { break; }
                        continue;
                    };
                    // With --keep the sweep hands the same PDU up again: print it once.
                    if !seen.insert(pdu.clone()) {
                        continue;
                    }
                    print_received(&pdu, &mut reassembly, args.json);
                }
                () = sleep_until(timer) => {
                    for inc in reassembly.expire(Instant::now()) {
                        let parts: Vec<Deliver> = inc.parts.into_iter().map(|(_, d)| d).collect();
                        print_message(&parts, inc.key.total, true, args.json);
                    }
                }
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        pool.shutdown(Duration::from_secs(10)).await;
        ExitCode::SUCCESS
    })
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

fn print_received(raw: &[u8], reassembly: &mut Reassembly<Deliver>, as_json: bool) {
    match Pdu::decode(raw) {
        Ok(Pdu {
            tpdu: Tpdu::Deliver(d),
            ..
        }) => match PartKey::of(&d) {
            None => print_message(&[d], 1, false, as_json),
            Some((key, seq)) => {
                let total = key.total;
                match reassembly.offer(Instant::now(), key, seq, d) {
                    Ok(Offer::Complete(parts)) => print_message(&parts, total, false, as_json),
                    Ok(_) => {}
                    Err(e) => eprintln!("ignored a part: {e}"),
                }
            }
        },
        Ok(Pdu {
            tpdu: Tpdu::StatusReport(r),
            ..
        }) => {
            if as_json {
                println!(
                    "{}",
                    json!({"type": "status-report", "recipient": r.recipient.to_string(), "mr": r.mr,
                           "status": r.status.0, "discharge_time": r.discharge_time.to_string()})
                );
            } else {
                println!(
                    "status report for {} (MR {}): status {:#04x} at {}",
                    r.recipient, r.mr, r.status.0, r.discharge_time
                );
            }
        }
        Ok(Pdu {
            tpdu: Tpdu::Submit(_),
            ..
        }) => {}
        Err(e) => eprintln!("undecodable PDU {}: {e}", pdu::to_hex(raw)),
    }
}

fn print_message(parts: &[Deliver], total: u8, incomplete: bool, as_json: bool) {
    let Some(first) = parts.first() else { return };
    let text = pdu::join_text(parts.iter().map(|d| &d.user_data.body));
    if as_json {
        println!(
            "{}",
            json!({"type": "sms", "from": first.originator.to_string(), "timestamp": first.scts.to_string(),
                   "text": text, "parts": total, "incomplete": incomplete})
        );
    } else {
        let note = if incomplete {
            format!(" [incomplete: {} of {total} parts]", parts.len())
        } else {
            String::new()
        };
        println!("{} {}{note}: {text}", first.scts, first.originator);
    }
}
