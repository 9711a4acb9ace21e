//! The prompt profile: every text the model sees (system and user prompts, tool
//! descriptions, the observation wrapper and budget block, the submit echo, the restart
//! notice, every error message, the cut marker), as minijinja templates loaded from TOML.
//!
//! The built-in profile (`tools/profiles/default.toml`) is cwm-bench's own wording. A user
//! profile overrides any subset of its fields; `cwm-bench prompts dump` writes the default as
//! a file to start from, and `docs/prompts.md` lists the fields, their placeholders, and where
//! CWM's own text for each lives in CWM's repository.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::Environment;
use serde::Serialize;

pub use crate::error::ProfileError;

/// The built-in profile, with a comment on every field.
pub const DEFAULT_PROFILE: &str = include_str!("../profiles/default.toml");

/// Every field: its dotted key and the placeholders it may use.
pub const FIELDS: &[(&str, &[&str])] = &[
    (
        "system.prompt",
        &["max_turns", "context_tokens", "command_timeout", "tools"],
    ),
    ("system.tool_separator", &[]),
    ("tools.bash", &[]),
    ("tools.edit", &[]),
    ("tools.create", &[]),
    ("tools.submit", &[]),
    ("tools.test", &[]),
    ("user.prompt", &["issue"]),
    ("tts.reproduction_prompt", &["issue"]),
    ("observation.wrapper", &["output", "budget"]),
    ("observation.budget", &["turns", "tokens"]),
    ("observation.cut_marker", &[]),
    ("observation.notice_separator", &[]),
    ("session.restart_notice", &["reason", "repo"]),
    ("session.reason_timeout", &["seconds"]),
    ("session.reason_output", &[]),
    ("session.reason_exited", &[]),
    ("session.disk_limit", &["limit", "used"]),
    ("format_errors.no_tool_call", &["tools"]),
    ("format_errors.call_inside_thinking", &[]),
    ("format_errors.several_calls", &["count", "names"]),
    (
        "format_errors.tag_count_mismatch",
        &["opens", "closes", "calls"],
    ),
    ("format_errors.unknown_tool", &["name", "tools"]),
    ("format_errors.empty_body", &["name"]),
    ("format_errors.think_count", &["count"]),
    ("edit.format", &[]),
    ("edit.parse_error", &["reason", "format"]),
    ("edit.reason_one_line", &[]),
    ("edit.reason_no_path", &[]),
    ("edit.reason_no_search_marker", &[]),
    ("edit.reason_no_divider", &[]),
    ("edit.reason_no_replace_marker", &[]),
    ("edit.reason_text_after_replace", &[]),
    ("edit.several_blocks", &["count"]),
    ("edit.ambiguous", &["dividers"]),
    ("edit.empty_search", &[]),
    ("edit.missing", &["path"]),
    ("edit.not_a_file", &["path"]),
    ("edit.not_utf8", &["path"]),
    ("edit.no_match", &["path", "hint"]),
    ("edit.hint_line_numbers", &[]),
    ("edit.hint_indentation", &["line"]),
    ("edit.hint_longer_line", &["line"]),
    ("edit.several_matches", &["path", "count", "lines"]),
    (
        "edit.success",
        &[
            "path",
            "line",
            "total",
            "first",
            "last",
            "snippet",
            "snippet_lines",
        ],
    ),
    ("edit.emptied", &["path", "line"]),
    ("create.no_path", &[]),
    ("create.exists", &["path"]),
    ("create.no_parent", &["path", "parent"]),
    ("create.success", &["path", "lines"]),
    ("submit.missing", &["path"]),
    ("submit.not_a_file", &["path"]),
    ("submit.empty", &["path"]),
    ("submit.not_a_patch", &["path"]),
    ("submit.nothing_left", &["path", "note"]),
    ("submit.does_not_apply", &["path", "base", "errors", "hint"]),
    ("submit.hint_already_exists", &[]),
    ("submit.echo", &["patch", "notes"]),
    ("submit.unchecked", &[]),
    ("submit.left_out", &["files"]),
    ("submit.left_out_file", &["file", "reason"]),
    ("submit.reason_binary", &[]),
    ("submit.reason_not_utf8", &[]),
    ("test.no_runner", &[]),
    ("test.nothing_parsed", &[]),
    ("test.runner_failed", &[]),
    (
        "test.counts",
        &["passed", "failed", "errors", "skipped", "tests"],
    ),
    ("test.more_failing", &["count"]),
    ("test.end_of_output", &[]),
];

/// A loaded profile: the built-in texts with any overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    templates: BTreeMap<String, String>,
    /// Where the overrides came from, for the run's config.
    pub source: Option<PathBuf>,
}

impl Default for Profile {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Profile {
    /// The built-in profile.
    pub fn builtin() -> Self {
        let mut profile = Self {
            templates: BTreeMap::new(),
            source: None,
        };
        if let Err(err) = profile.overlay(DEFAULT_PROFILE, "built-in") {
            // The built-in file is checked by the unit tests; it cannot fail at run time.
            unreachable!("the built-in prompt profile is invalid: {err}");
        }
        profile
    }

    /// The built-in profile with the fields of the TOML file at `path` replacing its own.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut profile = Self::builtin();
        profile.overlay(&text, &path.display().to_string())?;
        profile.source = Some(path.to_path_buf());
        Ok(profile)
    }

    /// Replaces fields with those of `text` (TOML), checking each against [`FIELDS`].
    pub fn overlay(&mut self, text: &str, source_name: &str) -> Result<(), ProfileError> {
        let value: toml::Table =
            text.parse()
                .map_err(|source: toml::de::Error| ProfileError::Toml {
                    source_name: source_name.into(),
                    source,
                })?;
        let mut flat = Vec::new();
        flatten("", &toml::Value::Table(value), &mut flat, source_name)?;
        for (key, template) in flat {
            check_field(&key, &template, source_name)?;
            self.templates.insert(key, template);
        }
        Ok(())
    }

