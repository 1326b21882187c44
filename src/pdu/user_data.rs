//! TP-UDL and TP-UD (TS 23.040 §9.2.3.16, §9.2.3.24): the optional header and the
//! body in the alphabet TP-DCS names, with the length rules real modems enforce.

use super::DecodeError;
use super::dcs::Alphabet;
use super::error::{DecodeErrorKind, EncodeError};
use super::gsm7::{self, Shift};
use super::reader::Reader;
use super::udh::{Concat, UserDataHeader};

/// Most octets of user data one SMS can carry.
pub const MAX_OCTETS: usize = 140;
/// Most septets of GSM 7-bit user data one SMS can carry.
pub const MAX_SEPTETS: usize = 160;

/// The body of the user data, kept in its wire units so that parts of a
/// concatenated message can be joined before decoding (an escape or a surrogate
/// pair split by another sender's encoder is then mended, not garbled).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Body {
    /// Unpacked septets and the shift tables the header selected.
    Gsm7 {
        /// One septet per element.
        septets: Vec<u8>,
        /// National language tables in force.
        shift: Shift,
    },
    /// UTF-16 code units.
    Ucs2(Vec<u16>),
    /// 8-bit (or compressed) data.
    Data(Vec<u8>),
}

impl Body {
    /// The text, or `None` for 8-bit data. Unpaired surrogates become U+FFFD.
    pub fn text(&self) -> Option<String> {
        match self {
            Self::Gsm7 { septets, shift } => Some(gsm7::decode(septets, *shift)),
            Self::Ucs2(units) => Some(String::from_utf16_lossy(units)),
            Self::Data(_) => None,
        }
    }

    /// The alphabet of this body.
    pub fn alphabet(&self) -> Alphabet {
        match self {
            Self::Gsm7 { .. } => Alphabet::Gsm7,
            Self::Ucs2(_) => Alphabet::Ucs2,
            Self::Data(_) => Alphabet::Eight,
        }
    }

    /// The body as octets: packed-free septets, big-endian UTF-16, or the data.
    pub fn octets(&self) -> Vec<u8> {
        match self {
            Self::Gsm7 { septets, .. } => septets.clone(),
            Self::Ucs2(units) => units.iter().flat_map(|u| u.to_be_bytes()).collect(),
            Self::Data(d) => d.clone(),
        }
    }
}

/// TP-UD: an optional header and a body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserData {
    /// The user data header, present when TP-UDHI is set.
    pub header: Option<UserDataHeader>,
    /// What follows the header.
    pub body: Body,
}

impl UserData {
    /// The concatenation position, if the header has one.
    pub fn concat(&self) -> Option<Concat> {
        self.header.as_ref().and_then(UserDataHeader::concat)
    }

    /// Reads TP-UDL and TP-UD. Octets after the user data are left unread.
    pub(crate) fn decode(
        r: &mut Reader<'_>,
        udhi: bool,
        alphabet: Alphabet,
    ) -> Result<Self, DecodeError> {
        let udl_at = r.offset();
        let udl = usize::from(r.u8("TP-UDL")?);
        let max = if alphabet == Alphabet::Gsm7 {
            MAX_SEPTETS
        } else {
            MAX_OCTETS
        };
        if udl > max {
            return Err(DecodeError::new(
                "TP-UDL",
                udl_at,
                DecodeErrorKind::OutOfRange {
                    value: udl as u32,
                    min: 0,
                    max: max as u32,
                },
            ));
        }
        let octets = if alphabet == Alphabet::Gsm7 {
            (udl * 7).div_ceil(8)
        } else {
            udl
        };
        let ud_at = r.offset();
        let ud = r.take("TP-UD", octets)?;
        let broken = || DecodeError::new("TP-UDH", ud_at, DecodeErrorKind::BrokenHeader);
        let (header, header_len) = if udhi {
            let udhl = usize::from(*ud.first().ok_or_else(broken)?);
            let raw = ud.get(1..1 + udhl).ok_or_else(broken)?;
            (Some(UserDataHeader::decode(raw, ud_at + 1)?), 1 + udhl)
        } else {
            (None, 0)
        };
        let rest = &ud[header_len..];
        let body = match alphabet {
            Alphabet::Gsm7 => {
                let header_septets = (header_len * 8).div_ceil(7);
                let count = udl.checked_sub(header_septets).ok_or_else(broken)?;
                let fill = header_septets * 7 - header_len * 8;
                let shift = header
                    .as_ref()
                    .map(UserDataHeader::shift)
                    .unwrap_or_default();
                Body::Gsm7 {
                    septets: gsm7::unpack(rest, fill, count),
                    shift,
                }
            }
            Alphabet::Ucs2 => {
                if rest.len() % 2 != 0 {
                    return Err(DecodeError::new(
                        "TP-UD",
                        ud_at + header_len,
                        DecodeErrorKind::OddUcs2Length,
                    ));
                }
                Body::Ucs2(
                    rest.chunks_exact(2)
                        .map(|p| u16::from_be_bytes([p[0], p[1]]))
                        .collect(),
                )
            }
            Alphabet::Eight => Body::Data(rest.to_vec()),
        };
        Ok(Self { header, body })
    }

