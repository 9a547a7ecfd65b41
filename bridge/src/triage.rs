//! The deterministic triage of a customer's WhatsApp message: which legacy category and priority
//! it is, whether it needs a ticket, and what to ask back (legacy-system.md §7.4).
//!
//! This is the classifier that always works: the bridge uses it when no LLM endpoint is
//! configured, when the endpoint fails, and to check what the endpoint says. It is pure and
//! deterministic, so the same text always gets the same answer and staff can read why in
//! [`Triage::matched`].
//!
//! A message is normalised (lower case, punctuation and emoji dropped, common Sesotho, English
//! and WhatsApp spelling variants folded into one spelling), then matched against keyword tables,
//! one per rule. The tables are data, written in a small pattern language:
//!
//! - words separated by a space must follow each other: `no power`;
//! - `a/b` accepts either word in that place: `no power/electricity`;
//! - a trailing `*` accepts any word starting so: `spark*` (sparks, sparking);
//! - ` + ` joins parts that must all occur, anywhere and in any order: `meter + not working`.
//!
//! Patterns are written in the normalised spelling (`meter`, not `mitara`); a test checks that
//! every pattern can match a message.
//!
//! The replies the bridge sends are here too, as fixed bilingual texts: Sesotho first, a blank
//! line, then English (legacy-system.md §7.6).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use domain::ticket::{Category, ParseError, Priority};

/// The language a message is written in, as far as common words tell. Recorded for staff; the
/// replies are bilingual whatever it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Sesotho,
    English,
    /// Both, each with at least a third as many known words as the other.
    Mixed,
    /// No known word of either (an account number, emoji, a loanword alone).
    Unknown,
}

impl Language {
    pub const ALL: [Language; 4] = [
        Language::Sesotho,
        Language::English,
        Language::Mixed,
        Language::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Language::Sesotho => "sesotho",
            Language::English => "english",
            Language::Mixed => "mixed",
            Language::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Language {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Language::ALL
            .into_iter()
            .find(|l| l.as_str() == s.trim())
            .ok_or_else(|| ParseError::new("language", s))
    }
}

/// What the classifier decided about one message: the fields the legacy AI returned
/// (legacy-system.md §7.4), less the reply and site, plus the language and the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triage {
    pub needs_ticket: bool,
    pub category: Category,
    pub priority: Priority,
    /// The message names no problem the bridge can act on: ask the customer for details.
    /// Never true together with `needs_ticket`.
    pub ask_for_info: bool,
    /// One English sentence for the ticket's fault description.
    pub fault_summary: String,
    pub language: Language,
    /// The table patterns that matched, in precedence order, as written in the tables: what
    /// decided the category, priority and ticket.
    pub matched: Vec<String>,
}

/// One row of the decision table: what a match of any of `patterns` means.
struct Rule {
    category: Category,
    priority: Priority,
    needs_ticket: bool,
    /// The start of the fault summary when this rule decides the category.
    summary: &'static str,
    patterns: &'static [&'static str],
}

/// The rules in precedence order: when several match, the first decides the category. Safety
/// comes first, then what leaves customers without power, then damage to the network, then one
/// customer's meter, then money, then what can wait. Equipment damage without danger ranks below
/// theft: both are P2, and a message that names theft says more about the cause.
const RULES: &[Rule] = &[
    Rule {
        category: Category::EquipmentFailure,
        priority: Priority::P1,
        needs_ticket: true,
        summary: "Customer reports dangerous equipment damage",
        patterns: DANGER,
    },
    Rule {
        category: Category::NoPower,
        priority: Priority::P1,
        needs_ticket: true,
        summary: "Customer reports no power",
        patterns: OUTAGE,
    },
    Rule {
        category: Category::Vandalism,
        priority: Priority::P2,
        needs_ticket: true,
        summary: "Customer reports theft or vandalism",
        patterns: VANDALISM,
    },
    Rule {
        category: Category::EquipmentFailure,
        priority: Priority::P2,
        needs_ticket: true,
        summary: "Customer reports faulty equipment",
        patterns: EQUIPMENT_FAULT,
    },
    Rule {
        category: Category::MeterIssue,
        priority: Priority::P2,
        needs_ticket: true,
        summary: "Customer reports a meter problem",
        patterns: METER,
    },
    Rule {
        category: Category::Billing,
        priority: Priority::P3,
        // Billing becomes a ticket only with an escalation (see ESCALATION).
        needs_ticket: false,
        summary: "Customer has a billing query",
        patterns: BILLING,
    },
    Rule {
        category: Category::Vegetation,
        priority: Priority::P3,
        needs_ticket: true,
        summary: "Customer reports trees or branches near the lines",
        patterns: VEGETATION,
    },
    Rule {
        category: Category::Installation,
        priority: Priority::P4,
        needs_ticket: true,
        summary: "Customer asks for a new connection",
        patterns: INSTALLATION,
    },
    Rule {
        category: Category::Complaint,
        priority: Priority::P3,
        needs_ticket: true,
        summary: "Customer complains about the service",
        patterns: COMPLAINT,
    },
    Rule {
        category: Category::GeneralInquiry,
        priority: Priority::P4,
        needs_ticket: false,
        summary: "Customer asks a general question",
        patterns: QUESTION,
    },
];

/// Sparks, smoke, fire, shocks and lines on the ground: people can be hurt, so P1 whatever else
/// the message says.
const DANGER: &[&str] = &[
    "spark*",
    "litlhase",
    "tlhase*",
    "smok*",
    "mosi",
    "burn*",
    "ches*",
    "fire",
    "fires",
    "flame*",
    "mollo",
    "explo*",
    "phatloh*",
    "loud bang",
    "electric shock",
    "shock* + wire*/cable*/pole*/meter/readyboard/line/lines/motlakase",
    "electrocut*",
    "tsoaroa + motlakase",
    "live wire*",
    "exposed wire*/cable*",
    "wire*/cable*/line/lines/pole/poles/mohala/palo + down/fell/fallen/falling/ground/oele/fatse",
    "wire*/cable*/mohala + khaoh*/snapped/cut",
    "pole/poles/palo + collapsed",
];

/// A supply that is off. "motlakase" alone is not an outage: "motlakase ke bokae?" asks its
/// price. So Sesotho reports need the phrase that says it is missing ("ha ke na motlakase",
/// "ha ho motlakase") or a verb saying it went off, and English ones a word with "power".
const OUTAGE: &[&str] = &[
    "no power/electricity/current/lights/light/supply/motlakase/mabone",
    "without power/electricity/lights/motlakase",
    "not have power/electricity/lights",
    "not have any power/electricity/lights",
    "power/electricity/lights/light + off",
    "power/electricity/lights/light + gone",
    "power/electricity/lights/light + went/is/are/gone out",
    "power/electricity/lights/light + not working",
    "power/electricity + down",
    "power/electricity cut/failure/outage/loss/interruption",
    "outage*",
    "blackout*",
    "loadshedding",
    "ha ke/re/ho na motlakase/mabone/power/electricity/lights",
    "ha ho motlakase/mabone/power/electricity/lights",
    "motlakase/mabone + ha o/a/e eo/teng",
    "motlakase/mabone + ha o/a/e sebetse/tuke/khanye",
    "motlakase/mabone + tima/timme/timeha/timetse/khaoh*/tsamaile",
    "timile",
    "lefif*",
];

