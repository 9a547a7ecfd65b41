//! The ccare domain: what the utility's records mean, free of I/O.
//!
//! Layout:
//! - [`acdb`]: the neutral shape of an ACDB row (column name → typed value) and its content hash;
//! - [`catalog`]: the ACDB tables ccare captures, their keys and the aggregate type each maps to;
//! - [`envelope`] and [`event`]: the metadata every stored event carries and the shapes of events
//!   on their way into and out of the global log;
//! - [`chain`]: the tamper-evidence hash that links each event of the global log to the previous one;
//! - [`money`] and [`energy`]: exact amounts (LSL, kWh) rounded once, at the edge;
//! - [`site`]: site codes, the legacy site-of-an-account rule and the known sites;
//! - [`account`]: canonical account numbers and the legacy rules that read and derive them;
//! - [`phone`]: phone numbers normalised once to E.164;
//! - [`dates`]: the ACDB's date texts and the month/quarter periods of the analytics;
//! - [`records`]: typed, read-only readings of captured rows, so projections hold no rules;
//! - [`auth`]: roles and permissions, and the user-account aggregate (state ccare owns);
//! - [`conversation`]: a customer's WhatsApp conversation (aggregate): messages, replies, its ticket;
//! - [`command`]: command context and outcome, and the ports the write side implements;
//! - [`inbox`]: the port of the durable inbox of WhatsApp webhook deliveries;
//! - [`write`]: validated writes of ACDB rows (tables, keys, columns, coerced values);
//! - [`tariff`]: global, site and customer rate schedules with effective dates, and resolution;
//! - [`ticket`]: tickets and their numbers (`SITE-YYYY-NNNN`), categories and priorities.
//!
//! Nothing here performs I/O, spawns tasks or knows SQL: adapters feed rows in, projections read
//! facts out. cqrs-es is used only for its `Aggregate`/`DomainEvent` traits.
#![forbid(unsafe_code)]

/// Implements cqrs-es's `Aggregate` for an aggregate whose commands need no services, from its
/// own `decide(&self, command) -> Result<Vec<Event>, Error>` and `apply_event(&mut self, event)`,
/// which hold the rules and are what the unit tests call.
macro_rules! aggregate_by_decide {
    ($aggregate:ty, $type_name:expr, $command:ty, $event:ty, $error:ty) => {
        impl cqrs_es::Aggregate for $aggregate {
            const TYPE: &'static str = $type_name;
            type Command = $command;
            type Event = $event;
            type Error = $error;
            type Services = ();

            async fn handle(
                &mut self,
                command: Self::Command,
                _services: &Self::Services,
                sink: &cqrs_es::event_sink::EventSink<Self>,
            ) -> Result<(), Self::Error> {
                for event in self.decide(command)? {
                    sink.write(event, self).await;
                }
                Ok(())
            }

            fn apply(&mut self, event: Self::Event) {
                self.apply_event(event);
            }
        }
    };
}

pub mod account;
pub mod acdb;
pub mod auth;
pub mod catalog;
pub mod chain;
pub mod command;
pub mod conversation;
pub mod dashboard;
pub mod dates;
pub mod energy;
pub mod envelope;
pub mod event;
pub mod inbox;
pub mod money;
pub mod outbox;
pub mod phone;
mod quantity;
pub mod record;
pub mod records;
pub mod site;
pub mod tariff;
pub mod ticket;
pub mod write;
