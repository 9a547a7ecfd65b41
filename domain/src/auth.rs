//! People, roles and what each role may do (legacy-system.md §4.4), and the user account
//! aggregate: the state ccare owns about the people who log in, kept as events only.
//!
//! Employees have their own accounts with their own password (the legacy shared monthly code is
//! gone). Customers log in with their account number; registering needs a one-time code issued
//! by staff who have seen the customer (the legacy let anyone who knew an account number claim
//! it). Password and code hashes are made and checked outside the domain ([`Credentials`]); the
//! domain only ever sees their PHC strings.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::catalog::table_spec;

/// The aggregate type of user accounts. Permanent: stored in every event.
pub const USER_ACCOUNT: &str = "UserAccount";

/// Who a user is to ccare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserType {
    Employee,
    Customer,
}

impl UserType {
    pub fn as_str(self) -> &'static str {
        match self {
            UserType::Employee => "employee",
            UserType::Customer => "customer",
        }
    }
}

/// An employee's role (legacy-system.md §4.4). Customers have no role; their tokens say
/// `customer` where an employee's say the role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Superadmin,
    OnmTeam,
    FinanceTeam,
    Generic,
}

/// The three permission flags the legacy API reports with every employee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    pub write_customers: bool,
    pub write_transactions: bool,
    pub manage_roles: bool,
}

/// The ACDB tables a role with only `write_transactions` (finance) may write. The legacy set held
/// `tblaccounthistoryOriginal` in mixed case and compared it with a lower-cased name, so finance
/// could never write that table (legacy weakness 11); here names compare case-insensitively.
pub const TRANSACTION_TABLES: &[&str] = &["tblaccounthistory1", "tblaccounthistoryOriginal"];

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Superadmin,
        Role::OnmTeam,
        Role::FinanceTeam,
        Role::Generic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Superadmin => "superadmin",
            Role::OnmTeam => "onm_team",
            Role::FinanceTeam => "finance_team",
            Role::Generic => "generic",
        }
    }

    pub fn permissions(self) -> Permissions {
        Permissions {
            write_customers: matches!(self, Role::Superadmin | Role::OnmTeam),
            write_transactions: matches!(
                self,
                Role::Superadmin | Role::OnmTeam | Role::FinanceTeam
            ),
            manage_roles: self == Role::Superadmin,
        }
    }

    /// Whether the role may create or update rows of the ACDB table `table` through the
    /// audited writer.
    pub fn can_write_table(self, table: &str) -> bool {
        let permissions = self.permissions();
        if permissions.write_customers {
            return true;
        }
        permissions.write_transactions
            && TRANSACTION_TABLES
                .iter()
                .any(|t| t.eq_ignore_ascii_case(table))
    }

    /// Deleting rows (generic CRUD delete) is for superadmin and the O&M team only.
    pub fn can_delete(self) -> bool {
        matches!(self, Role::Superadmin | Role::OnmTeam)
    }

    /// Reverting an audited change: superadmin and the O&M team.
    pub fn can_revert(self) -> bool {
        matches!(self, Role::Superadmin | Role::OnmTeam)
    }

    /// Setting tariffs: superadmin, O&M and finance.
    pub fn can_manage_tariffs(self) -> bool {
        matches!(self, Role::Superadmin | Role::OnmTeam | Role::FinanceTeam)
    }

    /// Issuing a customer's one-time registration code: staff who may edit customers.
    pub fn can_issue_registration_codes(self) -> bool {
        self.permissions().write_customers
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a role (expected one of superadmin, onm_team, finance_team, generic)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// Whether `table` is an ACDB table the audited writer may change at all. `tblconfig` is
/// written only by the tariff commands and `tblmeterdata1` (meter readings) only by the meters:
/// the legacy let any O&M user rewrite either through generic CRUD (legacy weakness 7).
pub fn writable_table(table: &str) -> bool {
    table_spec(table)
        .is_some_and(|spec| !matches!(spec.aggregate_type, "TariffConfig" | "MeterReading"))
}

/// The id of a user account aggregate: `employee:<id>` or `customer:<account>`.
pub fn user_aggregate_id(user_type: UserType, user_id: &str) -> String {
    format!("{}:{}", user_type.as_str(), user_id)
}

/// A checked employee id: what employees type at login (an HR number such as `00123`, or a
/// username). Letters, digits, `.`, `_` and `-`, 1 to 64 characters.
pub fn parse_employee_id(raw: &str) -> Result<String, UserError> {
    let id = raw.trim();
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(id.to_string())
    } else {
        Err(UserError::Invalid {
            field: "employee_id",
            problem: "must be 1 to 64 letters, digits, '.', '_' or '-'".into(),
        })
    }
}

