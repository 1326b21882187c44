//! National language shift tables of 3GPP TS 23.038 Annex A (Turkish, Spanish,
//! Portuguese), selected by UDH IEI 0x24 (single shift) and 0x25 (locking shift).
//! Decode only: the encoder never emits them.
//!
//! Annex A.2 holds the single shift tables and A.3 the locking shift tables; A.3.2
//! (Spanish locking shift) is void, so Spanish has a single shift table only.
//!
//! The character data was cross-checked position by position against four public
//! transcriptions of the spec: the `lut/*.csv` tables of ndf-zz/gsmcodecs (from
//! TS 23.038 V18.0.0), CyberChef's GSM-7 tables (from V16.0.0), Android's
//! `GsmAlphabet.java` (from V9.1.1) and Nokia's Symbian charconv data (from V8.1.0).
//! Every printable character agrees across them, except as noted at
//! `PORTUGUESE_SINGLE` (0x05) and at position 0x0D of the single shift tables.

/// Language identifier of Turkish (TS 23.038 §6.2.1.2.4).
const TURKISH: u8 = 1;
/// Language identifier of Spanish (TS 23.038 §6.2.1.2.4).
const SPANISH: u8 = 2;
/// Language identifier of Portuguese (TS 23.038 §6.2.1.2.4).
const PORTUGUESE: u8 = 3;

/// The locking shift table for `language` (TS 23.038 §6.2.1.2.4 identifier), which
/// replaces the default alphabet for the whole message. `None` when the spec defines
/// no locking shift table for that language (the default alphabet then applies).
/// Position 0x1B holds '\u{1b}' (it stays the escape to the single shift table).
pub(crate) fn locking_shift(language: u8) -> Option<&'static [char; 128]> {
    match language {
        TURKISH => Some(&TURKISH_LOCKING),
        // A.3.2 is void: there is no Spanish locking shift table.
        PORTUGUESE => Some(&PORTUGUESE_LOCKING),
        _ => None,
    }
}

/// The single shift table for `language`: what the septet after an ESC (0x1B) means.
/// `None` entries are positions the table leaves empty (the decoder falls back as the
/// spec says). Position 0x1B is `None` (it is reserved for a further extension).
/// Returns `None` for a language whose table is not in this file.
pub(crate) fn single_shift(language: u8) -> Option<&'static [Option<char>; 128]> {
    match language {
        TURKISH => Some(&TURKISH_SINGLE),
        SPANISH => Some(&SPANISH_SINGLE),
        PORTUGUESE => Some(&PORTUGUESE_SINGLE),
        _ => None,
    }
}

