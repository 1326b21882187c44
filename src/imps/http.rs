//! The thin HTTP driver (CSP HTTP binding): POST on any path, one primitive
//! per request, the answer in the response body in the request's encoding:
//! XML (`application/vnd.wv.csp+xml`) or WBXML (`application/vnd.wv.csp+wbxml`,
//! or `.wbxml` from CSP 1.1 and 1.2 clients), answered with the same content
//! type. Bodies over the CSP limit get 413 before they are read, other types
//! 415, requests while the daemon drains 503. A GET of a session's standalone
//! HTTP CIR URL (`/cir/<token>`) answers whether something waits. A timer
//! ends idle sessions. XCAP (`crate::xcap`), when configured, is served
//! under `/xcap-root/` on the same listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use super::csp;
use super::server::{CIR_HTTP_PATH, Server};
use super::wbxml;
use crate::xml::MAX_INPUT;

struct AppState {
    server: Arc<Server>,
    draining: Arc<AtomicBool>,
    body_timeout: Duration,
}

/// How long a client may take to send a request body, unless configured.
pub(crate) const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running IMPS listener.
#[derive(Clone)]
pub struct ImpsHttp {
    /// Where it listens.
    pub local: SocketAddr,
    draining: Arc<AtomicBool>,
}

impl ImpsHttp {
    /// New requests get 503 from now on (shutdown).
    pub fn set_draining(&self, yes: bool) {
        self.draining.store(yes, Ordering::SeqCst);
    }
}

/// 160 random bits as hex, for session ids, nonces and message ids.
pub fn random_token() -> String {
    let mut b = [0u8; 20];
    if let Err(e) = getrandom::fill(&mut b) {
        // No OS randomness is a broken system; still never reuse a token.
        tracing::error!("no OS randomness ({e}); using a weaker source");
        use std::hash::{BuildHasher, RandomState};
        for (i, chunk) in b.chunks_mut(8).enumerate() {
            let v = RandomState::new().hash_one((i, Instant::now()));
            for (d, s) in chunk.iter_mut().zip(v.to_le_bytes()) {
                *d = s;
            }
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The router, for tests and for [`serve`].
pub fn router(server: Arc<Server>, draining: Arc<AtomicBool>) -> Router {
    router_with(server, draining, BODY_TIMEOUT, None)
}

/// The router with XCAP under `/xcap-root/` (tests and [`serve`]).
pub fn router_with_xcap(
    server: Arc<Server>,
    draining: Arc<AtomicBool>,
    xcap: Arc<crate::xcap::Xcap>,
) -> Router {
    router_with(server, draining, BODY_TIMEOUT, Some(xcap))
}

fn router_with(
    server: Arc<Server>,
    draining: Arc<AtomicBool>,
    body_timeout: Duration,
    xcap: Option<Arc<crate::xcap::Xcap>>,
) -> Router {
    let csp = Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(MAX_INPUT))
        .with_state(Arc::new(AppState {
            server,
            draining,
            body_timeout,
        }));
    match xcap {
        Some(x) => crate::xcap::routes(x).merge(csp),
        None => csp,
    }
}

/// The peer's address (sessions are bound to it, Logins throttled by it); a
/// router driven without a socket (tests) counts as this host.
fn peer(extensions: &axum::http::Extensions) -> std::net::IpAddr {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), |c| {
            c.0.ip()
        })
}

/// A GET of a standalone HTTP CIR URL: 200 when something waits for the
/// session (the client then polls), 204 when nothing does, 404 for a URL that
/// names no live session (the client falls back to polling or logs in again).
fn cir_http(server: &Server, token: &str, client: std::net::IpAddr) -> Response {
    match server.cir_http(token, client) {
        Ok(true) => (StatusCode::OK, "something waits: poll\n").into_response(),
        Ok(false) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "no such session\n").into_response(),
    }
}

/// The encoding a request declares, by its Content-Type (none: XML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Xml,
    /// WBXML, answered with the same content type as asked.
    Wbxml(&'static str),
}