/// The shortest password accepted (the legacy minimum for customers was 6; employees can change
/// the ACDB, so ccare asks more of everyone).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Checks a new password's length (hashing happens outside the domain).
pub fn check_new_password(field: &'static str, password: &str) -> Result<(), UserError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(UserError::Invalid {
            field,
            problem: format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        });
    }
    if chars > 256 {
        return Err(UserError::Invalid {
            field,
            problem: "must be at most 256 characters".into(),
        });
    }
    Ok(())
}

/// Verifies secrets against the hashes stored in events (argon2 PHC strings). Implemented
/// outside the domain: hashing is slow on purpose and salts need the operating system's
/// randomness.
pub trait Credentials: Send + Sync {
    fn verify(&self, secret: &str, phc_hash: &str) -> bool;
}

/// A staff-issued registration code, as stored (hash only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCode {
    pub code_hash: String,
    pub expires_at: DateTime<Utc>,
    pub issued_by: String,
}

/// What ccare knows of one user account.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAccount {
    pub user_type: Option<UserType>,
    pub user_id: String,
    pub name: String,
    pub email: Option<String>,
    /// Employees only.
    pub role: Option<Role>,
    /// `None` until a password is set (a customer with only a registration code).
    pub password_hash: Option<String>,
    pub disabled: bool,
    /// Tokens issued before this instant are no longer accepted (set by a password change).
    pub tokens_valid_after: Option<DateTime<Utc>>,
    pub pending_code: Option<IssuedCode>,
}

impl UserAccount {
    pub fn exists(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// The events of a user account. Each carries what it replaced, so that any of them can be
/// reverted by a compensating event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserEvent {
    EmployeeAdded {
        employee_id: String,
        name: String,
        email: Option<String>,
        role: Role,
        password_hash: String,
    },
    RegistrationCodeIssued {
        account_number: String,
        code: IssuedCode,
    },
    CustomerRegistered {
        account_number: String,
        name: String,
        password_hash: String,
    },
    RoleChanged {
        from: Role,
        to: Role,
    },
    ProfileChanged {
        before_name: String,
        before_email: Option<String>,
        name: String,
        email: Option<String>,
    },
    PasswordChanged {
        password_hash: String,
        previous_hash: Option<String>,
        /// Set by someone else (a reset) rather than by the user.
        reset: bool,
        at: DateTime<Utc>,
    },
    UserDisabled,
    UserEnabled,
    /// One token no longer accepted (logout).
    TokenRevoked {
        token_id: String,
        expires_at: DateTime<Utc>,
    },
}

/// The version of the payload shapes above. Bump it (and add an upcaster) on any change.
pub const USER_EVENT_VERSION: &str = "1";

impl UserEvent {
    /// The stored event type, e.g. `RoleChanged`.
    pub fn kind(&self) -> &'static str {
        match self {
            UserEvent::EmployeeAdded { .. } => "EmployeeAdded",
            UserEvent::RegistrationCodeIssued { .. } => "RegistrationCodeIssued",
            UserEvent::CustomerRegistered { .. } => "CustomerRegistered",
            UserEvent::RoleChanged { .. } => "RoleChanged",
            UserEvent::ProfileChanged { .. } => "ProfileChanged",
            UserEvent::PasswordChanged { .. } => "PasswordChanged",
            UserEvent::UserDisabled => "UserDisabled",
            UserEvent::UserEnabled => "UserEnabled",
            UserEvent::TokenRevoked { .. } => "TokenRevoked",
        }
    }
}

impl DomainEvent for UserEvent {
    fn event_type(&self) -> String {
        self.kind().to_string()
    }

