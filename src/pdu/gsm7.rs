//! The GSM 7-bit default alphabet and its extension table (TS 23.038 §6.2.1), septet
//! packing with fill bits (§6.1.2.1), and decoding with the national language shift
//! tables of [`super::national`].

use super::national;

/// The escape septet: the next septet is read from the single shift table.
pub const ESC: u8 = 0x1b;

/// TS 23.038 §6.2.1, position = septet value. 0x1B is the escape, kept as U+001B.
const DEFAULT: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The default extension table (§6.2.1.1): septet after ESC -> character.
const EXTENSION: [(u8, char); 10] = [
    (0x0a, '\u{c}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2f, '\\'),
    (0x3c, '['),
    (0x3d, '~'),
    (0x3e, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// How a character is written in the default alphabet: one septet, or ESC and one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Septets {
    /// A character of the default table.
    One(u8),
    /// A character of the extension table, written as ESC + this septet.
    Escaped(u8),
}

impl Septets {
    /// How many septets the character takes (an escape pair counts as two).
    #[allow(clippy::len_without_is_empty)] // never empty: one or two septets
    pub fn len(self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Escaped(_) => 2,
        }
    }
}

/// The default-alphabet encoding of `c`, or `None` when only UCS-2 can carry it.
pub fn encode_char(c: char) -> Option<Septets> {
    // Fast path for the ASCII letters and digits, which sit at their ASCII codes.
    if c.is_ascii_alphanumeric() {
        return Some(Septets::One(c as u8));
    }
    if c != '\u{1b}'
        && let Some(i) = DEFAULT.iter().position(|&d| d == c)
    {
        return Some(Septets::One(i as u8));
    }
    EXTENSION
        .iter()
        .find(|&&(_, e)| e == c)
        .map(|&(s, _)| Septets::Escaped(s))
}

/// Appends the septets of `text` to `out`; `Err` names the first character the
/// default alphabet and extension table cannot carry.
pub fn encode_str(text: &str, out: &mut Vec<u8>) -> Result<(), char> {
    for c in text.chars() {
        match encode_char(c).ok_or(c)? {
            Septets::One(s) => out.push(s),
            Septets::Escaped(s) => out.extend_from_slice(&[ESC, s]),
        }
    }
    Ok(())
}

/// The septet count of `text`, or `None` if a character needs UCS-2.
pub fn septet_count(text: &str) -> Option<usize> {
    text.chars().map(|c| encode_char(c).map(Septets::len)).sum()
}

/// The shift tables in force for a message (UDH IEIs 0x24 and 0x25); 0 = default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Shift {
    /// National language locking shift table (IEI 0x25), 0 for the default alphabet.
    pub locking: u8,
    /// National language single shift table (IEI 0x24), 0 for the default extension.
    pub single: u8,
}

/// Decodes unpacked septets to text with the given shift tables.
///
/// Follows §6.2.1.1: an escape followed by a septet the single shift table leaves
/// empty shows the character of the main table; ESC ESC and a trailing ESC show a
/// space.
pub fn decode(septets: &[u8], shift: Shift) -> String {
    let main: &[char; 128] = national::locking_shift(shift.locking).unwrap_or(&DEFAULT);
    let single = national::single_shift(shift.single);
    let mut out = String::with_capacity(septets.len());
    let mut it = septets.iter().map(|&s| s & 0x7f);
    while let Some(s) = it.next() {
        if s != ESC {
            out.push(main[usize::from(s)]);
            continue;
        }
        match it.next() {
            None | Some(ESC) => out.push(' '),
            Some(e) => {
                let c = match single {
                    Some(table) => table[usize::from(e)],
                    None => EXTENSION.iter().find(|&&(p, _)| p == e).map(|&(_, c)| c),
                };
                out.push(c.unwrap_or(main[usize::from(e)]));
            }
        }
    }
    out
}