/// Stolen or deliberately damaged network, and power stolen by tampering.
const VANDALISM: &[&str] = &[
    "stol*",
    "steal*",
    "theft",
    "thief",
    "thieves",
    "vandal*",
    "someone/somebody/people + cut/broke/damaged/destroyed",
    "broke/break in",
    "tamper*",
    "bypass*",
    "illegal connection*",
    "illegally connected",
    "utsoa",
    "utsoits*",
    "oetsoe",
    "lesholu",
    "masholu",
    "ba sentse",
];

/// Equipment that misbehaves without danger: degraded supply, so P2.
const EQUIPMENT_FAULT: &[&str] = &[
    "transformer*",
    "readyboard*",
    "breaker*",
    "tripping",
    "trips",
    "fuse*",
    "voltage",
    "flicker*",
    "fluctuat*",
    // "on and off" is normalised to this, so that a supply that comes and goes is not taken
    // for an outage by the "power + off" pattern.
    "intermittent",
    "surge*",
    "dim",
    "lights/mabone + weak/fokol*",
    "pole/poles/palo + broke*/crack*/lean*/bent/tilt*/sekam*",
    "wire*/cable*/mohala/line/lines + hanging/loose/low/sag*/leketl*/tlase",
];

/// One customer's meter, token or units. The word "meter" alone is not enough ("how much is a
/// new meter?"): it needs a word saying something is wrong.
const METER: &[&str] = &[
    "meter + not working/reading/accepting/loading/showing/responding/displaying/counting",
    "meter + broken/faulty/fault*/error*/blank/dead/beep*/shows/showing/display*/screen/stuck/damaged/problem/problems/issue/issues/wrong",
    "meter + sebetse/senyeh*/bonts*/bothata/hana/amohele/phoso",
    "token/units + not/never accept*/work*/load*/go*/enter*/show*/reflect*/appear*/receive*/come",
    "token/units + reject*/invalid/wrong/error*/fail*/disappear*/missing/vanish*/hana/amohel*",
    "token/units + ha li/e kene/amohele/sebetse/bonahale",
    "token/units + ha ke fumane/fumana",
    "token/units + ha ke a fumana/fumane",
    "bought/paid/recharged/loaded + no units",
    "recharge*/topup + fail*",
    "recharge*/topup + not work*/load*",
];

/// Money: balances, charges, refunds, payments.
const BILLING: &[&str] = &[
    "bill",
    "bills",
    "billing",
    "invoice*",
    "refund*",
    "overcharg*",
    "charged + twice/double/wrong/extra",
    "charged + too much",
    "double charg*",
    "paid + twice/double",
    "deduct*",
    "wrong balance/amount/charge/charges",
    "balance + wrong/incorrect/fosahets*",
    "money + lost/missing/taken/deducted/wrong/gone/back/disappeared",
    "my money",
    "airtime + instead/mistake/wrong/refund",
    "mpesa",
    "ecocash",
    "receipt*",
    "statement",
    "expensive",
    "chelete ea ka",
    "chelete + fosahets*/lahleh*/nkuoe/nkiloe/khutlis*/jeoe",
    "tefo",
    "habeli + lefile/lefa/lefang/lefuoe",
    "akhaonto + fosahets*",
];

/// Words that say a billing problem has been raised before, so it needs a ticket now.
const ESCALATION: &[&str] = &[
    "again",
    "still",
    "second/third/fourth/fifth time/times",
    "many times",
    "several times",
    "complained/reported/told/asked/called + before/already",
    "already complained/reported/told/called",
    "for days/weeks/months",
    "since last week/month",
    "no one/nobody + help*/answer*/respond*/fixed/came",
    "nobody + help*/answer*/respond*/fixed/came",
    "no response/answer/feedback/help",
    "nothing + done/happened/changed",
    "khafetsa",
    "hape",
    "ha ho letho",
    "se ke + tlaleh*/tletleb*/bolel*/ngol*",
    "nako ea bobeli/boraro",
];

/// Trees and branches touching or near the lines: a ticket for the vegetation crew.
const VEGETATION: &[&str] = &[
    "tree*",
    "vegetation",
    "bushes",
    "branches",
    "branch + line/lines/wire*/cable*/pole*/touch*/mohala",
    "lifate",
    "sefate",
    "makala + mohala",
];

/// A new connection: scheduled work, P4.
const INSTALLATION: &[&str] = &[
    "new connection*",
    "new meter",
    "connect + house/home/me/us/my/our/shop/business/church/school/place",
    "be/get/getting connected",
    "connection + fee/fees/form/forms/application/apply*",
    "apply* + electricity/power/connection/meter",
    "install*",
    "wiring",
    "hokel*",
    "kenya/kenyetsa/kenyeletsa + motlakase",
    "batla + motlakase + ntlo*/lapeng/lapa",
];

/// How the customer was treated.
const COMPLAINT: &[&str] = &[
    "bad/poor/terrible/worst/horrible/pathetic service",
    "service + bad/poor/terrible/pathetic/useless",
    "rude*",
    "complain*",
    "unprofessional",
    "disrespect*",
    "not happy",
    "unhappy",
    "disappointed",
    "angry",
    "fed up",
    "useless",
    "no one + came/come/answer*/respond*/help*/pick*",
    "nobody + came/come/answer*/respond*/help*/pick*",
    "no response",
    "not answer*/respond*/pick*",
    "ignor*",
    "still waiting",
    "waiting for days/weeks",
    "tsebeletso + mpe/bobe/fokol*",
    "khopo",
    "hloka mekhoa",
    "ha ba/le arabe/tle",
    "halef*",
    "teneh*",
    "tletleb*",
];

/// Questions that need an answer, not a ticket: prices, hours, where and how.
const QUESTION: &[&str] = &[
    "how much",
    "how do/can i",
    "how to",
    "price*",
    "cost*",
    "tariff*",
    "per unit",
    "opening/office/working hours",
    "open/opening/close/closing + time/times/hours/today/tomorrow/saturday/sunday/weekend",
    "when + open/close",
    "where + office/buy/pay",
    "where can i",
    "can i",
    "is it possible",
    "question",
    "enquiry",
    "inquiry",
    "information",
    "info",
    "bokae",
    "theko",
    "litheko",
    "ofisi",
    "ofising",
    "bula* + neng",
    "reka + kae",
    "botsa",
    "potso",
    "nka etsa joang",
];

/// Words that say something is wrong without saying what. They decide nothing; they are kept in
/// [`Triage::matched`] so that staff see why the bridge asked for details.
const VAGUE_PROBLEM: &[&str] = &[
    "problem*",
    "issue*",
    "help",
    "thuso",
    "thusa",
    "bothata",
    "mathata",
    "not working",
    "sebetse",
    "broken",
    "senyeh*",
    "urgent*",
    "asap",
    "emergency",
];

/// Greetings, thanks and acknowledgements. A message made only of these asks for nothing, so the
/// bridge greets back instead of asking what the problem is.
const SMALL_TALK: &str = "\
    hi hello helo hallo hey heita lumela lumelang bo khotso ntate mme me mam maam madam sir morena \
    dear good morning afternoon evening day night how are you u o phela joang hantle ke kea leboha \
    haholo thanks thank thankyou ok okay alright fine yes ee che sure great cool bye sala salang \
    customer care team everyone guys 1pwr";

