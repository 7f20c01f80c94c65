// A host importing the plugin side's set by its old, shared name.
use goplug::plugin::PluginSet;

fn main() {
    let _ = PluginSet::new();
}
