//! The machinery behind [`super::defs`]: what a setting definition is, the layers a value can come
//! from (`ferry.toml`, `RUST_LOG`, flags and `FERRY_*` variables), and their merge.
//!
//! A layer holds raw text per key; [`merge`] parses every value of every layer with the setting's own
//! [`Kind`] (so a flag, a variable and a file accept exactly the same values) and keeps the highest
//! layer's, or the default.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::{Arg, ArgAction, ArgMatches};
use ferry_auth::defender::Network;
use ferry_auth::Permissions;

use super::defs::DEFS;

/// One setting: everything the flag, the variable, the file key, `--help`, the example file and the
/// docs are made from.
#[derive(Debug)]
pub struct Def {
    /// The `ferry.toml` key; `table.key` for keys inside a table.
    pub key: &'static str,
    /// Type, parser and validation.
    pub kind: &'static Kind,
    /// A list: a TOML array, a comma-separated variable, a repeatable flag.
    pub list: bool,
    /// The default.
    pub default: Default,
    /// Which commands take the flag.
    pub scope: Scope,
    /// Where it is listed in `--help` and `ferry.example.toml`.
    pub group: &'static Group,
    /// One line for `--help` and `ferry.example.toml`.
    pub help: &'static str,
    /// A typical value other than the default, written as the variable would be (lists
    /// comma-separated).
    pub example: &'static str,
}

/// A setting's default.
#[derive(Debug, Clone, Copy)]
pub enum Default {
    /// This value, written as the variable would be (lists comma-separated, `""` for an empty list).
    Is(&'static str),
    /// Computed from other settings: the description for the docs, and the value it has when
    /// nothing else is configured (for the example file).
    Derived(&'static str, &'static str),
    /// Not set; the description says what happens then.
    Unset(&'static str),
}

/// Which commands take a setting's flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every command (`--data-dir`, `--users-db`, `--log`).
    Global,
    /// `ferry serve` only.
    Serve,
}

/// A group of settings: a heading, or a TOML table.
#[derive(Debug)]
pub struct Group {
    /// The TOML table, if the keys live in one.
    pub table: Option<&'static str>,
    /// Heading in `--help` and `ferry.example.toml`.
    pub title: &'static str,
    /// Comment above the group in `ferry.example.toml` (may be empty).
    pub intro: &'static str,
}

impl Group {
    /// Top-level keys under a heading.
    pub const fn top(title: &'static str, intro: &'static str) -> Self {
        Self {
            table: None,
            title,
            intro,
        }
    }

    /// The keys of `[table]`.
    pub const fn table(table: &'static str, title: &'static str, intro: &'static str) -> Self {
        Self {
            table: Some(table),
            title,
            intro,
        }
    }
}

/// How TOML spells a value (list items for lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TomlType {
    /// A string.
    String,
    /// An integer.
    Integer,
    /// `true` or `false`.
    Boolean,
}

/// A type of setting: how it is written and parsed.
#[derive(Debug)]
pub struct Kind {
    /// TOML spelling.
    pub toml: TomlType,
    /// Placeholder in `--help`.
    pub value_name: &'static str,
    /// The Type row of the docs.
    #[cfg_attr(not(test), allow(dead_code))]
    pub doc: &'static str,
    /// Parses and validates one value (one item of a list); errors are sentences without the key.
    pub parse: fn(&str) -> Result<Value, String>,
}

/// A parsed value.
#[derive(Debug, Clone)]
pub enum Value {
    /// A path.
    Path(PathBuf),
    /// Text.
    Text(String),
    /// A whole number.
    Number(u64),
    /// A boolean.
    Bool(bool),
    /// A socket address.
    Addr(SocketAddr),
    /// A port range.
    Ports(RangeInclusive<u16>),
    /// An IP address.
    Ip(IpAddr),
    /// Permissions.
    Permissions(Permissions),
    /// A TLS policy.
    Policy(ferry_ftpd::TlsPolicy),
    /// A network.
    Network(Network),
    /// A per-client-network masquerade rule: the network and what PASV announces to it.
    MasqueradeRule(Network, super::parse::Masquerade),
}

