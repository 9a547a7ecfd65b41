//! Configuration from the environment: every setting ccare reads, its default, and its check.
//!
//! A missing or malformed setting stops start-up with one line naming it (`ConfigError`'s Display).
//! Nothing else in the workspace reads environment variables.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A setting that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration error: {} {}", self.var, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Where the ACDB is read from: `ACDB_DSN` (an ODBC connection string) or `ACDB_FILE` (an
/// `.accdb`/`.mdb` file read without ODBC).
pub use adapters::acdb::AcdbLocation;

/// All of ccare's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `DATABASE_URL`: the PostgreSQL server; unset means a private cluster under the data directory.
    pub database_url: Option<String>,
    /// `ACDB_DSN` or `ACDB_FILE`; unset means the demo's synthetic ACDB (only `ccare demo` accepts that).
    pub acdb: Option<AcdbLocation>,
    /// `NATS_URL`: optional; without it events flow in-process.
    pub nats_url: Option<String>,
    /// `CCARE_NATS_STREAM`: the JetStream stream (and first subject token) of the log (default
    /// `CCARE_EVENTS`).
    pub nats_stream: String,
    /// `CCARE_DATA_DIR`: the private cluster, the demo's ACDB and other local state (default `.ccare`).
    pub data_dir: PathBuf,
    /// `CCARE_LISTEN`: the HTTP address (default 127.0.0.1:8080).
    pub listen: SocketAddr,
    /// `CCARE_CDC_POLL_INTERVAL`: time between change-capture cycles (default 5s).
    pub cdc_poll_interval: Duration,
    /// `CCARE_CDC_RECONCILE_INTERVAL`: time between reconciliation passes (default 1h).
    pub cdc_reconcile_interval: Duration,
    /// `CCARE_CDC_TABLES`: the ACDB tables to capture (default: all known tables).
    pub cdc_tables: Option<Vec<String>>,
    /// `CCARE_CDC_SAFETY_SHARE`: the share of a table's rows one cycle may delete or rewrite
    /// before the table is paused for an operator (default 0.2).
    pub cdc_safety_share: f64,
    /// `CCARE_PG_BIN`: the directory of the PostgreSQL server binaries for the private cluster
    /// (default: the newest under /usr/lib/postgresql).
    pub pg_bin: Option<PathBuf>,
    /// `CCARE_LOG`: the log filter (default `info,odbc_api=error`).
    pub log_filter: String,
    /// `CCARE_LOG_FORMAT`: `text` (default) or `json`.
    pub log_json: bool,
    /// `CCARE_JWT_SECRET`: the token signing secret, at least 32 bytes. No default: the api
    /// role refuses to start without it (`ccare demo` generates one under the data directory).
    pub jwt_secret: Option<String>,
    /// `CCARE_JWT_TTL`: how long a token stays valid (default 8h, the legacy lifetime).
    pub jwt_ttl: Duration,
    /// `WHATSAPP_VERIFY_TOKEN` and `WHATSAPP_APP_SECRET`, set together or not at all: the
    /// WhatsApp Cloud API webhook. Unset, its routes answer 404 and the bridge role does not run.
    pub whatsapp: Option<WhatsAppSettings>,
    /// What the bridge sends with and forwards to (all optional).
    pub bridge: BridgeSettings,
}

