//! Contact lists (GetList, CreateList, DeleteList, ListManage) and blocking
//! (BlockEntity, GetBlockedList), over the bridge's contacts: the same rows
//! the SIP side resolves aliases with.

use super::csp::{self, code};
use super::server::{Ctx, Server, refusal_code};
use crate::bridge::api::{ContactList, DEFAULT_LIST, Target};
use crate::bridge::user_part;
use crate::xml::Element;

/// The list name in a ContactList id: `wv:alice/~Friends@domain` (or CSP
/// 1.1's `wv:alice/Friends@domain`) → `Friends`; a plain name is taken as it is.
pub(super) fn list_name(id: &str) -> String {
    let id = id.trim();
    // `wv:user/~name@domain` (CSP 1.2, 1.3) or `wv:user/name@domain` (1.1).
    match id.split_once('/') {
        Some((user, rest)) if user.starts_with("wv:") => {
            let rest = rest.strip_prefix('~').unwrap_or(rest);
            rest.split('@').next().unwrap_or(rest).to_owned()
        }
        _ => id.to_owned(),
    }
}

fn nickname_of(t: &Target) -> Option<&str> {
    match t {
        Target::Subscriber { name, .. }
        | Target::User { name, .. }
        | Target::Foreign { name, .. } => name.as_deref(),
    }
}

impl Server {
    fn list_id(&self, ctx: &Ctx, name: &str) -> String {
        format!("wv:{}/~{name}@{}", user_part(&ctx.user_id), self.cfg.domain)
    }

    fn nick_list(&self, list: &ContactList) -> Element {
        Element::new("NickList").with_all(list.entries.iter().filter(|e| !e.blocked).map(|e| {
            let mut n = Element::new("NickName");
            if let Some(name) = nickname_of(&e.target) {
                n = n.with(Element::text("Name", name));
            }
            n.with(Element::text("UserID", &self.wv_id(&e.target)))
        }))
    }

    async fn lists_or_status(&self, ctx: &Ctx) -> Result<Vec<ContactList>, Element> {
        self.bridge
            .lists(ctx.user.clone())
            .await
            .map_err(|r| csp::status(refusal_code(&r), &r.to_string()))
    }

    pub(super) async fn get_list(&self, ctx: &Ctx) -> Element {
        let lists = match self.lists_or_status(ctx).await {
            Ok(l) => l,
            Err(s) => return s,
        };
        let default = lists
            .iter()
            .find(|l| l.name == DEFAULT_LIST)
            .or(lists.first())
            .map(|l| Element::text("DefaultContactList", &self.list_id(ctx, &l.name)));
        Element::new("GetList-Response")
            .with(csp::result(code::OK, ""))
            .with_all(
                lists
                    .iter()
                    .map(|l| Element::text("ContactList", &self.list_id(ctx, &l.name))),
            )
            .with_all(default)
    }

    pub(super) async fn create_list(&self, ctx: &Ctx, p: &Element) -> Element {
        let Some(name) = p
            .text_at(&["ContactList"])
            .map(list_name)
            .filter(|n| !n.is_empty())
        else {
            return csp::status(code::BAD_REQUEST, "no ContactList");
        };
        match self.lists_or_status(ctx).await {
            Ok(l) if l.iter().any(|l| l.name == name) => {
                return csp::status(code::LIST_EXISTS, "contact list already exists");
            }
            Ok(_) => {}
            Err(s) => return s,
        }
        if let Err(r) = self
            .bridge
            .create_list(ctx.user.clone(), name.clone())
            .await
        {
            return csp::status(refusal_code(&r), &r.to_string());
        }
        let nicks = p
            .at(&["NickList"])
            .map(|n| n.children_named("NickName").cloned().collect());
        let status = self.add_nicks(ctx, &name, nicks.unwrap_or_default()).await;
        if status.text_at(&["Result", "Code"]) != Some("200") {
            // A CreateList answered with a failure leaves no list behind.
            if let Err(r) = self.bridge.delete_list(ctx.user.clone(), name).await {
                tracing::warn!("IMPS CreateList failed and its list stays: {r}");
            }
        }
        status
    }

    /// Adds NickName entries to a list; Status 200, or the first refusal.
    async fn add_nicks(&self, ctx: &Ctx, list: &str, nicks: Vec<Element>) -> Element {
        for n in nicks {
            let Some(id) = n.text_at(&["UserID"]) else {
                return csp::status(code::BAD_REQUEST, "NickName without UserID");
            };
            let nick = n
                .text_at(&["Name"])
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            if let Err(r) = self
                .bridge
                .list_add(ctx.user.clone(), list.to_owned(), id.to_owned(), nick)
                .await
            {
                return csp::status(refusal_code(&r), &r.to_string());
            }
        }
        csp::status(code::OK, "")
    }

