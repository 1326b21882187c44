//! XCAP (RFC 4825) for SIP users' own lists and rules, under `/xcap-root/`
//! of the IMPS HTTP listener: `resource-lists` (RFC 4826) are the user's
//! contact lists, `pres-rules` (RFC 5025; also as
//! `org.openmobilealliance.pres-rules`) their presence access policy, and
//! `xcap-caps` says what is served. Documents are not stored as text: GET
//! builds them from the bridge, PUT and DELETE change a copy of the tree
//! (whole document, element or attribute), read it back into the bridge's
//! terms and write that through the bridge. The ETag is the MD5 of the
//! document as built, so it changes exactly when what the bridge keeps
//! changes, whoever changed it (IMPS, CLI or XCAP).
//!
//! Users prove who they are with HTTP digest (MD5, `qop=auth`) against the
//! HA1 the SIP front end uses, in the SIP realm; the XUI of a document must
//! be their own AOR.

mod docs;
mod selector;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::bridge::api::{ImApi, Refusal};
use crate::sip::digest::{self, Nonces, Verdict};
use crate::xml::{Element, Rules};
use docs::Invalid;
use selector::{Auid, NodeSelector, Scope, Terminal, XcapUri};

/// How XCAP documents and fragments are read: namespaces kept, prefixes a
/// fragment leaves undeclared read by local name, no DOCTYPE.
pub(crate) const XCAP_RULES: Rules = Rules {
    max_depth: 16,
    max_elements: 2_000,
    declared_prefixes_only: false,
    external_doctype: false,
};

/// What the XCAP server needs from the configuration.
#[derive(Debug, Clone)]
pub struct XcapSettings {
    /// The digest realm (`[sip] realm`).
    pub realm: String,
    /// The domain of users' AORs (`[sip] domain`).
    pub domain: String,
    /// Largest request body and largest document, in bytes.
    pub max_document: usize,
    /// How long a nonce is good for.
    pub nonce_ttl: Duration,
}

/// The XCAP server.
pub struct Xcap {
    bridge: Arc<dyn ImApi>,
    settings: XcapSettings,
    nonces: Nonces,
    /// Writes go one at a time: a document is written as several bridge
    /// calls, and two interleaved would mix.
    writing: tokio::sync::Mutex<()>,
}

impl Xcap {
    /// A server over `bridge`.
    pub fn new(settings: XcapSettings, bridge: Arc<dyn ImApi>) -> Arc<Self> {
        let secret = crate::imps::random_token();
        let ttl = settings.nonce_ttl.as_secs().max(1);
        let max_document = settings.max_document.min(crate::xml::MAX_INPUT);
        Arc::new(Self {
            bridge,
            nonces: Nonces::new(secret, ttl),
            settings: XcapSettings {
                max_document,
                ..settings
            },
            writing: tokio::sync::Mutex::new(()),
        })
    }
}

/// The routes under `/xcap-root/`, to merge into a listener's router.
pub fn routes(xcap: Arc<Xcap>) -> Router {
    Router::new()
        .route(
            "/xcap-root/{*rest}",
            axum::routing::any(handle).with_state(xcap),
        )
        .route("/xcap-root", axum::routing::any(not_found))
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "no such document\n").into_response()
}

const RL_TYPE: &str = "application/resource-lists+xml";
const PR_TYPE: &str = "application/auth-policy+xml";
const CAPS_TYPE: &str = "application/xcap-caps+xml";
const EL_TYPE: &str = "application/xcap-el+xml";
const ATT_TYPE: &str = "application/xcap-att+xml";
const NS_TYPE: &str = "application/xcap-ns+xml";
const ERR_TYPE: &str = "application/xcap-error+xml";

/// An answer that ends a request early (an error or a 304), boxed: it
/// travels up through `Result`s.
type Fail = Box<Response>;

/// How long a body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// A 409 with an RFC 4825 §11 error body.
fn conflict(element: Element) -> Fail {
    let doc = docs::render(
        &Element {
            ns: Some(docs::ERR_NS.into()),
            ..Element::new("xcap-error")
        }
        .with(Element {
            ns: Some(docs::ERR_NS.into()),
            ..element
        }),
        docs::ERR_PREFIXES,
        true,
    );
    (
        StatusCode::CONFLICT,
        [(header::CONTENT_TYPE, ERR_TYPE)],
        doc.to_document(),
    )
        .into_response()
        .into()
}

