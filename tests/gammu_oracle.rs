//! Independent oracle for the PDU encoder: every SMS-SUBMIT that
//! `smsbridge pdu encode` prints for a corpus of texts is decoded by
//! python-gammu (Debian `python3-gammu`, only importable by `/usr/bin/python3`)
//! through `tests/oracle/gammu_decode.py`, and gammu must read back the same
//! text, recipient number, coding, class, SMSC, validity, message reference
//! and concatenation fields.
//!
//! Skipped (with a `skipping:` line) when python-gammu is missing, unless
//! `SMSBRIDGE_REQUIRE_PEERS=1` (CI), see `tests/common/mod.rs`.
//!
//! python-gammu quirks handled here (python-gammu 3.2.4, libgammu 1.42.0):
//! - `Text` of GSM 7-bit messages with escape pairs is padded with NULs and
//!   stale characters; the oracle script cuts it at the first NUL.
//! - gammu drops `*` and `#` from addresses: our `*100#` (semi-octets
//!   `1A 00 FB`, i.e. `*`=0xA, `1`, `0`, `0`, `#`=0xB per TS 23.040 §9.1.2.3,
//!   TS 24.008 table 10.5.118) comes back as `100`, `12*3#4` as `1234`. See
//!   [`gammu_number`].
//! - gammu does not report TP-SRR (status report request) at all, so that
//!   one bit is checked on our PDU directly, see [`first_octet`].

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

const PYTHON: &str = "/usr/bin/python3";
const ORACLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oracle/gammu_decode.py");
const SMSBRIDGE: &str = env!("CARGO_BIN_EXE_smsbridge");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    Gsm7,
    Ucs2,
}

impl Coding {
    /// How python-gammu names the coding.
    fn gammu_name(self) -> &'static str {
        match self {
            Coding::Gsm7 => "Default_No_Compression",
            Coding::Ucs2 => "Unicode_No_Compression",
        }
    }

    /// Payload capacity of one part (septets or UTF-16 units), TS 23.040
    /// §9.2.3.24: 140 octets, minus 6 octets of UDH for a concatenated part.
    fn capacity(self, concatenated: bool) -> usize {
        match (self, concatenated) {
            (Coding::Gsm7, false) => 160,
            (Coding::Gsm7, true) => 153,
            (Coding::Ucs2, false) => 70,
            (Coding::Ucs2, true) => 67,
        }
    }

    /// Length of `text` in this coding, counted independently of our codec:
    /// septets (extension-table characters take an escape plus one) or
    /// UTF-16 code units.
    fn units(self, text: &str) -> usize {
        match self {
            Coding::Gsm7 => text
                .chars()
                .map(|c| if GSM7_EXTENSION.contains(c) { 2 } else { 1 })
                .sum(),
            Coding::Ucs2 => text.encode_utf16().count(),
        }
    }
}

/// The GSM 7-bit default alphabet extension table (TS 23.038 §6.2.1.1):
/// characters sent as ESC (0x1B) plus one septet.
const GSM7_EXTENSION: &str = "\u{c}^{}\\[~]|€";

/// The GSM 7-bit default alphabet (TS 23.038 §6.2.1), without ESC.
const GSM7_DEFAULT: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                            ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

/// One text of the corpus and what we expect gammu to read from its PDUs.
struct Case {
    name: &'static str,
    text: String,
    to: &'static str,
    coding: Coding,
    /// Number of SMS-SUBMIT parts the text must take.
    parts: usize,
    /// Expected characters per part, where the split point is the point.
    split: Option<Vec<usize>>,
    concat_ref: u8,
    mr: u8,
    ucs2: bool,
    report: bool,
    flash: bool,
    smsc: Option<&'static str>,
    /// `--validity` argument and gammu's rendering of it.
    validity: Option<(&'static str, &'static str)>,
}

