/// The one version of Rill: `rill --version`, the serve startup line, `/metrics`'s
/// `rill_build_info` and the `rill load` JSON report all say this.
public enum RillVersion {
    public static let current = "0.2.0"
}
