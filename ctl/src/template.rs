//! `--format` templates: the subset of Go's text/template that docker users write,
//! rendered over JSON values.
//!
//! * text with actions `{{ ... }}`; `\t` and `\n` in the text become tab and newline;
//! * `{{.}}`, `{{.Field.Sub}}` (object keys, case-sensitive), `{{json .X}}`,
//!   `{{join .List ", "}}`, `{{index .Map "key"}}` (or an array position),
//!   `{{len .X}}`, `{{upper .X}}`, `{{lower .X}}`, `{{title .X}}`, `{{println .X}}`, and
//!   pipes (`{{.X | json}}`);
//! * values print as Go prints them: `[a b]` for lists, `map[k:v]` for objects,
//!   `<no value>` for a missing field;
//! * a `table ` prefix makes a table: a header row from the field names and columns
//!   aligned on tabs, as docker does.

use std::fmt::Write as _;

use serde_json::Value;

/// A parse or render error, naming the template.
#[derive(Debug, thiserror::Error)]
#[error("template {template:?}: {reason}")]
pub struct TemplateError {
    pub template: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Path(Vec<String>),
    Str(String),
    Int(i64),
}

#[derive(Debug, Clone, PartialEq)]
struct Command {
    func: Option<String>,
    args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    /// Commands joined by pipes.
    Action(Vec<Command>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
    table: bool,
}

const FUNCS: &[&str] = &[
    "json", "join", "index", "len", "upper", "lower", "title", "println", "print",
];

impl Template {
    /// Parses `text` (with an optional `table ` prefix).
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let err = |reason: String| TemplateError {
            template: text.to_string(),
            reason,
        };
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start())
            }
            _ => (false, text),
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| err("unclosed action: missing \"}}\"".into()))?;
            let inner = after[..end].trim_matches('-').trim();
            parts.push(Part::Action(parse_action(inner).map_err(&err)?));
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Template {
            source: text.to_string(),
            parts,
            table,
        })
    }

    /// Whether the template asked for a table.
    pub fn is_table(&self) -> bool {
        self.table
    }

    /// The header row of a table template: each action's field path named by
    /// `header_of` (which gets the last path element), the text between kept.
    pub fn header(&self, header_of: &dyn Fn(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Action(cmds) => {
                    let field = cmds
                        .iter()
                        .flat_map(|c| c.args.iter())
                        .find_map(|a| match a {
                            Arg::Path(p) => p.last().cloned(),
                            _ => None,
                        })
                        .unwrap_or_default();
                    out.push_str(&header_of(&field));
                }
            }
        }
        out
    }

    /// Renders the template over `v`.
    pub fn render(&self, v: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Action(cmds) => {
                    let value = self.eval(cmds, v)?;
                    out.push_str(&go_string(&value));
                }
            }
        }
        Ok(out)
    }

    fn err(&self, reason: String) -> TemplateError {
        TemplateError {
            template: self.source.clone(),
            reason,
        }
    }

    fn eval(&self, cmds: &[Command], dot: &Value) -> Result<Value, TemplateError> {
        let mut piped: Option<Value> = None;
        for c in cmds {
            let mut args: Vec<Value> = c.args.iter().map(|a| arg_value(a, dot)).collect();
            if let Some(p) = piped.take() {
                args.push(p);
            }
            let value = match c.func.as_deref() {
                None => args.pop().unwrap_or(Value::Null),
                Some(f) => self.call(f, args)?,
            };
            piped = Some(value);
        }
        Ok(piped.unwrap_or(Value::Null))
    }

    fn call(&self, f: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
        let one = |args: &[Value]| -> Result<Value, TemplateError> {
            match args {
                [v] => Ok(v.clone()),
                _ => Err(self.err(format!("{f} takes one argument, got {}", args.len()))),
            }
        };
        Ok(match f {
            "json" => {
                let v = one(&args)?;
                Value::String(serde_json::to_string(&v).unwrap_or_default())
            }
            "upper" => Value::String(go_string(&one(&args)?).to_uppercase()),
            "lower" => Value::String(go_string(&one(&args)?).to_lowercase()),
            "title" => {
                let s = go_string(&one(&args)?);
                let mut out = String::new();
                let mut start = true;
                for ch in s.chars() {
                    if start {
                        out.extend(ch.to_uppercase());
                    } else {
                        out.push(ch);
                    }
                    start = ch.is_whitespace();
                }
                Value::String(out)
            }
            "len" => {
                let v = one(&args)?;
                let n = match &v {
                    Value::Array(a) => a.len(),
                    Value::Object(o) => o.len(),
                    Value::String(s) => s.len(),
                    Value::Null => 0,
                    other => return Err(self.err(format!("len of {other}"))),
                };
                Value::from(n)
            }
            "join" => match args.as_slice() {
                [Value::Array(a), sep] => Value::String(
                    a.iter()
                        .map(go_string)
                        .collect::<Vec<_>>()
                        .join(&go_string(sep)),
                ),
                [Value::Null, _] => Value::String(String::new()),
                _ => return Err(self.err("join takes a list and a separator".into())),
            },
            "index" => match args.as_slice() {
                [Value::Object(o), Value::String(k)] => o.get(k).cloned().unwrap_or(Value::Null),
                [Value::Array(a), Value::Number(n)] => n
                    .as_u64()
                    .and_then(|i| a.get(i as usize))
                    .cloned()
                    .ok_or_else(|| self.err(format!("index {n} out of range")))?,
                [Value::Null, _] => Value::Null,
                _ => {
                    return Err(
                        self.err("index takes a map and a key, or a list and a position".into())
                    );
                }
            },
            "println" => Value::String(format!(
                "{}\n",
                args.iter().map(go_string).collect::<Vec<_>>().join(" ")
            )),
            "print" => Value::String(args.iter().map(go_string).collect::<Vec<_>>().join(" ")),
            other => return Err(self.err(format!("function {other:?} not defined"))),
        })
    }
}