fn error_el(name: &str, phrase: &str) -> Element {
    Element::new(name).attr("phrase", phrase)
}

fn invalid(e: Invalid) -> Fail {
    match e {
        Invalid::Schema(p) => conflict(error_el("schema-validation-error", &p)),
        Invalid::Constraint(p) => conflict(error_el("constraint-failure", &p)),
        Invalid::Uniqueness { field, phrase } => {
            conflict(error_el("uniqueness-failure", &phrase).with(Element {
                ns: Some(docs::ERR_NS.into()),
                ..Element::new("exists").attr("field", &field)
            }))
        }
    }
}

fn refusal(r: &Refusal) -> Fail {
    match r {
        Refusal::UnknownRecipient(n)
        | Refusal::NoRoute(n)
        | Refusal::ForeignNotAllowed(n)
        | Refusal::UnknownList(n)
        | Refusal::Blocked(n)
        | Refusal::Invalid(n) => conflict(error_el(
            "constraint-failure",
            &format!("the bridge does not take {n}"),
        )),
        // The bridge knows no such presentity (or has no policy store).
        Refusal::UnknownUser(_) => (StatusCode::NOT_FOUND, "no such document\n")
            .into_response()
            .into(),
        _ => match r.retry_after() {
            Some(after) => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, after.as_secs().max(1).to_string())],
                "try again later\n",
            )
                .into_response()
                .into(),
            None => {
                tracing::warn!("XCAP: the bridge refused: {}", r.cause());
                (StatusCode::INTERNAL_SERVER_ERROR, "the bridge refused\n")
                    .into_response()
                    .into()
            }
        },
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Whether an `If-Match`/`If-None-Match` value names `etag` (or is `*`).
fn names_etag(value: &str, etag: &str) -> bool {
    value
        .split(',')
        .map(str::trim)
        .any(|v| v == "*" || v == etag || v.strip_prefix("W/").is_some_and(|w| w == etag))
}

/// What a request is about once its URI and user are known.
struct Job {
    uri: XcapUri,
    /// The authenticated user's AOR.
    user: String,
}

