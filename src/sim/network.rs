//! The simulated network behind the modem: it takes each accepted SMS-SUBMIT to a
//! simulated phone, which echoes, stays silent or cannot be reached; it sends
//! status reports when asked (except for a phone set to `no-report`), and it carries mobile-originated SMS (injected or
//! echoed) to the modem. Messages the modem cannot take yet wait here.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::clock::{Clock, after};
use super::config::{PartOrder, PhoneBehaviour, SimConfig, SimQuirk};
use super::error::SimError;
use super::rng::Rng;
use crate::pdu::{
    Address, Body, DataCoding, Deliver, EncodeOptions, Offer, PartKey, Reassembly, Status,
    StatusReport, Submit, Timestamp, UserData, join_text, segment,
};

/// A mobile-terminated message on its way to the modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Mt {
    Sms(Deliver),
    Report(StatusReport),
}

#[derive(Debug)]
enum Event {
    ToModem(Mt),
    Reply { from: String, text: String },
}

/// A phone's part collections never time out here: a phone keeps what it got.
const PHONE_REASSEMBLY: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug)]
pub(super) struct Network {
    events: BTreeMap<(Instant, u64), Event>,
    seq: u64,
    held: VecDeque<Mt>,
    phones: BTreeMap<String, PhoneBehaviour>,
    default_phone: PhoneBehaviour,
    template: String,
    report_delay: Duration,
    reply_delay: Duration,
    reassembly: Reassembly<Body>,
    concat_ref: u16,
    clock: Clock,
    rng: Rng,
    notes: Vec<String>,
    broken_report_zone: bool,
}

/// A number as people write it: `+` and digits when international.
pub(super) fn number_text(a: &Address) -> String {
    if a.is_international() {
        format!("+{}", a.value)
    } else {
        a.value.clone()
    }
}

impl Network {
    pub(super) fn new(cfg: &SimConfig, clock: Clock) -> Self {
        Self {
            events: BTreeMap::new(),
            seq: 0,
            held: VecDeque::new(),
            phones: cfg.phones.clone(),
            default_phone: cfg.default_phone,
            template: cfg.reply_template.clone(),
            report_delay: cfg.report_delay,
            reply_delay: cfg.reply_delay,
            reassembly: Reassembly::new(PHONE_REASSEMBLY),
            concat_ref: 0,
            clock,
            // A different stream from the modem's, from the same seed.
            rng: Rng::new(cfg.seed ^ 0x6e65_7477_6f72_6b00),
            notes: Vec::new(),
            broken_report_zone: cfg.quirks.contains(&SimQuirk::BrokenReportZone),
        }
    }

    /// A report's time stamp as this network writes it: with
    /// [`SimQuirk::BrokenReportZone`], a zone octet of 0xFF (not BCD).
    fn report_time(&self, at: Instant) -> Timestamp {
        let t = self.clock.timestamp(at);
        if !self.broken_report_zone {
            return t;
        }
        let mut octets = Vec::with_capacity(7);
        t.encode(&mut octets);
        let mut raw = [0u8; 7];
        raw.copy_from_slice(&octets[..7]);
        raw[6] = 0xFF;
        Timestamp::invalid(raw)
    }

    fn schedule(&mut self, at: Instant, event: Event) {
        self.seq += 1;
        self.events.insert((at, self.seq), event);
    }

    fn behaviour(&self, number: &str) -> PhoneBehaviour {
        let bare = number.trim_start_matches('+');
        self.phones
            .get(number)
            .or_else(|| {
                self.phones
                    .iter()
                    .find(|(k, _)| k.trim_start_matches('+') == bare)
                    .map(|(_, v)| v)
            })
            .copied()
            .unwrap_or(self.default_phone)
    }

    /// An SMS-SUBMIT the modem accepted at `now` with message reference `mr`.
    pub(super) fn submit(&mut self, now: Instant, submit: &Submit, mr: u8) {
        let to = number_text(&submit.destination);
        let behaviour = self.behaviour(&to);
        let text = submit.user_data.body.text().unwrap_or_default();
        let part = submit
            .user_data
            .concat()
            .map(|c| format!(" part {}/{}", c.seq, c.total))
            .unwrap_or_default();
        self.notes.push(format!(
            "submit mr={mr} to {to} ({behaviour:?}){part}: {text:?}"
        ));
        if submit.status_report_request && behaviour != PhoneBehaviour::NoReport {
            let status = match behaviour {
                PhoneBehaviour::Unreachable => Status::NO_RESPONSE_STOPPED,
                _ => Status::RECEIVED,
            };
            let at = after(now, self.report_delay);
            let report = StatusReport {
                more_messages: false,
                loop_prevention: false,
                qualifier_command: false,
                mr,
                recipient: submit.destination.clone(),
                scts: self.report_time(now),
                discharge_time: self.report_time(at),
                status,
                pid: None,
                dcs: None,
                user_data: None,
            };
            self.schedule(at, Event::ToModem(Mt::Report(report)));
        }
        if behaviour != PhoneBehaviour::Echo {
            return;
        }
        let whole = match PartKey::of(&as_deliver(submit, self.clock.timestamp(now))) {
            None => Some(join_text([&submit.user_data.body])),
            Some((key, seq)) => {
                match self
                    .reassembly
                    .offer(now, key, seq, submit.user_data.body.clone())
                {
                    Ok(Offer::Complete(bodies)) => Some(join_text(&bodies)),
                    Ok(_) => None,
                    Err(e) => {
                        self.notes.push(format!("phone {to} ignores a part: {e}"));
                        None
                    }
                }
            }
        };
        if let Some(text) = whole {
            let reply = self.template.replace("{text}", &text);
            self.schedule(
                after(now, self.reply_delay),
                Event::Reply {
                    from: to,
                    text: reply,
                },
            );
        }
    }

