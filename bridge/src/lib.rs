//! The WhatsApp bridge: Cloud API webhooks, triage and ticket conversations.
//!
//! Built so far: the webhook's intake (the `api` crate serves `/webhooks/whatsapp` with the pure
//! checks of [`cloud_api`] and stores every verified delivery in the inbox, `domain::inbox`,
//! before Meta is answered); what to do with a message ([`flow`], [`triage`], [`llm`]); and the
//! HTTP clients of uGridPlan ([`ugridplan`]) and the Cloud API ([`whatsapp`]). The worker that
//! processes the inbox with them is not built yet (see docs/roadmap.md). WhatsApp is configured
//! by `WHATSAPP_VERIFY_TOKEN` and `WHATSAPP_APP_SECRET`, read by the binary's configuration like
//! every setting.
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
