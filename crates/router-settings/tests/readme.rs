//! The README's configuration table is generated from the settings list: this test
//! fails when they differ, and `cargo xtask readme` (this test with
//! `ROUTER_UPDATE_README=1`) rewrites the table.

use std::path::Path;

const START: &str = "<!-- settings:start -->\n";
const END: &str = "<!-- settings:end -->";

#[test]
fn readme_settings_table_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(&path).expect("read README.md");
    let start = text.find(START).expect("README.md has the settings:start marker") + START.len();
    let end = start + text[start..].find(END).expect("README.md has the settings:end marker");
    let table = router_settings::markdown_table();
    if text[start..end] == table {
        return;
    }
    if std::env::var_os("ROUTER_UPDATE_README").is_some() {
        let updated = format!("{}{table}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    panic!(
        "README.md's settings table differs from the settings list; run `cargo xtask readme`.\nexpected:\n{table}\nfound:\n{}",
        &text[start..end]
    );
}
