//! Tickets: what customers report and staff follow up, as an aggregate ccare owns (events only).
//!
//! A ticket is numbered by ccare itself in the legacy format `SITE-YYYY-NNNN` (`MAK-2026-0065`),
//! so a customer gets the number at once even while uGridPlan is down; the uGridPlan id is
//! recorded beside it once the ticket is forwarded. Numbers come from a [`TicketSeries`] per site
//! and year: allocating one is an event of that series, so two bridges that race for a number
//! conflict on the series' sequence and one of them retries, and no number is ever given twice.

use std::fmt;
use std::str::FromStr;

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::site::SiteCode;

/// The legacy ticket categories (legacy-system.md §7.4). The strings are the legacy ones and are
/// what uGridPlan and stored events hold: never rename them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    NoPower,
    EquipmentFailure,
    MeterIssue,
    Billing,
    Installation,
    Vegetation,
    Vandalism,
    Complaint,
    GeneralInquiry,
}

impl Category {
    pub const ALL: [Category; 9] = [
        Category::NoPower,
        Category::EquipmentFailure,
        Category::MeterIssue,
        Category::Billing,
        Category::Installation,
        Category::Vegetation,
        Category::Vandalism,
        Category::Complaint,
        Category::GeneralInquiry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::NoPower => "no-power",
            Category::EquipmentFailure => "equipment-failure",
            Category::MeterIssue => "meter-issue",
            Category::Billing => "billing",
            Category::Installation => "installation",
            Category::Vegetation => "vegetation",
            Category::Vandalism => "vandalism",
            Category::Complaint => "complaint",
            Category::GeneralInquiry => "general-inquiry",
        }
    }

    /// The uGridPlan `equipment_category` of a ticket in this category, as the legacy bridge
    /// mapped it (legacy-system.md §7.5).
    pub fn equipment_category(self) -> &'static str {
        match self {
            Category::MeterIssue => "meter",
            Category::EquipmentFailure | Category::NoPower => "electrical",
            Category::Vegetation => "civil",
            _ => "unknown",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| ParseError::new("ticket category", s))
    }
}

/// A ticket priority. `P1` is the most urgent, so the derived order sorts urgent first and
/// `min` picks the most urgent of several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Priority {
    /// An outage or a danger to people.
    P1,
    /// Degraded service: a faulty meter or equipment, theft.
    P2,
    /// Not critical.
    P3,
    /// Scheduled work, or nothing to do.
    P4,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| ParseError::new("priority", s))
    }
}

/// A string that names no category or priority (or, in the bridge, language).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    what: &'static str,
    input: String,
}

impl ParseError {
    /// `input` is not a `what` (e.g. "ticket category").
    pub fn new(what: &'static str, input: &str) -> ParseError {
        ParseError {
            what,
            input: input.to_string(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a {}", self.input, self.what)
    }
}

impl std::error::Error for ParseError {}

/// Where the default site of a ticket whose site is unknown comes from: the legacy bridge sent
/// such tickets to uGridPlan under `LSB` (legacy-system.md §7.5).
pub const DEFAULT_SITE: &str = "LSB";

/// A ticket number, `SITE-YYYY-NNNN`: the site code, the year it was opened, and its place in
/// that site's series for the year (at least four digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TicketNumber {
    site: String,
    year: i32,
    serial: u32,
}

impl TicketNumber {
    pub fn new(site: &SiteCode, year: i32, serial: u32) -> Result<TicketNumber, ParseError> {
        if !(2000..=9999).contains(&year) || serial == 0 {
            return Err(ParseError::new(
                "ticket number",
                &format!("{}-{year}-{serial}", site.as_str()),
            ));
        }
        Ok(TicketNumber {
            site: site.as_str().to_string(),
            year,
            serial,
        })
    }

    pub fn site(&self) -> &str {
        &self.site
    }