/// The kinds of settings.
pub mod kind {
    use super::super::{parse, security};
    use super::{Kind, TomlType, Value};

    macro_rules! kinds {
        ($($name:ident: $toml:ident, $value_name:literal, $doc:literal, $parse:expr;)*) => {
            $(
                #[doc = $doc]
                pub const $name: Kind = Kind {
                    toml: TomlType::$toml,
                    value_name: $value_name,
                    doc: $doc,
                    parse: $parse,
                };
            )*
        };
    }

    kinds! {
        PATH: String, "PATH", "path", |s| parse::path(s).map(Value::Path);
        DATABASE: String, "PATH|URL", "path of an SQLite file, or a `postgres://` URL",
            |s| match super::super::users_db::parse_url(s.trim()) {
                Some(url) => url.map(Value::Text),
                None => parse::path(s).map(Value::Path),
            };
        TEXT: String, "TEXT", "string", |s| Ok(Value::Text(s.trim().to_owned()));
        SOCKET_ADDR: String, "ADDR", "socket address `IP:PORT` (IPv6 in brackets)",
            |s| parse::socket_addr(s).map(Value::Addr);
        PORT_RANGE: String, "LOW-HIGH", "string `\"LOW-HIGH\"` (or a single port), `1024 <= LOW <= HIGH <= 65535`",
            |s| parse::port_range(s).map(Value::Ports);
        IPV4: String, "ADDR", "IPv4 address or host name (resolved to IPv4 at start and on SIGHUP)",
            |s| parse::masquerade(s).map(|m| match m {
                parse::Masquerade::Ip(ip) => Value::Ip(ip),
                parse::Masquerade::Host(name) => Value::Text(name),
            });
        MASQUERADE_RULE: String, "NET=ADDR",
            "`NETWORK=ADDRESS`: a network (`ADDRESS/PREFIX` or one address) and an IPv4 address or host name",
            |s| parse::masquerade_rule(s).map(|(n, m)| Value::MasqueradeRule(n, m));
        GREETING: String, "TEXT", "string: one line, no control characters, at most 200 bytes",
            |s| parse::greeting(s).map(Value::Text);
        SECS: Integer, "SECS", "integer seconds, 1 to 31536000", |s| parse::secs(s).map(Value::Number);
        LOGIN_ATTEMPTS: Integer, "N", "integer, at least 1",
            |s| parse::login_attempts(s).map(|n| Value::Number(n.into()));
        BYTES: Integer, "BYTES", "integer bytes, 0 or more",
            |s| parse::bytes(s).map(Value::Number);
        LIMIT: Integer, "N", "integer, 0 (unlimited) or more",
            |s| parse::limit(s).map(Value::Number);
        COUNT: Integer, "N", "integer, at least 1",
            |s| parse::count(s).map(|n| Value::Number(n as u64));
        SESSION_LIMIT: Integer, "N", "integer, 0 (no limit) to 1000000",
            |s| match s.trim().parse::<u64>() {
                Ok(n) if n <= 1_000_000 => Ok(Value::Number(n)),
                _ => Err(format!("{s:?} is not a session limit; expected 0 (no limit) to 1000000")),
            };
        BOOL: Boolean, "BOOL", "boolean (`true`/`false`; flags and variables also take `yes`/`no`, `on`/`off`, `1`/`0`)",
            |s| parse::boolean(s).map(Value::Bool);
        HOME: String, "PATH", "virtual path: starts with `/`, no `.` or `..` components",
            |s| parse::home(s).map(Value::Text);
        PERMISSIONS: String, "PERMS", "permission string (see [Permission strings](#permission-strings))",
            |s| parse::permissions(s).map(Value::Permissions);
        TLS_POLICY: String, "POLICY", "`\"required\"`, `\"optional\"` or `\"off\"`",
            |s| parse::tls_policy(s).map(Value::Policy);
        LOG_FILTER: String, "FILTER", "string, a tracing `EnvFilter` directive",
            |s| parse::log_filter(s).map(Value::Text);
        COMMANDS_PER_SEC: Integer, "N", "integer, 1 to 1000000",
            |s| security::commands_per_sec(s).map(|n| Value::Number(n.into()));
        FAILED_LOGIN_DELAY_MS: Integer, "MS", "integer milliseconds, 100 to 60000",
            |s| security::failed_login_delay_ms(s).map(Value::Number);
        THRESHOLD: Integer, "N", "integer, 1 to 10000",
            |s| security::threshold(s).map(|n| Value::Number(n.into()));
        SCORE: Integer, "N", "integer, 0 (not counted) to 10000",
            |s| security::score(s).map(|n| Value::Number(n.into()));
        NETWORK: String, "NET", "network: `ADDRESS/PREFIX` or a single address, IPv4 or IPv6",
            |s| security::network(s).map(Value::Network);
        MIN_PASSWORD_LENGTH: Integer, "N", "integer, 8 to 1024",
            |s| parse::min_password_length(s).map(|n| Value::Number(n as u64));
        DATA_SESSION: String, "MODE", "`\"own\"`, `\"same_user\"` or `\"danger_any\"`",
            |s| parse::data_session(s).map(|_| Value::Text(s.trim().to_ascii_lowercase()));
        ADMIN_ADDR: String, "ADDR", "socket address `IP:PORT` (IPv6 in brackets), or `\"off\"`",
            |s| match s.trim() {
                "off" => Ok(Value::Text("off".to_owned())),
                addr => parse::socket_addr(addr).map(Value::Addr),
            };
        PROXY_MODE: String, "MODE", "`\"off\"`, `\"optional\"` or `\"required\"`",
            |s| parse::proxy_mode(s).map(|_| Value::Text(s.trim().to_ascii_lowercase()));
        PROXY_DATA: String, "MODE", "`\"none\"` or `\"header\"`",
            |s| parse::proxy_data(s).map(|_| Value::Text(s.trim().to_ascii_lowercase()));
        STORAGE_BACKEND: String, "BACKEND", "`\"local\"` or `\"s3\"`",
            |s| parse::storage_backend(s).map(|b| Value::Text(b.to_owned()));
        URL: String, "URL", "URL `http://HOST[:PORT]` or `https://HOST[:PORT]`",
            |s| parse::url(s).map(Value::Text);
        ACTIVE_SOURCE_PORT: String, "CHOICE", "`\"any\"` or `\"control-minus-one\"`",
            |s| parse::active_source_port(s).map(|_| Value::Text(s.to_owned()));
        LOG_FORMAT: String, "FORMAT", "`\"text\"` or `\"json\"`",
            |s| match s.trim() {
                f @ ("text" | "json") => Ok(Value::Text(f.to_owned())),
                _ => Err("expected \"text\" or \"json\"".to_owned()),
            };
        HOOK_URL: String, "URL", "`http://` or `https://` URL",
            |s| parse::hook_url(s).map(Value::Text);
        EVENT: String, "EVENT", "event name: `upload`, `download`, `delete`, `rename`, `mkdir`, `rmdir`, `login`, `login_failed` or `ban`",
            |s| parse::hook_event(s).map(|_| Value::Text(s.trim().to_owned()));
        ARGUMENT: String, "ARG", "string (one program argument; the first is the program)",
            |s| Ok(Value::Text(s.to_owned()));
        RETRIES: Integer, "N", "integer, 0 to 10",
            |s| match s.trim().parse::<u64>() {
                Ok(n) if n <= 10 => Ok(Value::Number(n)),
                _ => Err("expected a whole number from 0 to 10".to_owned()),
            };
    }
}