    /// A mobile-originated SMS from `from`, its parts handed to the modem at `now`
    /// in `order`. Returns how many parts.
    pub(super) fn inject(
        &mut self,
        now: Instant,
        from: &str,
        text: &str,
        order: PartOrder,
    ) -> Result<usize, SimError> {
        let mut parts = self.mo_parts(from, text, self.clock.timestamp(now))?;
        match order {
            PartOrder::InOrder => {}
            PartOrder::Reverse => parts.reverse(),
            PartOrder::Shuffled => self.rng.shuffle(&mut parts),
        }
        let n = parts.len();
        self.notes
            .push(format!("phone {from} sends {n} part(s): {text:?}"));
        for p in parts {
            self.schedule(now, Event::ToModem(Mt::Sms(p)));
        }
        Ok(n)
    }

    pub(super) fn mo_parts(
        &mut self,
        from: &str,
        text: &str,
        scts: Timestamp,
    ) -> Result<Vec<Deliver>, SimError> {
        let originator = Address::from_number(from)
            .or_else(|_| Address::alphanumeric(from))
            .map_err(|e| SimError::InvalidSender(from.to_string(), e.to_string()))?;
        let template = Submit {
            reject_duplicates: false,
            status_report_request: false,
            reply_path: false,
            mr: 0,
            destination: originator.clone(),
            pid: 0,
            dcs: DataCoding::GSM7,
            validity: None,
            user_data: UserData {
                header: None,
                body: Body::Data(Vec::new()),
            },
        };
        self.concat_ref = self.concat_ref.wrapping_add(1);
        let parts = segment(&template, text, self.concat_ref, &EncodeOptions::default())?;
        Ok(parts
            .iter()
            .map(|s| Deliver {
                originator: originator.clone(),
                ..as_deliver(s, scts)
            })
            .collect())
    }

    /// The next message due for the modem at `now`, if any. Phone replies that
    /// fall due are turned into their parts on the way.
    pub(super) fn next_due(&mut self, now: Instant) -> Option<Mt> {
        loop {
            let key = *self.events.keys().next()?;
            if key.0 > now {
                return None;
            }
            match self.events.remove(&key)? {
                Event::ToModem(mt) => return Some(mt),
                Event::Reply { from, text } => {
                    match self.mo_parts(&from, &text, self.clock.timestamp(key.0)) {
                        Ok(parts) => {
                            self.notes.push(format!(
                                "phone {from} replies in {} part(s): {text:?}",
                                parts.len()
                            ));
                            for p in parts {
                                self.schedule(key.0, Event::ToModem(Mt::Sms(p)));
                            }
                        }
                        Err(e) => self.notes.push(format!("phone {from} cannot reply: {e}")),
                    }
                }
            }
        }
    }

    #[must_use]
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.events.keys().next().map(|k| k.0)
    }

    /// Keeps a message the modem cannot take yet (storage full, waiting for an
    /// acknowledgement, not registered).
    pub(super) fn hold(&mut self, mt: Mt) {
        self.held.push_back(mt);
    }

    pub(super) fn take_held(&mut self) -> VecDeque<Mt> {
        std::mem::take(&mut self.held)
    }

    pub(super) fn held_len(&self) -> usize {
        self.held.len()
    }

    pub(super) fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }
}

/// An SMS-DELIVER with a submit's coding and user data (the originator is the
/// submit's destination until the caller sets it).
fn as_deliver(s: &Submit, scts: Timestamp) -> Deliver {
    Deliver {
        more_messages: false,
        loop_prevention: false,
        status_report_indication: false,
        reply_path: false,
        originator: s.destination.clone(),
        pid: s.pid,
        dcs: s.dcs,
        scts,
        user_data: s.user_data.clone(),
    }
}
