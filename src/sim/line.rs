//! V.250 command-line syntax (§5.2–5.4): the `AT` prefix, basic commands
//! (`E0`, `&C1`, `S7=45`, `I`), extended commands (`+CMGF=0`, `^CURC=0`) chained
//! with `;`, and the `=`, `?` and `=?` forms; plus splitting parameter lists.

/// How an extended command was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// `+CGMI`, or a basic command such as `E1`.
    Exec,
    /// `+CMGF=0`, `S7=45`.
    Set,
    /// `+CMGF?`, `S7?`.
    Read,
    /// `+CMGF=?`.
    Test,
}

/// One command of a command line. `name` is upper case: `+CMGF`, `^CURC`, `E`,
/// `&C`, `S7`, `I`, `D`. `args` is what follows `=` (for `Set`) or the digits of a
/// basic command (for `Exec`), as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Command {
    pub(super) name: String,
    pub(super) op: Op,
    pub(super) args: String,
}

impl Command {
    fn new(name: String, op: Op, args: String) -> Self {
        Self { name, op, args }
    }
}

/// The part of a command line after `AT`, or `None` when the line does not start
/// with it (V.250 ignores such lines). Leading spaces and NULs are skipped.
pub(super) fn strip_prefix(line: &str) -> Option<&str> {
    let line = line.trim_start_matches([' ', '\0', '\t']);
    let head = line.get(..2)?;
    head.eq_ignore_ascii_case("AT").then(|| &line[2..])
}

/// Splits the body of a command line into commands. `Err(())` on bad syntax (the
/// line is answered `ERROR` and nothing in it runs).
pub(super) fn parse(body: &str) -> Result<Vec<Command>, ()> {
    let chars: Vec<char> = body.chars().collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | ';' => i += 1,
            '+' | '^' | '$' | '%' | '*' | '#' | '!' => {
                let start = i;
                i += 1;
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
                if i == start + 1 {
                    return Err(());
                }
                let name: String = chars[start..i].iter().collect::<String>().to_uppercase();
                // The rest up to an unquoted `;` belongs to this command; spaces
                // outside quotes are ignored (V.250 §5.1).
                let mut rest = String::new();
                let mut quoted = false;
                while i < chars.len() && (quoted || chars[i] != ';') {
                    if chars[i] == '"' {
                        quoted = !quoted;
                    }
                    if quoted || chars[i] != ' ' {
                        rest.push(chars[i]);
                    }
                    i += 1;
                }
                if quoted {
                    return Err(());
                }
                let (op, args) = if rest.is_empty() {
                    (Op::Exec, String::new())
                } else if rest == "?" {
                    (Op::Read, String::new())
                } else if rest == "=?" {
                    (Op::Test, String::new())
                } else if let Some(a) = rest.strip_prefix('=') {
                    (Op::Set, a.to_string())
                } else {
                    return Err(());
                };
                cmds.push(Command::new(name, op, args));
            }
            '&' => {
                let letter = chars.get(i + 1).filter(|c| c.is_ascii_alphabetic());
                let letter = letter.ok_or(())?.to_ascii_uppercase();
                i += 2;
                let digits = take_digits(&chars, &mut i);
                cmds.push(Command::new(format!("&{letter}"), Op::Exec, digits));
            }
            's' | 'S' => {
                i += 1;
                let reg = take_digits(&chars, &mut i);
                if reg.is_empty() {
                    return Err(());
                }
                let name = format!("S{reg}");
                match chars.get(i) {
                    Some('?') => {
                        i += 1;
                        cmds.push(Command::new(name, Op::Read, String::new()));
                    }
                    Some('=') => {
                        i += 1;
                        let value = take_digits(&chars, &mut i);
                        cmds.push(Command::new(name, Op::Set, value));
                    }
                    _ => return Err(()),
                }
            }
            'd' | 'D' => {
                // Dial takes the rest of the line.
                let rest: String = chars[i + 1..].iter().collect();
                cmds.push(Command::new("D".into(), Op::Exec, rest));
                break;
            }
            c if c.is_ascii_alphabetic() => {
                i += 1;
                let digits = take_digits(&chars, &mut i);
                cmds.push(Command::new(
                    c.to_ascii_uppercase().to_string(),
                    Op::Exec,
                    digits,
                ));
            }
            _ => return Err(()),
        }
    }
    Ok(cmds)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '!' | '%' | '-' | '.' | '/' | ':' | '_')
}