/// Spelling variants of one word, folded to the spelling the tables use. A variant may stand for
/// several words ("hakena" is "ha ke na"). Grammatical forms that mean the same to triage are
/// folded too ("mehala" wires, "mohala" wire).
const TOKEN_ALIASES: &[(&str, &str)] = &[
    // English contractions, once their apostrophe is gone.
    ("dont", "do not"),
    ("didnt", "did not"),
    ("doesnt", "does not"),
    ("isnt", "is not"),
    ("arent", "are not"),
    ("wasnt", "was not"),
    ("werent", "were not"),
    ("havent", "have not"),
    ("hasnt", "has not"),
    ("cant", "can not"),
    ("cannot", "can not"),
    ("wont", "will not"),
    ("aint", "is not"),
    ("im", "i am"),
    ("ive", "i have"),
    ("its", "it is"),
    ("theres", "there is"),
    // WhatsApp short forms.
    ("pls", "please"),
    ("plz", "please"),
    ("plse", "please"),
    ("pliz", "please"),
    ("plis", "please"),
    ("thx", "thanks"),
    ("tnx", "thanks"),
    ("thanx", "thanks"),
    ("hv", "have"),
    ("yday", "yesterday"),
    ("acc", "account"),
    ("acct", "account"),
    ("nopower", "no power"),
    ("3rd", "third"),
    ("2nd", "second"),
    ("4th", "fourth"),
    // English typos seen in customer messages.
    ("electricty", "electricity"),
    ("electrcity", "electricity"),
    ("elecricity", "electricity"),
    ("electrisity", "electricity"),
    ("electicity", "electricity"),
    ("eletricity", "electricity"),
    ("elctricity", "electricity"),
    ("lectricity", "electricity"),
    ("elec", "electricity"),
    ("powa", "power"),
    ("pawa", "power"),
    ("lite", "light"),
    ("lites", "lights"),
    ("ligths", "lights"),
    ("outrage", "outage"),
    ("conection", "connection"),
    ("connecton", "connection"),
    ("transfomer", "transformer"),
    ("tranformer", "transformer"),
    ("cabel", "cable"),
    ("tokens", "token"),
    ("tokeni", "token"),
    ("thokene", "token"),
    // The loanword "meter" as Basotho spell it.
    ("mitara", "meter"),
    ("metara", "meter"),
    ("metere", "meter"),
    ("mitare", "meter"),
    ("metre", "meter"),
    ("meeter", "meter"),
    // Sesotho: run-together words, Lesotho and South African spellings, plural forms.
    ("motlakasi", "motlakase"),
    ("motlakas", "motlakase"),
    ("motlakse", "motlakase"),
    ("motlakaze", "motlakase"),
    ("mutlakase", "motlakase"),
    ("hakena", "ha ke na"),
    ("harena", "ha re na"),
    ("haho", "ha ho"),
    ("hahona", "ha ho na"),
    ("mehala", "mohala"),
    ("lebone", "mabone"),
    ("lipalo", "palo"),
    ("palong", "palo"),
    ("fatshe", "fatse"),
    ("wele", "oele"),
    ("utswitswe", "utsoitsoe"),
    ("utsuitsoe", "utsoitsoe"),
    ("utsoetsoe", "utsoitsoe"),
    ("utswa", "utsoa"),
    ("difate", "lifate"),
    ("dumela", "lumela"),
    ("dumelang", "lumelang"),
    ("tshebeletso", "tsebeletso"),
    ("litsebeletso", "tsebeletso"),
    ("bothatha", "bothata"),
    ("tefello", "tefo"),
    ("bili", "bill"),
    ("akhaunto", "akhaonto"),
    ("wa", "oa"),
    ("ya", "ea"),
];

/// Variants that span several words, applied after [`TOKEN_ALIASES`].
const PHRASE_ALIASES: &[(&str, &str)] = &[
    ("ha kena", "ha ke na"),
    ("hake na", "ha ke na"),
    ("ha rena", "ha re na"),
    ("hare na", "ha re na"),
    ("ha hona", "ha ho na"),
    ("black out", "blackout"),
    ("ready board", "readyboard"),
    ("over charged", "overcharged"),
    ("over charging", "overcharging"),
    ("load shedding", "loadshedding"),
    ("top up", "topup"),
    ("m pesa", "mpesa"),
    ("eco cash", "ecocash"),
    ("on and off", "intermittent"),
    ("off and on", "intermittent"),
    ("comes and goes", "intermittent"),
];

/// Common Sesotho words, for [`Language`]. Loanwords both languages use ("meter", "units",
/// "token") are in neither list.
const SESOTHO_WORDS: &str = "\
    ke ha na ho le ea oa ka hao rona lona bona re ba li lia kea eo teng hona ena eena e o bo lo \
    tsa sa se motlakase mohala mabone lumela lumelang khotso ntate mme morena leboha bothata \
    mathata thuso thusa hle kopo joang neng hokae kae bokae eng hobane empa feela haholo hape \
    khafetsa chelete tefo lifate sefate makala utsoitsoe utsoitse timile chesa mosi mollo sebetse \
    kene tla tloha kajeno maobane hosane hoseng bosiu bosiung mantsiboea ntlo ntlong motse motseng \
    lefifi lefifing phela hantle batla rekile reka fumane letho mona moo kaofela tsohle nako \
    tsebeletso mpe halefile arabe ama haufi palo oele fatse ncha hokeloa hokela masholu tletlebile \
    fosahetse nkuoe hana leketlile bontsa bontsha senyehile ofisi bula theko tle reme";

/// Common English words, for [`Language`].
const ENGLISH_WORDS: &str = "\
    the is are was were am my i no not do does did have has had and of to in on at it we you your \
    there since yesterday today morning night evening working work lights light what how much when \
    where why help please thank thanks again still power electricity hello hi good can will been \
    from for with our this that house home bill money paid bought broken problem issue days week \
    time sir madam an be but they them he she his her who new connection want need near very all \
    any off out down line wire tree trees pole fire smoke sparks balance wrong twice refund stole \
    stolen someone somebody nobody rude service bad price office open hours buy here now village \
    road school went came back come gone whole area charged third loading accepted shows getting \
    coming last after one unit cable connect";

/// Longest excerpt of the customer's own words kept in a fault summary, in characters.
const EXCERPT_CHARS: usize = 80;