    pub fn year(&self) -> i32 {
        self.year
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The id of the series this number was drawn from (`MAK-2026`).
    pub fn series(&self) -> String {
        series_id(&self.site, self.year)
    }
}

/// The aggregate id of a site's series of ticket numbers for a year.
pub fn series_id(site: &str, year: i32) -> String {
    format!("{site}-{year}")
}

impl fmt::Display for TicketNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:04}", self.site, self.year, self.serial)
    }
}

impl FromStr for TicketNumber {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseError::new("ticket number", s);
        let mut parts = s.trim().splitn(3, '-');
        let (Some(site), Some(year), Some(serial)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let site = SiteCode::parse(site).map_err(|_| bad())?;
        if year.len() != 4 || serial.len() < 4 || !serial.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year = year.parse().map_err(|_| bad())?;
        let serial = serial.parse().map_err(|_| bad())?;
        TicketNumber::new(&site, year, serial).map_err(|_| bad())
    }
}

impl TryFrom<String> for TicketNumber {
    type Error = ParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TicketNumber> for String {
    fn from(number: TicketNumber) -> String {
        number.to_string()
    }
}

/// The aggregate type of a series of ticket numbers.
pub const TICKET_SERIES: &str = "TicketSeries";

/// How many allocations a series remembers by the reference they were made for: enough for
/// every retry of a message still being worked on.
const REMEMBERED_ALLOCATIONS: usize = 256;

/// The ticket numbers of one site and year given so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketSeries {
    pub last: u32,
    /// The latest allocations, by what they were made for, oldest first.
    pub recent: Vec<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeriesCommand {
    /// The next number of the series, for `for_ref` (what the ticket is opened for, e.g. the
    /// WhatsApp message id). Asking again for the same reference allocates nothing: a worker
    /// that retries after a crash gets the number it had, and no number is skipped.
    Allocate { for_ref: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeriesEvent {
    NumberAllocated {
        serial: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_ref: Option<String>,
    },
}

/// The version of [`SeriesEvent`]'s shape.
pub const SERIES_EVENT_VERSION: &str = "1";

impl DomainEvent for SeriesEvent {
    fn event_type(&self) -> String {
        match self {
            SeriesEvent::NumberAllocated { .. } => "TicketNumberAllocated".to_string(),
        }
    }

    fn event_version(&self) -> String {
        SERIES_EVENT_VERSION.to_string()
    }
}

/// Why a series gave no number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeriesError {
    /// Every number it can give is given (beyond u32: never in practice).
    #[error("the series of ticket numbers is exhausted")]
    Exhausted,
    #[error("for_ref: must not be empty")]
    NoReference,
}

impl TicketSeries {
    /// The number allocated for `for_ref`, if this series still remembers it.
    pub fn serial_for(&self, for_ref: &str) -> Option<u32> {
        self.recent
            .iter()
            .rev()
            .find(|(r, _)| r == for_ref)
            .map(|(_, serial)| *serial)
    }

    pub fn decide(&self, command: SeriesCommand) -> Result<Vec<SeriesEvent>, SeriesError> {
        match command {
            SeriesCommand::Allocate { for_ref } => {
                let for_ref = for_ref.trim();
                if for_ref.is_empty() {
                    return Err(SeriesError::NoReference);
                }
                if self.serial_for(for_ref).is_some() {
                    return Ok(Vec::new());
                }
                Ok(vec![SeriesEvent::NumberAllocated {
                    serial: self.last.checked_add(1).ok_or(SeriesError::Exhausted)?,
                    for_ref: Some(for_ref.to_string()),
                }])
            }
        }
    }

    pub fn apply_event(&mut self, event: SeriesEvent) {
        match event {
            SeriesEvent::NumberAllocated { serial, for_ref } => {
                self.last = serial;
                if let Some(for_ref) = for_ref {
                    self.recent.push((for_ref, serial));
                    if self.recent.len() > REMEMBERED_ALLOCATIONS {
                        self.recent.remove(0);
                    }
                }
            }
        }
    }
}

aggregate_by_decide!(
    TicketSeries,
    TICKET_SERIES,
    SeriesCommand,
    SeriesEvent,
    SeriesError
);

/// Where a ticket stands. Staff move it; a closed or resolved ticket can be reopened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TicketStatus {
    Open,
    InProgress,
    Resolved,
    Closed,
}

impl TicketStatus {
    pub const ALL: [TicketStatus; 4] = [
        TicketStatus::Open,
        TicketStatus::InProgress,
        TicketStatus::Resolved,
        TicketStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::InProgress => "in-progress",
            TicketStatus::Resolved => "resolved",
            TicketStatus::Closed => "closed",
        }
    }

