//! The daemon's local HTTP endpoint: `GET /status` (JSON, read by `smsbridge
//! status`) and `GET /metrics` (Prometheus text format).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use crate::bridge::Shared;
use crate::metrics::{self, Metrics, Snapshot};
use crate::modem::ModemState;
use crate::store::{MessageState, MessageSummary, UnixTime};

/// What the endpoint reads from.
pub(crate) struct StatusSource {
    pub(crate) shared: Arc<Shared>,
    pub(crate) modems: Arc<dyn Fn() -> Vec<ModemState> + Send + Sync>,
    pub(crate) registrations: Arc<dyn Fn() -> usize + Send + Sync>,
    pub(crate) started: UnixTime,
    /// The bearer token requests must carry; empty: none.
    pub(crate) token: String,
    /// The counters the daemon keeps.
    pub(crate) metrics: Arc<Metrics>,
}

/// `?unmask=1` (or `true`): numbers and IMSIs in full.
fn unmasked(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "unmask=1" || kv == "unmask=true")
    })
}

/// A number or IMSI with its middle hidden: `+49151****5678`. Short values
/// are hidden whole.
pub(crate) fn mask(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len());
    }
    let head = if chars[0] == '+' { 6 } else { 5 };
    let tail = 4;
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < head || i >= chars.len() - tail {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// Whether `headers` carry the token (compared in constant time).
fn authorised(headers: &HeaderMap, token: &str) -> bool {
    if token.is_empty() {
        return true;
    }
    let Some(got) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    got.len() == token.len()
        && got
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn require_token(State(src): State<Arc<StatusSource>>, req: Request, next: Next) -> Response {
    if authorised(req.headers(), &src.token) {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"smsbridge\"")],
        "a bearer token is required (status.token)\n",
    )
        .into_response()
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
    /// The modem is down: registration, signal, operator and model are the
    /// last values it reported, not what it would say now.
    pub stale: bool,
}

/// A failed message in `/status`.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct RecentFailure {
    /// When it failed (RFC 3339).
    pub at: String,
    /// The recipient, masked unless asked for in full.
    pub recipient: String,
    /// Why.
    pub error: String,
}

/// `/status` as a whole.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Status {
    /// Seconds since start.
    pub uptime_secs: i64,
    /// The modems.
    pub modems: Vec<ModemStatus>,
    /// Outbox messages per state, every state named (zero included).
    pub queue: BTreeMap<String, usize>,
    /// Inbound SMS waiting for delivery to an IM user.
    pub inbound_pending: usize,
    /// Registered SIP users' contacts.
    pub sip_registrations: usize,
    /// The last failed messages, newest first.
    pub recent_failures: Vec<RecentFailure>,
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

async fn collect(src: &StatusSource, unmasked: bool) -> Status {
    let hide = |v: String| if unmasked { v } else { mask(&v) };
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
            imsi: m.info.imsi.clone().map(hide),
            model: m.info.model.clone(),
            name: m.name,
            port: m.port,
            stale: !m.ready,
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
            let mut queue = BTreeMap::new();
            for st in MessageState::ALL {
                queue.insert(st.as_str().to_owned(), s.count_messages(st)?);
            }
            Ok((queue, s.count_pending_inbound()?, s.recent_failures(10)?))
        })
        .await;
    let (queue, inbound_pending, failed) = match data {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("status: {e}");
            (BTreeMap::new(), 0, Vec::new())
        }
    };
    let recent_failures = failed
        .into_iter()
        .map(|m: MessageSummary| RecentFailure {
            at: m.updated_at.to_string(),
            recipient: hide(m.msisdn.to_string()),
            error: m.last_error.unwrap_or_default(),
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

async fn status(State(src): State<Arc<StatusSource>>, uri: Uri) -> impl IntoResponse {
    axum::Json(collect(&src, unmasked(&uri)).await)
}

/// `/metrics`: OpenMetrics for a scraper that asks for it (Prometheus does),
/// the classic text format otherwise.
async fn metrics(State(src): State<Arc<StatusSource>>, headers: HeaderMap) -> impl IntoResponse {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let s = collect(&src, false).await;
    let snapshot = Snapshot {
        started_at: src.started.0,
        modems: s
            .modems
            .iter()
            .map(|m| (m.name.clone(), m.ready, m.registered, m.signal_dbm))
            .collect(),
        outbox: s.queue.into_iter().collect(),
        inbound_pending: s.inbound_pending,
        sip_registrations: s.sip_registrations,
    };
    let text = src.metrics.render(&snapshot);
    if openmetrics {
        ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text)
    } else {
        (
            [(header::CONTENT_TYPE, metrics::CLASSIC_CONTENT_TYPE)],
            metrics::classic_text(&text),
        )
    }
}

/// The router of the endpoint.
pub(crate) fn router(src: Arc<StatusSource>) -> Router {
    Router::new()
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&src),
            require_token,
        ))
        .with_state(src)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_imsis_are_masked_in_the_middle() {
        assert_eq!(mask("+4915112345678"), "+49151****5678");
        assert_eq!(mask("262011234567890"), "26201******7890");
        assert_eq!(mask("+4917"), "*****");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn the_token_is_required_when_set() {
        let mut h = HeaderMap::new();
        assert!(authorised(&h, ""), "no token configured");
        assert!(!authorised(&h, "s3cret"));
        h.insert(header::AUTHORIZATION, "Bearer s3cre".parse().unwrap());
        assert!(!authorised(&h, "s3cret"));
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(authorised(&h, "s3cret"));
        h.insert(header::AUTHORIZATION, "Basic s3cret".parse().unwrap());
        assert!(!authorised(&h, "s3cret"));
    }
}
