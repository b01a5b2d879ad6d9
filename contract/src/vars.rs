//! The names of the `ARBITRIUM_*` variables, the naming rule of the per-port variables, and
//! the encoding of `ARBITRIUM_DEPLOYMENT_TAGS`.

/// Every variable name starts with this; none present at all means "not on Edgegap".
pub const PREFIX: &str = "ARBITRIUM_";

pub const REQUEST_ID: &str = "ARBITRIUM_REQUEST_ID";
pub const HOST_ID: &str = "ARBITRIUM_HOST_ID";
pub const PUBLIC_IP: &str = "ARBITRIUM_PUBLIC_IP";
pub const PORTS_MAPPING: &str = "ARBITRIUM_PORTS_MAPPING";
pub const DEPLOYMENT_LOCATION: &str = "ARBITRIUM_DEPLOYMENT_LOCATION";
pub const DEPLOYMENT_TAGS: &str = "ARBITRIUM_DEPLOYMENT_TAGS";
pub const VCPU_UNITS: &str = "ARBITRIUM_DEPLOYMENT_VCPU_UNITS";
pub const MEMORY_MB: &str = "ARBITRIUM_DEPLOYMENT_MEMORY_MB";
pub const HOST_BASE_CLOCK_FREQUENCY: &str = "ARBITRIUM_HOST_BASE_CLOCK_FREQUENCY";
pub const DELETE_URL: &str = "ARBITRIUM_DELETE_URL";
pub const DELETE_TOKEN: &str = "ARBITRIUM_DELETE_TOKEN";
pub const CONTEXT_URL: &str = "ARBITRIUM_CONTEXT_URL";
pub const CONTEXT_TOKEN: &str = "ARBITRIUM_CONTEXT_TOKEN";
pub const BEACON_ENABLED: &str = "ARBITRIUM_BEACON_ENABLED";
pub const BEACON_PUBLIC_IP: &str = "ARBITRIUM_HOST_BEACON_PUBLIC_IP";
pub const BEACON_PORT_UDP_EXTERNAL: &str = "ARBITRIUM_HOST_BEACON_PORT_UDP_EXTERNAL";
pub const BEACON_PORT_TCP_EXTERNAL: &str = "ARBITRIUM_HOST_BEACON_PORT_TCP_EXTERNAL";

/// Variables whose values are secrets: never shown, logged or served.
pub const SECRETS: [&str; 2] = [DELETE_TOKEN, CONTEXT_TOKEN];

/// The flattened variables of one port start with this.
pub const PER_PORT_PREFIX: &str = "ARBITRIUM_PORT_";

/// Which value of a port a flattened variable carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortField {
    Internal,
    External,
    Protocol,
}

impl PortField {
    pub const ALL: [PortField; 3] = [
        PortField::Internal,
        PortField::External,
        PortField::Protocol,
    ];

    /// `INTERNAL`, `EXTERNAL` or `PROTOCOL`.
    pub fn suffix(self) -> &'static str {
        match self {
            PortField::Internal => "INTERNAL",
            PortField::External => "EXTERNAL",
            PortField::Protocol => "PROTOCOL",
        }
    }
}

/// The `<NAME>` of a port in its flattened variables: upper-cased (ASCII), `-` turned into
/// `_`, so `gameport` → `GAMEPORT`, `game-port` → `GAME_PORT`. The rule is seen in user code;
/// Edgegap does not document it.
pub fn port_env_name(port_name: &str) -> String {
    port_name.to_ascii_uppercase().replace('-', "_")
}

/// `ARBITRIUM_PORT_<NAME>_<FIELD>` for the port named `port_name`.
pub fn port_var(port_name: &str, field: PortField) -> String {
    format!(
        "{PER_PORT_PREFIX}{}_{}",
        port_env_name(port_name),
        field.suffix()
    )
}