impl Def {
    /// The flag, without the leading `--`.
    pub fn flag(&self) -> String {
        self.key.replace(['.', '_'], "-")
    }

    /// The environment variable.
    pub fn env(&self) -> String {
        format!("FERRY_{}", self.key.replace('.', "_").to_ascii_uppercase())
    }

    /// The key inside its table (`policy` for `ftps.policy`).
    pub fn short_key(&self) -> &'static str {
        self.key.rsplit_once('.').map_or(self.key, |(_, k)| k)
    }

    /// The default as the docs and `--help` show it.
    pub fn default_doc(&self) -> String {
        match self.default {
            Default::Is(raw) => format!("`{}`", self.toml_literal(raw)),
            Default::Derived(doc, _) | Default::Unset(doc) => doc.to_owned(),
        }
    }

    /// `raw` (written as a variable would be) as a TOML value.
    pub fn toml_literal(&self, raw: &str) -> String {
        let one = |s: &str| match self.kind.toml {
            TomlType::String => format!("{s:?}"),
            TomlType::Integer | TomlType::Boolean => s.to_owned(),
        };
        if self.list {
            let items: Vec<String> = split_list(raw).iter().map(|s| one(s)).collect();
            format!("[{}]", items.join(", "))
        } else {
            one(raw)
        }
    }

    /// The clap argument.
    fn arg(&'static self) -> Arg {
        let kind = self.kind;
        let plain = self.help.strip_prefix("DANGER: ").unwrap_or(self.help);
        let help = format!(
            "{}{plain} (config key `{}`) [default: {}]",
            if plain.len() < self.help.len() {
                "DANGER: "
            } else {
                ""
            },
            self.key,
            self.default_doc().replace('`', "")
        );
        let heading = match self.scope {
            Scope::Global => "Global options",
            Scope::Serve => self.group.title.split(';').next().unwrap_or(self.group.title),
        };
        let arg = Arg::new(self.key)
            .long(self.flag())
            .env(self.env())
            .value_name(kind.value_name)
            .help(help)
            .help_heading(heading)
            .global(self.scope == Scope::Global)
            .value_parser(move |s: &str| (kind.parse)(s).map(|_| s.to_owned()));
        if self.list {
            arg.value_delimiter(',').action(ArgAction::Append)
        } else if kind.toml == TomlType::Boolean {
            arg.num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true")
                .action(ArgAction::Set)
        } else {
            arg.action(ArgAction::Set)
        }
    }
}

