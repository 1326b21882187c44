//! The daemon's local HTTP endpoint: `GET /status` (JSON, read by `smsbridge
//! status`) and `GET /metrics` (Prometheus text format).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;

use crate::bridge::Shared;
use crate::modem::ModemState;
use crate::store::{MessageState, MessageSummary, UnixTime};

/// What the endpoint reads from.
pub(crate) struct StatusSource {
    pub(crate) shared: Arc<Shared>,
    pub(crate) modems: Arc<dyn Fn() -> Vec<ModemState> + Send + Sync>,
    pub(crate) registrations: Arc<dyn Fn() -> usize + Send + Sync>,
    pub(crate) started: UnixTime,
}

/// One modem in `/status`.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct ModemStatus {
    /// Configured name.
    pub name: String,
    /// Port.
    pub port: String,
    /// Started and answering.
    pub ready: bool,
    /// Registered in any domain.
    pub registered: bool,
    /// e.g. `CS home, PS home, EPS home`.
    pub registration: String,
    /// Signal in dBm.
    pub signal_dbm: Option<i32>,
    /// Operator name.
    pub operator: Option<String>,
    /// IMSI.
    pub imsi: Option<String>,
    /// Model.
    pub model: Option<String>,
    /// The last problem.
    pub last_error: Option<String>,
}

/// `/status` as a whole.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Status {
    /// Seconds since start.
    pub uptime_secs: i64,
    /// The modems.
    pub modems: Vec<ModemStatus>,
    /// Outbox messages per state.
    pub queue: Vec<(String, usize)>,
    /// Inbound SMS waiting for delivery to an IM user.
    pub inbound_pending: usize,
    /// Registered SIP users' contacts.
    pub sip_registrations: usize,
    /// The last failed messages: (time, recipient, error).
    pub recent_failures: Vec<(String, String, String)>,
}

fn reg(stat: Option<u8>) -> &'static str {
    match stat {
        Some(1) | Some(6) | Some(9) => "home",
        Some(5) | Some(7) | Some(10) => "roaming",
        Some(2) => "searching",
        Some(3) => "denied",
        Some(0) => "not registered",
        _ => "unknown",
    }
}

async fn collect(src: &StatusSource) -> Status {
    let modems = (src.modems)()
        .into_iter()
        .map(|m| ModemStatus {
            registered: m.info.registered(),
            registration: format!(
                "CS {}, PS {}, EPS {}",
                reg(m.info.creg),
                reg(m.info.cgreg),
                reg(m.info.cereg)
            ),
            signal_dbm: m.info.signal_dbm,
            operator: m.info.operator.clone(),
            imsi: m.info.imsi.clone(),
            model: m.info.model.clone(),
            name: m.name,
            port: m.port,
            ready: m.ready,
            last_error: m.last_error,
        })
        .collect();
    let now = UnixTime::now();
    // Counts and the last ten failures only: this runs on every scrape and must
    // not grow with the history.
    let data = src
        .shared
        .db(move |s| {
            let mut queue = Vec::new();
            for st in MessageState::ALL {
                queue.push((st.as_str().to_owned(), s.count_messages(st)?));
            }
            Ok((queue, s.count_pending_inbound()?, s.recent_failures(10)?))
        })
        .await;
    let (queue, inbound_pending, failed) = match data {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("status: {e}");
            (Vec::new(), 0, Vec::new())
        }
    };
    let recent_failures = failed
        .into_iter()
        .map(|m: MessageSummary| {
            (
                m.updated_at.to_string(),
                m.msisdn.to_string(),
                m.last_error.unwrap_or_default(),
            )
        })
        .collect();
    Status {
        uptime_secs: now.0 - src.started.0,
        modems,
        queue,
        inbound_pending,
        sip_registrations: (src.registrations)(),
        recent_failures,
    }
}

async fn status(State(src): State<Arc<StatusSource>>) -> impl IntoResponse {
    axum::Json(collect(&src).await)
}

async fn metrics(State(src): State<Arc<StatusSource>>) -> impl IntoResponse {
    let s = collect(&src).await;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP smsbridge_up Seconds since the daemon started.\n# TYPE smsbridge_up gauge\nsmsbridge_up {}",
        s.uptime_secs
    );
    let _ = writeln!(
        out,
        "# HELP smsbridge_modem_ready Whether the modem started and answers.\n# TYPE smsbridge_modem_ready gauge"
    );
    for m in &s.modems {
        let _ = writeln!(
            out,
            "smsbridge_modem_ready{{modem=\"{}\"}} {}",
            m.name,
            u8::from(m.ready)
        );
    }
    let _ = writeln!(
        out,
        "# HELP smsbridge_modem_registered Whether the modem is registered.\n# TYPE smsbridge_modem_registered gauge"
    );
    for m in &s.modems {
        let _ = writeln!(
            out,
            "smsbridge_modem_registered{{modem=\"{}\"}} {}",
            m.name,
            u8::from(m.registered)
        );
    }
    let _ = writeln!(
        out,
        "# HELP smsbridge_modem_signal_dbm Signal strength.\n# TYPE smsbridge_modem_signal_dbm gauge"
    );
    for m in &s.modems {
        if let Some(d) = m.signal_dbm {
            let _ = writeln!(
                out,
                "smsbridge_modem_signal_dbm{{modem=\"{}\"}} {d}",
                m.name
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP smsbridge_outbox_messages Outbox messages by state.\n# TYPE smsbridge_outbox_messages gauge"
    );
    for (state, n) in &s.queue {
        let _ = writeln!(out, "smsbridge_outbox_messages{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP smsbridge_inbound_pending SMS waiting for an IM user.\n# TYPE smsbridge_inbound_pending gauge\nsmsbridge_inbound_pending {}",
        s.inbound_pending
    );
    let _ = writeln!(
        out,
        "# HELP smsbridge_sip_registrations Registered SIP contacts.\n# TYPE smsbridge_sip_registrations gauge\nsmsbridge_sip_registrations {}",
        s.sip_registrations
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// The router of the endpoint.
pub(crate) fn router(src: Arc<StatusSource>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state(src)
}