    /// The raw template of a field (empty for an unknown key).
    pub fn template(&self, key: &str) -> &str {
        self.templates.get(key).map_or("", String::as_str)
    }

    /// Renders field `key` with `context` (a serialisable map of its placeholders). Output is
    /// byte-exact: no trailing newline is added or removed. A template error (possible only
    /// with filters misused in a user profile) renders as a visible note, never a panic.
    pub fn render(&self, key: &str, context: impl Serialize) -> String {
        let mut env = Environment::new();
        env.set_keep_trailing_newline(true);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        match env.render_str(self.template(key), context) {
            Ok(text) => text,
            Err(err) => format!("[prompt profile error in `{key}`: {err}]"),
        }
    }

    /// A field without placeholders.
    pub fn text(&self, key: &str) -> String {
        self.render(key, ())
    }

    /// Makes field `key` hold the template of field `from` (e.g. the user prompt of a
    /// test-writing episode, `user.prompt` from `tts.reproduction_prompt`). Placeholders of
    /// `from` that `key` does not get render as a visible profile error, never a panic, so
    /// the two fields should share their placeholders.
    pub fn use_template(&mut self, key: &str, from: &str) {
        let template = self.template(from).to_string();
        self.templates.insert(key.to_string(), template);
    }
}

/// Flattens nested tables into dotted keys; every leaf must be a string.
fn flatten(
    prefix: &str,
    value: &toml::Value,
    out: &mut Vec<(String, String)>,
    source_name: &str,
) -> Result<(), ProfileError> {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let full = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&full, value, out, source_name)?;
            }
            Ok(())
        }
        toml::Value::String(text) => {
            out.push((prefix.to_string(), text.clone()));
            Ok(())
        }
        _ if FIELDS.iter().any(|(k, _)| *k == prefix) => Err(ProfileError::NotAString {
            source_name: source_name.into(),
            key: prefix.into(),
        }),
        _ => Err(ProfileError::UnknownField {
            source_name: source_name.into(),
            key: prefix.into(),
        }),
    }
}

/// The key must be a known field, the template must parse, and it may use only the
/// field's placeholders.
fn check_field(key: &str, template: &str, source_name: &str) -> Result<(), ProfileError> {
    let Some((_, allowed)) = FIELDS.iter().find(|(k, _)| *k == key) else {
        return Err(ProfileError::UnknownField {
            source_name: source_name.into(),
            key: key.into(),
        });
    };
    let env = Environment::new();
    let parsed = env
        .template_from_str(template)
        .map_err(|source| ProfileError::BadTemplate {
            source_name: source_name.into(),
            key: key.into(),
            source,
        })?;
    for placeholder in parsed.undeclared_variables(false) {
        if !allowed.contains(&placeholder.as_str()) {
            return Err(ProfileError::UnknownPlaceholder {
                source_name: source_name.into(),
                key: key.into(),
                placeholder,
                allowed: if allowed.is_empty() {
                    "none".into()
                } else {
                    allowed.join(", ")
                },
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_profile_has_every_field_and_nothing_else() {
        let profile = Profile::builtin();
        for (key, _) in FIELDS {
            assert!(
                !profile.template(key).is_empty() || key.ends_with("separator"),
                "{key}"
            );
            assert!(profile.templates.contains_key(*key), "{key} missing");
        }
        assert_eq!(profile.templates.len(), FIELDS.len());
    }

    #[test]
    fn the_builtin_cut_marker_is_the_sessions() {
        // Output cut by the session (bytes) and by the observation (tokens) carries the same
        // marker unless a user profile says otherwise.
        assert_eq!(
            Profile::builtin().text("observation.cut_marker"),
            cwm_env::CUT_MARKER
        );
    }

    #[test]
    fn overrides_replace_single_fields_and_render_exactly() {
        let mut profile = Profile::builtin();
        let before = profile.text("observation.cut_marker");
        profile
            .overlay("[observation]\nbudget = \"T={{ turns }}\\n\"\n", "test")
            .expect("valid override");
        let out = profile.render(
            "observation.budget",
            minijinja::context! { turns => 3, tokens => 9 },
        );
        assert_eq!(out, "T=3\n");
        assert_eq!(profile.text("observation.cut_marker"), before);
    }

    #[test]
    fn bad_profiles_are_refused_with_the_field_named() {
        let mut profile = Profile::builtin();
        let err = profile
            .overlay("[observation]\nbudgett = \"x\"\n", "p.toml")
            .expect_err("unknown field");
        assert!(err.to_string().contains("observation.budgett"), "{err}");
        let err = profile
            .overlay("[user]\nprompt = \"{{ problem }}\"\n", "p.toml")
            .expect_err("unknown placeholder");
        assert!(
            err.to_string().contains("`problem`") && err.to_string().contains("issue"),
            "{err}"
        );
        let err = profile
            .overlay("[user]\nprompt = \"{{ issue \"\n", "p.toml")
            .expect_err("bad template");
        assert!(err.to_string().contains("user.prompt"), "{err}");
        let err = profile
            .overlay("[user]\nprompt = 3\n", "p.toml")
            .expect_err("not a string");
        assert!(err.to_string().contains("must be a string"), "{err}");
        let err = profile
            .overlay("[user\nprompt = 3\n", "p.toml")
            .expect_err("not TOML");
        assert!(
            matches!(err, ProfileError::Toml { .. })
                && std::error::Error::source(&err).is_some()
                && !err.to_string().contains('\n'),
            "{err}"
        );
    }
}
