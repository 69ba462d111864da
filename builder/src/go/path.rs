//! Go's `path.Clean` and `path.Dir` for `/`-separated paths.

/// Go's `path.Clean`: collapses `//`, `.` and `..` lexically; `..` at the root of an absolute
/// path is dropped. The empty path cleans to `.`.
pub(crate) fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `path.Dir`: everything up to the last `/`, cleaned (`.` when there is none).
pub(crate) fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(path.get(..=i).unwrap_or(path)),
        None => ".".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_and_dir_follow_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("a/", "a"),
            ("./a/../b", "b"),
            ("a//b/./c/", "a/b/c"),
            ("a/../..", ".."),
            ("../a/..", ".."),
            ("/../a", "/a"),
            ("/", "/"),
            ("!./x", "!./x"),
        ] {
            assert_eq!(clean(input), want, "Clean({input:?})");
        }
        for (input, want) in [
            ("a", "."),
            ("a/b", "a"),
            ("file/", "file"),
            ("/", "/"),
            ("/a", "/"),
        ] {
            assert_eq!(dir(input), want, "Dir({input:?})");
        }
    }
}
