//! The header-value grammar the screen checks itself, because rsipstack
//! 0.7.14 either cannot read it or reads it wrong (RFC 3261 §25.1; the cases
//! are RFC 4475's):
//!
//! - **LWS around `/ ; = ,`** (`SLASH`, `SEMI`, `EQUAL`, `COMMA` allow it):
//!   rsipstack's typed Via, From and To fail on `SIP / 2.0 / UDP` or
//!   `;  tag = x`, and a transaction cannot even be keyed. [`squeeze`]
//!   removes that LWS so rsipstack reads the value (RFC 4475 §3.1.1.1).
//! - **Empty parameters and list elements** (`;;`, `,,`): rsipstack skips
//!   them (§3.1.2.1).
//! - **Unterminated quoted strings**, **display names that are neither a
//!   quoted string nor tokens**, **LWS inside `<…>`**, and **an addr-spec
//!   with `?` outside `<>`** (RFC 3261 §20.10): rsipstack takes all of them
//!   as some other value (§3.1.2.6, §3.1.2.13–15).
//!
//! Pure functions over one unfolded header value.

/// RFC 3261 `token` characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// Whether `s` is a non-empty `token`.
pub(super) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// Splits at `sep` outside quoted strings and `<…>`, keeping empty pieces
/// (they are what the checks look for); `None` if a quoted string or `<`
/// is not closed.
fn split_top(value: &str, sep: char) -> Option<Vec<&str>> {
    match crate::sip::wire::split_top(value, sep) {
        (pieces, true) => Some(pieces),
        (_, false) => None,
    }
}

/// Removes LWS next to `/ ; = ,` and collapses other runs of LWS to one
/// space, outside quoted strings. `<`, `>` are left alone, so LWS inside
/// `<…>` is still seen by [`name_addr`].
pub(super) fn squeeze(value: &str) -> String {
    const SEPARATORS: &[char] = &['/', ';', '=', ','];
    let mut out = String::with_capacity(value.len());
    let (mut quoted, mut escaped, mut pending_space) = (false, false, false);
    for c in value.trim().chars() {
        if quoted {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = false;
            }
            continue;
        }
        if c == ' ' || c == '\t' {
            pending_space = true;
            continue;
        }
        let after_separator = out.ends_with(SEPARATORS);
        if pending_space && !SEPARATORS.contains(&c) && !after_separator {
            out.push(' ');
        }
        pending_space = false;
        out.push(c);
        quoted = c == '"';
    }
    out
}

/// Whether `scheme` is an RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" /
/// "-" / "." ).
pub(super) fn is_scheme(scheme: &str) -> bool {
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// A URI starts with its scheme and `:`.
fn uri_scheme(uri: &str) -> Result<(), &'static str> {
    match uri.split_once(':') {
        Some((scheme, _)) if is_scheme(scheme) => Ok(()),
        _ => Err("a URI without a scheme"),
    }
}

/// Where the first `<` outside a quoted string is.
fn angle_open(value: &str) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// `*( SEMI generic-param )` after a URI: each parameter a token name with
/// an optional non-empty value. `params` is what follows the URI.
fn params(params: &str) -> Result<(), &'static str> {
    if params.is_empty() {
        return Ok(());
    }
    let Some(rest) = params.strip_prefix(';') else {
        return Err("text after the URI");
    };
    for p in split_top(rest, ';').ok_or("unterminated quoted string")? {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (p, None),
        };
        if !is_token(name) {
            return Err("empty or malformed parameter");
        }
        if value.is_some_and(str::is_empty) {
            return Err("parameter without a value after '='");
        }
    }
    Ok(())
}

/// A From, To or Contact value (squeezed): `name-addr` or `addr-spec`, then
/// parameters.
pub(super) fn name_addr(value: &str) -> Result<(), &'static str> {
    if value == "*" {
        return Ok(()); // Contact: * (RFC 3261 §10.2.2)
    }
    split_top(value, ',').ok_or("unterminated quoted string or '<'")?;
    match angle_open(value) {
        Some(open) => {
            let display = value[..open].trim();
            let quoted = display.len() >= 2 && display.starts_with('"') && display.ends_with('"');
            // Tokens; letters beyond ASCII are let through (clients write
            // `Jürgen <sip:…>`), the ASCII separators are not.
            let word =
                |w: &str| !w.is_empty() && w.chars().all(|c| is_token_char(c) || !c.is_ascii());
            if !display.is_empty() && !quoted && !display.split(' ').all(word) {
                return Err("display name is neither a quoted string nor tokens");
            }
            let close = value[open..]
                .find('>')
                .map(|i| open + i)
                .ok_or("no '>' after '<'")?;
            let uri = &value[open + 1..close];
            if uri.contains([' ', '\t']) {
                return Err("white space inside <>");
            }
            uri_scheme(uri)?;
            params(&value[close + 1..])
        }
        None => {
            let (uri, rest) = value.split_at(value.find(';').unwrap_or(value.len()));
            if uri.is_empty() || uri.contains([' ', '\t', '"']) {
                return Err("malformed addr-spec");
            }
            if uri.contains(['?', ',']) {
                return Err("a URI with '?' or ',' must be enclosed in <>");
            }
            uri_scheme(uri)?;
            params(rest)
        }
    }
}

