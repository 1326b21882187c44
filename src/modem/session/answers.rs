//! How the session applies each answer: identity, SIM and PIN, capabilities and
//! the choice of `AT+CNMI`, registration, reads and listings.

use std::time::Instant;

use super::{Event, IdentityField, Op, Receipt, RegDomain, SIM_WAIT, SIM_WAIT_TRIES, Session};
use crate::modem::error::FinalError;
use crate::modem::parse;
use crate::modem::quirks;
use crate::pdu;

impl Session {
    /// Applies the answer of a finished op.
    pub(super) fn complete(
        &mut self,
        now: Instant,
        op: Op,
        lines: Vec<String>,
        result: Result<(), FinalError>,
    ) {
        use IdentityField::*;
        let first = lines.first().map(String::as_str);
        match op {
            Op::Identity(field) => {
                let value = identity_line(field, &lines)
                    .filter(|_| result.is_ok())
                    .map(identity_value);
                match field {
                    Manufacturer => self.info.manufacturer = value,
                    Model => {
                        self.info.model = value;
                        self.quirks = quirks::for_model(
                            self.info.manufacturer.as_deref().unwrap_or(""),
                            self.info.model.as_deref().unwrap_or(""),
                        );
                        self.info.quirks = self.quirks.name;
                        for cmd in self.quirks.init.iter().rev() {
                            self.queue.push_front(Op::Raw(cmd));
                        }
                    }
                    Revision => self.info.revision = value,
                    Imei => self.info.imei = value,
                    Imsi => self.info.imsi = value,
                }
            }
            Op::PinQuery => self.pin_state(now, first, result),
            Op::PinEnter => match result {
                Ok(()) => {
                    tracing::info!("SIM PIN accepted");
                    self.queue.push_front(Op::PinQuery);
                    self.not_before = Some(now + SIM_WAIT);
                }
                Err(e) => {
                    self.cfg.pin_rejected = true;
                    self.fatal(format!(
                        "SIM PIN rejected ({e}); not retrying: another wrong PIN could lock the SIM (PUK)"
                    ));
                }
            },
            Op::PduMode => {
                if let Err(e) = result {
                    self.fatal(format!("the modem refuses PDU mode (AT+CMGF=0: {e})"));
                }
            }
            Op::CsmsTest => {
                self.caps.csms = lines
                    .iter()
                    .find_map(|l| parse::groups(l, "+CSMS:"))
                    .and_then(|g| g.into_iter().next());
            }
            Op::CsmsSet => self.info.phase2_plus = result.is_ok(),
            Op::CpmsTest => self.caps.cpms = lines.iter().find_map(|l| parse::groups(l, "+CPMS:")),
            Op::CnmiTest => {
                self.caps.cnmi = lines.iter().find_map(|l| parse::groups(l, "+CNMI:"));
                self.caps.cnmi_candidates = self.cnmi_candidates();
            }
            Op::CnmiSet => self.cnmi_result(result),
            Op::CpmsSet => {
                if result.is_ok() {
                    self.read_mem = self.chosen_mem();
                }
            }
            Op::SelectMem(m) => {
                if result.is_ok() {
                    // `+CPMS: <used1>,<total1>,…`: an empty memory need not be listed.
                    let used = lines.iter().find_map(|l| parse::cpms_set_used(l));
                    let next_is_list =
                        matches!(self.queue.front(), Some(Op::List { mem }) if *mem == m);
                    if used == Some(0) && next_is_list {
                        self.queue.pop_front();
                    }
                    self.read_mem = Some(m);
                } else {
                    // Without the memory, the read/delete that needed it cannot run.
                    tracing::warn!("memory {m} cannot be selected; skipping what needed it");
                    if matches!(
                        self.queue.front(),
                        Some(Op::Read { .. } | Op::Delete { .. } | Op::List { .. })
                    ) {
                        self.queue.pop_front();
                    }
                }
            }
            Op::CscaQuery => self.info.smsc = lines.iter().find_map(|l| parse::csca(l)),
            Op::Reg(d) => {
                let stat = lines
                    .iter()
                    .find_map(|l| parse::registration(l, d.prefix(), true));
                match d {
                    RegDomain::Cs => self.info.creg = stat,
                    RegDomain::Ps => self.info.cgreg = stat,
                    RegDomain::Eps => self.info.cereg = stat,
                }
            }
            Op::Csq => {
                if let Some(dbm) = lines.iter().find_map(|l| parse::csq_dbm(l)) {
                    self.info.signal_dbm = dbm;
                }
            }
            Op::Cops => self.info.operator = lines.iter().find_map(|l| parse::cops_operator(l)),
            Op::CpmsQuery => {
                if let Some(s) = lines.iter().find_map(|l| parse::cpms_query(l)) {
                    self.info.storage = s;
                }
                self.unannounced_messages();
            }
            Op::CnmiQuery => self.check_routing(&lines),
            Op::Nack => {
                // +CMS ERROR: 340 (no acknowledgement expected) is the usual answer
                // at start-up: nothing was pending.
                if let Err(e) = result {
                    tracing::debug!("AT+CNMA=2: {e}");
                }
            }
            Op::Read { mem, index } => self.read_result(mem, index, &lines, result),
            Op::List { mem } => self.list_result(&mem, &lines),
            Op::Delete { mem, index } => {
                self.outstanding.remove(&(mem, index));
                if let Err(e) = result {
                    tracing::warn!("AT+CMGD={index} failed: {e}");
                }
            }
            Op::Ack => {
                // +CMS ERROR: 340, no acknowledgement expected: the TA gave up
                // waiting (we were slow to store it) and has switched routing
                // off (TS 27.005 §3.4.4). Set it again now, and sweep for what
                // it stored meanwhile, rather than at the next health round.
                if let Err(FinalError::Cms(e)) = &result
                    && e.code == Some(340)
                    && self.info.cnmi.is_some()
                {
                    tracing::warn!(
                        "AT+CNMA came too late (+CMS ERROR: 340): routing is off; setting AT+CNMI again"
                    );
                    self.queue.push_front(Op::CnmiSet);
                    if !self.sweeping() {
                        self.queue_sweep();
                    }
                }
            }
            Op::Probe | Op::Raw(_) | Op::CscaSet => {}
            Op::Submit { .. } | Op::InitDone | Op::HealthDone => {}
        }
    }