impl Xcap {
    fn challenge(&self, stale: bool) -> Fail {
        let value = self
            .nonces
            .challenge(&self.settings.realm, now_secs(), stale)
            .replace("qop=\"auth,auth-int\"", "qop=\"auth\"");
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, value)],
            "credentials needed\n",
        )
            .into_response()
            .into()
    }

    /// The user the request's digest credentials prove, or the answer.
    async fn authenticate(
        &self,
        method: &Method,
        target: &str,
        headers: &HeaderMap,
    ) -> Result<String, Fail> {
        let Some(c) = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(digest::parse_authorization)
            .find(|c| c.realm == self.settings.realm)
        else {
            return Err(self.challenge(false));
        };
        if c.qop
            .as_deref()
            .is_some_and(|q| !q.eq_ignore_ascii_case("auth"))
        {
            return Err(self.challenge(false));
        }
        let address = if c.username.starts_with("sip:") {
            c.username.clone()
        } else if c.username.contains('@') {
            format!("sip:{}", c.username)
        } else {
            format!("sip:{}@{}", c.username, self.settings.domain)
        };
        let Some(creds) = self.bridge.sip_credentials(address.clone()).await else {
            return Err(self.challenge(false));
        };
        if creds.realm != self.settings.realm {
            return Err(self.challenge(false));
        }
        let signed = digest::Signed {
            method: method.as_str(),
            uri_matches: c.uri == target,
            body: &[],
        };
        match digest::verify(&self.nonces, &c, &creds.ha1, signed, now_secs()) {
            Verdict::Ok => Ok(address),
            Verdict::Stale => Err(self.challenge(true)),
            Verdict::Wrong => Err(self.challenge(false)),
        }
    }

    /// The document as built from the bridge now.
    async fn load(&self, job: &Job) -> Result<Element, Fail> {
        let user = job.user.clone();
        match job.uri.auid {
            Auid::Caps => Ok(docs::caps_tree()),
            Auid::ResourceLists => {
                let lists = self.bridge.lists(user).await.map_err(|r| refusal(&r))?;
                Ok(docs::lists_tree(&docs::lists_model(
                    &lists,
                    &self.settings.domain,
                )))
            }
            Auid::PresRules => {
                let rules = self
                    .bridge
                    .presence_rules(user)
                    .await
                    .map_err(|r| refusal(&r))?;
                Ok(docs::rules_tree(&rules))
            }
        }
    }

    /// The document (rendered) and its ETag.
    fn render(auid: Auid, tree: &Element) -> (String, String) {
        let prefixes = prefixes(auid);
        let text = docs::render(tree, prefixes, true).to_document();
        let etag = format!("\"{}\"", digest::md5_hex(&text));
        (text, etag)
    }

    /// Writes a changed document through the bridge.
    async fn store(&self, job: &Job, tree: &Element) -> Result<(), Fail> {
        let (text, _) = Self::render(job.uri.auid, tree);
        if text.len() > self.settings.max_document {
            return Err(conflict(error_el(
                "constraint-failure",
                &format!(
                    "the document would be over {} bytes",
                    self.settings.max_document
                ),
            )));
        }
        let domain = &self.settings.domain;
        match job.uri.auid {
            Auid::Caps => Err(read_only()),
            Auid::PresRules => {
                let rules = docs::read_rules(tree).map_err(invalid)?;
                self.bridge
                    .set_presence_rules(job.user.clone(), rules)
                    .await
                    .map_err(|r| refusal(&r))
            }
            Auid::ResourceLists => {
                let want = docs::read_lists(tree, domain).map_err(invalid)?;
                self.write_lists(&job.user, &want)
                    .await
                    .map_err(|r| refusal(&r))
            }
        }
    }

    async fn current_lists(&self, user: &str) -> Result<Vec<docs::List>, Refusal> {
        let lists = self.bridge.lists(user.to_owned()).await?;
        Ok(docs::lists_model(&lists, &self.settings.domain))
    }

    /// Makes the user's lists `want`: lists deleted and created, entries
    /// removed (the bridge removes a contact from every list at once, so
    /// what is still wanted elsewhere is added back) and added.
    async fn write_lists(&self, user: &str, want: &[docs::List]) -> Result<(), Refusal> {
        let domain = &self.settings.domain;
        let key = |u: &str| docs::entry_key(u, domain);
        let has = |lists: &[docs::List], list: &str, e: &docs::Entry| {
            lists.iter().any(|l| {
                l.name == list
                    && l.entries
                        .iter()
                        .any(|x| key(&x.uri) == key(&e.uri) && x.display_name == e.display_name)
            })
        };
        let have = self.current_lists(user).await?;
        // Every new entry must name someone before anything is written, so a
        // bad one leaves the lists as they were.
        for w in want {
            for e in w.entries.iter().filter(|e| !has(&have, &w.name, e)) {
                self.bridge
                    .resolve_name(user.to_owned(), docs::bridge_name(&e.uri, domain))
                    .await?;
            }
        }
        for l in &have {
            if !want.iter().any(|w| w.name == l.name) {
                self.bridge
                    .delete_list(user.to_owned(), l.name.clone())
                    .await?;
            }
        }
        for w in want {
            if !have.iter().any(|l| l.name == w.name) {
                self.bridge
                    .create_list(user.to_owned(), w.name.clone())
                    .await?;
            }
        }
        let have = self.current_lists(user).await?;
        for l in &have {
            for e in &l.entries {
                if !has(want, &l.name, e) {
                    self.bridge
                        .list_remove(user.to_owned(), docs::bridge_name(&e.uri, domain))
                        .await?;
                }
            }
        }
        let have = self.current_lists(user).await?;
        for w in want {
            for e in &w.entries {
                if !has(&have, &w.name, e) {
                    self.bridge
                        .list_add(
                            user.to_owned(),
                            w.name.clone(),
                            docs::bridge_name(&e.uri, domain),
                            e.display_name.clone(),
                        )
                        .await?;
                }
            }
        }
        Ok(())
    }
}

fn prefixes(auid: Auid) -> docs::Prefixes {
    match auid {
        Auid::ResourceLists => docs::RL_PREFIXES,
        Auid::PresRules => docs::PR_PREFIXES,
        Auid::Caps => docs::CAPS_PREFIXES,
    }
}

