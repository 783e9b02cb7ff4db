//! `[[sources]]` of `kind = "spaces"` (Cisco Spaces Firehose) and `kind = "meraki"` (Meraki Scanning
//! API receiver and Dashboard API): the location services that push positions.

use std::fmt;
use std::ops::Range;

use whereis_location::{LiveSettings, Secret, Unit};

use super::raw::{RawKind, RawSource};
use super::sections::{Reader, SourceDefaults};
use super::ConfigError;

/// A location source fed by a stream of positions, answered from the store's live table.
#[derive(Debug, Clone)]
pub struct LiveSourceConfig {
    /// Name, URL, API key, TLS and network settings.
    pub settings: LiveSettings,
    /// Lower wins when two sources see the same device.
    pub priority: i32,
    /// The unit of the positions and floor dimensions the service sends.
    pub unit: Unit,
    /// The corner of the floor plan that positions are measured from.
    pub origin: Origin,
    /// What the service is, and what only it needs.
    pub kind: LiveKind,
}

impl LiveSourceConfig {
    /// The configured name.
    pub fn name(&self) -> &str {
        &self.settings.name
    }
}

/// The push-based services whereis reads.
#[derive(Debug, Clone)]
pub enum LiveKind {
    /// Cisco Spaces: whereis holds the Firehose stream open.
    Spaces,
    /// Meraki: the Scanning API posts to `/ingest/meraki/{name}`.
    Meraki(MerakiReceiver),
}

impl LiveKind {
    /// `"spaces"` or `"meraki"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            LiveKind::Spaces => "spaces",
            LiveKind::Meraki(_) => "meraki",
        }
    }
}

/// What a Meraki network's posts must carry, and which network it is.
#[derive(Clone)]
pub struct MerakiReceiver {
    /// The Dashboard network id (`N_…` or `L_…`).
    pub network_id: String,
    /// The text a `GET` of the receiver answers, so that Meraki accepts the URL.
    pub validator: Secret,
    /// The shared secret every post carries.
    pub secret: Secret,
}

impl fmt::Debug for MerakiReceiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerakiReceiver")
            .field("network_id", &self.network_id)
            .finish_non_exhaustive()
    }
}

/// The corner positions are measured from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// x to the right, y down from the top-left corner (as CMX).
    TopLeft,
    /// x to the right, y up from the bottom-left corner.
    BottomLeft,
}

impl Origin {
    /// `"top-left"` or `"bottom-left"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::TopLeft => "top-left",
            Origin::BottomLeft => "bottom-left",
        }
    }
}