/// Triages one customer message (all the text of a batch, joined).
///
/// The category is the first matching rule of the precedence order (see `RULES`); the priority
/// is the most urgent priority among all the rules that matched; a ticket is needed if any
/// matched rule needs one, so that a complaint inside a billing message is not lost, or if a
/// billing message says the problem was raised before. A message that matches no rule is a
/// greeting when it holds only small talk, and otherwise vague: the bridge asks for details.
pub fn classify(text: &str) -> Triage {
    let normalised = normalise(text);
    let tokens: Vec<&str> = normalised.iter().map(String::as_str).collect();
    let language = detect_language(&tokens);

    let mut matched = Vec::new();
    let mut decisive: Option<&Rule> = None;
    let mut priority: Option<Priority> = None;
    let mut needs_ticket = false;
    let mut billing = false;
    for rule in RULES {
        let hits = matching(rule.patterns, &tokens);
        if hits.is_empty() {
            continue;
        }
        for hit in hits {
            if !matched.iter().any(|m| m == hit) {
                matched.push(hit.to_string());
            }
        }
        decisive.get_or_insert(rule);
        priority = Some(priority.map_or(rule.priority, |p| p.min(rule.priority)));
        needs_ticket |= rule.needs_ticket;
        billing |= rule.category == Category::Billing;
    }

    let escalated = billing && {
        let hits = matching(ESCALATION, &tokens);
        for hit in &hits {
            if !matched.iter().any(|m| m == hit) {
                matched.push(hit.to_string());
            }
        }
        !hits.is_empty()
    };
    needs_ticket |= escalated;

    let excerpt = excerpt(text);
    match (decisive, priority) {
        (Some(rule), Some(priority)) => {
            let summary = if rule.category == Category::Billing && escalated {
                "Customer reports a billing problem again"
            } else {
                rule.summary
            };
            Triage {
                needs_ticket,
                category: rule.category,
                priority,
                ask_for_info: false,
                fault_summary: fault_summary(summary, language, excerpt.as_deref()),
                language,
                matched,
            }
        }
        _ if tokens.iter().all(|t| is_listed(SMALL_TALK, t)) => Triage {
            needs_ticket: false,
            category: Category::GeneralInquiry,
            priority: Priority::P4,
            ask_for_info: false,
            fault_summary: fault_summary("Customer sent a greeting", language, None),
            language,
            matched,
        },
        _ => {
            let vague: Vec<String> = matching(VAGUE_PROBLEM, &tokens)
                .into_iter()
                .map(str::to_string)
                .collect();
            let summary = if vague.is_empty() {
                "Customer's message does not say what is wrong"
            } else {
                "Customer reports a problem without details"
            };
            // P3 with ask_for_info is the legacy bridge's own answer when it could not
            // classify (legacy-system.md §7.4, output parsing).
            Triage {
                needs_ticket: false,
                category: Category::GeneralInquiry,
                priority: Priority::P3,
                ask_for_info: true,
                fault_summary: fault_summary(summary, language, excerpt.as_deref()),
                language,
                matched: vague,
            }
        }
    }
}

/// The reply when a ticket has been opened: the ticket number in bold (WhatsApp `*…*`), as the
/// legacy bridge sent it, and a sentence on what happens next.
pub fn ticket_opened_reply(ticket_number: &str, category: Category) -> String {
    let (sesotho, english) = match category {
        Category::NoPower => (
            "Basebetsi ba rona ba tsebisitsoe 'me ba tla u thusa kapele.",
            "Our technicians have been told and will help you soon.",
        ),
        Category::EquipmentFailure => (
            "Ka kopo, u se ke ua atamela mehala kapa thepa e senyehileng; basebetsi ba rona ba tla tla kapele.",
            "Please keep away from the wires and the damaged equipment; our technicians will come soon.",
        ),
        Category::Vandalism => (
            "Ka kopo, u se ke ua ama mehala kapa thepa e senyehileng.",
            "Please do not touch any cut wires or damaged equipment.",
        ),
        Category::MeterIssue => (
            "Ka kopo, u boloke token ea ho qetela eo u e rekileng; re tla u thusa kapele.",
            "Please keep the last token you bought; we will help you soon.",
        ),
        Category::Billing => (
            "Basebetsi ba lichelete ba tla sheba akhaonto ea hao.",
            "Our finance staff will check your account.",
        ),
        Category::Vegetation => (
            "Basebetsi ba rona ba tla tla ho sheba lifate tse haufi le mehala.",
            "Our team will come to check the trees near the lines.",
        ),
        Category::Installation => (
            "Re tla u letsetsa ho lokisa letsatsi la ho u hokela.",
            "We will call you to arrange a date for your connection.",
        ),
        Category::Complaint => (
            "Re kopa tšoarelo, 'me motsamaisi o tla sheba taba ena.",
            "We are sorry, and a supervisor will look into this.",
        ),
        Category::GeneralInquiry => ("Re tla u araba kapele.", "We will answer you soon."),
    };
    bilingual(
        &format!("Tikete ea hao *{ticket_number}* e thehiloe. {sesotho}"),
        &format!("Your ticket *{ticket_number}* has been created. {english}"),
    )
}

/// The reply to a vague message ([`Triage::ask_for_info`]).
pub fn ask_for_details_reply() -> String {
    bilingual(
        "Re amohetse molaetsa oa hao. Ka kopo, re hlalosetse bothata: ho etsahetse eng, hokae, 'me ho qalile neng?",
        "We have received your message. Please describe the problem: what happened, where, and when did it start?",
    )
}

/// Added to a reply when the phone number belongs to no known customer.
pub fn ask_for_account_reply() -> String {
    bilingual(
        "Ka kopo, re romelle nomoro ea akhaonto ea hao (mohlala, 0045MAK) kapa lebitso la motse oa hao.",
        "Please send us your account number (for example, 0045MAK) or the name of your village.",
    )
}

/// The reply to a picture, voice note or other media without a caption.
pub fn media_only_reply() -> String {
    bilingual(
        "Re amohetse molaetsa oa hao. Ka kopo, re ngolle bothata ka mantsoe hore re tsebe ho u thusa kapele.",
        "We have received your message. Please describe the problem in words so that we can help you quickly.",
    )
}

/// The reply to a greeting or a question that needs no ticket.
pub fn general_reply() -> String {
    bilingual(
        "Lumela! Re amohetse molaetsa oa hao, 'me basebetsi ba rona ba tla u araba kapele. Haeba u na le bothata ba motlakase, ka kopo re hlalosetse bona.",
        "Hello! We have received your message, and our staff will answer you soon. If you have a problem with your electricity, please describe it to us.",
    )
}

/// The reply to a follow-up message added to an open ticket.
pub fn ticket_updated_reply(ticket_number: &str) -> String {
    bilingual(
        &format!(
            "Molaetsa oa hao o kentsoe tiketeng ea hao *{ticket_number}*. Re tla u tsebisa ha ho na le tsoelo-pele."
        ),
        &format!(
            "Your message has been added to your ticket *{ticket_number}*. We will let you know when there is progress."
        ),
    )
}

/// The reply once a sender the bridge did not know is matched to a customer by the account
/// number they gave.
pub fn account_found_reply(name: &str) -> String {
    bilingual(
        &format!(
            "Kea leboha, {name}. Re fumane akhaonto ea hao. Ka kopo, re hlalosetse bothata ba hao."
        ),
        &format!(
            "Thank you, {name}. We have found your account. Please tell us about your problem."
        ),
    )
}

/// The reply when a sender the bridge did not know names their village.
pub fn village_noted_reply(village: &str) -> String {
    bilingual(
        &format!("Kea leboha. Re ngotse hore u lula {village}. Ka kopo, re hlalosetse bothata ba hao."),
        &format!("Thank you. We have noted that you live at {village}. Please tell us about your problem."),
    )
}