fn mime(auid: Auid) -> &'static str {
    match auid {
        Auid::ResourceLists => RL_TYPE,
        Auid::PresRules => PR_TYPE,
        Auid::Caps => CAPS_TYPE,
    }
}

fn read_only() -> Fail {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "GET")],
        "xcap-caps is read-only\n",
    )
        .into_response()
        .into()
}

fn with_etag(status: StatusCode, etag: &str, ct: &str, body: String) -> Response {
    (
        status,
        [
            (header::ETAG, etag.to_owned()),
            (header::CONTENT_TYPE, ct.to_owned()),
        ],
        body,
    )
        .into_response()
}

async fn handle(State(x): State<Arc<Xcap>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let uri = match selector::parse_uri(parts.uri.path(), parts.uri.query()) {
        Ok(u) => u,
        Err(selector::UriError::NoDocument(_)) => return not_found().await,
        Err(e @ selector::UriError::BadSelector(_)) => {
            return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response();
        }
    };
    let body = match crate::imps::http::read_body(
        &parts.headers,
        body,
        x.settings.max_document,
        BODY_TIMEOUT,
        "an XCAP body",
    )
    .await
    {
        Ok(b) => b,
        Err(r) => return r,
    };
    let user = match x.authenticate(&parts.method, &target, &parts.headers).await {
        Ok(u) => u,
        Err(r) => return *r,
    };
    if let Scope::User(xui) = &uri.scope
        && !xui.eq_ignore_ascii_case(&user)
    {
        return (StatusCode::FORBIDDEN, "not your document\n").into_response();
    }
    let job = Job { uri, user };
    let out = match parts.method {
        Method::GET => x.get(&job, &parts.headers).await,
        Method::PUT => x.put(&job, &parts.headers, &body).await,
        Method::DELETE => x.delete(&job, &parts.headers).await,
        _ => Err((
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, PUT, DELETE")],
        )
            .into_response()
            .into()),
    };
    out.unwrap_or_else(|r| *r)
}