    fn event_version(&self) -> String {
        USER_EVENT_VERSION.to_string()
    }
}

/// What can be asked of a user account. Secrets arrive already hashed, except the registration
/// code a customer presents, which the aggregate checks against the issued hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserCommand {
    AddEmployee {
        employee_id: String,
        name: String,
        email: Option<String>,
        role: Role,
        password_hash: String,
    },
    IssueRegistrationCode {
        account_number: String,
        code_hash: String,
        expires_at: DateTime<Utc>,
        issued_by: String,
    },
    RegisterCustomer {
        account_number: String,
        name: String,
        code: String,
        password_hash: String,
        now: DateTime<Utc>,
    },
    ChangeRole {
        role: Role,
    },
    ChangeProfile {
        name: String,
        email: Option<String>,
    },
    SetPassword {
        password_hash: String,
        reset: bool,
        now: DateTime<Utc>,
    },
    /// Puts back the password hash a reverted change replaced.
    RestorePassword {
        password_hash: Option<String>,
        now: DateTime<Utc>,
    },
    Disable,
    Enable,
    RevokeToken {
        token_id: String,
        expires_at: DateTime<Utc>,
    },
}

/// Why a user command was refused. `Invalid` names the request field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    #[error("the user already exists")]
    AlreadyExists,
    #[error("no such user")]
    NotFound,
    #[error("this account is already registered")]
    AlreadyRegistered,
    #[error("the registration code is wrong or has expired; ask the office for a new one")]
    BadRegistrationCode,
    #[error("{0}")]
    NotApplicable(&'static str),
}

impl Aggregate for UserAccount {
    const TYPE: &'static str = USER_ACCOUNT;
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = UserError;
    type Services = std::sync::Arc<dyn Credentials>;

    async fn handle(
        &mut self,
        command: Self::Command,
        credentials: &Self::Services,
        sink: &cqrs_es::event_sink::EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command, credentials.as_ref())? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.apply_event(event);
    }
}

impl UserAccount {
    /// The state after `event` (what cqrs-es's `apply` does, callable without the trait).
    pub fn apply_event(&mut self, event: UserEvent) {
        match event {
            UserEvent::EmployeeAdded {
                employee_id,
                name,
                email,
                role,
                password_hash,
            } => {
                self.user_type = Some(UserType::Employee);
                self.user_id = employee_id;
                self.name = name;
                self.email = email;
                self.role = Some(role);
                self.password_hash = Some(password_hash);
            }
            UserEvent::RegistrationCodeIssued {
                account_number,
                code,
            } => {
                self.user_type = Some(UserType::Customer);
                self.user_id = account_number;
                self.pending_code = Some(code);
            }
            UserEvent::CustomerRegistered {
                account_number,
                name,
                password_hash,
            } => {
                self.user_type = Some(UserType::Customer);
                self.user_id = account_number;
                self.name = name;
                self.password_hash = Some(password_hash);
                self.pending_code = None;
            }
            UserEvent::RoleChanged { to, .. } => self.role = Some(to),
            UserEvent::ProfileChanged { name, email, .. } => {
                self.name = name;
                self.email = email;
            }
            UserEvent::PasswordChanged {
                password_hash, at, ..
            } => {
                self.password_hash = Some(password_hash);
                self.tokens_valid_after = Some(at);
            }
            UserEvent::UserDisabled => self.disabled = true,
            UserEvent::UserEnabled => self.disabled = false,
            UserEvent::TokenRevoked { .. } => {}
        }
    }
}