/// The bridge's outbound services and behaviour. Each service is configured whole or not at all.
#[derive(Debug, Clone)]
pub struct BridgeSettings {
    /// `WHATSAPP_ACCESS_TOKEN`, `WHATSAPP_PHONE_NUMBER_ID` and `WHATSAPP_API_URL` (default the
    /// Graph API base with its version): where replies are sent. Unset, replies wait in the
    /// outbox until they are set.
    pub cloud_api: Option<bridge::whatsapp::CloudApiConfig>,
    /// `WHATSAPP_REPLY_TEMPLATE`, `WHATSAPP_OPS_TEMPLATE`, `WHATSAPP_TEMPLATE_LANGUAGE`: the
    /// approved templates (defaults `ccare_reply`, `ccare_ops_ticket`, `en`).
    pub templates: bridge::senders::Templates,
    /// `UGRIDPLAN_URL` (the API base, e.g. `https://…/api`), `UGRIDPLAN_USER`,
    /// `UGRIDPLAN_PASSWORD`: where tickets are forwarded. Unset, they are not.
    pub ugridplan: Option<bridge::ugridplan::UgridplanConfig>,
    /// `LLM_URL`, `LLM_API_KEY`, `LLM_MODEL`: the optional OpenAI-compatible triage endpoint.
    pub llm: Option<bridge::llm::LlmConfig>,
    /// `CCARE_OPS_RECIPIENTS`: comma-separated phone numbers of the operations team, told of
    /// every new ticket through the operations template.
    pub ops_recipients: Vec<domain::phone::PhoneNumber>,
    /// `CCARE_BRIDGE_FOLLOW_UP_WINDOW`: how long after the last exchange a message is a
    /// follow-up of the open ticket (default 30m).
    pub follow_up_window: Duration,
    /// `CCARE_BRIDGE_REPLY_SPACING`: the least time between two replies to one customer
    /// (default 3s; replies beyond it are queued, never dropped).
    pub reply_spacing: Duration,
}

/// The secrets of the WhatsApp Cloud API webhook, both non-empty.
#[derive(Clone, PartialEq, Eq)]
pub struct WhatsAppSettings {
    /// `WHATSAPP_VERIFY_TOKEN`: the token Meta's verify handshake must carry.
    pub verify_token: String,
    /// `WHATSAPP_APP_SECRET`: the Meta app secret, the HMAC key of every delivery's signature.
    pub app_secret: String,
}