    pub(super) async fn delete_list(&self, ctx: &Ctx, p: &Element) -> Element {
        let Some(name) = p.text_at(&["ContactList"]).map(list_name) else {
            return csp::status(code::BAD_REQUEST, "no ContactList");
        };
        match self.bridge.delete_list(ctx.user.clone(), name).await {
            Ok(()) => csp::status(code::OK, ""),
            Err(r) => csp::status(code::NO_SUCH_LIST, &r.to_string()),
        }
    }

    pub(super) async fn list_manage(&self, ctx: &Ctx, p: &Element) -> Element {
        let respond =
            |c: u16, why: &str| Element::new("ListManage-Response").with(csp::result(c, why));
        let Some(name) = p
            .text_at(&["ContactList"])
            .map(list_name)
            .filter(|n| !n.is_empty())
        else {
            return respond(code::BAD_REQUEST, "no ContactList");
        };
        match self.lists_or_status(ctx).await {
            Ok(l) if !l.iter().any(|l| l.name == name) => {
                return respond(code::NO_SUCH_LIST, "contact list does not exist");
            }
            Ok(_) => {}
            Err(_) => return respond(code::UNAVAILABLE, "lists unavailable"),
        }
        let adds: Vec<Element> = p
            .at(&["AddNickList"])
            .map(|a| a.children_named("NickName").cloned().collect())
            .unwrap_or_default();
        let added = self.add_nicks(ctx, &name, adds).await;
        if added.text_at(&["Result", "Code"]) != Some("200") {
            let c = added
                .text_at(&["Result", "Code"])
                .and_then(|c| c.parse().ok())
                .unwrap_or(code::SERVER_ERROR);
            let why = added
                .text_at(&["Result", "Description"])
                .unwrap_or_default();
            return respond(c, why);
        }
        let removes: Vec<String> = p
            .at(&["RemoveNickList"])
            .map(|r| {
                r.children_named("UserID")
                    .map(|u| u.text.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        for id in removes {
            if let Err(r) = self.bridge.list_remove(ctx.user.clone(), id).await {
                return respond(refusal_code(&r), &r.to_string());
            }
        }
        let mut resp = respond(code::OK, "");
        if csp::is_true(p.text_at(&["ReceiveList"])) {
            if let Ok(lists) = self.lists_or_status(ctx).await
                && let Some(l) = lists.iter().find(|l| l.name == name)
            {
                resp = resp.with(self.nick_list(l));
            }
            resp = resp.with(
                Element::new("ContactListProperties")
                    .with(prop("DisplayName", &name))
                    .with(prop("Default", csp::tf(name == DEFAULT_LIST))),
            );
        }
        resp
    }

    pub(super) async fn block_entity(&self, ctx: &Ctx, p: &Element) -> Element {
        let ids = |list: &str| -> Vec<String> {
            let under = |parent: &Element| {
                parent
                    .at(&[list])
                    .map(|l| {
                        l.children_named("UserID")
                            .map(|u| u.text.trim().to_owned())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            };
            p.child("BlockList").map(under).unwrap_or_default()
        };
        let (add, remove) = (ids("AddList"), ids("RemoveList"));
        if add.is_empty() && remove.is_empty() {
            return csp::status(code::OK, "");
        }
        for (names, blocked) in [(add, true), (remove, false)] {
            for name in names {
                if let Err(r) = self.bridge.block(ctx.user.clone(), name, blocked).await {
                    return csp::status(refusal_code(&r), &r.to_string());
                }
            }
        }
        csp::status(code::OK, "")
    }

    pub(super) async fn get_blocked(&self, ctx: &Ctx) -> Element {
        let lists = match self.lists_or_status(ctx).await {
            Ok(l) => l,
            Err(s) => return s,
        };
        let blocked: Vec<Element> = lists
            .iter()
            .flat_map(|l| l.entries.iter())
            .filter(|e| e.blocked)
            .map(|e| Element::text("UserID", &self.wv_id(&e.target)))
            .collect();
        Element::new("GetBlockedList-Response")
            .with(csp::result(code::OK, ""))
            .with(
                Element::new("BlockList")
                    .with(Element::text("InUse", "T"))
                    .with(Element::new("EntityList").with_all(blocked)),
            )
            .with(Element::text("BlockListInUse", "T"))
            .with(Element::text("GrantListInUse", "F"))
    }
}

fn prop(name: &str, value: &str) -> Element {
    Element::new("Property")
        .with(Element::text("Name", name))
        .with(Element::text("Value", value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_ids_name_the_list() {
        assert_eq!(list_name("wv:alice/~Friends@sms.test"), "Friends");
        assert_eq!(list_name("wv:alice/~SMS"), "SMS");
        assert_eq!(list_name(" Friends "), "Friends");
    }
}
