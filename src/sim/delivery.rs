//! Mobile-terminated messages reaching the modem, as `AT+CNMI` and `AT+CSMS`
//! say (TS 27.005 §3.4.1, §3.4.4): stored and announced with `+CMTI`/`+CDSI`,
//! routed as `+CMT`/`+CDS` (acknowledged with `AT+CNMA` in phase 2+), buffered
//! while `<mode>` is 0, left at the network while storage is full, and the
//! routing switched off when an acknowledgement never comes.

use std::time::Instant;

use super::config::SimQuirk;
use super::log::LogEntry;
use super::modem::{SimModem, State, Urc};
use super::network::Mt;
use super::storage::{Mem, REC_READ, REC_UNREAD, Slot};
use super::text_mode;
use crate::pdu::{
    Address, Body, DataCoding, Deliver, Pdu, StatusReport, Tpdu, UserData, gsm7, to_hex,
};

impl SimModem {
    /// The SMSC address put in front of delivered PDUs.
    pub(super) fn smsc_address(&self) -> Option<Address> {
        Address::from_number(&self.smsc).ok()
    }

    fn pdu_line(&self, tpdu: Tpdu) -> Option<(usize, String)> {
        let pdu = Pdu {
            smsc: self.smsc_address(),
            tpdu,
        };
        let mut bytes = Vec::new();
        let len = pdu.encode(&mut bytes).ok()?;
        Some((len, to_hex(&bytes)))
    }

    fn can_receive(&self) -> bool {
        !matches!(self.state, State::Hung | State::Rebooting { .. }) && self.registered()
    }

    /// Whether a routed message still waits for `AT+CNMA` (or is queued to be
    /// written), so that the next one must wait (TS 27.005 §3.4.4).
    fn ack_busy(&self) -> bool {
        self.ack.is_some()
            || self
                .urcs
                .iter()
                .chain(self.tabuf.iter())
                .any(|u| u.ack.is_some())
    }

    /// Queues an SMS indication: held in the TA buffer while `<mode>` is 0.
    fn indicate(&mut self, text: String, ack: Option<Mt>) {
        let urc = Urc { text, ack };
        if self.set.cnmi[0] == 0 {
            self.tabuf.push_back(urc);
        } else {
            self.urcs.push_back(urc);
        }
    }

    pub(super) fn deliver(&mut self, now: Instant, mt: Mt) {
        if !self.can_receive() {
            return self.net.hold(mt);
        }
        match mt {
            Mt::Sms(d) => self.deliver_sms(now, d),
            Mt::Report(r) => self.deliver_report(now, r),
        }
    }

    fn deliver_sms(&mut self, now: Instant, d: Deliver) {
        let class = d.dcs.class();
        let mt = self.set.cnmi[1];
        let routed = match (mt, class) {
            (2, Some(2 | 3)) => false,
            (2, _) => true,
            (3, Some(3)) => true,
            _ => false,
        };
        let phase2 = self.set.csms == 1;
        if routed {
            if phase2 && self.ack_busy() {
                return self.net.hold(Mt::Sms(d));
            }
            let text = if self.set.cmgf == 1 {
                text_mode::cmt(self, &d)
            } else {
                let Some((len, hex)) = self.pdu_line(Tpdu::Deliver(d.clone())) else {
                    return;
                };
                format!("+CMT: ,{len}\r\n{hex}")
            };
            self.indicate(text, phase2.then_some(Mt::Sms(d)));
            return;
        }
        let mem = if class == Some(2) {
            Mem::Sm
        } else {
            self.set.mems[2]
        };
        self.store_sms(now, mem, d, mt >= 1);
    }

    /// Stores in `mem` (announcing with `+CMTI` if `announce`), or leaves the
    /// message at the network when `mem` is full.
    fn store_sms(&mut self, now: Instant, mem: Mem, d: Deliver, announce: bool) {
        let Some(slot) = Slot::new(
            REC_UNREAD,
            Pdu {
                smsc: self.smsc_address(),
                tpdu: Tpdu::Deliver(d.clone()),
            },
        ) else {
            return;
        };
        match self.store.store(mem, slot) {
            Some(i) => {
                let index = i + self.index_base();
                self.note(now, format!("SMS stored in {} at {index}", mem.name()));
                if announce {
                    self.indicate(format!("+CMTI: \"{}\",{index}", mem.name()), None);
                }
            }
            None => {
                self.note(
                    now,
                    format!("{} full: the SMS waits at the network", mem.name()),
                );
                self.net.hold(Mt::Sms(d));
            }
        }
    }

