//! What the bridge does with one customer message, decided without I/O (legacy-system.md §7.3,
//! with the legacy's failures fixed): the worker looks things up, asks [`route`] and [`plan`]
//! what to do, and carries the plan out through commands and outboxes.
//!
//! 1. A message with no words (a photo without a caption, a voice note) gets the bilingual
//!    "please describe the problem in words" reply and nothing else.
//! 2. A message within the follow-up window of the conversation's open ticket becomes a comment on
//!    that ticket (never a second ticket), answered with "your ticket was updated".
//! 3. An unknown customer who was asked for an account number and sends one is identified by it
//!    before anything else is decided.
//! 4. Otherwise the message is triaged (the LLM when configured, else the rules): a ticket is opened
//!    when the triage says so, the customer is asked for details when the message is too vague, and
//!    a general question gets a general answer. An unknown customer is also asked for their account
//!    number or village, whatever else is said.

use chrono::{DateTime, Duration, Utc};
use domain::account::AccountNumber;
use domain::conversation::Conversation;
use domain::ticket::{Category, Priority, TicketNumber, DEFAULT_SITE};

use crate::llm::Decision;
use crate::triage;

pub use domain::conversation::KnownCustomer;

/// The first step for a message: what decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// No words to read: ask for them.
    MediaOnly,
    /// A follow-up of the open ticket.
    FollowUp { ticket: TicketNumber },
    /// The customer answered the question for their account with one: look it up first.
    Identify { account: AccountNumber },
    /// Triage decides.
    Triage,
}

/// The route of a message with `words` (None: media only) in `conversation` at `now`. A
/// follow-up's ticket may have been closed by staff meanwhile: the ticket then refuses the
/// comment and the worker triages the message instead.
pub fn route(
    conversation: &Conversation,
    customer: Option<&KnownCustomer>,
    words: Option<&str>,
    now: DateTime<Utc>,
    follow_up_window: Duration,
) -> Route {
    let Some(words) = words.map(str::trim).filter(|w| !w.is_empty()) else {
        return Route::MediaOnly;
    };
    if let Some(ticket) = conversation.follow_up_ticket(now, follow_up_window) {
        return Route::FollowUp {
            ticket: ticket.clone(),
        };
    }
    if customer.is_none() && conversation.asked_for_account {
        if let Some(account) = account_in(words) {
            return Route::Identify { account };
        }
    }
    Route::Triage
}

/// An account number written anywhere in `text` (`0045MAK`, `0045 mak`, `mak0045`).
pub fn account_in(text: &str) -> Option<AccountNumber> {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    words
        .iter()
        .find_map(|w| AccountNumber::parse(w).ok())
        .or_else(|| {
            words
                .windows(2)
                .find_map(|pair| AccountNumber::parse(&format!("{}{}", pair[0], pair[1])).ok())
        })
}

/// The known site whose village `text` names ("Ha Makebe", "ke lula Mashai"), matched on whole
/// words ignoring case; the "Ha" of a village name may be left out.
pub fn site_in(text: &str) -> Option<&'static domain::site::KnownSite> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    domain::site::KNOWN_SITES.iter().find(|site| {
        let name: Vec<String> = site
            .name
            .split_whitespace()
            .map(str::to_lowercase)
            .skip_while(|w| w == "ha")
            .collect();
        !name.is_empty()
            && words
                .windows(name.len())
                .any(|window| window == name.as_slice())
    })
}

/// A ticket to open, less its number (allocated when it is opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketDraft {
    pub site: String,
    pub category: Category,
    pub priority: Priority,
    pub summary: String,
    pub description: String,
}

/// What to do after triage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Open a ticket and tell the customer its number ([`ticket_reply`]).
    OpenTicket {
        draft: TicketDraft,
        ask_for_account: bool,
    },
    /// Reply only.
    Reply { text: String, ask_for_account: bool },
}

/// The plan for a message triaged as `decision`.
pub fn plan(decision: &Decision, customer: Option<&KnownCustomer>, words: &str) -> Plan {
    let ask_for_account = customer.is_none();
    if decision.needs_ticket() {
        // The customer's own site first; the LLM's guess only for a customer we do not know.
        let site = customer
            .and_then(|c| c.site.clone())
            .or_else(|| decision.site_id().map(str::to_string))
            .unwrap_or_else(|| DEFAULT_SITE.to_string());
        return Plan::OpenTicket {
            draft: TicketDraft {
                site,
                category: decision.category(),
                priority: decision.priority(),
                summary: decision.fault_summary().to_string(),
                description: words.trim().to_string(),
            },
            ask_for_account,
        };
    }
    let text = match decision.customer_reply() {
        Some(reply) => reply.to_string(),
        None if decision.ask_for_info() => triage::ask_for_details_reply(),
        None => triage::general_reply(),
    };
    Plan::Reply {
        text,
        ask_for_account,
    }
}

