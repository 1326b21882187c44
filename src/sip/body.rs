//! What a MESSAGE body holds: text (`text/plain` in a known charset, bare or
//! inside CPIM), a typing indication (RFC 3994), or a client's own IMDN. Pure
//! functions; the caller maps [`BodyError`] to 415 or 400.

use super::cpim;
use super::imdn::Imdn;
use super::wire::value_and_params;
use crate::bridge::api::NotifyOn;

/// The content types a MESSAGE may carry, for `Accept` (RFC 3261 §21.4.13).
pub(crate) const ACCEPT: &str = "text/plain, message/cpim";

/// A parsed Content-Type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContentType {
    /// `type/subtype`, lower-cased.
    pub(crate) mime: String,
    pub(crate) params: Vec<(String, Option<String>)>,
}

impl ContentType {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let (mime, params) = value_and_params(s);
        let mime = mime.to_ascii_lowercase();
        let (t, st) = mime.split_once('/')?;
        if t.is_empty() || st.is_empty() || mime.contains(char::is_whitespace) {
            return None;
        }
        Some(Self { mime, params })
    }

    pub(crate) fn charset(&self) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == "charset")
            .and_then(|(_, v)| v.as_deref())
    }
}

/// What the body of a MESSAGE turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImContent {
    /// Text for an SMS.
    Text {
        text: String,
        im_message_id: Option<String>,
        notify: NotifyOn,
    },
    /// `application/im-iscomposing+xml`: answered 200 and dropped.
    Composing,
    /// A `message/imdn+xml` from the user's client (about an SMS we delivered):
    /// answered 200 and dropped.
    Notification(Imdn),
}

/// Why a body cannot be sent as SMS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BodyError {
    /// 415 with `Accept`.
    #[error("unsupported content: {0}")]
    Unsupported(String),
    /// 400.
    #[error("{0}")]
    Invalid(String),
}

const COMPOSING: &str = "application/im-iscomposing+xml";
const IMDN: &str = "message/imdn+xml";

/// Reads a MESSAGE body. A missing Content-Type on a non-empty body is taken
/// as `text/plain` (RFC 3261 requires one; many small clients forget it).
pub(crate) fn read_im(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
) -> Result<ImContent, BodyError> {
    if let Some(enc) = content_encoding.map(str::trim)
        && !enc.is_empty()
        && !enc.eq_ignore_ascii_case("identity")
    {
        return Err(BodyError::Unsupported(format!("Content-Encoding {enc}")));
    }
    if body.is_empty() {
        return Err(BodyError::Invalid("the MESSAGE has no body".into()));
    }
    let ct = match content_type {
        Some(s) => ContentType::parse(s)
            .ok_or_else(|| BodyError::Invalid(format!("bad Content-Type {s:?}")))?,
        None => ContentType {
            mime: "text/plain".into(),
            params: Vec::new(),
        },
    };
    match ct.mime.as_str() {
        "text/plain" => Ok(ImContent::Text {
            text: decode_text(body, ct.charset())?,
            im_message_id: None,
            notify: NotifyOn::default(),
        }),
        COMPOSING => Ok(ImContent::Composing),
        IMDN => read_imdn(body),
        "message/cpim" => read_cpim(body),
        other => Err(BodyError::Unsupported(other.to_owned())),
    }
}

fn read_cpim(body: &[u8]) -> Result<ImContent, BodyError> {
    let c = cpim::parse(body).map_err(|e| BodyError::Invalid(e.to_string()))?;
    let inner = c
        .content_header("Content-Type")
        .map(|s| {
            ContentType::parse(s)
                .ok_or_else(|| BodyError::Invalid(format!("bad CPIM Content-Type {s:?}")))
        })
        .transpose()?
        .unwrap_or(ContentType {
            mime: "text/plain".into(),
            params: Vec::new(),
        });
    match inner.mime.as_str() {
        "text/plain" => {
            if c.body.is_empty() {
                return Err(BodyError::Invalid("the CPIM message has no content".into()));
            }
            let (im_message_id, notify) = c.imdn_request();
            Ok(ImContent::Text {
                text: decode_text(&c.body, inner.charset())?,
                im_message_id,
                notify,
            })
        }
        COMPOSING => Ok(ImContent::Composing),
        IMDN => read_imdn(&c.body),
        other => Err(BodyError::Unsupported(format!("message/cpim with {other}"))),
    }
}

fn read_imdn(body: &[u8]) -> Result<ImContent, BodyError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| BodyError::Invalid("the IMDN is not UTF-8".into()))?;
    Imdn::from_xml(text)
        .map(ImContent::Notification)
        .map_err(|e| BodyError::Invalid(e.to_string()))
}

