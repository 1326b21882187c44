//! The user data header (TS 23.040 §9.2.3.24): a list of information elements.
//! Concatenation, port addressing and the national language shifts are read;
//! every other element is kept as it came and skipped, never an error.

use super::DecodeError;
use super::error::DecodeErrorKind;
use super::gsm7::Shift;

/// IEI of the concatenation element with an 8-bit reference.
pub const IEI_CONCAT_8: u8 = 0x00;
/// IEI of the concatenation element with a 16-bit reference.
pub const IEI_CONCAT_16: u8 = 0x08;
/// IEI of application port addressing with 8-bit ports.
pub const IEI_PORTS_8: u8 = 0x04;
/// IEI of application port addressing with 16-bit ports.
pub const IEI_PORTS_16: u8 = 0x05;
/// IEI of the national language single shift.
pub const IEI_SINGLE_SHIFT: u8 = 0x24;
/// IEI of the national language locking shift.
pub const IEI_LOCKING_SHIFT: u8 = 0x25;

/// One information element: identifier and data, exactly as on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InformationElement {
    /// The IEI.
    pub iei: u8,
    /// The IE data (its length octet is implied).
    pub data: Vec<u8>,
}

/// Where a part sits in a concatenated message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Concat {
    /// The reference shared by all parts of one message.
    pub reference: u16,
    /// How many parts the message has (1–255).
    pub total: u8,
    /// This part's number (1–`total`).
    pub seq: u8,
    /// Whether the reference is 16 bits wide (IEI 0x08) rather than 8 (IEI 0x00).
    pub wide: bool,
}

impl Concat {
    /// The element that carries this position.
    pub fn element(&self) -> InformationElement {
        let [hi, lo] = self.reference.to_be_bytes();
        if self.wide {
            InformationElement {
                iei: IEI_CONCAT_16,
                data: vec![hi, lo, self.total, self.seq],
            }
        } else {
            InformationElement {
                iei: IEI_CONCAT_8,
                data: vec![lo, self.total, self.seq],
            }
        }
    }
}

/// Application port addressing (IEI 0x04 or 0x05).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ports {
    /// Destination port.
    pub destination: u16,
    /// Originator port.
    pub source: u16,
}

/// A user data header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct UserDataHeader {
    /// The elements in wire order.
    pub elements: Vec<InformationElement>,
}

impl UserDataHeader {
    /// Reads the elements of a header whose UDHL octet has been consumed; `at` is the
    /// offset of `raw` for error reports.
    pub(crate) fn decode(raw: &[u8], at: usize) -> Result<Self, DecodeError> {
        let mut elements = Vec::new();
        let mut i = 0;
        while i < raw.len() {
            let broken = || DecodeError::new("TP-UDH", at + i, DecodeErrorKind::BrokenHeader);
            let (&iei, &len) = (
                raw.get(i).ok_or_else(broken)?,
                raw.get(i + 1).ok_or_else(broken)?,
            );
            let data = raw
                .get(i + 2..i + 2 + usize::from(len))
                .ok_or_else(broken)?;
            elements.push(InformationElement {
                iei,
                data: data.to_vec(),
            });
            i += 2 + usize::from(len);
        }
        Ok(Self { elements })
    }

    /// Octets this header takes in the user data, the UDHL octet included.
    pub fn encoded_len(&self) -> usize {
        1 + self
            .elements
            .iter()
            .map(|e| 2 + e.data.len())
            .sum::<usize>()
    }

