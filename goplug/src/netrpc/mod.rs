//! net/rpc plugins (go-plugin's original protocol): gob-encoded net/rpc
//! over a yamux session.

pub mod mux_broker;
