//! The daemon's Prometheus metrics, on `prometheus-client` (which escapes label
//! values and writes the OpenMetrics text format): counters that the bridge and
//! the modem workers move as things happen, histograms of the two latencies an
//! operator graphs, and gauges read from the store and the modems at each
//! scrape.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Which modem.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModemLabel {
    /// The modem's configured name.
    pub modem: String,
}

/// Which front end.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrontEndLabel {
    /// `sip` or `imps`.
    pub front_end: String,
}

/// A refusal, by front end and cause.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabel {
    /// `sip` or `imps`.
    pub front_end: String,
    /// The refusal, in snake case (`rate_limited`, `opted_out`, …).
    pub cause: String,
}

/// A status report's outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `delivered`, `failed` or `still_trying`.
    pub outcome: String,
}

/// An outbox state.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// The state's name in the store.
    pub state: String,
}

/// What the gauges show, read at scrape time.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Unix time the daemon started.
    pub started_at: i64,
    /// Per modem: name, ready, registered, signal (only when ready).
    pub modems: Vec<(String, bool, bool, Option<i32>)>,
    /// Outbox messages per state.
    pub outbox: Vec<(String, usize)>,
    /// SMS waiting for an IM user.
    pub inbound_pending: usize,
    /// Registered SIP contacts.
    pub sip_registrations: usize,
}

