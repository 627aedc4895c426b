//! What the fuzz targets share (a module, not a target of its own).

use flexbridge::config::Settings;

/// Settings from these variables alone, as if the environment held nothing else.
pub fn settings(vars: &'static [(&'static str, &'static str)]) -> Settings {
    Settings::from_lookup(
        &|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        },
        false,
    )
    .expect("fixed fuzz settings are valid")
}
