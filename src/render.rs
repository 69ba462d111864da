//! Rendering for people: errors with hints, aligned tables, docker-style sizes and ages.

use std::io::Write;

use store::StoreError;

/// Prints an error chain to stderr with a `hint:` where the user can act.
pub fn error(e: &anyhow::Error) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {e}");
    for cause in e.chain().skip(1) {
        let _ = writeln!(err, "  caused by: {cause}");
    }
    if let Some(h) = hint(e) {
        let _ = writeln!(err, "hint: {h}");
    }
}

fn hint(e: &anyhow::Error) -> Option<String> {
    for cause in e.chain() {
        if let Some(r) = cause.downcast_ref::<registry_client::error::RegistryError>() {
            return r.hint().map(str::to_string);
        }
        if let Some(s) = cause.downcast_ref::<StoreError>() {
            return match s {
                StoreError::ImageNotFound(_) => Some(
                    "run `hoist images` to list the images in the store, or `hoist pull` it".into(),
                ),
                StoreError::ContainerNotFound(_) => {
                    Some("run `hoist ps -a` to list containers".into())
                }
                StoreError::AmbiguousId(_) => Some("give more characters of the image ID".into()),
                StoreError::Privilege { .. } => Some(
                    "unpacking layers creates device nodes and overlay markers: run hoist as root"
                        .into(),
                ),
                StoreError::InUse { .. } => Some("use `hoist rmi -f` to remove it anyway".into()),
                StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. } => {
                    Some("the data is corrupt or was changed in transit; nothing was stored".into())
                }
                StoreError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::PermissionDenied =>
                {
                    Some("check the permissions of the store root (--root / HOIST_ROOT)".into())
                }
                _ => None,
            };
        }
    }
    None
}

/// Writes rows as columns the way docker's tabwriter does (min width 10, padding 3).
pub fn table(out: &mut impl Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let w = (widths[i] + 3).max(10);
                line.push_str(c);
                line.extend(std::iter::repeat_n(' ', w - c.chars().count()));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// docker's `HumanSize`: decimal units, three significant digits (`4.26MB`, `206MB`).
pub fn human_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size as f64;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g3(s), UNITS[i])
}

/// Go's `%.3g` for the values human_size produces (0 <= v < 1000).
fn go_g3(v: f64) -> String {
    let s = if v >= 100.0 {
        format!("{:.0}", v)
    } else if v >= 10.0 {
        format!("{:.1}", v)
    } else {
        format!("{:.2}", v)
    };
    // A rounding carry (999.5 -> "1000") is printed as Go would: 1e+03.
    if s == "1000" {
        return "1e+03".into();
    }
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// docker's `HumanDuration` + " ago", for an RFC 3339 time; `N/A` when absent or unreadable.
pub fn ago(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| {
        time::OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339).ok()
    }) else {
        return "N/A".into();
    };
    let d = time::OffsetDateTime::now_utc() - t;
    format!("{} ago", human_duration(d.as_seconds_f64()))
}

fn human_duration(secs: f64) -> String {
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs / 3600.0 + 0.5) as i64;
    if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", (secs / 3600.0 / 24.0 / 365.0) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(206_000_000), "206MB");
        assert_eq!(human_size(1_200), "1.2kB");
        assert_eq!(human_size(999), "999B");
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0.2), "Less than a second");
        assert_eq!(human_duration(30.0), "30 seconds");
        assert_eq!(human_duration(90.0), "About a minute");
        assert_eq!(human_duration(3600.0 * 5.0), "5 hours");
        assert_eq!(human_duration(3600.0 * 24.0 * 3.0), "3 days");
    }

    #[test]
    fn table_pads_like_tabwriter() {
        let mut out = Vec::new();
        table(
            &mut out,
            &[
                vec!["A".into(), "B".into()],
                vec!["longer-name".into(), "x".into()],
            ],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("A{}B\nlonger-name   x\n", " ".repeat(13))
        );
    }
}
