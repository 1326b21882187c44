//! `smsbridge store-stress`: hidden, for testing only. It drives the store the way
//! the daemon will, so that tests can kill a real process in the middle of it.

use std::io::Write;

use clap::Subcommand;

use super::{Ctx, Failure};
use crate::pdu::{self, Address, Body, DataCoding, EncodeOptions, Pdu, Submit, Tpdu, UserData};
use crate::store::{FrontEnd, NewMessage, UnixTime, UserSettings, normalise_msisdn};

/// The user the load generator sends as.
const STRESS_USER: &str = "sip:stress@localhost";

#[derive(Debug, Subcommand)]
pub(super) enum StressCommand {
    /// Enqueue `count` messages as fast as possible, printing `<message id> <n>`
    /// after each commit. Message `n` has the text `stress_text(n)`.
    Enqueue {
        /// How many messages.
        #[arg(long)]
        count: u64,
    },
}

/// The text of stress message `n`: two SMS parts long.
fn stress_text(n: u64) -> String {
    format!("stress message {n}: {}", "0123456789".repeat(20))
}

impl StressCommand {
    pub(super) fn run(self, ctx: &Ctx) -> Result<(), Failure> {
        let Self::Enqueue { count } = self;
        let mut store = ctx.open()?;
        let now = UnixTime::now();
        let user = match store.user_by_address(STRESS_USER)? {
            Some(u) => u.id,
            None => store.add_user(
                Some(STRESS_USER),
                None,
                &UserSettings::default(),
                None,
                "smsbridge",
                now,
            )?,
        };
        let to = "+491700000001";
        let msisdn = normalise_msisdn(to, None).map_err(|e| Failure::BadInput(e.to_string()))?;
        let template = Submit {
            reject_duplicates: false,
            status_report_request: true,
            reply_path: false,
            mr: 0,
            destination: Address::from_number(to).map_err(|e| Failure::Other(e.to_string()))?,
            pid: 0,
            dcs: DataCoding::GSM7,
            validity: None,
            user_data: UserData {
                header: None,
                body: Body::Data(Vec::new()),
            },
        };
        let mut out = std::io::stdout().lock();
        for n in 0..count {
            let text = stress_text(n);
            let reference = store.next_concat_reference(&msisdn, now)?;
            let parts = pdu::segment(&template, &text, reference, &EncodeOptions::default())
                .map_err(|e| Failure::Other(e.to_string()))?
                .into_iter()
                .map(|s| {
                    let mut b = Vec::new();
                    Pdu {
                        smsc: None,
                        tpdu: Tpdu::Submit(s),
                    }
                    .encode(&mut b)
                    .map(|_| b)
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::Other(e.to_string()))?;
            let id = store.enqueue(
                &NewMessage {
                    user,
                    msisdn: msisdn.clone(),
                    text,
                    alphabet: pdu::Alphabet::Gsm7,
                    parts,
                    im_message_id: Some(format!("stress-{n}")),
                    report_requested: true,
                    imdn_positive: false,
                    imdn_negative: false,
                    front_end: FrontEnd::Sip,
                },
                now,
            )?;
            // The acknowledgement leaves only after the commit returned.
            writeln!(out, "{} {n}", id.0)
                .and_then(|()| out.flush())
                .map_err(|e| Failure::Other(format!("stdout: {e}")))?;
        }
        Ok(())
    }
}