/// `If-Match` / `If-None-Match` against the current ETag: `Err` with 412
/// (or 304 for a GET's `If-None-Match`).
fn preconditions(headers: &HeaderMap, etag: &str, get: bool) -> Result<(), Fail> {
    let header_str = |h| {
        headers
            .get(h)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    if let Some(v) = header_str(header::IF_MATCH)
        && !names_etag(v, etag)
    {
        return Err(StatusCode::PRECONDITION_FAILED.into_response().into());
    }
    if let Some(v) = header_str(header::IF_NONE_MATCH)
        && names_etag(v, etag)
    {
        return Err(if get {
            (StatusCode::NOT_MODIFIED, [(header::ETAG, etag.to_owned())])
                .into_response()
                .into()
        } else {
            StatusCode::PRECONDITION_FAILED.into_response().into()
        });
    }
    Ok(())
}

fn no_node() -> Fail {
    (StatusCode::NOT_FOUND, "the node selector selects nothing\n")
        .into_response()
        .into()
}

impl Xcap {
    async fn get(&self, job: &Job, headers: &HeaderMap) -> Result<Response, Fail> {
        let tree = self.load(job).await?;
        let auid = job.uri.auid;
        let (text, etag) = Self::render(auid, &tree);
        preconditions(headers, &etag, true)?;
        let Some(node) = &job.uri.node else {
            return Ok(with_etag(StatusCode::OK, &etag, mime(auid), text));
        };
        let path = node.locate(&tree).ok_or_else(no_node)?;
        let el = selector::at(&tree, &path);
        Ok(match &node.terminal {
            None => {
                let mut out = String::new();
                docs::render(el, prefixes(auid), true).write(&mut out);
                with_etag(StatusCode::OK, &etag, EL_TYPE, out)
            }
            Some(Terminal::Attribute(a)) => {
                let v = el.attribute(&a.local).ok_or_else(no_node)?;
                // The value as it stands between the quotes in the document.
                let mut out = String::new();
                Element::new("a").attr("v", v).write(&mut out);
                let quoted = out
                    .strip_prefix("<a v=\"")
                    .and_then(|s| s.strip_suffix("\"/>"))
                    .unwrap_or(v)
                    .to_owned();
                with_etag(StatusCode::OK, &etag, ATT_TYPE, quoted)
            }
            Some(Terminal::Namespaces) => {
                let mut decl = Element::new("namespaces");
                for (ns, p) in prefixes(auid) {
                    let key = if p.is_empty() {
                        "xmlns".to_owned()
                    } else {
                        format!("xmlns:{p}")
                    };
                    decl = decl.attr(&key, ns);
                }
                let mut out = String::new();
                Element {
                    name: el.name.clone(),
                    attrs: decl.attrs,
                    ..Element::default()
                }
                .write(&mut out);
                with_etag(StatusCode::OK, &etag, NS_TYPE, out)
            }
        })
    }

    /// Takes the write lock and the document as it stands, once the
    /// request's preconditions hold.
    async fn start_write(
        &self,
        job: &Job,
        headers: &HeaderMap,
    ) -> Result<(tokio::sync::MutexGuard<'_, ()>, Element), Fail> {
        if job.uri.auid == Auid::Caps {
            return Err(read_only());
        }
        let one = self.writing.lock().await;
        let tree = self.load(job).await?;
        let (_, etag) = Self::render(job.uri.auid, &tree);
        preconditions(headers, &etag, false)?;
        Ok((one, tree))
    }

    async fn put(&self, job: &Job, headers: &HeaderMap, body: &[u8]) -> Result<Response, Fail> {
        let (_one, mut tree) = self.start_write(job, headers).await?;
        let ct = content_type(headers);
        let mut created = false;
        match &job.uri.node {
            None => {
                if ct != mime(job.uri.auid) {
                    return Err(unsupported(mime(job.uri.auid)));
                }
                tree = parse_body(body, "not-well-formed")?;
            }
            Some(node) => match &node.terminal {
                None => {
                    if ct != EL_TYPE {
                        return Err(unsupported(EL_TYPE));
                    }
                    let new = parse_body(body, "not-xml-frag")?;
                    created = put_element(&mut tree, node, new, &job.uri.document_path)?;
                }
                Some(Terminal::Attribute(a)) => {
                    if ct != ATT_TYPE {
                        return Err(unsupported(ATT_TYPE));
                    }
                    let value = attribute_value(body)?;
                    created = put_attribute(&mut tree, node, &a.local, value)?;
                }
                Some(Terminal::Namespaces) => return Err(namespaces_read_only()),
            },
        }
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        self.write(job, &tree, status).await
    }

    /// Writes `tree` through the bridge and answers `status` with the ETag
    /// of the document as the bridge now makes it.
    async fn write(&self, job: &Job, tree: &Element, status: StatusCode) -> Result<Response, Fail> {
        self.store(job, tree).await?;
        let (_, etag) = Self::render(job.uri.auid, &self.load(job).await?);
        Ok((status, [(header::ETAG, etag)]).into_response())
    }

    async fn delete(&self, job: &Job, headers: &HeaderMap) -> Result<Response, Fail> {
        let (_one, mut tree) = self.start_write(job, headers).await?;
        match &job.uri.node {
            // The document is a view of the store: deleting it empties it.
            None => tree.children.clear(),
            Some(node) => {
                let path = node.locate(&tree).ok_or_else(no_node)?;
                match &node.terminal {
                    None => {
                        let Some((&last, parent)) = path.split_last() else {
                            return Err(conflict(error_el(
                                "cannot-delete",
                                "the root goes with the document",
                            )));
                        };
                        selector::at_mut(&mut tree, parent).children.remove(last);
                        // RFC 4825 §8.4.3: the selector must select nothing now.
                        if node.locate(&tree).is_some() {
                            return Err(conflict(error_el(
                                "cannot-delete",
                                "the selector would still select an element",
                            )));
                        }
                    }
                    Some(Terminal::Attribute(a)) => {
                        let el = selector::at_mut(&mut tree, &path);
                        let before = el.attrs.len();
                        el.attrs.retain(|(n, _)| n != &a.local);
                        if el.attrs.len() == before {
                            return Err(no_node());
                        }
                    }
                    Some(Terminal::Namespaces) => return Err(namespaces_read_only()),
                }
            }
        }
        self.write(job, &tree, StatusCode::OK).await
    }
}

/// The namespace bindings (`namespace::*`) are only read.
fn namespaces_read_only() -> Fail {
    (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET")])
        .into_response()
        .into()
}

fn unsupported(want: &str) -> Fail {
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!("this resource is written as {want}\n"),
    )
        .into_response()
        .into()
}

/// Reads a document or element body; `not_xml` names the 409 error for a
/// body that is not well-formed.
fn parse_body(body: &[u8], not_xml: &str) -> Result<Element, Fail> {
    if std::str::from_utf8(body).is_err() {
        return Err(conflict(error_el("not-utf-8", "the body is not UTF-8")));
    }
    crate::xml::parse(body, &XCAP_RULES).map_err(|e| match e {
        // Well-formed, but deeper or larger than this server reads.
        crate::xml::XmlError::TooBig => conflict(error_el("constraint-failure", &e.to_string())),
        _ => conflict(error_el(not_xml, &e.to_string())),
    })
}

/// An attribute value body (RFC 4825 §8.2.1: the value as it would stand
/// between quotes, entities and all).
fn attribute_value(body: &[u8]) -> Result<String, Fail> {
    let bad = |why: &str| conflict(error_el("not-xml-att-value", why));
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
    if text.contains('<') || text.contains('"') {
        return Err(bad("< and \" must be escaped"));
    }
    let doc = format!("<a v=\"{text}\"/>");
    let el = crate::xml::parse(doc.as_bytes(), &XCAP_RULES).map_err(|e| bad(&e.to_string()))?;
    Ok(el.attribute("v").unwrap_or_default().to_owned())
}

/// PUT of an element (RFC 4825 §8.2.3): replaces the one selected, else
/// inserts under the parent the other steps select; `Ok(true)` when created.
fn put_element(
    tree: &mut Element,
    node: &NodeSelector,
    new: Element,
    document_path: &str,
) -> Result<bool, Fail> {
    let cannot = |why: &str| conflict(error_el("cannot-insert", why));
    if !node.last_step_names(&new) {
        return Err(cannot("the element is not what the selector names"));
    }
    let created = match node.locate(tree) {
        Some(path) => {
            match path.split_last() {
                Some((&last, parent)) => {
                    selector::at_mut(tree, parent).children[last] = new.clone()
                }
                None => *tree = new.clone(),
            }
            false
        }
        None => {
            let n = node.steps.len();
            let Some(parent) = node.locate_prefix(tree, n - 1).filter(|_| n > 1) else {
                let matched = node.matched_steps(tree);
                let ancestor = if matched == 0 {
                    document_path.to_owned()
                } else {
                    format!("{document_path}/~~/{}", node.prefix_text(matched))
                };
                return Err(conflict(
                    error_el("no-parent", "the parent does not exist").with(Element {
                        ns: Some(docs::ERR_NS.into()),
                        ..Element::text("ancestor", &ancestor)
                    }),
                ));
            };
            let p = selector::at_mut(tree, &parent);
            let last = &node.steps[n - 1];
            if let Some(pos) = last.position {
                // Inserted so that it is the pos-th of its name.
                let same: Vec<usize> = p
                    .children
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.name == new.name)
                    .map(|(i, _)| i)
                    .collect();
                let at = match pos.checked_sub(1).map(|k| same.get(k)) {
                    Some(Some(&i)) => i,
                    _ if pos == same.len() + 1 => same.last().map_or(p.children.len(), |&i| i + 1),
                    _ => return Err(cannot("no such position")),
                };
                p.children.insert(at, new.clone());
            } else {
                p.children.push(new.clone());
            }
            true
        }
    };
    // Idempotency (RFC 4825 §8.2.5): the selector now selects what was put.
    match node.locate(tree) {
        Some(path) if docs::same(selector::at(tree, &path), &new) => Ok(created),
        _ => Err(cannot("the selector would not select the element put")),
    }
}