/// The reverse of [`port_var`]: `ARBITRIUM_PORT_GAME_PORT_EXTERNAL` → (`GAME_PORT`,
/// `External`); `None` for any other name. The `<NAME>` cannot be turned back into the port's
/// own name (`-` and `_` both became `_`): the ports mapping has the real names.
pub fn parse_port_var(variable: &str) -> Option<(&str, PortField)> {
    let rest = variable.strip_prefix(PER_PORT_PREFIX)?;
    PortField::ALL.into_iter().find_map(|field| {
        rest.strip_suffix(field.suffix())
            .and_then(|name| name.strip_suffix('_'))
            .filter(|name| !name.is_empty())
            .map(|name| (name, field))
    })
}

/// `ARBITRIUM_DEPLOYMENT_TAGS` as the emulator writes it: comma-separated (`eu,ranked`), the
/// form seen in the wild, unless a tag would not survive that form (a comma, surrounding
/// blanks, an empty tag, a leading `[`): then a JSON array. [`decode_tags`] reads both.
pub fn encode_tags(tags: &[String]) -> String {
    let plain = |tag: &String| !tag.is_empty() && !tag.contains(',') && tag.trim() == tag;
    let ambiguous = tags.first().is_some_and(|first| first.starts_with('['));
    if tags.iter().all(plain) && !ambiguous {
        tags.join(",")
    } else {
        serde_json::Value::from(tags.to_vec()).to_string()
    }
}

/// Reads `ARBITRIUM_DEPLOYMENT_TAGS`: a JSON array of strings when it starts with `[`, else
/// comma-separated words (blank ones dropped). The platform's encoding is unconfirmed, so
/// both are accepted; an empty value means no tags.
pub fn decode_tags(value: &str) -> Result<Vec<String>, serde_json::Error> {
    let value = value.trim();
    if value.starts_with('[') {
        return serde_json::from_str(value);
    }
    Ok(value
        .split(',')
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_become_variable_names_and_back() {
        assert_eq!(port_env_name("gameport"), "GAMEPORT");
        assert_eq!(port_env_name("game-port"), "GAME_PORT");
        assert_eq!(port_env_name("Web_2"), "WEB_2");
        assert_eq!(
            port_var("game-port", PortField::External),
            "ARBITRIUM_PORT_GAME_PORT_EXTERNAL"
        );
        for field in PortField::ALL {
            let variable = port_var("my-port", field);
            assert_eq!(parse_port_var(&variable), Some(("MY_PORT", field)));
        }
        assert_eq!(parse_port_var("ARBITRIUM_PORT__INTERNAL"), None);
        assert_eq!(parse_port_var("ARBITRIUM_PORT_INTERNAL"), None);
        assert_eq!(parse_port_var("ARBITRIUM_PORT_GAME_PORTS"), None);
        assert_eq!(parse_port_var("ARBITRIUM_PORTS_MAPPING"), None);
        assert_eq!(parse_port_var(REQUEST_ID), None);
    }

    #[test]
    fn tags_survive_their_encoding() {
        let cases: [&[&str]; 8] = [
            &[],
            &["eu"],
            &["eu", "ranked"],
            &["a,b", "c"],
            &[" padded"],
            &[""],
            &["[not json", "x"],
            &["quote\"d", "back\\slash", "ünï"],
        ];
        for tags in cases {
            let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
            let encoded = encode_tags(&tags);
            assert_eq!(decode_tags(&encoded).unwrap(), tags, "{encoded}");
        }
        assert_eq!(encode_tags(&["eu".into(), "ranked".into()]), "eu,ranked");
        assert_eq!(encode_tags(&["a,b".into()]), r#"["a,b"]"#);
    }

    #[test]
    fn tags_are_read_in_both_encodings() {
        assert_eq!(
            decode_tags(r#" ["eu","ranked"] "#).unwrap(),
            ["eu", "ranked"]
        );
        assert_eq!(decode_tags(" eu, ranked ,,").unwrap(), ["eu", "ranked"]);
        assert!(decode_tags("").unwrap().is_empty());
        assert!(decode_tags("[1,2]").is_err());
    }
}
