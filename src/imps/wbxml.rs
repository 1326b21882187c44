//! WBXML 1.3 for WV-CSP, sans-IO: bytes to the [`Element`] tree the XML
//! reader builds, and that tree back to bytes, with the CSP 1.1, 1.2 and 1.3
//! token tables (`wbxml/tags.rs`, `wbxml/values.rs`). Read: the header
//! (version, the CSP public identifiers, UTF-8), the string table, code page
//! switches, tags with attribute and content bits, `STR_I`, `STR_T`,
//! `ENTITY`, `EXT_T_0` value tokens, `OPAQUE` integers and dates, `END`.
//! Refused with an error: literal tags and attributes, processing
//! instructions, the other extension tokens, opaque data where the CSP has
//! none, and documents over the size, depth, element and text limits.

mod tags;
mod tokens;
mod values;

use crate::xml::{Element, MAX_INPUT, Rules};
use tokens::Opaque;
pub use tokens::Version;

/// Whether CSP `version` defines element `name` (for 1.3: not one of the
/// elements 1.3 removed).
pub fn defines(version: Version, name: &str) -> bool {
    tokens::defines(version, name)
}

/// The HTTP content type of the WBXML encoding (CSP 1.3).
pub const CONTENT_TYPE: &str = "application/vnd.wv.csp+wbxml";
/// The WBXML content type CSP 1.1 and 1.2 clients use.
pub const CONTENT_TYPE_OLD: &str = "application/vnd.wv.csp.wbxml";

const SWITCH_PAGE: u8 = 0x00;
const END: u8 = 0x01;
const ENTITY: u8 = 0x02;
const STR_I: u8 = 0x03;
const EXT_T_0: u8 = 0x80;
const STR_T: u8 = 0x83;
const OPAQUE: u8 = 0xC3;
/// The charset MIBenum of UTF-8; 3 (US-ASCII) is a subset and read as well.
const UTF8: u32 = 106;
/// Decoded text can outgrow its input (string table references, value
/// tokens); this caps all text of one document.
const MAX_TEXT: usize = 4 * MAX_INPUT;

/// A decoded document: the table version it used and its root element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The CSP version of the token tables.
    pub version: Version,
    /// The root element, as [`crate::xml`] would have read the XML form.
    pub root: Element,
}

/// Why bytes are not a WV-CSP WBXML document, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("WBXML at byte {at}: {kind}")]
pub struct WbxmlError {
    /// Offset of the offending byte.
    pub at: usize,
    /// What was wrong.
    pub kind: ErrorKind,
}

/// What was wrong with a WBXML document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The input ended inside a token.
    #[error("truncated")]
    Truncated,
    /// WBXML versions 1.1 to 1.3 are read.
    #[error("WBXML version 0x{0:02x} is not read")]
    Version(u8),
    /// Not a WV-CSP public identifier.
    #[error("public identifier {0} is not a WV-CSP one")]
    PublicId(String),
    /// Only UTF-8 (and its subset US-ASCII) is read.
    #[error("charset {0} is not UTF-8")]
    Charset(u32),
    /// A tag token the version's tables do not define.
    #[error("no CSP element has tag token 0x{token:02x} on code page {page}")]
    UnknownTag {
        /// The code page.
        page: u8,
        /// The token, without its attribute and content bits.
        token: u8,
    },
    /// An attribute start token that is not a namespace declaration.
    #[error("attribute token 0x{token:02x} on code page {page} is not a CSP attribute")]
    UnknownAttribute {
        /// The attribute code page.
        page: u8,
        /// The token.
        token: u8,
    },
    /// An `EXT_T_0` index the version's value tokens do not define.
    #[error("no CSP value token 0x{0:x}")]
    UnknownValue(u32),
    /// A token WBXML has but the CSP does not use.
    #[error("{0} is not used by the CSP")]
    Unsupported(&'static str),
    /// Opaque data in an element that is not an integer or a date, or of
    /// the wrong length for one.
    #[error("opaque data is not a CSP {0}")]
    Opaque(String),
    /// A string that is not UTF-8 or has no terminating NUL.
    #[error("a string is not NUL-terminated UTF-8")]
    BadString,
    /// A string table reference outside the table.
    #[error("string table offset {0} is outside the table")]
    StringIndex(u32),
    /// An `ENTITY` that is not a Unicode scalar value XML can carry.
    #[error("entity &#{0}; is not a character")]
    Entity(u32),
    /// A multi-byte integer longer than 32 bits.
    #[error("a multi-byte integer overflows 32 bits")]
    Integer,
    /// Over the size, depth, element or text limits.
    #[error("document too large or too deep")]
    TooBig,
    /// Anything else out of place.
    #[error("{0}")]
    Malformed(&'static str),
}

/// Why an element tree cannot be written as WV-CSP WBXML.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The version's tables have no token for this element.
    #[error("no {version:?} tag token for <{name}>")]
    UnknownElement {
        /// The element name.
        name: String,
        /// The table version.
        version: Version,
    },
    /// The CSP has attributes only for namespace declarations.
    #[error("attribute {0} cannot be written in CSP WBXML")]
    Attribute(String),
    /// A namespace without an attribute start token.
    #[error("namespace {0} has no CSP attribute token")]
    Namespace(String),
}