    pub(super) fn pin_state(
        &mut self,
        now: Instant,
        first: Option<&str>,
        result: Result<(), FinalError>,
    ) {
        let state = first
            .and_then(|l| parse::after(l, "+CPIN:"))
            .map(str::to_owned);
        match (state.as_deref(), result) {
            (Some("READY"), _) => self.info.sim = Some("READY".into()),
            (Some("SIM PIN"), _) => {
                self.info.sim = Some("SIM PIN".into());
                match (&self.cfg.pin, self.cfg.pin_rejected) {
                    (Some(_), false) => self.queue.push_front(Op::PinEnter),
                    (Some(_), true) => self.fatal("SIM PIN required; the configured PIN was rejected before and is not tried again".into()),
                    (None, _) => self.fatal("SIM PIN required (set the modem's pin in the configuration)".into()),
                }
            }
            (Some(other), _) => {
                self.info.sim = Some(other.to_owned());
                self.fatal(format!("SIM not usable: {other}"));
            }
            (None, Err(FinalError::Cme(e))) if e.code == Some(10) => {
                self.fatal("SIM not inserted".into())
            }
            // SIM busy (CME 14) and the like: the SIM is still starting.
            (None, Err(e)) => {
                tracing::info!("SIM not ready yet ({e}); asking again");
                self.wait_for_sim(now);
            }
            (None, Ok(())) => self.wait_for_sim(now),
        }
    }

    pub(super) fn wait_for_sim(&mut self, now: Instant) {
        self.sim_waits += 1;
        if self.sim_waits > SIM_WAIT_TRIES {
            self.fatal("SIM not ready after waiting".into());
            return;
        }
        self.queue.push_front(Op::PinQuery);
        self.not_before = Some(now + SIM_WAIT);
    }