/// Decodes text in a charset: UTF-8 (the default, a BOM is dropped), US-ASCII,
/// ISO-8859-1, UTF-16 (BOM, else big-endian), UTF-16BE, UTF-16LE here (as IANA
/// defines them: the WHATWG tables read ASCII and Latin-1 as windows-1252), and
/// any other charset the WHATWG Encoding Standard knows by name through
/// encoding_rs (KOI8-R, Shift_JIS, GB18030, Big5, EUC-KR, ISO-8859-x,
/// windows-125x …). An unknown charset is [`BodyError::Unsupported`]; bytes
/// that are not valid in the charset are [`BodyError::Invalid`].
pub(crate) fn decode_text(bytes: &[u8], charset: Option<&str>) -> Result<String, BodyError> {
    let cs = charset.unwrap_or("utf-8").trim().to_ascii_lowercase();
    let bad = |what: &str| BodyError::Invalid(format!("the text is not valid {what}"));
    match cs.as_str() {
        "utf-8" | "utf8" => {
            let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
            String::from_utf8(b.to_vec()).map_err(|_| bad("UTF-8"))
        }
        "us-ascii" | "ascii" | "ansi_x3.4-1968" | "iso646-us" | "us" => {
            if bytes.is_ascii() {
                Ok(bytes.iter().map(|&b| char::from(b)).collect())
            } else {
                Err(bad("US-ASCII"))
            }
        }
        "iso-8859-1" | "iso_8859-1" | "latin1" | "l1" | "iso-ir-100" | "cp819" | "ibm819" => {
            Ok(bytes.iter().map(|&b| char::from(b)).collect())
        }
        "utf-16" => match bytes {
            [0xFF, 0xFE, rest @ ..] => utf16(rest, u16::from_le_bytes).ok_or_else(|| bad("UTF-16")),
            [0xFE, 0xFF, rest @ ..] => utf16(rest, u16::from_be_bytes).ok_or_else(|| bad("UTF-16")),
            _ => utf16(bytes, u16::from_be_bytes).ok_or_else(|| bad("UTF-16")),
        },
        "utf-16be" => utf16(bytes, u16::from_be_bytes).ok_or_else(|| bad("UTF-16BE")),
        "utf-16le" => utf16(bytes, u16::from_le_bytes).ok_or_else(|| bad("UTF-16LE")),
        other => match encoding_rs::Encoding::for_label_no_replacement(other.as_bytes()) {
            Some(enc) => enc
                .decode_without_bom_handling_and_without_replacement(bytes)
                .map(|t| t.into_owned())
                .ok_or_else(|| bad(enc.name())),
            None => Err(BodyError::Unsupported(format!("charset {other}"))),
        },
    }
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units = bytes.chunks_exact(2).map(|c| unit([c[0], c[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .ok()
}

/// Whether `Privacy` asks to hide the sender's identity (RFC 3323: `id`,
/// `user`, `header`, `session`, `critical`; `none` asks for nothing).
pub(crate) fn privacy_requested(privacy: &[&str]) -> bool {
    privacy.iter().flat_map(|v| v.split(';')).any(|t| {
        let t = t.trim().to_ascii_lowercase();
        matches!(t.as_str(), "id" | "user" | "header")
    })
}

/// Whether an `Event` header value names the presence package.
pub(crate) fn is_presence_event(event: &str) -> bool {
    let (pkg, _) = value_and_params(event);
    pkg.eq_ignore_ascii_case("presence")
}

/// The `id` parameter of an Event header, kept for NOTIFY (RFC 6665 §8.2.1).
pub(crate) fn event_id(event: &str) -> Option<String> {
    let (_, params) = value_and_params(event);
    params
        .into_iter()
        .find(|(n, _)| n == "id")
        .and_then(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charsets() {
        assert_eq!(
            decode_text("grüße 👍".as_bytes(), None).unwrap(),
            "grüße 👍"
        );
        assert_eq!(decode_text(b"\xEF\xBB\xBFhi", Some("UTF-8")).unwrap(), "hi");
        assert_eq!(
            decode_text(b"gr\xfc\xdfe", Some("ISO-8859-1")).unwrap(),
            "grüße"
        );
        assert_eq!(decode_text(b"plain", Some("us-ascii")).unwrap(), "plain");
        assert_eq!(
            decode_text(b"\xfe\xff\x00h\xd8\x3d\xdc\x4d", Some("utf-16")).unwrap(),
            "h👍"
        );
        assert_eq!(decode_text(b"h\x00i\x00", Some("utf-16le")).unwrap(), "hi");
        assert!(matches!(
            decode_text(b"gr\xfc", Some("us-ascii")),
            Err(BodyError::Invalid(_))
        ));
        assert!(matches!(
            decode_text(b"\xc3(", None),
            Err(BodyError::Invalid(_))
        ));
        assert!(matches!(
            decode_text(b"\xd8\x3d", Some("utf-16be")),
            Err(BodyError::Invalid(_))
        ));
        // Any charset the WHATWG Encoding Standard names.
        assert_eq!(
            decode_text(b"\xf0\xd2\xc9\xd7\xc5\xd4", Some("KOI8-R")).unwrap(),
            "Привет"
        );
        assert_eq!(
            decode_text(
                b"\x82\xb1\x82\xf1\x82\xc9\x82\xbf\x82\xcd",
                Some("Shift_JIS")
            )
            .unwrap(),
            "こんにちは"
        );
        assert_eq!(
            decode_text(b"\xc4\xe3\xba\xc3", Some("gb2312")).unwrap(),
            "你好"
        );
        assert_eq!(decode_text(b"\x80 5", Some("windows-1252")).unwrap(), "€ 5");
        assert!(matches!(
            decode_text(b"\x82", Some("shift_jis")),
            Err(BodyError::Invalid(_))
        ));
        assert_eq!(
            decode_text(b"x", Some("x-klingon")),
            Err(BodyError::Unsupported("charset x-klingon".into()))
        );
        // A label the standard maps to "replacement" is not a charset to read.
        assert!(matches!(
            decode_text(b"x", Some("iso-2022-kr")),
            Err(BodyError::Unsupported(_))
        ));
    }

    #[test]
    fn message_bodies() {
        let text = |t: &str| ImContent::Text {
            text: t.into(),
            im_message_id: None,
            notify: NotifyOn::default(),
        };
        assert_eq!(
            read_im(
                Some("text/plain;charset=\"iso-8859-1\""),
                None,
                b"\xe9t\xe9"
            )
            .unwrap(),
            text("été")
        );
        assert_eq!(read_im(None, None, b"no type").unwrap(), text("no type"));
        assert_eq!(
            read_im(Some("application/im-iscomposing+xml"), None, b"<x/>").unwrap(),
            ImContent::Composing
        );
        assert_eq!(
            read_im(Some("image/png"), None, b"\x89PNG"),
            Err(BodyError::Unsupported("image/png".into()))
        );
        assert!(matches!(
            read_im(Some("text/plain"), None, b""),
            Err(BodyError::Invalid(_))
        ));
        assert!(matches!(
            read_im(Some("text/plain"), Some("gzip"), b"x"),
            Err(BodyError::Unsupported(_))
        ));
        assert!(matches!(
            read_im(Some("garbage"), None, b"x"),
            Err(BodyError::Invalid(_))
        ));
        let cpim = b"NS: imdn <urn:ietf:params:imdn>\r\nimdn.Message-ID: a1\r\n\
            imdn.Disposition-Notification: positive-delivery, negative-delivery\r\n\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\r\nHallo";
        assert_eq!(
            read_im(Some("Message/CPIM"), None, cpim).unwrap(),
            ImContent::Text {
                text: "Hallo".into(),
                im_message_id: Some("a1".into()),
                notify: NotifyOn {
                    displayed: false,
                    delivered: true,
                    failed: true
                },
            }
        );
        let imdn = b"From: <sip:a@b>\r\n\r\nContent-Type: message/imdn+xml\r\n\r\n\
            <imdn xmlns=\"urn:ietf:params:xml:ns:imdn\"><message-id>m</message-id>\
            <datetime>t</datetime><delivery-notification><status><delivered/></status>\
            </delivery-notification></imdn>";
        assert!(matches!(
            read_im(Some("message/cpim"), None, imdn).unwrap(),
            ImContent::Notification(n) if n.message_id == "m" && n.status == "delivered"
        ));
        let evil = b"From: <sip:a@b>\r\n\r\nContent-Type: message/imdn+xml\r\n\r\n\
            <!DOCTYPE imdn [<!ENTITY a \"aaaa\">]><imdn>&a;</imdn>";
        assert!(matches!(
            read_im(Some("message/cpim"), None, evil),
            Err(BodyError::Invalid(_))
        ));
        let html = b"From: <sip:a@b>\r\n\r\nContent-Type: text/html\r\n\r\n<b>x</b>";
        assert!(matches!(
            read_im(Some("message/cpim"), None, html),
            Err(BodyError::Unsupported(_))
        ));
        assert!(matches!(
            read_im(Some("message/cpim"), None, b"broken"),
            Err(BodyError::Invalid(_))
        ));
    }

    #[test]
    fn privacy_and_events() {
        assert!(privacy_requested(&["id"]));
        assert!(privacy_requested(&["header;id"]));
        assert!(!privacy_requested(&["none"]));
        assert!(!privacy_requested(&[]));
        assert!(is_presence_event("presence;id=7"));
        assert!(!is_presence_event("message-summary"));
        assert_eq!(event_id("presence;id=7").as_deref(), Some("7"));
    }
}