/// Raw values from one source, by key.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    /// Where the values came from, for error messages (a file name, `RUST_LOG`, `flags`).
    pub origin: String,
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Layer {
    /// Whether this layer sets `key`.
    pub fn sets(&self, key: &str) -> bool {
        self.values.contains_key(key)
    }

    /// An empty layer.
    pub fn new(origin: &str) -> Self {
        Self {
            origin: origin.to_owned(),
            values: BTreeMap::new(),
        }
    }

    #[cfg(test)]
    /// Sets `key` (which must be defined) to `raw` (lists comma-separated).
    pub fn set(&mut self, key: &str, raw: &str) {
        let def = find(key).unwrap_or_else(|| panic!("no setting `{key}`"));
        let items = if def.list {
            split_list(raw)
        } else {
            vec![raw.to_owned()]
        };
        self.values.insert(def.key, items);
    }

    /// `RUST_LOG`, which sits between `--log`/`FERRY_LOG` and the file.
    pub fn rust_log(value: Option<&str>) -> Self {
        let mut layer = Self::new("RUST_LOG");
        if let Some(v) = value {
            layer.values.insert("log", vec![v.to_owned()]);
        }
        layer
    }

    /// The values of a `ferry.toml`. Unknown keys and values of the wrong TOML type are errors that
    /// name the key.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| anyhow!("invalid config file {origin}: {e}"))?;
        let mut layer = Self::new(origin);
        for (name, value) in &table {
            match value {
                toml::Value::Table(inner) if is_table(name) => {
                    for (sub, value) in inner {
                        layer.insert_toml(&format!("{name}.{sub}"), value)?;
                    }
                }
                _ => layer.insert_toml(name, value)?,
            }
        }
        Ok(layer)
    }

    fn insert_toml(&mut self, key: &str, value: &toml::Value) -> Result<()> {
        let origin = &self.origin;
        let Some(def) = find(key) else {
            if let Some((_, now)) = RENAMED.iter().find(|(old, _)| *old == key) {
                return Err(anyhow!("{origin}: `{key}` was replaced: {now}; remove it"));
            }
            let hint = if is_table(key) {
                format!("`{key}` is a table: write it as [{key}]")
            } else {
                "see ferry.example.toml for every key".to_owned()
            };
            return Err(anyhow!("{origin}: unknown key `{key}` ({hint})"));
        };
        let wrong = |found: &toml::Value| {
            let list = if def.list { "a list of " } else { "" };
            let want = match def.kind.toml {
                TomlType::String => "string",
                TomlType::Integer => "integer",
                TomlType::Boolean => "boolean",
            };
            anyhow!(
                "{origin}: invalid `{key}`: expected {list}{want}{s}, found {}",
                found.type_str(),
                s = if def.list { "s" } else { "" }
            )
        };
        let item = |v: &toml::Value| match (def.kind.toml, v) {
            (TomlType::String, toml::Value::String(s)) => Ok(s.clone()),
            (TomlType::Integer, toml::Value::Integer(i)) => Ok(i.to_string()),
            (TomlType::Boolean, toml::Value::Boolean(b)) => Ok(b.to_string()),
            _ => Err(wrong(v)),
        };
        let items = match (def.list, value) {
            (true, toml::Value::Array(items)) => items.iter().map(item).collect::<Result<_>>()?,
            (true, v) => return Err(wrong(v)),
            (false, v) => vec![item(v)?],
        };
        self.values.insert(def.key, items);
        Ok(())
    }

    /// The flags (and `FERRY_*` variables, which clap reads for them) of `scope`.
    fn from_matches(m: &ArgMatches, scope: Scope) -> Self {
        let mut layer = Self::new("flags");
        for def in DEFS.iter().filter(|d| d.scope == scope) {
            if let Ok(Some(items)) = m.try_get_many::<String>(def.key) {
                layer.values.insert(def.key, items.cloned().collect());
            }
        }
        layer
    }
}