    pub(super) fn read_result(
        &mut self,
        mem: String,
        index: u32,
        lines: &[String],
        result: Result<(), FinalError>,
    ) {
        if let Err(e) = result {
            tracing::warn!("AT+CMGR={index} on {mem}: {e}");
            return;
        }
        let pdu = lines
            .iter()
            .position(|l| parse::cmgr_length(l).is_some())
            .and_then(|i| lines.get(i + 1))
            .and_then(|l| pdu::from_hex(l).ok());
        match pdu {
            Some(pdu) => self.emit_stored(mem, index, pdu),
            None => tracing::info!("{mem} index {index} is empty"),
        }
    }

    pub(super) fn list_result(&mut self, mem: &str, lines: &[String]) {
        for (i, l) in lines.iter().enumerate() {
            let Some(index) = parse::cmgl_index(l) else {
                continue;
            };
            if self.outstanding.contains(&(mem.to_owned(), index)) {
                continue;
            }
            if let Some(pdu) = lines.get(i + 1).and_then(|h| pdu::from_hex(h).ok()) {
                self.emit_stored(mem.to_owned(), index, pdu);
            }
        }
    }

    /// After `AT+CPMS?`: storage holds more than what was handed up and not yet
    /// deleted, so messages or reports arrived that no URC announced (routing
    /// switched off, a `+CMTI` lost while the port was closed). Sweep now rather
    /// than at the next periodic sweep. Only once the session is ready: start-up
    /// ends with a sweep anyway.
    pub(super) fn unannounced_messages(&mut self) {
        if self.phase != super::Phase::Ready || self.sweeping() {
            return;
        }
        let waiting = self.info.storage.iter().find(|(mem, used, _)| {
            let handed_up = self.outstanding.iter().filter(|(m, _)| m == mem).count();
            *used as usize > handed_up
        });
        if let Some((mem, used, _)) = waiting {
            tracing::info!("{mem} holds {used} message(s) no URC announced; sweeping now");
            self.queue_sweep();
        }
    }

    /// After `AT+CNMI?` in a health round: if the TA switched routing off (a
    /// routed message went unacknowledged, TS 27.005 §3.4.4), set it again at once
    /// and sweep for what was stored meanwhile.
    pub(super) fn check_routing(&mut self, lines: &[String]) {
        let Some(want) = self.info.cnmi.clone() else {
            return;
        };
        let Some(have) = lines.iter().find_map(|l| parse::after(l, "+CNMI:")) else {
            return;
        };
        let nums = |c: &str| -> Vec<String> {
            c.split(',')
                .map(|v| v.trim().to_owned())
                .collect::<Vec<_>>()
        };
        let (want, have) = (nums(&want), nums(have));
        // <mt> and <ds> are what a TA resets; compare those.
        if want.get(1) != have.get(1) || want.get(3) != have.get(3) {
            tracing::warn!(
                "AT+CNMI is {} (routing switched off by the modem?); setting it again",
                have.join(",")
            );
            self.queue.push_front(Op::CnmiSet);
            if !self.sweeping() {
                self.queue_sweep();
            }
        }
    }

    pub(super) fn emit_stored(&mut self, mem: String, index: u32, pdu: Vec<u8>) {
        // Already handed up (a sweep and a +CMTI raced): handing it up again would
        // queue a second AT+CMGD, which could delete a new message in that slot.
        if !self.outstanding.insert((mem.clone(), index)) {
            return;
        }
        self.events.push_back(Event::Received {
            receipt: Receipt::Stored { mem, index },
            pdu,
        });
    }

    pub(super) fn mem_supported(&self, which: usize, mem: &str) -> bool {
        self.caps
            .cpms
            .as_ref()
            .and_then(|g| g.get(which))
            .is_some_and(|g| parse::has_word(g, mem))
    }

    /// The memory used for reading and receiving: SM where offered, else ME, else MT.
    pub(super) fn chosen_mem(&self) -> Option<String> {
        let cpms = self.caps.cpms.as_ref()?;
        ["SM", "ME", "MT"]
            .into_iter()
            .find(|m| cpms.iter().take(3).all(|g| parse::has_word(g, m)))
            .map(str::to_owned)
    }

