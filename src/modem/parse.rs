//! Parsers for the response and URC lines the session reads, built on
//! `at-commands` where the shape is fixed, plus a parser for the parenthesised
//! range lists of test commands (`+CNMI: (0-3),(0,1)`), which it does not cover.

use at_commands::parser::CommandParser;

/// The text after `prefix` (e.g. `"+CPIN:"`), trimmed.
pub(crate) fn after<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let head = line.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| line[prefix.len()..].trim())
}

/// `+CSQ: <rssi>,<ber>` → dBm (TS 27.007 §8.5), `None` for 99 (unknown).
pub(crate) fn csq_dbm(line: &str) -> Option<Option<i32>> {
    let (rssi, _ber) = CommandParser::parse(line.as_bytes())
        .expect_identifier(b"+CSQ:")
        .expect_int_parameter()
        .expect_int_parameter()
        .finish()
        .ok()?;
    Some(match rssi {
        0..=31 => Some(-113 + 2 * rssi),
        _ => None,
    })
}

/// The `<stat>` of `+CREG`/`+CGREG`/`+CEREG`. `query` = the line answers `AT+CxREG?`
/// (`<n>,<stat>,…`); otherwise it is the unsolicited form (`<stat>,…`).
pub(crate) fn registration(line: &str, prefix: &str, query: bool) -> Option<u8> {
    let rest = after(line, prefix)?;
    let mut fields = rest.split(',').map(str::trim);
    if query {
        fields.next()?;
    }
    fields.next()?.parse().ok()
}

/// Whether a registration state allows SMS: home, roaming, "SMS only" home/roaming
/// (E-UTRAN), "CSFB not preferred" home/roaming (TS 27.007 §7.2).
pub(crate) fn is_registered(stat: u8) -> bool {
    matches!(stat, 1 | 5 | 6 | 7 | 9 | 10)
}

/// `+COPS: <mode>[,<format>,<oper>[,<AcT>]]` → operator name.
pub(crate) fn cops_operator(line: &str) -> Option<String> {
    let (_mode, _format, oper) = CommandParser::parse(line.as_bytes())
        .expect_identifier(b"+COPS:")
        .expect_int_parameter()
        .expect_optional_int_parameter()
        .expect_optional_string_parameter()
        .finish()
        .ok()?;
    oper.filter(|o| !o.is_empty()).map(str::to_owned)
}

/// `+CSCA: "<number>",<toa>` → number.
pub(crate) fn csca(line: &str) -> Option<String> {
    let (number,) = CommandParser::parse(line.as_bytes())
        .expect_identifier(b"+CSCA:")
        .expect_string_parameter()
        .finish()
        .ok()?;
    (!number.is_empty()).then(|| number.to_owned())
}

/// `+CMTI: "<mem>",<index>` and `+CDSI: "<mem>",<index>`.
pub(crate) fn memory_index(line: &str, prefix: &str) -> Option<(String, u32)> {
    let rest = after(line, prefix)?;
    let (mem, index) = CommandParser::parse(rest.as_bytes())
        .expect_string_parameter()
        .expect_int_parameter()
        .finish()
        .ok()?;
    Some((mem.to_owned(), u32::try_from(index).ok()?))
}

/// `+CMGS: <mr>`.
pub(crate) fn cmgs_mr(line: &str) -> Option<u8> {
    let (mr,) = CommandParser::parse(line.as_bytes())
        .expect_identifier(b"+CMGS:")
        .expect_int_parameter()
        .finish()
        .ok()?;
    u8::try_from(mr).ok()
}

/// `+CMGR: <stat>,[<alpha>],<length>` → length.
pub(crate) fn cmgr_length(line: &str) -> Option<usize> {
    let (_stat, _alpha, len) = CommandParser::parse(line.as_bytes())
        .expect_identifier(b"+CMGR:")
        .expect_int_parameter()
        .expect_optional_raw_string_parameter()
        .expect_int_parameter()
        .finish()
        .ok()?;
    usize::try_from(len).ok()
}

/// `+CMGL: <index>,<stat>,[<alpha>],<length>` → index.
pub(crate) fn cmgl_index(line: &str) -> Option<u32> {
    let (index, _stat, _alpha, _len) = CommandParser::parse(line.as_bytes())
        .expect_identifier(b"+CMGL:")
        .expect_int_parameter()
        .expect_int_parameter()
        .expect_optional_raw_string_parameter()
        .expect_int_parameter()
        .finish()
        .ok()?;
    u32::try_from(index).ok()
}

/// `+CPMS: "<mem1>",<used>,<total>,…` (the query form) → (memory, used, total)
/// for each of the three memories.
pub(crate) fn cpms_query(line: &str) -> Option<Vec<(String, u32, u32)>> {
    let rest = after(line, "+CPMS:")?;
    let fields: Vec<&str> = rest.split(',').map(str::trim).collect();
    fields
        .chunks(3)
        .map(|c| match c {
            [mem, used, total] => Some((
                mem.trim_matches('"').to_owned(),
                used.parse().ok()?,
                total.parse().ok()?,
            )),
            _ => None,
        })
        .collect()
}