/// Keys that no longer exist, with what replaced them (an old file gets a message that says so).
const RENAMED: &[(&str, &str)] = &[(
    "ftps.danger_allow_data_tls_from_sibling_sessions",
    "use ftps.data_session = \"own\" | \"same_user\" | \"danger_any\" (same_user, what `true` meant, is \
     now the default)",
)];

/// The merged, parsed settings.
#[derive(Debug)]
pub struct Values {
    values: HashMap<&'static str, Vec<Value>>,
}

/// Merges the layers, lowest first, over the defaults. Every value of every layer is checked, even
/// one that a higher layer overrides; an error names the key and the layer.
pub fn merge(layers: &[&Layer]) -> Result<Values> {
    let mut values = HashMap::new();
    for def in DEFS {
        let parse_all = |items: &[String], origin: &str| -> Result<Vec<Value>> {
            items
                .iter()
                .map(|s| (def.kind.parse)(s).map_err(|m| anyhow!("{origin}: invalid `{}`: {m}", def.key)))
                .collect()
        };
        let mut chosen = match def.default {
            Default::Is(raw) => {
                let items = if def.list {
                    split_list(raw)
                } else {
                    vec![raw.to_owned()]
                };
                Some(parse_all(&items, "default")?)
            }
            Default::Derived(..) | Default::Unset(_) => None,
        };
        for layer in layers {
            if let Some(items) = layer.values.get(def.key) {
                chosen = Some(parse_all(items, &layer.origin)?);
            }
        }
        if let Some(v) = chosen {
            values.insert(def.key, v);
        }
    }
    Ok(Values { values })
}

impl Values {
    fn one(&self, key: &str) -> Option<&Value> {
        debug_assert!(find(key).is_some(), "no setting `{key}`");
        self.values.get(key).and_then(|v| v.first())
    }

    fn wrong(key: &str) -> anyhow::Error {
        anyhow!("internal error: setting `{key}` read as the wrong type")
    }

