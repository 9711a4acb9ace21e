//! Chat messages with CWM's roles: `system`, `user`, `assistant` and `tool: NAME`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who a message is from. Serialized as the role string itself, e.g. `"tool: bash"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool result; the name is the tool's (`bash`, `edit`, ...).
    Tool(String),
}

impl Role {
    pub fn as_string(&self) -> String {
        match self {
            Role::System => "system".into(),
            Role::User => "user".into(),
            Role::Assistant => "assistant".into(),
            Role::Tool(name) => format!("tool: {name}"),
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            other => other
                .strip_prefix("tool:")
                .map(|name| Role::Tool(name.trim().to_string())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_string())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Role::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown role {text:?}; expected system, user, assistant or `tool: NAME`"
            ))
        })
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
    pub fn tool(name: &str, content: impl Into<String>) -> Self {
        Self::new(Role::Tool(name.to_string()), content)
    }
}

/// How many assistant turns `messages` holds: the index of the next reply, for policies that
/// play back a fixed list of turns.
pub fn assistant_turns(messages: &[Message]) -> usize {
    messages
        .iter()
        .filter(|m| m.role == Role::Assistant)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_as_strings() {
        let m = Message::tool("bash", "x");
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"role":"tool: bash","content":"x"}"#);
        assert_eq!(serde_json::from_str::<Message>(&json).unwrap(), m);
        assert!(serde_json::from_str::<Message>(r#"{"role":"robot","content":""}"#).is_err());
    }
}