fn take_digits(chars: &[char], i: &mut usize) -> String {
    let start = *i;
    while *i < chars.len() && chars[*i].is_ascii_digit() {
        *i += 1;
    }
    chars[start..*i].iter().collect()
}

/// One parameter of a parameter list: its text with quotes removed, and whether
/// it was quoted. An omitted parameter (`1,,3`) is empty and unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Param {
    pub(super) text: String,
    pub(super) quoted: bool,
}

impl Param {
    pub(super) fn is_empty(&self) -> bool {
        self.text.is_empty() && !self.quoted
    }

    /// The parameter as a number, `None` when omitted, `Err` when not a number.
    pub(super) fn number(&self) -> Result<Option<u32>, ()> {
        if self.is_empty() {
            return Ok(None);
        }
        if self.quoted {
            return Err(());
        }
        self.text.parse::<u32>().map(Some).map_err(|_| ())
    }
}

/// Splits `a,"b,c",,d` into parameters.
pub(super) fn params(args: &str) -> Vec<Param> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    for c in args.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            ',' if !quoted => {
                out.push(Param {
                    text: std::mem::take(&mut cur),
                    quoted: was_quoted,
                });
                was_quoted = false;
            }
            c => cur.push(c),
        }
    }
    if !args.is_empty() {
        out.push(Param {
            text: cur,
            quoted: was_quoted,
        });
    }
    out
}

/// All parameters as numbers (omitted ones as `None`); `Err` if any is not one.
pub(super) fn numbers(args: &str) -> Result<Vec<Option<u32>>, ()> {
    params(args).iter().map(Param::number).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(body: &str) -> Vec<(String, Op, String)> {
        parse(body)
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.name, c.op, c.args))
            .collect()
    }

    #[test]
    fn chained_basic_and_extended_commands() {
        assert_eq!(
            names("E0+CMEE=1;+CLIP=1;+CREG=2"),
            vec![
                ("E".into(), Op::Exec, "0".into()),
                ("+CMEE".into(), Op::Set, "1".into()),
                ("+CLIP".into(), Op::Set, "1".into()),
                ("+CREG".into(), Op::Set, "2".into()),
            ]
        );
        // Kamailio's init line.
        let k = names(" S7=45 S0=0 L1 V1 X4 &c1 E1 Q0");
        let n: Vec<&str> = k.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(n, ["S7", "S0", "L", "V", "X", "&C", "E", "Q"]);
        assert_eq!(k[0].2, "45");
        assert_eq!(names("+cmgf=?")[0], ("+CMGF".into(), Op::Test, "".into()));
        assert_eq!(names("+CPIN?")[0].1, Op::Read);
        assert_eq!(names("^curc=0")[0].0, "^CURC");
        assert_eq!(names("$TSSPCSW=?")[0].0, "$TSSPCSW");
        assert_eq!(names("")[..], []);
    }

    #[test]
    fn quoted_strings_keep_spaces_semicolons_and_case() {
        let c = names("+CMGS=\"+1 555;x\",145");
        assert_eq!(c[0].2, "\"+1 555;x\",145");
        assert!(parse("+CPIN=\"12").is_err());
        assert!(parse("+").is_err());
        assert!(parse("+CMGF!0").is_ok()); // `!` is a name character
        assert!(parse("+CMGF 0").is_err());
    }

    #[test]
    fn prefix_and_params() {
        assert_eq!(strip_prefix("at+cmgf=0"), Some("+cmgf=0"));
        assert_eq!(strip_prefix("  AT"), Some(""));
        assert_eq!(strip_prefix("HELLO"), None);
        assert_eq!(strip_prefix("A"), None);
        let p = params("\"SM\",,3");
        assert_eq!(p.len(), 3);
        assert!(p[0].quoted && p[1].is_empty());
        assert_eq!(numbers("2,1,,0"), Ok(vec![Some(2), Some(1), None, Some(0)]));
        assert!(numbers("x").is_err());
        assert!(params("").is_empty());
    }
}