impl UserAccount {
    /// The events `command` produces against this state: the pure decision behind `handle`.
    pub fn decide(
        &self,
        command: UserCommand,
        credentials: &dyn Credentials,
    ) -> Result<Vec<UserEvent>, UserError> {
        use UserCommand as C;
        let events = match command {
            C::AddEmployee {
                employee_id,
                name,
                email,
                role,
                password_hash,
            } => {
                if self.user_type.is_some() {
                    return Err(UserError::AlreadyExists);
                }
                vec![UserEvent::EmployeeAdded {
                    employee_id: parse_employee_id(&employee_id)?,
                    name: check_name(&name)?,
                    email: check_email(email)?,
                    role,
                    password_hash,
                }]
            }
            C::IssueRegistrationCode {
                account_number,
                code_hash,
                expires_at,
                issued_by,
            } => {
                if self.exists() {
                    return Err(UserError::AlreadyRegistered);
                }
                vec![UserEvent::RegistrationCodeIssued {
                    account_number,
                    code: IssuedCode {
                        code_hash,
                        expires_at,
                        issued_by,
                    },
                }]
            }
            C::RegisterCustomer {
                account_number,
                name,
                code,
                password_hash,
                now,
            } => {
                if self.exists() {
                    return Err(UserError::AlreadyRegistered);
                }
                let valid = self.pending_code.as_ref().is_some_and(|issued| {
                    now < issued.expires_at && credentials.verify(code.trim(), &issued.code_hash)
                });
                if !valid {
                    return Err(UserError::BadRegistrationCode);
                }
                vec![UserEvent::CustomerRegistered {
                    account_number,
                    name,
                    password_hash,
                }]
            }
            C::ChangeRole { role } => {
                let from = self.employee_role()?;
                if from == role {
                    vec![]
                } else {
                    vec![UserEvent::RoleChanged { from, to: role }]
                }
            }
            C::ChangeProfile { name, email } => {
                self.require_exists()?;
                let name = check_name(&name)?;
                let email = check_email(email)?;
                if name == self.name && email == self.email {
                    vec![]
                } else {
                    vec![UserEvent::ProfileChanged {
                        before_name: self.name.clone(),
                        before_email: self.email.clone(),
                        name,
                        email,
                    }]
                }
            }
            C::SetPassword {
                password_hash,
                reset,
                now,
            } => {
                self.require_exists()?;
                vec![UserEvent::PasswordChanged {
                    previous_hash: self.password_hash.clone(),
                    password_hash,
                    reset,
                    at: now,
                }]
            }
            C::RestorePassword { password_hash, now } => {
                self.require_exists()?;
                let Some(password_hash) = password_hash else {
                    return Err(UserError::NotApplicable(
                        "the change set the first password; there is none to put back",
                    ));
                };
                vec![UserEvent::PasswordChanged {
                    previous_hash: self.password_hash.clone(),
                    password_hash,
                    reset: true,
                    at: now,
                }]
            }
            C::Disable => {
                self.require_exists()?;
                if self.disabled {
                    vec![]
                } else {
                    vec![UserEvent::UserDisabled]
                }
            }
            C::Enable => {
                self.require_exists()?;
                if self.disabled {
                    vec![UserEvent::UserEnabled]
                } else {
                    vec![]
                }
            }
            C::RevokeToken {
                token_id,
                expires_at,
            } => {
                self.require_exists()?;
                vec![UserEvent::TokenRevoked {
                    token_id,
                    expires_at,
                }]
            }
        };
        Ok(events)
    }

    fn require_exists(&self) -> Result<(), UserError> {
        if self.exists() {
            Ok(())
        } else {
            Err(UserError::NotFound)
        }
    }

    fn employee_role(&self) -> Result<Role, UserError> {
        self.require_exists()?;
        self.role.ok_or(UserError::NotApplicable(
            "customers have no role; only employees do",
        ))
    }
}

fn check_name(name: &str) -> Result<String, UserError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(UserError::Invalid {
            field: "name",
            problem: "must be 1 to 200 characters".into(),
        });
    }
    Ok(name.to_string())
}

