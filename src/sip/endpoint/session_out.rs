//! Stored IMs for a user who registers, delivered in a chat session the
//! bridge opens (the intermediate entity of the RCS-e store-and-forward
//! flow): INVITE with our MSRP offer, as the sender, to a contact that
//! takes sessions; the answer's path is connected to (we offered
//! `a=setup:active`, RFC 4975 §5.4) and the message goes as SEND with the
//! body a MESSAGE would carry. The session stays open for the next
//! messages and the replies of that pair, until it idles out. Anything
//! short of a 200 to the SEND gives `None`: the caller sends a MESSAGE.

use tracing::{debug, info};

use super::{SipFrontEnd, fresh_ids, random, unix_now};
use crate::bridge::api::{DeliveryResult, Recipient, Sender, SmsToIm, Verified};
use crate::sip::invite::{Opened, OpenedDialog, OutgoingIm};
use crate::sip::msrp_conn::{self, Bound};
use crate::sip::outbound::{self, OutRequest, Target};
use crate::sip::sdp;
use crate::sip::uas::lock;
use crate::sip::wire::{Transport, parse_name_addr};

/// What the front end keeps for sessions it opens (`start_msrp`).
#[derive(Clone)]
pub(super) struct Opener {
    pub(super) listener: msrp_conn::Listener,
    pub(super) stop: tokio_util::sync::CancellationToken,
    /// `[msrp] invite_all_users`.
    pub(super) all_users: bool,
}

impl SipFrontEnd {
    /// Delivers `msg` in a new chat session when its recipient has a
    /// contact that takes one; `None` when there is none or it failed.
    pub(super) async fn deliver_by_session_invite(&self, msg: &SmsToIm) -> Option<DeliveryResult> {
        let opener = self.inner.opener.get()?.clone();
        let now = unix_now();
        let binding = lock(&self.inner.uas.registrar)
            .contacts(&msg.to_user, now)
            .into_iter()
            .find(|b| b.msrp || opener.all_users)?;
        let target = Target {
            request_uri: binding.uri.clone(),
            next_hop: (binding.transport == Transport::Tcp)
                .then(|| format!("sip:{};transport=tcp", binding.source)),
        };
        // The body and From a MESSAGE would have.
        let message = outbound::sms_message(msg, &self.inner.domain, &target, fresh_ids());
        let sessions = &opener.listener.sessions;
        let ours = lock(sessions).new_path(random);
        let invite = OutRequest {
            method: "INVITE",
            headers: vec![(
                "Contact".into(),
                format!("<{}>", self.inner.uas.cfg.contact(binding.transport)),
            )],
            content_type: Some("application/sdp".into()),
            body: sdp::offer(&ours, now),
            ..message.clone()
        };
        let user = &msg.to_user;
        let answered = match self.inner.client.exchange(&invite, |_| None).await {
            Ok(f) if (200..300).contains(&f.code) => f,
            Ok(f) => {
                info!(%user, code = f.code, "chat session refused: as MESSAGE");
                return None;
            }
            Err(e) => {
                info!(%user, error = %e, "no chat session: as MESSAGE");
                return None;
            }
        };
        let dialog = OpenedDialog {
            call_id: invite.call_id.clone(),
            local: invite.from.clone(),
            local_tag: invite.from_tag.clone(),
            remote: answered.header("To").unwrap_or_default().to_owned(),
            remote_target: answered
                .header("Contact")
                .and_then(parse_name_addr)
                .map_or(target.request_uri.clone(), |n| n.uri),
            next_hop: target.next_hop.clone(),
            invite_cseq: answered.cseq,
        };
        let theirs = match sdp::read_answer(&answered.body) {
            Ok(a) => a.path,
            Err(e) => {
                info!(%user, error = %e, "unusable SDP answer: as MESSAGE");
                self.send_bye(dialog.bye()).await;
                return None;
            }
        };
        let opened = Opened {
            ours,
            theirs,
            user: Sender {
                address: msg.to_user.clone(),
                display_name: None,
                verified: Verified::Authenticated,
            },
            other: self.sender_of(msg),
            source: binding.source.ip(),
            dialog,
        };
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let Some((id, ended)) = lock(sessions).opened(&opened, now, tx.clone()) else {
            info!(%user, "chat session answered without a To tag: as MESSAGE");
            return None;
        };
        let bound = Bound {
            id: id.clone(),
            ended,
            rx,
            stop: opener.stop.clone(),
        };
        if let Err(e) = msrp_conn::connect_out(&opener.listener, &opened, bound).await {
            info!(%user, error = %e, "cannot connect to the chat session: as MESSAGE");
            let bye = lock(sessions).end(&id, true);
            self.send_bye(bye).await;
            return None;
        }
        let (done, result) = tokio::sync::oneshot::channel();
        let im = OutgoingIm {
            content_type: message.content_type.unwrap_or_default(),
            body: message.body,
            done,
        };
        let sent = match tx.send(im).await {
            Ok(()) => result
                .await
                .unwrap_or_else(|_| Err("the session ended".into())),
            Err(_) => Err("the session ended".into()),
        };
        match sent {
            Ok(()) => Some(DeliveryResult::Delivered),
            Err(e) => {
                info!(%user, error = %e, "SEND not taken: as MESSAGE");
                let bye = lock(sessions).end(&id, true);
                self.send_bye(bye).await;
                None
            }
        }
    }

    /// Whom the recipient talks with in the session: a subscriber's
    /// number, or the user (ours: an alias; else their address) an IM came
    /// from, so that the next message of that pair finds the session
    /// (`deliver_in_session`) and the recipient's replies go back to them.
    fn sender_of(&self, msg: &SmsToIm) -> Recipient {
        let address = msg
            .envelope
            .as_ref()
            .map_or(msg.from.as_str(), |e| e.from_address.as_str());
        let digits = address.strip_prefix('+').unwrap_or(address);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            return Recipient::Number(address.to_owned());
        }
        let domain = address.split_once('@').map(|(_, d)| d);
        let ours = domain.is_none_or(|d| d.eq_ignore_ascii_case(&self.inner.domain))
            || address.to_ascii_lowercase().starts_with("wv:");
        if ours {
            Recipient::Alias(crate::bridge::user_part(address).to_owned())
        } else {
            Recipient::Foreign(address.to_owned())
        }
    }

    async fn send_bye(&self, bye: Option<OutRequest>) {
        match bye {
            Some(bye) => self.send_logged(bye).await,
            None => debug!("no BYE owed"),
        }
    }
}
