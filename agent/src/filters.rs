//! containerd's filter syntax, used by List calls and event subscriptions.
//!
//! A filter string is a comma-separated list of selectors that must all match; a list
//! of filter strings matches when any one does. A selector is a field path (fields
//! joined by `.`, each a word or a quoted string), optionally followed by an operator
//! (`==`, `!=`, `~=` for a regular expression) and a value (a quoted string or a run of
//! characters other than spaces and commas). A bare field path tests that the field is
//! present. Quotes are `"`, `/` or `|`, with Go-style backslash escapes.

use regex::Regex;

use crate::error::{Error, Result};

/// What a filter asks of an object: the value of a field path, if the field exists.
pub trait Adaptor {
    fn field(&self, path: &[String]) -> Option<String>;
}

/// A parsed set of filters: any of the alternatives, each a conjunction of selectors.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    any_of: Vec<Vec<Selector>>,
}

#[derive(Debug, Clone)]
struct Selector {
    path: Vec<String>,
    op: Op,
}

#[derive(Debug, Clone)]
enum Op {
    Present,
    Equal(String),
    NotEqual(String),
    Matches(Regex),
}

impl Filter {
    /// Parses every filter string; no strings (or only empty ones) match everything.
    pub fn parse_all<S: AsRef<str>>(filters: &[S]) -> Result<Filter> {
        let mut any_of = Vec::new();
        for f in filters {
            let f = f.as_ref();
            if f.trim().is_empty() {
                return Ok(Filter::default());
            }
            any_of.push(Parser::new(f).parse()?);
        }
        Ok(Filter { any_of })
    }

    /// Parses one filter string.
    pub fn parse(filter: &str) -> Result<Filter> {
        Self::parse_all(&[filter])
    }

    /// True when the filter matches everything.
    pub fn is_always(&self) -> bool {
        self.any_of.is_empty()
    }

    /// Whether the object seen through `adaptor` passes.
    pub fn matches(&self, adaptor: &dyn Adaptor) -> bool {
        self.any_of.is_empty()
            || self
                .any_of
                .iter()
                .any(|all| all.iter().all(|s| s.matches(adaptor)))
    }
}

impl Selector {
    fn matches(&self, adaptor: &dyn Adaptor) -> bool {
        let value = adaptor.field(&self.path);
        match &self.op {
            Op::Present => value.is_some(),
            Op::Equal(v) => value.as_deref() == Some(v.as_str()),
            Op::NotEqual(v) => value.as_deref().unwrap_or("") != v,
            Op::Matches(re) => value.is_some_and(|s| re.is_match(&s)),
        }
    }
}

struct Parser<'a> {
    input: &'a str,
    chars: Vec<char>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Parser {
            input,
            chars: input.chars().collect(),
            pos: 0,
        }
    }

    fn error(&self, msg: &str) -> Error {
        Error::InvalidArgument(format!(
            "filter {:?}: {msg} at position {}",
            self.input, self.pos
        ))
    }

    fn skip_spaces(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn parse(mut self) -> Result<Vec<Selector>> {
        let mut selectors = vec![self.selector()?];
        loop {
            self.skip_spaces();
            match self.peek() {
                None => return Ok(selectors),
                Some(',') => {
                    self.pos += 1;
                    selectors.push(self.selector()?);
                }
                Some(_) => return Err(self.error("expected ',' or end of filter")),
            }
        }
    }

    fn selector(&mut self) -> Result<Selector> {
        let path = self.field_path()?;
        self.skip_spaces();
        let op = match (self.peek(), self.chars.get(self.pos + 1).copied()) {
            (Some('='), Some('=')) => "==",
            (Some('!'), Some('=')) => "!=",
            (Some('~'), Some('=')) => "~=",
            (Some('=' | '!' | '~'), _) => return Err(self.error("unknown operator")),
            _ => {
                return Ok(Selector {
                    path,
                    op: Op::Present,
                });
            }
        };
        self.pos += 2;
        self.skip_spaces();
        let value = self.value()?;
        let op = match op {
            "==" => Op::Equal(value),
            "!=" => Op::NotEqual(value),
            _ => Op::Matches(
                Regex::new(&value)
                    .map_err(|e| self.error(&format!("bad regular expression {value:?}: {e}")))?,
            ),
        };
        Ok(Selector { path, op })
    }

    fn field_path(&mut self) -> Result<Vec<String>> {
        let mut path = Vec::new();
        loop {
            self.skip_spaces();
            let field = match self.peek() {
                Some(q) if is_quote(q) => self.quoted(q)?,
                Some(c) if c.is_alphanumeric() || c == '_' => {
                    let start = self.pos;
                    while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        self.pos += 1;
                    }
                    self.chars[start..self.pos].iter().collect()
                }
                _ => return Err(self.error("expected a field name")),
            };
            path.push(field);
            if self.peek() == Some('.') {
                self.pos += 1;
            } else {
                return Ok(path);
            }
        }
    }

    fn value(&mut self) -> Result<String> {
        match self.peek() {
            Some(q) if is_quote(q) => self.quoted(q),
            Some(c) if !c.is_whitespace() && c != ',' => {
                let start = self.pos;
                while self.peek().is_some_and(|c| !c.is_whitespace() && c != ',') {
                    self.pos += 1;
                }
                Ok(self.chars[start..self.pos].iter().collect())
            }
            _ => Err(self.error("expected a value")),
        }
    }

    fn quoted(&mut self, quote: char) -> Result<String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.error("unterminated quoted string"));
            };
            self.pos += 1;
            if c == quote {
                return Ok(out);
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            let Some(e) = self.peek() else {
                return Err(self.error("unterminated escape"));
            };
            self.pos += 1;
            let decoded = match e {
                'a' => '\u{7}',
                'b' => '\u{8}',
                'f' => '\u{c}',
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                'v' => '\u{b}',
                '\\' => '\\',
                c if c == quote => c,
                'x' => self.hex_escape(2)?,
                'u' => self.hex_escape(4)?,
                'U' => self.hex_escape(8)?,
                // Inside a regular expression (`/.../`), keep unknown escapes for the
                // regex engine.
                other if quote == '/' => {
                    out.push('\\');
                    other
                }
                _ => return Err(self.error("unknown escape sequence")),
            };
            out.push(decoded);
        }
    }

    fn hex_escape(&mut self, digits: usize) -> Result<char> {
        let end = self.pos + digits;
        if end > self.chars.len() {
            return Err(self.error("short escape sequence"));
        }
        let text: String = self.chars[self.pos..end].iter().collect();
        self.pos = end;
        u32::from_str_radix(&text, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| self.error("bad escape sequence"))
    }
}