fn check_email(email: Option<String>) -> Result<Option<String>, UserError> {
    let Some(email) = email
        .map(|e| e.trim().to_lowercase())
        .filter(|e| !e.is_empty())
    else {
        return Ok(None);
    };
    let plausible = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        })
        && !email.contains(char::is_whitespace);
    if plausible {
        Ok(Some(email))
    } else {
        Err(UserError::Invalid {
            field: "email",
            problem: format!("{email:?} is not an email address"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Secrets "hash" to themselves prefixed, which is enough to test the decisions.
    struct PlainCredentials;
    impl Credentials for PlainCredentials {
        fn verify(&self, secret: &str, phc_hash: &str) -> bool {
            phc_hash == format!("hash:{secret}")
        }
    }

    fn employee(role: Role) -> UserAccount {
        let mut user = UserAccount::default();
        user.apply_event(UserEvent::EmployeeAdded {
            employee_id: "00123".into(),
            name: "Thabo Mokoena".into(),
            email: None,
            role,
            password_hash: "hash:pw".into(),
        });
        user
    }

    fn now() -> DateTime<Utc> {
        "2026-03-01T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn permissions_follow_the_legacy_table() {
        let p = |r: Role| {
            let p = r.permissions();
            (p.write_customers, p.write_transactions, p.manage_roles)
        };
        assert_eq!(p(Role::Superadmin), (true, true, true));
        assert_eq!(p(Role::OnmTeam), (true, true, false));
        assert_eq!(p(Role::FinanceTeam), (false, true, false));
        assert_eq!(p(Role::Generic), (false, false, false));
    }

    #[test]
    fn finance_writes_both_history_tables_in_any_case_and_nothing_else() {
        assert!(Role::FinanceTeam.can_write_table("tblaccounthistory1"));
        assert!(Role::FinanceTeam.can_write_table("tblaccounthistoryOriginal"));
        assert!(Role::FinanceTeam.can_write_table("TBLACCOUNTHISTORYORIGINAL"));
        assert!(!Role::FinanceTeam.can_write_table("tblcustomer"));
        assert!(!Role::Generic.can_write_table("tblaccounthistory1"));
        assert!(Role::OnmTeam.can_write_table("tblcustomer"));
    }

    #[test]
    fn only_superadmin_and_onm_delete_and_revert_and_finance_sets_tariffs() {
        for role in Role::ALL {
            let high = matches!(role, Role::Superadmin | Role::OnmTeam);
            assert_eq!(role.can_delete(), high, "{role}");
            assert_eq!(role.can_revert(), high, "{role}");
        }
        assert!(Role::FinanceTeam.can_manage_tariffs());
        assert!(!Role::Generic.can_manage_tariffs());
    }

    #[test]
    fn the_config_and_reading_tables_are_not_writable_through_generic_crud() {
        assert!(writable_table("tblcustomer"));
        assert!(writable_table("Copy Of tblmeter"));
        assert!(!writable_table("tblconfig"));
        assert!(!writable_table("tblmeterdata1"));
        assert!(!writable_table("MSysObjects"));
    }

    #[test]
    fn roles_parse_from_their_legacy_names_only() {
        assert_eq!("onm_team".parse::<Role>(), Ok(Role::OnmTeam));
        assert!("admin".parse::<Role>().is_err());
        assert!("Superadmin".parse::<Role>().is_err());
    }

    #[test]
    fn employee_ids_are_checked() {
        assert_eq!(parse_employee_id(" 00123 ").unwrap(), "00123");
        assert!(parse_employee_id("").is_err());
        assert!(parse_employee_id("a b").is_err());
        assert!(parse_employee_id("x'; drop").is_err());
    }

    #[test]
    fn a_short_password_is_refused_naming_the_field() {
        let err = check_new_password("new_password", "short").unwrap_err();
        assert_eq!(
            err.to_string(),
            "new_password: must be at least 8 characters"
        );
        assert!(check_new_password("password", "long enough").is_ok());
    }

    #[test]
    fn an_employee_cannot_be_added_twice() {
        let user = employee(Role::Generic);
        let again = user.decide(
            UserCommand::AddEmployee {
                employee_id: "00123".into(),
                name: "Thabo".into(),
                email: None,
                role: Role::Generic,
                password_hash: "hash:x".into(),
            },
            &PlainCredentials,
        );
        assert_eq!(again, Err(UserError::AlreadyExists));
    }

    #[test]
    fn a_role_change_records_both_roles_and_a_same_role_change_records_nothing() {
        let user = employee(Role::Generic);
        assert_eq!(
            user.decide(
                UserCommand::ChangeRole {
                    role: Role::OnmTeam
                },
                &PlainCredentials
            ),
            Ok(vec![UserEvent::RoleChanged {
                from: Role::Generic,
                to: Role::OnmTeam
            }])
        );
        assert_eq!(
            user.decide(
                UserCommand::ChangeRole {
                    role: Role::Generic
                },
                &PlainCredentials
            ),
            Ok(vec![])
        );
    }

    #[test]
    fn a_customer_registers_only_with_the_issued_unexpired_code() {
        let mut customer = UserAccount::default();
        let register = |code: &str, now: DateTime<Utc>| UserCommand::RegisterCustomer {
            account_number: "0045MAK".into(),
            name: "Mpho".into(),
            code: code.into(),
            password_hash: "hash:secret".into(),
            now,
        };
        assert_eq!(
            customer.decide(register("K7Q2", now()), &PlainCredentials),
            Err(UserError::BadRegistrationCode),
            "no code issued yet"
        );
        customer.apply_event(UserEvent::RegistrationCodeIssued {
            account_number: "0045MAK".into(),
            code: IssuedCode {
                code_hash: "hash:K7Q2".into(),
                expires_at: now() + chrono::TimeDelta::days(7),
                issued_by: "00123".into(),
            },
        });
        assert_eq!(
            customer.decide(register("WRONG", now()), &PlainCredentials),
            Err(UserError::BadRegistrationCode)
        );
        assert_eq!(
            customer.decide(
                register("K7Q2", now() + chrono::TimeDelta::days(8)),
                &PlainCredentials
            ),
            Err(UserError::BadRegistrationCode),
            "expired"
        );
        let events = customer
            .decide(register(" K7Q2 ", now()), &PlainCredentials)
            .unwrap();
        customer.apply_event(events[0].clone());
        assert!(customer.exists());
        assert_eq!(
            customer.decide(register("K7Q2", now()), &PlainCredentials),
            Err(UserError::AlreadyRegistered)
        );
    }

    #[test]
    fn a_password_change_invalidates_older_tokens_and_can_be_put_back() {
        let mut user = employee(Role::Generic);
        let events = user
            .decide(
                UserCommand::SetPassword {
                    password_hash: "hash:new".into(),
                    reset: false,
                    now: now(),
                },
                &PlainCredentials,
            )
            .unwrap();
        assert!(matches!(
            &events[0],
            UserEvent::PasswordChanged { previous_hash: Some(p), .. } if p == "hash:pw"
        ));
        user.apply_event(events[0].clone());
        assert_eq!(user.tokens_valid_after, Some(now()));
        let restored = user
            .decide(
                UserCommand::RestorePassword {
                    password_hash: Some("hash:pw".into()),
                    now: now(),
                },
                &PlainCredentials,
            )
            .unwrap();
        user.apply_event(restored[0].clone());
        assert_eq!(user.password_hash.as_deref(), Some("hash:pw"));
    }

    #[test]
    fn disabling_twice_records_one_event() {
        let mut user = employee(Role::Generic);
        let first = user
            .decide(UserCommand::Disable, &PlainCredentials)
            .unwrap();
        assert_eq!(first, vec![UserEvent::UserDisabled]);
        user.apply_event(first[0].clone());
        assert_eq!(
            user.decide(UserCommand::Disable, &PlainCredentials),
            Ok(vec![])
        );
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            check_email(Some(" Thabo@1PWR.org ".into())),
            Ok(Some("thabo@1pwr.org".into()))
        );
        assert_eq!(check_email(Some("  ".into())), Ok(None));
        assert!(check_email(Some("not-an-email".into())).is_err());
    }

    #[tokio::test]
    async fn the_cqrs_aggregate_emits_what_decide_says() {
        use cqrs_es::test::TestFramework;
        let credentials: Arc<dyn Credentials> = Arc::new(PlainCredentials);
        TestFramework::<UserAccount>::with(credentials)
            .given(vec![UserEvent::EmployeeAdded {
                employee_id: "00123".into(),
                name: "Thabo".into(),
                email: None,
                role: Role::Generic,
                password_hash: "hash:pw".into(),
            }])
            .when_async(UserCommand::Disable)
            .await
            .then_expect_events(vec![UserEvent::UserDisabled]);
    }
}