impl Case {
    fn new(name: &'static str, text: impl Into<String>, coding: Coding, parts: usize) -> Case {
        Case {
            name,
            text: text.into(),
            to: "+15125551234",
            coding,
            parts,
            split: None,
            concat_ref: 42,
            mr: 0,
            ucs2: false,
            report: false,
            flash: false,
            smsc: None,
            validity: None,
        }
    }
    fn to(mut self, to: &'static str) -> Case {
        self.to = to;
        self
    }
    fn split(mut self, chars: &[usize]) -> Case {
        assert_eq!(chars.len(), self.parts, "{}: split vs parts", self.name);
        self.split = Some(chars.to_vec());
        self
    }
    fn concat_ref(mut self, r: u8) -> Case {
        self.concat_ref = r;
        self
    }
    fn mr(mut self, mr: u8) -> Case {
        self.mr = mr;
        self
    }
    fn ucs2(mut self) -> Case {
        self.ucs2 = true;
        self
    }
    fn report(mut self) -> Case {
        self.report = true;
        self
    }
    fn flash(mut self) -> Case {
        self.flash = true;
        self
    }
    fn smsc(mut self, smsc: &'static str) -> Case {
        self.smsc = Some(smsc);
        self
    }
    fn validity(mut self, arg: &'static str, gammu: &'static str) -> Case {
        self.validity = Some((arg, gammu));
        self
    }

    fn args(&self) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "pdu".into(),
            "encode".into(),
            "--to".into(),
            self.to.into(),
            "--concat-ref".into(),
            self.concat_ref.to_string(),
            "--mr".into(),
            self.mr.to_string(),
        ];
        if self.ucs2 {
            a.push("--ucs2".into());
        }
        if self.report {
            a.push("--report".into());
        }
        if self.flash {
            a.push("--flash".into());
        }
        if let Some(s) = self.smsc {
            a.push("--smsc".into());
            a.push(s.into());
        }
        if let Some((v, _)) = self.validity {
            a.push("--validity".into());
            a.push(v.into());
        }
        a.push("--".into());
        a.push(self.text.clone());
        a
    }
}

fn rep(s: &str, n: usize) -> String {
    s.repeat(n)
}