// A.3.1 Turkish National Language Locking Shift Table.
// Rows of 16, position = septet value. 0x07 is U+0131 (dotless ı), 0x40 is U+0130
// (dotted İ). Samsung/Tizen-derived `MsgTextConvert` code keeps the default
// alphabet's 'ì' (U+00EC) at 0x07; the spec and the four sources above have 'ı'.
static TURKISH_LOCKING: [char; 128] = [
    '@', '£', '$', '¥', '€', 'é', 'ù', 'ı', 'ò', 'Ç', '\n', 'Ğ', 'ğ', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Ş', 'ş', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    'İ', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    'ç', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

// A.3.3 Portuguese National Language Locking Shift Table.
// Rows of 16, position = septet value. 0x15 is U+221E (∞); 0x12, 0x24 are ª, º.
static PORTUGUESE_LOCKING: [char; 128] = [
    '@', '£', '$', '¥', 'ê', 'é', 'ú', 'í', 'ó', 'ç', '\n', 'Ô', 'ô', '\r', 'Á', 'á', //
    'Δ', '_', 'ª', 'Ç', 'À', '∞', '^', '\\', '€', 'Ó', '|', '\u{1b}', 'Â', 'â', 'Ê', 'É', //
    ' ', '!', '"', '#', 'º', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    'Í', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ã', 'Õ', 'Ú', 'Ü', '§', //
    '~', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ã', 'õ', '`', 'ü', 'à', //
];

// Notes common to the single shift tables below (TS 23.038 §6.2.1.1 and Annex A):
// - 0x0A is the Page Break control, decoded as FORM FEED (U+000C), as in the default
//   extension table.
// - 0x0D is CR2, a control character at which no language-specific character may be
//   encoded. It is left empty here, as in Android and gsmcodecs; the decoder's
//   fallback then shows the main table's 0x0D, i.e. CR. (CyberChef and Nokia map
//   ESC 0x0D straight to CR, which decodes to the same text.)
// - 0x1B (SS2) is reserved for a further extension table and stays empty.

// A.2.1 Turkish National Language Single Shift Table.
static TURKISH_SINGLE: [Option<char>; 128] = single_shift_table(&[
    (0x0A, '\u{c}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x47, 'Ğ'),
    (0x49, 'İ'), // U+0130
    (0x53, 'Ş'),
    (0x63, 'ç'),
    (0x65, '€'),
    (0x67, 'ğ'),
    (0x69, 'ı'), // U+0131
    (0x73, 'ş'),
]);

// A.2.2 Spanish National Language Single Shift Table.
static SPANISH_SINGLE: [Option<char>; 128] = single_shift_table(&[
    (0x09, 'ç'),
    (0x0A, '\u{c}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x41, 'Á'),
    (0x49, 'Í'),
    (0x4F, 'Ó'),
    (0x55, 'Ú'),
    (0x61, 'á'),
    (0x65, '€'),
    (0x69, 'í'),
    (0x6F, 'ó'),
    (0x75, 'ú'),
]);

// A.2.3 Portuguese National Language Single Shift Table.
// Disagreement: CyberChef's transcription (from V16.0.0) leaves 0x05 empty, while
// gsmcodecs (V18.0.0), Android (V9.1.1) and Nokia (V8.1.0) all have 'ê' there; 'ê'
// is kept. The Greek capitals at 0x12..=0x19 are the real Greek code points.
static PORTUGUESE_SINGLE: [Option<char>; 128] = single_shift_table(&[
    (0x05, 'ê'),
    (0x09, 'ç'),
    (0x0A, '\u{c}'),
    (0x0B, 'Ô'),
    (0x0C, 'ô'),
    (0x0E, 'Á'),
    (0x0F, 'á'),
    (0x12, 'Φ'),
    (0x13, 'Γ'),
    (0x14, '^'),
    (0x15, 'Ω'),
    (0x16, 'Π'),
    (0x17, 'Ψ'),
    (0x18, 'Σ'),
    (0x19, 'Θ'),
    (0x1F, 'Ê'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x41, 'À'),
    (0x49, 'Í'),
    (0x4F, 'Ó'),
    (0x55, 'Ú'),
    (0x5B, 'Ã'),
    (0x5C, 'Õ'),
    (0x61, 'Â'),
    (0x65, '€'),
    (0x69, 'í'),
    (0x6F, 'ó'),
    (0x75, 'ú'),
    (0x7B, 'ã'),
    (0x7C, 'õ'),
    (0x7F, 'â'),
]);

/// Builds a single shift table from its defined `(septet, character)` entries; every
/// other position is empty. Evaluated at compile time: an entry outside 0..=0x7F, at
/// the reserved 0x1B, or at a position already filled fails the build.
const fn single_shift_table(entries: &[(u8, char)]) -> [Option<char>; 128] {
    let mut table = [None; 128];
    let mut i = 0;
    while i < entries.len() {
        let (septet, c) = entries[i];
        let pos = septet as usize;
        assert!(pos < 128, "single shift septet out of range");
        assert!(pos != 0x1B, "0x1B is reserved in single shift tables");
        assert!(table[pos].is_none(), "duplicate single shift septet");
        table[pos] = Some(c);
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESC: usize = 0x1B;

    fn locking(language: u8) -> &'static [char; 128] {
        locking_shift(language).unwrap()
    }

    fn single(language: u8) -> &'static [Option<char>; 128] {
        single_shift(language).unwrap()
    }

    /// Printable characters of a table occur once each (the spec repeats none).
    fn assert_no_duplicates(name: &str, chars: impl Iterator<Item = char>) {
        let mut seen = std::collections::HashSet::new();
        for c in chars.filter(|c| !c.is_control()) {
            assert!(seen.insert(c), "{name}: {c:?} appears twice");
        }
    }

    #[test]
    fn language_selection() {
        assert!(locking_shift(TURKISH).is_some());
        assert!(locking_shift(SPANISH).is_none(), "A.3.2 is void");
        assert!(locking_shift(PORTUGUESE).is_some());
        for language in [1, 2, 3] {
            assert!(single_shift(language).is_some());
        }
        for language in [0, 4, 13, 14, 0xFF] {
            assert!(locking_shift(language).is_none());
            assert!(single_shift(language).is_none());
        }
    }

    #[test]
    fn turkish_locking_spot_checks() {
        let t = locking(TURKISH);
        assert_eq!(t[0x04], '\u{20AC}'); // €
        assert_eq!(t[0x07], '\u{131}'); // ı, not the default alphabet's ì
        assert_eq!(t[0x0B], '\u{11E}'); // Ğ
        assert_eq!(t[0x0C], '\u{11F}'); // ğ
        assert_eq!(t[0x1C], '\u{15E}'); // Ş
        assert_eq!(t[0x1D], '\u{15F}'); // ş
        assert_eq!(t[0x40], '\u{130}'); // İ
        assert_eq!(t[0x60], '\u{E7}'); // ç
        assert_eq!(t[0x0A], '\n');
        assert_eq!(t[0x0D], '\r');
        assert_eq!(t[0x49], 'I');
        assert_eq!(t[0x69], 'i');
        assert_eq!(t[ESC], '\u{1b}');
    }

    #[test]
    fn portuguese_locking_spot_checks() {
        let t = locking(PORTUGUESE);
        assert_eq!(t[0x04], '\u{EA}'); // ê
        assert_eq!(t[0x06], '\u{FA}'); // ú
        assert_eq!(t[0x12], '\u{AA}'); // ª
        assert_eq!(t[0x15], '\u{221E}'); // ∞
        assert_eq!(t[0x16], '^');
        assert_eq!(t[0x17], '\\');
        assert_eq!(t[0x18], '\u{20AC}'); // €
        assert_eq!(t[0x1A], '|');
        assert_eq!(t[0x24], '\u{BA}'); // º
        assert_eq!(t[0x40], '\u{CD}'); // Í
        assert_eq!(t[0x5B], '\u{C3}'); // Ã
        assert_eq!(t[0x60], '~');
        assert_eq!(t[0x7D], '`');
        assert_eq!(t[ESC], '\u{1b}');
    }

    #[test]
    fn turkish_single_shift_spot_checks() {
        let t = single(TURKISH);
        assert_eq!(t[0x47], Some('\u{11E}')); // Ğ
        assert_eq!(t[0x67], Some('\u{11F}')); // ğ
        assert_eq!(t[0x53], Some('\u{15E}')); // Ş
        assert_eq!(t[0x73], Some('\u{15F}')); // ş
        assert_eq!(t[0x49], Some('\u{130}')); // İ
        assert_eq!(t[0x69], Some('\u{131}')); // ı
        assert_eq!(t[0x63], Some('\u{E7}')); // ç
        assert_eq!(t[0x65], Some('\u{20AC}')); // €
        assert_eq!(t[0x0A], Some('\u{c}'));
        assert_eq!(t[0x28], Some('{'));
        assert_eq!(t[0x00], None);
        assert_eq!(t[0x41], None);
        assert_eq!(t[ESC], None);
        assert_eq!(t.iter().flatten().count(), 17);
    }

    #[test]
    fn spanish_single_shift_spot_checks() {
        let t = single(SPANISH);
        assert_eq!(t[0x09], Some('\u{E7}')); // ç
        assert_eq!(t[0x41], Some('\u{C1}')); // Á
        assert_eq!(t[0x49], Some('\u{CD}')); // Í
        assert_eq!(t[0x4F], Some('\u{D3}')); // Ó
        assert_eq!(t[0x55], Some('\u{DA}')); // Ú
        assert_eq!(t[0x61], Some('\u{E1}')); // á
        assert_eq!(t[0x69], Some('\u{ED}')); // í
        assert_eq!(t[0x6F], Some('\u{F3}')); // ó
        assert_eq!(t[0x75], Some('\u{FA}')); // ú
        assert_eq!(t[0x65], Some('\u{20AC}')); // €
        assert_eq!(t[0x40], Some('|'));
        assert_eq!(t[0x0D], None);
        assert_eq!(t[ESC], None);
        assert_eq!(t.iter().flatten().count(), 19);
    }

    #[test]
    fn portuguese_single_shift_spot_checks() {
        let t = single(PORTUGUESE);
        assert_eq!(t[0x05], Some('\u{EA}')); // ê
        assert_eq!(t[0x0B], Some('\u{D4}')); // Ô
        assert_eq!(t[0x12], Some('\u{3A6}')); // Φ
        assert_eq!(t[0x15], Some('\u{3A9}')); // Ω
        assert_eq!(t[0x19], Some('\u{398}')); // Θ
        assert_eq!(t[0x1F], Some('\u{CA}')); // Ê
        assert_eq!(t[0x41], Some('\u{C0}')); // À
        assert_eq!(t[0x5B], Some('\u{C3}')); // Ã
        assert_eq!(t[0x61], Some('\u{C2}')); // Â
        assert_eq!(t[0x7F], Some('\u{E2}')); // â
        assert_eq!(t[0x65], Some('\u{20AC}')); // €
        assert_eq!(t[0x10], None); // Δ is in the main table only
        assert_eq!(t[ESC], None);
        assert_eq!(t.iter().flatten().count(), 37);
    }

    #[test]
    fn locking_tables_keep_ascii_letters_and_digits_in_place() {
        for language in [TURKISH, PORTUGUESE] {
            let t = locking(language);
            for c in ('A'..='Z').chain('a'..='z').chain('0'..='9') {
                assert_eq!(t[c as usize], c, "language {language}");
            }
        }
    }

    #[test]
    fn single_shift_tables_share_the_default_extension_characters() {
        for language in [TURKISH, SPANISH, PORTUGUESE] {
            let t = single(language);
            for (pos, c) in [
                (0x0A, '\u{c}'),
                (0x14, '^'),
                (0x28, '{'),
                (0x29, '}'),
                (0x2F, '\\'),
                (0x3C, '['),
                (0x3D, '~'),
                (0x3E, ']'),
                (0x40, '|'),
                (0x65, '€'),
            ] {
                assert_eq!(t[pos], Some(c), "language {language}");
            }
        }
    }

    #[test]
    fn cr2_and_ss2_positions_are_empty() {
        for language in [TURKISH, SPANISH, PORTUGUESE] {
            let t = single(language);
            assert_eq!(t[0x0D], None, "language {language}");
            assert_eq!(t[ESC], None, "language {language}");
        }
    }

    #[test]
    fn escape_appears_only_at_0x1b_in_locking_tables() {
        for language in [TURKISH, PORTUGUESE] {
            let t = locking(language);
            let escapes: Vec<usize> = (0..128).filter(|&i| t[i] == '\u{1b}').collect();
            assert_eq!(escapes, [ESC], "language {language}");
        }
    }

    #[test]
    fn no_duplicate_printable_characters() {
        assert_no_duplicates("A.3.1", locking(TURKISH).iter().copied());
        assert_no_duplicates("A.3.3", locking(PORTUGUESE).iter().copied());
        assert_no_duplicates("A.2.1", single(TURKISH).iter().flatten().copied());
        assert_no_duplicates("A.2.2", single(SPANISH).iter().flatten().copied());
        assert_no_duplicates("A.2.3", single(PORTUGUESE).iter().flatten().copied());
    }
}