fn is_quote(c: char) -> bool {
    matches!(c, '"' | '/' | '|')
}

/// An adaptor over a flat map of dotted field names (`labels.a`, `topic`).
pub struct FieldMap<'a>(pub &'a std::collections::BTreeMap<String, String>);

impl Adaptor for FieldMap<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        self.0.get(&path.join(".")).cloned()
    }
}

/// Looks `path` up as `labels.<key>` in a label map (the key may itself contain dots).
pub fn label_field(
    labels: &std::collections::BTreeMap<String, String>,
    path: &[String],
) -> Option<String> {
    if path.len() < 2 {
        return None;
    }
    labels.get(&path[1..].join(".")).cloned()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn obj(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn check(filters: &[&str], o: &BTreeMap<String, String>) -> bool {
        Filter::parse_all(filters).unwrap().matches(&FieldMap(o))
    }

    #[test]
    fn empty_matches_all() {
        let o = obj(&[]);
        assert!(check(&[], &o));
        assert!(check(&[""], &o));
    }

    #[test]
    fn operators() {
        let o = obj(&[
            ("topic", "/tasks/exit"),
            ("namespace", "default"),
            ("labels.a.b", "1"),
        ]);
        assert!(check(&["topic==/tasks/exit"], &o));
        assert!(check(&["topic==\"/tasks/exit\""], &o));
        assert!(!check(&["topic!=/tasks/exit"], &o));
        assert!(check(&["namespace!=other"], &o));
        assert!(check(&["topic~=/tasks/.*/"], &o));
        assert!(check(&["topic~=|^/tasks/|"], &o));
        assert!(!check(&["topic~=\"^/images\""], &o));
        assert!(check(&["labels.\"a.b\""], &o));
        assert!(!check(&["labels.c"], &o));
        assert!(check(&["missing!=x"], &o));
        assert!(!check(&["missing==x"], &o));
    }

    #[test]
    fn and_within_or_across() {
        let o = obj(&[("topic", "/a"), ("namespace", "n1")]);
        assert!(check(&["topic==/a,namespace==n1"], &o));
        assert!(!check(&["topic==/a, namespace==n2"], &o));
        assert!(check(&["topic==/b", "namespace==n1"], &o));
    }

    #[test]
    fn syntax_errors_name_the_filter() {
        for bad in [
            "topic==",
            "==x",
            "topic=x",
            "topic==\"open",
            "a,",
            "a b",
            "topic~=\"(\"",
        ] {
            let err = Filter::parse(bad).unwrap_err();
            assert!(err.to_string().contains("filter"), "{bad}: {err}");
        }
    }

    #[test]
    fn label_lookup_joins_dots() {
        let labels = obj(&[("io.x", "1")]);
        let path: Vec<String> = ["labels", "io", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(label_field(&labels, &path).as_deref(), Some("1"));
    }
}
