//! The WhatsApp bridge: Cloud API webhooks, triage, tickets and conversations, replies and
//! uGridPlan forwarding (docs/whatsapp.md).
//!
//! The `api` crate serves `/webhooks/whatsapp` with the pure checks of [`cloud_api`] and stores
//! every verified delivery in the inbox (`domain::inbox`) before Meta is answered. The
//! [`worker`] then handles each message ([`flow`], [`triage`], [`llm`]) through the conversation
//! and ticket aggregates and queues what is to be sent ([`outbox_items`]); the [`senders`] send it
//! with the HTTP clients of the Cloud API ([`whatsapp`]) and uGridPlan ([`ugridplan`]). All
//! persistence goes through ports the adapters implement; the binary reads the configuration.
#![forbid(unsafe_code)]

pub mod cloud_api;
pub mod flow;
pub mod llm;
pub mod outbox_items;
pub mod senders;
pub mod triage;
pub mod ugridplan;
pub mod whatsapp;
pub mod worker;