/// The reply when the account number a sender gave matches no customer.
pub fn account_not_found_reply(account: &str) -> String {
    bilingual(
        &format!("Ha re fumane akhaonto {account}. Ka kopo, sheba nomoro hape kapa u re romelle lebitso la motse oa hao."),
        &format!("We could not find the account {account}. Please check the number, or send us the name of your village."),
    )
}

/// The reply when nothing more specific can be said, e.g. after a failure.
pub fn received_reply() -> String {
    bilingual(
        "Re amohetse molaetsa oa hao. Re tla u thusa kapele.",
        "We have received your message. We will help you soon.",
    )
}

fn bilingual(sesotho: &str, english: &str) -> String {
    format!("{sesotho}\n\n{english}")
}

/// The message as the tables see it: lower-case words without punctuation or emoji, spelling
/// variants folded.
fn normalise(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            // Dropped rather than made a space, so that "don't" is one word, "dont".
            '\'' | '\u{2019}' | '\u{2018}' | '`' | '\u{b4}' | '\u{2bc}' => {}
            c if c.is_alphanumeric() => cleaned.push(fold_diacritic(c)),
            _ => cleaned.push(' '),
        }
    }
    let mut words = Vec::new();
    for raw in cleaned.split_whitespace() {
        let word = lesotho_spelling(&squeeze_repeats(raw));
        match TOKEN_ALIASES.iter().find(|(from, _)| *from == word) {
            Some((_, to)) => words.extend(to.split(' ').map(str::to_string)),
            None => words.push(word),
        }
    }
    apply_phrase_aliases(words)
}

/// Lesotho Sesotho writes "tš" where many customers type "ts" or use a phone without "š", and
/// French-keyboard phones add accents: both fold to plain letters.
fn fold_diacritic(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'š' => 's',
        'ç' => 'c',
        'ñ' => 'n',
        _ => c,
    }
}

/// "nooo powerrr" is "no power": a letter repeated three times or more counts once. Doubled
/// letters stay ("tree", "ee" for yes), and digits stay (account numbers).
fn squeeze_repeats(word: &str) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&d| d == c).count();
        let kept = if run >= 3 && c.is_alphabetic() {
            1
        } else {
            run
        };
        out.extend(std::iter::repeat_n(c, kept));
        i += run;
    }
    out
}

/// South African Sesotho spellings of the same sounds, which customers near the border use:
/// "tjh" is Lesotho "ch" ("tjhesa", "chesa") and "kg" is "kh" ("kgaohile", "khaohile").
fn lesotho_spelling(word: &str) -> String {
    word.replace("tjh", "ch").replace("kg", "kh")
}

fn apply_phrase_aliases(words: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    'words: while i < words.len() {
        for (from, to) in PHRASE_ALIASES {
            let from: Vec<&str> = from.split(' ').collect();
            let fits = words.len() - i >= from.len()
                && words[i..i + from.len()]
                    .iter()
                    .zip(&from)
                    .all(|(w, f)| w == f);
            if fits {
                out.extend(to.split(' ').map(str::to_string));
                i += from.len();
                continue 'words;
            }
        }
        out.push(words[i].clone());
        i += 1;
    }
    out
}

/// Whether `word` is one of the whitespace-separated words of `list`.
fn is_listed(list: &str, word: &str) -> bool {
    list.split_whitespace().any(|listed| listed == word)
}

fn detect_language(tokens: &[&str]) -> Language {
    let sesotho = tokens
        .iter()
        .filter(|t| is_listed(SESOTHO_WORDS, t))
        .count();
    let english = tokens
        .iter()
        .filter(|t| is_listed(ENGLISH_WORDS, t))
        .count();
    match (sesotho, english) {
        (0, 0) => Language::Unknown,
        (s, e) if s.min(e) * 3 >= s.max(e) => Language::Mixed,
        (s, e) if s > e => Language::Sesotho,
        _ => Language::English,
    }
}

/// The patterns of `table` that match the message, in table order.
fn matching(table: &'static [&'static str], tokens: &[&str]) -> Vec<&'static str> {
    table
        .iter()
        .copied()
        .filter(|pattern| pattern_matches(pattern, tokens))
        .collect()
}

fn pattern_matches(pattern: &str, tokens: &[&str]) -> bool {
    pattern
        .split(" + ")
        .all(|part| contains_phrase(part, tokens))
}

fn contains_phrase(phrase: &str, tokens: &[&str]) -> bool {
    let words: Vec<&str> = phrase.split(' ').collect();
    tokens.windows(words.len()).any(|window| {
        window
            .iter()
            .zip(&words)
            .all(|(token, word)| word_matches(word, token))
    })
}

fn word_matches(word: &str, token: &str) -> bool {
    word.split('/')
        .any(|alternative| match alternative.strip_suffix('*') {
            Some(prefix) => token.starts_with(prefix),
            None => token == alternative,
        })
}

/// The customer's words for the summary, on one line, without double quotes (the summary quotes
/// them), cut at [`EXCERPT_CHARS`].
fn excerpt(text: &str) -> Option<String> {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let line = line.replace('"', "'");
    if line.is_empty() {
        return None;
    }
    if line.chars().count() <= EXCERPT_CHARS {
        return Some(line);
    }
    let cut: String = line.chars().take(EXCERPT_CHARS - 1).collect();
    Some(format!("{}…", cut.trim_end()))
}

