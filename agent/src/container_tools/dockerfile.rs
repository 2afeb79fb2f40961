//! The Dockerfile instructions `commit -c` and `import -c` apply to an image's config:
//! CMD, ENTRYPOINT (JSON or shell form), ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR and
//! STOPSIGNAL. Other instructions are refused with a message naming the ones accepted.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::images::config::RunConfig;

const ACCEPTED: &str = "CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR";

fn bad(change: &str, why: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("change {change:?}: {why}"))
}

/// Applies every instruction of `changes` (one or more per string, one per line) to
/// `config` in order.
pub fn apply(config: &mut RunConfig, changes: &[String]) -> Result<()> {
    for change in changes {
        for line in change.lines().map(str::trim).filter(|l| !l.is_empty()) {
            apply_one(config, line)?;
        }
    }
    Ok(())
}

fn apply_one(config: &mut RunConfig, line: &str) -> Result<()> {
    let (word, rest) = match line.split_once(char::is_whitespace) {
        Some((w, r)) => (w, r.trim()),
        None => (line, ""),
    };
    let instruction = word.to_ascii_uppercase();
    if rest.is_empty() {
        return Err(bad(line, format!("{instruction} needs an argument")));
    }
    match instruction.as_str() {
        "CMD" => config.cmd = Some(command(rest)),
        "ENTRYPOINT" => config.entrypoint = Some(command(rest)),
        "ENV" => {
            let env = config.env.get_or_insert_with(Vec::new);
            for (k, v) in pairs(line, rest, true)? {
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != k);
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            let labels = config.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in pairs(line, rest, false)? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            let ports = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in words(line, rest)? {
                let (port, proto) = match p.split_once('/') {
                    Some((n, pr)) => (n.to_string(), pr.to_ascii_lowercase()),
                    None => (p.clone(), "tcp".to_string()),
                };
                let valid_port = match port.split_once('-') {
                    Some((a, b)) => a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok(),
                    None => port.parse::<u16>().is_ok_and(|n| n > 0),
                };
                if !valid_port || !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
                    return Err(bad(line, format!("{p:?} is not a port (PORT[/tcp|udp])")));
                }
                ports.insert(format!("{port}/{proto}"), serde_json::json!({}));
            }
        }
        "USER" => config.user = Some(single(line, rest)?),
        "STOPSIGNAL" => config.stop_signal = Some(single(line, rest)?),
        "WORKDIR" => {
            let dir = single(line, rest)?;
            let joined = if dir.starts_with('/') {
                dir
            } else {
                let base = config.working_dir.clone().unwrap_or_default();
                format!("{}/{dir}", base.trim_end_matches('/'))
            };
            config.working_dir = Some(crate::berth_containers::mounts::clean_path(&joined));
        }
        "VOLUME" => {
            let list = if rest.starts_with('[') {
                json_list(line, rest)?
            } else {
                words(line, rest)?
            };
            let volumes = config.volumes.get_or_insert_with(BTreeMap::new);
            for v in list {
                if v.is_empty() {
                    return Err(bad(line, "VOLUME paths must not be empty"));
                }
                volumes.insert(v, serde_json::json!({}));
            }
        }
        "ONBUILD" | "HEALTHCHECK" | "SHELL" => {
            return Err(Error::Unimplemented(format!(
                "change {line:?}: {instruction} (berth applies {ACCEPTED})"
            )));
        }
        _ => {
            return Err(bad(
                line,
                format!("{instruction} cannot be applied to an image; use one of {ACCEPTED}"),
            ));
        }
    }
    Ok(())
}

/// A JSON array of strings.
fn json_list(line: &str, rest: &str) -> Result<Vec<String>> {
    serde_json::from_str::<Vec<String>>(rest)
        .map_err(|e| bad(line, format!("not a JSON array of strings: {e}")))
}

