//! `--change 'INSTRUCTION'` for `import` and `commit`: the Dockerfile instructions docker
//! applies to an image config without building.

use anyhow::{Context, Result, bail};
use oci::RuntimeConfig;

/// Applies one Dockerfile instruction of the kinds `docker import --change` accepts.
pub fn apply_change(c: &mut RuntimeConfig, line: &str) -> Result<()> {
    let line = line.trim();
    let (kw, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let exec_or_shell = |s: &str| -> Vec<String> {
        serde_json::from_str::<Vec<String>>(s)
            .unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), s.to_string()])
    };
    match kw.to_ascii_uppercase().as_str() {
        "CMD" => c.cmd = Some(exec_or_shell(rest)),
        "ENTRYPOINT" => {
            c.entrypoint = Some(exec_or_shell(rest));
            c.cmd = None;
        }
        "ENV" => {
            for (k, v) in key_values(rest)? {
                let env = c.env.get_or_insert_with(Vec::new);
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
        }
        "LABEL" => {
            for (k, v) in key_values(rest)? {
                c.labels.get_or_insert_with(Default::default).insert(k, v);
            }
        }
        "EXPOSE" => {
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                c.exposed_ports
                    .get_or_insert_with(Default::default)
                    .insert(p, serde_json::json!({}));
            }
        }
        "VOLUME" => {
            let vols = serde_json::from_str::<Vec<String>>(rest)
                .unwrap_or_else(|_| rest.split_whitespace().map(String::from).collect());
            for v in vols {
                c.volumes
                    .get_or_insert_with(Default::default)
                    .insert(v, serde_json::json!({}));
            }
        }
        "USER" => c.user = Some(rest.to_string()),
        "WORKDIR" => c.working_dir = Some(rest.to_string()),
        "STOPSIGNAL" => c.stop_signal = Some(rest.to_string()),
        "ONBUILD" => c
            .on_build
            .get_or_insert_with(Vec::new)
            .push(rest.to_string()),
        other => bail!(
            "`{other}` cannot be applied to an imported image: use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR"
        ),
    }
    Ok(())
}

/// `k=v k2="v 2"` or the old `k v...` form.
fn key_values(s: &str) -> Result<Vec<(String, String)>> {
    let words = split_words(s);
    if words.first().is_some_and(|w| !w.contains('=')) {
        let (k, v) = s
            .split_once(char::is_whitespace)
            .with_context(|| format!("`{s}` needs a value"))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words
        .into_iter()
        .map(|w| {
            let (k, v) = w
                .split_once('=')
                .with_context(|| format!("`{w}` is not KEY=VALUE"))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Splits on whitespace outside quotes, removing the quotes and backslash escapes.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    let mut in_word = false;
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(ch);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_like_docker_import() {
        let mut c = RuntimeConfig::default();
        apply_change(&mut c, r#"CMD ["/bin/sh", "-c", "echo hi"]"#).unwrap();
        apply_change(&mut c, "ENV A=1 B=\"two words\"").unwrap();
        apply_change(&mut c, "ENV PATH /usr/bin:/bin").unwrap();
        apply_change(&mut c, "EXPOSE 80 53/udp").unwrap();
        apply_change(&mut c, "WORKDIR /srv").unwrap();
        assert_eq!(c.cmd.as_deref().unwrap(), ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(
            c.env.as_deref().unwrap(),
            ["A=1", "B=two words", "PATH=/usr/bin:/bin"]
        );
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("53/udp"));
        assert!(c.exposed_ports.as_ref().unwrap().contains_key("80/tcp"));
        assert!(apply_change(&mut c, "RUN true").is_err());
        apply_change(&mut c, "ENTRYPOINT echo").unwrap();
        assert_eq!(c.entrypoint.as_deref().unwrap(), ["/bin/sh", "-c", "echo"]);
        assert_eq!(c.cmd, None);
    }
}
