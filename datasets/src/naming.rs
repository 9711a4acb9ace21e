//! Task image names: the official SWE-bench scheme, a registry namespace (as the official
//! harness's `--namespace`), and a user template.
//!
//! The official harness names an instance's image
//! `{namespace}/sweb.eval.{arch}.{instance_id lowercased}:latest`, then replaces every `__` in
//! that name with `_1776_` (Docker Hub allows no double underscore); the default namespace
//! is `swebench` and the published images are `x86_64`.

use crate::{ImageNamingError, Instance};

/// The namespace of the published SWE-bench images on Docker Hub.
pub const DEFAULT_NAMESPACE: &str = "swebench";
/// The architecture in the published image names.
pub const DEFAULT_ARCH: &str = "x86_64";
/// The placeholders an image template may use.
pub const PLACEHOLDERS: [&str; 4] = ["namespace", "id", "instance_id", "arch"];

/// An instance id as it appears in image names: lowercased, `__` replaced by `_1776_`
/// (`django__django-11099` → `django_1776_django-11099`).
pub fn docker_safe_id(instance_id: &str) -> String {
    instance_id.to_lowercase().replace("__", "_1776_")
}

/// The official image name of `instance_id` under `namespace` for `arch`, exactly as
/// SWE-bench 5.0.2 derives it (`ImageSpec.name` in `swebench/image_builder/image_spec.py`):
/// the `__` replacement covers the namespace too, and the whole name is lowercased.
pub fn official_image_name(namespace: &str, arch: &str, instance_id: &str) -> String {
    format!("{namespace}/sweb.eval.{arch}.{instance_id}:latest")
        .replace("__", "_1776_")
        .to_lowercase()
}

/// The architecture as it appears in image names, from a `--arch` value: `x86_64` (or its
/// alias `amd64`, as SWE-bench 5.0.2's `ImageSpec` calls it) or `arm64` (alias `aarch64`).
pub fn image_arch(arch: &str) -> Result<&'static str, ImageNamingError> {
    match arch {
        "x86_64" | "amd64" => Ok("x86_64"),
        "arm64" | "aarch64" => Ok("arm64"),
        _ => Err(ImageNamingError::BadArch {
            arch: arch.to_string(),
        }),
    }
}

/// How instance image names are rewritten (`--namespace`, `--image-template`).
///
/// Inactive (neither given), it leaves every instance alone: the dataset's `image` field, else
/// the official name under `swebench` ([`Instance::image_name`]). Active, it names every
/// selected instance's image, overriding the dataset's `image` field:
/// - a template alone or with a namespace: the template, its placeholders filled in;
/// - a namespace alone: the official name under that namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageNaming {
    namespace: Option<String>,
    template: Option<Template>,
    arch: String,
    /// An architecture was asked for: the naming is active even without a namespace.
    arch_given: bool,
}

impl Default for ImageNaming {
    /// Inactive: no namespace, no template, `x86_64`.
    fn default() -> Self {
        ImageNaming {
            namespace: None,
            template: None,
            arch: DEFAULT_ARCH.to_string(),
            arch_given: false,
        }
    }
}

impl ImageNaming {
    /// Checks a namespace (`host[:port]/path` or a Docker Hub user; a trailing `/` is dropped)
    /// and parses a template with the placeholders `{namespace}` (the namespace, default
    /// `swebench`), `{id}` (the docker-safe id, see [`docker_safe_id`]), `{instance_id}` (as
    /// in the dataset) and `{arch}` (`x86_64`); `{{` and `}}` are literal braces.
    ///
    /// Errors: an empty namespace, or one with a URL scheme or whitespace; a template that is
    /// empty, has an unknown placeholder (named), an unclosed or stray brace, or neither
    /// `{id}` nor `{instance_id}` (every task would get the same image).
    pub fn new(namespace: Option<&str>, template: Option<&str>) -> Result<Self, ImageNamingError> {
        let namespace = namespace.map(check_namespace).transpose()?;
        let template = template.map(Template::parse).transpose()?;
        Ok(ImageNaming {
            namespace,
            template,
            ..Self::default()
        })
    }

    /// The same naming for another architecture (the value of `{arch}`). Given, it makes
    /// the naming active: instances get the official name for `arch` under the namespace
    /// (default `swebench`) rather than the dataset's `image` field.
    pub fn with_arch(mut self, arch: impl Into<String>) -> Self {
        self.arch = arch.into();
        self.arch_given = true;
        self
    }

    /// Whether this rewrites names at all.
    pub fn is_active(&self) -> bool {
        self.namespace.is_some() || self.template.is_some() || self.arch_given
    }

    /// The image `instance` runs in under this naming.
    pub fn image_for(&self, instance: &Instance) -> String {
        let namespace = self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE);
        match (&self.template, &self.namespace) {
            (Some(template), _) => template.fill(namespace, &self.arch, &instance.instance_id),
            (None, Some(_)) => official_image_name(namespace, &self.arch, &instance.instance_id),
            (None, None) if self.arch_given => {
                official_image_name(namespace, &self.arch, &instance.instance_id)
            }
            (None, None) => instance.image_name(),
        }
    }

    /// Sets `instance.image` to its name under this naming (nothing when inactive).
    pub fn apply(&self, instance: &mut Instance) {
        if self.is_active() {
            instance.image = Some(self.image_for(instance));
        }
    }

    /// [`Self::apply`] to every instance.
    pub fn apply_all(&self, instances: &mut [Instance]) {
        for instance in instances {
            self.apply(instance);
        }
    }
}