/// CMD and ENTRYPOINT: the JSON form as it is, the shell form under `/bin/sh -c`.
fn command(rest: &str) -> Vec<String> {
    if rest.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(rest)
    {
        return v;
    }
    vec!["/bin/sh".into(), "-c".into(), rest.to_string()]
}

/// One argument (quotes removed).
fn single(line: &str, rest: &str) -> Result<String> {
    let w = words(line, rest)?;
    match w.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(bad(line, "expected exactly one argument")),
    }
}

/// Splits on unquoted whitespace; quotes (single or double) group and are removed; a
/// backslash escapes the next character outside single quotes.
fn words(line: &str, rest: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => match chars.next() {
                Some(n) => {
                    cur.push(n);
                    in_word = true;
                }
                None => return Err(bad(line, "ends with a backslash")),
            },
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(bad(line, "unterminated quote"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `KEY=VALUE ...`; with `legacy` (ENV), also `KEY VALUE WITH SPACES`.
fn pairs(line: &str, rest: &str, legacy: bool) -> Result<Vec<(String, String)>> {
    let w = words(line, rest)?;
    let first_has_eq = w.first().is_some_and(|f| f.contains('='));
    if !first_has_eq {
        if legacy && w.len() >= 2 {
            let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let v = words(line, v)?.join(" ");
            return Ok(vec![(k.to_string(), v)]);
        }
        return Err(bad(line, "expected KEY=VALUE pairs"));
    }
    w.into_iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(bad(line, format!("{p:?} is not KEY=VALUE"))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(changes: &[&str]) -> RunConfig {
        let mut c = RunConfig {
            env: Some(vec!["PATH=/bin".into(), "A=old".into()]),
            working_dir: Some("/srv".into()),
            ..Default::default()
        };
        apply(
            &mut c,
            &changes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        c
    }

    #[test]
    fn instructions_change_the_config() {
        let c = run(&[
            r#"CMD ["echo", "hi"]"#,
            "ENTRYPOINT /bin/sh -c",
            r#"ENV A=new B="two words""#,
            "ENV LEGACY some value",
            r#"LABEL tier=web "quoted key"=x"#,
            "EXPOSE 80 53/udp",
            "USER nobody",
            "WORKDIR data",
            r#"VOLUME ["/v1"]"#,
            "volume /v2 /v3",
            "STOPSIGNAL SIGINT",
        ]);
        assert_eq!(c.cmd.unwrap(), ["echo", "hi"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "/bin/sh -c"]);
        let env = c.env.unwrap();
        assert!(env.contains(&"A=new".to_string()), "{env:?}");
        assert!(!env.contains(&"A=old".to_string()));
        assert!(env.contains(&"B=two words".to_string()));
        assert!(env.contains(&"LEGACY=some value".to_string()));
        let labels = c.labels.unwrap();
        assert_eq!(labels["tier"], "web");
        assert_eq!(labels["quoted key"], "x");
        let ports = c.exposed_ports.unwrap();
        assert!(ports.contains_key("80/tcp") && ports.contains_key("53/udp"));
        assert_eq!(c.user.unwrap(), "nobody");
        assert_eq!(c.working_dir.unwrap(), "/srv/data");
        let v = c.volumes.unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(c.stop_signal.unwrap(), "SIGINT");
    }

    #[test]
    fn bad_instructions_are_refused() {
        let mut c = RunConfig::default();
        for bad in [
            "RUN echo",
            "CMD",
            "EXPOSE http",
            "LABEL novalue",
            "USER a b",
            "ENV 'unterminated",
        ] {
            assert!(apply(&mut c, &[bad.to_string()]).is_err(), "{bad}");
        }
        assert!(matches!(
            apply(&mut c, &["ONBUILD RUN x".to_string()]),
            Err(Error::Unimplemented(_))
        ));
        // Shell-form CMD and several instructions in one change.
        apply(&mut c, &["CMD echo hi\nUSER 1000".to_string()]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(c.user.unwrap(), "1000");
    }
}
