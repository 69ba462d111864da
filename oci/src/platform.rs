//! The OCI names of the platform we run on (the one mapping from Rust's target names; every
//! crate that needs the host architecture asks here).

/// Maps Rust's `std::env::consts::ARCH` name to the OCI architecture and its default variant:
/// `x86_64` → `amd64`, `aarch64` → `arm64`/`v8`, `arm` → `arm`/`v7`, `x86` → `386`,
/// `powerpc64` → `ppc64le` (`ppc64` on big endian), ...; others pass through.
pub fn oci_arch(rust_arch: &str, little_endian: bool) -> (&str, Option<&'static str>) {
    match rust_arch {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" if little_endian => ("ppc64le", None),
        "powerpc64" => ("ppc64", None),
        "powerpc" => ("ppc", None),
        "mips64" if little_endian => ("mips64le", None),
        "mips" if little_endian => ("mipsle", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    }
}

/// The OCI architecture and default variant of this machine.
pub fn host_arch() -> (&'static str, Option<&'static str>) {
    oci_arch(std::env::consts::ARCH, cfg!(target_endian = "little"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_rust_names() {
        assert_eq!(oci_arch("x86_64", true), ("amd64", None));
        assert_eq!(oci_arch("aarch64", true), ("arm64", Some("v8")));
        assert_eq!(oci_arch("powerpc64", false), ("ppc64", None));
        assert_eq!(oci_arch("s390x", false), ("s390x", None));
    }
}
