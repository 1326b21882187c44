//! Power and radio: reboots (the port goes quiet, then `RDY`, settings lost),
//! the model's unsolicited noise, and the SIM, registration and signal state the
//! commands read.

use std::time::Instant;

use super::clock::after;
use super::config::SimQuirk;
use super::modem::{SimModem, SimState, State};

impl SimModem {
    pub(super) fn sim_at_power_up(&self) -> SimState {
        match self.sim {
            SimState::NeedPuk | SimState::Blocked => self.sim,
            _ if self.cfg.pin.is_some() => SimState::NeedPin,
            _ => SimState::Ready,
        }
    }

    pub(super) fn reboot(&mut self, now: Instant, why: &str) {
        self.event(now, format!("reboot ({why})"));
        if let Some(w) = self.ack.take() {
            self.net.hold(w.mt);
        }
        for u in self.urcs.drain(..).chain(self.tabuf.drain(..)) {
            if let Some(mt) = u.ack {
                self.net.hold(mt);
            }
        }
        self.state = State::Rebooting {
            until: after(now, self.cfg.reboot_delay),
        };
        self.input.clear();
        self.line.clear();
        self.resp.clear();
        self.set = self.fresh_settings();
        self.sim = self.sim_at_power_up();
        self.radio_on = true;
        self.noise_next = None;
    }

    pub(super) fn boot_done(&mut self, now: Instant) {
        self.state = State::Idle;
        self.event(now, "boot complete".into());
        self.queue_urc("RDY".into(), None);
        if self.quirk(SimQuirk::BannersAroundAnswers) {
            self.queue_banners();
        } else {
            let cpin = self.cpin_text();
            for l in self.profile.boot_lines {
                self.queue_urc(l.replace("{cpin}", cpin), None);
            }
        }
        self.start_noise(now);
    }

    pub(super) fn start_noise(&mut self, now: Instant) {
        if !(self.profile.huawei || self.profile.quectel) {
            return;
        }
        let every = self
            .cfg
            .noise_interval
            .unwrap_or(self.profile.noise_interval);
        self.noise_next = (!every.is_zero()).then(|| after(now, every));
    }

    pub(super) fn noise_tick(&mut self, now: Instant) {
        self.noise_next = None;
        self.start_noise(now);
        if !self.set.noise || matches!(self.state, State::Hung | State::Rebooting { .. }) {
            return;
        }
        self.noise_count += 1;
        let rssi = self.rssi();
        let text = if self.profile.quectel {
            format!("+QIND: \"csq\",{rssi},99")
        } else {
            match self.noise_count % 3 {
                1 => format!("^RSSI:{rssi}"),
                2 => "^HCSQ:\"LTE\",60,52,106,24".to_string(),
                _ => "^MODE:7,17".to_string(),
            }
        };
        self.queue_urc(text, None);
    }

    /// Huawei: `^RSSI` between the information lines and the final result of
    /// every other response that has information lines.
    pub(super) fn noise_inside_response(&mut self) {
        if self.profile.huawei && self.set.noise {
            self.noise_count += 1;
            if self.noise_count.is_multiple_of(2) {
                let rssi = self.rssi();
                self.resp.push_str(&format!("\r\n^RSSI:{rssi}\r\n"));
            }
        }
    }

    pub(super) fn cpin_text(&self) -> &'static str {
        match self.sim {
            SimState::Ready => "READY",
            SimState::NeedPin => "SIM PIN",
            SimState::NeedPuk => "SIM PUK",
            SimState::Blocked => "SIM PUK2",
        }
    }

    /// CREG, CGREG and CEREG stats now.
    pub(super) fn reg_stats(&self) -> [u8; 3] {
        if self.sim != SimState::Ready
            || !self.radio_on
            || matches!(self.state, State::Rebooting { .. })
        {
            return [0, 0, 0];
        }
        self.cfg.registration.stats()
    }

    pub(super) fn registered(&self) -> bool {
        self.reg_stats().iter().any(|s| *s == 1 || *s == 5)
    }

    pub(super) fn rssi(&self) -> u8 {
        if self.radio_on {
            self.cfg.rssi.min(31)
        } else {
            99
        }
    }
}
