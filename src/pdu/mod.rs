//! The SMS PDU codec: 3GPP TS 23.038 alphabets and TS 23.040 TPDUs as a modem in
//! PDU mode (`AT+CMGF=0`) prints and takes them, segmenting of long text and the
//! reassembly rule. Pure: no I/O, no clock (time is an argument), no panics on any
//! input.

mod address;
mod dcs;
mod error;
pub mod gsm7;
mod national;
mod reader;
mod reassemble;
mod segment;
mod time;
mod tpdu;
mod udh;
mod user_data;

#[cfg(test)]
mod tests;

pub use address::{Address, TOA_ALPHANUMERIC, TOA_INTERNATIONAL, TOA_NATIONAL, TOA_UNKNOWN};
pub use dcs::{Alphabet, DataCoding};
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use reader::{from_hex, to_hex};
pub use reassemble::{Incomplete, Offer, PartKey, Reassembly, ReassemblyError, join_text};
pub use segment::{EncodeOptions, Plan, plan, segment};
pub use time::{Timestamp, Validity};
pub use tpdu::{Deliver, Outcome, Pdu, Status, StatusReport, Submit, Tpdu};
pub use udh::{
    Concat, IEI_CONCAT_8, IEI_CONCAT_16, IEI_LOCKING_SHIFT, IEI_PORTS_8, IEI_PORTS_16,
    IEI_SINGLE_SHIFT, InformationElement, Ports, UserDataHeader,
};
pub use user_data::{Body, MAX_OCTETS, MAX_SEPTETS, UserData};

/// Decodes a modem's hex line: with the SMSC field first (as `AT+CMGR`, `+CMT` and
/// `+CDS` print it) when `with_smsc`, else a bare TPDU.
pub fn decode_hex(hex: &str, with_smsc: bool) -> Result<Pdu, DecodeError> {
    let bytes = from_hex(hex)?;
    if with_smsc {
        Pdu::decode(&bytes)
    } else {
        Ok(Pdu {
            smsc: None,
            tpdu: Tpdu::decode(&bytes)?,
        })
    }
}