fn check_namespace(namespace: &str) -> Result<String, ImageNamingError> {
    let bad = |problem: &'static str| ImageNamingError::BadNamespace {
        namespace: namespace.to_string(),
        problem,
    };
    let trimmed = namespace.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(bad("it is empty"));
    }
    if trimmed.contains("://") {
        return Err(bad(
            "it has a URL scheme; write the registry as host[:port]/path",
        ));
    }
    if trimmed.chars().any(char::is_whitespace) {
        return Err(bad("it contains whitespace"));
    }
    Ok(trimmed.to_string())
}

/// A parsed image template.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Namespace,
    Id,
    InstanceId,
    Arch,
}

impl Template {
    fn parse(text: &str) -> Result<Template, ImageNamingError> {
        if text.trim().is_empty() {
            return Err(ImageNamingError::EmptyTemplate);
        }
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find(['{', '}']) {
            literal.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(after) = tail.strip_prefix("{{").or_else(|| tail.strip_prefix("}}")) {
                literal.push_str(&tail[..1]);
                rest = after;
                continue;
            }
            let close = match (tail.starts_with('{'), tail.find('}')) {
                (true, Some(close)) => close,
                (true, None) => return Err(brace_error(text, "an unclosed `{`")),
                (false, _) => return Err(brace_error(text, "a `}` with no `{`")),
            };
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(placeholder(text, &tail[1..close])?);
            rest = &tail[close + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        if !pieces
            .iter()
            .any(|p| matches!(p, Piece::Id | Piece::InstanceId))
        {
            return Err(ImageNamingError::NoInstancePlaceholder {
                template: text.to_string(),
            });
        }
        Ok(Template { pieces })
    }

    fn fill(&self, namespace: &str, arch: &str, instance_id: &str) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Namespace => out.push_str(namespace),
                Piece::Id => out.push_str(&docker_safe_id(instance_id)),
                Piece::InstanceId => out.push_str(instance_id),
                Piece::Arch => out.push_str(arch),
            }
        }
        out
    }
}

fn brace_error(template: &str, problem: &'static str) -> ImageNamingError {
    ImageNamingError::BadBrace {
        template: template.to_string(),
        problem,
    }
}

fn placeholder(template: &str, name: &str) -> Result<Piece, ImageNamingError> {
    Ok(match name {
        "namespace" => Piece::Namespace,
        "id" => Piece::Id,
        "instance_id" => Piece::InstanceId,
        "arch" => Piece::Arch,
        _ => {
            return Err(ImageNamingError::UnknownPlaceholder {
                template: template.to_string(),
                name: name.to_string(),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: &str, image: Option<&str>) -> Instance {
        let mut inst: Instance = serde_json::from_value(serde_json::json!({
            "instance_id": id, "repo": "a/b", "base_commit": "abc"
        }))
        .unwrap();
        inst.image = image.map(str::to_string);
        inst
    }

    #[test]
    fn a_namespace_gives_the_official_name_over_the_dataset_field() {
        let naming = ImageNaming::new(Some("localhost:5000/swebench/"), None).unwrap();
        let mut inst = instance(
            "Fixtures__paginate-1",
            Some("cwm-bench/fixture.paginate:latest"),
        );
        naming.apply(&mut inst);
        assert_eq!(
            inst.image_name(),
            "localhost:5000/swebench/sweb.eval.x86_64.fixtures_1776_paginate-1:latest"
        );
        // As the harness: the `__` replacement covers the namespace as well.
        assert_eq!(
            official_image_name("my__ns", "arm64", "a__b-1"),
            "my_1776_ns/sweb.eval.arm64.a_1776_b-1:latest"
        );
    }

    #[test]
    fn inactive_naming_keeps_the_dataset_and_the_default_scheme() {
        let naming = ImageNaming::new(None, None).unwrap();
        assert!(!naming.is_active());
        let mut inst = instance("django__django-11099", None);
        naming.apply(&mut inst);
        assert_eq!(inst.image, None);
        assert_eq!(
            naming.image_for(&inst),
            "swebench/sweb.eval.x86_64.django_1776_django-11099:latest"
        );
    }

    #[test]
    fn templates_fill_every_placeholder() {
        let naming = ImageNaming::new(
            Some("ghcr.io/me"),
            Some("{namespace}/{arch}-{id}:{{{instance_id}}}"),
        )
        .unwrap();
        let inst = instance("Django__django-1", None);
        assert_eq!(
            naming.image_for(&inst),
            "ghcr.io/me/x86_64-django_1776_django-1:{Django__django-1}"
        );
        let plain = ImageNaming::new(None, Some("{namespace}/img:{id}")).unwrap();
        assert_eq!(plain.image_for(&inst), "swebench/img:django_1776_django-1");
    }

    #[test]
    fn bad_templates_and_namespaces_are_named() {
        let err =
            |ns: Option<&str>, t: Option<&str>| ImageNaming::new(ns, t).unwrap_err().to_string();
        let unknown = err(None, Some("{namespace}/{repo}:{id}"));
        assert!(
            unknown.contains("{repo}") && unknown.contains("{instance_id}"),
            "{unknown}"
        );
        assert!(err(None, Some("x/{id")).contains("unclosed"));
        assert!(err(None, Some("x/}{id}")).contains("`}`"));
        assert!(err(None, Some("x/y:latest")).contains("{id}"));
        assert!(err(None, Some(" ")).contains("empty"));
        assert!(err(Some("/"), None).contains("empty"));
        assert!(err(Some("http://localhost:5000"), None).contains("host[:port]"));
    }
}