fn arg_value(a: &Arg, dot: &Value) -> Value {
    match a {
        Arg::Str(s) => Value::String(s.clone()),
        Arg::Int(i) => Value::from(*i),
        Arg::Path(p) => {
            let mut v = dot;
            for k in p {
                match v.get(k) {
                    Some(x) => v = x,
                    None => return Value::Null,
                }
            }
            v.clone()
        }
    }
}

fn parse_action(inner: &str) -> Result<Vec<Command>, String> {
    if inner.is_empty() {
        return Err("empty action {{}}".into());
    }
    let mut cmds = Vec::new();
    for piece in split_pipes(inner) {
        let tokens = tokenize(piece.trim())?;
        if tokens.is_empty() {
            return Err("empty command in a pipe".into());
        }
        let mut it = tokens.into_iter().peekable();
        let func = match it.peek() {
            Some(Tok::Word(w)) if !w.starts_with('.') => {
                if !FUNCS.contains(&w.as_str()) {
                    return Err(format!("function {w:?} not defined"));
                }
                let w = w.clone();
                it.next();
                Some(w)
            }
            _ => None,
        };
        let mut args = Vec::new();
        for t in it {
            args.push(match t {
                Tok::Str(s) => Arg::Str(s),
                Tok::Word(w) if w.starts_with('.') => Arg::Path(
                    w.trim_start_matches('.')
                        .split('.')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                ),
                Tok::Word(w) => match w.parse::<i64>() {
                    Ok(i) => Arg::Int(i),
                    Err(_) => return Err(format!("unexpected {w:?} in an action")),
                },
            });
        }
        if func.is_none() && args.len() != 1 {
            return Err(format!(
                "cannot evaluate {piece:?}: a field or a function is expected"
            ));
        }
        cmds.push(Command { func, args });
    }
    Ok(cmds)
}

fn split_pipes(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_str = false;
    let mut start = 0;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => in_str = !in_str,
            b'\\' if in_str => i += 1,
            b'|' if !in_str => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&s[start..]);
    out
}