fn corpus() -> Vec<Case> {
    use Coding::{Gsm7, Ucs2};
    let all_ascii_in_gsm: String = (0x20u8..0x7f)
        .map(char::from)
        .filter(|&c| c != '`')
        .collect();
    let default_non_ascii: String = GSM7_DEFAULT.chars().filter(|c| !c.is_ascii()).collect();
    vec![
        Case::new(
            "ascii",
            "Hello, world! The quick brown fox jumps over the lazy dog. 0123456789",
            Gsm7,
            1,
        ),
        // 94 characters, 9 of them from the extension table: 103 septets.
        Case::new("all ASCII in GSM 7-bit", all_ascii_in_gsm, Gsm7, 1),
        Case::new(
            "line breaks",
            "line one\nline two\r\nline three\rend",
            Gsm7,
            1,
        ),
        Case::new("extension table alone", GSM7_EXTENSION, Gsm7, 1),
        Case::new(
            "extension table interleaved",
            "a^b{c}d\\e[f~g]h|i€j\u{c}k",
            Gsm7,
            1,
        ),
        Case::new(
            "default table non-ASCII",
            default_non_ascii.clone(),
            Gsm7,
            1,
        ),
        Case::new("whole default table", GSM7_DEFAULT, Gsm7, 1),
        Case::new("currency and at", "@ 5$ 3£ 9¥ 2¤ 1€ @", Gsm7, 1),
        Case::new("at signs only (GSM 0x00)", rep("@", 7), Gsm7, 1),
        Case::new("at signs eight", rep("@", 8), Gsm7, 1),
        Case::new("empty text", "", Gsm7, 1),
        Case::new("160 septets", rep("x", 160), Gsm7, 1),
        Case::new("161 septets", rep("x", 161), Gsm7, 2).split(&[153, 8]),
        Case::new("153 septets", rep("y", 153), Gsm7, 1),
        Case::new("154 septets", rep("y", 154), Gsm7, 1),
        Case::new("306 septets", rep("z", 306), Gsm7, 2).split(&[153, 153]),
        Case::new("307 septets", rep("z", 307), Gsm7, 3)
            .split(&[153, 153, 1])
            .concat_ref(0),
        Case::new(
            "158 + euro = 160 septets",
            format!("{}€", rep("e", 158)),
            Gsm7,
            1,
        ),
        Case::new(
            "159 + euro = 161 septets",
            format!("{}€", rep("e", 159)),
            Gsm7,
            2,
        )
        .split(&[153, 7]),
        // `]` is ESC + 0x3E: at septets 153-154 it must move whole to part 2.
        Case::new(
            "] straddles 153",
            format!("{}]{}", rep("a", 152), rep("b", 10)),
            Gsm7,
            2,
        )
        .split(&[152, 11]),
        Case::new(
            "€ ends part 1 exactly",
            format!("{}€{}", rep("a", 151), rep("b", 10)),
            Gsm7,
            2,
        )
        .split(&[152, 10]),
        // 76 pairs of escapes fill 152 septets; the 77th would need 154.
        Case::new("escape-heavy 3 parts", rep("{}", 100), Gsm7, 3).split(&[76, 76, 48]),
        Case::new(
            "multipart mixed GSM",
            format!(
                "{}{}",
                rep("Grüße aus Köln, 50€ [ok] ", 12),
                default_non_ascii
            ),
            Gsm7,
            3,
        )
        .concat_ref(255)
        .mr(254),
        Case::new("Cyrillic", "Привет, мир! Как дела? Всё хорошо.", Ucs2, 1),
        Case::new("CJK", "你好，世界。这是一条短信测试。", Ucs2, 1),
        Case::new("Arabic", "مرحبا بالعالم، هذه رسالة قصيرة", Ucs2, 1),
        Case::new("Greek lower case", "καλημέρα κόσμε", Ucs2, 1),
        Case::new("backtick forces UCS-2", "only `this` is not GSM", Ucs2, 1),
        Case::new("c cedilla forces UCS-2", "ça va", Ucs2, 1),
        Case::new("70 UCS-2 units", rep("Ж", 70), Ucs2, 1),
        Case::new("71 UCS-2 units", rep("Ж", 71), Ucs2, 2).split(&[67, 4]),
        Case::new("134 UCS-2 units", rep("Ж", 134), Ucs2, 2).split(&[67, 67]),
        Case::new("135 UCS-2 units", rep("Ж", 135), Ucs2, 3).split(&[67, 67, 1]),
        Case::new("multipart CJK", rep("短信网关测试。", 30), Ucs2, 4),
        Case::new("emoji", "Hi 😀👍🏽 ok", Ucs2, 1),
        Case::new(
            "emoji ends at 70 units",
            format!("{}😀", rep("ж", 68)),
            Ucs2,
            1,
        ),
        // The pair would occupy units 67-68: it must move whole to part 2.
        Case::new(
            "emoji straddles 67",
            format!("{}😀{}", rep("ж", 66), rep("ж", 10)),
            Ucs2,
            2,
        )
        .split(&[66, 11]),
        Case::new(
            "emoji ends part 1 exactly",
            format!("{}😀{}", rep("ж", 65), rep("ж", 10)),
            Ucs2,
            2,
        )
        .split(&[66, 10]),
        // 33 pairs (66 units) per part: 80 emoji take 33 + 33 + 14.
        Case::new("3-part emoji", rep("😀", 80), Ucs2, 3).split(&[33, 33, 14]),
        Case::new("forced UCS-2", "forced ucs2 hello", Ucs2, 1).ucs2(),
        Case::new("forced UCS-2 with extension", "{braces} and €uro", Ucs2, 1).ucs2(),
        Case::new("forced UCS-2 multipart", rep("u", 71), Ucs2, 2)
            .ucs2()
            .split(&[67, 4]),
        Case::new("national number", "call me back", Gsm7, 1).to("5551234"),
        Case::new("national odd digits", "odd", Gsm7, 1).to("0151234567"),
        Case::new("short code", "STOP", Gsm7, 1).to("12345"),
        Case::new("USSD-like star hash", "hi", Gsm7, 1).to("*100#"),
        Case::new("international even digits", "even", Gsm7, 1).to("+441234567890"),
        Case::new("status report", "report please", Gsm7, 1).report(),
        Case::new("flash", "FLASH: read me now", Gsm7, 1).flash(),
        Case::new("flash UCS-2", "Внимание!", Ucs2, 1).flash(),
        Case::new("SMSC international", "via smsc", Gsm7, 1).smsc("+447802000332"),
        Case::new("SMSC national", "via national smsc", Gsm7, 1).smsc("0170760000"),
        Case::new("validity 30m", "valid 30 minutes", Gsm7, 1).validity("30m", "30M"),
        Case::new("validity 3days", "valid 3 days", Gsm7, 1).validity("3days", "3D"),
        Case::new(
            "all options multipart",
            rep("Report, flash, SMSC; ", 10),
            Gsm7,
            2,
        )
        .to("0151234567")
        .report()
        .flash()
        .smsc("+4917")
        .validity("24h", "1440M")
        .concat_ref(200)
        .mr(255),
        Case::new("all options UCS-2 multipart", rep("Отчёт 😀 ", 12), Ucs2, 2)
            .report()
            .smsc("+79001234567")
            .concat_ref(1),
    ]
}