/// Reads one `spaces` or `meraki` source (its `name` already checked non-empty).
pub(super) fn live_source(
    r: &Reader,
    i: usize,
    name: String,
    source: RawSource,
    defaults: &SourceDefaults,
) -> Result<LiveSourceConfig, ConfigError> {
    let key = |field: &str| format!("sources[{i}].{field}");
    let kind_name = match source.kind {
        RawKind::Spaces => "spaces",
        _ => "meraki",
    };
    let not_here = |span: Range<usize>, field: &str| {
        r.at(
            span,
            format!(
                "{}: not a key of kind = \"{kind_name}\" (it authenticates with api_key_env or api_key_file)",
                key(field)
            ),
        )
    };
    if let Some(user) = &source.username {
        return Err(not_here(user.span(), "username"));
    }
    if let Some(env) = &source.password_env {
        return Err(not_here(env.span(), "password_env"));
    }
    if let Some(file) = &source.password_file {
        return Err(not_here(file.span(), "password_file"));
    }
    if let Some(user) = &source.v3_username {
        return Err(not_here(user.span(), "v3_username"));
    }
    if source.v3_password_env.is_some() || source.v3_password_file.is_some() {
        return Err(r.at(
            source.name.span(),
            format!("sources[{i}] ({name}): v3 credentials are for kind = \"cmx\""),
        ));
    }
    super::check_url(source.url.get_ref())
        .map_err(|msg| r.at(source.url.span(), format!("{}: {msg}", key("url"))))?;
    let api_key = r
        .secret(
            source.name.span(),
            (&key("api_key_env"), source.api_key_env.as_ref()),
            (&key("api_key_file"), source.api_key_file.as_ref()),
        )?
        .ok_or_else(|| {
            r.at(
                source.name.span(),
                format!(
                    "sources[{i}] ({name}): set api_key_env or api_key_file (keys are never written in the configuration)"
                ),
            )
        })?;
    let ca_file = super::sections::ca_file(r, &key("ca_file"), source.ca_file.as_ref())?;
    let (kind, default_unit, default_origin) = match source.kind {
        RawKind::Spaces => {
            for (field, present) in [
                ("network_id", source.network_id.as_ref().map(|v| v.span())),
                (
                    "validator_env",
                    source.validator_env.as_ref().map(|v| v.span()),
                ),
                (
                    "validator_file",
                    source.validator_file.as_ref().map(|v| v.span()),
                ),
                ("secret_env", source.secret_env.as_ref().map(|v| v.span())),
                ("secret_file", source.secret_file.as_ref().map(|v| v.span())),
            ] {
                if let Some(span) = present {
                    return Err(r.at(
                        span,
                        format!("{}: only kind = \"meraki\" has this key", key(field)),
                    ));
                }
            }
            (LiveKind::Spaces, Unit::Feet, Origin::TopLeft)
        }
        _ => {
            let network_id = match &source.network_id {
                Some(id) if !id.get_ref().trim().is_empty() => id.get_ref().trim().to_owned(),
                Some(id) => {
                    return Err(r.at(
                        id.span(),
                        format!("{}: must not be empty", key("network_id")),
                    ))
                }
                None => {
                    return Err(r.at(
                        source.name.span(),
                        format!(
                            "sources[{i}] ({name}): kind = \"meraki\" needs network_id (the Dashboard network the Scanning API posts for)"
                        ),
                    ))
                }
            };
            let validator = r
                .secret(
                    source.name.span(),
                    (&key("validator_env"), source.validator_env.as_ref()),
                    (&key("validator_file"), source.validator_file.as_ref()),
                )?
                .ok_or_else(|| {
                    r.at(
                        source.name.span(),
                        format!(
                            "sources[{i}] ({name}): set validator_env or validator_file (the validator the Meraki Dashboard shows for the receiver)"
                        ),
                    )
                })?;
            let secret = r
                .secret(
                    source.name.span(),
                    (&key("secret_env"), source.secret_env.as_ref()),
                    (&key("secret_file"), source.secret_file.as_ref()),
                )?
                .ok_or_else(|| {
                    r.at(
                        source.name.span(),
                        format!(
                            "sources[{i}] ({name}): set secret_env or secret_file (the shared secret of the Scanning API posts)"
                        ),
                    )
                })?;
            (
                LiveKind::Meraki(MerakiReceiver {
                    network_id,
                    validator,
                    secret,
                }),
                Unit::Meter,
                Origin::BottomLeft,
            )
        }
    };
    let unit = match &source.unit {
        None => default_unit,
        Some(text) => Unit::parse(text.get_ref()).ok_or_else(|| {
            r.at(
                text.span(),
                format!("{}: must be \"feet\" or \"meter\"", key("unit")),
            )
        })?,
    };
    let origin = match source
        .origin
        .as_ref()
        .map(|o| (o.span(), o.get_ref().as_str()))
    {
        None => default_origin,
        Some((_, "top-left")) => Origin::TopLeft,
        Some((_, "bottom-left")) => Origin::BottomLeft,
        Some((span, _)) => {
            return Err(r.at(
                span,
                format!("{}: must be \"top-left\" or \"bottom-left\"", key("origin")),
            ))
        }
    };
    Ok(LiveSourceConfig {
        settings: LiveSettings {
            name,
            url: source.url.into_inner(),
            api_key,
            ca_file,
            insecure_skip_tls_verify: source.insecure_skip_tls_verify,
            timeout: defaults.timeout,
            image_timeout: defaults.image_timeout,
            network: defaults.network.clone(),
        },
        priority: source.priority,
        unit,
        origin,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;

    const BOTH: &str = r#"
[[sources]]
name = "spaces"
kind = "spaces"
url = "https://partners.ciscospaces.io"
api_key_env = "SPACES_KEY"

[[sources]]
name = "meraki-hq"
kind = "meraki"
url = "https://api.meraki.com/api/v1"
network_id = "L_1"
api_key_env = "MERAKI_KEY"
validator_env = "MERAKI_VALIDATOR"
secret_env = "MERAKI_SECRET"
priority = 2
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "SPACES_KEY" => Some("spaces-key-value".into()),
            "MERAKI_KEY" => Some("meraki-key-value".into()),
            "MERAKI_VALIDATOR" => Some("validator-value".into()),
            "MERAKI_SECRET" => Some("secret-value".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/w.toml"), Path::new("/etc"), &env)
    }

    #[test]
    fn spaces_and_meraki_sources_are_read_with_their_defaults() {
        let config = parse(BOTH).expect("valid");
        assert!(config.sources.is_empty());
        assert_eq!(config.live_sources.len(), 2);
        let spaces = &config.live_sources[0];
        assert_eq!(spaces.name(), "spaces");
        assert_eq!(spaces.settings.api_key.expose(), "spaces-key-value");
        assert_eq!((spaces.unit, spaces.origin), (Unit::Feet, Origin::TopLeft));
        assert!(matches!(spaces.kind, LiveKind::Spaces));
        let meraki = &config.live_sources[1];
        assert_eq!(
            (meraki.unit, meraki.origin),
            (Unit::Meter, Origin::BottomLeft)
        );
        assert_eq!(meraki.priority, 2);
        let LiveKind::Meraki(receiver) = &meraki.kind else {
            panic!("meraki expected");
        };
        assert_eq!(receiver.network_id, "L_1");
        assert_eq!(receiver.validator.expose(), "validator-value");
        assert_eq!(receiver.secret.expose(), "secret-value");
        let shown = format!("{config:?}");
        for secret in [
            "spaces-key-value",
            "meraki-key-value",
            "validator-value",
            "secret-value",
        ] {
            assert!(!shown.contains(secret), "{secret} in Debug output");
        }
    }

    #[test]
    fn unit_and_origin_can_be_set_per_source() {
        let text = BOTH.replace(
            "api_key_env = \"SPACES_KEY\"",
            "api_key_env = \"SPACES_KEY\"\nunit = \"meter\"\norigin = \"bottom-left\"",
        );
        let config = parse(&text).expect("valid");
        assert_eq!(
            (config.live_sources[0].unit, config.live_sources[0].origin),
            (Unit::Meter, Origin::BottomLeft)
        );
        let text = BOTH.replace(
            "priority = 2",
            "priority = 2\norigin = \"top-left\"\nunit = \"feet\"",
        );
        let config = parse(&text).expect("valid");
        assert_eq!(
            (config.live_sources[1].unit, config.live_sources[1].origin),
            (Unit::Feet, Origin::TopLeft)
        );
    }

    #[test]
    fn a_bad_origin_or_unit_names_the_key() {
        let text = BOTH.replace("priority = 2", "priority = 2\norigin = \"centre\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("sources[1].origin"), "{err}");
        let text = BOTH.replace("priority = 2", "priority = 2\nunit = \"cubits\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("sources[1].unit"), "{err}");
    }

    #[test]
    fn meraki_needs_its_network_validator_and_secret() {
        for (line, missing) in [
            ("network_id = \"L_1\"\n", "network_id"),
            ("validator_env = \"MERAKI_VALIDATOR\"\n", "validator_env"),
            ("secret_env = \"MERAKI_SECRET\"\n", "secret_env"),
            ("api_key_env = \"MERAKI_KEY\"\n", "api_key_env"),
        ] {
            let err = parse(&BOTH.replace(line, "")).unwrap_err().to_string();
            assert!(err.contains(missing), "{missing}: {err}");
        }
    }

    #[test]
    fn keys_of_another_kind_are_refused() {
        let text = BOTH.replace(
            "api_key_env = \"SPACES_KEY\"",
            "api_key_env = \"SPACES_KEY\"\nnetwork_id = \"L_1\"",
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("sources[0].network_id"), "{err}");
        let text = BOTH.replace(
            "api_key_env = \"SPACES_KEY\"",
            "api_key_env = \"SPACES_KEY\"\nusername = \"api\"",
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("sources[0].username"), "{err}");
        let cmx = "[[sources]]\nname = \"c\"\nkind = \"cmx\"\nurl = \"https://c.example\"\nusername = \"api\"\npassword_env = \"SPACES_KEY\"\napi_key_env = \"SPACES_KEY\"\n";
        let err = parse(cmx).unwrap_err().to_string();
        assert!(err.contains("sources[0].api_key_env"), "{err}");
        let cmx = "[[sources]]\nname = \"c\"\nkind = \"cmx\"\nurl = \"https://c.example\"\npassword_env = \"SPACES_KEY\"\n";
        let err = parse(cmx).unwrap_err().to_string();
        assert!(err.contains("username"), "{err}");
    }

    #[test]
    fn a_name_is_unique_across_every_kind() {
        let text = BOTH.replace("name = \"meraki-hq\"", "name = \"spaces\"");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("used by another source"), "{err}");
    }

    #[test]
    fn a_missing_key_variable_is_named_without_a_value() {
        let text = BOTH.replace("SPACES_KEY", "NOT_SET");
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.contains("NOT_SET"), "{err}");
    }
}