enum Tok {
    Word(String),
    Str(String),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => return Err("unterminated string".into()),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => v.push('\n'),
                        Some('t') => v.push('\t'),
                        Some(x) => v.push(x),
                        None => return Err("unterminated string".into()),
                    },
                    Some(x) => v.push(x),
                }
            }
            out.push(Tok::Str(v));
        } else {
            let mut w = String::new();
            while let Some(&x) = chars.peek() {
                if x.is_whitespace() {
                    break;
                }
                w.push(x);
                chars.next();
            }
            out.push(Tok::Word(w));
        }
    }
    Ok(out)
}

/// A value as Go's `fmt` prints it with `%v`.
pub fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(go_inner).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let mut s = String::from("map[");
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                let _ = write!(s, "{k}:{}", go_inner(&o[k.as_str()]));
            }
            s.push(']');
            s
        }
    }
}

fn go_inner(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => go_string(other),
    }
}

/// Aligns tab-separated columns like Go's tabwriter with docker's settings (minimum
/// width 10, padding 3); the last column is not padded.
pub fn align_tabs(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let cols = lines.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for l in &lines {
        for (i, c) in l.iter().enumerate() {
            if i + 1 < l.len() {
                widths[i] = widths[i].max(c.chars().count() + 3).max(10);
            }
        }
    }
    let mut out = String::new();
    for l in &lines {
        let mut line = String::new();
        for (i, c) in l.iter().enumerate() {
            line.push_str(c);
            if i + 1 < l.len() {
                let pad = widths[i].saturating_sub(c.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    #[test]
    fn paths_functions_and_go_printing() {
        let v = json!({
            "Id": "sha256:abc",
            "RepoTags": ["a:1", "b:2"],
            "Config": {"Cmd": ["sh", "-c"], "Env": null, "Labels": {"z": "1", "a": "2"}},
            "Size": 42,
        });
        assert_eq!(render("{{.Id}}", &v), "sha256:abc");
        assert_eq!(render("{{.Config.Cmd}}", &v), "[sh -c]");
        assert_eq!(render("{{.Config.Labels}}", &v), "map[a:2 z:1]");
        assert_eq!(render("{{.Config.Env}}", &v), "<no value>");
        assert_eq!(render("{{.Nope.Deeper}}", &v), "<no value>");
        assert_eq!(render("{{json .RepoTags}}", &v), r#"["a:1","b:2"]"#);
        assert_eq!(render("{{.RepoTags | json}}", &v), r#"["a:1","b:2"]"#);
        assert_eq!(render(r#"{{join .RepoTags ","}}"#, &v), "a:1,b:2");
        assert_eq!(render(r#"{{index .Config.Labels "z"}}"#, &v), "1");
        assert_eq!(render("{{index .RepoTags 1}}", &v), "b:2");
        assert_eq!(render("{{len .RepoTags}} {{.Size}}", &v), "2 42");
        assert_eq!(render("{{upper .Id}}", &v), "SHA256:ABC");
        assert_eq!(render("x\\ty {{ .Size }}", &v), "x\ty 42");
        assert_eq!(render("{{json .}}", &json!({"a": 1})), r#"{"a":1}"#);
    }

    #[test]
    fn tables_and_errors() {
        let t = Template::parse("table {{.Repository}}\\t{{.Tag}}").unwrap();
        assert!(t.is_table());
        assert_eq!(t.header(&|f| f.to_uppercase()), "REPOSITORY\tTAG");
        assert_eq!(
            align_tabs("REPOSITORY\tTAG\nbusybox\tlatest\n"),
            "REPOSITORY   TAG\nbusybox      latest\n"
        );
        for bad in ["{{.A", "{{nope .A}}", "{{}}", "{{.A .B}}", "{{\"x}}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
        let e = Template::parse("{{join .A}}")
            .unwrap()
            .render(&json!({"A": []}))
            .unwrap_err();
        assert!(e.to_string().contains("join"), "{e}");
    }
}