/// The value of the header parameter `name` (not a URI parameter) of a
/// squeezed From or To value.
pub(super) fn header_param<'a>(value: &'a str, name: &str) -> Option<&'a str> {
    let rest = match angle_open(value) {
        Some(open) => &value[open + value[open..].find('>')? + 1..],
        None => &value[value.find(';')?..],
    };
    split_top(rest.strip_prefix(';')?, ';')?
        .into_iter()
        .find_map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            n.eq_ignore_ascii_case(name).then_some(v)
        })
}

/// A Contact value: `*` or a comma list of [`name_addr`].
pub(super) fn contact(value: &str) -> Result<(), &'static str> {
    for v in split_top(value, ',').ok_or("unterminated quoted string or '<'")? {
        if v.is_empty() {
            return Err("empty element in a list");
        }
        name_addr(v)?;
    }
    Ok(())
}

/// A Via value (squeezed): a comma list of `sent-protocol SP sent-by
/// *(SEMI via-params)`.
pub(super) fn via(value: &str) -> Result<(), &'static str> {
    for v in split_top(value, ',').ok_or("unterminated quoted string")? {
        let (protocol, rest) = v.split_once(' ').ok_or("malformed Via")?;
        let parts: Vec<&str> = protocol.split('/').collect();
        if parts.len() != 3 || !parts.iter().all(|p| is_token(p)) {
            return Err("malformed Via protocol");
        }
        let (sent_by, p) = rest.split_at(rest.find(';').unwrap_or(rest.len()));
        if sent_by.is_empty() || sent_by.contains([' ', ',', '"']) {
            return Err("malformed Via sent-by");
        }
        params(p)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lws_around_separators_goes_and_quoted_strings_stay() {
        assert_eq!(
            squeeze("SIP  /   2.0  /UDP     192.0.2.2;branch=390skdjuw"),
            "SIP/2.0/UDP 192.0.2.2;branch=390skdjuw"
        );
        assert_eq!(
            squeeze("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n"),
            "sip:vivekg@chair-dnrc.example.com;tag=1918181833n"
        );
        assert_eq!(
            squeeze(r#""J Rosenberg \\\""  <sip:jdrosen@example.com> ; tag = 98asjd8"#),
            r#""J Rosenberg \\\"" <sip:jdrosen@example.com>;tag=98asjd8"#
        );
        assert_eq!(
            squeeze(r#""a ; b = c" <sip:x@y>"#),
            r#""a ; b = c" <sip:x@y>"#
        );
    }

    #[test]
    fn name_addr_grammar() {
        for ok in [
            "<sip:a@b>",
            "sip:a@b;tag=1",
            r#""Quoted string \"\"" <sip:jdrosen@example.com>;newparam=newvalue;secondparam;q=0.33"#,
            "Bob Smith <sip:a@b>;tag=x",
            "Jürgen Groß <sip:j@b>",
            "\"caller\"<sip:caller@example.com>;tag=323",
            "*",
            "<sip:user@example.com?Route=%3Csip:sip.example.com%3E>",
        ] {
            assert_eq!(name_addr(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            (
                "\"Mr. J. User <sip:j.user@example.com>",
                "unterminated quoted string or '<'",
            ),
            (
                "\"Watson, Thomas\" < sip:t.watson@example.org >",
                "white space inside <>",
            ),
            (
                "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
                "display name is neither a quoted string nor tokens",
            ),
            (
                "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
                "a URI with '?' or ',' must be enclosed in <>",
            ),
            (
                "\"Joe\" <sip:joe@example.org>;;;;",
                "empty or malformed parameter",
            ),
            ("<sip:a@b>;tag=", "parameter without a value after '='"),
            ("<sip:a@b> x", "text after the URI"),
        ] {
            assert_eq!(name_addr(bad), Err(why), "{bad}");
        }
        assert_eq!(
            contact("<sip:a@b>,,<sip:c@d>"),
            Err("empty element in a list")
        );
        assert_eq!(header_param("<sip:a@b;tag=u>;tag=h", "tag"), Some("h"));
        assert_eq!(header_param("sip:a@b;TAG=h", "tag"), Some("h"));
        assert_eq!(header_param("\";tag=q\" <sip:a@b;tag=u>", "tag"), None);
    }

    #[test]
    fn via_grammar() {
        assert_eq!(
            via(
                "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8,SIP/2.0/UDP 192.168.255.111;branch=z9hG4bK30239"
            ),
            Ok(())
        );
        assert_eq!(
            via("SIP/2.0/UDP 192.0.2.15;;,;,,"),
            Err("empty or malformed parameter")
        );
        assert_eq!(via("SIP/2.0/UDP host,"), Err("malformed Via"));
        assert_eq!(via("SIP/2.0 host"), Err("malformed Via protocol"));
    }
}
