//! `file:line: message` diagnostics for the YAML files ops edit.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_saphyr::{Location, Spanned};

/// One problem in one file, at one line (0 when the line is unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: u64,
    pub message: String,
}

impl Diagnostic {
    /// A problem at a known line.
    pub fn at(file: &Path, line: u64, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// A problem at the place a spanned value was written.
    pub fn spanned<T>(file: &Path, value: &Spanned<T>, message: impl Into<String>) -> Self {
        Self::at(file, value.referenced.line(), message)
    }

    /// A problem with the file as a whole (it cannot be read, say).
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        Self::at(file, 0, message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

impl std::error::Error for Diagnostic {}

/// Several diagnostics, printed one a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

/// Largest YAML file accepted: policies and provider files are small, a huge one is a mistake.
pub const MAX_YAML_BYTES: usize = 4 << 20;

/// Parses one YAML document, mapping a syntax or shape error to `file:line: message`.
pub fn parse_yaml<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, Diagnostic> {
    if text.len() > MAX_YAML_BYTES {
        return Err(Diagnostic::file(
            file,
            format!(
                "file is {} bytes, more than the {MAX_YAML_BYTES} allowed",
                text.len()
            ),
        ));
    }
    serde_saphyr::from_str::<T>(text).map_err(|err| {
        let line = err.location().map(|l: Location| l.line()).unwrap_or(0);
        let plain = err.without_snippet().to_string();
        Diagnostic::at(file, line, clean_message(&plain))
    })
}

/// Reads and parses one YAML file.
pub fn read_yaml<T: DeserializeOwned>(file: &Path) -> Result<T, Diagnostic> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Diagnostic::file(file, format!("cannot read: {e}")))?;
    parse_yaml(file, &text)
}

/// The parser's message without its own position suffix (we print `file:line:` in front).
fn clean_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    let cut = first
        .find(" at line ")
        .map(|i| &first[..i])
        .unwrap_or(first);
    let cut = cut.strip_prefix("error: ").unwrap_or(cut);
    cut.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        ttl_seconds: Spanned<u32>,
    }

    #[test]
    fn unknown_field_names_the_line_and_the_field() {
        let err = parse_yaml::<Doc>(
            Path::new("p.yaml"),
            "name: a\nttl_seconds: 5\nttl_secnds: 6\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("p.yaml:3: "), "{text}");
        assert!(text.contains("ttl_secnds"), "{text}");
    }

    #[test]
    fn wrong_type_names_the_line() {
        let err =
            parse_yaml::<Doc>(Path::new("p.yaml"), "name: a\nttl_seconds: soon\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
    }

    #[test]
    fn spans_point_at_values() {
        let doc: Doc = parse_yaml(Path::new("p.yaml"), "name: a\n\nttl_seconds: 5\n").unwrap();
        let d = Diagnostic::spanned(Path::new("p.yaml"), &doc.ttl_seconds, "too short");
        assert_eq!(d.to_string(), "p.yaml:3: too short");
    }

    #[test]
    fn broken_yaml_is_a_diagnostic_not_a_panic() {
        for text in ["name: [a\n", "\t- x", ":", "name: a\nname: b\n", ""] {
            assert!(
                parse_yaml::<Doc>(Path::new("x.yaml"), text).is_err(),
                "{text:?}"
            );
        }
    }
}