    /// Whether follow-ups still become comments on the ticket.
    pub fn is_active(self) -> bool {
        matches!(self, TicketStatus::Open | TicketStatus::InProgress)
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TicketStatus {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TicketStatus::ALL
            .into_iter()
            .find(|t| t.as_str() == s.trim())
            .ok_or_else(|| ParseError::new("ticket status", s))
    }
}

/// How a ticket or comment reached ccare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TicketChannel {
    Whatsapp,
    Portal,
}

/// The longest comment or description kept (characters); longer texts are refused, not cut.
pub const MAX_TEXT_CHARS: usize = 4_000;

/// The aggregate type of tickets.
pub const TICKET: &str = "Ticket";

/// A ticket as its events left it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub number: Option<TicketNumber>,
    pub status: Option<TicketStatus>,
    pub category: Option<Category>,
    pub priority: Option<Priority>,
    pub ugridplan_id: Option<String>,
    pub comments: u32,
}

/// What opening a ticket records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTicket {
    pub number: TicketNumber,
    pub category: Category,
    pub priority: Priority,
    /// One English sentence (the triage's `fault_summary`).
    pub summary: String,
    /// The customer's own words.
    pub description: String,
    pub customer_id: Option<i64>,
    /// E.164, when the ticket came from a phone.
    pub phone: Option<String>,
    pub channel: TicketChannel,
    /// Who classified it: `llm`, `rules` or `staff`.
    pub triaged_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketCommand {
    Open(NewTicket),
    Comment {
        author: String,
        text: String,
        channel: TicketChannel,
    },
    ChangeStatus {
        to: TicketStatus,
        reason: Option<String>,
    },
    Reclassify {
        category: Category,
        priority: Priority,
    },
    RecordForwarded {
        ugridplan_id: String,
    },
}

/// The events of a ticket. Each carries what it replaced where there is something to replace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TicketEvent {
    Opened(NewTicket),
    Commented {
        author: String,
        text: String,
        channel: TicketChannel,
    },
    StatusChanged {
        from: TicketStatus,
        to: TicketStatus,
        reason: Option<String>,
    },
    Reclassified {
        category: Category,
        priority: Priority,
        previous_category: Category,
        previous_priority: Priority,
    },
    ForwardedToUgridplan {
        ugridplan_id: String,
    },
}

/// The version of [`TicketEvent`]'s shape.
pub const TICKET_EVENT_VERSION: &str = "1";

