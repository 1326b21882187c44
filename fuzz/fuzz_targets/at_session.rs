//! Any bytes from the line, cut anywhere, with time passing: the framer and the
//! session never panic, never loop forever, and keep their buffers bounded.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use smsbridge::modem::{Session, SessionConfig};

fuzz_target!(|input: (Vec<(u8, Vec<u8>)>, bool)| {
    let (chunks, with_pin) = input;
    let mut now = Instant::now();
    let cfg = SessionConfig {
        pin: with_pin.then(|| "1234".to_owned()),
        ..SessionConfig::default()
    };
    let mut s = Session::new(cfg, now);
    let mut out = Vec::new();
    for (step, bytes) in chunks {
        now += Duration::from_millis(u64::from(step) * 50);
        s.handle_timeout(now);
        s.handle_input(now, &bytes);
        // Work is offered whenever the session can take it.
        if s.can_send() {
            s.submit(now, u64::from(step), &[0x01, 0x00, 0x01, 0x91, 0x00, 0x00, 0x00], None);
        }
        while s.poll_transmit(&mut out) {}
        assert!(out.len() < 1 << 20, "output grows without bound");
        out.clear();
        while let Some(ev) = s.poll_event() {
            // Stored, or not (left on the modem / refused with AT+CNMA=2).
            if let smsbridge::modem::Event::Received { receipt, .. } = ev {
                if step % 3 == 0 {
                    s.release(now, &receipt);
                } else {
                    s.confirm(now, receipt);
                }
            }
        }
        let _ = s.poll_timeout();
    }
});
