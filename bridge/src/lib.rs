//! The WhatsApp bridge: Cloud API webhooks, triage and ticket conversations.
//!
//! Not built yet (see docs/roadmap.md). `ccare serve` starts the bridge role only when WhatsApp
//! is configured, and says so at start-up.
#![forbid(unsafe_code)]

pub mod cloud_api;
pub mod flow;
pub mod llm;
pub mod triage;
pub mod ugridplan;
pub mod whatsapp;

/// Whether the environment configures the WhatsApp bridge. Until the bridge exists no setting
/// turns it on, and `ccare serve` reports the role as not configured.
pub fn is_configured() -> bool {
    false
}