fn encoding(headers: &HeaderMap) -> Option<Encoding> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Some(Encoding::Xml);
    };
    let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
    let base = ct.split(';').next().unwrap_or("").trim();
    if [
        csp::CONTENT_TYPE,
        csp::CONTENT_TYPE_OLD,
        "text/xml",
        "application/xml",
    ]
    .contains(&base)
    {
        return Some(Encoding::Xml);
    }
    [wbxml::CONTENT_TYPE, wbxml::CONTENT_TYPE_OLD]
        .into_iter()
        .find(|t| *t == base)
        .map(Encoding::Wbxml)
}

/// Reads a request body of at most `max` bytes within `timeout`: a declared
/// length over the limit is refused (413) before a byte of the body is read,
/// a body that does not arrive in time ends the request (408). `what` names
/// the request in the 413 text.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: axum::body::Body,
    max: usize,
    timeout: Duration,
    what: &str,
) -> Result<Bytes, Response> {
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            [(header::CONNECTION, "close")],
            format!("{what} is at most {max} bytes\n"),
        )
            .into_response()
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, max)).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            [(header::CONNECTION, "close")],
            "the request body did not arrive in time\n",
        )
            .into_response()),
    }
}

async fn handle(State(st): State<Arc<AppState>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let (method, headers, extensions) = (parts.method, parts.headers, parts.extensions);
    let client = peer(&extensions);
    if method == axum::http::Method::GET
        && let Some(token) = parts.uri.path().strip_prefix(CIR_HTTP_PATH)
    {
        return cir_http(&st.server, token, client);
    }
    if method != axum::http::Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response();
    }
    if st.draining.load(Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "30")],
        )
            .into_response();
    }
    let Some(encoding) = encoding(&headers) else {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "CSP is read as XML (application/vnd.wv.csp+xml) or WBXML \
             (application/vnd.wv.csp+wbxml)\n",
        )
            .into_response();
    };
    let body = match read_body(&headers, body, MAX_INPUT, st.body_timeout, "a CSP request").await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let now = Instant::now();
    let (content_type, body) = match encoding {
        Encoding::Xml => {
            let reply = st.server.handle_from(&body, now, client).await;
            (csp::CONTENT_TYPE, reply.body)
        }
        Encoding::Wbxml(content_type) => {
            let decoded = wbxml::decode(&body);
            // An answer goes in the tables of the client's CSP version.
            let version = decoded.as_ref().map_or(wbxml::Version::V13, |d| d.version);
            let parsed = decoded.map_err(csp::CspError::from).and_then(|d| {
                // The public id says the version, whatever the namespaces.
                csp::from_root(d.root).map(|m| csp::Message { version, ..m })
            });
            let out = st.server.respond(parsed, now, client).await;
            match out.map(|o| wbxml::encode(&csp::envelope_in(&o, version), version)) {
                None => (content_type, Vec::new()),
                Some(Ok(b)) => (content_type, b),
                Some(Err(e)) => {
                    tracing::error!("IMPS answer cannot be written as WBXML: {e}");
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                }
            }
        }
    };
    if body.is_empty() {
        return StatusCode::OK.into_response();
    }
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Listens on `addr` until `shutdown`, within `limits`; expires idle sessions
/// every second.
pub async fn serve(
    addr: &str,
    server: Arc<Server>,
    limits: crate::daemon::http::HttpLimits,
    body_timeout: Duration,
    xcap: Option<Arc<crate::xcap::Xcap>>,
    shutdown: CancellationToken,
) -> std::io::Result<ImpsHttp> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    server.set_http_address(local);
    let draining = Arc::new(AtomicBool::new(false));
    let app = router_with(
        Arc::clone(&server),
        Arc::clone(&draining),
        body_timeout,
        xcap,
    );
    tokio::spawn(crate::daemon::http::serve(
        "IMPS",
        listener,
        app,
        limits,
        shutdown.clone(),
    ));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => server.expire(Instant::now()),
                () = shutdown.cancelled() => return,
            }
        }
    });
    Ok(ImpsHttp { local, draining })
}