impl DomainEvent for TicketEvent {
    fn event_type(&self) -> String {
        match self {
            TicketEvent::Opened(_) => "TicketOpened",
            TicketEvent::Commented { .. } => "TicketCommented",
            TicketEvent::StatusChanged { .. } => "TicketStatusChanged",
            TicketEvent::Reclassified { .. } => "TicketReclassified",
            TicketEvent::ForwardedToUgridplan { .. } => "TicketForwardedToUgridplan",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        TICKET_EVENT_VERSION.to_string()
    }
}

/// Why a ticket command was refused; the messages are fit for the API's `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("ticket {0} already exists")]
    AlreadyOpened(String),
    #[error("no such ticket")]
    NotFound,
    #[error("{field}: must not be empty")]
    Empty { field: &'static str },
    #[error("{field}: at most {MAX_TEXT_CHARS} characters")]
    TooLong { field: &'static str },
    #[error("the ticket is {0}: reopen it first")]
    NotActive(TicketStatus),
    #[error("the ticket is already {0}")]
    SameStatus(TicketStatus),
    #[error("the ticket already has that category and priority")]
    SameClassification,
    #[error("the ticket was already forwarded to uGridPlan as {0}")]
    ForwardedAs(String),
}

fn checked_text(field: &'static str, text: &str) -> Result<String, TicketError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(TicketError::Empty { field });
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(TicketError::TooLong { field });
    }
    Ok(text.to_string())
}

impl Ticket {
    pub fn decide(&self, command: TicketCommand) -> Result<Vec<TicketEvent>, TicketError> {
        use TicketCommand as C;
        let Some(status) = self.status else {
            return match command {
                C::Open(new) => Ok(vec![TicketEvent::Opened(NewTicket {
                    summary: checked_text("summary", &new.summary)?,
                    description: checked_text("description", &new.description)?,
                    triaged_by: checked_text("triaged_by", &new.triaged_by)?,
                    ..new
                })]),
                _ => Err(TicketError::NotFound),
            };
        };
        let event = match command {
            C::Open(new) => return Err(TicketError::AlreadyOpened(new.number.to_string())),
            C::Comment {
                author,
                text,
                channel,
            } => {
                if !status.is_active() {
                    return Err(TicketError::NotActive(status));
                }
                TicketEvent::Commented {
                    author: checked_text("author", &author)?,
                    text: checked_text("text", &text)?,
                    channel,
                }
            }
            C::ChangeStatus { to, reason } => {
                if to == status {
                    return Err(TicketError::SameStatus(status));
                }
                let reason = match reason.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(reason) => Some(checked_text("reason", reason)?),
                };
                TicketEvent::StatusChanged {
                    from: status,
                    to,
                    reason,
                }
            }
            C::Reclassify { category, priority } => {
                let (previous_category, previous_priority) = (
                    self.category.unwrap_or(Category::GeneralInquiry),
                    self.priority.unwrap_or(Priority::P3),
                );
                if (category, priority) == (previous_category, previous_priority) {
                    return Err(TicketError::SameClassification);
                }
                TicketEvent::Reclassified {
                    category,
                    priority,
                    previous_category,
                    previous_priority,
                }
            }
            C::RecordForwarded { ugridplan_id } => {
                let ugridplan_id = checked_text("ugridplan_id", &ugridplan_id)?;
                match &self.ugridplan_id {
                    // Recording the same id again (a retried forward) changes nothing.
                    Some(known) if *known == ugridplan_id => return Ok(Vec::new()),
                    Some(known) => return Err(TicketError::ForwardedAs(known.clone())),
                    None => TicketEvent::ForwardedToUgridplan { ugridplan_id },
                }
            }
        };
        Ok(vec![event])
    }

    pub fn apply_event(&mut self, event: TicketEvent) {
        match event {
            TicketEvent::Opened(new) => {
                self.number = Some(new.number);
                self.status = Some(TicketStatus::Open);
                self.category = Some(new.category);
                self.priority = Some(new.priority);
            }
            TicketEvent::Commented { .. } => self.comments += 1,
            TicketEvent::StatusChanged { to, .. } => self.status = Some(to),
            TicketEvent::Reclassified {
                category, priority, ..
            } => {
                self.category = Some(category);
                self.priority = Some(priority);
            }
            TicketEvent::ForwardedToUgridplan { ugridplan_id } => {
                self.ugridplan_id = Some(ugridplan_id)
            }
        }
    }
}

aggregate_by_decide!(Ticket, TICKET, TicketCommand, TicketEvent, TicketError);

#[cfg(test)]
mod tests {
    use super::*;

