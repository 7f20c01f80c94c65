// `dispense` takes a handle; a name needs `dispense_named`.
async fn dispense(client: &goplug::host::Client) {
    let _ = client.dispense("kv");
}

fn main() {
    let _ = dispense;
}