    /// The TP-UDL value and the TP-UD octets for this user data, or an error if it
    /// does not fit in one SMS. Fill bits after a header are zero.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let mut ud = Vec::with_capacity(MAX_OCTETS);
        if let Some(h) = &self.header {
            h.encode(&mut ud);
        }
        let header_len = ud.len();
        let udl = match &self.body {
            Body::Gsm7 { septets, .. } => {
                let header_septets = (header_len * 8).div_ceil(7);
                let fill = header_septets * 7 - header_len * 8;
                gsm7::pack(septets, fill, &mut ud);
                header_septets + septets.len()
            }
            Body::Ucs2(units) => {
                ud.extend(units.iter().flat_map(|u| u.to_be_bytes()));
                ud.len()
            }
            Body::Data(d) => {
                ud.extend_from_slice(d);
                ud.len()
            }
        };
        if ud.len() > MAX_OCTETS || udl > 255 {
            return Err(EncodeError::UserDataTooLong(ud.len()));
        }
        out.push(udl as u8);
        out.extend_from_slice(&ud);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::reader::from_hex;

    fn read(hex: &str, udhi: bool, alphabet: Alphabet) -> Result<UserData, DecodeError> {
        let b = from_hex(hex).unwrap();
        UserData::decode(&mut Reader::new(&b, 0), udhi, alphabet)
    }

    #[test]
    fn seven_bit_length_is_exact() {
        // UDL 11 needs ceil(77/8) = 10 octets; 9 are there (ModemManager
        // test_pdu_insufficient_data).
        let e = read("0BE8329BFD4697D9EC37", false, Alphabet::Gsm7).unwrap_err();
        assert_eq!(e.field, "TP-UD");
        assert_eq!(
            e.kind,
            DecodeErrorKind::Truncated {
                needed: 10,
                available: 9
            }
        );
        let ok = read("0AE8329BFD4697D9EC37", false, Alphabet::Gsm7).unwrap();
        assert_eq!(ok.body.text().unwrap(), "hellohello");
    }

    #[test]
    fn header_with_fill_bit_then_text() {
        // D22 (warthog618/modem gsm_test.go): the concatenation element says part 6
        // of 2 (reference/sms.md calls it 2/2; the source's own expectation shows
        // data {3, 2, 6}). §9.2.3.24.1: such an element is ignored.
        let ud = read("0F050003030206906174181D468701", true, Alphabet::Gsm7).unwrap();
        assert_eq!(ud.header.as_ref().unwrap().elements[0].data, [3, 2, 6]);
        assert_eq!(ud.concat(), None);
        assert_eq!(ud.body.text().unwrap(), "Hahahaha");
        let mut out = Vec::new();
        ud.encode(&mut out).unwrap();
        assert_eq!(out, from_hex("0F050003030206906174181D468701").unwrap());
    }

    #[test]
    fn header_longer_than_user_data_is_an_error() {
        assert_eq!(
            read("00", true, Alphabet::Ucs2).unwrap_err().kind,
            DecodeErrorKind::BrokenHeader
        );
        assert_eq!(
            read("0305000300", true, Alphabet::Eight).unwrap_err().kind,
            DecodeErrorKind::BrokenHeader
        );
        assert!(read("A1", false, Alphabet::Gsm7).is_err());
        assert!(read("8D", false, Alphabet::Ucs2).is_err());
        assert_eq!(
            read("03006100", false, Alphabet::Ucs2).unwrap_err().kind,
            DecodeErrorKind::OddUcs2Length
        );
    }

    #[test]
    fn dangling_surrogate_becomes_replacement() {
        // D21's user data: 😁 and a lone high surrogate.
        let ud = read("06D83DDE01D83D", false, Alphabet::Ucs2).unwrap();
        assert_eq!(ud.body.text().unwrap(), "😁\u{fffd}");
    }
}