/// `<used1>` of the answer to `AT+CPMS=<mem1>,…` (`+CPMS: 3,20,3,20,3,20`).
pub(crate) fn cpms_set_used(line: &str) -> Option<u32> {
    after(line, "+CPMS:")?
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// One item of a test-command list: a number range or a quoted word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// `a-b` or a single number (`a-a`).
    Range(u32, u32),
    /// `"SM"`.
    Word(String),
}

/// The groups of a test command's answer: `+CNMI: (0-3),(0,1),(0,2,3)` →
/// `[[0-3], [0, 1], [0, 2, 3]]`; a bare value is a group of one.
pub(crate) fn groups(line: &str, prefix: &str) -> Option<Vec<Vec<Item>>> {
    let rest = after(line, prefix)?;
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        let body: String = if c == '(' {
            chars.next();
            let mut b = String::new();
            for c in chars.by_ref() {
                if c == ')' {
                    break;
                }
                b.push(c);
            }
            b
        } else {
            let mut b = String::new();
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                b.push(c);
                chars.next();
            }
            b
        };
        let items = body
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.starts_with('"') {
                    return Some(Item::Word(s.trim_matches('"').to_owned()));
                }
                match s.split_once('-') {
                    Some((a, b)) => {
                        Some(Item::Range(a.trim().parse().ok()?, b.trim().parse().ok()?))
                    }
                    None => {
                        let v = s.parse().ok()?;
                        Some(Item::Range(v, v))
                    }
                }
            })
            .collect::<Option<Vec<_>>>()?;
        out.push(items);
    }
    Some(out)
}

/// Whether `v` is in a group of ranges.
pub(crate) fn allows(group: &[Item], v: u32) -> bool {
    group
        .iter()
        .any(|i| matches!(i, Item::Range(a, b) if (*a..=*b).contains(&v)))
}

/// Whether a word is in a group.
pub(crate) fn has_word(group: &[Item], w: &str) -> bool {
    group
        .iter()
        .any(|i| matches!(i, Item::Word(x) if x.eq_ignore_ascii_case(w)))
}

/// Whether a line is all hex digits (a PDU line).
pub(crate) fn is_hex(line: &str) -> bool {
    !line.is_empty() && line.len().is_multiple_of(2) && line.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_answers_seen_on_real_modems() {
        assert_eq!(csq_dbm("+CSQ: 28,99"), Some(Some(-57)));
        assert_eq!(csq_dbm("+CSQ: 99,99"), Some(None));
        assert_eq!(csq_dbm("+CSQ:"), None);
        assert_eq!(registration("+CREG: 0,1", "+CREG:", true), Some(1));
        assert_eq!(
            registration("+CEREG: 2,5,\"00C3\",\"0000A13F\",7", "+CEREG:", true),
            Some(5)
        );
        assert_eq!(registration("+CREG: 2", "+CREG:", false), Some(2));
        assert_eq!(
            cops_operator("+COPS: 0,0,\"T-Mobile, DE\",7").as_deref(),
            Some("T-Mobile, DE")
        );
        assert_eq!(cops_operator("+COPS: 0"), None);
        assert_eq!(
            csca("+CSCA: \"+491710760000\",145").as_deref(),
            Some("+491710760000")
        );
        assert_eq!(
            memory_index("+CMTI: \"SM\",7", "+CMTI:"),
            Some(("SM".into(), 7))
        );
        assert_eq!(
            memory_index("+CDSI: \"SR\",8", "+CDSI:"),
            Some(("SR".into(), 8))
        );
        // chan_dongle ignores this one: an invalid index.
        assert_eq!(memory_index("+CMTI: \"SM\",-1", "+CMTI:"), None);
        assert_eq!(cmgs_mr("+CMGS: 64"), Some(64));
        assert_eq!(cmgr_length("+CMGR: 0,,29"), Some(29));
        assert_eq!(cmgr_length("+CMGR: 1,\"alpha\",23"), Some(23));
        assert_eq!(cmgl_index("+CMGL: 1,0,,39"), Some(1));
        assert_eq!(
            cpms_query("+CPMS: \"ME\",0,25,\"ME\",0,25,\"SM\",0,20"),
            Some(vec![
                ("ME".into(), 0, 25),
                ("ME".into(), 0, 25),
                ("SM".into(), 0, 20)
            ])
        );
    }

    // reference/sms.md §7.7 (Cinterion MC75i, Quectel M26) and §3.1 (SIM800L).
    #[test]
    fn parses_test_command_lists() {
        let g = groups("+CNMI: (0-3),(0,1),(0,2,3),(0,2),(1)", "+CNMI:").unwrap();
        assert_eq!(g.len(), 5);
        assert!(allows(&g[0], 2) && !allows(&g[1], 2) && allows(&g[3], 2) && !allows(&g[4], 0));
        let g = groups(
            "+CPMS: (\"ME\",\"SM\",\"MT\"),(\"ME\",\"SM\",\"MT\"),(\"SM\",\"MT\")",
            "+CPMS:",
        )
        .unwrap();
        assert!(has_word(&g[0], "SM") && !has_word(&g[2], "ME"));
        let g = groups("+CSMS: (0,128)", "+CSMS:").unwrap();
        assert!(allows(&g[0], 128) && !allows(&g[0], 1));
        assert_eq!(groups("+CNMI: (0-x)", "+CNMI:"), None);
        assert_eq!(
            groups("+CSMS: 0", "+CSMS:").unwrap(),
            vec![vec![Item::Range(0, 0)]]
        );
    }
}
