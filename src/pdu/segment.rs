//! Turning text into SMS-SUBMIT parts: choose the alphabet (GSM 7-bit when every
//! character fits, with the extension table, else UCS-2), then split into parts
//! with a concatenation header, never splitting an escape pair or a surrogate pair.

use super::dcs::{Alphabet, DataCoding};
use super::error::EncodeError;
use super::gsm7;
use super::tpdu::Submit;
use super::udh::{Concat, UserDataHeader};
use super::user_data::{Body, MAX_SEPTETS, UserData};

/// UTF-16 units in one unconcatenated SMS.
const SINGLE_UCS2: usize = 70;

/// How to encode a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    /// Use UCS-2 even when the text fits the GSM 7-bit alphabet.
    pub force_ucs2: bool,
    /// Use a 16-bit concatenation reference (IEI 0x08), one unit less per part.
    pub wide_reference: bool,
    /// Refuse texts that need more parts than this (at most 255).
    pub max_parts: usize,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self {
            force_ucs2: false,
            wide_reference: false,
            max_parts: 255,
        }
    }
}

/// What a text will cost, worked out before anything is queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The alphabet chosen.
    pub alphabet: Alphabet,
    /// How many SMS the text needs.
    pub parts: usize,
    /// Septets (GSM 7-bit, escape pairs count two) or UTF-16 units (UCS-2).
    pub units: usize,
}

/// The text cut into the bodies of its parts.
struct Chunks {
    alphabet: Alphabet,
    units: usize,
    bodies: Vec<Body>,
}

fn chunk(text: &str, opts: &EncodeOptions) -> Chunks {
    let header_octets = if opts.wide_reference { 7 } else { 6 };
    let gsm7 = if opts.force_ucs2 {
        None
    } else {
        text.chars()
            .map(gsm7::encode_char)
            .collect::<Option<Vec<_>>>()
    };
    match gsm7 {
        Some(chars) => {
            let units: usize = chars.iter().map(|s| s.len()).sum();
            // 153 septets after a 6-octet header (7 septets with one fill bit), 152
            // after a 7-octet header (8 septets exactly).
            let per_part = MAX_SEPTETS - (header_octets * 8usize).div_ceil(7);
            let pieces = chars.iter().map(|s| match *s {
                gsm7::Septets::One(a) => vec![a],
                gsm7::Septets::Escaped(a) => vec![gsm7::ESC, a],
            });
            let bodies = split(pieces, units, MAX_SEPTETS, per_part)
                .into_iter()
                .map(|septets| Body::Gsm7 {
                    septets,
                    shift: gsm7::Shift::default(),
                })
                .collect();
            Chunks {
                alphabet: Alphabet::Gsm7,
                units,
                bodies,
            }
        }
        None => {
            let units = text.encode_utf16().count();
            let per_part = (140 - header_octets) / 2;
            let pieces = text.chars().map(|c| {
                let mut buf = [0u16; 2];
                c.encode_utf16(&mut buf).to_vec()
            });
            let bodies = split(pieces, units, SINGLE_UCS2, per_part)
                .into_iter()
                .map(Body::Ucs2)
                .collect();
            Chunks {
                alphabet: Alphabet::Ucs2,
                units,
                bodies,
            }
        }
    }
}

/// Cuts whole pieces (a character's septets or UTF-16 units) into parts: one part
/// if `total` fits in `single`, else greedy parts of at most `per_part` units. A
/// piece is never cut, so escape and surrogate pairs stay together.
fn split<T>(
    pieces: impl Iterator<Item = Vec<T>>,
    total: usize,
    single: usize,
    per_part: usize,
) -> Vec<Vec<T>> {
    if total <= single {
        return vec![pieces.flatten().collect()];
    }
    let mut parts: Vec<Vec<T>> = vec![Vec::with_capacity(per_part)];
    for piece in pieces {
        let current = parts.len() - 1;
        if parts[current].len() + piece.len() > per_part {
            parts.push(Vec::with_capacity(per_part));
        }
        let last = parts.len() - 1;
        parts[last].extend(piece);
    }
    parts
}

/// The alphabet, part count and length of `text`, without building any PDU.
pub fn plan(text: &str, opts: &EncodeOptions) -> Plan {
    let c = chunk(text, opts);
    Plan {
        alphabet: c.alphabet,
        parts: c.bodies.len(),
        units: c.units,
    }
}

/// Builds the SMS-SUBMIT parts for `text`. Addresses, flags, TP-PID, TP-VP and the
/// message class come from `template`; its user data is replaced. `reference`
/// identifies the parts of one message (only its low 8 bits are used unless
/// `opts.wide_reference`); the caller chooses it, so it can avoid references in
/// flight to the same recipient. Each part gets `template.mr`.
pub fn segment(
    template: &Submit,
    text: &str,
    reference: u16,
    opts: &EncodeOptions,
) -> Result<Vec<Submit>, EncodeError> {
    let chunks = chunk(text, opts);
    let total = chunks.bodies.len();
    let max = opts.max_parts.min(255);
    if total > max {
        return Err(EncodeError::TooManyParts { needed: total, max });
    }
    let dcs = DataCoding::new(chunks.alphabet, template.dcs.class());
    let reference = if opts.wide_reference {
        reference
    } else {
        reference & 0xff
    };
    Ok(chunks
        .bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let header = (total > 1).then(|| UserDataHeader {
                elements: vec![
                    Concat {
                        reference,
                        total: total as u8,
                        seq: (i + 1) as u8,
                        wide: opts.wide_reference,
                    }
                    .element(),
                ],
            });
            Submit {
                dcs,
                user_data: UserData { header, body },
                ..template.clone()
            }
        })
        .collect())
}