    /// Writes UDHL and the elements.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push((self.encoded_len() - 1) as u8);
        for e in &self.elements {
            out.push(e.iei);
            out.push(e.data.len() as u8);
            out.extend_from_slice(&e.data);
        }
    }

    /// The last well-formed concatenation element (§9.2.3.24: a repeated element's
    /// last occurrence counts). Elements with a zero total, a zero sequence number
    /// or a sequence number past the total are ignored, as §9.2.3.24.1 says.
    pub fn concat(&self) -> Option<Concat> {
        self.elements
            .iter()
            .filter_map(|e| match (e.iei, e.data.as_slice()) {
                (IEI_CONCAT_8, &[r, total, seq]) => Some(Concat {
                    reference: r.into(),
                    total,
                    seq,
                    wide: false,
                }),
                (IEI_CONCAT_16, &[hi, lo, total, seq]) => Some(Concat {
                    reference: u16::from_be_bytes([hi, lo]),
                    total,
                    seq,
                    wide: true,
                }),
                _ => None,
            })
            .rfind(|c| c.total > 0 && c.seq > 0 && c.seq <= c.total)
    }

    /// Application port addressing, if present.
    pub fn ports(&self) -> Option<Ports> {
        self.elements
            .iter()
            .rev()
            .find_map(|e| match (e.iei, e.data.as_slice()) {
                (IEI_PORTS_8, &[d, s]) => Some(Ports {
                    destination: d.into(),
                    source: s.into(),
                }),
                (IEI_PORTS_16, &[d1, d0, s1, s0]) => Some(Ports {
                    destination: u16::from_be_bytes([d1, d0]),
                    source: u16::from_be_bytes([s1, s0]),
                }),
                _ => None,
            })
    }

    /// The national language shift tables the header selects.
    pub fn shift(&self) -> Shift {
        let mut shift = Shift::default();
        for e in &self.elements {
            match (e.iei, e.data.as_slice()) {
                (IEI_SINGLE_SHIFT, &[lang]) => shift.single = lang,
                (IEI_LOCKING_SHIFT, &[lang]) => shift.locking = lang,
                _ => {}
            }
        }
        shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::reader::{from_hex, to_hex};

    fn header(hex: &str) -> UserDataHeader {
        UserDataHeader::decode(&from_hex(hex).unwrap(), 0).unwrap()
    }

    // reference/sms.md §6.5, UDH IE vectors.
    #[test]
    fn information_element_vectors() {
        let c8 = Concat {
            reference: 23,
            total: 3,
            seq: 1,
            wide: false,
        };
        let c16 = Concat {
            reference: 384,
            total: 4,
            seq: 2,
            wide: true,
        };
        for (c, hex) in [(c8, "00031703 01"), (c16, "0804018004 02")] {
            let hex = hex.replace(' ', "");
            let h = UserDataHeader {
                elements: vec![c.element()],
            };
            let mut out = Vec::new();
            h.encode(&mut out);
            assert_eq!(to_hex(&out[1..]), hex);
            assert_eq!(header(&hex).concat(), Some(c));
        }
        assert_eq!(
            header("04026432").ports(),
            Some(Ports {
                destination: 100,
                source: 50
            })
        );
        assert_eq!(
            header("050404D21466").ports(),
            Some(Ports {
                destination: 1234,
                source: 5222
            })
        );
        // WAP push MMS notification header (gammu tests/at-sms/40.dump).
        assert_eq!(
            header("05040B8423F0").ports(),
            Some(Ports {
                destination: 2948,
                source: 9200
            })
        );
    }

    #[test]
    fn unknown_elements_are_kept_and_skipped() {
        // IEI 0x07 (UDH source indicator, seen in a Ufone PDU) is not read but kept.
        assert_eq!(
            header("070100").elements,
            [InformationElement {
                iei: 7,
                data: vec![0]
            }]
        );
        let h = header("0701000003CA0201");
        assert_eq!(
            h.elements[0],
            InformationElement {
                iei: 7,
                data: vec![0]
            }
        );
        assert_eq!(
            h.concat().map(|c| (c.reference, c.total, c.seq)),
            Some((0xCA, 2, 1))
        );
    }

    #[test]
    fn invalid_concat_positions_are_ignored() {
        assert_eq!(header("00030A0000").concat(), None);
        assert_eq!(header("00030A0203").concat(), None);
        assert_eq!(header("00040A020100").concat(), None);
    }

    #[test]
    fn overrunning_element_is_an_error() {
        let e = UserDataHeader::decode(&from_hex("0003CA02").unwrap(), 5).unwrap_err();
        assert_eq!(
            (e.field, e.offset, e.kind),
            ("TP-UDH", 5, DecodeErrorKind::BrokenHeader)
        );
        assert!(UserDataHeader::decode(&[0x00], 0).is_err());
    }

    #[test]
    fn reads_national_shifts() {
        assert_eq!(
            header("240101250103").shift(),
            Shift {
                single: 1,
                locking: 3
            }
        );
    }
}
