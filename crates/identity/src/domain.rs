//! Identity's domain types. Each parses instead of validating: a value of the type is
//! known good, so handlers and stores never re-check it. No I/O here.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A mobile number in E.164 form. Mainland numbers may be given without `+86`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn parse(input: &str) -> Result<Phone, String> {
        let compact: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let digits = compact.strip_prefix('+').unwrap_or(&compact);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{input:?} is not a phone number"));
        }
        let mainland = |d: &str| d.len() == 11 && d.starts_with('1') && matches!(d.as_bytes()[1], b'3'..=b'9');
        if !compact.starts_with('+') {
            return if mainland(digits) {
                Ok(Phone(format!("+86{digits}")))
            } else {
                Err(format!(
                    "{input:?} is not a mainland mobile number; give other numbers with their +country code"
                ))
            };
        }
        if let Some(rest) = digits.strip_prefix("86")
            && !mainland(rest)
        {
            return Err(format!("{input:?} is not a valid +86 mobile number"));
        }
        if !(8..=15).contains(&digits.len()) {
            return Err(format!("{input:?} has the wrong number of digits"));
        }
        Ok(Phone(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Locale {
    #[serde(rename = "zh-CN")]
    ZhCn,
    #[serde(rename = "zh-TW")]
    ZhTw,
    #[serde(rename = "en")]
    En,
}

impl Locale {
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::ZhCn => "zh-CN",
            Locale::ZhTw => "zh-TW",
            Locale::En => "en",
        }
    }

    pub fn parse(s: &str) -> Result<Locale, String> {
        match s {
            "zh-CN" => Ok(Locale::ZhCn),
            "zh-TW" => Ok(Locale::ZhTw),
            "en" => Ok(Locale::En),
            other => Err(format!("unsupported locale {other:?}; use zh-CN, zh-TW or en")),
        }
    }
}

/// Where a session was opened. Seed 004: one sign-in is reused across these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    App,
    H5,
    MiniProgram,
    WechatOa,
    Web,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::App,
        Channel::H5,
        Channel::MiniProgram,
        Channel::WechatOa,
        Channel::Web,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::App => "app",
            Channel::H5 => "h5",
            Channel::MiniProgram => "mini_program",
            Channel::WechatOa => "wechat_oa",
            Channel::Web => "web",
        }
    }

    pub fn parse(s: &str) -> Result<Channel, String> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown channel {s:?}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Operator,
    RiskOfficer,
    SupportAgent,
    Auditor,
}

/// What a staff endpoint needs. Endpoints ask for a permission, never for a role, so the
/// whole access policy is the table in [`Role::grants`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Create and list staff users.
    ManageStaff,
    /// Look up customers and their profiles.
    ViewCustomers,
    /// Look up customers' accounts and transfers.
    ViewAccounts,
    /// Build and run campaigns.
    ManageCampaigns,
    /// Work holds and risk cases, tune the risk policy.
    ReviewRisk,
    /// Answer customers as a human agent.
    HandleSupport,
    /// Read the audit trail and staff access records.
    ReadAudit,
}

impl Permission {
    pub const ALL: [Permission; 7] = [
        Permission::ManageStaff,
        Permission::ViewCustomers,
        Permission::ViewAccounts,
        Permission::ManageCampaigns,
        Permission::ReviewRisk,
        Permission::HandleSupport,
        Permission::ReadAudit,
    ];
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Operator,
        Role::RiskOfficer,
        Role::SupportAgent,
        Role::Auditor,
    ];

    pub fn grants(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Operator => matches!(permission, ViewCustomers | ViewAccounts | ManageCampaigns),
            Role::RiskOfficer => matches!(permission, ViewCustomers | ViewAccounts | ReviewRisk),
            Role::SupportAgent => matches!(permission, ViewCustomers | ViewAccounts | HandleSupport),
            // Auditors read the trail; they do not browse customers.
            Role::Auditor => matches!(permission, ReadAudit),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::RiskOfficer => "risk_officer",
            Role::SupportAgent => "support_agent",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}; use admin, operator, risk_officer, support_agent or auditor"))
    }
}

/// A password as typed. Kept out of `Debug` output.
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 8;

    /// A new password must be long enough; existing ones are only checked against their hash.
    pub fn new_password(input: &str) -> Result<Password, String> {
        if input.chars().count() < Self::MIN_LEN {
            return Err(format!("a password needs at least {} characters", Self::MIN_LEN));
        }
        if input.len() > 256 {
            return Err("a password may have at most 256 bytes".into());
        }
        Ok(Password(input.to_owned()))
    }

    pub fn given(input: &str) -> Password {
        Password(input.to_owned())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

pub fn parse_name(input: &str) -> Result<String, String> {
    let name = input.trim();
    let len = name.chars().count();
    if len == 0 || len > 64 {
        return Err("a name needs 1 to 64 characters".into());
    }
    if name.chars().any(char::is_control) {
        return Err("a name may not contain control characters".into());
    }
    Ok(name.to_owned())
}

pub fn parse_username(input: &str) -> Result<String, String> {
    let ok = (3..=32).contains(&input.len())
        && input
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(input.to_owned())
    } else {
        Err("a username has 3 to 32 of a-z, 0-9, '.', '_' and '-'".into())
    }
}