/// Packs septets into octets, starting after `fill_bits` zero bits (the padding that
/// aligns text after a user data header to a septet boundary). Unused bits of the
/// last octet are zero: modems reject non-zero fill with `+CMS ERROR: 304`.
pub fn pack(septets: &[u8], fill_bits: usize, out: &mut Vec<u8>) {
    let total_bits = fill_bits + septets.len() * 7;
    let start = out.len();
    out.resize(start + total_bits.div_ceil(8), 0);
    let dst = &mut out[start..];
    for (i, &s) in septets.iter().enumerate() {
        let bit = fill_bits + i * 7;
        let (byte, shift) = (bit / 8, bit % 8);
        let v = u16::from(s & 0x7f) << shift;
        dst[byte] |= v as u8;
        if shift > 1 {
            dst[byte + 1] |= (v >> 8) as u8;
        }
    }
}

/// Unpacks `count` septets from `data`, skipping `fill_bits` leading bits. The caller
/// has checked that `data` holds `fill_bits + 7 * count` bits.
pub fn unpack(data: &[u8], fill_bits: usize, count: usize) -> Vec<u8> {
    (0..count)
        .map(|i| {
            let bit = fill_bits + i * 7;
            let (byte, shift) = (bit / 8, bit % 8);
            let lo = u16::from(data[byte]);
            let hi = data.get(byte + 1).copied().map_or(0, u16::from);
            (((hi << 8 | lo) >> shift) & 0x7f) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::reader::{from_hex, to_hex};

    fn packed(text: &str) -> String {
        let mut s = Vec::new();
        encode_str(text, &mut s).unwrap();
        let mut out = Vec::new();
        pack(&s, 0, &mut out);
        to_hex(&out)
    }

    // reference/sms.md §6.5, GSM7 packing vectors (python-gsmmodem, ModemManager).
    #[test]
    fn packs_reference_vectors() {
        for (text, hex) in [
            ("123", "31D90C"),
            ("12345678", "31D98C56B3DD70"),
            ("123456789", "31D98C56B3DD7039"),
            ("Hello World!", "C8329BFD065DDF72363904"),
            ("[{abc}]~", "1BDE0615168F37A98D6FD303"),
            ("{åΦΓΛΩΠΨΣΘ€}", "1BD44332A1542C174C6653DEA400"),
            ("O", "4F"),
        ] {
            assert_eq!(packed(text), hex, "{text}");
            let data = from_hex(hex).unwrap();
            let count = septet_count(text).unwrap();
            assert_eq!(decode(&unpack(&data, 0, count), Shift::default()), text);
        }
    }

    #[test]
    fn escape_pairs_count_two_septets() {
        assert_eq!(septet_count("[{abc}]~"), Some(13));
        assert_eq!(septet_count("€"), Some(2));
        assert_eq!(septet_count("ç"), None);
        assert_eq!(septet_count("😁"), None);
    }

    #[test]
    fn fill_bits_are_zero_and_skipped() {
        let mut out = vec![0xAA];
        pack(&[0x7f], 1, &mut out);
        assert_eq!(out, [0xAA, 0xFE]);
        assert_eq!(unpack(&out[1..], 1, 1), [0x7f]);
    }

    #[test]
    fn unknown_extension_shows_main_table_character() {
        // ESC 0x41 is empty in the extension table: 'A' is shown (§6.2.1.1).
        assert_eq!(decode(&[ESC, 0x41, ESC], Shift::default()), "A ");
    }

    #[test]
    fn every_default_character_round_trips() {
        for s in (0u8..128).filter(|&s| s != ESC) {
            let c = DEFAULT[usize::from(s)];
            assert_eq!(encode_char(c), Some(Septets::One(s)), "{c:?}");
        }
        for (s, c) in EXTENSION {
            assert_eq!(encode_char(c), Some(Septets::Escaped(s)), "{c:?}");
        }
        assert_eq!(encode_char('\u{1b}'), None);
    }
}
