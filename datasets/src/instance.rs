//! The SWE-bench task record.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// One SWE-bench task, with every field the official datasets carry.
///
/// Unknown columns are kept in `extra`, so a row written back out loses nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    pub instance_id: String,
    pub repo: String,
    pub base_commit: String,
    /// The gold fix.
    #[serde(default)]
    pub patch: String,
    #[serde(default)]
    pub test_patch: String,
    #[serde(default)]
    pub problem_statement: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub hints_text: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub created_at: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub version: String,
    #[serde(default, deserialize_with = "string_or_null")]
    pub environment_setup_commit: String,
    #[serde(rename = "FAIL_TO_PASS", default, deserialize_with = "test_list")]
    pub fail_to_pass: Vec<String>,
    #[serde(rename = "PASS_TO_PASS", default, deserialize_with = "test_list")]
    pub pass_to_pass: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difficulty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_script: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_parser: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Instance {
    /// The Docker image the task runs in: the dataset's `image` field, else the official
    /// SWE-bench name on Docker Hub (`swebench/sweb.eval.x86_64.<docker-safe id>:latest`).
    /// [`crate::ImageNaming`] rewrites the field for `--namespace` / `--image-template`.
    pub fn image_name(&self) -> String {
        match self.image.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(image) => image.to_string(),
            None => crate::official_image_name(
                crate::DEFAULT_NAMESPACE,
                crate::DEFAULT_ARCH,
                &self.instance_id,
            ),
        }
    }
}

/// FAIL_TO_PASS / PASS_TO_PASS arrive either as a list or as a JSON-encoded string of a list.
fn test_list<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        List(Vec<String>),
        Encoded(String),
        Null,
    }
    match Raw::deserialize(de)? {
        Raw::List(list) => Ok(list),
        Raw::Null => Ok(Vec::new()),
        Raw::Encoded(text) if text.trim().is_empty() => Ok(Vec::new()),
        Raw::Encoded(text) => serde_json::from_str(&text).map_err(|e| {
            serde::de::Error::custom(format!("expected a JSON list of test ids, {e}"))
        }),
    }
}

fn string_or_null<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(de)?.unwrap_or_default())
}

/// `version` is a string in the official exports but a float in some hand-made files.
fn string_or_number<'de, D: Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    match Option::<serde_json::Value>::deserialize(de)? {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s),
        Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a string or number, found {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(f2p: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "instance_id": "a__b-1", "repo": "a/b", "base_commit": "abc",
            "FAIL_TO_PASS": f2p, "PASS_TO_PASS": [], "version": 3.1, "eval_type": "pass_and_fail"
        })
    }

    #[test]
    fn test_lists_accept_encoded_strings_and_lists() {
        let encoded: Instance = serde_json::from_value(row("[\"t1\", \"t2\"]".into())).unwrap();
        let listed: Instance =
            serde_json::from_value(row(serde_json::json!(["t1", "t2"]))).unwrap();
        assert_eq!(encoded.fail_to_pass, vec!["t1", "t2"]);
        assert_eq!(encoded.fail_to_pass, listed.fail_to_pass);
        assert_eq!(encoded.version, "3.1");
        assert_eq!(encoded.extra["eval_type"], "pass_and_fail");
    }

    #[test]
    fn bad_encoded_list_is_an_error() {
        let err = serde_json::from_value::<Instance>(row("not json".into())).unwrap_err();
        assert!(err.to_string().contains("JSON list of test ids"), "{err}");
    }

    #[test]
    fn image_name_follows_swebench_scheme() {
        let mut inst: Instance = serde_json::from_value(row(serde_json::json!([]))).unwrap();
        inst.instance_id = "Django__django-11099".into();
        assert_eq!(
            inst.image_name(),
            "swebench/sweb.eval.x86_64.django_1776_django-11099:latest"
        );
        inst.image = Some("local/img:1".into());
        assert_eq!(inst.image_name(), "local/img:1");
    }
}