    fn number(serial: u32) -> TicketNumber {
        TicketNumber::new(&SiteCode::parse("MAK").unwrap(), 2026, serial).unwrap()
    }

    fn new_ticket(description: &str) -> NewTicket {
        NewTicket {
            number: number(65),
            category: Category::NoPower,
            priority: Priority::P1,
            summary: "Customer reports no power.".into(),
            description: description.into(),
            customer_id: Some(12),
            phone: Some("+26658123456".into()),
            channel: TicketChannel::Whatsapp,
            triaged_by: "rules".into(),
        }
    }

    fn opened() -> Ticket {
        let mut ticket = Ticket::default();
        apply(
            &mut ticket,
            TicketCommand::Open(new_ticket("Ha ke na motlakase")),
        )
        .unwrap();
        ticket
    }

    fn apply(ticket: &mut Ticket, command: TicketCommand) -> Result<Vec<TicketEvent>, TicketError> {
        let events = ticket.decide(command)?;
        for event in events.clone() {
            ticket.apply_event(event);
        }
        Ok(events)
    }

    #[test]
    fn categories_and_priorities_round_trip_through_their_strings() {
        let categories = [
            "no-power",
            "equipment-failure",
            "meter-issue",
            "billing",
            "installation",
            "vegetation",
            "vandalism",
            "complaint",
            "general-inquiry",
        ];
        assert_eq!(Category::ALL.map(Category::as_str), categories);
        for category in Category::ALL {
            assert_eq!(category.as_str().parse::<Category>(), Ok(category));
            assert_eq!(serde_json::to_value(category).unwrap(), category.as_str());
            assert_eq!(
                serde_json::from_value::<Category>(category.as_str().into()).unwrap(),
                category
            );
        }
        assert_eq!(
            Priority::ALL.map(Priority::as_str),
            ["P1", "P2", "P3", "P4"]
        );
        for priority in Priority::ALL {
            assert_eq!(priority.as_str().parse::<Priority>(), Ok(priority));
            assert_eq!(serde_json::to_value(priority).unwrap(), priority.as_str());
        }
    }

    #[test]
    fn an_unknown_string_is_refused_with_its_text() {
        let error = "no_power".parse::<Category>().unwrap_err();
        assert_eq!(error.to_string(), "\"no_power\" is not a ticket category");
        assert!("p1".parse::<Priority>().is_err());
        assert!(serde_json::from_value::<Category>("outage".into()).is_err());
    }

    #[test]
    fn p1_is_the_most_urgent_priority() {
        assert_eq!(Priority::ALL.into_iter().min(), Some(Priority::P1));
        assert!(
            Priority::P1 < Priority::P2
                && Priority::P2 < Priority::P3
                && Priority::P3 < Priority::P4
        );
    }

    #[test]
    fn categories_map_to_ugridplan_equipment_categories_as_the_legacy_did() {
        let mapping: Vec<(&str, &str)> = Category::ALL
            .into_iter()
            .map(|c| (c.as_str(), c.equipment_category()))
            .collect();
        assert_eq!(
            mapping,
            [
                ("no-power", "electrical"),
                ("equipment-failure", "electrical"),
                ("meter-issue", "meter"),
                ("billing", "unknown"),
                ("installation", "unknown"),
                ("vegetation", "civil"),
                ("vandalism", "unknown"),
                ("complaint", "unknown"),
                ("general-inquiry", "unknown"),
            ]
        );
    }

