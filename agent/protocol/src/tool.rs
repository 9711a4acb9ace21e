//! The tool calls a model makes: which tool, and the call's body.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The tools a model may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolName {
    Bash,
    Edit,
    Create,
    Submit,
    /// Runs the repository's own tests and reports parsed results (not one of CWM's tools).
    Test,
}

impl ToolName {
    pub const ALL: [ToolName; 5] = [
        Self::Bash,
        Self::Edit,
        Self::Create,
        Self::Submit,
        Self::Test,
    ];
    /// CWM's own four tools: the `cwm` preset, for reproducing CWM's numbers.
    pub const CWM: [ToolName; 4] = [Self::Bash, Self::Edit, Self::Create, Self::Submit];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bash => "bash",
            Self::Edit => "edit",
            Self::Create => "create",
            Self::Submit => "submit",
            Self::Test => "test",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One parsed tool call: `<tool: NAME>\nBODY\n</tool>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub tool: ToolName,
    pub body: String,
}

impl ToolCall {
    pub fn new(tool: ToolName, body: impl Into<String>) -> Self {
        Self {
            tool,
            body: body.into(),
        }
    }

    /// The call as the model writes it.
    pub fn render(&self) -> String {
        format!("<tool: {}>\n{}\n</tool>", self.tool, self.body)
    }
}