fn fault_summary(start: &str, language: Language, excerpt: Option<&str>) -> String {
    let language = match language {
        Language::Sesotho => " (Sesotho message)",
        Language::English => " (English message)",
        Language::Mixed => " (Sesotho and English message)",
        Language::Unknown => "",
    };
    match excerpt {
        Some(words) => format!("{start}{language}: \"{words}\"."),
        None => format!("{start}{language}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use Category::*;
    use Priority::*;

    /// Message, category, priority, needs_ticket, ask_for_info.
    type Case = (&'static str, Category, Priority, bool, bool);

    // One message a line reads as the table it is; rustfmt would spread each over seven lines.
    #[rustfmt::skip]
    const MESSAGES: &[Case] = &[
        // Outages, Sesotho.
        ("Lumela, ha ke na motlakase ho tloha maobane", NoPower, P1, true, false),
        ("Hakena motlakasi from yesterday pls", NoPower, P1, true, false),
        ("hake na motlakase ntate, 0012SHG", NoPower, P1, true, false),
        ("Ha ho motlakase mona Ha Makebe", NoPower, P1, true, false),
        ("Motlakase o tsamaile hape", NoPower, P1, true, false),
        ("MABONE A TIMILE KAOFELA MOTSENG", NoPower, P1, true, false),
        ("Motlakase o timile hoseng hona 😡", NoPower, P1, true, false),
        ("ntate re lefifing ka nako ena, 0045MAK", NoPower, P1, true, false),
        ("Haho motlakase ka ntlong ea ka, account ke 0123MAT", NoPower, P1, true, false),
        ("Ha re na mabone ho tloha bosiu", NoPower, P1, true, false),
        ("ha kena motlakase, ke kopa thuso", NoPower, P1, true, false),
        // Outages, English and mixed.
        ("No power since morning. Acc 0045MAK", NoPower, P1, true, false),
        ("we have no electricity in the whole village!!!", NoPower, P1, true, false),
        ("Power is off at my house plz help asap", NoPower, P1, true, false),
        ("BLACKOUT in Ha Nkau since 6pm", NoPower, P1, true, false),
        ("lights went off and never came back", NoPower, P1, true, false),
        ("Hi there, there's an outage at Ribaneng", NoPower, P1, true, false),
        ("i dont have electricty", NoPower, P1, true, false),
        ("power outrage again 😤", NoPower, P1, true, false),
        ("Hello ntate, ha ke na power since yesterday", NoPower, P1, true, false),
        ("nooo powerrr at 0078LEB!!", NoPower, P1, true, false),
        // Danger.
        ("There are sparks coming from the pole near my house", EquipmentFailure, P1, true, false),
        ("Mohala o chesa, ho na le mosi!", EquipmentFailure, P1, true, false),
        ("the meter is burning and there is smoke", EquipmentFailure, P1, true, false),
        ("Wire down on the road near the school, very dangerous", EquipmentFailure, P1, true, false),
        ("Pole fell after the storm last night, no power", EquipmentFailure, P1, true, false),
        ("Ho na le mollo palong", EquipmentFailure, P1, true, false),
        ("mohala o oele fatshe", EquipmentFailure, P1, true, false),
        ("FIRE AT THE TRANSFORMER!!!", EquipmentFailure, P1, true, false),
        ("my neighbour got electric shock from the wire", EquipmentFailure, P1, true, false),
        ("mohala o kgaohile ka pela ntlo", EquipmentFailure, P1, true, false),
        // Equipment faults without danger.
        ("The transformer is making a loud noise", EquipmentFailure, P2, true, false),
        ("Lights flickering the whole evening", EquipmentFailure, P2, true, false),
        ("power goes on and off all day", EquipmentFailure, P2, true, false),
        ("my ready board is not working", EquipmentFailure, P2, true, false),
        ("Pole is leaning badly after rain", EquipmentFailure, P2, true, false),
        ("mohala o leketlile haholo", EquipmentFailure, P2, true, false),
        // Meters, tokens, units.
        ("My meter is not working", MeterIssue, P2, true, false),
        ("Mitara ea ka ha e sebetse", MeterIssue, P2, true, false),
        ("Token not accepted, it says error 😩 0045MAK", MeterIssue, P2, true, false),
        ("I bought units but they are not loading", MeterIssue, P2, true, false),
        ("meter shows ---- and beeping", MeterIssue, P2, true, false),
        ("Ke rekile units empa ha li kene", MeterIssue, P2, true, false),
        ("metara e bontsha error", MeterIssue, P2, true, false),
        ("recharged but units did not show on meter", MeterIssue, P2, true, false),
        ("Token ea ka e hana", MeterIssue, P2, true, false),
        ("invalid token, pls check", MeterIssue, P2, true, false),
        ("My meter shows wrong balance", MeterIssue, P2, true, false),
        // Billing: no ticket unless raised before.
        ("Why was I charged twice for the same token?", Billing, P3, false, false),
        ("My balance is wrong", Billing, P3, false, false),
        ("I was overcharged this month", Billing, P3, false, false),
        ("Chelete ea ka e nkuoe empa ha ke fumane letho", Billing, P3, false, false),
        ("I paid via m-pesa twice, I need a refund", Billing, P3, false, false),
        ("Still waiting for my refund, this is the 3rd time I ask", Billing, P3, true, false),
        ("Ke se ke tletlebile hape ka chelete ea ka", Billing, P3, true, false),
        ("Tefo ea ka e fosahetse khafetsa", Billing, P3, true, false),
        ("wrong balance AGAIN!!", Billing, P3, true, false),
        // Vegetation.
        ("Tree branches are touching the power line", Vegetation, P3, true, false),
        ("Lifate li ama mehala", Vegetation, P3, true, false),
        ("sefate se haufi le mohala, ka kopo le tle le se reme", Vegetation, P3, true, false),
        ("big tree on the line near the clinic", Vegetation, P3, true, false),
        // Installation.
        ("I want a new connection for my house", Installation, P4, true, false),
        ("Please connect my house, I have paid the connection fee", Installation, P4, true, false),
        ("Ke batla ho hokeloa motlakase ntlong ea ka e ncha", Installation, P4, true, false),
        ("how much is a new conection?", Installation, P4, true, false),
        // Vandalism.
        ("Somebody stole the cable last night", Vandalism, P2, true, false),
        ("Mehala e utsoitsoe bosiung bona", Vandalism, P2, true, false),
        ("Meter box was vandalised", Vandalism, P2, true, false),
        ("masholu a utsoitse lithapo", Vandalism, P2, true, false),
        ("My neighbour is bypassing his meter", Vandalism, P2, true, false),
        // Complaints.
        ("Your technician was very rude to my mother", Complaint, P3, true, false),
        ("Bad service, nobody answers the phone", Complaint, P3, true, false),
        ("Litšebeletso tsa lona li mpe haholo", Complaint, P3, true, false),
        ("Ke halefile, ha le arabe mehala", Complaint, P3, true, false),
        // Questions.
        ("How much is one unit of electricity?", GeneralInquiry, P4, false, false),
        ("Motlakase ke bokae ka unit?", GeneralInquiry, P4, false, false),
        ("What are your opening hours?", GeneralInquiry, P4, false, false),
        ("Ofisi ea lona e bula neng?", GeneralInquiry, P4, false, false),
        ("Where can I buy tokens?", GeneralInquiry, P4, false, false),
        ("Lumela, ke kopa ho botsa hore unit e bokae", GeneralInquiry, P4, false, false),
        // Greetings and thanks.
        ("Hi", GeneralInquiry, P4, false, false),
        ("Lumela", GeneralInquiry, P4, false, false),
        ("hello 👋", GeneralInquiry, P4, false, false),
        ("Kea leboha ntate 🙏", GeneralInquiry, P4, false, false),
        ("Good morning sir", GeneralInquiry, P4, false, false),
        ("👍", GeneralInquiry, P4, false, false),
        // Vague: ask for details.
        ("There is a problem", GeneralInquiry, P3, false, true),
        ("Ho na le bothata", GeneralInquiry, P3, false, true),
        ("please help asap", GeneralInquiry, P3, false, true),
        ("0045MAK", GeneralInquiry, P3, false, true),
        ("It's not working", GeneralInquiry, P3, false, true),
        ("ha ke na chelete ea ho reka motlakase", GeneralInquiry, P3, false, true),
        // Several categories: precedence and the most urgent priority.
        ("No power and the staff were rude when I called", NoPower, P1, true, false),
        ("Tree fell on the wire, sparks everywhere", EquipmentFailure, P1, true, false),
        ("My balance is wrong and your staff were rude", Billing, P3, true, false),
        ("How much to fix the tree near my line?", Vegetation, P3, true, false),
        ("Still no new connection after 3 months, nobody answers", Installation, P3, true, false),
    ];

    #[test]
    fn each_test_message_gets_its_expected_triage() {
        let mut wrong = Vec::new();
        for &(text, category, priority, needs_ticket, ask_for_info) in MESSAGES {
            let triage = classify(text);
            let got = (
                triage.category,
                triage.priority,
                triage.needs_ticket,
                triage.ask_for_info,
            );
            if got != (category, priority, needs_ticket, ask_for_info) {
                wrong.push(format!(
                    "{text:?}: expected {category} {priority} ticket={needs_ticket} ask={ask_for_info}, \
                     got {} {} ticket={} ask={} (matched {:?})",
                    got.0, got.1, got.2, got.3, triage.matched
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_test_table_has_at_least_sixty_messages_and_covers_every_category() {
        assert!(MESSAGES.len() >= 60, "{} messages", MESSAGES.len());
        for category in Category::ALL {
            assert!(
                MESSAGES.iter().any(|case| case.1 == category),
                "no message of {category}"
            );
        }
    }

    #[test]
    fn a_sesotho_outage_report_is_p1_no_power() {
        let triage = classify("Ha ke na motlakase ho tloha maobane");
        assert_eq!(triage.category, NoPower);
        assert_eq!(triage.priority, P1);
        assert!(triage.needs_ticket);
        assert_eq!(triage.language, Language::Sesotho);
        assert_eq!(
            triage.matched,
            ["ha ke/re/ho na motlakase/mabone/power/electricity/lights"]
        );
    }

    #[test]
    fn a_question_about_the_price_of_motlakase_is_not_an_outage() {
        let question = classify("Motlakase ke bokae?");
        assert_eq!(question.category, GeneralInquiry);
        assert!(!question.needs_ticket);
        let outage = classify("Ha ke na motlakase");
        assert_eq!(outage.category, NoPower);
    }

    #[test]
    fn having_no_money_for_electricity_is_not_an_outage() {
        let triage = classify("Ha ke na chelete ea ho reka motlakase");
        assert_ne!(triage.category, NoPower);
        assert!(!triage.needs_ticket);
    }

    #[test]
    fn danger_outranks_an_outage_and_keeps_both_in_the_evidence() {
        let triage = classify("No power and there are sparks at the pole");
        assert_eq!(triage.category, EquipmentFailure);
        assert_eq!(triage.priority, P1);
        assert_eq!(
            triage.matched,
            [
                "spark*",
                "no power/electricity/current/lights/light/supply/motlakase/mabone"
            ]
        );
    }

    #[test]
    fn an_outage_outranks_a_meter_problem() {
        let triage = classify("no power and my meter shows error");
        assert_eq!(triage.category, NoPower);
        assert_eq!(triage.priority, P1);
    }

    #[test]
    fn vandalism_outranks_a_meter_problem() {
        let triage = classify("thieves stole my meter, it is not working");
        assert_eq!(triage.category, Vandalism);
        assert_eq!(triage.priority, P2);
    }

    #[test]
    fn the_priority_is_the_most_urgent_of_all_matched_rules() {
        // Installation (P4) decides the category over a complaint, whose P3 is more urgent.
        let triage = classify("I asked for a new connection and your staff were rude");
        assert_eq!(triage.category, Installation);
        assert_eq!(triage.priority, P3);
        // Billing decides over a complaint, but the complaint asks for the ticket.
        let triage = classify("wrong balance and the lady at the office was rude");
        assert_eq!(triage.category, Billing);
        assert!(triage.needs_ticket);
    }

    #[test]
    fn a_meter_problem_outranks_billing_but_a_billing_question_alone_has_no_ticket() {
        assert_eq!(classify("meter shows wrong balance").category, MeterIssue);
        let billing = classify("my balance is wrong");
        assert_eq!((billing.category, billing.needs_ticket), (Billing, false));
    }

    #[test]
    fn escalation_words_open_a_ticket_only_for_billing() {
        let billing = classify("I was overcharged again");
        assert!(billing.needs_ticket);
        assert!(billing.matched.contains(&"again".to_string()));
        assert_eq!(
            billing.fault_summary,
            "Customer reports a billing problem again (English message): \"I was overcharged again\"."
        );
        let question = classify("how much is a unit again?");
        assert_eq!(question.category, GeneralInquiry);
        assert!(!question.needs_ticket);
    }

    #[test]
    fn a_greeting_alone_is_a_general_inquiry_without_a_question_back() {
        for greeting in [
            "hi",
            "Lumela!",
            "HELLO",
            "lumelang bo-ntate",
            "Khotso ntate 🙏",
            "ok thanks",
            "Dumela mme",
        ] {
            let triage = classify(greeting);
            assert_eq!(triage.category, GeneralInquiry, "{greeting}");
            assert!(!triage.ask_for_info, "{greeting}");
            assert!(!triage.needs_ticket, "{greeting}");
            assert_eq!(triage.priority, P4, "{greeting}");
        }
    }

    #[test]
    fn a_vague_problem_asks_for_details_and_opens_no_ticket() {
        for vague in [
            "there is a problem",
            "Ho na le bothata",
            "help pls",
            "not working",
        ] {
            let triage = classify(vague);
            assert!(triage.ask_for_info, "{vague}");
            assert!(!triage.needs_ticket, "{vague}");
            assert_eq!(triage.category, GeneralInquiry, "{vague}");
            assert!(
                !triage.matched.is_empty(),
                "{vague}: the vague words are the evidence"
            );
        }
    }

    #[test]
    fn only_an_unclassified_message_asks_for_info_and_it_never_opens_a_ticket() {
        for &(text, ..) in MESSAGES {
            let triage = classify(text);
            if triage.ask_for_info {
                assert!(!triage.needs_ticket, "{text:?}");
                assert_eq!(triage.category, GeneralInquiry, "{text:?}");
                assert_eq!(triage.priority, P3, "{text:?}");
            }
        }
    }

    #[test]
    fn classification_is_deterministic() {
        for &(text, ..) in MESSAGES {
            assert_eq!(classify(text), classify(text), "{text:?}");
        }
    }

    #[test]
    fn normalising_lowers_case_drops_punctuation_and_folds_variants() {
        assert_eq!(
            normalise("HA KENA Motlakasi!!! 😡"),
            ["ha", "ke", "na", "motlakase"]
        );
        assert_eq!(
            normalise("I don't have power"),
            ["i", "do", "not", "have", "power"]
        );
        assert_eq!(normalise("Litšebeletso"), ["tsebeletso"]);
        assert_eq!(normalise("tjhesa kgaohile"), ["chesa", "khaohile"]);
        assert_eq!(normalise("nooo   powerrr"), ["no", "power"]);
        assert_eq!(normalise("tree 0045MAK"), ["tree", "0045mak"]);
        assert_eq!(normalise("power on and off"), ["power", "intermittent"]);
        assert_eq!(normalise("MITARA"), ["meter"]);
    }

    #[test]
    fn aliases_produce_spellings_that_no_alias_rewrites_again() {
        for (_, to) in TOKEN_ALIASES.iter().chain(PHRASE_ALIASES) {
            let words: Vec<String> = to.split(' ').map(str::to_string).collect();
            assert_eq!(normalise(to), words, "alias output {to:?} is not canonical");
        }
    }

    #[test]
    fn every_table_pattern_can_match_a_normalised_message() {
        let tables = RULES
            .iter()
            .map(|rule| rule.patterns)
            .chain([ESCALATION, VAGUE_PROBLEM]);
        for table in tables {
            for pattern in table {
                // The pattern's own words, first alternatives, stars removed: if normalising them
                // changes them, the pattern is not in the normalised spelling and never matches.
                let text = pattern
                    .split(" + ")
                    .flat_map(|part| part.split(' '))
                    .map(|word| word.split('/').next().unwrap_or(word).trim_end_matches('*'))
                    .collect::<Vec<_>>()
                    .join(" ");
                let tokens = normalise(&text);
                let tokens: Vec<&str> = tokens.iter().map(String::as_str).collect();
                assert!(
                    pattern_matches(pattern, &tokens),
                    "{pattern:?} does not match its own words {text:?}"
                );
                for alternative in pattern.split([' ', '/']) {
                    let word = alternative.trim_end_matches('*');
                    assert!(
                        word == "+"
                            || (!word.is_empty()
                                && word
                                    .chars()
                                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                                && normalise(word) == [word]),
                        "{pattern:?}: {alternative:?} is not a normalised word"
                    );
                }
            }
        }
    }

    #[test]
    fn a_pattern_part_must_follow_in_order_but_parts_may_come_anywhere() {
        let tokens = ["the", "meter", "is", "not", "working"];
        assert!(pattern_matches("meter + not working", &tokens));
        assert!(pattern_matches("not working + meter", &tokens));
        assert!(!pattern_matches("working not", &tokens));
        assert!(pattern_matches("meter/token is", &tokens));
        assert!(pattern_matches("work*", &tokens));
        assert!(!pattern_matches("meters", &tokens));
    }

    #[test]
    fn the_language_is_sesotho_english_mixed_or_unknown() {
        assert_eq!(
            classify("Ha ke na motlakase ho tloha maobane").language,
            Language::Sesotho
        );
        assert_eq!(
            classify("There is no power in the village").language,
            Language::English
        );
        assert_eq!(
            classify("ha ke na power since yesterday").language,
            Language::Mixed
        );
        assert_eq!(classify("0045MAK").language, Language::Unknown);
        assert_eq!(classify("👍").language, Language::Unknown);
    }

    #[test]
    fn the_fault_summary_names_the_problem_the_language_and_quotes_the_customer() {
        assert_eq!(
            classify("Ha ke na motlakase").fault_summary,
            "Customer reports no power (Sesotho message): \"Ha ke na motlakase\"."
        );
        assert_eq!(
            classify("sparks at the pole").fault_summary,
            "Customer reports dangerous equipment damage (English message): \"sparks at the pole\"."
        );
        assert_eq!(
            classify("Lumela").fault_summary,
            "Customer sent a greeting (Sesotho message)."
        );
    }

    #[test]
    fn the_fault_summary_quotes_at_most_eighty_characters_on_one_line() {
        let long = format!("No power \"here\"\nsince {}", "yesterday ".repeat(20));
        let summary = classify(&long).fault_summary;
        let quoted = summary
            .split_once(": \"")
            .and_then(|(_, rest)| rest.strip_suffix("\"."))
            .expect("the summary quotes the message");
        assert!(quoted.chars().count() <= EXCERPT_CHARS, "{quoted:?}");
        assert!(quoted.ends_with('…'));
        assert!(quoted.starts_with("No power 'here' since"));
        assert!(!summary.contains('\n'));
    }

    #[test]
    fn a_triage_serialises_with_the_legacy_strings() {
        let triage = classify("Ha ke na motlakase");
        let json = serde_json::to_value(&triage).expect("a triage serialises");
        assert_eq!(json["category"], "no-power");
        assert_eq!(json["priority"], "P1");
        assert_eq!(json["language"], "sesotho");
        assert_eq!(json["needs_ticket"], true);
        let back: Triage = serde_json::from_value(json).expect("and reads back");
        assert_eq!(back, triage);
    }

    #[test]
    fn languages_round_trip_through_their_strings() {
        for language in Language::ALL {
            assert_eq!(language.as_str().parse::<Language>(), Ok(language));
            assert_eq!(serde_json::to_value(language).unwrap(), language.as_str());
        }
    }

    fn all_replies() -> Vec<(String, String)> {
        let mut replies: Vec<(String, String)> = Category::ALL
            .into_iter()
            .map(|c| {
                (
                    format!("ticket opened ({c})"),
                    ticket_opened_reply("MAK-2026-0065", c),
                )
            })
            .collect();
        replies.extend([
            ("ask for details".to_string(), ask_for_details_reply()),
            ("ask for account".to_string(), ask_for_account_reply()),
            ("media only".to_string(), media_only_reply()),
            ("general".to_string(), general_reply()),
            (
                "ticket updated".to_string(),
                ticket_updated_reply("MAK-2026-0065"),
            ),
            ("received".to_string(), received_reply()),
        ]);
        replies
    }

    fn sentences(paragraph: &str) -> usize {
        paragraph
            .split_inclusive(['.', '!', '?'])
            .filter(|s| s.trim().len() > 1)
            .count()
    }

    #[test]
    fn every_reply_is_sesotho_then_a_blank_line_then_english_in_one_to_three_sentences() {
        for (name, reply) in all_replies() {
            let paragraphs: Vec<&str> = reply.split("\n\n").collect();
            assert_eq!(paragraphs.len(), 2, "{name}: {reply:?}");
            let (sesotho, english) = (paragraphs[0], paragraphs[1]);
            assert_eq!(
                detect_language(
                    &normalise(sesotho)
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                ),
                Language::Sesotho,
                "{name}: {sesotho:?}"
            );
            assert_eq!(
                detect_language(
                    &normalise(english)
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                ),
                Language::English,
                "{name}: {english:?}"
            );
            for paragraph in paragraphs {
                assert!(!paragraph.contains('\n'), "{name}: {paragraph:?}");
                assert!(
                    (1..=3).contains(&sentences(paragraph)),
                    "{name}: {paragraph:?}"
                );
            }
        }
    }

    #[test]
    fn the_ticket_replies_name_the_ticket_in_bold_in_both_languages() {
        let replies = Category::ALL
            .into_iter()
            .map(|c| ticket_opened_reply("MAK-2026-0065", c))
            .chain([ticket_updated_reply("MAK-2026-0065")]);
        for reply in replies {
            let (sesotho, english) = reply.split_once("\n\n").expect("two paragraphs");
            assert!(sesotho.contains("*MAK-2026-0065*"), "{sesotho:?}");
            assert!(english.contains("*MAK-2026-0065*"), "{english:?}");
        }
        assert!(ticket_opened_reply("MAK-2026-0065", NoPower)
            .starts_with("Tikete ea hao *MAK-2026-0065* e thehiloe."));
    }

    #[test]
    fn a_dangerous_fault_reply_tells_the_customer_to_keep_away() {
        let reply = ticket_opened_reply("LEB-2026-0001", EquipmentFailure);
        assert!(reply.contains("u se ke ua atamela"), "{reply}");
        assert!(reply.contains("keep away"), "{reply}");
    }

    #[test]
    fn the_account_request_gives_an_example_account_number() {
        let reply = ask_for_account_reply();
        let (sesotho, english) = reply.split_once("\n\n").expect("two paragraphs");
        assert!(sesotho.contains("0045MAK") && sesotho.contains("motse"));
        assert!(english.contains("0045MAK") && english.contains("village"));
    }
}
