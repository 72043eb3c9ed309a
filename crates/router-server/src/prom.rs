//! The Prometheus text exposition format's two helpers, shared by every module that
//! renders a metric family (a leaf: it uses no other module of the server).

use std::fmt::Write as _;

/// Writes a family's `# HELP` and `# TYPE` lines.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value in the exposition format: backslash, quote and newline escaped.
pub(crate) fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