/// The number as python-gammu reports it. gammu's semi-octet decoder drops
/// the `*` (0xA) and `#` (0xB) digits (observed: our `00010005811A00FB...`
/// for `*100#` decodes to Number `100`), so they cannot be compared; every
/// other character, including the leading `+` from TON international, is.
fn gammu_number(to: &str) -> String {
    to.chars().filter(|&c| c != '*' && c != '#').collect()
}

/// The first octet of the TPDU (after the SMSC field) of a full hex PDU.
fn first_octet(hex: &str) -> u8 {
    let byte = |i: usize| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    let smsc_len = usize::from(byte(0));
    byte(1 + smsc_len)
}

/// One PDU printed by `smsbridge pdu encode`.
struct Pdu {
    case: usize,
    index: usize,
    hex: String,
}

fn encode(case: &Case) -> Result<Vec<(usize, String)>, String> {
    let out = Command::new(SMSBRIDGE)
        .args(case.args())
        .output()
        .map_err(|e| format!("cannot run {SMSBRIDGE}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "smsbridge {:?} failed ({}): {}",
            case.args(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let stdout = String::from_utf8(out.stdout).map_err(|e| e.to_string())?;
    stdout
        .lines()
        .map(|line| {
            let (len, hex) = line
                .split_once(' ')
                .ok_or_else(|| format!("bad output line {line:?}"))?;
            let len: usize = len
                .parse()
                .map_err(|e| format!("bad length in {line:?}: {e}"))?;
            Ok((len, hex.to_string()))
        })
        .collect()
}

/// Feeds all PDUs to one python-gammu process and returns its JSON answers in order.
fn decode_all(pdus: &[Pdu]) -> Vec<Value> {
    let mut child = Command::new(PYTHON)
        .arg(ORACLE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the python-gammu oracle");
    let mut stdin = child.stdin.take().expect("stdin");
    let input: String = pdus.iter().map(|p| format!("{}\n", p.hex)).collect();
    // Write from a thread: the oracle answers line by line, so writing
    // everything before reading could fill both pipes.
    let writer = std::thread::spawn(move || {
        stdin.write_all(input.as_bytes()).expect("write to oracle");
    });
    let answers: Vec<Value> = BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map(|l| {
            let l = l.expect("read from oracle");
            serde_json::from_str(&l).unwrap_or_else(|e| panic!("oracle printed {l:?}: {e}"))
        })
        .collect();
    writer.join().expect("writer thread");
    let status = child.wait().expect("wait for oracle");
    assert!(status.success(), "oracle exited with {status}");
    assert_eq!(
        answers.len(),
        pdus.len(),
        "oracle answered {} of {} PDUs",
        answers.len(),
        pdus.len()
    );
    answers
}

#[test]
fn python_gammu_decodes_what_we_encode() {
    let found = common::command_succeeds(PYTHON, &["-c", "import gammu"]);
    if !common::peer_available("python3-gammu", "apt-get install python3-gammu", found) {
        return;
    }

    let corpus = corpus();
    let mut failures: Vec<String> = Vec::new();
    let mut pdus: Vec<Pdu> = Vec::new();
    for (ci, case) in corpus.iter().enumerate() {
        let parts = match encode(case) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("[{}] {e}", case.name));
                continue;
            }
        };
        if parts.len() != case.parts {
            failures.push(format!(
                "[{}] encoder made {} parts, expected {}",
                case.name,
                parts.len(),
                case.parts
            ));
        }
        for (index, (len, hex)) in parts.into_iter().enumerate() {
            // AT+CMGS=<length> counts the TPDU octets, without the SMSC field.
            let smsc_octets = 1 + usize::from(u8::from_str_radix(&hex[..2], 16).unwrap_or(0));
            if hex.len() % 2 != 0 || len + smsc_octets != hex.len() / 2 {
                failures.push(format!(
                    "[{}] part {}: AT+CMGS length {len} does not match PDU {hex}",
                    case.name,
                    index + 1
                ));
            }
            pdus.push(Pdu {
                case: ci,
                index,
                hex,
            });
        }
    }

    let answers = decode_all(&pdus);

    // Per case: gammu's text of each part it could decode.
    let mut texts: Vec<Vec<String>> = vec![Vec::new(); corpus.len()];
    for (pdu, d) in pdus.iter().zip(&answers) {
        let case = &corpus[pdu.case];
        let n = parts_of(&pdus, pdu.case);
        let what = format!("[{}] part {}/{} {}", case.name, pdu.index + 1, n, pdu.hex);
        if let Some(err) = d.get("error") {
            failures.push(format!("{what}: gammu could not decode it: {err}"));
            continue;
        }
        let mut check = |field: &str, got: &Value, want: Value| {
            if *got != want {
                failures.push(format!("{what}: gammu {field} = {got}, expected {want}"));
            }
        };
        check("Type", &d["type"], "Submit".into());
        check("Number", &d["number"], gammu_number(case.to).into());
        check("Coding", &d["coding"], case.coding.gammu_name().into());
        check(
            "Class",
            &d["class"],
            (if case.flash { 0 } else { -1 }).into(),
        );
        check("SMSC.Number", &d["smsc"], case.smsc.unwrap_or("").into());
        check(
            "SMSC.Validity",
            &d["validity"],
            case.validity.map_or("NA", |(_, g)| g).into(),
        );
        check(
            "MessageReference",
            &d["mr"],
            ((usize::from(case.mr) + pdu.index) % 256).into(),
        );
        if n == 1 {
            check("UDH.Type", &d["udh_type"], "NoUDH".into());
        } else {
            check("UDH.Type", &d["udh_type"], "ConcatenatedMessages".into());
            check("UDH.ID8bit", &d["udh_id8"], case.concat_ref.into());
            check("UDH.ID16bit", &d["udh_id16"], (-1).into());
            check("UDH.PartNumber", &d["part"], (pdu.index + 1).into());
            check("UDH.AllParts", &d["parts"], n.into());
        }
        let text = d["text"].as_str().unwrap_or_default().to_string();
        // gammu's Length is the UDL without the UDH: septets or UTF-16 units.
        let units = case.coding.units(&text);
        check("Length", &d["length"], units.into());

        // gammu does not report TP-SRR; check bit 5 of the first octet.
        let srr = first_octet(&pdu.hex) & 0x20 != 0;
        if srr != case.report {
            failures.push(format!("{what}: TP-SRR is {srr}, expected {}", case.report));
        }
        let cap = case.coding.capacity(n > 1);
        if units > cap {
            failures.push(format!(
                "{what}: {units} units in one part, more than {cap}"
            ));
        }
        if let Some(split) = &case.split {
            let want = split.get(pdu.index).copied().unwrap_or(0);
            let got = text.chars().count();
            if got != want {
                failures.push(format!(
                    "{what}: part has {got} characters, expected {want}: {text:?}"
                ));
            }
        }
        texts[pdu.case].push(text);
    }

    for (ci, (case, parts)) in corpus.iter().zip(&texts).enumerate() {
        if parts.len() != parts_of(&pdus, ci) {
            continue; // a part failed to decode: already reported
        }
        let joined: String = parts.concat();
        if joined != case.text {
            failures.push(format!(
                "[{}] gammu's texts joined differ from the original:\n  ours:  {:?}\n  gammu: {:?}",
                case.name, case.text, joined
            ));
        }
    }

    println!(
        "python-gammu checked {} PDUs of {} texts",
        pdus.len(),
        corpus.len()
    );
    assert!(
        failures.is_empty(),
        "{} disagreement(s) with python-gammu:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// How many PDUs the encoder printed for corpus entry `case`.
fn parts_of(pdus: &[Pdu], case: usize) -> usize {
    pdus.iter().filter(|p| p.case == case).count()
}