/// Every metric of the daemon. Shared by reference; counting is lock-free.
pub struct Metrics {
    /// SMS parts the network accepted (`+CMGS`), by modem.
    pub sms_sent: Family<ModemLabel, Counter>,
    /// SMS parts the modem or network refused for good, by modem.
    pub sms_failed: Family<ModemLabel, Counter>,
    /// SMS (PDUs) received and stored, by modem.
    pub sms_received: Family<ModemLabel, Counter>,
    /// Messages handed to an IM user, by front end.
    pub im_delivered: Family<FrontEndLabel, Counter>,
    /// Messages kept for an IM user who is offline, by front end.
    pub im_stored: Family<FrontEndLabel, Counter>,
    /// Messages that could not reach an IM user (expired, refused), by front end.
    pub im_failed: Family<FrontEndLabel, Counter>,
    /// Requests refused, by front end and cause.
    pub refusals: Family<RefusalLabel, Counter>,
    /// Status reports applied, by outcome.
    pub reports: Family<OutcomeLabel, Counter>,
    /// Seconds from a message accepted to its part's `+CMGS`.
    pub submit_latency: Histogram,
    /// Seconds from an SMS stored to its delivery to an IM user.
    pub im_delivery_latency: Histogram,
    up: Gauge,
    start_time: Gauge,
    modem_ready: Family<ModemLabel, Gauge>,
    modem_registered: Family<ModemLabel, Gauge>,
    modem_signal: Family<ModemLabel, Gauge>,
    outbox: Family<StateLabel, Gauge>,
    inbound_pending: Gauge,
    sip_registrations: Gauge,
    registry: Registry,
    /// One scrape at a time: the gauges are set, then encoded.
    scrape: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric registered, at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("smsbridge");
        // 1 s … ~34 min, doubling: the store keeps whole seconds; a modem
        // answers in a second or two, a queue may hold a part for minutes.
        let latency = || Histogram::new(exponential_buckets(1.0, 2.0, 12));
        let m = Self {
            sms_sent: Family::default(),
            sms_failed: Family::default(),
            sms_received: Family::default(),
            im_delivered: Family::default(),
            im_stored: Family::default(),
            im_failed: Family::default(),
            refusals: Family::default(),
            reports: Family::default(),
            submit_latency: latency(),
            im_delivery_latency: latency(),
            up: Gauge::default(),
            start_time: Gauge::default(),
            modem_ready: Family::default(),
            modem_registered: Family::default(),
            modem_signal: Family::default(),
            outbox: Family::default(),
            inbound_pending: Gauge::default(),
            sip_registrations: Gauge::default(),
            registry: Registry::default(),
            scrape: Mutex::new(()),
        };
        let r = &mut registry;
        r.register(
            "sms_sent",
            "SMS parts accepted by the network",
            m.sms_sent.clone(),
        );
        r.register(
            "sms_failed",
            "SMS parts refused for good",
            m.sms_failed.clone(),
        );
        r.register(
            "sms_received",
            "SMS PDUs received and stored",
            m.sms_received.clone(),
        );
        r.register(
            "im_delivered",
            "Messages handed to an IM user",
            m.im_delivered.clone(),
        );
        r.register(
            "im_stored",
            "Messages kept for an offline IM user",
            m.im_stored.clone(),
        );
        r.register(
            "im_failed",
            "Messages that could not reach an IM user",
            m.im_failed.clone(),
        );
        r.register("refusals", "Requests refused, by cause", m.refusals.clone());
        r.register(
            "status_reports",
            "Status reports applied, by outcome",
            m.reports.clone(),
        );
        r.register(
            "submit_latency_seconds",
            "From a message accepted to its part's +CMGS",
            m.submit_latency.clone(),
        );
        r.register(
            "im_delivery_latency_seconds",
            "From an SMS stored to its delivery to an IM user",
            m.im_delivery_latency.clone(),
        );
        r.register("up", "1 while the daemon runs", m.up.clone());
        r.register(
            "start_time_seconds",
            "Unix time the daemon started",
            m.start_time.clone(),
        );
        r.register(
            "modem_ready",
            "Whether the modem started and answers",
            m.modem_ready.clone(),
        );
        r.register(
            "modem_registered",
            "Whether the modem is registered",
            m.modem_registered.clone(),
        );
        r.register(
            "modem_signal_dbm",
            "Signal strength of a ready modem",
            m.modem_signal.clone(),
        );
        r.register(
            "outbox_messages",
            "Outbox messages by state",
            m.outbox.clone(),
        );
        r.register(
            "inbound_pending",
            "SMS waiting for an IM user",
            m.inbound_pending.clone(),
        );
        r.register(
            "sip_registrations",
            "Registered SIP contacts",
            m.sip_registrations.clone(),
        );
        Self { registry, ..m }
    }

    /// Counts `n` of something for `modem`.
    pub fn modem_counter(family: &Family<ModemLabel, Counter>, modem: &str) {
        family
            .get_or_create(&ModemLabel {
                modem: modem.to_owned(),
            })
            .inc();
    }

    /// Counts one for `front_end` (`sip`, `imps`).
    pub fn front_end_counter(family: &Family<FrontEndLabel, Counter>, front_end: &str) {
        family
            .get_or_create(&FrontEndLabel {
                front_end: front_end.to_owned(),
            })
            .inc();
    }

    /// Counts a refusal.
    pub fn refused(&self, front_end: &str, cause: &str) {
        self.refusals
            .get_or_create(&RefusalLabel {
                front_end: front_end.to_owned(),
                cause: cause.to_owned(),
            })
            .inc();
    }

    /// Counts a status report.
    pub fn report(&self, outcome: &str) {
        self.reports
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Records a latency.
    pub fn observe(histogram: &Histogram, took: Duration) {
        histogram.observe(took.as_secs_f64());
    }

    /// The OpenMetrics text of every metric, with the gauges set from `now`.
    pub fn render(&self, now: &Snapshot) -> String {
        let _one = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        self.up.set(1);
        self.start_time.set(now.started_at);
        for (name, ready, registered, signal) in &now.modems {
            let l = ModemLabel {
                modem: name.clone(),
            };
            self.modem_ready.get_or_create(&l).set(i64::from(*ready));
            self.modem_registered
                .get_or_create(&l)
                .set(i64::from(*registered));
            match signal {
                Some(dbm) if *ready => {
                    self.modem_signal.get_or_create(&l).set(i64::from(*dbm));
                }
                // A modem that is down has no current signal: no sample.
                _ => {
                    self.modem_signal.remove(&l);
                }
            }
        }
        for (state, n) in &now.outbox {
            self.outbox
                .get_or_create(&StateLabel {
                    state: state.clone(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
        self.inbound_pending
            .set(i64::try_from(now.inbound_pending).unwrap_or(i64::MAX));
        self.sip_registrations
            .set(i64::try_from(now.sip_registrations).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing to a String does not fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of [`classic_text`]'s text.
pub const CLASSIC_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// OpenMetrics text as the classic Prometheus text format (0.0.4), for
/// scrapers that do not ask for OpenMetrics and for `promtool check metrics`:
/// a counter family is named by its `_total` samples, and the OpenMetrics-only
/// lines (`# UNIT`, `# EOF`) go.
pub fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_labels_and_gauges_are_written_escaped() {
        let m = Metrics::new();
        Metrics::modem_counter(&m.sms_sent, "usb \"left\"\n");
        Metrics::modem_counter(&m.sms_sent, "usb \"left\"\n");
        m.refused("sip", "rate_limited");
        m.report("delivered");
        Metrics::observe(&m.submit_latency, Duration::from_millis(1500));
        let text = m.render(&Snapshot {
            started_at: 1_700_000_000,
            modems: vec![
                ("m0".into(), true, true, Some(-71)),
                ("m1".into(), false, false, Some(-90)),
            ],
            outbox: vec![("queued".into(), 3)],
            inbound_pending: 2,
            sip_registrations: 1,
        });
        for line in [
            "smsbridge_sms_sent_total{modem=\"usb \\\"left\\\"\\n\"} 2",
            "smsbridge_refusals_total{front_end=\"sip\",cause=\"rate_limited\"} 1",
            "smsbridge_status_reports_total{outcome=\"delivered\"} 1",
            "smsbridge_submit_latency_seconds_count 1",
            "smsbridge_submit_latency_seconds_bucket{le=\"2.0\"} 1",
            "smsbridge_submit_latency_seconds_bucket{le=\"1.0\"} 0",
            "smsbridge_up 1",
            "smsbridge_start_time_seconds 1700000000",
            "smsbridge_modem_ready{modem=\"m1\"} 0",
            "smsbridge_modem_signal_dbm{modem=\"m0\"} -71",
            "smsbridge_outbox_messages{state=\"queued\"} 3",
            "smsbridge_inbound_pending 2",
            "# EOF",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("modem_signal_dbm{modem=\"m1\"}"), "{text}");

        let classic = classic_text(&text);
        for line in [
            "# HELP smsbridge_sms_sent_total SMS parts accepted by the network.",
            "# TYPE smsbridge_sms_sent_total counter",
            "smsbridge_sms_sent_total{modem=\"usb \\\"left\\\"\\n\"} 2",
            "# TYPE smsbridge_up gauge",
            "# TYPE smsbridge_submit_latency_seconds histogram",
        ] {
            assert!(classic.lines().any(|l| l == line), "{line} in\n{classic}");
        }
        assert!(!classic.contains("# EOF"), "{classic}");
    }
}