/// The reply to a message that opened `ticket`: the LLM's text when it already names the number,
/// else the fixed bilingual text with the number (the legacy prefixed its own line likewise).
pub fn ticket_reply(decision: &Decision, ticket: &TicketNumber, ask_for_account: bool) -> String {
    let number = ticket.to_string();
    let mut text = match decision.customer_reply() {
        Some(reply) if reply.contains(&number) => reply.to_string(),
        _ => triage::ticket_opened_reply(&number, decision.category()),
    };
    if ask_for_account {
        text.push_str("\n\n");
        text.push_str(&triage::ask_for_account_reply());
    }
    text
}

/// The reply text of a [`Plan::Reply`], with the question for the account when it is due.
pub fn reply_text(text: &str, ask_for_account: bool) -> String {
    if ask_for_account {
        format!("{text}\n\n{}", triage::ask_for_account_reply())
    } else {
        text.to_string()
    }
}

/// The comment a follow-up adds to its ticket (the legacy's wording, §7.3).
pub fn follow_up_comment(
    customer: Option<&KnownCustomer>,
    profile_name: Option<&str>,
    phone: &str,
    words: &str,
) -> String {
    let name = customer
        .map(KnownCustomer::full_name)
        .or_else(|| profile_name.map(str::to_string))
        .unwrap_or_else(|| phone.to_string());
    format!(
        "WhatsApp follow-up from {name} ({phone}):\n{}",
        words.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::conversation::{ConversationCommand, DEFAULT_FOLLOW_UP_WINDOW};
    use domain::site::SiteCode;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_780_000_000, 0).unwrap() + Duration::minutes(minute)
    }

    fn mpho() -> KnownCustomer {
        KnownCustomer {
            customer_id: 12,
            first_name: "Mpho".into(),
            last_name: "Mokoena".into(),
            site: Some("MAK".into()),
            plot: None,
        }
    }

    fn number() -> TicketNumber {
        TicketNumber::new(&SiteCode::parse("MAK").unwrap(), 2026, 65).unwrap()
    }

    fn rules(text: &str) -> Decision {
        Decision::Fallback {
            triage: triage::classify(text),
            reason: "not configured".into(),
        }
    }

    fn conversation(commands: Vec<ConversationCommand>) -> Conversation {
        let mut c = Conversation::default();
        for command in commands {
            for event in c.decide(command).unwrap() {
                c.apply_event(event);
            }
        }
        c
    }

    fn received(id: &str, minute: i64) -> ConversationCommand {
        ConversationCommand::Receive {
            message_id: id.into(),
            text: Some("Ha ke na motlakase".into()),
            media: None,
            profile_name: None,
            sent_at: at(minute),
        }
    }

    #[test]
    fn a_message_without_words_is_asked_for_them_even_during_a_follow_up() {
        let c = conversation(vec![
            received("w1", 0),
            ConversationCommand::LinkTicket { number: number() },
        ]);
        assert_eq!(
            route(&c, Some(&mpho()), None, at(5), DEFAULT_FOLLOW_UP_WINDOW),
            Route::MediaOnly
        );
        assert_eq!(
            route(
                &c,
                Some(&mpho()),
                Some("  "),
                at(5),
                DEFAULT_FOLLOW_UP_WINDOW
            ),
            Route::MediaOnly
        );
    }

    #[test]
    fn a_message_within_the_window_of_the_open_ticket_is_a_follow_up_and_later_a_new_triage() {
        let c = conversation(vec![
            received("w1", 0),
            ConversationCommand::LinkTicket { number: number() },
        ]);
        let words = Some("Ho ntse ho le joalo");
        assert_eq!(
            route(&c, Some(&mpho()), words, at(10), DEFAULT_FOLLOW_UP_WINDOW),
            Route::FollowUp { ticket: number() }
        );
        assert_eq!(
            route(&c, Some(&mpho()), words, at(31), DEFAULT_FOLLOW_UP_WINDOW),
            Route::Triage
        );
    }

    #[test]
    fn an_unknown_customer_who_was_asked_is_identified_by_the_account_in_the_answer() {
        let asked = conversation(vec![received("w1", 0), ConversationCommand::AskForAccount]);
        assert_eq!(
            route(
                &asked,
                None,
                Some("Ke 0045 mak, Ha Makebe"),
                at(1),
                DEFAULT_FOLLOW_UP_WINDOW
            ),
            Route::Identify {
                account: AccountNumber::parse("0045MAK").unwrap()
            }
        );
        // Not asked, or no account in the answer: triage as usual.
        let not_asked = conversation(vec![received("w1", 0)]);
        assert_eq!(
            route(
                &not_asked,
                None,
                Some("0045MAK"),
                at(1),
                DEFAULT_FOLLOW_UP_WINDOW
            ),
            Route::Triage
        );
        assert_eq!(
            route(
                &asked,
                None,
                Some("Ha Makebe"),
                at(1),
                DEFAULT_FOLLOW_UP_WINDOW
            ),
            Route::Triage
        );
    }

    #[test]
    fn account_numbers_are_found_in_their_usual_spellings() {
        for text in [
            "0045MAK",
            "acc 0045mak pls",
            "mak0045",
            "0045 MAK",
            "my account is 0045-MAK",
        ] {
            assert_eq!(
                account_in(text).map(|a| a.to_string()),
                Some("0045MAK".to_string()),
                "{text}"
            );
        }
        assert_eq!(account_in("no power since 2024"), None);
    }

    #[test]
    fn villages_are_found_by_their_names_with_or_without_ha() {
        let code = |text: &str| site_in(text).map(|s| s.code);
        assert_eq!(code("Ke lula Ha Makebe"), Some("MAK"));
        assert_eq!(code("makebe"), Some("MAK"));
        assert_eq!(code("Re Mashai, ha ho motlakase"), Some("MAS"));
        assert_eq!(code("Ha Nkau"), Some("NKU"));
        assert_eq!(code("Ha ke na motlakase"), None);
        assert_eq!(code("mashaino"), None, "whole words only");
    }

    #[test]
    fn an_outage_of_a_known_customer_opens_a_ticket_at_their_own_site() {
        let plan = plan(
            &rules("Ha ke na motlakase"),
            Some(&mpho()),
            " Ha ke na motlakase ",
        );
        let Plan::OpenTicket {
            draft,
            ask_for_account,
        } = plan
        else {
            panic!("{plan:?}")
        };
        assert_eq!(draft.site, "MAK");
        assert_eq!(
            (draft.category, draft.priority),
            (Category::NoPower, Priority::P1)
        );
        assert_eq!(draft.description, "Ha ke na motlakase");
        assert!(!ask_for_account);
    }

    #[test]
    fn an_unknown_customers_ticket_goes_to_the_default_site_and_they_are_asked_for_their_account() {
        let plan = plan(
            &rules("There are sparks on the pole"),
            None,
            "There are sparks on the pole",
        );
        let Plan::OpenTicket {
            draft,
            ask_for_account,
        } = plan
        else {
            panic!("{plan:?}")
        };
        assert_eq!(draft.site, DEFAULT_SITE);
        assert_eq!(draft.priority, Priority::P1);
        assert!(ask_for_account);
    }

    #[test]
    fn vague_and_general_messages_get_replies_without_tickets() {
        let vague = plan(
            &rules("ho na le bothata"),
            Some(&mpho()),
            "ho na le bothata",
        );
        assert_eq!(
            vague,
            Plan::Reply {
                text: triage::ask_for_details_reply(),
                ask_for_account: false
            }
        );
        let hello = plan(&rules("Lumela"), Some(&mpho()), "Lumela");
        assert_eq!(
            hello,
            Plan::Reply {
                text: triage::general_reply(),
                ask_for_account: false
            }
        );
    }

    #[test]
    fn the_ticket_reply_names_the_number_and_asks_an_unknown_customer_for_their_account() {
        let text = ticket_reply(&rules("Ha ke na motlakase"), &number(), true);
        assert!(text.contains("MAK-2026-0065"), "{text}");
        assert!(text.ends_with(&triage::ask_for_account_reply()), "{text}");
        let known = ticket_reply(&rules("Ha ke na motlakase"), &number(), false);
        assert!(!known.contains(&triage::ask_for_account_reply()));
    }

    #[test]
    fn a_follow_up_comment_names_the_customer_as_the_legacy_did() {
        assert_eq!(
            follow_up_comment(Some(&mpho()), Some("Mpho M"), "+26658123456", " Still off "),
            "WhatsApp follow-up from Mpho Mokoena (+26658123456):\nStill off"
        );
        assert_eq!(
            follow_up_comment(None, None, "+26658123456", "Still off"),
            "WhatsApp follow-up from +26658123456 (+26658123456):\nStill off"
        );
    }
}