/// An IANA time zone name the bundled time zone database knows.
pub fn parse_time_zone(input: &str) -> Result<String, String> {
    jiff::tz::TimeZone::get(input)
        .map(|_| input.to_owned())
        .map_err(|_| format!("unknown time zone {input:?}; use an IANA name such as Asia/Shanghai"))
}

/// A birthday: a real calendar date, not in the future, after 1900.
/// A mainland resident identity card number: 17 digits and a check character (digit or
/// `X`, ISO 7064 MOD 11-2). Lower-case `x` is accepted and upper-cased.
pub fn parse_id_number(input: &str) -> Result<String, String> {
    let id: String = input.trim().to_ascii_uppercase();
    let bytes = id.as_bytes();
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
        return Err("an ID number has 17 digits and a check digit or X".to_owned());
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = bytes[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    if bytes[17] != CHECK[(sum % 11) as usize] {
        return Err("the ID number's check digit does not match".to_owned());
    }
    Ok(id)
}

/// Shows the first three and last four characters of an ID number.
pub fn mask_id_number(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() < 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

pub fn parse_birthday(input: &str, today: jiff::civil::Date) -> Result<jiff::civil::Date, String> {
    let date: jiff::civil::Date = input
        .parse()
        .map_err(|_| format!("{input:?} is not a date; use YYYY-MM-DD"))?;
    if date > today || date.year() < 1900 {
        return Err(format!("{input} is not a plausible birthday"));
    }
    Ok(date)
}

pub const DEFAULT_TIME_ZONE: &str = "Asia/Shanghai";

/// Customer preferences that pages read. Unknown keys are refused so typos surface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    /// Large print, high contrast, fewer steps (适老化).
    #[serde(default)]
    pub elderly_mode: bool,
    /// Whether the customer accepts marketing messages in the inbox.
    #[serde(default = "yes")]
    pub marketing_messages: bool,
}

fn yes() -> bool {
    true
}

/// The age from which elderly mode is suggested (seed 003).
pub const ELDERLY_AGE: i16 = 60;

pub fn age_on(birthday: jiff::civil::Date, today: jiff::civil::Date) -> i16 {
    let mut age = today.year() - birthday.year();
    if (today.month(), today.day()) < (birthday.month(), birthday.day()) {
        age -= 1;
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainland_numbers_get_their_country_code() {
        assert_eq!(
            Phone::parse("138 0013 8000").map(|p| p.0),
            Ok("+8613800138000".to_owned())
        );
        assert_eq!(
            Phone::parse("+8613800138000").map(|p| p.0),
            Ok("+8613800138000".to_owned())
        );
        assert_eq!(Phone::parse("+85291234567").map(|p| p.0), Ok("+85291234567".to_owned()));
    }

    #[test]
    fn phone_like_garbage_is_refused() {
        for bad in [
            "",
            "abc",
            "12345",
            "+86123",
            "+861234567890123456",
            "1380013800a",
            "23800138000",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn id_numbers_are_checked_and_masked() {
        assert_eq!(
            parse_id_number("11010519491231002x").as_deref(),
            Ok("11010519491231002X")
        );
        assert!(parse_id_number("110105194912310021").is_err(), "wrong check digit");
        assert!(parse_id_number("1101051949").is_err());
        assert_eq!(mask_id_number("11010519491231002X"), "110***********002X");
    }

    #[test]
    fn roles_grant_only_their_permissions() {
        assert!(Permission::ALL.iter().all(|p| Role::Admin.grants(*p)));
        assert!(!Role::Auditor.grants(Permission::ViewCustomers));
        assert!(Role::Auditor.grants(Permission::ReadAudit));
        assert!(!Role::Operator.grants(Permission::ManageStaff));
        assert!(!Role::SupportAgent.grants(Permission::ReviewRisk));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
    }

    #[test]
    fn ages_turn_on_the_birthday() {
        let bday: jiff::civil::Date = "1960-03-15".parse().unwrap_or_default();
        assert_eq!(age_on(bday, "2020-03-14".parse().unwrap_or_default()), 59);
        assert_eq!(age_on(bday, "2020-03-15".parse().unwrap_or_default()), 60);
    }

    #[test]
    fn birthdays_must_be_plausible() {
        let today: jiff::civil::Date = "2026-11-22".parse().unwrap_or_default();
        assert!(parse_birthday("1990-02-30", today).is_err());
        assert!(parse_birthday("2027-01-01", today).is_err());
        assert!(parse_birthday("1850-01-01", today).is_err());
        assert!(parse_birthday("1990-02-28", today).is_ok());
    }

    #[test]
    fn time_zones_come_from_the_database() {
        assert!(parse_time_zone("Asia/Shanghai").is_ok());
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }
}
