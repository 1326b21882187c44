//! Sending our own requests through rsipstack client transactions: build the
//! rsipstack request from an [`OutRequest`], pick the connection, answer a
//! digest challenge (one 401 and one 407 at most) when credentials are given,
//! wait for the final response (Timer F gives a local 408). Also the upstream
//! registration.

use std::sync::Arc;

use rsipstack::dialog::authenticate::{Credential, handle_client_authenticate};
use rsipstack::sip::headers::make_header;
use rsipstack::sip::{Header, Method, Request, SipMessage, StatusCode, Uri, Version};
use rsipstack::transaction::endpoint::EndpointInner;
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::{SipAddr, SipConnection};
use tracing::{debug, info, warn};

use super::outbound::OutRequest;

/// Sends requests for the front end.
pub(crate) struct Client {
    pub(crate) endpoint: Arc<EndpointInner>,
    /// Our TCP listener, for the Via of requests over accepted connections.
    pub(crate) tcp_local: Option<SipAddr>,
}

/// A final response, as the sender of a request needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Final {
    pub(crate) code: u16,
    /// Every header, in order, under rsipstack's name for it.
    pub(crate) headers: Vec<(String, String)>,
    /// The CSeq of the request this answers (higher than the one sent
    /// when a challenge was answered).
    pub(crate) cseq: u32,
    /// The body (an INVITE's 200 carries the SDP answer).
    pub(crate) body: Vec<u8>,
}

impl Final {
    /// The first value of a header (case-insensitive name).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, comma-separated lists split.
    pub(crate) fn header_list(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| super::wire::split_list(v))
            .collect()
    }
}

fn method(m: &str) -> Result<Method, String> {
    m.parse().map_err(|_| format!("unknown method {m}"))
}

impl Client {
    /// Sends `out` and returns the final status code (408 on timeout, 503
    /// when a stream broke), or why it could not be sent at all.
    pub(crate) async fn send(
        &self,
        out: &OutRequest,
        credential: Option<&Credential>,
    ) -> Result<u16, String> {
        self.exchange(out, |_| credential.cloned())
            .await
            .map(|a| a.code)
    }

    /// Sends `out` and returns its final response; `login` gives the
    /// credentials for a challenge by its status code (401 or 407). Each kind
    /// of challenge is answered once: a second one is the final answer.
    pub(crate) async fn exchange(
        &self,
        out: &OutRequest,
        login: impl Fn(u16) -> Option<Credential>,
    ) -> Result<Final, String> {
        let uri = Uri::try_from(out.request_uri.as_str())
            .map_err(|e| format!("bad URI {}: {e}", out.request_uri))?;
        let hop = match &out.next_hop {
            Some(h) => Uri::try_from(h.as_str()).map_err(|e| format!("bad next hop {h}: {e}"))?,
            None => uri.clone(),
        };
        let target = SipAddr::try_from(&hop).map_err(|e| e.to_string())?;
        let (connection, resolved) = self
            .endpoint
            .transport_layer
            .lookup(&target, None)
            .await
            .map_err(|e| format!("no route to {target}: {e}"))?;
        let via_addr = match (&connection, &self.tcp_local) {
            (SipConnection::Channel(_), Some(tcp)) => tcp.clone(),
            _ => connection.get_addr().clone(),
        };
        let via = self
            .endpoint
            .get_via(Some(via_addr), None)
            .map_err(|e| e.to_string())?;
        let method = method(out.method)?;
        let mut headers: Vec<Header> = vec![
            Header::Via(via.into()),
            make_header("Call-ID", out.call_id.clone()),
            make_header("From", format!("{};tag={}", out.from, out.from_tag)),
            make_header("To", out.to.clone()),
            make_header("CSeq", format!("{} {}", out.cseq, out.method)),
            make_header("Max-Forwards", "70".into()),
            make_header("User-Agent", self.endpoint.user_agent.clone()),
        ];
        for (n, v) in &out.headers {
            headers.push(make_header(n, v.clone()));
        }
        if let Some(ct) = &out.content_type {
            headers.push(make_header("Content-Type", ct.clone()));
        }
        let req = Request {
            method,
            uri,
            version: Version::V2,
            headers: headers.into(),
            body: out.body.clone(),
        };
        let key = TransactionKey::from_request(&req, TransactionRole::Client)
            .map_err(|e| e.to_string())?;
        let mut tx = Transaction::new_client(key, req, self.endpoint.clone(), Some(connection));
        tx.destination = Some(resolved);
        tx.send().await.map_err(|e| e.to_string())?;
        let (mut www_answered, mut proxy_answered) = (false, false);
        let mut cseq = out.cseq;
        while let Some(msg) = tx.receive().await {
            let SipMessage::Response(resp) = msg else {
                continue;
            };
            let code = resp.status_code.code();
            if code < 200 {
                continue;
            }
            let answered = match resp.status_code {
                StatusCode::Unauthorized => Some(&mut www_answered),
                StatusCode::ProxyAuthenticationRequired => Some(&mut proxy_answered),
                _ => None,
            };
            if let Some(answered) = answered.filter(|a| !**a)
                && let Some(cred) = login(code)
            {
                *answered = true;
                cseq += 1;
                debug!(code, "answering a digest challenge");
                tx = handle_client_authenticate(cseq, &tx, resp, &cred)
                    .await
                    .map_err(|e| e.to_string())?;
                tx.send().await.map_err(|e| e.to_string())?;
                continue;
            }
            let headers = resp
                .headers
                .iter()
                .map(|h| (h.name().to_string(), h.value().to_string()))
                .collect();
            return Ok(Final {
                code,
                headers,
                cseq,
                body: resp.body,
            });
        }
        Err("the transaction ended without a final response".into())
    }
}

/// Registers `aor` with the upstream registrar through `proxy` until `cancel`,
/// refreshing at 75% of the granted expiry (rsipstack `Registration::keep_alive`).
pub(crate) async fn register_upstream(
    endpoint: Arc<EndpointInner>,
    aor: String,
    proxy: String,
    credential: Credential,
    expires: u32,
    cancel: tokio_util::sync::CancellationToken,
) {
    let (Some(server), Ok(proxy_uri)) = (registrar_uri(&aor), Uri::try_from(proxy.as_str())) else {
        warn!(%aor, %proxy, "cannot register upstream: bad address");
        return;
    };
    let mut reg = rsipstack::dialog::registration::Registration::new(endpoint, Some(credential));
    // A proxy given by IP address is pinned; a domain is left to the resolver.
    if let Some(addr) = SipAddr::try_from(&proxy_uri)
        .ok()
        .and_then(|a| a.get_socketaddr().ok())
    {
        reg.outbound_proxy = Some(addr);
    }
    reg.keep_alive(server, expires, cancel, |outcome| {
        use rsipstack::dialog::registration::RefreshOutcome;
        match outcome {
            RefreshOutcome::Registered(_) => info!(%aor, "registered upstream"),
            RefreshOutcome::Rejected(r) => {
                warn!(%aor, code = r.status_code.code(), "upstream registration refused")
            }
            RefreshOutcome::Failed(e) => warn!(%aor, error = %e, "upstream registration failed"),
        }
    })
    .await;
}

/// `sip:host` of an AOR: the Request-URI of a REGISTER (RFC 3261 §10.2).
fn registrar_uri(aor: &str) -> Option<Uri> {
    let host = aor.split_once('@')?.1;
    Uri::try_from(format!("sip:{host}").as_str()).ok()
}