    fn deliver_report(&mut self, now: Instant, r: StatusReport) {
        match self.set.cnmi[3] {
            1 => {
                let phase2 = self.set.csms == 1;
                if phase2 && self.ack_busy() {
                    return self.net.hold(Mt::Report(r));
                }
                let text = if self.set.cmgf == 1 {
                    text_mode::cds(self, &r)
                } else {
                    let Some((len, hex)) = self.pdu_line(Tpdu::StatusReport(r.clone())) else {
                        return;
                    };
                    format!("+CDS: {len}\r\n{hex}")
                };
                self.indicate(text, phase2.then_some(Mt::Report(r)));
            }
            2 => self.store_report(now, r, true),
            _ => self.note(now, format!("status report mr={} dropped (<ds>=0)", r.mr)),
        }
    }

    fn store_report(&mut self, now: Instant, r: StatusReport, announce: bool) {
        let Some(slot) = Slot::new(
            REC_UNREAD,
            Pdu {
                smsc: self.smsc_address(),
                tpdu: Tpdu::StatusReport(r.clone()),
            },
        ) else {
            return;
        };
        match self.store.store(Mem::Sr, slot) {
            Some(i) => {
                let index = i + self.index_base();
                self.note(
                    now,
                    format!("status report mr={} stored in SR at {index}", r.mr),
                );
                if announce {
                    // EC25 firmware names the wrong memory (chan_quectel PR #75).
                    let mem = if self.profile.cdsi_says_sm {
                        "SM"
                    } else {
                        "SR"
                    };
                    self.indicate(format!("+CDSI: \"{mem}\",{index}"), None);
                }
            }
            None => {
                self.note(
                    now,
                    "SR full: the status report waits at the network".into(),
                );
                self.net.hold(Mt::Report(r));
            }
        }
    }

    /// Offers every held message again (after a slot was freed, an
    /// acknowledgement, a change of `AT+CNMI`, registration).
    pub(super) fn retry_held(&mut self, now: Instant) {
        if self.net.held_len() == 0 || !self.can_receive() {
            return;
        }
        for mt in self.net.take_held() {
            self.deliver(now, mt);
        }
    }

    /// `AT+CNMA` (or ESC at SIM800's prompt): the routed message is taken.
    pub(super) fn acknowledge(&mut self, now: Instant) -> bool {
        match self.ack.take() {
            Some(_) => {
                self.note(now, "routed message acknowledged".into());
                true
            }
            None => false,
        }
    }

    /// No `AT+CNMA` in time: like a real TA, set `<mt>` and `<ds>` to 0; the
    /// message is kept in storage without an indication, never lost.
    pub(super) fn ack_expired(&mut self, now: Instant) {
        let Some(w) = self.ack.take() else {
            return;
        };
        if self.quirk(SimQuirk::KeepRoutingOnMissedAck) {
            self.push_log(
                now,
                LogEntry::Event(
                    "no +CNMA in time: the modem acknowledged it itself; routing stays on".into(),
                ),
            );
            return;
        }
        self.set.cnmi[1] = 0;
        self.set.cnmi[3] = 0;
        self.push_log(
            now,
            LogEntry::Event(
                "no +CNMA in time: AT+CNMI <mt> and <ds> reset to 0, message kept in storage"
                    .into(),
            ),
        );
        match w.mt {
            Mt::Sms(d) => {
                let mem = self.set.mems[2];
                self.store_sms(now, mem, d, false);
            }
            Mt::Report(r) => self.store_report(now, r, false),
        }
    }

    /// The `StorageFull` fault: read filler messages in every free slot of `<mem3>`.
    pub(super) fn fill_storage(&mut self) {
        let mem = self.set.mems[2];
        let now = self.last_now;
        let scts = self.clock.timestamp(now);
        let Ok(from) = Address::alphanumeric("FILLER") else {
            return;
        };
        let mut n = 0;
        loop {
            let mut septets = Vec::new();
            if gsm7::encode_str(&format!("storage filler {n}"), &mut septets).is_err() {
                return;
            }
            let d = Deliver {
                more_messages: false,
                loop_prevention: false,
                status_report_indication: false,
                reply_path: false,
                originator: from.clone(),
                pid: 0,
                dcs: DataCoding::GSM7,
                scts,
                user_data: UserData {
                    header: None,
                    body: Body::Gsm7 {
                        septets,
                        shift: gsm7::Shift::default(),
                    },
                },
            };
            let pdu = Pdu {
                smsc: self.smsc_address(),
                tpdu: Tpdu::Deliver(d),
            };
            let Some(slot) = Slot::new(REC_READ, pdu) else {
                return;
            };
            if self.store.store(mem, slot).is_none() {
                break;
            }
            n += 1;
        }
        self.note(
            now,
            format!("{} filled with {n} filler message(s)", mem.name()),
        );
    }

    pub(super) fn note(&mut self, now: Instant, text: String) {
        self.push_log(now, LogEntry::Network(text));
    }
}
