//! TP-DCS, the data coding scheme (TS 23.038 §4): which alphabet the user data is
//! in, its message class, and whether it is compressed. Unknown and reserved
//! values are kept as they came and read as the GSM 7-bit alphabet, as §4 says.

use std::fmt;

/// The alphabet of the user data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alphabet {
    /// GSM 7-bit default alphabet, UDL counts septets.
    Gsm7,
    /// 8-bit data (also compressed data, which this codec does not expand).
    Eight,
    /// UCS-2 (UTF-16 in practice), UDL counts octets.
    Ucs2,
}

impl Alphabet {
    /// The name used in logs and in `smsbridge pdu decode --json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gsm7 => "gsm7",
            Self::Eight => "8bit",
            Self::Ucs2 => "ucs2",
        }
    }
}

/// A TP-DCS octet. Wire values round-trip; `Debug` prints hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataCoding(pub u8);

impl DataCoding {
    /// GSM 7-bit, no message class.
    pub const GSM7: Self = Self(0x00);
    /// 8-bit data, no message class.
    pub const EIGHT_BIT: Self = Self(0x04);
    /// UCS-2, no message class.
    pub const UCS2: Self = Self(0x08);

    /// General data coding with the given alphabet and optional message class
    /// (class 0 is a flash message, shown and not stored).
    pub fn new(alphabet: Alphabet, class: Option<u8>) -> Self {
        let a = match alphabet {
            Alphabet::Gsm7 => 0x00,
            Alphabet::Eight => 0x04,
            Alphabet::Ucs2 => 0x08,
        };
        Self(a | class.map_or(0, |c| 0x10 | (c & 0x03)))
    }

    /// The alphabet the user data is in.
    pub fn alphabet(self) -> Alphabet {
        let v = self.0;
        match v >> 4 {
            // General data coding and automatic deletion groups.
            0x0..=0x7 if self.compressed() => Alphabet::Eight,
            0x0..=0x7 => match (v >> 2) & 0x03 {
                0b01 => Alphabet::Eight,
                0b10 => Alphabet::Ucs2,
                _ => Alphabet::Gsm7,
            },
            // Message waiting indication, store, UCS-2.
            0xe => Alphabet::Ucs2,
            // Data coding/message class group.
            0xf if v & 0x04 != 0 => Alphabet::Eight,
            _ => Alphabet::Gsm7,
        }
    }

    /// The message class 0–3, if the coding names one.
    pub fn class(self) -> Option<u8> {
        let v = self.0;
        match v >> 4 {
            0x0..=0x7 if v & 0x10 != 0 => Some(v & 0x03),
            0xf => Some(v & 0x03),
            _ => None,
        }
    }

    /// Whether the text is compressed (TS 23.042), which this codec leaves as data.
    pub fn compressed(self) -> bool {
        // Bit 5 in the general data coding and automatic deletion groups (0xxx).
        self.0 & 0x80 == 0 && self.0 & 0x20 != 0
    }
}

impl fmt::Debug for DataCoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataCoding({:#04x})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_alphabet_and_class_of_each_group() {
        for (dcs, alphabet, class) in [
            (0x00, Alphabet::Gsm7, None),
            (0x04, Alphabet::Eight, None),
            (0x08, Alphabet::Ucs2, None),
            (0x0c, Alphabet::Gsm7, None), // reserved alphabet: GSM 7-bit (§4)
            (0x10, Alphabet::Gsm7, Some(0)),
            (0x11, Alphabet::Gsm7, Some(1)),
            (0x18, Alphabet::Ucs2, Some(0)),
            (0x24, Alphabet::Eight, None), // compressed
            (0x4b, Alphabet::Ucs2, None),  // bit 4 clear: no class
            (0x5b, Alphabet::Ucs2, Some(3)),
            (0x80, Alphabet::Gsm7, None), // reserved group
            (0xc8, Alphabet::Gsm7, None),
            (0xe0, Alphabet::Ucs2, None),
            (0xf0, Alphabet::Gsm7, Some(0)),
            (0xf1, Alphabet::Gsm7, Some(1)),
            (0xf4, Alphabet::Eight, Some(0)),
            (0xfb, Alphabet::Gsm7, Some(3)), // reserved bit 3 seen in the wild
        ] {
            let d = DataCoding(dcs);
            assert_eq!((d.alphabet(), d.class()), (alphabet, class), "{d:?}");
        }
    }

    #[test]
    fn builds_general_coding() {
        assert_eq!(DataCoding::new(Alphabet::Gsm7, None), DataCoding::GSM7);
        assert_eq!(DataCoding::new(Alphabet::Gsm7, Some(0)), DataCoding(0x10));
        assert_eq!(DataCoding::new(Alphabet::Ucs2, Some(0)), DataCoding(0x18));
        assert_eq!(
            DataCoding::new(Alphabet::Eight, None),
            DataCoding::EIGHT_BIT
        );
    }
}
