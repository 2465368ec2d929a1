//! Configuration errors that point at the file, line and field.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based; 0 when the error is about the file as a whole.
    pub line: usize,
    pub column: usize,
    /// Dotted path of the offending field, e.g. `routes[2].port`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if !self.field.is_empty() {
            write!(f, ": {}", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Turns byte spans of one source file into line and column.
pub struct Source<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl Source<'_> {
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map_or(before.len(), |i| before.len() - i - 1)
            + 1;
        (line, col)
    }

    pub fn error(
        &self,
        span: Option<Range<usize>>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = span.map_or((0, 0), |s| self.line_col(s.start));
        ConfigError {
            file: self.path.to_path_buf(),
            line,
            column,
            field: field.into(),
            message: message.into(),
        }
    }

    /// An error about the file as a whole (unreadable, missing).
    pub fn whole(path: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: path.to_path_buf(),
            line: 0,
            column: 0,
            field: String::new(),
            message: message.into(),
        }
    }

    /// Map a TOML/serde error to file, line and the dotted field path: the
    /// table (with its array index) that encloses the error, and the key on
    /// the error's line or the one serde quotes (`missing field `x``).
    pub fn from_toml(&self, e: &toml::de::Error) -> ConfigError {
        let mut msg = e.message().trim().to_string();
        if msg.is_empty() {
            // The TOML parser says nothing for some inputs (`key=` at the
            // very end of the file): say what is wrong in general terms.
            msg = "not valid TOML here (a key needs a value)".to_string();
        }
        let at = e.span().map_or(0, |s| s.start);
        let quoted = msg.split('`').nth(1).filter(|_| msg.contains("field"));
        let key = quoted.map(str::to_string).or_else(|| self.key_at(at));
        let table = self.table_at(at);
        let field = match (table.is_empty(), key) {
            (_, None) => table,
            (true, Some(k)) => k,
            (false, Some(k)) => format!("{table}.{k}"),
        };
        self.error(e.span(), field, msg)
    }

    /// `gateway`, `routes[2]`, … — the table header in force at `offset`.
    fn table_at(&self, offset: usize) -> String {
        let mut counts = std::collections::HashMap::<String, usize>::new();
        let mut current = String::new();
        let mut pos = 0;
        for line in self.text.split_inclusive('\n') {
            if pos > offset {
                break;
            }
            pos += line.len();
            let t = line.trim();
            if let Some(name) = t.strip_prefix("[[").and_then(|r| r.split("]]").next()) {
                let n = counts.entry(name.trim().to_string()).or_insert(0);
                current = format!("{}[{}]", name.trim(), n);
                *n += 1;
            } else if let Some(name) = t.strip_prefix('[').and_then(|r| r.split(']').next()) {
                current = name.trim().to_string();
            }
        }
        current
    }

    /// The key assigned on the line containing `offset`, if any.
    fn key_at(&self, offset: usize) -> Option<String> {
        let start = self.text[..offset.min(self.text.len())]
            .rfind('\n')
            .map_or(0, |i| i + 1);
        let line = self.text[start..].lines().next()?;
        let (k, _) = line.split_once('=')?;
        let k = k.trim();
        (!k.is_empty() && !k.starts_with('[')).then(|| k.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let s = Source {
            path: Path::new("x.toml"),
            text: "a = 1\nbb = 2\n",
        };
        assert_eq!(s.line_col(0), (1, 1));
        assert_eq!(s.line_col(6), (2, 1));
        assert_eq!(s.line_col(9), (2, 4));
        let e = s.error(Some(9..10), "bb", "bad");
        assert_eq!(e.to_string(), "x.toml:2:4: bb: bad");
    }

    #[test]
    fn toml_errors_name_table_index_and_key() {
        let text = "[gateway]\nid = 1\n[[routes]]\nzone = \"a\"\n[[routes]]\nzone = 5\n";
        let s = Source {
            path: Path::new("c.toml"),
            text,
        };
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct R {
            zone: String,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct C {
            gateway: toml::Value,
            routes: Vec<R>,
        }
        let e = toml::from_str::<C>(text).unwrap_err();
        let ce = s.from_toml(&e);
        assert_eq!((ce.line, ce.field.as_str()), (6, "routes[1].zone"), "{ce}");
    }

    #[test]
    fn a_key_without_a_value_at_the_end_still_gets_a_message() {
        let text = "[control]\npoll_ms = 500\na=";
        let s = Source {
            path: Path::new("x.toml"),
            text,
        };
        let e = toml::from_str::<toml::Table>(text).unwrap_err();
        let err = s.from_toml(&e);
        assert!(!err.message.is_empty(), "{err}");
        assert_eq!(err.line, 3, "{err}");
    }
}