    /// `AT+CNMI` settings to try, best first: store and announce messages (+CMTI,
    /// survives our crashes), route reports (+CDS) else store them (+CDSI), else
    /// none. Without an answer to `AT+CNMI=?`, ModemManager's fallback order.
    pub(super) fn cnmi_candidates(&self) -> Vec<String> {
        let Some(g) = self.caps.cnmi.as_ref().filter(|g| g.len() >= 4) else {
            return ["2,1,0,1,0", "2,1,0,2,0", "2,1,0,0,0", "1,1,0,0,0"]
                .into_iter()
                .filter(|c| self.cfg.status_reports || c.ends_with(",0,0"))
                .map(str::to_owned)
                .collect();
        };
        let pick =
            |i: usize, prefs: &[u32]| prefs.iter().copied().find(|&v| parse::allows(&g[i], v));
        let (Some(mode), Some(mt)) = (pick(0, &[2, 1, 3]), pick(1, &[1, 2, 3])) else {
            return Vec::new();
        };
        let bfr = g
            .get(4)
            .and_then(|b| [0, 1].into_iter().find(|&v| parse::allows(b, v)))
            .unwrap_or(0);
        let bm = if parse::allows(&g[2], 0) {
            0
        } else {
            pick(2, &[0, 1, 2, 3]).unwrap_or(0)
        };
        let mut ds_order = Vec::new();
        if self.cfg.status_reports {
            ds_order.push(1);
            if !self.quirks.stored_reports_unreadable {
                ds_order.push(2);
            }
        }
        ds_order.push(0);
        ds_order
            .into_iter()
            .filter(|&ds| parse::allows(&g[3], ds))
            .map(|ds| format!("{mode},{mt},{bm},{ds},{bfr}"))
            .collect()
    }

    pub(super) fn cnmi_result(&mut self, result: Result<(), FinalError>) {
        let tried = self
            .caps
            .cnmi_candidates
            .get(self.caps.cnmi_tried)
            .cloned()
            .or_else(|| self.cnmi_candidates().first().cloned());
        match result {
            Ok(()) => {
                if self.info.cnmi.is_none() {
                    self.info.cnmi = tried;
                }
            }
            Err(e) if self.info.cnmi.is_some() => {
                tracing::warn!("re-asserting AT+CNMI failed: {e}");
            }
            Err(e) => {
                self.caps.cnmi_tried += 1;
                if self.caps.cnmi_tried < self.caps.cnmi_candidates.len() {
                    tracing::info!(
                        "AT+CNMI={} refused ({e}); trying the next setting",
                        tried.unwrap_or_default()
                    );
                    self.queue.push_front(Op::CnmiSet);
                } else {
                    tracing::warn!(
                        "no AT+CNMI setting accepted; falling back to polling with AT+CMGL"
                    );
                }
            }
        }
    }
}

/// The line that answers an identity command: not a banner or URC that came in
/// the middle (`+CPIN: READY`, `Call Ready` — those the URC filter already took),
/// nor any other `+<name>:` line than the command's own.
fn identity_line(field: IdentityField, lines: &[String]) -> Option<&str> {
    use IdentityField::*;
    let own = match field {
        Manufacturer => "+CGMI:",
        Model => "+CGMM:",
        Revision => "+CGMR:",
        Imei => "+CGSN:",
        Imsi => "+CIMI:",
    };
    lines
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty() && (!l.starts_with(['+', '^']) || parse::after(l, own).is_some()))
}

/// The value of an identity answer, without a `+CGMI: ` style prefix some modems add.
fn identity_value(line: &str) -> String {
    for p in [
        "+CGMI:",
        "+CGMM:",
        "+CGMR:",
        "+CGSN:",
        "+CIMI:",
        "Manufacturer:",
        "Model:",
        "Revision:",
        "IMEI:",
    ] {
        if let Some(v) = parse::after(line, p) {
            return v.trim_matches('"').to_owned();
        }
    }
    line.trim_matches('"').to_owned()
}