/// Reads a WV-CSP WBXML document.
pub fn decode(input: &[u8]) -> Result<Document, WbxmlError> {
    if input.len() > MAX_INPUT {
        return Err(WbxmlError {
            at: 0,
            kind: ErrorKind::TooBig,
        });
    }
    let mut r = Reader {
        buf: input,
        pos: 0,
        strings: &[],
        version: Version::V13,
        tag_page: 0,
        attr_page: 0,
        elements: 0,
        text: 0,
    };
    let version = r.header()?;
    r.version = version;
    let root = r.element(0, None)?;
    if r.pos != input.len() {
        return Err(r.err(ErrorKind::Malformed("data after the root element")));
    }
    Ok(Document { version, root })
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    strings: &'a [u8],
    version: Version,
    tag_page: u8,
    attr_page: u8,
    elements: usize,
    text: usize,
}

impl<'a> Reader<'a> {
    fn err(&self, kind: ErrorKind) -> WbxmlError {
        WbxmlError { at: self.pos, kind }
    }

    fn byte(&mut self) -> Result<u8, WbxmlError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.err(ErrorKind::Truncated))?;
        self.pos += 1;
        Ok(b)
    }

    fn peek(&self) -> Result<u8, WbxmlError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.err(ErrorKind::Truncated))
    }

    /// A `mb_u_int32`: 7 bits per octet, most significant first.
    fn mb_u32(&mut self) -> Result<u32, WbxmlError> {
        let start = self.pos;
        let mut v: u32 = 0;
        for _ in 0..5 {
            let b = self.byte()?;
            if v > (u32::MAX >> 7) {
                return Err(WbxmlError {
                    at: start,
                    kind: ErrorKind::Integer,
                });
            }
            v = (v << 7) | u32::from(b & 0x7F);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(WbxmlError {
            at: start,
            kind: ErrorKind::Integer,
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WbxmlError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or_else(|| self.err(ErrorKind::Truncated))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn header(&mut self) -> Result<Version, WbxmlError> {
        let v = self.byte()?;
        if !(0x01..=0x03).contains(&v) {
            self.pos -= 1;
            return Err(self.err(ErrorKind::Version(v)));
        }
        let id_at = self.pos;
        let id = self.mb_u32()?;
        let literal = if id == 0 { Some(self.mb_u32()?) } else { None };
        let charset_at = self.pos;
        let charset = self.mb_u32()?;
        if charset != UTF8 && charset != 3 {
            return Err(WbxmlError {
                at: charset_at,
                kind: ErrorKind::Charset(charset),
            });
        }
        let len = self.mb_u32()? as usize;
        self.strings = self.take(len)?;
        let bad_id = |what: String| WbxmlError {
            at: id_at,
            kind: ErrorKind::PublicId(what),
        };
        match (id, literal) {
            (0, Some(i)) => {
                let s = self.table_string(i)?;
                Version::from_formal(&s).ok_or_else(|| bad_id(format!("{s:?}")))
            }
            // Unknown or missing: the root's namespace says which.
            (1, _) => Ok(self.sniff_version().unwrap_or(Version::V13)),
            (n, _) => Version::from_public_id(n).ok_or_else(|| bad_id(format!("0x{n:x}"))),
        }
    }

    fn sniff_version(&self) -> Option<Version> {
        let rest = self.buf.get(self.pos..)?;
        let rest = match rest {
            [SWITCH_PAGE, 0, tail @ ..] => tail,
            r => r,
        };
        match rest {
            [tag, SWITCH_PAGE, 0, attr, ..] | [tag, attr, ..]
                if tag & 0x3F == 0x09 && tag & 0x80 != 0 =>
            {
                tokens::version_of_xmlns(*attr)
            }
            _ => None,
        }
    }

    fn table_string(&self, offset: u32) -> Result<String, WbxmlError> {
        let bad = || self.err(ErrorKind::StringIndex(offset));
        let tail = self.strings.get(offset as usize..).ok_or_else(bad)?;
        let end = tail.iter().position(|b| *b == 0).ok_or_else(bad)?;
        std::str::from_utf8(&tail[..end])
            .map(str::to_owned)
            .map_err(|_| self.err(ErrorKind::BadString))
    }

    fn inline_string(&mut self) -> Result<String, WbxmlError> {
        let tail = self.buf.get(self.pos..).unwrap_or_default();
        let end = tail
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| self.err(ErrorKind::BadString))?;
        let s = std::str::from_utf8(&tail[..end]).map_err(|_| self.err(ErrorKind::BadString))?;
        self.pos += end + 1;
        Ok(s.to_owned())
    }

    fn push_text(&mut self, into: &mut String, s: &str) -> Result<(), WbxmlError> {
        self.text += s.len();
        if self.text > MAX_TEXT {
            return Err(self.err(ErrorKind::TooBig));
        }
        into.push_str(s);
        Ok(())
    }

    fn entity(&mut self) -> Result<char, WbxmlError> {
        let at = self.pos;
        let code = self.mb_u32()?;
        char::from_u32(code)
            .filter(|c| !matches!(*c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}'))
            .ok_or(WbxmlError {
                at,
                kind: ErrorKind::Entity(code),
            })
    }

    /// One element: its tag token was not read yet. `inherited` is the
    /// namespace of the parent, as an XML reader resolves it.
    fn element(&mut self, depth: usize, inherited: Option<&str>) -> Result<Element, WbxmlError> {
        while self.peek()? == SWITCH_PAGE {
            self.pos += 1;
            self.tag_page = self.byte()?;
        }
        self.elements += 1;
        if depth >= Rules::CSP.max_depth || self.elements > Rules::CSP.max_elements {
            return Err(self.err(ErrorKind::TooBig));
        }
        let at = self.pos;
        let t = self.byte()?;
        let token = t & 0x3F;
        if token < 0x05 {
            self.pos = at;
            return Err(self.err(global_token_error(t)));
        }
        let name = tokens::tag_name(self.version, self.tag_page, token).ok_or(WbxmlError {
            at,
            kind: ErrorKind::UnknownTag {
                page: self.tag_page,
                token,
            },
        })?;
        let mut el = Element::new(name);
        el.ns = inherited.map(str::to_owned);
        if t & 0x80 != 0 {
            self.attributes(&mut el)?;
        }
        if t & 0x40 != 0 {
            self.content(&mut el, depth)?;
        }
        Ok(el)
    }

    fn attributes(&mut self, el: &mut Element) -> Result<(), WbxmlError> {
        loop {
            let at = self.pos;
            match self.byte()? {
                END => return Ok(()),
                SWITCH_PAGE => self.attr_page = self.byte()?,
                t if (0x05..0x80).contains(&t) => {
                    let prefix = (self.attr_page == 0)
                        .then(|| tokens::xmlns_prefix(self.version, t))
                        .flatten()
                        .ok_or(WbxmlError {
                            at,
                            kind: ErrorKind::UnknownAttribute {
                                page: self.attr_page,
                                token: t,
                            },
                        })?;
                    let mut uri = prefix.to_owned();
                    self.attribute_value(&mut uri)?;
                    el.ns = Some(uri);
                }
                t => {
                    self.pos = at;
                    return Err(self.err(global_token_error(t)));
                }
            }
        }
    }

    fn attribute_value(&mut self, into: &mut String) -> Result<(), WbxmlError> {
        loop {
            match self.peek()? {
                STR_I => {
                    self.pos += 1;
                    let s = self.inline_string()?;
                    self.push_text(into, &s)?;
                }
                STR_T => {
                    self.pos += 1;
                    let i = self.mb_u32()?;
                    let s = self.table_string(i)?;
                    self.push_text(into, &s)?;
                }
                ENTITY => {
                    self.pos += 1;
                    let c = self.entity()?;
                    self.push_text(into, c.encode_utf8(&mut [0; 4]))?;
                }
                _ => return Ok(()),
            }
        }
    }

    fn content(&mut self, el: &mut Element, depth: usize) -> Result<(), WbxmlError> {
        loop {
            let at = self.pos;
            match self.peek()? {
                END => {
                    self.pos += 1;
                    return Ok(());
                }
                STR_I => {
                    self.pos += 1;
                    let s = self.inline_string()?;
                    self.push_text(&mut el.text, &s)?;
                }
                STR_T => {
                    self.pos += 1;
                    let i = self.mb_u32()?;
                    let s = self.table_string(i)?;
                    self.push_text(&mut el.text, &s)?;
                }
                ENTITY => {
                    self.pos += 1;
                    let c = self.entity()?;
                    self.push_text(&mut el.text, c.encode_utf8(&mut [0; 4]))?;
                }
                EXT_T_0 => {
                    self.pos += 1;
                    let i = self.mb_u32()?;
                    let s = tokens::value_text(self.version, i).ok_or(WbxmlError {
                        at,
                        kind: ErrorKind::UnknownValue(i),
                    })?;
                    self.push_text(&mut el.text, s)?;
                }
                OPAQUE => {
                    self.pos += 1;
                    let s = self.opaque(&el.name)?;
                    self.push_text(&mut el.text, &s)?;
                }
                t if t & 0x3F >= 0x05 || t == SWITCH_PAGE => {
                    let ns = el.ns.clone();
                    let child = self.element(depth + 1, ns.as_deref())?;
                    el.children.push(child);
                }
                t => return Err(self.err(global_token_error(t))),
            }
        }
    }

    fn opaque(&mut self, element: &str) -> Result<String, WbxmlError> {
        let at = self.pos - 1;
        let len = self.mb_u32()? as usize;
        let data = self.take(len)?;
        let bad = |what: &str| WbxmlError {
            at,
            kind: ErrorKind::Opaque(format!("{what} in <{element}>")),
        };
        match tokens::opaque_kind(self.version, element) {
            Some(Opaque::Integer) if (1..=4).contains(&data.len()) => Ok(data
                .iter()
                .fold(0u32, |v, b| (v << 8) | u32::from(*b))
                .to_string()),
            Some(Opaque::Integer) => Err(bad(&format!("integer of {} octets", data.len()))),
            Some(Opaque::DateTime) => date_from_opaque(data).ok_or_else(|| bad("date and time")),
            None => Err(bad("value")),
        }
    }
}

fn global_token_error(t: u8) -> ErrorKind {
    match t {
        0x04 | 0x44 | 0x84 | 0xC4 => ErrorKind::Unsupported("a literal tag or attribute name"),
        0x40..=0x42 => ErrorKind::Unsupported("EXT_I"),
        0x43 => ErrorKind::Unsupported("a processing instruction"),
        0x81 | 0x82 => ErrorKind::Unsupported("EXT_T_1 and EXT_T_2"),
        0xC0..=0xC2 => ErrorKind::Unsupported("EXT_0, EXT_1 and EXT_2"),
        _ => ErrorKind::Malformed("a token out of place"),
    }
}

/// The CSP date packing: 2 bits zero, 12 bits year, 4 month, 5 day,
/// 5 hour, 6 minute, 6 second, then the time zone as one ASCII letter
/// (`Z` for UTC), or 0 for local time. Read as `YYYY-MM-DDThh:mm:ssZ`.
fn date_from_opaque(d: &[u8]) -> Option<String> {
    let [a, b, c, e, f, zone] = *d else {
        return None;
    };
    let bits = u64::from_be_bytes([0, 0, 0, a, b, c, e, f]);
    let year = (bits >> 26) & 0xFFF;
    let month = (bits >> 22) & 0xF;
    let day = (bits >> 17) & 0x1F;
    let hour = (bits >> 12) & 0x1F;
    let minute = (bits >> 6) & 0x3F;
    let second = bits & 0x3F;
    let valid = a & 0xC0 == 0
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61
        && (zone.is_ascii_uppercase() || zone == 0);
    let zone = if zone == 0 {
        String::new()
    } else {
        char::from(zone).to_string()
    };
    valid.then(|| format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{zone}"))
}

/// The opaque form of `YYYY-MM-DDThh:mm:ssZ` (or with no zone: local time);
/// any other spelling is
/// written as a string, so that it reads back as it was.
fn date_to_opaque(s: &str) -> Option<[u8; 6]> {
    let b = s.as_bytes();
    if !(19..=20).contains(&b.len())
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let bits = (year << 26) | (month << 22) | (day << 17) | (hour << 12) | (minute << 6) | second;
    let p = bits.to_be_bytes();
    let out = [
        p[3],
        p[4],
        p[5],
        p[6],
        p[7],
        b.get(19).copied().unwrap_or(0),
    ];
    // Only what reads back to the same text (ranges, the zone letter).
    (date_from_opaque(&out).as_deref() == Some(s)).then_some(out)
}

/// The opaque form of an integer written in canonical decimal: 1 to 4
/// octets, big-endian, no leading zero octets.
fn integer_to_opaque(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || (s.len() > 1 && s.starts_with('0')) || !s.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let v: u32 = s.parse().ok()?;
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take(3).take_while(|b| **b == 0).count();
    Some(bytes[skip..].to_vec())
}

/// Writes `root` as a WBXML 1.3 document with the token tables of `version`
/// and its well-known public identifier, charset UTF-8 and an empty string
/// table. Namespaces are written where they change, from an `xmlns`
/// attribute or from [`Element::ns`].
pub fn encode(root: &Element, version: Version) -> Result<Vec<u8>, EncodeError> {
    let mut w = Writer {
        out: Vec::with_capacity(256),
        version,
        page: 0,
    };
    w.out.push(0x03);
    mb_u32(&mut w.out, version.public_id());
    mb_u32(&mut w.out, UTF8);
    w.out.push(0x00);
    w.element(root, None)?;
    Ok(w.out)
}

fn mb_u32(out: &mut Vec<u8>, v: u32) {
    let mut groups = [0u8; 5];
    let mut n = 0;
    let mut rest = v;
    loop {
        groups[n] = (rest & 0x7F) as u8;
        n += 1;
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    for i in (0..n).rev() {
        out.push(groups[i] | if i > 0 { 0x80 } else { 0 });
    }
}

struct Writer {
    out: Vec<u8>,
    version: Version,
    page: u8,
}

impl Writer {
    fn element(&mut self, el: &Element, inherited: Option<&str>) -> Result<(), EncodeError> {
        let (page, token) = tokens::tag_token(self.version, &el.name).ok_or_else(|| {
            EncodeError::UnknownElement {
                name: el.name.clone(),
                version: self.version,
            }
        })?;
        let mut ns = None;
        for (k, v) in &el.attrs {
            if k != "xmlns" {
                return Err(EncodeError::Attribute(k.clone()));
            }
            ns = Some(v.as_str());
        }
        let ns = ns.or_else(|| el.ns.as_deref().filter(|n| Some(*n) != inherited));
        let text = if el.children.is_empty() || !el.text.trim().is_empty() {
            el.text.as_str()
        } else {
            ""
        };
        let content = !text.is_empty() || !el.children.is_empty();
        if page != self.page {
            self.out.extend([SWITCH_PAGE, page]);
            self.page = page;
        }
        self.out
            .push(token | if ns.is_some() { 0x80 } else { 0 } | if content { 0x40 } else { 0 });
        if let Some(uri) = ns {
            let (t, prefix) = tokens::xmlns_token(self.version, uri)
                .ok_or_else(|| EncodeError::Namespace(uri.to_owned()))?;
            self.out.push(t);
            let rest = &uri[prefix.len()..];
            if !rest.is_empty() {
                self.string(rest);
            }
            self.out.push(END);
        }
        if !content {
            return Ok(());
        }
        if !text.is_empty() {
            self.text(&el.name, text);
        }
        let here = ns.or(inherited);
        for c in &el.children {
            self.element(c, here)?;
        }
        self.out.push(END);
        Ok(())
    }

    fn string(&mut self, s: &str) {
        // NUL ends a WBXML string; it cannot be in XML text either.
        self.out.push(STR_I);
        self.out.extend(s.bytes().filter(|b| *b != 0));
        self.out.push(0);
    }

    fn text(&mut self, element: &str, text: &str) {
        match tokens::opaque_kind(self.version, element) {
            Some(Opaque::Integer) => {
                if let Some(b) = integer_to_opaque(text) {
                    self.out.push(OPAQUE);
                    mb_u32(&mut self.out, b.len() as u32);
                    self.out.extend(b);
                    return;
                }
            }
            Some(Opaque::DateTime) => {
                if let Some(b) = date_to_opaque(text) {
                    self.out.extend([OPAQUE, 6]);
                    self.out.extend(b);
                    return;
                }
            }
            None => {}
        }
        match tokens::value_token(self.version, text) {
            Some(t) => {
                self.out.push(EXT_T_0);
                mb_u32(&mut self.out, u32::from(t));
            }
            None => self.string(text),
        }
    }
}

#[cfg(test)]
mod tests;