/// Redacted: settings are logged and printed, secrets must not be.
impl fmt::Debug for WhatsAppSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WhatsAppSettings")
            .field("verify_token", &"<redacted>")
            .field("app_secret", &"<redacted>")
            .finish()
    }
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Reads the bridge's settings (see [`BridgeSettings`]).
fn bridge_settings(
    get: &dyn Fn(&str) -> Option<String>,
    duration: &dyn Fn(&'static str, &str, Duration) -> Result<Duration, ConfigError>,
) -> Result<BridgeSettings, ConfigError> {
    let error = |var: &'static str, problem: String| ConfigError { var, problem };
    let api_url = get("WHATSAPP_API_URL");
    if let Some(url) = &api_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(error(
                "WHATSAPP_API_URL",
                format!("={url:?} must be an http:// or https:// URL (the Graph API base with its version)"),
            ));
        }
    }
    let cloud_api = match (
        get("WHATSAPP_ACCESS_TOKEN"),
        get("WHATSAPP_PHONE_NUMBER_ID"),
    ) {
        (Some(token), Some(phone_number_id)) => {
            if !phone_number_id.bytes().all(|b| b.is_ascii_digit()) {
                return Err(error(
                    "WHATSAPP_PHONE_NUMBER_ID",
                    format!("={phone_number_id:?} must be Meta's numeric id of the business number (not the number itself)"),
                ));
            }
            let mut config = bridge::whatsapp::CloudApiConfig::new(token, phone_number_id);
            if let Some(url) = api_url {
                config.api_url = url;
            }
            Some(config)
        }
        (None, None) => None,
        (Some(_), None) => {
            return Err(error(
                "WHATSAPP_PHONE_NUMBER_ID",
                "is not set, but WHATSAPP_ACCESS_TOKEN is: replies need both".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(error(
                "WHATSAPP_ACCESS_TOKEN",
                "is not set, but WHATSAPP_PHONE_NUMBER_ID is: replies need both".into(),
            ))
        }
    };
    let defaults = bridge::senders::Templates::default();
    let templates = bridge::senders::Templates {
        reply: get("WHATSAPP_REPLY_TEMPLATE").unwrap_or(defaults.reply),
        ops_notice: get("WHATSAPP_OPS_TEMPLATE").unwrap_or(defaults.ops_notice),
        language: get("WHATSAPP_TEMPLATE_LANGUAGE").unwrap_or(defaults.language),
    };
    let ugridplan = match (
        get("UGRIDPLAN_URL"),
        get("UGRIDPLAN_USER"),
        get("UGRIDPLAN_PASSWORD"),
    ) {
        (None, None, None) => None,
        (Some(url), Some(user), Some(password)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(error(
                    "UGRIDPLAN_URL",
                    format!("={url:?} must be an http:// or https:// URL (the API base, e.g. https://ugp.example.org/api)"),
                ));
            }
            Some(bridge::ugridplan::UgridplanConfig::new(url, user, password))
        }
        (url, user, _) => {
            let missing = if url.is_none() {
                "UGRIDPLAN_URL"
            } else if user.is_none() {
                "UGRIDPLAN_USER"
            } else {
                "UGRIDPLAN_PASSWORD"
            };
            return Err(error(
                missing,
                "is not set, but other UGRIDPLAN_ settings are: forwarding needs UGRIDPLAN_URL, UGRIDPLAN_USER and UGRIDPLAN_PASSWORD".into(),
            ));
        }
    };
    let llm =
        bridge::llm::LlmConfig::from_parts(get("LLM_URL"), get("LLM_API_KEY"), get("LLM_MODEL"))
            .map_err(|problem| {
                if problem.contains("LLM_MODEL is not") {
                    error(
                        "LLM_MODEL",
                        "is not set, but LLM_URL is: set it to the model the endpoint serves"
                            .into(),
                    )
                } else {
                    let problem = problem.strip_prefix("LLM_URL ").unwrap_or(&problem);
                    error("LLM_URL", problem.to_string())
                }
            })?;
    let mut ops_recipients = Vec::new();
    for raw in get("CCARE_OPS_RECIPIENTS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        let phone = domain::phone::PhoneNumber::parse(raw).map_err(|e| {
            error(
                "CCARE_OPS_RECIPIENTS",
                format!("holds {raw:?}, which is not a phone number: {e}"),
            )
        })?;
        ops_recipients.push(phone);
    }
    Ok(BridgeSettings {
        cloud_api,
        templates,
        ugridplan,
        llm,
        ops_recipients,
        follow_up_window: duration(
            "CCARE_BRIDGE_FOLLOW_UP_WINDOW",
            "30m",
            Duration::from_secs(60),
        )?,
        reply_spacing: duration("CCARE_BRIDGE_REPLY_SPACING", "3s", Duration::ZERO)?,
    })
}