    #[test]
    fn ticket_numbers_read_and_print_in_the_legacy_format() {
        assert_eq!(number(65).to_string(), "MAK-2026-0065");
        assert_eq!(number(12_345).to_string(), "MAK-2026-12345");
        let parsed: TicketNumber = "MAK-2026-0065".parse().unwrap();
        assert_eq!(parsed, number(65));
        assert_eq!(parsed.series(), "MAK-2026");
        // Typed by a customer in lower case, it is still the same ticket.
        assert_eq!("mak-2026-0065".parse::<TicketNumber>().unwrap(), number(65));
        for bad in [
            "MAK-2026-65",
            "MAK-26-0065",
            "MAK-2026-00x5",
            "MAK2026",
            "MAK-2026-0000",
            "",
        ] {
            assert!(bad.parse::<TicketNumber>().is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&number(7)).unwrap();
        assert_eq!(json, "\"MAK-2026-0007\"");
        assert!(serde_json::from_str::<TicketNumber>("\"MAK-2026-7\"").is_err());
    }

    #[test]
    fn a_series_gives_each_number_once_in_order_and_the_same_one_again_for_the_same_reference() {
        let mut series = TicketSeries::default();
        let mut given = Vec::new();
        for reference in ["wamid.1", "wamid.2", "wamid.1", "wamid.3"] {
            let allocate = SeriesCommand::Allocate {
                for_ref: reference.into(),
            };
            for event in series.decide(allocate).unwrap() {
                let SeriesEvent::NumberAllocated { serial, .. } = event.clone();
                given.push(serial);
                series.apply_event(event);
            }
        }
        assert_eq!(given, vec![1, 2, 3], "wamid.1 again allocates nothing");
        assert_eq!(series.serial_for("wamid.1"), Some(1));
        assert_eq!(series.serial_for("wamid.3"), Some(3));
        let full = TicketSeries {
            last: u32::MAX,
            recent: Vec::new(),
        };
        let allocate = || SeriesCommand::Allocate {
            for_ref: "wamid.9".into(),
        };
        assert_eq!(full.decide(allocate()), Err(SeriesError::Exhausted));
        assert_eq!(
            series.decide(SeriesCommand::Allocate {
                for_ref: " ".into()
            }),
            Err(SeriesError::NoReference)
        );
    }

    #[test]
    fn an_allocation_stored_before_references_existed_still_reads() {
        let old: SeriesEvent = serde_json::from_str(r#"{"NumberAllocated":{"serial":4}}"#).unwrap();
        assert_eq!(
            old,
            SeriesEvent::NumberAllocated {
                serial: 4,
                for_ref: None
            }
        );
    }

    #[test]
    fn an_opened_ticket_is_open_with_its_classification_and_cannot_be_opened_again() {
        let ticket = opened();
        assert_eq!(ticket.status, Some(TicketStatus::Open));
        assert_eq!(ticket.number, Some(number(65)));
        assert_eq!(
            (ticket.category, ticket.priority),
            (Some(Category::NoPower), Some(Priority::P1))
        );
        let again = ticket.decide(TicketCommand::Open(new_ticket("again")));
        assert_eq!(
            again,
            Err(TicketError::AlreadyOpened("MAK-2026-0065".into()))
        );
    }

    #[test]
    fn the_customer_words_are_kept_trimmed() {
        let events = Ticket::default()
            .decide(TicketCommand::Open(new_ticket("  Ha ke na motlakase \n")))
            .unwrap();
        let [TicketEvent::Opened(new)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(new.description, "Ha ke na motlakase");
    }

    #[test]
    fn an_empty_description_is_refused_naming_the_field() {
        let refused = Ticket::default().decide(TicketCommand::Open(new_ticket("   ")));
        assert_eq!(
            refused,
            Err(TicketError::Empty {
                field: "description"
            })
        );
    }

    #[test]
    fn commands_on_a_ticket_that_was_never_opened_find_nothing() {
        let comment = Ticket::default().decide(TicketCommand::Comment {
            author: "Staff".into(),
            text: "On our way".into(),
            channel: TicketChannel::Portal,
        });
        assert_eq!(comment, Err(TicketError::NotFound));
    }

    #[test]
    fn comments_are_kept_while_the_ticket_is_active_and_refused_once_it_is_closed() {
        let mut ticket = opened();
        let comment = |text: &str| TicketCommand::Comment {
            author: "WhatsApp:+26658123456".into(),
            text: text.into(),
            channel: TicketChannel::Whatsapp,
        };
        apply(&mut ticket, comment("Still no power")).unwrap();
        assert_eq!(ticket.comments, 1);
        assert_eq!(
            apply(&mut ticket, comment(&"a".repeat(MAX_TEXT_CHARS + 1))),
            Err(TicketError::TooLong { field: "text" })
        );
        apply(
            &mut ticket,
            TicketCommand::ChangeStatus {
                to: TicketStatus::Closed,
                reason: Some("Restored".into()),
            },
        )
        .unwrap();
        assert_eq!(
            apply(&mut ticket, comment("Thanks")),
            Err(TicketError::NotActive(TicketStatus::Closed))
        );
        // Reopened, it takes comments again.
        apply(
            &mut ticket,
            TicketCommand::ChangeStatus {
                to: TicketStatus::Open,
                reason: None,
            },
        )
        .unwrap();
        apply(&mut ticket, comment("It went off again")).unwrap();
        assert_eq!(ticket.comments, 2);
    }

    #[test]
    fn a_status_change_records_where_it_came_from_and_a_change_to_the_same_status_is_refused() {
        let mut ticket = opened();
        let events = apply(
            &mut ticket,
            TicketCommand::ChangeStatus {
                to: TicketStatus::InProgress,
                reason: Some("  ".into()),
            },
        )
        .unwrap();
        assert_eq!(
            events,
            vec![TicketEvent::StatusChanged {
                from: TicketStatus::Open,
                to: TicketStatus::InProgress,
                reason: None
            }]
        );
        assert_eq!(
            ticket.decide(TicketCommand::ChangeStatus {
                to: TicketStatus::InProgress,
                reason: None
            }),
            Err(TicketError::SameStatus(TicketStatus::InProgress))
        );
    }

    #[test]
    fn reclassifying_keeps_the_previous_classification_and_refuses_no_change() {
        let mut ticket = opened();
        let events = apply(
            &mut ticket,
            TicketCommand::Reclassify {
                category: Category::EquipmentFailure,
                priority: Priority::P1,
            },
        )
        .unwrap();
        assert_eq!(
            events,
            vec![TicketEvent::Reclassified {
                category: Category::EquipmentFailure,
                priority: Priority::P1,
                previous_category: Category::NoPower,
                previous_priority: Priority::P1,
            }]
        );
        assert_eq!(
            ticket.decide(TicketCommand::Reclassify {
                category: Category::EquipmentFailure,
                priority: Priority::P1,
            }),
            Err(TicketError::SameClassification)
        );
    }

    #[test]
    fn the_ugridplan_id_is_recorded_once_and_a_retried_forward_changes_nothing() {
        let mut ticket = opened();
        let forward = |id: &str| TicketCommand::RecordForwarded {
            ugridplan_id: id.into(),
        };
        assert_eq!(apply(&mut ticket, forward("UGP-981")).unwrap().len(), 1);
        assert_eq!(apply(&mut ticket, forward("UGP-981")).unwrap(), vec![]);
        assert_eq!(
            apply(&mut ticket, forward("UGP-982")),
            Err(TicketError::ForwardedAs("UGP-981".into()))
        );
    }

    #[test]
    fn events_keep_their_names_and_shapes() {
        let event = TicketEvent::StatusChanged {
            from: TicketStatus::Open,
            to: TicketStatus::Resolved,
            reason: None,
        };
        assert_eq!(event.event_type(), "TicketStatusChanged");
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"StatusChanged": {"from": "open", "to": "resolved", "reason": null}})
        );
        assert_eq!(
            "in-progress".parse::<TicketStatus>(),
            Ok(TicketStatus::InProgress)
        );
        assert_eq!(Category::MeterIssue.equipment_category(), "meter");
    }
}