/// PUT of an attribute: sets it on the selected element; `Ok(true)` when
/// it was not there.
fn put_attribute(
    tree: &mut Element,
    node: &NodeSelector,
    name: &str,
    value: String,
) -> Result<bool, Fail> {
    let Some(path) = node.locate(tree) else {
        return Err(conflict(error_el(
            "no-parent",
            "the element does not exist",
        )));
    };
    let el = selector::at_mut(tree, &path);
    let created = match el.attrs.iter_mut().find(|(n, _)| n == name) {
        Some(slot) => {
            slot.1.clone_from(&value);
            false
        }
        None => {
            el.attrs.push((name.to_owned(), value.clone()));
            true
        }
    };
    match node.locate(tree) {
        Some(p) if selector::at(tree, &p).attribute(name) == Some(value.as_str()) => Ok(created),
        _ => Err(conflict(error_el(
            "cannot-insert",
            "the selector would not select the attribute put",
        ))),
    }
}

/// The XCAP parsers for `cargo fuzz` (`fuzz/fuzz_targets/xcap.rs`): the
/// first line of `data` is a request path with a node selector (and a query
/// after `?`), the rest a body. Parses both; with a document body, applies
/// the selector's GET, PUT (of the body's own root, of an attribute) and
/// DELETE to it, reads the result as both application usages and writes it
/// back: nothing may panic, and what is written must read again. Not an API.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    let (line, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let line = String::from_utf8_lossy(line);
    let (path, query) = match line.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (line.as_ref(), None),
    };
    let node = match selector::parse_uri(path, query) {
        Ok(u) => u.node,
        Err(_) => selector::parse_selector(path, Vec::new()).ok(),
    };
    let Ok(doc) = crate::xml::parse(body, &XCAP_RULES) else {
        return;
    };
    let mut trees = vec![doc.clone()];
    if let Some(node) = &node {
        if let Some(path) = node.locate(&doc) {
            let _ = selector::at(&doc, &path);
        }
        let mut t = doc.clone();
        if put_element(&mut t, node, doc.clone(), "/x").is_ok() {
            trees.push(t);
        }
        let mut t = doc.clone();
        if put_attribute(&mut t, node, "name", "v".into()).is_ok() {
            trees.push(t);
        }
        let mut t = doc.clone();
        if let Some((&last, parent)) = node.locate(&t).as_deref().and_then(<[usize]>::split_last) {
            selector::at_mut(&mut t, parent).children.remove(last);
            trees.push(t);
        }
    }
    for t in &trees {
        if let Ok(lists) = docs::read_lists(t, "sms.test") {
            let again = docs::render(&docs::lists_tree(&lists), docs::RL_PREFIXES, true);
            let text = again.to_document();
            let read = crate::xml::parse(text.as_bytes(), &XCAP_RULES)
                .ok()
                .and_then(|e| docs::read_lists(&e, "sms.test").ok());
            assert_eq!(read.as_ref(), Some(&lists), "{text}");
        }
        if let Ok(rules) = docs::read_rules(t) {
            let text =
                docs::render(&docs::rules_tree(&rules), docs::PR_PREFIXES, true).to_document();
            assert!(
                crate::xml::parse(text.as_bytes(), &XCAP_RULES)
                    .is_ok_and(|e| docs::read_rules(&e).is_ok()),
                "{text}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_fuzz_entry_takes_documents_selectors_and_junk() {
        let rl = "<resource-lists xmlns=\"urn:ietf:params:xml:ns:resource-lists\">\
                  <list name=\"a\"><entry uri=\"sip:b@c\"><display-name>B</display-name></entry></list>\
                  <list name=\"z\"/></resource-lists>";
        let pr = "<cp:ruleset xmlns:cp=\"urn:ietf:params:xml:ns:common-policy\" \
                  xmlns=\"urn:ietf:params:xml:ns:pres-rules\"><cp:rule id=\"r\"/></cp:ruleset>";
        for input in [
            format!("resource-lists/list[@name=\"a\"]\n{rl}"),
            format!("resource-lists/list[2]/@name\n{rl}"),
            format!("/xcap-root/resource-lists/users/sip:a@b/index/~~/resource-lists\n{rl}"),
            format!("cp:ruleset/cp:rule[1]?xmlns(cp=urn:ietf:params:xml:ns:common-policy)\n{pr}"),
            format!("other\n{rl}"),
            format!("resource-lists/other/deeper\n{rl}"),
            "a[\n<a".to_owned(),
            String::new(),
        ] {
            super::fuzz(input.as_bytes());
        }
    }
}