/// The shortest `CCARE_JWT_SECRET` accepted.
pub const MIN_JWT_SECRET_BYTES: usize = api::MIN_SECRET_BYTES;

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Reads the given variables (tests pass their own).
    pub fn from_vars(vars: HashMap<String, String>) -> Result<Self, ConfigError> {
        // An empty variable is treated as unset: `FOO= ccare ...` is how people clear a setting.
        let get = |name: &str| {
            vars.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };

        let database_url = get("DATABASE_URL")
            .map(|url| {
                if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                    Ok(url)
                } else {
                    Err(ConfigError {
                        var: "DATABASE_URL",
                        problem: "must be a postgres:// or postgresql:// URL".into(),
                    })
                }
            })
            .transpose()?;

        let acdb = match (get("ACDB_DSN"), get("ACDB_FILE")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError {
                    var: "ACDB_FILE",
                    problem: "is set together with ACDB_DSN; set only one of them".into(),
                })
            }
            (Some(dsn), None) => {
                if !dsn.contains('=') {
                    return Err(ConfigError {
                        var: "ACDB_DSN",
                        problem: format!(
                            "={dsn:?} is not an ODBC connection string (expected e.g. Driver=SQLite3;Database=acdb.sqlite)"
                        ),
                    });
                }
                Some(AcdbLocation::Odbc(dsn))
            }
            (None, Some(file)) => {
                let path = PathBuf::from(&file);
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_ascii_lowercase);
                if !matches!(ext.as_deref(), Some("accdb" | "mdb")) {
                    return Err(ConfigError {
                        var: "ACDB_FILE",
                        problem: format!("={file:?} must name an .accdb or .mdb file"),
                    });
                }
                if !path.is_file() {
                    return Err(ConfigError {
                        var: "ACDB_FILE",
                        problem: format!("={file:?}: no such file"),
                    });
                }
                Some(AcdbLocation::File(path))
            }
            (None, None) => None,
        };

        let nats_url = get("NATS_URL")
            .map(|url| {
                let ok =
                    url.starts_with("nats://") || url.starts_with("tls://") || url.contains(':');
                if ok {
                    Ok(url)
                } else {
                    Err(ConfigError {
                        var: "NATS_URL",
                        problem: format!(
                            "={url:?} is not a NATS address (expected e.g. nats://127.0.0.1:4222)"
                        ),
                    })
                }
            })
            .transpose()?;

        let nats_stream =
            get("CCARE_NATS_STREAM").unwrap_or_else(|| adapters::nats::DEFAULT_STREAM.into());
        if !adapters::nats::NatsConfig::valid_stream_name(&nats_stream) {
            return Err(ConfigError {
                var: "CCARE_NATS_STREAM",
                problem: format!(
                    "={nats_stream:?} is not a stream name (letters, digits, - and _, at most 64)"
                ),
            });
        }

        let data_dir = PathBuf::from(get("CCARE_DATA_DIR").unwrap_or_else(|| ".ccare".into()));

        let listen_raw = get("CCARE_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen_raw.parse().map_err(|_| ConfigError {
            var: "CCARE_LISTEN",
            problem: format!(
                "={listen_raw:?} is not a socket address (expected e.g. {DEFAULT_LISTEN})"
            ),
        })?;

        let duration =
            |var: &'static str, default: &str, min: Duration| -> Result<Duration, ConfigError> {
                let raw = get(var).unwrap_or_else(|| default.into());
                let d = humantime::parse_duration(&raw).map_err(|_| ConfigError {
                    var,
                    problem: format!("={raw:?} is not a duration (expected e.g. {default})"),
                })?;
                if d < min {
                    return Err(ConfigError {
                        var,
                        problem: format!(
                            "={raw:?} is shorter than the minimum {}",
                            humantime::format_duration(min)
                        ),
                    });
                }
                Ok(d)
            };
        let cdc_poll_interval =
            duration("CCARE_CDC_POLL_INTERVAL", "5s", Duration::from_millis(100))?;
        let cdc_reconcile_interval =
            duration("CCARE_CDC_RECONCILE_INTERVAL", "1h", Duration::from_secs(1))?;

        let cdc_tables = get("CCARE_CDC_TABLES").map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        });
        if let Some(tables) = &cdc_tables {
            if let Some(unknown) = tables
                .iter()
                .find(|t| domain::catalog::table_spec(t).is_none())
            {
                let known: Vec<&str> = domain::catalog::CAPTURED_TABLES
                    .iter()
                    .map(|t| t.table)
                    .collect();
                return Err(ConfigError {
                    var: "CCARE_CDC_TABLES",
                    problem: format!(
                        "names {unknown:?}, which is not a table ccare captures ({})",
                        known.join(", ")
                    ),
                });
            }
        }

        let share_raw = get("CCARE_CDC_SAFETY_SHARE").unwrap_or_else(|| "0.2".into());
        let cdc_safety_share = share_raw
            .parse::<f64>()
            .ok()
            .filter(|s| *s > 0.0 && *s <= 1.0)
            .ok_or_else(|| ConfigError {
                var: "CCARE_CDC_SAFETY_SHARE",
                problem: format!("={share_raw:?} must be a number in (0, 1], e.g. 0.2"),
            })?;

        let pg_bin = get("CCARE_PG_BIN").map(PathBuf::from);
        if let Some(dir) = &pg_bin {
            if !dir.join("initdb").is_file() {
                return Err(ConfigError {
                    var: "CCARE_PG_BIN",
                    problem: format!("={:?} has no initdb", dir.display().to_string()),
                });
            }
        }

        // odbc_api logs each connection's informational diagnostics as warnings (the SQLite
        // driver's "does not support the requested version" on every poll); errors still show.
        let log_filter = get("CCARE_LOG").unwrap_or_else(|| "info,odbc_api=error".into());
        let log_json = match get("CCARE_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(ConfigError {
                    var: "CCARE_LOG_FORMAT",
                    problem: format!("={other:?} must be text or json"),
                })
            }
        };

        let jwt_secret = get("CCARE_JWT_SECRET");
        if let Some(secret) = &jwt_secret {
            if secret.len() < MIN_JWT_SECRET_BYTES {
                return Err(ConfigError {
                    var: "CCARE_JWT_SECRET",
                    problem: format!(
                        "must be at least {MIN_JWT_SECRET_BYTES} bytes (it has {}); generate one with `openssl rand -hex 32`",
                        secret.len()
                    ),
                });
            }
        }
        let jwt_ttl = duration("CCARE_JWT_TTL", "8h", Duration::from_secs(60))?;

        // Half a configuration would leave the webhook refusing either Meta's handshake or every
        // delivery, so it is refused at start-up instead.
        let whatsapp = match (get("WHATSAPP_VERIFY_TOKEN"), get("WHATSAPP_APP_SECRET")) {
            (Some(verify_token), Some(app_secret)) => Some(WhatsAppSettings {
                verify_token,
                app_secret,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError {
                    var: "WHATSAPP_APP_SECRET",
                    problem: "is not set, but WHATSAPP_VERIFY_TOKEN is: the WhatsApp webhook needs both (the app secret checks every delivery's signature)".into(),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError {
                    var: "WHATSAPP_VERIFY_TOKEN",
                    problem: "is not set, but WHATSAPP_APP_SECRET is: the WhatsApp webhook needs both (Meta's verify handshake checks the token)".into(),
                })
            }
        };

        let bridge = bridge_settings(&get, &duration)?;

        Ok(Settings {
            database_url,
            acdb,
            nats_url,
            nats_stream,
            data_dir,
            listen,
            cdc_poll_interval,
            cdc_reconcile_interval,
            cdc_tables,
            cdc_safety_share,
            pg_bin,
            log_filter,
            log_json,
            jwt_secret,
            jwt_ttl,
            whatsapp,
            bridge,
        })
    }

    /// The WhatsApp webhook settings, for the bridge role.
    pub fn require_whatsapp(&self) -> Result<&WhatsAppSettings, ConfigError> {
        self.whatsapp.as_ref().ok_or_else(|| ConfigError {
            var: "WHATSAPP_VERIFY_TOKEN",
            problem: "and WHATSAPP_APP_SECRET are not set: the bridge role needs both (the webhook's verify token and the Meta app secret)".into(),
        })
    }

    /// The token signing secret, for the roles that sign or check tokens.
    pub fn require_jwt_secret(&self) -> Result<&str, ConfigError> {
        self.jwt_secret.as_deref().ok_or_else(|| ConfigError {
            var: "CCARE_JWT_SECRET",
            problem: format!(
                "is not set: the api role signs tokens with it (at least {MIN_JWT_SECRET_BYTES} bytes; generate one with `openssl rand -hex 32`)"
            ),
        })
    }

    /// The ACDB location, for commands that cannot run without one.
    pub fn require_acdb(&self) -> Result<&AcdbLocation, ConfigError> {
        self.acdb.as_ref().ok_or_else(|| ConfigError {
            var: "ACDB_DSN",
            problem: "is not set (set ACDB_DSN to an ODBC connection string or ACDB_FILE to an .accdb/.mdb file; `ccare demo` generates one)".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_vars(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_need_no_variable_at_all() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(s.cdc_poll_interval, Duration::from_secs(5));
        assert_eq!(s.data_dir, PathBuf::from(".ccare"));
        assert!(s.database_url.is_none() && s.acdb.is_none() && s.nats_url.is_none());
    }

    #[test]
    fn each_malformed_setting_is_named_in_the_error() {
        for (var, value) in [
            ("CCARE_LISTEN", "localhost"),
            ("CCARE_CDC_POLL_INTERVAL", "often"),
            ("CCARE_CDC_POLL_INTERVAL", "1ms"),
            ("DATABASE_URL", "mysql://x"),
            ("ACDB_DSN", "just-a-name"),
            ("ACDB_FILE", "/nonexistent/x.accdb"),
            ("ACDB_FILE", "notes.txt"),
            ("CCARE_CDC_TABLES", "tblcustomer,tblnothing"),
            ("CCARE_CDC_SAFETY_SHARE", "2"),
            ("CCARE_LOG_FORMAT", "xml"),
            ("NATS_URL", "nats"),
            ("CCARE_JWT_SECRET", "short"),
            ("CCARE_JWT_TTL", "forever"),
            ("WHATSAPP_API_URL", "graph.facebook.com"),
            ("LLM_URL", "ftp://llm"),
            ("CCARE_OPS_RECIPIENTS", "+26658123456, call me"),
            ("CCARE_BRIDGE_FOLLOW_UP_WINDOW", "soon"),
        ] {
            let err = settings(&[(var, value)]).expect_err(var);
            assert_eq!(err.var, var, "{value}");
            let line = err.to_string();
            assert!(!line.contains('\n') && line.contains(var), "{line}");
        }
    }

    #[test]
    fn the_bridge_services_are_configured_whole_and_a_missing_part_is_named() {
        let base = [
            ("WHATSAPP_ACCESS_TOKEN", "token"),
            ("WHATSAPP_PHONE_NUMBER_ID", "1234567890"),
            ("WHATSAPP_API_URL", "https://graph.facebook.com/v25.0"),
            ("UGRIDPLAN_URL", "https://ugp.example.org/api"),
            ("UGRIDPLAN_USER", "ops-bot"),
            ("UGRIDPLAN_PASSWORD", "s3cret-value"),
            ("LLM_URL", "http://127.0.0.1:9000/v1"),
            ("LLM_MODEL", "triage-small"),
            ("CCARE_OPS_RECIPIENTS", "+26658123456, 62001122"),
        ];
        let s = settings(&base).unwrap();
        assert_eq!(
            s.bridge.cloud_api.as_ref().unwrap().phone_number_id,
            "1234567890"
        );
        assert!(s.bridge.ugridplan.is_some() && s.bridge.llm.is_some());
        let ops: Vec<&str> = s.bridge.ops_recipients.iter().map(|p| p.as_str()).collect();
        assert_eq!(ops, ["+26658123456", "+26662001122"]);
        assert_eq!(s.bridge.follow_up_window, Duration::from_secs(30 * 60));
        let none = settings(&[]).unwrap();
        assert!(none.bridge.cloud_api.is_none() && none.bridge.ugridplan.is_none());
        assert_eq!(none.bridge.templates.reply, "ccare_reply");

        for (left_out, named) in [
            ("WHATSAPP_ACCESS_TOKEN", "WHATSAPP_ACCESS_TOKEN"),
            ("WHATSAPP_PHONE_NUMBER_ID", "WHATSAPP_PHONE_NUMBER_ID"),
            ("UGRIDPLAN_PASSWORD", "UGRIDPLAN_PASSWORD"),
            ("UGRIDPLAN_URL", "UGRIDPLAN_URL"),
            ("LLM_MODEL", "LLM_MODEL"),
        ] {
            let vars: Vec<(&str, &str)> = base
                .iter()
                .copied()
                .filter(|(k, _)| *k != left_out)
                .collect();
            let err = settings(&vars).expect_err(left_out);
            assert_eq!(err.var, named);
            assert!(!err.to_string().contains("s3cret-value"), "{err}");
        }
        let err = settings(&[
            ("WHATSAPP_ACCESS_TOKEN", "t"),
            ("WHATSAPP_PHONE_NUMBER_ID", "+266 2200"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "WHATSAPP_PHONE_NUMBER_ID");
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let s = settings(&[("DATABASE_URL", ""), ("CCARE_LISTEN", " ")]).unwrap();
        assert!(s.database_url.is_none());
        assert_eq!(s.listen, DEFAULT_LISTEN.parse().unwrap());
    }

    #[test]
    fn both_acdb_settings_at_once_are_refused() {
        let err = settings(&[
            ("ACDB_DSN", "Driver=SQLite3;Database=x"),
            ("ACDB_FILE", "x.accdb"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "ACDB_FILE");
    }

    #[test]
    fn the_api_role_names_the_missing_jwt_secret() {
        let err = settings(&[]).unwrap().require_jwt_secret().unwrap_err();
        assert_eq!(err.var, "CCARE_JWT_SECRET");
        let ok = settings(&[("CCARE_JWT_SECRET", &"k".repeat(32))]).unwrap();
        assert_eq!(ok.require_jwt_secret().unwrap().len(), 32);
    }

    #[test]
    fn the_whatsapp_settings_are_read_together_and_never_printed() {
        let s = settings(&[
            ("WHATSAPP_VERIFY_TOKEN", " my-token "),
            ("WHATSAPP_APP_SECRET", "0123456789abcdef"),
        ])
        .unwrap();
        let whatsapp = s.require_whatsapp().unwrap();
        assert_eq!(whatsapp.verify_token, "my-token");
        assert_eq!(whatsapp.app_secret, "0123456789abcdef");
        let printed = format!("{s:?}");
        assert!(
            !printed.contains("my-token") && !printed.contains("0123456789abcdef"),
            "{printed}"
        );
    }

    #[test]
    fn one_whatsapp_setting_without_the_other_names_the_missing_one() {
        for (set, missing) in [
            ("WHATSAPP_VERIFY_TOKEN", "WHATSAPP_APP_SECRET"),
            ("WHATSAPP_APP_SECRET", "WHATSAPP_VERIFY_TOKEN"),
        ] {
            for other in [None, Some(""), Some("  ")] {
                let mut pairs = vec![(set, "value")];
                pairs.extend(other.map(|blank| (missing, blank)));
                let err = settings(&pairs).unwrap_err();
                assert_eq!(err.var, missing, "{set} with {missing}={other:?}");
                let line = err.to_string();
                assert!(!line.contains('\n') && line.contains(set), "{line}");
            }
        }
    }

    #[test]
    fn without_whatsapp_settings_the_bridge_role_names_both_variables() {
        let s = settings(&[("WHATSAPP_VERIFY_TOKEN", ""), ("WHATSAPP_APP_SECRET", " ")]).unwrap();
        assert!(s.whatsapp.is_none());
        let line = s.require_whatsapp().unwrap_err().to_string();
        assert!(
            line.contains("WHATSAPP_VERIFY_TOKEN") && line.contains("WHATSAPP_APP_SECRET"),
            "{line}"
        );
    }

    #[test]
    fn commands_that_need_an_acdb_name_the_variable_when_it_is_missing() {
        let err = settings(&[]).unwrap().require_acdb().unwrap_err();
        assert_eq!(err.var, "ACDB_DSN");
    }
}
