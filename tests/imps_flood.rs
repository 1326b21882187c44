//! A Login flood against `smsbridge run` as a process: 500 wrong IMPS logins
//! from 20 threads. The throttling answer shows, resident memory stays under
//! 64 MB, and a user on another address still logs in.

mod daemon_support;
mod imps_support;
mod sim_support;

use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use daemon_support::{Daemon, add_user, free_port, write_config};
use imps_support::{Answer, read, request};
use sim_support::{SimProcess, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// POSTs a CSP request from the local address `from`.
async fn post_from(from: &str, addr: SocketAddr, body: &[u8]) -> Answer {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{from}:0").parse().expect("address"))
        .expect("bind");
    let mut s = socket.connect(addr).await.expect("connect IMPS");
    let head = format!(
        "POST /imps HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.wv.csp+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out))
        .await
        .expect("an answer within 30 s")
        .expect("read");
    let status = String::from_utf8_lossy(&out[..12.min(out.len())])
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let i = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    read(status, &out[i + 4..])
}

fn login(user: &str, password: &str) -> Vec<u8> {
    request(
        None,
        &format!(
            "<Login-Request><UserID>{user}</UserID><ClientID><URL>flood</URL></ClientID><Password>{password}</Password></Login-Request>"
        ),
    )
}

#[test]
fn five_hundred_wrong_logins_are_throttled_in_bounded_memory() {
    let dir = TempDir::new("imps-flood");
    let sim = SimProcess::start(dir.path(), &[]);
    let imps: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (config, db, sip, status) = write_config(
        dir.path(),
        &[&sim.port],
        &format!("[imps]\nlisten = \"{imps}\"\n"),
    );
    add_user(&config, "wv:alice@sms.test", "secret", &[]);
    let daemon = Daemon::start(dir.path(), config, db, sip, status);
    let baseline = daemon.memory_kb("VmRSS").expect("VmRSS");

    let threads = 20;
    let gate = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let gate = Arc::clone(&gate);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                gate.wait();
                rt.block_on(async move {
                    let mut codes = Vec::new();
                    for i in 0..25 {
                        // Half at alice's account, half at made-up users.
                        let user = if i % 2 == 0 {
                            "wv:alice@sms.test".to_owned()
                        } else {
                            format!("wv:guess{t}x{i}@sms.test")
                        };
                        let a = post_from("127.0.0.1", imps, &login(&user, "wrong")).await;
                        codes.push((
                            a.code(),
                            a.text(&["Result", "Description"]).map(str::to_owned),
                        ));
                    }
                    codes
                })
            })
        })
        .collect();
    let answers: Vec<(Option<u16>, Option<String>)> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker"))
        .collect();
    assert_eq!(answers.len(), 500);
    let refused = answers.iter().filter(|(c, _)| *c == Some(409)).count();
    // Checks that waited too long for a turn at the password hash.
    let busy = answers
        .iter()
        .filter(|(c, d)| *c == Some(503) && d.as_deref().is_some_and(|d| d.starts_with("busy")))
        .count();
    let throttled = answers
        .iter()
        .filter(|(c, d)| {
            *c == Some(503)
                && d.as_deref()
                    .is_some_and(|d| d.starts_with("too many failed logins; try again in"))
        })
        .count();
    assert_eq!(refused + busy + throttled, 500, "{answers:?}");
    // Only the free attempts were admitted (20 failures from one address, and
    // the one after), plus one each time a doubling wait (2 s, 4 s, 8 s, …)
    // ran out while the flood went on.
    assert!(refused + busy <= 30, "{refused} checked, {busy} busy");
    assert!(throttled >= 470, "{throttled} throttled");

    let peak = daemon.memory_kb("VmHWM").expect("VmHWM");
    println!(
        "IMPS login flood: RSS {baseline} kB before, peak {peak} kB; {refused} checked, {busy} busy, {throttled} throttled"
    );
    assert!(peak < 64 * 1024, "peak RSS {peak} kB");

    // alice, from another address, is only held up by her own account's
    // wait, which is short; dave-like users elsewhere are not held up at all.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let a = rt.block_on(post_from(
        "127.0.0.2",
        imps,
        &login("wv:guess-free@sms.test", "x"),
    ));
    assert_eq!(
        a.code(),
        Some(409),
        "another address is checked, not throttled"
    );
    drop(daemon);
}