    /// A list setting (`None`: not set and no default).
    pub fn list<T>(&self, key: &str, f: impl Fn(&Value) -> Option<T>) -> Result<Option<Vec<T>>> {
        match self.values.get(key) {
            None => Ok(None),
            Some(items) => items
                .iter()
                .map(|v| f(v).ok_or_else(|| Self::wrong(key)))
                .collect::<Result<_>>()
                .map(Some),
        }
    }

    /// A setting of any kind, extracted by `f` (`None`: not set and no default).
    pub fn opt<T>(&self, key: &str, f: impl Fn(&Value) -> Option<T>) -> Result<Option<T>> {
        self.one(key)
            .map(|v| f(v).ok_or_else(|| Self::wrong(key)))
            .transpose()
    }

    /// A setting that has a default, extracted by `f`.
    pub fn get<T>(&self, key: &str, f: impl Fn(&Value) -> Option<T>) -> Result<T> {
        self.opt(key, f)?
            .ok_or_else(|| anyhow!("internal error: setting `{key}` has no default"))
    }

    /// A path, if set.
    pub fn path(&self, key: &str) -> Result<Option<PathBuf>> {
        self.opt(key, |v| match v {
            Value::Path(p) => Some(p.clone()),
            _ => None,
        })
    }

    /// Text.
    pub fn text(&self, key: &str) -> Result<String> {
        self.get(key, |v| match v {
            Value::Text(s) => Some(s.clone()),
            _ => None,
        })
    }

    /// A whole number.
    pub fn number<T: TryFrom<u64>>(&self, key: &str) -> Result<T> {
        self.get(key, |v| match v {
            Value::Number(n) => T::try_from(*n).ok(),
            _ => None,
        })
    }

    /// Seconds.
    pub fn secs(&self, key: &str) -> Result<Duration> {
        self.number(key).map(Duration::from_secs)
    }

    /// A boolean.
    pub fn bool(&self, key: &str) -> Result<bool> {
        self.get(key, |v| match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        })
    }

    /// A TLS policy.
    pub fn policy(&self, key: &str) -> Result<ferry_ftpd::TlsPolicy> {
        self.get(key, |v| match v {
            Value::Policy(p) => Some(*p),
            _ => None,
        })
    }

    /// Every setting's value as text (`Debug` of the parsed values), by key.
    pub fn fingerprint(&self) -> BTreeMap<&'static str, String> {
        self.values.iter().map(|(k, v)| (*k, format!("{v:?}"))).collect()
    }

    /// A list of socket addresses.
    pub fn addrs(&self, key: &str) -> Result<Vec<SocketAddr>> {
        Ok(self
            .list(key, |v| match v {
                Value::Addr(a) => Some(*a),
                _ => None,
            })?
            .unwrap_or_default())
    }
}

/// The definition of `key`.
pub fn find(key: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.key == key)
}

fn is_table(name: &str) -> bool {
    DEFS.iter().any(|d| d.group.table == Some(name))
}

/// Splits a comma-separated list; an empty string is an empty list.
pub fn split_list(raw: &str) -> Vec<String> {
    if raw.trim().is_empty() {
        return Vec::new();
    }
    raw.split(',').map(|s| s.trim().to_owned()).collect()
}

/// The flags of every command (`--data-dir`, `--users-db`, `--log`), made from the definitions.
#[derive(Debug, Clone, Default)]
pub struct GlobalFlags(pub Layer);

/// The flags of `ferry serve`, made from the definitions.
#[derive(Debug, Clone, Default)]
pub struct ServeFlags(pub Layer);

macro_rules! flags_impl {
    ($ty:ident, $scope:expr) => {
        impl clap::FromArgMatches for $ty {
            fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
                Ok(Self(Layer::from_matches(m, $scope)))
            }
            fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
                *self = Self::from_arg_matches(m)?;
                Ok(())
            }
        }
        impl clap::Args for $ty {
            fn augment_args(cmd: clap::Command) -> clap::Command {
                cmd.args(DEFS.iter().filter(|d| d.scope == $scope).map(Def::arg))
            }
            fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
                Self::augment_args(cmd)
            }
        }
    };
}
flags_impl!(GlobalFlags, Scope::Global);
flags_impl!(ServeFlags, Scope::Serve);
